"""Diagnoses of training health, as pure functions of numbers a monitor has measured.

Each check returns a :class:`Diagnosis` (kind, the layers concerned, what was measured, what to do) or
None. They know nothing of Lightning, so they are tested on plain numbers and reused by any monitor.

- **vanishing** — ``‖∇W_first‖ / ‖∇W_last‖ < vanish_ratio``, or a layer's gradient norm under
  ``tiny_norm``: the first layers barely learn (Hochreiter 1991; Glorot & Bengio 2010).
- **exploding** — a layer's gradient norm over ``explode_norm`` (Pascanu et al. 2013).
- **dead ReLUs** — a ReLU layer with more than ``dead_fraction`` of its units never active on the
  sampled batches: they output 0 and get no gradient, so they never recover (Lu et al. 2019).
- **plateau / oscillating loss** — from a loss curve: no relative improvement over ``min_delta`` for
  ``patience`` points, or a trend whose sign keeps flipping with large swings and no net progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SUGGESTIONS = {
    "vanishing": "add skip connections (resnet / resmlp), batch norm, a ReLU-family activation instead of "
                 "sigmoid/tanh, or He initialisation",
    "exploding": "clip gradients (--grad-clip 1.0, or --monitor auto_clip_percentile=10), lower the learning "
                 "rate, or check the initialisation scale",
    "nonfinite": "lower the learning rate, clip gradients, or train in 32-bit precision; the weights of the "
                 "last good step are kept",
    "dead_relu": "lower the learning rate, use leaky_relu or gelu, or He initialisation with batch norm",
    "plateau": "if the loss is still high: raise the learning rate, add a schedule, or look for vanishing "
               "gradients; if it is low, training has converged (early stopping saves the time)",
    "oscillating": "lower the learning rate (or add a decaying schedule), or raise the batch size",
}


@dataclass
class Diagnosis:
    """One finding: ``kind`` (a key of SUGGESTIONS), at ``step``, about ``layers``, and what to do."""

    kind: str
    step: int
    message: str
    layers: list[str] = field(default_factory=list)
    suggestion: str = ""

    def __post_init__(self) -> None:
        self.suggestion = self.suggestion or SUGGESTIONS.get(self.kind, "")

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return f"step {self.step}: {self.kind}: {self.message}. Suggestion: {self.suggestion}."


def _short(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_vanishing(norms: dict[str, float], step: int, vanish_ratio: float, tiny_norm: float) -> Diagnosis | None:
    """``norms``: gradient norm per layer in forward order (first layer first)."""
    if len(norms) < 2:
        return None
    names = list(norms)
    first, last = norms[names[0]], norms[names[-1]]
    tiny = [name for name, value in norms.items() if value < tiny_norm]
    ratio = first / last if last > 0 else float("inf")
    if ratio < vanish_ratio:
        return Diagnosis("vanishing", step, f"the first layer's gradient norm ({names[0]}: {first:.2e}) is "
                         f"{ratio:.1e} times the last layer's ({names[-1]}: {last:.2e}), under {vanish_ratio:g}",
                         [names[0], names[-1]])
    if tiny:
        return Diagnosis("vanishing", step, f"gradient norm under {tiny_norm:g} in {_short(tiny)}", tiny)
    return None


def check_exploding(norms: dict[str, float], step: int, explode_norm: float) -> Diagnosis | None:
    big = {name: value for name, value in norms.items() if value > explode_norm}
    if not big:
        return None
    worst = max(big, key=big.get)
    return Diagnosis("exploding", step, f"gradient norm over {explode_norm:g} in {_short(list(big))} "
                     f"(largest: {worst} at {big[worst]:.2e})", list(big))


def check_dead_units(fractions: dict[str, float], step: int, dead_fraction: float) -> Diagnosis | None:
    """``fractions``: per ReLU layer, the fraction of units never active on the sampled batches."""
    dead = {name: value for name, value in fractions.items() if value > dead_fraction}
    if not dead:
        return None
    listed = ", ".join(f"{name} ({value:.0%})" for name, value in list(dead.items())[:4])
    return Diagnosis("dead_relu", step, f"more than {dead_fraction:.0%} of the units never fire in {listed}",
                     list(dead))


def loss_trend(values: list[float], patience: int, min_delta: float) -> str | None:
    """"oscillating", "plateau" or None for a loss curve sampled at regular points (oldest first).

    Oscillating: over the last ``2·patience`` points the differences change sign at least ``patience``
    times, their mean size is over ``5·min_delta`` of the loss, and the loss made no net progress.
    Plateau: the best of the last ``patience`` points improves on the best before them by less than
    ``min_delta`` (relative).
    """
    if len(values) < patience + 1 or not np.all(np.isfinite(values)):
        return None
    series = np.asarray(values, dtype=float)
    window = series[-2 * patience:]
    diffs = np.diff(window)
    flips = int(np.sum(np.sign(diffs[1:]) * np.sign(diffs[:-1]) < 0))
    scale = max(abs(window.mean()), 1e-12)
    no_progress = window[-1] >= window[0] * (1 - min_delta)
    if len(window) > patience + 1 and flips >= patience and np.abs(diffs).mean() > 5 * min_delta * scale and no_progress:
        return "oscillating"
    best_before, best_recent = series[:-patience].min(), series[-patience:].min()
    if best_recent > best_before - min_delta * abs(best_before):
        return "plateau"
    return None


def check_loss_curve(values: list[float], step: int, what: str, patience: int, min_delta: float) -> Diagnosis | None:
    """A plateau or oscillation diagnosis for the curve ``what`` (e.g. "training loss")."""
    trend = loss_trend(values, patience, min_delta)
    if trend == "plateau":
        return Diagnosis("plateau", step, f"the {what} has not improved by {min_delta:.0%} over the last "
                         f"{patience} points (now {values[-1]:.4g}, best {min(values):.4g})")
    if trend == "oscillating":
        recent = values[-2 * patience:]
        return Diagnosis("oscillating", step, f"the {what} swings up and down without progress over the last "
                         f"{len(recent)} points (between {min(recent):.4g} and {max(recent):.4g})")
    return None
