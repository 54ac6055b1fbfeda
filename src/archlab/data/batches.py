"""Batches drawn by index from in-memory uint8 tensors: shuffled, sharded across ranks, resumable mid-epoch.

One epoch of one rank is a pure function of (seed, epoch, rank, world_size)::

    perm   = randperm(N, generator seeded with seed + epoch)        (arange(N) when shuffle=False)
    padded = perm + perm[:pad]            pad so that world_size divides the length (like DistributedSampler)
    order  = padded[rank::world_size]     disjoint shards, together covering every sample
    batch b = order[b * batch_size : (b + 1) * batch_size]
    x_b = normalize(augment(images[batch b] / 255, seed=hash(seed, epoch, rank, b)))

Because nothing depends on a running random state, resuming is just "skip the first b batches": the loader's
``state_dict`` is (epoch, batches already yielded, seed), and a new loader that loads it continues with the same
order and the same augmentation as the uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from archlab.data.splits import TensorSplit
from archlab.errors import ConfigError

Augmenter = Callable[[torch.Tensor, int], torch.Tensor]


def batch_seed(seed: int, epoch: int, rank: int, batch: int) -> int:
    """A well-mixed 32-bit seed for one batch's augmentation, from its coordinates only."""
    entropy = [value % 2**64 for value in (seed, epoch, rank, batch)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class IndexedBatchLoader:
    """Batches of ``num_items`` items drawn by index for one rank: the order, sharding and resume logic.

    Subclasses say what a batch is by overriding ``_make_batch(index, seed)`` (``index``: int64 positions on
    ``self.device``; ``seed``: the batch's augmentation seed, 0 without augmentation). ``len(loader)`` is the
    number of batches per epoch of this rank. Epoch numbering: ``set_epoch(e)`` picks epoch ``e``; otherwise
    each new ``iter()`` after a (partly) consumed epoch moves to the next epoch, and the first ``iter()`` after
    ``load_state_dict`` continues the saved epoch where it stopped.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
        augmented: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}.")
        self.num_items = num_items
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.augmented = augmented
        self._batch_size = batch_size
        self._epoch = 0
        self._position = 0  # batches of the current epoch already yielded
        self._resume = False

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch (padded shard size; all of them when world_size is 1)."""
        return math.ceil(self.num_items / self.world_size)

    @property
    def epoch(self) -> int:
        return self._epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self._batch_size
        return math.ceil(self.num_samples / self._batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch`` for the next iteration (from its start, unless it is a pending resume)."""
        if self._resume and epoch == self._epoch:
            return
        self._epoch, self._position, self._resume = epoch, 0, False

    def state_dict(self) -> dict:
        """Where the loader stands: enough for a new loader to continue the epoch exactly."""
        return {
            "epoch": self._epoch,
            "batches_done": self._position,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``: the next ``iter()`` yields the first batch not yet seen in that epoch."""
        saved_samples = state.get("num_samples", self.num_samples)
        if saved_samples != self.num_samples:
            raise ConfigError(
                f"Cannot resume the batch loader: the saved state is for {saved_samples} samples per rank, "
                f"this loader has {self.num_samples}. Resume with the same data, val_size and number of devices."
            )
        self._epoch, self._position = int(state["epoch"]), int(state["batches_done"])
        self.seed = int(state.get("seed", self.seed))
        self._resume = True

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The indices this rank visits in ``epoch``, in order (CPU int64)."""
        n = self.num_items
        if self.shuffle:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            perm = torch.arange(n)
        padded_len = self.num_samples * self.world_size
        if padded_len > n:
            repeats = math.ceil(padded_len / n)
            perm = torch.cat([perm, perm.repeat(repeats)[: padded_len - n]])
        return perm[self.rank :: self.world_size]

    def _start(self) -> int:
        """Update the epoch bookkeeping for a new iteration and return the first batch index."""
        finished = self._position >= len(self)
        if finished or (self._position > 0 and not self._resume):
            self._epoch += 1
            self._position = 0
        self._resume = False
        return self._position

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start = self._start()
        order = self.epoch_order(self._epoch).to(self.device)
        return self._batches(order, self._epoch, start)

    def _batches(self, order: torch.Tensor, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b in range(start, len(self)):
            index = order[b * self._batch_size : (b + 1) * self._batch_size]
            self._position = b + 1
            seed = batch_seed(self.seed, epoch, self.rank, b) if self.augmented else 0
            yield self._make_batch(index, seed)

    def _make_batch(self, index: torch.Tensor, seed: int):
        raise NotImplementedError


class BatchLoader(IndexedBatchLoader):
    """Iterable of ``(x float32 [B, C, H, W] normalized, y int64 [B])`` image batches for one rank."""

    def __init__(
        self,
        split: TensorSplit,
        batch_size: int,
        *,
        mean: float,
        std: float,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        augment: Augmenter | None = None,
        device: torch.device | str | None = None,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if std <= 0:
            raise ConfigError(f"std must be > 0 for normalization, got {std}.")
        super().__init__(len(split.labels), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         device=device if device is not None else split.images.device, rank=rank,
                         world_size=world_size, augmented=augment is not None)
        # Moved once: every batch is then an index into memory already on the device.
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device, torch.long)
        self.mean, self.std = float(mean), float(std)
        self.augment, self.channels_last = augment, channels_last

    def _make_batch(self, index: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index].float().div_(255.0)
        if self.augment is not None:
            x = self.augment(x, seed)
        x = x.sub_(self.mean).div_(self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]
