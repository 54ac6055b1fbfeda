"""The run directory: what a training run leaves behind, and how to read it back with no pickle.

    RUN_DIR/
      config.yaml            the fully resolved configuration (re-run with --config)
      meta.json              model name + constructor arguments, normalization, classes, versions
      weights.safetensors    final weights (safetensors: loading runs no code)
      summary.json           headline numbers (test metrics, best validation, speed, size)
      metrics.csv            every logged scalar (Lightning's CSV logger)
      tb/                    TensorBoard events
      checkpoints/           last.ckpt (periodic + final) and best.ckpt (best val_acc), for --resume
      test_predictions.npz   labels, predictions, probabilities, misclassified and a few correct images
      attack-<method>.json   accuracy under adversarial attack per ε (archlab attack), with a .png of examples
      explain/<image>/       filters, activation maps, Grad-CAM of a user image (archlab explain)
      report.html            plots and tables (archlab report RUN_DIR)
"""

from __future__ import annotations

import csv
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from archlab.errors import RunError
from archlab.io import atomic_path, atomic_write_json
from archlab.models import create_model

META = "meta.json"
WEIGHTS = "weights.safetensors"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
PREDICTIONS = "test_predictions.npz"


MAX_MISTAKES = 64
MAX_CORRECT = 8


def spread_over_classes(index: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """``count`` entries of ``index`` (test positions), one per class first, then in test order."""
    firsts = np.sort(np.unique(labels[index], return_index=True)[1])
    rest = np.setdiff1d(np.arange(len(index)), firsts)
    return index[np.concatenate([firsts, rest])[:count]]


def write_predictions(run_dir: Path, labels: torch.Tensor, probs: torch.Tensor,
                      examples: torch.Tensor | list[str]) -> None:
    """Test labels, predictions, probabilities, up to 64 misclassified examples and 8 correctly classified ones
    (of different classes where possible), for the report. ``examples`` are the test images (uint8 tensor) or
    the test texts (stored cut to 500 characters)."""
    labels_np = labels.cpu().numpy()
    probs_np = probs.float().cpu().numpy()
    preds = probs_np.argmax(1)
    mistakes = np.flatnonzero(preds != labels_np)[:MAX_MISTAKES]
    correct = spread_over_classes(np.flatnonzero(preds == labels_np), labels_np, MAX_CORRECT)
    if isinstance(examples, torch.Tensor):
        kind = "images"
        chosen = {name: examples[torch.from_numpy(index)].numpy() for name, index in
                  (("mistake", mistakes), ("correct", correct))}
    else:
        kind = "texts"
        chosen = {name: np.array([examples[i][:500] for i in index], dtype=str) for name, index in
                  (("mistake", mistakes), ("correct", correct))}
    with atomic_path(run_dir / PREDICTIONS) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, labels=labels_np, preds=preds, probs=probs_np.astype(np.float16),
                                mistake_index=mistakes, correct_index=correct,
                                **{f"{name}_{kind}": value for name, value in chosen.items()})


METRICS = "metrics.csv"


def stash_metrics(run_dir: Path) -> Path | None:
    """Move metrics.csv aside before a resume (Lightning's CSV logger would delete it on start)."""
    path = run_dir / METRICS
    if not path.is_file():
        return None
    stashed = run_dir / f".{METRICS}.before-resume"
    path.replace(stashed)
    return stashed


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def merge_metrics(run_dir: Path, stashed: Path, resumed_step: int) -> None:
    """Rows logged before the resumed checkpoint, then the new rows: one continuous metrics.csv.

    Rows the interrupted run logged after its last checkpoint are dropped: the resumed run trained
    those steps again and logged them anew.
    """
    old_fields, old_rows = _read_rows(stashed)
    kept = [row for row in old_rows if not row.get("step") or int(float(row["step"])) < resumed_step]
    new_path = run_dir / METRICS
    new_fields, new_rows = _read_rows(new_path) if new_path.is_file() else ([], [])
    fields = sorted(set(old_fields) | set(new_fields))
    with atomic_path(new_path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept + new_rows)
    stashed.unlink()


def default_run_dir(model: str, data: str, root: str | Path = "runs") -> Path:
    """``runs/<model>-<data>/<timestamp>`` (a counter is appended if that folder already exists)."""
    base = Path(root) / f"{model}-{data}" / datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def versions() -> dict[str, str]:
    import lightning

    from archlab import __version__

    return {"archlab": __version__, "torch": torch.__version__, "lightning": lightning.__version__,
            "python": platform.python_version()}


def save_model(run_dir: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Weights as safetensors plus the JSON metadata that rebuilds the model from the registry."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    atomic_write_json(run_dir / META, {**meta, "versions": versions()})


def read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunError(f"{path} is not valid JSON ({err}); the run directory is damaged.") from err


def check_run_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"Run directory {run_dir} does not exist. List runs with `archlab runs`.")
    return run_dir


@dataclass
class LoadedModel:
    """A trained model rebuilt from a run directory, with what is needed to feed it."""

    model: nn.Module
    meta: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def mean(self) -> float:
        return float(self.meta["normalization"]["mean"])

    @property
    def std(self) -> float:
        return float(self.meta["normalization"]["std"])


def load_model(run_dir: str | Path) -> LoadedModel:
    """Rebuild the run's model from ``meta.json`` + ``weights.safetensors`` (no unpickling), in eval mode."""
    run_dir = check_run_dir(run_dir)
    meta = read_json(run_dir / META, "the run has not finished; train it or resume it with --resume.")
    weights = run_dir / WEIGHTS
    if not weights.is_file():
        raise RunError(f"{weights} is missing: the run has not finished; resume it with `archlab train --resume {run_dir}`.")
    model = create_model(meta["model"], **meta["model_args"])
    model.load_state_dict(load_file(str(weights)))
    return LoadedModel(model.eval(), meta)


def check_same_vocabulary(source: str | Path, meta: dict[str, Any]) -> None:
    """Refuse to start from a run whose tokenizer differs from this run's: the same ids would mean other words."""
    source_meta_path = Path(source) / META
    if not source_meta_path.is_file() or "tokenizer" not in meta:
        return
    theirs = read_json(source_meta_path, "").get("tokenizer")
    if theirs is not None and theirs != meta["tokenizer"]:
        raise RunError(f"--init-from {source}: its vocabulary differs from this run's, so its embeddings would be "
                       "read for the wrong words. Use the same data set and the same text settings "
                       "(max_length does not matter; vocab_size, min_count, the split fractions and the seed do).")


def load_pretrained(model: nn.Module, source: str | Path) -> dict[str, Any]:
    """Copy into ``model`` every tensor of ``source`` (a run directory or a .safetensors file) whose name and
    shape match; the rest of ``model`` keeps its initialisation (e.g. a new classification head).

    Returns what was loaded and skipped. Refuses a source that fits nothing, which is always a mistake.
    """
    source = Path(source)
    path = source / WEIGHTS if source.is_dir() else source
    if not path.is_file() or path.suffix != ".safetensors":
        raise RunError(f"--init-from {source}: expected a finished run directory or a .safetensors file; "
                       f"{path} does not exist or is not safetensors.")
    tensors = load_file(str(path))
    own = model.state_dict()
    fitting = {name: t for name, t in tensors.items() if name in own and own[name].shape == t.shape}
    if not fitting:
        raise RunError(f"--init-from {source}: none of its {len(tensors)} tensors fits this model (names or shapes "
                       "differ). Start from a run of the same model family.")
    model.load_state_dict(fitting, strict=False)
    return {"source": str(source), "loaded": len(fitting), "of_source": len(tensors),
            "new": sorted(name for name in own if name not in fitting),
            "mismatched": sorted(name for name, t in tensors.items() if name in own and own[name].shape != t.shape)}


@dataclass
class Run:
    """A finished run: its folder and headline numbers (``summary``)."""

    path: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, run_dir: str | Path) -> "Run":
        run_dir = check_run_dir(run_dir)
        return cls(run_dir, read_json(run_dir / SUMMARY, "the run has not finished; resume it with --resume."))

    @property
    def test_accuracy(self) -> float | None:
        return self.summary.get("test_metrics", {}).get("accuracy")

    def load_model(self) -> LoadedModel:
        return load_model(self.path)

    def report(self) -> Path:
        from archlab.report import build_report

        return build_report(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, test_accuracy={self.test_accuracy})"
