"""Tasks: one LightningModule per objective (loss, optimizer, metrics; never layers), and its wiring into a run.

Importing this package imports every task module, which registers its ``TaskDef`` (see ``tasks/base.py``).
"""

from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, get_task, list_tasks, register_task
from archlab.tasks import classify_def  # noqa: F401  (registers the classify task)
from archlab.tasks.classify import ClassifyTask
from archlab.tasks import language  # noqa: F401  (registers the language task)
from archlab.tasks import seq2seq  # noqa: F401  (registers the seq2seq task)
from archlab.tasks import forecast  # noqa: F401  (registers the forecast task)
from archlab.tasks import mlm  # noqa: F401  (registers the mlm task)
from archlab.tasks import diffusion  # noqa: F401  (registers the diffusion task)
from archlab.tasks import translate  # noqa: F401  (registers the translate task)
from archlab.tasks import reconstruct  # noqa: F401  (registers the reconstruct task)
from archlab.tasks import gan  # noqa: F401  (registers the gan task)

__all__ = ["ClassifyTask", "OptimSettings", "TaskDef", "TaskModule", "get_task", "list_tasks", "register_task"]
