"""Language modelling: predict the next token at every position of a text (one-to-many).

Objective, over a window of tokens ``x_1 .. x_L`` and its targets ``x_2 .. x_{L+1}``::

    loss = -(1 / L) Σ_t log p(x_{t+1} | x_1 .. x_t)            (nats per token; + l1/l2 penalties in training)
    bits per character = loss / ln 2                           (Graves 2013, "Generating Sequences With RNNs")
    perplexity         = exp(loss)

computed the same way in validation and test (there over the whole evaluation pass, each window weighted by
its number of tokens). Any model with the language-model contract fits (``models/rnn_lm.py``)::

    logits [B, T, V], state = model(tokens [B, T] int64, state=None)

Data: a corpus (a text data set with no classes) split into whole works (``data/shakespeare.py``), a
:class:`~archlab.data.text.CharTokenizer` fitted on the training text only, and

- training batches: ``windows_per_epoch`` random windows of ``context`` characters per epoch, each batch's
  starts drawn from a seed that is a pure function of (seed, epoch, rank, batch), so a resumed run sees the
  very windows the uninterrupted run would have;
- validation/test batches: fixed, non-overlapping windows of the held-out works, spread evenly over the
  text and capped at ``max_eval_windows`` so that evaluation stays quick. Every window starts from a zero
  state, so its first characters are predicted with little context: the figures are slightly pessimistic
  against a model that carries its state through the whole text.

With ``stream=true`` the text is read instead as parallel streams of consecutive ``context``-long segments
(``data/text_streams.py``): ``batch_size`` streams over the training text, ``eval_streams`` streams of
``max_eval_windows / eval_streams`` segments over each held-out text. A model that declares
``carries_memory = True`` (``transformer-xl``) then gets the state it returned for the previous batch,
detached (truncated backpropagation through time), reset to None at the start of every training epoch and of
every evaluation pass: it is trained and scored with its memory of the text before the segment. Other models
(``gpt``, whose state is a key/value cache meant for generation only) read the same consecutive segments
from a zero state.

The tokenizer goes into the run's ``meta.json`` (generation needs nothing but the run directory), and after
the test pass a few continuations of a prompt at two temperatures are written to ``samples.json``, next to
the test cross-entropy of unigram and bigram models of the training text as baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from archlab.config import TrainConfig
from archlab.data.batches import IndexedBatchLoader
from archlab.data.fetch import get_spec
from archlab.data.shakespeare import TextSplits, shakespeare_splits
from archlab.data.text import CharTokenizer, windows
from archlab.data.text_streams import EvalStreams, TrainStreams
from archlab.errors import ConfigError
from archlab.io import atomic_write_json
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task

SAMPLES = "samples.json"
LN2 = math.log(2.0)

# Data set name → its train/validation/test texts. A new corpus is one entry here (and its data module).
CORPORA: dict[str, Callable[[str | None], TextSplits]] = {"shakespeare": shakespeare_splits}


def detach_state(state: Any) -> Any:
    """``state`` (None, a tensor, or tuples/lists of them) cut from the graph that made it."""
    if state is None:
        return None
    if torch.is_tensor(state):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(part) for part in state)
    raise TypeError(f"A carried state must be tensors in tuples or lists, got {type(state).__name__}; a model with "
                    f"carries_memory = True must return its memory that way.")


class LanguageTask(TaskModule):
    """Next-token cross-entropy at every position; logs loss, bits per character, perplexity and accuracy."""

    def __init__(self, model: nn.Module, optim: OptimSettings, carry_state: bool = False) -> None:
        super().__init__(model, optim)
        # stream=true with a model that carries memory: the state of the previous batch of each stage, detached.
        self.carry_state = carry_state
        self.states: dict[str, Any] = {}
        # Token-weighted means over an evaluation pass (synchronised across processes by torchmetrics).
        self.nll = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.correct = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor],
              stage: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        tokens, targets = batch
        if self.carry_state:
            logits, state = self.model(tokens, self.states.get(stage))
            self.states[stage] = detach_state(state)  # the next segment's gradient stops here
        else:
            logits, _ = self.model(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def on_train_epoch_start(self) -> None:
        self.states.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self.states.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.states.pop("test", None)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, loss = self._loss(batch)
        metrics = {"train_loss": loss.detach(), "train_bits_per_char": loss.detach() / LN2}
        total = self.penalized(loss, metrics)
        if self.should_log():
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return total

    def _evaluate(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        logits, loss = self._loss(batch, stage)
        targets = batch[1]
        tokens = float(targets.numel())
        self.nll[stage].update(loss.detach(), weight=tokens)
        self.correct[stage].update((logits.argmax(-1) == targets).float().mean(), weight=tokens)

    def _log_pass(self, stage: str) -> None:
        if self.nll[stage].update_count == 0:  # an empty pass (e.g. a loader with no batches): nothing to log
            return
        nll, accuracy = self.nll[stage].compute(), self.correct[stage].compute()
        self.nll[stage].reset()
        self.correct[stage].reset()
        self.log_dict({f"{stage}_loss": nll, f"{stage}_bits_per_char": nll / LN2,
                       f"{stage}_perplexity": nll.exp(), f"{stage}_accuracy": accuracy}, prog_bar=stage == "val")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_pass("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        self._log_pass("test")


# --- data ------------------------------------------------------------------------------------------------


@dataclass
class LanguageData:
    """A corpus as token ids (train / validation / test) with the tokenizer fitted on its training text."""

    name: str
    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    context: int = 128  # window length of the run (for the MFLOPs of one window)


def load_corpus(name: str, data_dir: str | None = None, context: int = 128) -> LanguageData:
    """Read the corpus ``name``, fit a character tokenizer on its training text, encode the three splits."""
    if name not in CORPORA:
        raise ConfigError(f"{name!r} is not a text corpus the language task can read. Corpora: "
                          f"{', '.join(sorted(CORPORA))}.")
    splits = CORPORA[name](data_dir)
    tokenizer = CharTokenizer.fit(splits.train)
    return LanguageData(name, tokenizer, tokenizer.encode(splits.train), tokenizer.encode(splits.val),
                        tokenizer.encode(splits.test), context)


class RandomWindows(IndexedBatchLoader):
    """An epoch of ``count`` random next-token windows: batches ``(inputs [B, L], targets [B, L])`` int64.

    Each batch's window starts come from :func:`~archlab.data.text.windows` with a generator seeded by the
    batch's coordinates (seed, epoch, rank, batch), so a resumed loader yields exactly the same windows.
    """

    def __init__(self, ids: torch.Tensor, context: int, count: int, batch_size: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(count, batch_size, shuffle=False, seed=seed, device=ids.device, rank=rank,
                         world_size=world_size, augmented=True)
        self.ids, self.context = ids, context

    def _make_batch(self, index: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return windows(self.ids, self.context, len(index), generator=torch.Generator().manual_seed(seed))


class FixedWindows(IndexedBatchLoader):
    """Non-overlapping windows ``ids[s : s + L]`` → ``ids[s + 1 : s + L + 1]`` at fixed starts, in text order.

    With more windows than ``max_windows`` the kept ones are spread evenly over the text, so every held-out
    work is represented.
    """

    def __init__(self, ids: torch.Tensor, context: int, max_windows: int, batch_size: int, *, rank: int = 0,
                 world_size: int = 1) -> None:
        available = (ids.numel() - 1) // context
        if available < 1:
            raise ConfigError(f"The held-out text has {ids.numel()} characters, too few for one window of "
                              f"{context} plus a target; use a shorter context.")
        chosen = torch.linspace(0, available - 1, min(available, max_windows)).round().long()
        self.starts = chosen.unique() * context
        super().__init__(len(self.starts), batch_size, shuffle=False, device=ids.device, rank=rank,
                         world_size=world_size)
        self.ids, self.context = ids, context

    def _make_batch(self, index: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunks = self.ids[self.starts[index][:, None] + torch.arange(self.context + 1, device=self.ids.device)]
        return chunks[:, :-1], chunks[:, 1:]


def ngram_bits_per_char(data: LanguageData) -> dict[str, float]:
    """Test bits/char of add-one-smoothed unigram and bigram models of the training text (baselines)."""
    vocab = data.tokenizer.vocab_size
    train, test = data.train, data.test
    unigram = (torch.bincount(train, minlength=vocab).double() + 1).div_(train.numel() + vocab)
    pairs = torch.bincount(train[:-1] * vocab + train[1:], minlength=vocab * vocab).double().view(vocab, vocab) + 1
    bigram = pairs / pairs.sum(1, keepdim=True)
    return {"unigram": float(-unigram.log2()[test].mean()),
            "bigram": float(-bigram.log2()[test[:-1], test[1:]].mean())}


def known_prompt(data: LanguageData, prompt: str) -> str:
    """``prompt`` without the characters the tokenizer lacks (or the first training character if none is left):
    the samples written after training must never fail on a prompt that suits another corpus."""
    kept = "".join(c for c in prompt if c in set(data.tokenizer.chars))
    return kept or data.tokenizer.decode(data.train[:1])


ATTENTION = "attention.npz"
ATTENTION_LENGTH = 40  # characters of the fixed input whose attention maps the report draws


def save_attention_maps(run_dir: Path, model: nn.Module, data: LanguageData, length: int = ATTENTION_LENGTH) -> None:
    """``attention.npz``: ``maps [layers, heads, T, T]`` (float16) of ``length`` validation characters (from the
    first line start after the middle of the text: dialogue, not a title page), and their ``text``, atomically."""
    import numpy as np

    from archlab.io import atomic_path

    middle = data.val.numel() // 2
    newline = data.tokenizer.encode("\n")[0]
    after = (data.val[middle:] == newline).nonzero()
    start = min(middle + int(after[0]) + 1 if len(after) else 0, max(0, data.val.numel() - length))
    tokens = data.val[start : start + length]
    device = next(model.parameters()).device
    with torch.no_grad():
        maps = model.attention_maps(tokens.to(device)).float().cpu().numpy()
    text = data.tokenizer.decode(tokens[-maps.shape[-1]:])
    with atomic_path(run_dir / ATTENTION) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, maps=maps.astype(np.float16), text=np.array(text))


# --- wiring into a run -----------------------------------------------------------------------------------


@dataclass
class LanguageOptions:
    """Settings of the language task (``--task-arg key=value``)."""

    context: int = 128  # characters per training / evaluation window (backpropagation through time length)
    windows_per_epoch: int | None = None  # None: train characters / context (each character ~once per epoch)
    max_eval_windows: int = 256  # validation and test windows (spread over the held-out text)
    sample_prompt: str = "Romeo.\n"
    sample_length: int = 400
    sample_temperatures: tuple[float, ...] = (0.5, 1.0)
    stream: bool = False  # consecutive segments; state carried for models with carries_memory (module doc)
    eval_streams: int = 8  # with stream: parallel streams over each held-out text

    def __post_init__(self) -> None:
        self.sample_temperatures = tuple(float(t) for t in self.sample_temperatures)
        checks = [
            (self.context >= 1, f"context must be ≥ 1, got {self.context}"),
            (self.windows_per_epoch is None or self.windows_per_epoch >= 1,
             f"windows_per_epoch must be ≥ 1, got {self.windows_per_epoch}"),
            (self.max_eval_windows >= 1, f"max_eval_windows must be ≥ 1, got {self.max_eval_windows}"),
            (self.eval_streams >= 1, f"eval_streams must be ≥ 1, got {self.eval_streams}"),
            (not (self.stream and self.windows_per_epoch), "windows_per_epoch sets the random windows of an "
             "epoch; with stream=true an epoch is every segment of the streams: leave windows_per_epoch out"),
            (self.sample_length >= 0, f"sample_length must be ≥ 0, got {self.sample_length}"),
            (all(t >= 0 for t in self.sample_temperatures), "sample_temperatures must be ≥ 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@register_task
class LanguageDef(TaskDef):
    name = "language"
    data_kinds = ("text",)
    description = "next-character language model of a text corpus; generates text (archlab generate)"
    options = LanguageOptions
    monitor = ("val_loss", "min")
    headline = "bits_per_char"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        spec = get_spec(config.data)
        if spec.classes:
            raise ConfigError(
                f"{config.data!r} is a labelled text data set (classes: {', '.join(spec.classes)}); the language "
                f"task models running text and has nothing to learn from labels. Classify it with "
                f"`--task classify`, or model a corpus: {', '.join(sorted(CORPORA))}.")
        if spec.kind not in self.data_kinds or config.data not in CORPORA:
            raise ConfigError(f"The language task needs a text corpus, and {config.data!r} is a {spec.kind} data "
                              f"set. Corpora: {', '.join(sorted(CORPORA))}, e.g. `--data shakespeare`.")

    def load(self, config: TrainConfig) -> LanguageData:
        return load_corpus(config.data, config.data_dir, self.settings(config).context)

    def model_args(self, config: TrainConfig, data: LanguageData) -> dict[str, Any]:
        return {"vocab_size": data.tokenizer.vocab_size}

    def loaders(self, config: TrainConfig, data: LanguageData, rank: int, world_size: int):
        options = self.settings(config)
        if options.stream:
            train = TrainStreams(data.train, options.context, config.batch_size, rank=rank, world_size=world_size)
            val, test = (EvalStreams(ids, options.context, options.eval_streams, options.max_eval_windows,
                                     rank=rank, world_size=world_size) for ids in (data.val, data.test))
            return train, val, test
        count = options.windows_per_epoch or max(1, data.train.numel() // options.context)
        train = RandomWindows(data.train, options.context, count, config.batch_size, seed=config.seed, rank=rank,
                              world_size=world_size)
        val, test = (FixedWindows(ids, options.context, options.max_eval_windows, config.eval_batch_size,
                                  rank=rank, world_size=world_size) for ids in (data.val, data.test))
        return train, val, test

    def example_input(self, data: LanguageData) -> tuple[torch.Tensor]:
        """One window of ``context`` token ids: MFLOPs are per window of the run."""
        return (torch.zeros(1, data.context, dtype=torch.long),)

    def build(self, config: TrainConfig, data: LanguageData, model: nn.Module, optim: OptimSettings) -> LanguageTask:
        carry = self.settings(config).stream and getattr(model, "carries_memory", False)
        return LanguageTask(model, optim, carry_state=carry)

    def meta(self, config: TrainConfig, data: LanguageData) -> dict[str, Any]:
        return {"tokenizer": data.tokenizer.to_dict(), "context": self.settings(config).context}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: LanguageData, module: TaskModule) -> dict[str, Any]:
        from archlab.generation import continue_text

        options = self.settings(config)
        prompt = known_prompt(data, options.sample_prompt)
        samples = []
        for temperature in options.sample_temperatures:
            generator = torch.Generator().manual_seed(config.seed)
            text = continue_text(module.model, data.tokenizer, prompt, options.sample_length,
                                 temperature=temperature, generator=generator)
            samples.append({"temperature": temperature, "top_k": None, "seed": config.seed, "text": text})
        baselines = ngram_bits_per_char(data)
        atomic_write_json(run_dir / SAMPLES, {"prompt": prompt, "samples": samples,
                                              "baseline_bits_per_char": baselines})
        if hasattr(module.model, "attention_maps"):  # Transformers: the report draws them (report/attention.py)
            save_attention_maps(run_dir, module.model, data)
        return {"baseline_bits_per_char": baselines}
