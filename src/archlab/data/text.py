"""Text as integers: character and word tokenizers, and random next-token windows for language models.

A tokenizer is *fitted on the training split only*: a character or word that appears only in validation or test
text maps to ``<unk>``, exactly as an unseen one would at prediction time, so no held-out text leaks into the
vocabulary. A tokenizer is its vocabulary; ``to_dict()`` gives it as plain JSON (for a run's ``meta.json``) and
``from_dict()`` rebuilds an equal one, so a trained model never needs the data folder again.

- :class:`CharTokenizer` -- ids ``0 = <unk>``, then the training characters sorted by code point. Encoding is
  vectorized (code points -> ``searchsorted`` in the sorted vocabulary), so a 5 MB corpus encodes in well under a
  second. ``decode(encode(s)) == s`` for every ``s`` made of training characters.
- :class:`WordTokenizer` -- ids ``0 = <pad>``, ``1 = <unk>``, then words by descending training count (ties
  alphabetical). Words are found by :data:`WORD_PATTERN`. Decoding joins words with spaces, so it recovers the
  tokens, not the original spacing or case.
- :func:`windows` -- ``count`` random windows of a corpus held as one integer tensor: inputs ``ids[s : s + L]``
  and targets ``ids[s + 1 : s + L + 1]`` (the next token at each position), gathered by index in one step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from archlab.errors import ConfigError, DataError

UNK = "<unk>"
PAD = "<pad>"
UNK_CHAR = "\ufffd"  # what decode() writes for the <unk> id of a character tokenizer: the replacement character

# A word is a run of letters/digits/underscores, possibly with inner apostrophes ("don't", "o'clock"); every
# other non-space character (punctuation, symbols) is a token of its own; whitespace only separates.
WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def _check_kind(data: dict, kind: str) -> None:
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise DataError(f"This is not a stored {kind} tokenizer (kind {found!r}); the run's metadata is damaged.")


def _code_points(text: str) -> np.ndarray:
    """The Unicode code points of ``text`` as an int64 array, without a Python-level loop."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4").astype(np.int64)


@dataclass(frozen=True)
class CharTokenizer:
    """Character-level vocabulary: id 0 is ``<unk>``, id ``i >= 1`` is ``chars[i - 1]``."""

    chars: tuple[str, ...]
    _points: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(len(c) != 1 for c in self.chars) or list(self.chars) != sorted(set(self.chars)):
            raise DataError("A character vocabulary must hold distinct single characters in sorted order.")
        object.__setattr__(self, "_points", np.array([ord(c) for c in self.chars], dtype=np.int64))

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """The vocabulary of the distinct characters of ``text`` (pass the training split only)."""
        return cls(tuple(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    @property
    def unk_id(self) -> int:
        return 0

    def encode(self, text: str) -> torch.Tensor:
        """int64 ids of the characters of ``text``; characters outside the vocabulary become ``<unk>`` (0)."""
        points = _code_points(text)
        if not len(self.chars):
            return torch.zeros(len(points), dtype=torch.long)
        position = np.searchsorted(self._points, points).clip(max=len(self._points) - 1)
        known = self._points[position] == points
        return torch.from_numpy(np.where(known, position + 1, 0))

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text of ``ids``; ``<unk>`` becomes U+FFFD, the replacement character."""
        table = np.array([UNK_CHAR, *self.chars], dtype=object)
        index = torch.as_tensor(ids, dtype=torch.long).cpu().reshape(-1).numpy()
        if index.size and (index.min() < 0 or index.max() >= len(table)):
            raise DataError(f"Character ids must lie in [0, {len(table)}); got {index.min()}..{index.max()}.")
        return "".join(table[index])

    def to_dict(self) -> dict:
        """Plain JSON-able form: ``{"kind": "char", "chars": [...]}``."""
        return {"kind": "char", "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, data: dict) -> CharTokenizer:
        _check_kind(data, "char")
        return cls(tuple(data["chars"]))


def split_words(text: str, lowercase: bool = True) -> list[str]:
    """The tokens of ``text`` by :data:`WORD_PATTERN`, lower-cased first if ``lowercase``."""
    return WORD_PATTERN.findall(text.lower() if lowercase else text)


@dataclass(frozen=True)
class WordTokenizer:
    """Word-level vocabulary: ``words[0] = <pad>``, ``words[1] = <unk>``, then the kept words by frequency."""

    words: tuple[str, ...]
    lowercase: bool = True
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != (PAD, UNK) or len(set(self.words)) != len(self.words):
            raise DataError(f"A word vocabulary must start with {PAD}, {UNK} and hold distinct words.")
        object.__setattr__(self, "_index", {word: i for i, word in enumerate(self.words)})

    @classmethod
    def fit(
        cls, texts: Iterable[str], max_size: int = 20000, min_count: int = 2, lowercase: bool = True
    ) -> WordTokenizer:
        """Count the words of ``texts`` (the training split only) and keep the frequent ones.

        ``max_size`` bounds the whole vocabulary, the two special tokens included; words seen fewer than
        ``min_count`` times are dropped. Order: descending count, ties broken alphabetically, so the same
        texts always give the same ids.
        """
        if max_size < 2 or min_count < 1:
            raise ConfigError(f"max_size must be >= 2 and min_count >= 1, got {max_size} and {min_count}.")
        counts = Counter()
        for text in texts:
            counts.update(split_words(text, lowercase))
        ranked = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls((PAD, UNK, *ranked[: max_size - 2]), lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def _ids(self, text: str, max_length: int | None) -> list[int]:
        tokens = split_words(text, self.lowercase)[:max_length]
        return [self._index.get(token, 1) for token in tokens]

    def encode(self, text: str, max_length: int | None = None) -> torch.Tensor:
        """int64 ids of the words of ``text``, unknown words as ``<unk>`` (1), cut after ``max_length`` tokens."""
        return torch.tensor(self._ids(text, max_length), dtype=torch.long)

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids`` int64 [B, T] right-padded with ``<pad>`` (0), and ``lengths`` int64 [B], in input order.

        Each text is truncated to ``max_length`` tokens; T is the longest (truncated) length, at least 1 so the
        tensor is never empty. The rows are *not* sorted by length: use
        ``pack_padded_sequence(..., lengths, batch_first=True, enforce_sorted=False)``. An empty text has
        length 0, which packing refuses; clamp the lengths to 1 there.
        """
        rows = [self._ids(text, max_length) for text in texts]
        lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
        ids = torch.zeros(len(rows), max(1, max(map(len, rows), default=0)), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, lengths

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The words of ``ids`` joined by single spaces; ``<pad>`` ids are skipped."""
        index = torch.as_tensor(ids, dtype=torch.long).cpu().reshape(-1).tolist()
        if index and (min(index) < 0 or max(index) >= len(self.words)):
            raise DataError(f"Word ids must lie in [0, {len(self.words)}); got {min(index)}..{max(index)}.")
        return " ".join(self.words[i] for i in index if i != 0)

    def to_dict(self) -> dict:
        """Plain JSON-able form: ``{"kind": "word", "lowercase": ..., "words": [...]}``."""
        return {"kind": "word", "lowercase": self.lowercase, "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: dict) -> WordTokenizer:
        _check_kind(data, "word")
        return cls(tuple(data["words"]), bool(data["lowercase"]))


def windows(
    corpus_ids: torch.Tensor, length: int, count: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random language-model windows of ``length`` tokens from one 1-d id tensor.

    Starts ``s`` are uniform over every position that leaves room for a target, ``0 <= s <= N - length - 1``;
    returns ``inputs = ids[s : s + length]`` and ``targets = ids[s + 1 : s + length + 1]``, both [count, length],
    on the corpus's device. Drawing by index (no copies of the corpus, no Python loop) keeps LM batching cheap.
    """
    if corpus_ids.dim() != 1:
        raise ConfigError(f"windows() needs a 1-d tensor of token ids, got shape {tuple(corpus_ids.shape)}.")
    if length < 1 or count < 1:
        raise ConfigError(f"Window length and count must be >= 1, got {length} and {count}.")
    if corpus_ids.numel() <= length:
        raise ConfigError(
            f"The corpus has {corpus_ids.numel()} tokens, too few for windows of {length} plus a target; "
            f"use a shorter context length."
        )
    device = generator.device if generator is not None else torch.device("cpu")
    starts = torch.randint(corpus_ids.numel() - length, (count,), generator=generator, device=device)
    offsets = torch.arange(length + 1, device=corpus_ids.device)
    chunks = corpus_ids[starts.to(corpus_ids.device)[:, None] + offsets]
    return chunks[:, :-1], chunks[:, 1:]
