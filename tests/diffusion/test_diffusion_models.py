"""The ddpm U-Net and the seed-diffuser listing."""

from __future__ import annotations

import pytest
import torch

from archlab.models import count_parameters, create_model


def test_ddpm_predicts_an_image_of_its_input_size_with_and_without_labels():
    network = create_model("ddpm", base_channels=8, channel_mults=(1, 2, 2), heads=2, groups=4, num_classes=10)
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    assert network(x, t, torch.tensor([0, 4, 9])).shape == (3, 1, 28, 28)
    # no labels = the null class (index num_classes): the unconditional model inside
    assert torch.equal(network(x, t), network(x, t, torch.full((3,), 10)))


def test_ddpm_depends_on_time_and_refuses_labels_when_unconditional():
    torch.manual_seed(0)
    network = create_model("ddpm", base_channels=8, channel_mults=(1, 2), heads=2, groups=4)
    x = torch.randn(2, 1, 28, 28)
    assert not torch.allclose(network(x, torch.tensor([10, 10])), network(x, torch.tensor([900, 900])))
    with pytest.raises(ValueError, match="unconditional"):
        network(x, torch.tensor([1, 2]), torch.tensor([1, 2]))


def test_ddpm_has_self_attention_at_seven_by_seven_only():
    network = create_model("ddpm")  # 28 → 14 → 7
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
             for m in network.modules() if type(m).__name__ == "SelfAttention2d"]
    network(torch.randn(1, 1, 28, 28), torch.tensor([3]))
    for hook in hooks:
        hook.remove()
    assert seen and set(seen) == {7}


def test_seed_diffuser_is_the_listing():
    network = create_model("seed-diffuser", model_dim=64)
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in network.modules()
             if isinstance(c, torch.nn.Conv2d)]
    assert convs == [(1, 64, (3, 3), (1, 1)), (64, 128, (3, 3), (1, 1)), (128, 1, (3, 3), (1, 1))]
    assert count_parameters(network) == (9 * 64 + 64) + (9 * 64 * 128 + 128) + (9 * 128 + 1)


def test_seed_diffuser_output_is_scaled_by_t_over_1000():
    torch.manual_seed(0)
    network = create_model("seed-diffuser", model_dim=4)
    x = torch.randn(1, 1, 28, 28).expand(3, 1, 28, 28)
    out = network(x, torch.tensor([0, 250, 1000]))
    assert torch.equal(out[0], torch.zeros_like(out[0]))  # at t = 0 it predicts nothing, whatever the input
    assert torch.allclose(out[1] * 4, out[2], atol=1e-6)


def test_time_embedding_is_the_sinusoidal_table_at_integer_t():
    from archlab.nn.positional import sinusoidal_table
    from archlab.nn.unet import timestep_embedding

    table = sinusoidal_table(1000, 16)
    embedding = timestep_embedding(torch.arange(1000), 16)
    assert torch.allclose(embedding[:, :8], table[:, 0::2], atol=1e-4)  # sines
    assert torch.allclose(embedding[:, 8:], table[:, 1::2], atol=1e-4)  # cosines
    half_way = timestep_embedding(torch.tensor([2.5]), 16)
    assert not torch.allclose(half_way, embedding[2:3]) and not torch.allclose(half_way, embedding[3:4])
