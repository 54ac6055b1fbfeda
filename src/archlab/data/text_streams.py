"""A text read as parallel streams of consecutive segments, for language models that carry a memory.

A model with a state that outlives a window (Transformer-XL's segment memory, an RNN's hidden state) learns
and is scored on *consecutive* segments: batch ``c`` holds segment ``c`` of each of ``S`` streams, so the state
left by batch ``c`` is the right context of batch ``c + 1``, row by row::

    stream s covers ids[start_s : start_s + n·L + 1]
    batch c = (ids[start_s + c·L : start_s + (c+1)·L],  ids[start_s + c·L + 1 : start_s + (c+1)·L + 1])  for every s

- :class:`TrainStreams` cuts the training text into ``S · world_size`` equal streams (the remainder at the end
  is dropped); an epoch is every segment of them in order, the same every epoch (like the ordered iterator
  of Dai et al. 2019); the language task resets the state at each epoch start.
- :class:`EvalStreams` reads ``S`` streams of ``n`` consecutive segments spread evenly over the held-out text,
  ``n = max_segments // S`` (fewer when the text is short); the streams never overlap, so no character is
  scored twice. The state is reset at the start of each evaluation pass, so only the first segment of each
  stream is predicted without memory.

Like every loader of the project the order is a pure function of the epoch, so a resumed run sees the same
batches (the carried state is not saved: a resumed run restarts it from zero, as at an epoch start).
"""

from __future__ import annotations

import torch

from archlab.data.batches import IndexedBatchLoader
from archlab.errors import ConfigError


class _Streams(IndexedBatchLoader):
    """Batch ``c`` = segment ``c`` of every stream starting at ``self.starts`` (one index per batch, in order)."""

    def __init__(self, ids: torch.Tensor, context: int, starts: torch.Tensor, segments: int) -> None:
        # The base class orders the segments: never shuffled, one segment index per batch.
        super().__init__(segments, 1, shuffle=False, device=ids.device)
        self.ids, self.context, self.starts = ids, context, starts.to(ids.device)
        self.offsets = torch.arange(context + 1, device=ids.device)

    @property
    def streams(self) -> int:
        return int(self.starts.numel())

    def _make_batch(self, index: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.starts[:, None] + int(index[0]) * self.context
        chunk = self.ids[first + self.offsets]
        return chunk[:, :-1], chunk[:, 1:]


class TrainStreams(_Streams):
    """``streams`` streams per rank over the whole training text; ``len()`` = segments per stream."""

    def __init__(self, ids: torch.Tensor, context: int, streams: int, *, rank: int = 0, world_size: int = 1) -> None:
        total = streams * world_size
        length = (ids.numel() - 1) // total if total else 0
        segments = length // context if context >= 1 else 0
        if segments < 1:
            raise ConfigError(f"Streaming needs at least one segment of {context} characters in each of {total} "
                              f"streams, but the training text has {ids.numel()} characters. Use a smaller "
                              f"batch_size (= streams) or context.")
        starts = (rank * streams + torch.arange(streams)) * length
        super().__init__(ids, context, starts, segments)


class EvalStreams(_Streams):
    """Up to ``streams`` non-overlapping streams of consecutive segments spread over held-out text."""

    def __init__(self, ids: torch.Tensor, context: int, streams: int, max_segments: int, *, rank: int = 0,
                 world_size: int = 1) -> None:
        available = (ids.numel() - 1) // context
        if available < 1:
            raise ConfigError(f"The held-out text has {ids.numel()} characters, too few for one segment of "
                              f"{context} plus a target; use a shorter context.")
        streams = max(1, min(streams, available, max_segments))
        segments = max(1, min(max_segments // streams, available // streams))
        spacing = (ids.numel() - 1) // streams  # ≥ segments · context: the streams never overlap
        starts = (torch.arange(streams) * spacing)[rank::world_size]
        if starts.numel() == 0:
            raise ConfigError(f"{streams} evaluation stream(s) cannot be shared among {world_size} processes; "
                              f"raise eval_streams to at least {world_size}.")
        super().__init__(ids, context, starts, segments)
