"""Enhancement: inpainting keeps the known pixels, super-resolution keeps the low-pass, denoising's noise level."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.diffusion import enhance
from archlab.diffusion.pipeline import DiffusionModel
from archlab.diffusion.schedules import make_schedule
from archlab.errors import ArchlabError
from archlab.models import create_model


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    torch.manual_seed(0)
    network = create_model("ddpm", base_channels=8, channel_mults=(1, 2), heads=2, groups=4).eval()
    return DiffusionModel(network, make_schedule("linear", 30))


def digit_like(n: int = 2) -> torch.Tensor:
    image = -torch.ones(n, 1, 28, 28)
    image[:, :, 6:22, 12:16] = 1.0
    return image


def test_inpainting_keeps_the_known_pixels_exactly(model):
    image, mask = digit_like(), torch.zeros(2, 1, 28, 28, dtype=torch.bool)
    mask[:, :, 10:18, 8:20] = True
    for resample in (1, 2):
        out = enhance.inpaint(model, image, mask, steps=6, resample=resample, seed=0)
        assert out.shape == image.shape
        assert torch.equal(out[~mask], image[~mask])
        assert not torch.equal(out[mask], image[mask])  # the hole is generated, not copied


def test_super_resolution_keeps_the_input_as_its_low_pass(model):
    torch.manual_seed(1)
    low = torch.rand(2, 1, 14, 14) * 1.6 - 0.8
    high = enhance.upscale(model, low, steps=6, seed=0)
    assert high.shape == (2, 1, 28, 28)
    assert (F.avg_pool2d(high, 2) - low).abs().max() < 2e-3


def test_denoising_starts_where_the_noise_level_matches(model):
    torch.manual_seed(2)
    noisy = digit_like() + 0.3 * torch.randn(2, 1, 28, 28)
    out, sigma = enhance.denoise(model, noisy, steps=5)
    assert out.shape == noisy.shape and out.min() >= -1 and out.max() <= 1
    assert sigma == pytest.approx(0.3, rel=0.25)  # the estimate from the image itself
    again, given = enhance.denoise(model, noisy, sigma=0.3, steps=5)
    assert given == 0.3 and torch.isfinite(again).all()


def test_noise_estimate_is_zero_for_flat_images_and_tracks_sigma():
    assert enhance.estimate_noise_sigma(torch.zeros(1, 1, 28, 28)) == 0.0
    torch.manual_seed(0)
    assert enhance.estimate_noise_sigma(0.2 * torch.randn(4, 1, 28, 28)) == pytest.approx(0.2, rel=0.1)


def test_wrong_sizes_are_refused(model):
    with pytest.raises(ArchlabError, match="mask must be the image's size"):
        enhance.inpaint(model, digit_like(1), torch.zeros(1, 1, 14, 14, dtype=torch.bool))
    with pytest.raises(ArchlabError, match="must be 28×28"):
        enhance.inpaint(model, torch.zeros(1, 1, 14, 14), torch.zeros(1, 1, 14, 14, dtype=torch.bool))
    with pytest.raises(ArchlabError, match="low-resolution image must be 14×14"):
        enhance.upscale(model, digit_like(1))
