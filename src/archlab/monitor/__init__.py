"""Callbacks that watch any task: gradient flow with diagnoses, hidden states, weight histograms."""

from archlab.monitor.diagnosis import Diagnosis
from archlab.monitor.gradient_flow import GradientFlowMonitor
from archlab.monitor.hidden_states import HiddenStateMonitor
from archlab.monitor.histograms import WeightHistogramMonitor

__all__ = ["Diagnosis", "GradientFlowMonitor", "HiddenStateMonitor", "WeightHistogramMonitor"]
