"""Batches of a series for a many-to-many forecaster: shuffled sliding windows, or consecutive chunks.

Every batch is a :class:`SeriesBatch` whose step ``i`` of a sequence pairs the input ``x[p]`` (all features,
scaled) with the targets ``y[p+1 .. p+H]`` (the target column, scaled), ``p`` being the series position of
step ``i``. A target is used only if it lies inside the part the batch serves (train, val or test), so the
values of a later part never reach an earlier part's loss. Three loaders:

* :class:`WindowLoader` -- windows ``x[t-L .. t-1]`` of the origins ``t`` of ``window_origins`` (the last
  step forecasts ``y[t .. t+H-1]``, the window's targets), shuffled for training. For evaluation only the
  last step is *scored* (the forecast made at the origin, as a user would make it).
* :class:`StreamLoader` -- stateful training: the training part cut into ``B`` contiguous streams, each
  batch the next ``L`` steps of every stream, in order, so a state carried from batch to batch continues
  the same streams. ``start`` is True on the first chunk of an epoch: the state must be reset there (the
  streams begin anew). Rank ``r`` of ``W`` processes takes streams ``r·B .. (r+1)·B - 1`` of ``W·B``.
* :func:`full_series_batch` -- stateful evaluation: one sequence from the first value up to the part's
  end, the steps whose targets lie in the part scored (each forecast read off after the whole history).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from archlab.data.batches import IndexedBatchLoader
from archlab.data.temporal import window_origins
from archlab.errors import ConfigError


class SeriesBatch(NamedTuple):
    """``inputs`` [B, L, F]; ``targets``, ``observed`` (False: a filled value or outside the part) and
    ``scored`` (a forecast the metrics count) [B, L, H]; ``start``: a new sequence begins (reset the state)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    observed: torch.Tensor
    scored: torch.Tensor
    start: bool


class SeriesArrays:
    """A scaled series and what every loader reads from it: ``values`` [T, F], its target column and mask."""

    def __init__(self, values: np.ndarray, observed: np.ndarray, target_index: int, horizon: int) -> None:
        if values.ndim != 2 or observed.shape != values.shape[:1]:
            raise ConfigError(f"values must be [T, F] and observed [T], got {values.shape} and {observed.shape}.")
        self.values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        self.target = self.values[:, target_index].contiguous()
        self.observed = torch.as_tensor(np.asarray(observed, dtype=bool))
        self.horizon = horizon
        self.leads = torch.arange(1, horizon + 1)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def sequences(self, positions: torch.Tensor, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs [..., F], targets and observed [..., H] at ``positions`` (any shape); targets at or after
        ``stop`` are masked out (observed False, value 0) so they never leak into this part."""
        index = positions.unsqueeze(-1) + self.leads  # [..., H]: p+1 .. p+H
        inside = index < stop
        safe = index.clamp(max=len(self) - 1)
        targets = torch.where(inside, self.target[safe], torch.zeros(()))
        return self.values[positions], targets, self.observed[safe] & inside


class WindowLoader(IndexedBatchLoader):
    """Sliding windows of ``input_length`` steps whose last step's targets lie in ``part``; one item = one origin."""

    def __init__(
        self,
        arrays: SeriesArrays,
        part: range,
        input_length: int,
        batch_size: int,
        *,
        stride: int = 1,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.origins = torch.as_tensor(window_origins(input_length, arrays.horizon, part.start, part.stop, stride))
        if self.origins.numel() == 0:
            raise ConfigError(
                f"The part [{part.start}, {part.stop}) of the series holds no window of {input_length} inputs and "
                f"{arrays.horizon} targets; use a shorter window or horizon, or a larger fraction for this part."
            )
        super().__init__(int(self.origins.numel()), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         rank=rank, world_size=world_size)
        self.arrays, self.part, self.input_length = arrays, part, input_length
        self.steps = torch.arange(-input_length, 0)

    def _make_batch(self, index: torch.Tensor, seed: int) -> SeriesBatch:
        positions = self.origins[index].unsqueeze(1) + self.steps  # [B, L]: t-L .. t-1
        inputs, targets, observed = self.arrays.sequences(positions, self.part.stop)
        scored = torch.zeros_like(observed)
        scored[:, -1] = observed[:, -1]
        return SeriesBatch(inputs, targets, observed, scored, True)


class StreamLoader(IndexedBatchLoader):
    """Consecutive chunks of ``streams`` parallel, contiguous streams over ``[0, part.stop)`` (stateful training).

    The positions whose every target lies in the part, ``0 .. part.stop - H - 1``, are cut into
    ``streams · world_size`` equal streams (the remainder at the end is dropped); one epoch yields
    ``floor(stream length / chunk)`` batches, the ``c``-th holding steps ``c·chunk .. (c+1)·chunk - 1`` of each.
    """

    def __init__(
        self,
        arrays: SeriesArrays,
        part: range,
        chunk: int,
        streams: int,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        usable = part.stop - arrays.horizon
        total_streams = streams * world_size
        self.stream_length = usable // total_streams if total_streams else 0
        chunks = self.stream_length // chunk if chunk >= 1 else 0
        if chunks < 1:
            raise ConfigError(
                f"Stateful training needs at least one chunk of {chunk} steps in each of {total_streams} streams, "
                f"but the training part has {max(usable, 0)} usable steps. Use a smaller batch_size (= streams) or "
                f"window (= chunk length)."
            )
        # The base class orders the chunks: never shuffled, one chunk index per batch, the same on every rank.
        super().__init__(chunks, 1, shuffle=False)
        self.arrays, self.part, self.chunk = arrays, part, chunk
        first = (rank * streams + torch.arange(streams)) * self.stream_length
        self.starts = first.unsqueeze(1) + torch.arange(chunk)  # [B, chunk]: steps of chunk 0

    @property
    def streams(self) -> int:
        return int(self.starts.shape[0])

    def _make_batch(self, index: torch.Tensor, seed: int) -> SeriesBatch:
        chunk_index = int(index[0])
        positions = self.starts + chunk_index * self.chunk
        inputs, targets, observed = self.arrays.sequences(positions, self.part.stop)
        return SeriesBatch(inputs, targets, observed, torch.zeros_like(observed), chunk_index == 0)


def full_series_batch(arrays: SeriesArrays, part: range) -> SeriesBatch:
    """One sequence over positions ``0 .. part.stop - H - 1``; scored where a forecast's origin is in the part.

    The forecast made at position ``p`` has origin ``p + 1``; it is scored when ``part.start <= p + 1`` and its
    last target ``p + H`` is before ``part.stop`` -- the origins of ``window_origins`` for this part.
    """
    positions = torch.arange(0, part.stop - arrays.horizon).unsqueeze(0)
    inputs, targets, observed = arrays.sequences(positions, part.stop)
    scored = observed & (positions + 1 >= part.start).unsqueeze(-1)
    if not scored.any():
        raise ConfigError(f"The part [{part.start}, {part.stop}) is too short for one forecast of horizon "
                          f"{arrays.horizon}.")
    return SeriesBatch(inputs, targets, observed, scored, True)


class OneBatch:
    """A loader of exactly one batch (the whole series, for stateful evaluation)."""

    def __init__(self, batch: SeriesBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch
