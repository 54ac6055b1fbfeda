"""The GAN models: the contract (shapes, range, players), the seed listing's layers, progressive growing, the
gradient penalty and the schedules of the ``gan`` task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.models import create_model, get_model_info, list_models
from archlab.tasks.gan import check_players
from archlab.tasks.gan_losses import LOSSES, gradient_penalty, growth_at, instance_noise_sigma

GANS = [info.name for info in list_models() if "gan" in info.tasks]


def test_every_gan_model_is_registered_for_the_gan_task():
    assert {"seed-gan", "dcgan", "cgan", "wgan-gp", "pggan"} <= set(GANS)


@pytest.mark.parametrize("name", GANS)
def test_images_are_n_1_28_28_in_minus_one_one_and_scores_are_one_per_image(name):
    torch.manual_seed(0)
    info = get_model_info(name)
    model = create_model(name, **info.tiny).eval()
    inputs = info.example_inputs(5)
    with torch.no_grad():
        images = model(*inputs)
        scores = model.discriminate(images, *inputs[1:])
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    assert scores.shape == (5,) and torch.isfinite(scores).all()
    assert model.latent_dim == inputs[0].shape[1] and model.default_loss in LOSSES
    check_players(model, name)  # every parameter belongs to exactly one of G and D


def test_check_players_refuses_a_parameter_outside_both_networks():
    model = create_model("dcgan", width=4)
    model.stray = nn.Linear(2, 2)
    with pytest.raises(Exception, match="neither or both"):
        check_players(model, "dcgan")


def test_seed_gan_layers_are_the_listing():
    model = create_model("seed-gan")
    linears = [(m.in_features, m.out_features) for m in model.generator if isinstance(m, nn.Linear)]
    assert linears == [(100, 256), (256, 512), (512, 784)]
    assert [type(m) for m in model.generator] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.Tanh]
    assert [type(m) for m in model.discriminator] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear,
                                                       nn.Sigmoid]
    assert [(m.in_features, m.out_features) for m in model.discriminator if isinstance(m, nn.Linear)] == [
        (784, 512), (512, 256), (256, 1)]
    assert all(m.negative_slope == 0.2 for m in model.discriminator if isinstance(m, nn.LeakyReLU))
    assert model.default_loss == "seed"
    probabilities = model.discriminate(torch.randn(3, 1, 28, 28))
    assert ((probabilities > 0) & (probabilities < 1)).all()  # the listing's sigmoid, kept


def test_cgan_draws_the_class_it_is_asked_for_and_refuses_missing_labels():
    torch.manual_seed(0)
    model = create_model("cgan", width=4, embed_dim=4).eval()
    z = torch.randn(1, 100).repeat(2, 1)
    with torch.no_grad():
        images = model(z, torch.tensor([3, 7]))
    assert not torch.allclose(images[0], images[1])  # the same z, two classes: two images
    with pytest.raises(ValueError, match="pass labels"):
        model(z)


def test_wgan_gp_critic_has_neither_batch_norm_nor_sigmoid():
    model = create_model("wgan-gp", width=4)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.Sigmoid)) for m in model.discriminator.modules())
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in model.discriminator.modules())


def test_spectral_norm_is_a_discriminator_option():
    plain, normed = create_model("dcgan", width=4), create_model("dcgan", width=4, spectral_norm=True)
    is_parametrized = nn.utils.parametrize.is_parametrized
    assert not any(is_parametrized(m) for m in plain.discriminator.modules())
    assert sum(is_parametrized(m) for m in normed.discriminator.modules()) == 3  # two convs and the score layer
    assert not any(is_parametrized(m) for m in normed.generator.modules())


def test_gradient_penalty_of_a_linear_critic_is_its_analytic_value():
    """D(x) = w·x + b has ∇D = w everywhere, so E[(‖∇D‖ − 1)²] = (‖w‖ − 1)² for any real and fake images."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))
    w = critic[1].weight
    real, fake = torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28)
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake)
    torch.testing.assert_close(penalty, (w.norm() - 1) ** 2)
    penalty.backward()  # create_graph: the penalty trains the critic
    expected = 2 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(w.grad, expected.detach())


def test_progressive_fade_in_goes_from_zero_to_one_and_stages_follow_the_schedule():
    schedule = [growth_at(step, grow_every=100, fade_steps=50) for step in range(0, 320, 10)]
    assert schedule[0] == (0, 1.0) and schedule[9] == (0, 1.0)
    assert growth_at(100, 100, 50) == (1, 0.0) and growth_at(125, 100, 50) == (1, 0.5)
    assert growth_at(150, 100, 50) == (1, 1.0) and growth_at(200, 100, 50) == (2, 0.0)
    assert growth_at(10_000, 100, 50) == (2, 1.0)  # the last stage stays
    alphas = [alpha for stage, alpha in schedule if stage == 2]
    assert alphas == sorted(alphas) and alphas[0] == 0.0 and alphas[-1] == 1.0


@pytest.mark.parametrize("stage, resolution", [(0, 7), (1, 14), (2, 28)])
def test_pggan_output_is_28x28_at_every_stage_with_the_detail_of_its_stage(stage, resolution):
    torch.manual_seed(0)
    model = create_model("pggan", width=4).eval()
    model.set_growth(stage, 1.0)
    with torch.no_grad():
        images = model(torch.randn(3, 100))
        scores = model.discriminate(images)
    assert images.shape == (3, 1, 28, 28) and scores.shape == (3,)
    block = 28 // resolution  # nearest upsampling: every block×block tile is one pixel of the stage
    tiles = images.unfold(2, block, block).unfold(3, block, block)
    assert torch.allclose(tiles, tiles[..., :1, :1].expand_as(tiles))
    if block > 1:  # real images are blurred to the stage's resolution in the same way
        real = model.prepare_real(torch.rand(2, 1, 28, 28))
        real_tiles = real.unfold(2, block, block).unfold(3, block, block)
        assert torch.allclose(real_tiles, real_tiles[..., :1, :1].expand_as(real_tiles))


def test_pggan_fade_in_blends_the_two_resolutions():
    torch.manual_seed(0)
    model = create_model("pggan", width=4).eval()
    z = torch.randn(2, 100)
    with torch.no_grad():
        model.set_growth(0, 1.0)
        low = model(z)
        model.set_growth(1, 0.0)
        faded_out = model(z)
        model.set_growth(1, 1.0)
        new = model(z)
        model.set_growth(1, 0.25)
        quarter = model(z)
    torch.testing.assert_close(faded_out, low)  # α = 0: the new stage is not seen yet
    torch.testing.assert_close(quarter, 0.25 * new + 0.75 * low)
    assert model.growth() == (1, 0.25)
    state = model.state_dict()
    assert int(state["stage"]) == 1 and float(state["alpha"]) == 0.25  # the growth travels with the weights


def test_instance_noise_anneals_linearly_to_zero():
    sigmas = [instance_noise_sigma(0.2, step, 100) for step in (0, 25, 50, 100, 150)]
    assert sigmas == pytest.approx([0.2, 0.15, 0.1, 0.0, 0.0])
    assert instance_noise_sigma(0.0, 10, 100) == 0.0
