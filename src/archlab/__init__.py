"""archlab: a lab for deep neural network architectures.

The public Python API mirrors the CLI::

    import archlab
    run = archlab.train("cnn", recipe="mnist-fast")     # archlab train cnn --recipe mnist-fast
    run.summary["test_metrics"]["accuracy"]
    archlab.predict(run.path, ["digit.png"])              # archlab predict RUN_DIR digit.png
"""

__version__ = "0.1.0"

from archlab.data import fetch, list_datasets, load_image_data  # noqa: E402
from archlab.engine import train  # noqa: E402
from archlab.inference import evaluate, predict  # noqa: E402
from archlab.models import create_model, list_models, model_summary  # noqa: E402
from archlab.report import build_report  # noqa: E402
from archlab.runs import Run, load_model  # noqa: E402

load_run = Run.open

__all__ = [
    "Run",
    "build_report",
    "create_model",
    "evaluate",
    "fetch",
    "list_datasets",
    "list_models",
    "load_image_data",
    "load_model",
    "load_run",
    "model_summary",
    "predict",
    "train",
]
