"""Labelled texts as padded token batches: stratified splits, a vocabulary fitted on training text only.

``load_text_data`` reads a labelled text data set (SpamAssassin), splits it train / validation / test
stratified by class (``spam.stratified_split``), fits a ``WordTokenizer`` on the training texts alone, and
encodes every text once to ``ids`` int64 ``[N, L]`` (right-padded with ``<pad>`` = 0, cut after
``max_length`` words) and ``lengths`` ``[N]``. ``TokenBatchLoader`` serves ``((ids [B, T], lengths [B]),
labels [B])`` with T the batch's own longest text, so a batch of short e-mails is not padded to the longest
e-mail of the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archlab.data.batches import IndexedBatchLoader
from archlab.data.fetch import get_spec
from archlab.data.spam import NAME as SPAM, load_spam, stratified_split
from archlab.data.text import WordTokenizer
from archlab.errors import ConfigError

# Labelled text data sets: name → loader returning (texts, int64 labels).
TEXT_LOADERS = {SPAM: load_spam}


@dataclass
class TokenSplit:
    """One split of encoded texts: ``ids`` int64 [N, L] right-padded, ``lengths`` [N] (≥ 1), ``labels`` [N]."""

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TextData:
    """Three encoded splits, the class names, the fitted tokenizer, and the raw test texts (for the report)."""

    name: str
    train: TokenSplit
    val: TokenSplit
    test: TokenSplit
    classes: tuple[str, ...]
    tokenizer: WordTokenizer
    max_length: int
    test_texts: list[str]


def encode(tokenizer: WordTokenizer, texts: list[str], labels: torch.Tensor, max_length: int) -> TokenSplit:
    ids, lengths = tokenizer.encode_batch(texts, max_length)
    # An empty text (no word at all) is read as one <pad> step: packing refuses length 0.
    return TokenSplit(ids, lengths.clamp_min(1), labels)


def load_text_data(name: str, data_dir: str | Path | None = None, *, val_fraction: float = 0.1,
                   test_fraction: float = 0.2, seed: int = 0, max_length: int = 400, vocab_size: int = 20000,
                   min_count: int = 2) -> TextData:
    """The labelled text data set ``name`` as encoded stratified splits (vocabulary from training text only)."""
    if name not in TEXT_LOADERS:
        raise ConfigError(f"{name!r} is not a labelled text data set; these are: {', '.join(TEXT_LOADERS)}.")
    texts, labels = TEXT_LOADERS[name](data_dir)
    # The corpus lists all ham before all spam: each part is shuffled (seeded) so any prefix of it, such as the
    # sequences the hidden-state monitor draws, holds both classes.
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(part) for part in stratified_split(labels, val_fraction, test_fraction, seed)]
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    train_texts = [texts[i] for i in parts[0]]
    tokenizer = WordTokenizer.fit(train_texts, max_size=vocab_size, min_count=min_count)
    splits = [encode(tokenizer, [texts[i] for i in part], labels_t[torch.as_tensor(part)], max_length)
              for part in parts]
    return TextData(name, *splits, tuple(get_spec(name).classes), tokenizer, max_length,
                    [texts[i] for i in parts[2]])


class TokenBatchLoader(IndexedBatchLoader):
    """``((ids [B, T], lengths [B]), labels [B])`` batches, T = the longest text of the batch."""

    def __init__(self, split: TokenSplit, batch_size: int, *, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(split), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         rank=rank, world_size=world_size)
        self.split = split

    def _make_batch(self, index: torch.Tensor, seed: int):
        lengths = self.split.lengths[index]
        longest = int(lengths.max()) if len(lengths) else 1
        return (self.split.ids[index, :longest], lengths), self.split.labels[index]
