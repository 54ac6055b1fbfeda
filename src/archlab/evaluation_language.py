"""``archlab eval`` for a language-model run: validation and test cross-entropy recomputed from the saved weights.

For the held-out works of the run's corpus, encoded with the run's own tokenizer (``meta.json``), over the same
windows the training run was scored on (``tasks/language.py``): non-overlapping windows of ``context``
characters, at most ``max_eval_windows`` spread evenly over the text, each started from an empty state; or, for
a run trained with ``stream=true`` by a model that carries memory (``transformer-xl``), the same parallel
streams of consecutive segments, each segment read with the memory of the segments before it::

    loss            = -(1 / N) Σ log p(x_{t+1} | x_≤t)   nats per character, token-weighted over all windows
    bits per char   = loss / ln 2
    perplexity      = exp(loss)

Nothing but the run directory and the corpus (re-read from the data cache) is needed. The test figures
replace ``test_metrics`` in ``summary.json``, like the image classifiers' ``eval``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from archlab.errors import RunError
from archlab.generation import tokenizer_from_meta
from archlab.io import atomic_write_json
from archlab.runs import CONFIG, SUMMARY, LoadedModel, read_json
from archlab.data.text_streams import EvalStreams
from archlab.tasks.language import CORPORA, FixedWindows, LanguageOptions, detach_state

EVAL_BATCH = 256


def _options(run_dir: Path, meta: dict[str, Any]) -> LanguageOptions:
    """The run's language-task settings (``config.yaml``), the context taken from ``meta.json``."""
    path = run_dir / CONFIG
    task_args = (yaml.safe_load(path.read_text()) or {}).get("task_args", {}) if path.is_file() else {}
    return LanguageOptions(**{**task_args, "context": meta.get("context", task_args.get("context", 128))})


@torch.inference_mode()
def window_loss(model: torch.nn.Module, loader: FixedWindows | EvalStreams, carry_state: bool = False) -> dict[str, float]:
    """Token-weighted mean next-token cross-entropy (nats) and accuracy over every window of ``loader``.

    ``carry_state``: each batch continues the previous one (streams), so the state the model returned is
    passed back in, as in training.
    """
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0.0, 0
    state = None
    for inputs, targets in loader:
        if carry_state:
            logits, state = model(inputs.to(device), state)
            state = detach_state(state)
        else:
            logits, _ = model(inputs.to(device))
        logits, targets = logits.float().flatten(0, 1), targets.to(device).flatten()
        total += float(F.cross_entropy(logits, targets, reduction="sum"))
        correct += float((logits.argmax(-1) == targets).sum())
        count += targets.numel()
    loss = total / count
    return {"loss": loss, "bits_per_char": loss / math.log(2), "perplexity": math.exp(loss),
            "accuracy": correct / count}


def evaluate_language(run_dir: Path, loaded: LoadedModel, data_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"val": {...}, "test": {...}}``: loss (nats), bits per character, perplexity and accuracy per split."""
    meta = loaded.meta
    tokenizer = tokenizer_from_meta(meta, run_dir)
    corpus = meta.get("data")
    if corpus not in CORPORA:
        raise RunError(f"{run_dir} was trained on {corpus!r}, which is not a corpus archlab can re-read "
                       f"({', '.join(sorted(CORPORA))}).")
    splits = CORPORA[corpus](None if data_dir is None else str(data_dir))
    options = _options(run_dir, meta)
    loaded.model.eval()
    carry = options.stream and getattr(loaded.model, "carries_memory", False)
    results = {}
    for stage, text in (("val", splits.val), ("test", splits.test)):
        ids = tokenizer.encode(text)
        loader = (EvalStreams(ids, options.context, options.eval_streams, options.max_eval_windows) if carry
                  else FixedWindows(ids, options.context, options.max_eval_windows, EVAL_BATCH))
        results[stage] = window_loss(loaded.model, loader, carry_state=carry)
    summary_path = run_dir / SUMMARY
    summary = read_json(summary_path, "") if summary_path.is_file() else {"model": meta["model"]}
    summary["test_metrics"] = {**(summary.get("test_metrics") or {}), **results["test"]}
    atomic_write_json(summary_path, summary)
    return results


def describe_language(metrics: dict[str, Any]) -> list[str]:
    """One line per split: loss in nats and bits per character."""
    return [f"{stage} loss {values['loss']:.4f} nats/char = {values['bits_per_char']:.4f} bits/char "
            f"(perplexity {values['perplexity']:.2f}, next-char accuracy {values['accuracy']:.3f})"
            for stage, values in ((s, metrics[s]) for s in ("val", "test"))]
