"""The training engine: configuration → Lightning Trainer → run directory."""

from archlab.engine.train import fit, train

__all__ = ["fit", "train"]
