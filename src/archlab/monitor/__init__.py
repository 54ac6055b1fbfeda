"""Callbacks that watch any task: gradient norms per layer, weight histograms."""

from archlab.monitor.grad_norm import GradNormMonitor
from archlab.monitor.histograms import WeightHistogramMonitor

__all__ = ["GradNormMonitor", "WeightHistogramMonitor"]
