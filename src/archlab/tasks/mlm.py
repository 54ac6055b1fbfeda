"""Masked-language modelling: recover words hidden in a text from both sides of their context (BERT's pre-training).

Devlin et al. 2019, section 3.1. For each text, ``k = max(1, round(0.15 · length))`` of its real words are
selected (padding never); each selected word is replaced by ``[MASK]`` with probability 0.8, by a random word
with probability 0.1, and kept unchanged with probability 0.1. The loss is the cross-entropy at the selected
positions only::

    loss = -(1 / |S|) Σ_{(b, t) ∈ S} log p(w_{b,t} | corrupted text b)        S: the selected positions

so the model cannot learn by copying its input, yet sees real words at predicted positions (the 10% kept) as at
fine-tuning. Metrics: this masked-token loss and the accuracy of the arg-max word at the selected positions.

Data: the training split and word vocabulary that ``--task classify`` builds for the same data set and options
(``TextDataOptions``: ``max_length``, ``vocab_size``, ``min_count``, split fractions, and the run's seed), texts
only (labels unused), so a classifier fine-tuned from this run (``--init-from``) reads words with the same ids;
validation on the validation split's texts. The masking is drawn per batch from a generator seeded by the batch's
coordinates (seed, epoch, rank, batch): a resumed run masks exactly as the uninterrupted one; validation masks
depend on the texts of the batch only, so every validation pass scores the same corrupted texts.

Model contract: ``model.masked_lm(ids [B, T], lengths [B], positions [B, T] bool) -> logits [N, V]`` at the N
selected positions, and ``model.mask_token_id == V`` (the vocabulary's size: the model reserves that id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from archlab.config import TrainConfig
from archlab.data.batches import IndexedBatchLoader, batch_seed
from archlab.data.fetch import get_spec
from archlab.data.text_batches import TEXT_LOADERS, TextData, TokenSplit, load_text_data
from archlab.errors import ConfigError
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task
from archlab.tasks.classify_def import TextDataOptions

IGNORE = -100  # target of the positions that are not selected (F.cross_entropy's ignore_index)


class MaskedBatch(NamedTuple):
    """One masked-LM batch (a tuple: ``inputs`` first, so sample counters see its batch size): corrupted ``inputs [B, T]``, ``lengths [B]``, ``selected [B, T]`` bool and
    ``targets [B, T]`` (the original word where selected, ``IGNORE`` elsewhere)."""

    inputs: torch.Tensor
    lengths: torch.Tensor
    selected: torch.Tensor
    targets: torch.Tensor


def mask_tokens(ids: torch.Tensor, lengths: torch.Tensor, vocab_size: int, generator: torch.Generator, *,
                mask_fraction: float = 0.15, mask_share: float = 0.8, random_share: float = 0.1) -> MaskedBatch:
    """BERT's corruption of ``ids [B, T]`` (real words: ``t < lengths``); ``[MASK]`` is ``vocab_size``.

    Exactly ``max(1, round(mask_fraction · length))`` positions of each text are selected (uniformly, by
    ranking random scores), then split ``mask_share`` → [MASK], ``random_share`` → a random word (ids
    2 .. V-1: never <pad>/<unk>), the rest unchanged.
    """
    batch, steps = ids.shape
    real = torch.arange(steps) < lengths[:, None]
    scores = torch.rand(batch, steps, generator=generator).masked_fill(~real, 2.0)  # padding ranks last
    rank = scores.argsort(dim=1).argsort(dim=1)
    count = (lengths.double() * mask_fraction).round().long().clamp(min=1)
    selected = (rank < count[:, None]) & real
    action = torch.rand(batch, steps, generator=generator)
    to_mask = selected & (action < mask_share)
    to_random = selected & (action >= mask_share) & (action < mask_share + random_share)
    random_words = torch.randint(min(2, vocab_size - 1), vocab_size, (batch, steps), generator=generator)
    inputs = torch.where(to_mask, torch.full_like(ids, vocab_size), torch.where(to_random, random_words, ids))
    return MaskedBatch(inputs, lengths, selected, ids.masked_fill(~selected, IGNORE))


class MaskedTokenLoader(IndexedBatchLoader):
    """Texts of a ``TokenSplit`` as masked batches (cut to the batch's longest text); labels are ignored.

    ``fixed_masks``: the masks depend on the batch's texts only (validation), not on the epoch.
    """

    def __init__(self, split: TokenSplit, batch_size: int, vocab_size: int, options: "MLMOptions", *,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0, rank: int = 0,
                 world_size: int = 1, fixed_masks: bool = False) -> None:
        super().__init__(len(split), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed, rank=rank,
                         world_size=world_size, augmented=True)
        self.split, self.vocab_size, self.options, self.fixed_masks = split, vocab_size, options, fixed_masks

    def _make_batch(self, index: torch.Tensor, seed: int) -> MaskedBatch:
        if self.fixed_masks:
            seed = batch_seed(self.seed, 0, 0, int(index[0]))
        lengths = self.split.lengths[index]
        ids = self.split.ids[index, : int(lengths.max())]
        o = self.options
        return mask_tokens(ids, lengths, self.vocab_size, torch.Generator().manual_seed(seed),
                           mask_fraction=o.mask_fraction, mask_share=o.mask_share, random_share=o.random_share)


class MaskedLMTask(TaskModule):
    """Cross-entropy at the selected positions only; logs masked-token loss and accuracy."""

    def __init__(self, model: nn.Module, optim: OptimSettings) -> None:
        super().__init__(model, optim)
        self.nll = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.correct = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})

    def masked_loss(self, batch: MaskedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits ``[N, V]`` at the N selected positions, mean cross-entropy there)."""
        logits = self.model.masked_lm(batch.inputs, batch.lengths, batch.selected)
        return logits, F.cross_entropy(logits.float(), batch.targets[batch.selected])

    def training_step(self, batch: MaskedBatch, batch_idx: int) -> torch.Tensor:
        logits, loss = self.masked_loss(batch)
        metrics = {"train_loss": loss.detach()}
        total = self.penalized(loss, metrics)
        if self.should_log():
            metrics["train_accuracy"] = (logits.argmax(-1) == batch.targets[batch.selected]).float().mean()
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return total

    def _evaluate(self, stage: str, batch: MaskedBatch) -> None:
        logits, loss = self.masked_loss(batch)
        count = float(batch.selected.sum())
        self.nll[stage].update(loss.detach(), weight=count)
        self.correct[stage].update((logits.argmax(-1) == batch.targets[batch.selected]).float().mean(), weight=count)

    def _log_pass(self, stage: str) -> None:
        if self.nll[stage].update_count == 0:
            return
        values = {f"{stage}_loss": self.nll[stage].compute(), f"{stage}_accuracy": self.correct[stage].compute()}
        self.nll[stage].reset()
        self.correct[stage].reset()
        self.log_dict(values, prog_bar=stage == "val")

    def validation_step(self, batch: MaskedBatch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_pass("val")

    def test_step(self, batch: MaskedBatch, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        self._log_pass("test")


@dataclass
class MLMOptions(TextDataOptions):
    """Settings of ``--task mlm``: the text data options of ``classify`` (same vocabulary), then the masking."""

    mask_fraction: float = 0.15  # share of each text's words selected for prediction
    mask_share: float = 0.8  # of the selected: replaced by [MASK]
    random_share: float = 0.1  # of the selected: replaced by a random word (the rest stay unchanged)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.mask_fraction <= 1.0:
            raise ValueError(f"mask_fraction must be in (0, 1], got {self.mask_fraction}")
        if self.mask_share < 0 or self.random_share < 0 or self.mask_share + self.random_share > 1:
            raise ValueError("mask_share and random_share must be ≥ 0 with a sum ≤ 1, "
                             f"got {self.mask_share} and {self.random_share}")


@register_task
class MLMDef(TaskDef):
    name: ClassVar[str] = "mlm"
    data_kinds: ClassVar[tuple[str, ...]] = ("text",)
    description: ClassVar[str] = ("masked-language-model pre-training on the texts of a labelled text data set "
                                  "(labels unused); fine-tune with --task classify --init-from RUN")
    options: ClassVar[type] = MLMOptions
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    headline: ClassVar[str] = "loss"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        if config.data not in TEXT_LOADERS:
            raise ConfigError(f"--task mlm pre-trains on the texts of a labelled text data set ({', '.join(TEXT_LOADERS)}), "
                              f"and {config.data!r} ({get_spec(config.data).kind}) is not one. A running-text corpus "
                              "trains a next-character model instead: --task language.")

    def load(self, config: TrainConfig) -> TextData:
        o = self.settings(config)
        return load_text_data(config.data, config.data_dir, val_fraction=o.val_fraction, test_fraction=o.test_fraction,
                              seed=config.seed, max_length=o.max_length, vocab_size=o.vocab_size,
                              min_count=o.min_count)

    def model_args(self, config: TrainConfig, data: TextData) -> dict[str, Any]:
        return {"vocab_size": data.tokenizer.vocab_size, "num_classes": 0}  # no classifier: nothing to train it

    def loaders(self, config: TrainConfig, data: TextData, rank: int, world_size: int):
        options, vocab = self.settings(config), data.tokenizer.vocab_size
        common = {"rank": rank, "world_size": world_size, "seed": config.seed}
        train = MaskedTokenLoader(data.train, config.batch_size, vocab, options, shuffle=True,
                                  drop_last=len(data.train) > config.batch_size, **common)
        val = MaskedTokenLoader(data.val, config.eval_batch_size, vocab, options, shuffle=False, fixed_masks=True,
                                **common) if len(data.val) else None
        test = MaskedTokenLoader(data.test, config.eval_batch_size, vocab, options, shuffle=False, fixed_masks=True,
                                 seed=config.seed)
        return train, val, test

    def example_input(self, data: TextData) -> tuple[torch.Tensor, torch.Tensor]:
        """A text of the mean training length (the count includes the word logits at every position)."""
        length = int(data.train.lengths.float().mean().round().clamp_min(1))
        return torch.ones(1, length, dtype=torch.long), torch.tensor([length])

    def build(self, config: TrainConfig, data: TextData, model: nn.Module, optim: OptimSettings) -> MaskedLMTask:
        vocab = data.tokenizer.vocab_size
        if not hasattr(model, "masked_lm") or getattr(model, "mask_token_id", None) != vocab:
            raise ConfigError(f"Model {config.model!r} has no masked-LM head for a vocabulary of {vocab} words "
                              f"(needs masked_lm() and mask_token_id == {vocab}). Use --model bert.")
        return MaskedLMTask(model, optim)

    def meta(self, config: TrainConfig, data: TextData) -> dict[str, Any]:
        return {"tokenizer": data.tokenizer.to_dict(), "max_length": data.max_length, "input_kind": "text",
                "classes": list(data.classes)}
