"""Callbacks that watch any task: gradient flow with diagnoses, weight histograms."""

from archlab.monitor.diagnosis import Diagnosis
from archlab.monitor.gradient_flow import GradientFlowMonitor
from archlab.monitor.histograms import WeightHistogramMonitor

__all__ = ["Diagnosis", "GradientFlowMonitor", "WeightHistogramMonitor"]
