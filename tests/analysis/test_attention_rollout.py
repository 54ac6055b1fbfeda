"""Attention rollout (Abnar & Zuidema 2020) on hand-made attention maps."""

from __future__ import annotations

import pytest
import torch

from archlab.analysis.attention import attention_rollout, class_attention_by_layer, class_token_map
from archlab.errors import ConfigError


def random_maps(layers=3, batch=2, heads=4, tokens=17, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(layers, batch, heads, tokens, tokens, generator=generator) * 2, dim=-1)


def test_identity_attention_rolls_out_to_the_identity():
    maps = torch.eye(5).expand(3, 2, 4, 5, 5)
    torch.testing.assert_close(attention_rollout(maps), torch.eye(5).expand(2, 5, 5))


def test_uniform_attention_gives_a_uniform_class_token_map():
    maps = torch.full((4, 1, 2, 17, 17), 1 / 17)
    heat = class_token_map(attention_rollout(maps), grid=4)
    assert heat.shape == (1, 4, 4)
    torch.testing.assert_close(heat, torch.full_like(heat, heat[0, 0, 0].item()))
    assert heat[0, 0, 0] > 0


def test_two_layers_equal_the_hand_computed_product():
    first = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    second = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    heads_of_second = torch.stack([second, torch.eye(3)])  # two heads: averaged first
    maps = torch.stack([torch.stack([first, first]), heads_of_second])  # [layers, heads, N, N]
    a1 = 0.5 * first + 0.5 * torch.eye(3)
    a2 = 0.5 * (0.5 * second + 0.5 * torch.eye(3)) + 0.5 * torch.eye(3)
    expected = a2 @ a1  # rows already sum to 1, so renormalising changes nothing
    torch.testing.assert_close(attention_rollout(maps), expected)
    # Written out for the class token: row 0 of A2 is [0.75, 0.25, 0], so R[0] = 0.75·A1[0] + 0.25·A1[1].
    torch.testing.assert_close(attention_rollout(maps)[0], torch.tensor([0.8125, 0.1875, 0.0]))


def test_order_matters_later_layers_multiply_from_the_left():
    maps = random_maps(layers=2, batch=1)
    swapped = maps.flip(0)
    assert not torch.allclose(attention_rollout(maps), attention_rollout(swapped))


def test_rows_of_the_rollout_sum_to_one():
    rollout = attention_rollout(random_maps())
    assert rollout.shape == (2, 17, 17)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 17))


def test_unnormalised_rows_are_renormalised():
    maps = random_maps() * 3.0  # rows sum to 3
    rollout = attention_rollout(maps)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 17))


def test_class_token_map_shape_is_the_patch_grid_then_the_image():
    rollout = attention_rollout(random_maps(tokens=50))
    assert class_token_map(rollout, grid=7).shape == (2, 7, 7)
    upsampled = class_token_map(rollout, grid=7, size=28)
    assert upsampled.shape == (2, 28, 28)
    # The patch that gets the most rollout mass is where the upsampled map peaks.
    heat = class_token_map(rollout, grid=7)
    row, col = divmod(int(heat[0].argmax()), 7)
    peak_row, peak_col = divmod(int(upsampled[0].argmax()), 28)
    assert (peak_row // 4, peak_col // 4) == (row, col)


def test_class_token_map_is_the_class_row_over_patches():
    rollout = attention_rollout(random_maps(tokens=17))
    heat = class_token_map(rollout, grid=4)
    torch.testing.assert_close(heat.flatten(1), rollout[:, 0, 1:])
    torch.testing.assert_close(heat.flatten(1).sum(-1), 1 - rollout[:, 0, 0])


def test_per_layer_class_attention_averages_the_heads():
    maps = random_maps(tokens=17)
    per_layer = class_attention_by_layer(maps, grid=4)
    assert per_layer.shape == (3, 2, 4, 4)
    torch.testing.assert_close(per_layer[1, 0].flatten(), maps[1, 0, :, 0, 1:].mean(0))


def test_wrong_shapes_say_what_is_expected():
    with pytest.raises(ConfigError, match="4×4 patch grid needs 17 tokens"):
        class_token_map(attention_rollout(random_maps(tokens=10)), grid=4)
    with pytest.raises(ConfigError, match="layers, B, heads, N, N"):
        attention_rollout(torch.ones(3, 4, 5))
    with pytest.raises(ConfigError, match="residual"):
        attention_rollout(random_maps(), residual=2.0)
