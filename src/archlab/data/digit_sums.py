"""Sequences of real digit images and the digits of their sum: a sequence-to-sequence task of unequal lengths.

Each example is ``n`` handwritten digit images (``n`` uniform in ``min_digits..max_digits``) drawn from one split
of MNIST, and its target is the decimal sum of their labels written as tokens, most significant digit first,
then ``<eos>``::

    images of 7, 3, 9, 8   →   "27"   →   tokens [2, 7, <eos>]

Input and output lengths differ and neither is known to the model in advance (2–5 frames in, 2–3 tokens out
for 2–5 digits). The sequences of a split are drawn once, deterministically from (seed, split), and stored as
index arrays into that split's images (``-1`` past a sequence's end): training sequences use training images
only, test sequences test images only, so no test digit is ever seen in training. The batch loader gathers the
frames by index, so no image is copied until it is in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from archlab.data.batches import IndexedBatchLoader
from archlab.data.splits import ImageData, TensorSplit, load_image_data
from archlab.errors import ConfigError, DataError

DIGITS = tuple("0123456789")
EOS = 10  # end of the output sequence
SOS = 11  # start symbol the decoder reads at its first step; never a target
VOCABULARY = (*DIGITS, "<eos>", "<sos>")
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # one random stream per split, so each is drawn independently


@dataclass
class DigitSequences:
    """The sequences of one split.

    ``index`` int64 [N, max_digits]: positions into the split's images, -1 past the end of a sequence;
    ``lengths`` int64 [N]: number of digits; ``targets`` int64 [N, U]: the sum's tokens, padded with ``<eos>``;
    ``target_lengths`` int64 [N]: number of target tokens, ``<eos>`` included.
    """

    index: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.lengths.shape[0])


def sum_tokens(total: int) -> list[int]:
    """The tokens of a non-negative integer: its decimal digits, most significant first, then ``<eos>``."""
    if total < 0:
        raise ValueError(f"sums of digits are non-negative, got {total}")
    return [int(char) for char in str(total)] + [EOS]


def tokens_to_text(tokens: list[int] | torch.Tensor) -> str:
    """Tokens up to the first ``<eos>`` as text (``<sos>`` shown as such); for reports and examples."""
    text = []
    for token in (tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens):
        if token == EOS:
            break
        text.append(VOCABULARY[token] if 0 <= token < len(VOCABULARY) else "?")
    return "".join(text)


def target_width(max_digits: int) -> int:
    """Tokens of the longest target: the digits of ``9 · max_digits`` plus ``<eos>``."""
    return len(str(9 * max_digits)) + 1


def make_sequences(labels: torch.Tensor, count: int, min_digits: int, max_digits: int,
                   seed: int, stream: int) -> DigitSequences:
    """``count`` sequences over the images whose labels are ``labels``, a pure function of (seed, stream)."""
    if not 1 <= min_digits <= max_digits:
        raise ConfigError(f"need 1 <= min_digits <= max_digits, got {min_digits} and {max_digits}")
    if len(labels) == 0:
        raise DataError("Cannot draw digit sequences from an empty split.")
    rng = np.random.default_rng([seed, stream])
    lengths = rng.integers(min_digits, max_digits + 1, size=count)
    index = rng.integers(0, len(labels), size=(count, max_digits))
    index[np.arange(max_digits)[None, :] >= lengths[:, None]] = -1
    index_t = torch.from_numpy(index).long()
    digits = labels.long()[index_t.clamp(min=0)].masked_fill(index_t < 0, 0)
    sums = digits.sum(dim=1).tolist()
    width = target_width(max_digits)
    targets = torch.full((count, width), EOS, dtype=torch.long)
    target_lengths = torch.empty(count, dtype=torch.long)
    for row, total in enumerate(sums):
        tokens = sum_tokens(total)
        targets[row, : len(tokens)] = torch.tensor(tokens)
        target_lengths[row] = len(tokens)
    return DigitSequences(index_t, torch.from_numpy(lengths).long(), targets, target_lengths)


@dataclass
class DigitSumData:
    """The images of a digit data set and the digit sequences drawn from each of its splits (``val`` may be None)."""

    images: ImageData
    train: DigitSequences
    val: DigitSequences | None
    test: DigitSequences
    min_digits: int
    max_digits: int

    @property
    def max_target_length(self) -> int:
        return target_width(self.max_digits)

    def split(self, name: str) -> tuple[TensorSplit, DigitSequences | None]:
        """The images and sequences of ``train``, ``val`` or ``test``."""
        return getattr(self.images, name), getattr(self, name)


def load_digit_sums(name: str = "mnist", data_dir=None, val_size: int = 5000, seed: int = 0, *,
                    min_digits: int = 2, max_digits: int = 5, train_sequences: int = 20000,
                    eval_sequences: int = 2000) -> DigitSumData:
    """Load a digit data set and draw its sequences: ``train_sequences`` from the training images,
    ``eval_sequences`` each from the validation and the test images."""
    if train_sequences < 1 or eval_sequences < 1:
        raise ConfigError(f"train_sequences and eval_sequences must be >= 1, got {train_sequences} and "
                          f"{eval_sequences}")
    images = load_image_data(name, data_dir, val_size, seed)
    if tuple(images.classes) != DIGITS:
        raise DataError(f"{name!r} is not a data set of the digits 0-9 (its classes: {', '.join(images.classes)}); "
                        "digit sums need labels that are digits, e.g. mnist.")

    def draw(split: str, count: int) -> DigitSequences:
        return make_sequences(getattr(images, split).labels, count, min_digits, max_digits, seed, SPLIT_STREAMS[split])

    val = draw("val", eval_sequences) if len(images.val) else None
    return DigitSumData(images, draw("train", train_sequences), val, draw("test", eval_sequences),
                        min_digits, max_digits)


class DigitSequenceLoader(IndexedBatchLoader):
    """Batches of digit sequences for one rank, trimmed to the longest sequence of the batch::

        frames          float32 [B, T, C, H, W]  normalized images; frames past a sequence's end are 0
        lengths         int64   [B]              digits per sequence
        targets         int64   [B, U]           the sum's tokens, padded with <eos>
        target_lengths  int64   [B]              target tokens, <eos> included
    """

    def __init__(self, split: TensorSplit, sequences: DigitSequences, batch_size: int, *, mean: float, std: float,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0,
                 device: torch.device | str | None = None, rank: int = 0, world_size: int = 1) -> None:
        if std <= 0:
            raise ConfigError(f"std must be > 0 for normalization, got {std}.")
        super().__init__(len(sequences), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         device=device, rank=rank, world_size=world_size)
        self.images = split.images.to(self.device)
        self.sequences = DigitSequences(*(tensor.to(self.device) for tensor in (
            sequences.index, sequences.lengths, sequences.targets, sequences.target_lengths)))
        self.mean, self.std = float(mean), float(std)

    def batch_at(self, index: torch.Tensor):
        """The batch of the sequences at ``index`` (positions into this split's sequences)."""
        return self._make_batch(index.to(self.device), 0)

    def _make_batch(self, index: torch.Tensor, seed: int):
        del seed  # no augmentation
        seqs = self.sequences
        lengths, target_lengths = seqs.lengths[index], seqs.target_lengths[index]
        positions = seqs.index[index, : int(lengths.max())]
        frames = self.images[positions.clamp(min=0)].float().div_(255.0).sub_(self.mean).div_(self.std)
        frames = frames * (positions >= 0).view(*positions.shape, 1, 1, 1)
        targets = seqs.targets[index, : int(target_lengths.max())]
        return frames, lengths, targets, target_lengths
