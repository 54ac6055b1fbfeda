"""Sequence to sequence of unequal lengths: read a sequence of digit images, write the digits of their sum.

Objective (teacher forcing, masked to the real target tokens, ``<eos>`` included)::

    loss = − (1 / Σ_b U_b) Σ_b Σ_{u < U_b} log p(y_bu | y_b<u, x_b)   (+ l1 · Σ|w| + l2 · Σ w²)

Metrics, on greedy decoding (the model feeds back its own argmax, as at inference):

    exact_match     fraction of sequences whose every target token, ``<eos>`` included, is written right
    token_accuracy  fraction of target tokens written right at their position

Chance is low: a sum of 2–5 digits is one of 46 values, not uniformly; always answering the most frequent one
(14, for uniform digits and lengths) is right about 5% of the time.

Any model with this contract fits: ``model(frames, lengths, targets) -> (logits [B, U, V], attention or None)``
and ``model.greedy_decode(frames, lengths, max_len) -> (tokens [B, L], attention [B, L, T] or None)``; the
registered one is ``td-cnn`` (``archlab.models.seq2seq``). After the test pass the task writes
``seq2seq_outputs.npz``: every test sequence's length and correctness, and the frames, predictions and
attention maps of a few examples, which the report draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from archlab.config import TrainConfig
from archlab.data.digit_sums import (
    DIGITS, EOS, SOS, VOCABULARY, DigitSequenceLoader, DigitSumData, load_digit_sums, target_width, tokens_to_text,
)
from archlab.data.fetch import DATASETS, get_spec
from archlab.errors import ConfigError
from archlab.io import atomic_path
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task
from archlab.tasks.classify_def import normalization

SEQ2SEQ_OUTPUTS = "seq2seq_outputs.npz"


def sequence_scores(predicted: torch.Tensor, targets: torch.Tensor,
                    target_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: exact match (bool [B]) and number of target tokens written right (int [B]).

    ``predicted`` [B, L] may be shorter or longer than ``targets`` [B, U]: a missing position is wrong; tokens
    after the target's ``<eos>`` do not count (decoding stops there).
    """
    width = targets.shape[1]
    if predicted.shape[1] < width:
        predicted = F.pad(predicted, (0, width - predicted.shape[1]), value=-1)
    predicted = predicted[:, :width]
    valid = torch.arange(width, device=targets.device)[None, :] < target_lengths[:, None]
    right = (predicted == targets) & valid
    return (right | ~valid).all(dim=1), right.sum(dim=1)


class Seq2SeqTask(TaskModule):
    """Masked token cross-entropy with teacher forcing; exact match and token accuracy of greedy decoding."""

    def __init__(self, model: nn.Module, optim: OptimSettings, *, max_output_len: int,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(model, optim)
        self.max_output_len, self.label_smoothing = max_output_len, label_smoothing
        self.metrics = nn.ModuleDict({f"{stage}_{name}": MeanMetric() for stage in ("val", "test")
                                      for name in ("exact_match", "token_accuracy")})
        self.test_records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
        valid = torch.arange(targets.shape[1], device=targets.device)[None, :] < target_lengths[:, None]
        labels = targets.masked_fill(~valid, -100)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100,
                               label_smoothing=label_smoothing)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        frames, lengths, targets, target_lengths = batch
        logits, _ = self.model(frames, lengths, targets)
        metrics: dict[str, torch.Tensor] = {}
        loss = self.penalized(self.loss(logits, targets, target_lengths, self.label_smoothing), metrics)
        if self.should_log():
            _, right = sequence_scores(logits.argmax(-1), targets, target_lengths)
            metrics.update({"train_loss": loss.detach(),
                            "train_token_accuracy": right.sum() / target_lengths.sum()})
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _evaluate(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        frames, lengths, targets, target_lengths = batch
        logits, _ = self.model(frames, lengths, targets)
        batch_size = frames.shape[0]
        self.log(f"{stage}_loss", self.loss(logits, targets, target_lengths), on_epoch=True,
                 batch_size=batch_size, sync_dist=True, prog_bar=stage == "val")
        predicted, _ = self.model.greedy_decode(frames, lengths, self.max_output_len)
        exact, right = sequence_scores(predicted, targets, target_lengths)
        exact_metric, token_metric = self.metrics[f"{stage}_exact_match"], self.metrics[f"{stage}_token_accuracy"]
        exact_metric.update(exact.float())
        token_metric.update(right.float() / target_lengths, weight=target_lengths.float())
        self.log(f"{stage}_exact_match", exact_metric, on_epoch=True, batch_size=batch_size, prog_bar=stage == "val")
        self.log(f"{stage}_token_accuracy", token_metric, on_epoch=True, batch_size=batch_size)
        return lengths, exact

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        lengths, exact = self._evaluate(batch, "test")
        self.test_records.append((lengths.cpu(), exact.cpu()))

    def on_test_epoch_start(self) -> None:
        self.test_records = []


@dataclass
class Seq2SeqOptions:
    """Settings of ``--task seq2seq`` (``--task-arg key=value``)."""

    min_digits: int = 2
    max_digits: int = 5
    train_sequences: int = 20000  # drawn from the training images
    eval_sequences: int = 2000  # drawn from the validation images, and as many from the test images
    max_output_len: int | None = None  # greedy decoding budget in tokens; None: the longest possible target
    examples: int = 12  # test sequences whose frames, predictions and attention maps the report shows

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"need 1 ≤ min_digits ≤ max_digits, got {self.min_digits} and {self.max_digits}")
        if min(self.train_sequences, self.eval_sequences) < 1 or self.examples < 0:
            raise ValueError("train_sequences and eval_sequences must be ≥ 1, examples ≥ 0")
        if self.max_output_len is not None and self.max_output_len < 1:
            raise ValueError(f"max_output_len must be ≥ 1 or None, got {self.max_output_len}")

    @property
    def output_len(self) -> int:
        return self.max_output_len or target_width(self.max_digits)


def _normalization(config: TrainConfig, data: DigitSumData) -> tuple[float, float]:
    """The classify task's rule (the config's values, else the training images' own statistics)."""
    return normalization(config, data.images)


@register_task
class Seq2SeqDef(TaskDef):
    name: ClassVar[str] = "seq2seq"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    description: ClassVar[str] = ("many-to-many, unequal lengths: 2–5 digit images → the digits of their sum "
                                  "(exact match, token accuracy, attention maps)")
    options: ClassVar[type] = Seq2SeqOptions
    monitor: ClassVar[tuple[str, str]] = ("val_exact_match", "max")
    headline: ClassVar[str] = "exact_match"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        if tuple(get_spec(config.data).classes) != DIGITS:
            digit_sets = ", ".join(name for name, spec in DATASETS.items() if tuple(spec.classes) == DIGITS)
            raise ConfigError(f"--task seq2seq sums handwritten digits, so it needs a data set of digit images "
                              f"labelled 0-9 ({digit_sets}); {config.data!r} is not one. Use --data mnist.")

    def load(self, config: TrainConfig) -> DigitSumData:
        o = self.settings(config)
        return load_digit_sums(config.data, config.data_dir, config.val_size, config.seed,
                               min_digits=o.min_digits, max_digits=o.max_digits,
                               train_sequences=o.train_sequences, eval_sequences=o.eval_sequences)

    def model_args(self, config: TrainConfig, data: DigitSumData) -> dict[str, Any]:
        _, channels, height, _ = data.images.train.images.shape
        return {"vocab_size": len(VOCABULARY), "sos_token": SOS, "eos_token": EOS, "in_channels": channels,
                "input_size": height, "max_output_len": self.settings(config).output_len}

    def loaders(self, config: TrainConfig, data: DigitSumData, rank: int, world_size: int):
        mean, std = _normalization(config, data)
        common = {"mean": mean, "std": std}
        drop_last = len(data.train) > config.batch_size
        train = DigitSequenceLoader(data.images.train, data.train, config.batch_size, shuffle=True,
                                    drop_last=drop_last, seed=config.seed, rank=rank, world_size=world_size, **common)
        val = DigitSequenceLoader(data.images.val, data.val, config.eval_batch_size, shuffle=False, rank=rank,
                                  world_size=world_size, **common) if data.val is not None else None
        test = DigitSequenceLoader(data.images.test, data.test, config.eval_batch_size, shuffle=False, **common)
        return train, val, test

    def example_input(self, data: DigitSumData) -> tuple[torch.Tensor, ...]:
        """One sequence of the mean length with a target of the longest length (for MFLOPs per sequence)."""
        steps = round((data.min_digits + data.max_digits) / 2)
        frames = torch.zeros(1, steps, *data.images.train.images.shape[1:])
        return frames, torch.tensor([steps]), torch.zeros(1, data.max_target_length, dtype=torch.long)

    def build(self, config: TrainConfig, data: DigitSumData, model: nn.Module, optim: OptimSettings) -> Seq2SeqTask:
        return Seq2SeqTask(model, optim, max_output_len=self.settings(config).output_len,
                           label_smoothing=config.label_smoothing)

    def meta(self, config: TrainConfig, data: DigitSumData) -> dict[str, Any]:
        mean, std = _normalization(config, data)
        return {"normalization": {"mean": mean, "std": std}, "vocabulary": list(VOCABULARY),
                "sos_token": SOS, "eos_token": EOS, "min_digits": data.min_digits, "max_digits": data.max_digits,
                "input_shape": [data.max_digits, *data.images.train.images.shape[1:]], "input_kind": "image-sequence"}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: DigitSumData, module: Seq2SeqTask) -> dict[str, Any]:
        if not module.test_records:
            return {}
        lengths = torch.cat([lengths for lengths, _ in module.test_records]).numpy()
        correct = torch.cat([exact for _, exact in module.test_records]).numpy()
        by_length = {str(n): float(correct[lengths == n].mean()) for n in np.unique(lengths)}
        arrays = {"lengths": lengths, "correct": correct, "vocabulary": np.array(VOCABULARY)}
        arrays.update(example_arrays(config, data, module, self.settings(config)))
        with atomic_path(Path(run_dir) / SEQ2SEQ_OUTPUTS) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return {"exact_match_by_length": by_length}


def pick_examples(lengths: torch.Tensor, count: int) -> torch.Tensor:
    """The first test sequences of each length in turn (shortest first), ``count`` in all."""
    per_length = [torch.nonzero(lengths == n).flatten() for n in torch.unique(lengths)]
    chosen, rank = [], 0
    while len(chosen) < min(count, len(lengths)):
        chosen += [group[rank] for group in per_length if rank < len(group)][: count - len(chosen)]
        rank += 1
    return torch.stack(chosen) if chosen else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def example_arrays(config: TrainConfig, data: DigitSumData, module: Seq2SeqTask,
                   options: Seq2SeqOptions) -> dict[str, np.ndarray]:
    """Frames (uint8), digits, targets, greedy predictions and attention maps of a few test sequences."""
    if options.examples == 0:
        return {}
    index = pick_examples(data.test.lengths, options.examples)
    mean, std = _normalization(config, data)
    loader = DigitSequenceLoader(data.images.test, data.test, len(index), mean=mean, std=std, shuffle=False)
    frames, lengths, targets, target_lengths = loader.batch_at(index)
    model = module.model
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        tokens, attention = model.greedy_decode(frames.to(device), lengths.to(device), module.max_output_len)
    finally:
        model.train(was_training)
    positions = data.test.index[index, : frames.shape[1]]
    images = data.images.test.images[positions.clamp(min=0)][:, :, 0] * (positions >= 0)[..., None, None]
    digits = data.images.test.labels[positions.clamp(min=0)].masked_fill(positions < 0, -1)
    arrays = {"example_frames": images.numpy().astype(np.uint8), "example_lengths": lengths.numpy(),
              "example_digits": digits.numpy(), "example_targets": targets.numpy(),
              "example_target_lengths": target_lengths.numpy(), "example_tokens": tokens.cpu().numpy(),
              "example_predictions": np.array([tokens_to_text(row) for row in tokens.cpu()])}
    if attention is not None:
        arrays["example_attention"] = attention.float().cpu().numpy()
    return arrays
