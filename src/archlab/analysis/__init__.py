"""Analyses of trained networks: what a CNN sees (filters, activation maps, Grad-CAM, CAM) and how robust it
is to adversarial perturbations (FGSM, PGD).

The functions of :mod:`archlab.analysis.explain` and :mod:`archlab.analysis.attack` take any ``nn.Module``
classifier of normalized images. :func:`archlab.analysis.explain_run.explain` and
:func:`archlab.analysis.attack_run.attack` (``archlab.explain`` / ``archlab.attack``) apply them to a run
directory and save figures; they are not re-exported here, where ``explain`` and ``attack`` name the modules.
"""

from archlab.analysis.attack import ATTACKS, AttackSettings, PixelSpace, adversarial_examples, robust_accuracy
from archlab.analysis.attack_run import AttackResult
from archlab.analysis.explain import ClassMaps, activation_maps, cam, first_layer_filters, grad_cam
from archlab.analysis.explain_run import Explanation

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AttackSettings",
    "ClassMaps",
    "Explanation",
    "PixelSpace",
    "activation_maps",
    "adversarial_examples",
    "cam",
    "first_layer_filters",
    "grad_cam",
    "robust_accuracy",
]
