"""Quantization and pruning on a small attention block whose exact reference is easy to write."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.errors import ConfigError
from archlab.export import dynamic_int8, prune_heads, prune_neurons, prune_unstructured, serialized_bytes, sparsity
from archlab.export.prune import head_norms


class Block(nn.Module):
    """Embedding → one attention layer (fused qkv) → MLP → output tied to the embedding."""

    def __init__(self, vocab: int = 20, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor, head_mask: torch.Tensor | None = None,
                neuron_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(tokens)
        batch, steps, dim = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        heads = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, d]
        if head_mask is not None:
            heads = heads * head_mask[None, :, None, None]
        x = x + self.proj(heads.transpose(1, 2).reshape(batch, steps, dim))
        hidden = F.gelu(self.fc1(x))
        if neuron_mask is not None:
            hidden = hidden * neuron_mask
        return self.out(x + self.fc2(hidden))

    def pruning_groups(self) -> dict:
        return {"neurons": [self.fc1], "heads": [(self.qkv, self.proj, self.heads)]}


@pytest.fixture
def block():
    torch.manual_seed(0)
    return Block().eval()


TOKENS = torch.randint(0, 20, (3, 7), generator=torch.Generator().manual_seed(1))


def test_unstructured_pruning_zeroes_the_smallest_weights_globally_and_spares_tied_ones(block):
    pruned = prune_unstructured(block, 0.5)
    assert sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    assert sparsity(block) == 0.0  # the original is untouched
    torch.testing.assert_close(pruned.embed.weight, block.embed.weight)  # tied output = embedding: not pruned
    kept = torch.cat([m.weight.flatten() for m in (pruned.qkv, pruned.proj, pruned.fc1, pruned.fc2)])
    original = torch.cat([m.weight.flatten() for m in (block.qkv, block.proj, block.fc1, block.fc2)])
    assert original[kept == 0].abs().max() <= original[kept != 0].abs().min()  # the zeros are the smallest |w|


def test_neuron_pruning_removes_hidden_units_exactly(block):
    pruned = prune_neurons(block, 0.25)
    dropped = (pruned.fc1.weight == 0).all(dim=1)
    assert int(dropped.sum()) == 16  # a quarter of 64 hidden units
    with torch.no_grad():
        torch.testing.assert_close(pruned(TOKENS), block(TOKENS, neuron_mask=(~dropped).float()))


def test_head_pruning_removes_the_weakest_heads_exactly(block):
    norms = head_norms(block.qkv, block.proj, block.heads)
    pruned = prune_heads(block, 0.5)
    kept = torch.ones(4)
    kept[norms.argsort()[:2]] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(pruned(TOKENS), block(TOKENS, head_mask=kept), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(pruned(TOKENS), block(TOKENS), atol=1e-4)


def test_structured_pruning_needs_the_model_to_name_its_groups():
    with pytest.raises(ConfigError, match="pruning_groups"):
        prune_heads(nn.Sequential(nn.Linear(4, 4)), 0.5)
    with pytest.raises(ConfigError, match="fraction"):
        prune_unstructured(nn.Linear(4, 4), 1.5)


def test_dynamic_int8_is_close_and_smaller():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 256)).eval()
    quantized = dynamic_int8(model)
    x = torch.randn(8, 256)
    with torch.no_grad():
        reference, approx = model(x), quantized(x)
    assert (approx - reference).norm() / reference.norm() < 0.05
    assert serialized_bytes(quantized) < 0.35 * serialized_bytes(model)
    assert isinstance(model[0], nn.Linear)  # the original keeps its float layers


def test_gpt_names_its_heads_and_neurons_for_structured_pruning():
    from archlab.models import create_model

    torch.manual_seed(0)
    gpt = create_model("gpt", vocab_size=20, context=16, layers=2, heads=4, dim=16, dropout=0.0).eval()
    pruned = prune_heads(prune_neurons(gpt, 0.5), 0.5)
    for block in pruned.blocks:
        values = block.attn.qkv.weight[32:].view(4, 4, 16)  # the value rows, head by head
        assert int((values == 0).all(dim=(1, 2)).sum()) == 2
        assert int((block.mlp[0].weight == 0).all(dim=1).sum()) == 32
    tokens = torch.randint(0, 20, (2, 10))
    with torch.no_grad():
        out = pruned(tokens)[0]
        changed = tokens.clone()
        changed[:, 6:] = (changed[:, 6:] + 1) % 20
        assert torch.isfinite(out).all() and not torch.allclose(out, gpt(tokens)[0])
        torch.testing.assert_close(pruned(changed)[0][:, :6], out[:, :6])  # still causal
