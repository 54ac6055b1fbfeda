"""Inference on a finished run: re-evaluate it on its test split, or predict the class of user images.

Both rebuild the model from the run directory alone (``meta.json`` + ``weights.safetensors``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archlab.errors import ArchlabError
from archlab.io import atomic_write_json
from archlab.runs import META, SUMMARY, LoadedModel, check_run_dir, load_model, read_json, write_predictions


@dataclass
class Prediction:
    """Top-k classes of one input, with the notes on how the input was converted."""

    source: str
    top: list[tuple[str, float]]
    notes: list[str] = field(default_factory=list)


def _batched_logits(loaded: LoadedModel, images_uint8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images_uint8), batch_size):
            x = images_uint8[start : start + batch_size].float().div_(255).sub_(loaded.mean).div_(loaded.std)
            outputs.append(loaded.model(x).float())
    return torch.cat(outputs)


# What to use instead of `eval` / `predict` for runs of the other tasks.
OTHER_TASKS = {
    "language": "archlab generate RUN_DIR --prompt TEXT",
    "forecast": "archlab forecast RUN_DIR --horizon H",
    "seq2seq": "its report (exact match by length, attention maps)",
    "gan": "archlab sample RUN_DIR --n 64 --out grid.png",
    "diffusion": "archlab sample RUN_DIR --n 64 --out grid.png",
    "translate": "archlab translate RUN_DIR IMAGE --out out.png",
    "reconstruct": "archlab anomaly GAN_RUN --baseline RUN_DIR",
}


def _refuse_non_images(loaded: LoadedModel, run_dir: str | Path, command: str) -> LoadedModel:
    task, kind = loaded.meta.get("task", "classify"), loaded.meta.get("input_kind")
    if task != "classify" or kind not in (None, "image"):
        instead = OTHER_TASKS.get(task, "the run's report")
        what = f"a {task} run" + (f" on {kind} data" if kind else "")
        also = f" (`eval` also re-scores {', '.join(t for t in EVALUATORS if t != 'classify')} runs)" \
            if command == "predict" and task in EVALUATORS else ""
        raise ArchlabError(f"{run_dir} is {what}; `{command}` takes image classifiers{also}. "
                           f"Use {instead}; its test metrics are in summary.json.")
    return loaded


def image_classifier(run_dir: str | Path, command: str = "predict") -> LoadedModel:
    """The run's model, refused with a pointer to the right command unless it classifies images."""
    return _refuse_non_images(load_model(run_dir), run_dir, command)


def evaluate_image_classifier(run_dir: Path, loaded: LoadedModel, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Recompute test accuracy and loss from the saved weights; refresh predictions and summary.json."""
    from archlab.data import load_raw

    _refuse_non_images(loaded, run_dir, "eval")
    _, test, _ = load_raw(loaded.meta["data"], data_dir)
    logits = _batched_logits(loaded, test.images)
    metrics = {
        "accuracy": float((logits.argmax(1) == test.labels).float().mean()),
        "loss": float(F.cross_entropy(logits, test.labels)),
    }
    write_predictions(run_dir, test.labels, logits.softmax(1), test.images)
    summary_path = run_dir / SUMMARY
    summary = read_json(summary_path, "") if summary_path.is_file() else {"model": loaded.meta["model"]}
    summary["test_metrics"] = metrics
    atomic_write_json(summary_path, summary)
    return metrics


def _evaluate_language(run_dir: Path, loaded: LoadedModel, data_dir: str | Path | None = None) -> dict[str, Any]:
    from archlab.evaluation_language import evaluate_language

    return evaluate_language(run_dir, loaded, data_dir)


def _describe_language(metrics: dict[str, Any]) -> list[str]:
    from archlab.evaluation_language import describe_language

    return describe_language(metrics)


def _gan():
    from archlab.tasks import gan_sampling  # imported on use: it loads the task machinery

    return gan_sampling


def _diffusion():
    from archlab.diffusion import evaluation  # imported on use: it loads the sampling machinery

    return evaluation


def _translate():
    from archlab.tasks import translate_eval  # imported on use: it loads the judge

    return translate_eval


@dataclass(frozen=True)
class Evaluator:
    """How `eval` re-scores a run of one task, and how its figures read as lines of text."""

    evaluate: Callable[..., dict[str, Any]]  # (run_dir, loaded, data_dir, **options) → metrics
    describe: Callable[[dict[str, Any]], list[str]]
    options: tuple[str, ...] = ()  # the keyword options its evaluate takes (eval --samples, --steps...)


# The run's meta["task"] → its evaluator. A task that can be re-scored adds one entry.
EVALUATORS: dict[str, Evaluator] = {
    "classify": Evaluator(evaluate_image_classifier,
                          lambda m: [f"test accuracy {m['accuracy']:.4f}, test loss {m['loss']:.4f}"]),
    "language": Evaluator(_evaluate_language, _describe_language),
    "gan": Evaluator(lambda *args, **kw: _gan().evaluate_gan(*args, **kw), lambda metrics: _gan().describe_gan(metrics),
                     ("n", "seed")),
    "diffusion": Evaluator(lambda *args, **kw: _diffusion().evaluate_diffusion(*args, **kw),
                           lambda metrics: _diffusion().describe_diffusion(metrics),
                           ("n", "sampler", "steps", "eta", "guidance", "seed")),
    "translate": Evaluator(lambda *args: _translate().evaluate_translation(*args),
                           lambda metrics: _translate().describe_translation(metrics)),
}


def _evaluator(meta: dict[str, Any], run_dir: Path) -> Evaluator:
    task = meta.get("task", "classify")
    if task not in EVALUATORS:
        raise ArchlabError(f"{run_dir} is a {task} run; `eval` re-scores {', '.join(EVALUATORS)} runs. Use "
                           f"{OTHER_TASKS.get(task, 'the run report')}; its test metrics are in summary.json.")
    return EVALUATORS[task]


def evaluate(run_dir: str | Path, data_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Recompute a run's held-out figures from its saved weights (and refresh summary.json).

    Image classifiers: test ``{"accuracy", "loss"}`` (predictions refreshed too); language models:
    ``{"val": {...}, "test": {...}}`` with loss in nats, bits per character, perplexity and accuracy;
    generative runs: FID, KID, IS and class coverage of fresh samples. ``options`` (None values ignored) are
    the evaluator's own: ``n`` (samples) and ``seed`` for GANs, also ``sampler``, ``steps``, ``eta`` and
    ``guidance`` for diffusion runs.
    """
    run_dir = Path(run_dir)
    loaded = load_model(run_dir)
    evaluator = _evaluator(loaded.meta, run_dir)
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(evaluator.options))
    if unknown:
        task = loaded.meta.get("task", "classify")
        takes = ", ".join(evaluator.options) or "none"
        raise ArchlabError(f"`eval` of a {task} run takes no {', '.join(unknown)} (its options: {takes}).")
    return evaluator.evaluate(run_dir, loaded, data_dir, **options)


def describe_evaluation(run_dir: str | Path, metrics: dict[str, Any]) -> list[str]:
    """The lines `archlab eval` prints for ``metrics`` of the run ``run_dir``."""
    run_dir = Path(run_dir)
    return _evaluator(read_json(check_run_dir(run_dir) / META, "the run has not finished."), run_dir).describe(metrics)


def _image_to_array(path: Path, size: tuple[int, int], notes: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "L":
                notes.append(f"converted mode {image.mode} to greyscale")
                image = image.convert("L")
            if image.size != (size[1], size[0]):
                notes.append(f"resized {image.size[0]}×{image.size[1]} to {size[1]}×{size[0]}")
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ArchlabError(f"Cannot read {path} as an image ({err}). Pass a PNG/JPEG file or a .npy array.") from err
    if array.mean() > 127:
        notes.append("inverted a light background to match the training images (white digit on black)")
        array = 255 - array
    return array[None]


def _npy_to_array(path: Path, size: tuple[int, int], notes: list[str]) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ArchlabError(f"Cannot read {path} as a .npy array ({err}).") from err
    shape = array.shape
    array = np.squeeze(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or tuple(array.shape[1:]) != size:
        raise ArchlabError(
            f"{path} has shape {shape}; expected [H, W] or [N, H, W] "
            f"(optionally with a channel axis of 1) with H×W = {size[0]}×{size[1]}."
        )
    if array.dtype != np.uint8:
        if array.min() >= 0 and array.max() <= 1.0:
            notes.append("scaled float values in [0, 1] to 0..255")
            array = array * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array


def predict(run_dir: str | Path, inputs: list[str | Path], top_k: int = 3) -> list[Prediction]:
    """Top-k class probabilities for image files (PNG/JPEG...) or .npy arrays (one or many images each)."""
    loaded = image_classifier(run_dir)
    _, height, width = loaded.meta["input_shape"]
    predictions: list[Prediction] = []
    for item in inputs:
        path = Path(item)
        if not path.is_file():
            raise ArchlabError(f"Input {path} does not exist.")
        notes: list[str] = []
        reader = _npy_to_array if path.suffix.lower() == ".npy" else _image_to_array
        images = torch.from_numpy(reader(path, (height, width), notes).copy()).unsqueeze(1)
        probs = _batched_logits(loaded, images).softmax(1)
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        for n in range(len(images)):
            label = str(path) if len(images) == 1 else f"{path}[{n}]"
            top = [(loaded.classes[i], float(v)) for v, i in zip(values[n], indices[n])]
            predictions.append(Prediction(label, top, notes))
    return predictions
