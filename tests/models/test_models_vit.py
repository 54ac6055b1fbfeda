"""The Vision Transformer: patch count and shapes, attention maps, learned class token and positions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.errors import ConfigError
from archlab.models import create_model


@pytest.mark.parametrize(("patch", "patches"), [(4, 49), (7, 16)])
def test_patch_count_and_shapes(patch, patches):
    model = create_model("vit", patch=patch, dim=32, layers=2, heads=4, num_classes=10)
    images = torch.randn(3, 1, 28, 28)
    assert model.grid ** 2 == patches
    assert model.patch_embedding(images).shape == (3, patches, 32)
    assert model.embed(images).shape == (3, patches + 1, 32)  # the class token in front
    assert model.positions.shape == (1, patches + 1, 32)
    assert model(images).shape == (3, 10)
    assert model.eval().attention_maps(images).shape == (2, 3, 4, patches + 1, patches + 1)


def test_patch_embedding_is_a_linear_map_of_each_flattened_patch():
    model = create_model("vit", patch=7, dim=8, layers=1, heads=2)
    images = torch.randn(2, 1, 28, 28)
    patches = images.unfold(2, 7, 7).unfold(3, 7, 7).reshape(2, 16, 49)  # row by row, as the grid is read
    weight = model.patch_embedding.projection.weight.reshape(8, 49)
    expected = patches @ weight.T + model.patch_embedding.projection.bias
    torch.testing.assert_close(model.patch_embedding(images), expected, rtol=1e-5, atol=1e-5)


def test_attention_map_rows_sum_to_one():
    model = create_model("vit", patch=7, dim=32, layers=3, heads=4).eval()
    maps = model.attention_maps(torch.randn(2, 1, 28, 28))
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    assert maps[..., 0, 1:].std() > 0  # the weights depend on the input: not a uniform placeholder


def test_attention_maps_are_the_weights_the_forward_pass_uses():
    """softmax(q kᵀ/√d) · v from the explicit weights equals the fused SDPA output of the same layer."""
    model = create_model("vit", patch=7, dim=32, layers=2, heads=4).eval()
    images = torch.randn(2, 1, 28, 28)
    maps = model.attention_maps(images)
    block = model.blocks[1]
    with torch.no_grad():
        x = block.norm1(model.blocks[0](model.embed(images)))
        _, _, v = block.attention._split(x)
        explicit = block.attention.out((maps[1] @ v).transpose(1, 2).flatten(2))
        torch.testing.assert_close(explicit, block.attention(x), rtol=1e-4, atol=1e-5)


def test_class_token_and_positions_are_learned_parameters():
    model = create_model("vit", patch=7, dim=16, layers=1, heads=2)
    names = dict(model.named_parameters())
    assert names["class_token"] is model.class_token and names["positions"] is model.positions
    F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.arange(4)).backward()
    assert model.class_token.grad.abs().sum() > 0 and model.positions.grad.abs().sum() > 0


def test_positions_matter_a_permuted_image_gives_other_logits():
    """With learned positions the model is not permutation invariant over patches."""
    torch.manual_seed(0)
    model = create_model("vit", patch=14, dim=16, layers=1, heads=2).eval()
    images = torch.randn(1, 1, 28, 28)
    swapped = torch.cat([images[..., 14:, :], images[..., :14, :]], dim=2)  # swap top and bottom patch rows
    assert not torch.allclose(model(images), model(swapped), atol=1e-4)


def test_every_token_sees_every_token_no_causal_mask():
    model = create_model("vit", patch=7, dim=16, layers=1, heads=2).eval()
    maps = model.attention_maps(torch.randn(1, 1, 28, 28))
    assert (maps[..., 0, 1:] > 0).all()  # the class token (first) attends to the last patches too


@pytest.mark.parametrize("args", [{"patch": 5}, {"dim": 30, "heads": 4}, {"dropout": 1.0}])
def test_bad_arguments_say_what_is_wrong(args):
    with pytest.raises(ConfigError, match="patch|divisible|dropout"):
        create_model("vit", **args)


def test_the_optimizer_does_not_decay_the_class_token_positions_or_xl_biases():
    from archlab.models import create_model
    from archlab.tasks.optim import parameter_groups

    for name, args, exempt in (("vit", {"patch": 7, "dim": 16, "layers": 1, "heads": 2}, ("class_token", "positions")),
                               ("transformer-xl", {"vocab_size": 20, "dim": 16, "layers": 2, "heads": 2},
                                ("content_bias", "position_bias"))):
        model = create_model(name, **args)
        decayed, kept = parameter_groups(model, 0.1)
        assert decayed["weight_decay"] == 0.1 and kept["weight_decay"] == 0.0
        kept_ids = {id(p) for p in kept["params"]}
        named = dict(model.named_parameters())
        chosen = [n for n in named if n.endswith(exempt)]
        assert chosen and all(id(named[n]) in kept_ids for n in chosen)
        assert any(id(p) not in kept_ids for n, p in named.items() if p.ndim >= 2)  # real weights still decay
