"""Tasks: one LightningModule per objective. They own losses, optimizers and metrics, never layers."""

from archlab.tasks.classify import ClassifyTask

TASKS = {"classify": ClassifyTask}

__all__ = ["ClassifyTask", "TASKS"]
