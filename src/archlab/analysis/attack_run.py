"""``attack(run_dir, ...)``: accuracy of a trained run under FGSM or PGD, saved next to its other results.

The model is rebuilt from the run directory; the images are the first ``limit`` of the run's test split
(``meta["data"]``, from the data cache). Written into the run directory, atomically:

    attack-<method>.json   ε, accuracy per ε, clean accuracy, settings (read by the report)
    attack-<method>.png    clean / adversarial / perturbation for a few test images at the largest ε

The run's report is rebuilt when it exists, so it gains its "Adversarial robustness" section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from archlab.analysis.attack import AttackSettings, adversarial_examples, check_attack, robust_accuracy
from archlab.errors import ConfigError, RunError
from archlab.io import atomic_write_bytes, atomic_write_json
from archlab.report.attack_figures import adversarial_grid
from archlab.report.figures import figure_to_png
from archlab.runs import LoadedModel, load_model

DEFAULT_EPS = (0.0, 0.05, 0.1, 0.2)
EXAMPLES = 8


def attack_files(run_dir: Path, method: str) -> dict[str, Path]:
    """Where the results of ``method`` go: ``attack-<method>.json`` and ``.png``."""
    return {"json": run_dir / f"attack-{method}.json", "png": run_dir / f"attack-{method}.png"}


@dataclass
class AttackResult:
    """Accuracy per ε of one attack on one run, and the files written."""

    method: str
    eps: list[float]
    accuracy: list[float]
    images: int
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def clean_accuracy(self) -> float | None:
        """The accuracy at ε = 0, or None when ε = 0 was not asked for."""
        return self.accuracy[self.eps.index(0.0)] if 0.0 in self.eps else None


def attack_images(loaded: LoadedModel, run_dir: Path, data_dir: str | Path | None, limit: int):
    """The first ``limit`` images and labels of the run's test split."""
    from archlab.data import load_image_data

    name = loaded.meta.get("data")
    if not name:
        raise RunError(f"{run_dir / 'meta.json'} does not name the run's data set (older archlab); "
                       f"re-train the run to attack it.")
    if limit < 1:
        raise ConfigError(f"limit must be at least 1 test image, got {limit}.")
    test = load_image_data(name, data_dir, val_size=0).test
    return test.images[:limit], test.labels[:limit]


def attack(run_dir: str | Path, method: str = "fgsm", eps: Sequence[float] = DEFAULT_EPS, *, steps: int = 10,
           step_size: float | None = None, random_start: bool = True, seed: int = 0, limit: int = 1000,
           data_dir: str | Path | None = None, update_report: bool = True) -> AttackResult:
    """Accuracy of the run's model on ``limit`` test images under ``method`` ("fgsm" or "pgd") for each ε.

    ε is in pixel units ([0, 1]); ``steps``, ``step_size``, ``random_start`` and ``seed`` set PGD. Saves
    ``attack-<method>.json`` and ``attack-<method>.png`` into the run directory and returns the numbers.
    """
    eps = sorted(set(check_attack(method, eps, steps, step_size)))
    run_dir = Path(run_dir)
    loaded = load_model(run_dir)
    images, labels = attack_images(loaded, run_dir, data_dir, limit)
    settings = AttackSettings(steps, step_size, random_start, seed)
    accuracy = robust_accuracy(loaded.model, images, labels, method, eps, loaded.mean, loaded.std, steps=steps,
                               step_size=step_size, random_start=random_start, seed=seed)
    result = AttackResult(method, eps, [accuracy[value] for value in eps], len(labels), attack_files(run_dir, method))
    write_examples(result.paths["png"], loaded, images[:EXAMPLES], labels[:EXAMPLES], method, max(eps), settings)
    atomic_write_json(result.paths["json"], record(result, loaded, settings))
    if update_report and (run_dir / "report.html").is_file():
        from archlab.report import build_report

        result.paths["report"] = build_report(run_dir)
    return result


def write_examples(path: Path, loaded: LoadedModel, images, labels, method: str, eps: float,
                   settings: AttackSettings) -> None:
    """Attack a few test images at ``eps`` and save the clean / adversarial / perturbation grid as a PNG."""
    examples = adversarial_examples(loaded.model, images, labels, method, eps, loaded.mean, loaded.std,
                                    settings=settings)
    figure = adversarial_grid(examples.clean.numpy(), examples.adversarial.numpy(), examples.labels.numpy(),
                              examples.clean_pred.numpy(), examples.adversarial_pred.numpy(), loaded.classes,
                              eps, method)
    atomic_write_bytes(path, figure_to_png(figure))


def record(result: AttackResult, loaded: LoadedModel, settings: AttackSettings) -> dict[str, Any]:
    """The JSON the report reads: the curve, the settings, and how to reproduce it."""
    return {
        "method": result.method, "eps": result.eps, "accuracy": result.accuracy,
        "clean_accuracy": result.clean_accuracy,
        "images": result.images, "data": loaded.meta.get("data"), "split": "test",
        "eps_units": "pixels in [0, 1] (L-infinity)",
        "settings": asdict(settings),  # steps, step_size, random_start, seed: PGD's (FGSM takes one step)
        "normalization": {"mean": loaded.mean, "std": loaded.std},
        "examples": result.paths["png"].name, "created": datetime.now().isoformat(timespec="seconds"),
    }
