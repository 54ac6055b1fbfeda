"""BERT: padding never changes the real positions, both heads' shapes, the tied masked-LM decoder, [CLS] handling."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError
from archlab.models import create_model


def bert(**kwargs):
    torch.manual_seed(0)
    settings = {"vocab_size": 50, "dim": 16, "layers": 2, "heads": 2, "max_positions": 32, **kwargs}
    return create_model("bert", **settings).eval()


def ragged_batch():
    lengths = torch.tensor([5, 2, 7])
    ids = torch.zeros(3, 7, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(2, 50, (int(length),), generator=torch.Generator().manual_seed(row))
    return ids, lengths


@pytest.mark.parametrize("pre_norm", [True, False])
def test_padding_changes_neither_the_cls_logits_nor_the_real_positions(pre_norm):
    model = bert(num_classes=3, pre_norm=pre_norm)
    ids, lengths = ragged_batch()
    garbage = ids.clone()
    for row, n in enumerate(lengths):
        garbage[row, int(n):] = 9  # real-looking words in the padding: masked out by the lengths
    longer = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)
    with torch.no_grad():
        logits = model(ids, lengths)
        alone = torch.cat([model(ids[r : r + 1, : int(n)], lengths[r : r + 1]) for r, n in enumerate(lengths)])
        word_logits = model.masked_lm(ids, lengths)
        garbage_words = model.masked_lm(garbage, lengths)
        torch.testing.assert_close(model(garbage, lengths), logits)
        torch.testing.assert_close(model(longer, lengths), logits)
    torch.testing.assert_close(alone, logits, rtol=1e-5, atol=1e-5)
    real = torch.arange(7) < lengths[:, None]
    torch.testing.assert_close(garbage_words[real], word_logits[real])
    # the control: without lengths the same garbage is read as words and the [CLS] state moves
    with torch.no_grad():
        cls_masked, cls_read = model.encode(garbage, lengths)[:, 0], model.encode(garbage)[:, 0]
    assert (cls_masked - cls_read).abs().max() > 1e-3  # ≫ the 1e-5 agreement above


def test_attention_is_bidirectional_and_cls_is_prepended():
    model = bert()
    ids, lengths = ragged_batch()
    changed = ids.clone()
    changed[0, 4] = 3 if ids[0, 4] != 3 else 4  # the last real word of the first text
    with torch.no_grad():
        before, after = model.masked_lm(ids, lengths), model.masked_lm(changed, lengths)
        maps = model.attention_maps(ids, lengths)
    assert not torch.allclose(before[0, 0], after[0, 0])  # an early position sees a later word
    torch.testing.assert_close(before[1], after[1])  # other texts of the batch are untouched
    assert maps.shape == (2, 2, 8, 8)  # layers, heads, [CLS] + 7 positions
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 8))
    assert (maps[..., 6:] == 0).all()  # keys past the first text's 5 words get no weight


def test_heads_shapes_and_gathered_positions():
    model = bert(num_classes=4)
    ids, lengths = ragged_batch()
    positions = torch.arange(7) < lengths[:, None]
    positions[0, 1] = False
    with torch.no_grad():
        assert model(ids, lengths).shape == (3, 4)
        full = model.masked_lm(ids, lengths)
        assert full.shape == (3, 7, 50)  # the real words only: [MASK] and [CLS] are never predicted
        torch.testing.assert_close(model.masked_lm(ids, lengths, positions), full[positions])
    pretraining = bert(num_classes=0)
    assert not hasattr(pretraining, "classifier")
    with torch.no_grad():
        assert pretraining(ids, lengths).shape == (3, 7, 50)  # without a classifier: the masked-LM logits


def test_the_masked_lm_decoder_is_the_token_embedding():
    model = bert()
    assert model.mask_token_id == 50 and model.cls_token_id == 51
    assert model.token_embedding.num_embeddings == 52
    names = {name for name, _ in model.named_parameters()}
    assert not any("decoder" in name for name in names)  # no matrix of its own
    hidden = torch.randn(3, 16)
    expected = model.mlm_transform(hidden) @ model.token_embedding.weight[:50].T + model.mlm_bias
    ids, lengths = ragged_batch()
    # one update through the masked-LM loss moves the embedding rows of the predicted words
    model.train()
    model.masked_lm(ids, lengths)[0, 0, 7].backward()
    assert model.token_embedding.weight.grad[7].abs().sum() > 0
    assert expected.shape == (3, 50)
    with torch.no_grad():
        model.token_embedding.weight[:50] *= 2.0  # the decoder follows the embedding
        model.eval()
        twice = model.mlm_transform(hidden) @ model.token_embedding.weight[:50].T + model.mlm_bias
    assert not torch.allclose(twice, expected)


def test_too_long_a_text_and_bad_sizes_are_refused_clearly():
    model = bert(max_positions=8)
    with pytest.raises(ValueError, match="needs 9 positions; this model has 8.*max_length=7"):
        model(torch.ones(1, 8, dtype=torch.long))
    with pytest.raises(ConfigError, match="multiple of heads"):
        create_model("bert", dim=30, heads=4)
