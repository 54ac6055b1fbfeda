"""CycleGAN's networks and the autoencoder: shapes, ranges, the patch map, and what reaches which parameter."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError
from archlab.models import create_model, get_model_info


def images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_generators_map_28x28_to_28x28_in_the_tanh_range():
    model = create_model("cyclegan", width=8, blocks=2, disc_width=8)
    fake_b, fake_a = model(images(), images())
    for out in (fake_b, fake_a):
        assert out.shape == (3, 1, 28, 28)
        assert out.min() >= -1 and out.max() <= 1


def test_discriminators_give_a_7x7_patch_map_and_discriminate_stacks_both_directions():
    model = create_model("cyclegan", width=4, blocks=1, disc_width=8)
    assert model.d_a(images()).shape == (3, 1, 7, 7)
    a, b = images(), images()
    fake_b = model.g_ab(a)
    both = model.discriminate(fake_b, b)
    assert both.shape == (3, 2, 7, 7)
    torch.testing.assert_close(both[:, :1], model.d_b(fake_b))
    torch.testing.assert_close(both[:, 1:], model.d_a(model.g_ba(b)))
    assert model.discriminate(fake_b).shape == (3, 1, 7, 7)


def test_translate_picks_the_generator_and_refuses_other_directions():
    model = create_model("cyclegan", width=4, blocks=1, disc_width=4).eval()
    x = images()
    torch.testing.assert_close(model.translate(x, "ab"), model.g_ab(x))
    torch.testing.assert_close(model.translate(x, "ba"), model.g_ba(x))
    with pytest.raises(ValueError, match="direction"):
        model.translate(x, "ca")


def test_generator_adversarial_loss_reaches_generators_not_only_discriminators():
    """The generated registry test backprops out² + discriminate(out, b)²: every parameter must be reached."""
    model = create_model("cyclegan", **get_model_info("cyclegan").tiny)
    a, b = get_model_info("cyclegan").example_inputs(2)
    out = model(a, b)[0]
    (out.pow(2).mean() + model.discriminate(out, b).pow(2).mean()).backward()
    reached = {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"g_ab", "g_ba", "d_a", "d_b"}


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="width"):
        create_model("cyclegan", width=0)
    with pytest.raises(ConfigError, match="multiple of 4"):
        create_model("autoencoder", input_size=30)


def test_autoencoder_reconstructs_through_its_bottleneck():
    model = create_model("autoencoder", width=8, latent_dim=5)
    x = images()
    code = model.encode(x)
    assert code.shape == (3, 5)
    out = model(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    torch.testing.assert_close(out, model.decode(code))
