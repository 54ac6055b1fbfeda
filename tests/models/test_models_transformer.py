"""gpt and seed-transformer: causality, the key/value cache, cropping, tied weights, the seed listing, positions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.models import create_model
from archlab.models.seed import SeedTransformer
from archlab.models.transformer import GPT
from archlab.nn import SinusoidalPositionalEncoding, sinusoidal_table

VOCAB = 16
SMALL_GPT = {"vocab_size": VOCAB, "context": 32, "layers": 2, "heads": 2, "dim": 16, "dropout": 0.0}
PATTERNS = [{"attention": "dense"}, {"attention": "local", "window": 4}, {"attention": "strided", "stride": 4}]


def small_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    return create_model("gpt", **{**SMALL_GPT, **overrides}).eval()


def small_seed() -> SeedTransformer:
    torch.manual_seed(0)
    return create_model("seed-transformer", vocab_size=VOCAB, ninp=16, nhead=2, nhid=32, nlayers=2,
                        dropout=0.0).eval()


MODELS = {**{f"gpt-{p['attention']}": (lambda p=p: small_gpt(**p)) for p in PATTERNS},
          "seed-transformer": small_seed}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("t", [0, 7, 18])
def test_changing_later_tokens_never_changes_earlier_logits(name, t):
    model = MODELS[name]()
    tokens = torch.randint(0, VOCAB, (3, 24), generator=torch.Generator().manual_seed(t))
    changed = tokens.clone()
    changed[:, t + 1:] = (changed[:, t + 1:] + 1 + torch.randint(0, VOCAB - 1, changed[:, t + 1:].shape)) % VOCAB
    with torch.no_grad():
        before, _ = model(tokens)
        after, _ = model(changed)
    torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1], rtol=0, atol=1e-5)
    assert (before[:, t + 1:] - after[:, t + 1:]).abs().max() > 1e-3  # the later positions do see the change


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p["attention"])
def test_kv_cache_step_by_step_equals_full_recomputation(pattern):
    model = small_gpt(**pattern)
    tokens = torch.randint(0, VOCAB, (2, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = model(tokens)
        logits, state = model(tokens[:, :6])
        pieces = [logits]
        for t in range(6, 30):
            logits, state = model(tokens[:, t : t + 1], state)
            pieces.append(logits)
            assert state.length == t + 1 and state.keys[0].shape[2] == t + 1  # one new key per step
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-4, atol=1e-5)


def test_cached_greedy_text_equals_greedy_recomputation():
    from archlab.generation import sample_tokens

    model = small_gpt()
    prompt = torch.tensor([1, 2, 3, 4])
    cached = sample_tokens(model, prompt, 20, temperature=0)
    text = prompt.tolist()
    with torch.no_grad():
        for _ in range(20):
            logits, _ = model(torch.tensor([text]))
            text.append(int(logits[0, -1].argmax()))
    assert cached.tolist() == text[4:]


def test_passing_the_context_rebuilds_the_cache_from_the_recent_tokens():
    model = small_gpt()  # context 32
    tokens = torch.randint(0, VOCAB, (1, 45), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, state = model(tokens[:, :32])
        logits, state = model(tokens[:, 32:33], state)  # would be position 33: rebuilt from the last 16 tokens
        assert state.length == 16
        torch.testing.assert_close(logits, model(tokens[:, 17:33])[0][:, -1:], rtol=1e-4, atol=1e-5)
        for t in range(33, 45):
            logits, state = model(tokens[:, t : t + 1], state)
        # every kept position is one of the table's: the cache equals a fresh read of its own tokens
        torch.testing.assert_close(logits, model(state.tokens)[0][:, -1:], rtol=1e-4, atol=1e-5)
        assert state.length == 28 and torch.equal(state.tokens, tokens[:, 17:45])


def test_more_tokens_than_positions_in_one_call_is_refused():
    with pytest.raises(ValueError, match="at most 32"):
        small_gpt()(torch.zeros(1, 33, dtype=torch.long))


def test_read_out_is_the_token_embedding():
    model = small_gpt()
    assert not any("head" in name for name, _ in model.named_parameters())
    hidden = torch.randn(2, 5, 16)
    torch.testing.assert_close(model.read_out(hidden), hidden @ model.token_embedding.weight.t())
    model.token_embedding.weight.grad = None
    tokens = torch.zeros(1, 4, dtype=torch.long)  # only token 0 is read: any gradient on row 5 comes from the read-out
    model(tokens)[0].logsumexp(-1).sum().backward()
    assert model.token_embedding.weight.grad[5].abs().sum() > 0


def test_attention_maps_are_causal_rows_summing_to_one():
    model = small_gpt(attention="local", window=4)
    maps = model.attention_maps(torch.randint(0, VOCAB, (12,)))
    assert maps.shape == (2, 2, 12, 12)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 12))
    assert maps.triu(1).abs().max() == 0 and maps.tril(-4).abs().max() == 0  # causal, window of 4


def test_positional_encoding_equals_the_closed_form():
    length, dim = 50, 8
    table = sinusoidal_table(length, dim)
    for pos in (0, 1, 17, 49):
        for i in range(dim // 2):
            angle = pos / 10000 ** (2 * i / dim)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    encoding = SinusoidalPositionalEncoding(dim, dropout=0.0, max_len=length, batch_first=False)
    x = torch.zeros(length, 3, dim)
    torch.testing.assert_close(encoding(x), table[:, None].expand(-1, 3, -1))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(4, 7)


def test_seed_transformer_is_the_listing():
    model = small_seed()
    layers = model.transformer_encoder.layers
    assert len(layers) == 2 and all(isinstance(layer, nn.TransformerEncoderLayer) for layer in layers)
    assert not layers[0].norm_first and layers[0].linear1.out_features == 32  # post-LN, nhid
    assert layers[0].self_attn.num_heads == 2 and layers[0].self_attn.batch_first is False  # sequence-first
    for weight in (model.encoder.weight.detach(), model.decoder.weight.detach()):  # uniform in [-0.1, 0.1]
        assert weight.abs().max() <= 0.1 and weight.abs().max() > 0.09 and weight.std().item() == pytest.approx(0.2 / 12**0.5, rel=0.2)
    assert model.decoder.bias.abs().max() == 0
    tokens = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        logits, _ = model(tokens)
        expected = model.transformer_encoder(
            model.pos_encoder(model.encoder(tokens.t()) * math.sqrt(16)),
            torch.full((9, 9), float("-inf")).triu(1))  # the listing's square mask
    torch.testing.assert_close(logits, model.decoder(expected).transpose(0, 1), rtol=1e-5, atol=1e-5)
    mask = model.src_mask
    assert mask.shape == (9, 9) and torch.isinf(mask.triu(1)[0, 1:]).all() and (mask.tril() == 0).all()


def test_seed_transformer_state_is_the_tokens_so_far():
    model = small_seed()
    tokens = torch.randint(0, VOCAB, (1, 15))
    with torch.no_grad():
        full, _ = model(tokens)
        logits, state = model(tokens[:, :10])
        steps = [logits]
        for t in range(10, 15):
            logits, state = model(tokens[:, t : t + 1], state)
            steps.append(logits)
    assert torch.equal(state, tokens)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad, message", [({"dim": 15}, "multiple of heads"), ({"attention": "banded"}, "attention"),
                                          ({"dropout": 1.0}, "dropout")])
def test_bad_arguments_say_what_is_wrong(bad, message):
    from archlab.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        create_model("gpt", **{**SMALL_GPT, **bad})
