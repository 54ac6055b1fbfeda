"""archlab: a lab for deep neural network architectures.

The public Python API mirrors the CLI::

    import archlab
    run = archlab.train("cnn", recipe="mnist-fast")     # archlab train cnn --recipe mnist-fast
    run.summary["test_metrics"]["accuracy"]
    archlab.predict(run.path, ["digit.png"])              # archlab predict RUN_DIR digit.png
    archlab.explain(run.path, "digit.png")                # archlab explain RUN_DIR digit.png
    archlab.attack(run.path, method="pgd")                # archlab attack RUN_DIR --method pgd
    archlab.study_depth("quick")                          # archlab study depth --preset quick
    archlab.sample(gan_or_ddpm_run, 64, class_label=7)    # archlab sample RUN_DIR --n 64 --class 7
    archlab.score_images(images, "mnist")                 # FID, KID, IS, class coverage (offline judge)
"""

__version__ = "0.1.0"

from archlab.analysis.anomaly import score_runs as anomaly_scores  # noqa: E402
from archlab.analysis.attack_run import attack  # noqa: E402
from archlab.analysis.explain_run import explain  # noqa: E402
from archlab.data import fetch, list_datasets, load_image_data  # noqa: E402
from archlab.engine import train  # noqa: E402
from archlab.generation import generate  # noqa: E402
from archlab.forecasting import forecast  # noqa: E402
from archlab.inference import evaluate, predict  # noqa: E402
from archlab.metrics.generative import score_images  # noqa: E402
from archlab.models import create_model, list_models, model_summary  # noqa: E402
from archlab.report import build_report  # noqa: E402
from archlab.runs import Run, load_model  # noqa: E402
from archlab.sampling import enhance, sample  # noqa: E402
from archlab.studies.depth import study_depth  # noqa: E402
from archlab.tasks.translate_eval import translate_images as translate  # noqa: E402

load_run = Run.open

__all__ = [
    "Run",
    "anomaly_scores",
    "attack",
    "build_report",
    "create_model",
    "enhance",
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
    "sample",
    "score_images",
    "study_depth",
    "train",
    "translate",
]
