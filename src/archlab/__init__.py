"""archlab: a lab for deep neural network architectures.

The public Python API mirrors the CLI::

    import archlab
    run = archlab.train("cnn", recipe="mnist-fast")     # archlab train cnn --recipe mnist-fast
    run.summary["test_metrics"]["accuracy"]
    archlab.predict(run.path, ["digit.png"])              # archlab predict RUN_DIR digit.png
    archlab.explain(run.path, "digit.png")                # archlab explain RUN_DIR digit.png
    archlab.attack(run.path, method="pgd")                # archlab attack RUN_DIR --method pgd
    archlab.study_depth("quick")                          # archlab study depth --preset quick
"""

__version__ = "0.1.0"

from archlab.analysis.attack_run import attack  # noqa: E402
from archlab.analysis.explain_run import explain  # noqa: E402
from archlab.data import fetch, list_datasets, load_image_data  # noqa: E402
from archlab.engine import train  # noqa: E402
from archlab.generation import generate  # noqa: E402
from archlab.forecasting import forecast  # noqa: E402
from archlab.inference import evaluate, predict  # noqa: E402
from archlab.models import create_model, list_models, model_summary  # noqa: E402
from archlab.report import build_report  # noqa: E402
from archlab.runs import Run, load_model  # noqa: E402
from archlab.studies.depth import study_depth  # noqa: E402

load_run = Run.open

__all__ = [
    "Run",
    "attack",
    "build_report",
    "create_model",
    "evaluate",
    "explain",
    "fetch",
    "forecast",
    "generate",
    "list_datasets",
    "list_models",
    "load_image_data",
    "load_model",
    "load_run",
    "model_summary",
    "predict",
    "study_depth",
    "train",
]
