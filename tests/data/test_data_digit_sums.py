"""Digit sequences and their sums: lengths in range, targets the digits of the true sum, splits kept apart."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from archlab.data.digit_sums import (
    EOS, DigitSequenceLoader, load_digit_sums, make_sequences, sum_tokens, target_width, tokens_to_text,
)
from archlab.data.fetch import DATASETS
from archlab.errors import ConfigError, DataError



def test_sum_tokens_are_the_decimal_digits_then_eos():
    assert sum_tokens(27) == [2, 7, EOS]
    assert sum_tokens(0) == [0, EOS]
    assert sum_tokens(45) == [4, 5, EOS]
    assert tokens_to_text([4, 5, EOS, 3]) == "45" and tokens_to_text(torch.tensor([EOS])) == ""
    assert target_width(5) == 3 and target_width(1) == 2 and target_width(12) == 4
    with pytest.raises(ValueError):
        sum_tokens(-1)


def test_sequences_have_lengths_in_range_and_the_digits_of_their_sum():
    labels = torch.arange(100) % 10
    seqs = make_sequences(labels, 500, 2, 5, seed=0, stream=0)
    assert len(seqs) == 500 and seqs.index.shape == (500, 5)
    assert seqs.lengths.min() == 2 and seqs.lengths.max() == 5  # every length is drawn
    for row in range(500):
        n = int(seqs.lengths[row])
        positions = seqs.index[row].tolist()
        assert all(0 <= p < 100 for p in positions[:n]) and all(p == -1 for p in positions[n:])
        total = sum(int(labels[p]) for p in positions[:n])
        expected = [int(c) for c in str(total)] + [EOS]
        width = int(seqs.target_lengths[row])
        assert seqs.targets[row, :width].tolist() == expected
        assert (seqs.targets[row, width:] == EOS).all()


def test_sequences_are_a_pure_function_of_seed_and_stream():
    labels = torch.arange(50) % 10
    first, again = make_sequences(labels, 40, 2, 5, 3, 0), make_sequences(labels, 40, 2, 5, 3, 0)
    assert torch.equal(first.index, again.index) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.index, make_sequences(labels, 40, 2, 5, 3, 1).index)
    assert not torch.equal(first.index, make_sequences(labels, 40, 2, 5, 4, 0).index)
    with pytest.raises(ConfigError, match="min_digits"):
        make_sequences(labels, 4, 3, 2, 0, 0)


def test_each_split_draws_from_its_own_images(tiny_spec, cache_dir):
    data = load_digit_sums(tiny_spec.name, cache_dir, val_size=10, seed=0, train_sequences=300, eval_sequences=100)
    for name in ("train", "val", "test"):
        images, seqs = data.split(name)
        assert int(seqs.index.max()) < len(images) and len(seqs) == (300 if name == "train" else 100)
        # the targets are the sums of *this split's* labels at those positions
        digits = images.labels[seqs.index.clamp(min=0)].masked_fill(seqs.index < 0, 0).sum(1)
        assert [tokens_to_text(row) for row in seqs.targets] == [str(int(total)) for total in digits]
    # loader frames are this split's images: the tiny test images carry their index in their first two pixels
    test_images = data.images.test.images.float()
    loader = DigitSequenceLoader(data.images.test, data.test, 32, mean=0.0, std=1.0, shuffle=False)
    seen = 0
    for frames, lengths, _, _ in loader:
        raw = (frames * 255).round()
        for b in range(len(lengths)):
            for t in range(int(lengths[b])):
                index = int(raw[b, t, 0, 0, 0] + 256 * raw[b, t, 0, 0, 1])
                assert torch.equal(raw[b, t], test_images[index])
                seen += 1
    assert seen == int(data.test.lengths.sum())


def test_batches_are_trimmed_padded_with_zeros_and_normalized(tiny_spec, cache_dir):
    data = load_digit_sums(tiny_spec.name, cache_dir, val_size=10, train_sequences=64, eval_sequences=20,
                           min_digits=1, max_digits=4)
    mean, std = 0.4, 0.25
    loader = DigitSequenceLoader(data.images.train, data.train, 8, mean=mean, std=std, shuffle=False)
    frames, lengths, targets, target_lengths = loader.batch_at(torch.arange(8))
    assert frames.shape == (8, int(lengths.max()), 1, 28, 28) and frames.dtype == torch.float32
    assert targets.shape == (8, int(target_lengths.max()))
    for b in range(8):
        n = int(lengths[b])
        assert (frames[b, n:] == 0).all()
        expected = (data.images.train.images[data.train.index[b, :n]].float() / 255 - mean) / std
        torch.testing.assert_close(frames[b, :n], expected)
    assert torch.equal(targets, data.train.targets[:8, : targets.shape[1]])


def test_loader_shards_cover_every_sequence_once(tiny_spec, cache_dir):
    data = load_digit_sums(tiny_spec.name, cache_dir, val_size=10, train_sequences=50, eval_sequences=10)
    seen = []
    for rank in range(2):
        loader = DigitSequenceLoader(data.images.train, data.train, 7, mean=0.0, std=1.0, seed=1, rank=rank,
                                     world_size=2)
        seen += loader.epoch_order(0).tolist()
    assert sorted(seen) == list(range(50))
    with pytest.raises(ConfigError, match="std"):
        DigitSequenceLoader(data.images.train, data.train, 7, mean=0.0, std=0.0)


def test_data_sets_of_other_labels_are_refused(monkeypatch, tiny_spec, cache_dir):
    spec = dataclasses.replace(tiny_spec, name="tiny-letters", classes=tuple("abcdefghij"))
    monkeypatch.setitem(DATASETS, spec.name, spec)
    with pytest.raises(DataError, match="not a data set of the digits"):
        load_digit_sums("tiny-letters", cache_dir, val_size=10)
    with pytest.raises(ConfigError, match="train_sequences"):
        load_digit_sums("tiny-letters", cache_dir, val_size=10, train_sequences=0)
