"""Samplers and predictions: DDIM determinism, DDIM(eta=1, S=T) = DDPM, v/eps round trip, guidance, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.diffusion.pipeline import DiffusionModel, generate
from archlab.diffusion.predictions import PREDICTIONS, get_prediction
from archlab.diffusion.samplers import DDIMSampler, DDPMSampler, Denoiser, make_sampler
from archlab.diffusion.schedules import make_schedule
from archlab.errors import ConfigError
from archlab.models import create_model


def tiny_ddpm(num_classes: int = 0) -> nn.Module:
    torch.manual_seed(0)
    return create_model("ddpm", base_channels=8, channel_mults=(1, 2), heads=2, groups=4, num_classes=num_classes).eval()


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    return DiffusionModel(tiny_ddpm(), make_schedule("cosine", 40))


def test_ddim_eta_zero_is_deterministic_for_a_seed(model):
    a = generate(model, 3, sampler="ddim", steps=8, seed=1)
    b = generate(model, 3, sampler="ddim", steps=8, seed=1)
    c = generate(model, 3, sampler="ddim", steps=8, seed=2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_samples_have_the_image_shape_and_range(model):
    for sampler, steps in (("ddim", 5), ("ddpm", None)):
        images = generate(model, 5, sampler=sampler, steps=steps, seed=0, batch_size=2)
        assert images.shape == (5, 1, 28, 28) and images.dtype == torch.float32
        assert images.min() >= -1 and images.max() <= 1 and torch.isfinite(images).all()


def test_ddim_with_every_step_and_eta_one_is_the_ddpm_update(model):
    denoise = Denoiser(model.network, model.schedule)
    plan_ddim = DDIMSampler(eta=1.0).plan(40, 40)
    assert plan_ddim == DDPMSampler().plan(40, None)
    torch.manual_seed(3)
    x, noise = torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28)
    for t, t_prev in (plan_ddim[0], plan_ddim[20], plan_ddim[-1]):
        ddpm = DDPMSampler().step(denoise, x, t, t_prev, noise)
        ddim = DDIMSampler(eta=1.0).step(denoise, x, t, t_prev, noise)
        assert torch.allclose(ddpm, ddim, atol=1e-5), (t, (ddpm - ddim).abs().max())
    # and a deterministic DDIM step is not the ancestral one
    assert not torch.allclose(DDIMSampler(eta=0.0).step(denoise, x, 20, 19, noise),
                              DDPMSampler().step(denoise, x, 20, 19, noise))


def test_ddim_plan_spreads_steps_and_ends_clean():
    plan = DDIMSampler().plan(1000, 10)
    assert len(plan) == 10 and plan[0][0] == 999 and plan[-1] == (0, -1)
    assert all(t > t_prev for t, t_prev in plan)


@pytest.mark.parametrize("name", sorted(PREDICTIONS))
def test_predictions_round_trip_to_eps_and_x0(name):
    torch.manual_seed(0)
    x0, eps = torch.rand(4, 1, 5, 5) * 2 - 1, torch.randn(4, 1, 5, 5)
    abar = torch.tensor([0.999, 0.7, 0.2, 1e-4]).reshape(4, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    prediction = get_prediction(name)
    eps_back, x0_back = prediction.split(x_t, prediction.target(x0, eps, abar), abar)
    assert torch.allclose(eps_back, eps, atol=1e-4) and torch.allclose(x0_back, x0, atol=1e-4)


def test_guidance_zero_is_unconditional_and_one_conditional():
    network = tiny_ddpm(num_classes=10)
    with torch.no_grad():  # give the class embedding weight, so conditional and unconditional differ
        network.class_embed.weight.normal_()
    schedule = make_schedule("linear", 100)
    x, labels = torch.randn(3, 1, 28, 28), torch.tensor([1, 7, 3])
    t = torch.full((3,), 50)
    with torch.no_grad():
        unconditional = network(x, t, torch.full((3,), 10))
        conditional = network(x, t, labels)
        assert not torch.allclose(unconditional, conditional)
        for w, expected in ((0.0, unconditional), (1.0, conditional), (3.0, unconditional + 3 * (conditional - unconditional))):
            guided = Denoiser(network, schedule, labels=labels, guidance=w).output(x, t)
            assert torch.allclose(guided, expected, atol=1e-5)


def test_temperature_scales_the_noise(model):
    cold = generate(model, 2, sampler="ddim", steps=1, seed=0, temperature=0.5, batch_size=2)
    warm = generate(model, 2, sampler="ddim", steps=1, seed=0, temperature=1.0, batch_size=2)
    assert not torch.allclose(cold, warm)


def test_what_a_model_cannot_honour_is_refused(model):
    with pytest.raises(ConfigError, match="1 to 40 steps"):
        generate(model, 1, sampler="ddim", steps=41)
    with pytest.raises(ConfigError, match="every one of the 40 steps"):
        generate(model, 1, sampler="ddpm", steps=10)
    with pytest.raises(ConfigError, match="unconditional"):
        generate(model, 1, labels=torch.tensor([3]), steps=2)
    with pytest.raises(ConfigError, match="guidance scale needs a class-conditional"):
        Denoiser(model.network, model.schedule, guidance=3.0)
    with pytest.raises(ConfigError, match="eta must be in"):
        make_sampler("ddim", eta=1.5)
    with pytest.raises(ConfigError, match="no option"):
        make_sampler("ddpm", eta=0.5)
    with pytest.raises(ConfigError, match="Known samplers"):
        make_sampler("euler")
    conditional = DiffusionModel(tiny_ddpm(num_classes=10), make_schedule("linear", 10))
    with pytest.raises(ConfigError, match=r"0\.\.9"):
        generate(conditional, 1, labels=torch.tensor([10]), steps=2)
