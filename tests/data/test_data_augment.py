"""AugmentConfig validation and the seeded, batched Augment (CPU, and CUDA when present)."""

import pytest
import torch

from archlab.data.augment import Augment, AugmentConfig
from archlab.errors import ConfigError

FULL = AugmentConfig(rotate_deg=15, translate=0.1, scale=(0.9, 1.1), erase_p=0.5, noise_std=0.1)


@pytest.fixture(scope="module")
def batch():
    return torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_default_config_is_disabled():
    assert not AugmentConfig().enabled
    assert AugmentConfig(noise_std=0.1).enabled and FULL.enabled


def test_from_dict_accepts_recipe_values():
    config = AugmentConfig.from_dict({"rotate_deg": 10, "scale": [0.8, 1.2], "erase_p": 1})
    assert config == AugmentConfig(rotate_deg=10, scale=(0.8, 1.2), erase_p=1.0)
    assert AugmentConfig.from_dict(config.to_dict()) == config
    assert AugmentConfig.from_dict(None) == AugmentConfig()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"rotation": 5}, "unknown key"),
        ({"rotate_deg": -1}, ">= 0"),
        ({"rotate_deg": 200}, "<= 180"),
        ({"translate": 1.5}, "< 1"),
        ({"erase_p": 1.5}, "probability"),
        ({"noise_std": "lots"}, "number"),
        ({"noise_std": float("nan")}, "number"),
        ({"scale": [1.2, 0.8]}, "low <= high"),
        ({"scale": [0.0, 1.0]}, "0 < low"),
        ({"scale": [1.0]}, "pair"),
        ({"scale": 1.0}, "pair"),
    ],
)
def test_from_dict_rejects_bad_values(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        AugmentConfig.from_dict(values)


def test_shape_dtype_and_range_are_kept(batch):
    out = Augment(FULL)(batch, seed=1)
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert batch.equal(torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))), "input untouched"


def test_same_seed_same_output_different_seed_different(batch):
    augment = Augment(FULL)
    first = augment(batch, seed=7)
    assert torch.equal(augment(batch, seed=7), first)
    assert torch.equal(Augment(FULL)(batch, seed=7), first)
    assert not torch.equal(augment(batch, seed=8), first)


def test_global_rng_is_untouched(batch):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    Augment(FULL)(batch, seed=3)
    assert torch.equal(torch.rand(3), expected)


def test_disabled_is_identity(batch):
    assert torch.equal(Augment(AugmentConfig())(batch, seed=1), batch)


@pytest.mark.parametrize(
    "config",
    [AugmentConfig(rotate_deg=30), AugmentConfig(translate=0.2), AugmentConfig(scale=(0.5, 0.6)),
     AugmentConfig(erase_p=1.0), AugmentConfig(noise_std=0.2)],
)
def test_each_part_changes_the_images(batch, config):
    out = Augment(config)(batch, seed=1)
    changed = (out - batch).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.9


def test_images_get_different_parameters_within_a_batch():
    same = torch.rand(1, 1, 28, 28).expand(8, 1, 28, 28).contiguous()
    out = Augment(AugmentConfig(rotate_deg=30))(same, seed=0)
    assert not torch.allclose(out[0], out[1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda(batch):
    x = batch.cuda()
    augment = Augment(FULL)
    out = augment(x, seed=5)
    assert out.device == x.device and out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(augment(x, seed=5), out)
    assert out.min() >= 0 and out.max() <= 1
