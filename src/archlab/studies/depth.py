"""The depth study: plain vs residual networks at growing depth, under one training budget each.

For every (family, activation, depth) it trains the residual net and its plain twin — the registry's
``resnet``/``plain`` (convolutional, He et al. 2015 §4.2) and ``resmlp``/``plain-mlp`` (fully connected)
— with the same data, optimizer, batch size and number of steps, and the gradient-flow monitor on. It
then measures, for each trained net: test accuracy, the training-loss curve, the per-layer gradient norms
(first/last ratio: ``‖∂L/∂W_first‖ / ‖∂L/∂W_last‖``, at the first logged step and at the end), and the
accuracy under an FGSM attack at a few ε (the claim that residual nets are *more* susceptible to
adversarial perturbations is checked on pairs of plain/residual nets of matched clean accuracy).

Each net is an ordinary run directory under ``STUDY_DIR/runs/<name>``; a finished one is reused, so a
study that was interrupted continues where it stopped. Results go to ``study.json`` and
``report.html`` (``archlab.report.study``), which states what *this* run found.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from archlab.engine.train import flushing_denormals
from archlab.errors import ConfigError
from archlab.io import atomic_write_json

STUDY_FILE = "study.json"
MODELS = {("conv", True): "resnet", ("conv", False): "plain", ("mlp", True): "resmlp", ("mlp", False): "plain-mlp"}
CONV_DEPTHS = (8, 20, 32, 44, 56, 110, 1202)  # 6n+2 with basic blocks


@dataclass
class DepthStudyConfig:
    """What the study trains and measures. Presets: ``PRESETS``; any field can be overridden."""

    preset: str = "quick"
    data: str = "mnist"
    conv_depths: list[int] = field(default_factory=lambda: [8, 20, 56])
    mlp_depths: list[int] = field(default_factory=lambda: [10, 50, 100])
    conv_activations: list[str] = field(default_factory=lambda: ["relu"])
    mlp_activations: list[str] = field(default_factory=lambda: ["sigmoid", "relu"])
    conv_width: float = 0.5  # channel multiplier of the 16/32/64 widths
    mlp_width: int = 128
    conv_steps: int = 300
    mlp_steps: int = 300
    batch_size: int = 128
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "sgd", "lr": 0.05, "momentum": 0.9})
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "cosine"})
    checkpoint_from_depth: int = 200  # nets at least this deep recompute activations in the backward pass
    attack_eps: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1])
    attack_images: int = 1000
    matched_within: float = 0.02  # clean accuracies this close count as matched for the robustness check
    val_size: int = 0  # each net trains for less than an epoch: validation would add time, not information
    seed: int = 0
    data_dir: str | None = None

    def validate(self) -> "DepthStudyConfig":
        from archlab.nn import ACTIVATIONS

        bad_conv = [d for d in self.conv_depths if d < 8 or (d - 2) % 6]
        bad_mlp = [d for d in self.mlp_depths if d < 2 or d % 2]
        bad_act = [a for a in self.conv_activations + self.mlp_activations if a not in ACTIVATIONS]
        checks = [
            ((self.conv_depths and self.conv_activations) or (self.mlp_depths and self.mlp_activations),
             "give at least one conv or MLP depth, with at least one activation for it"),
            (not bad_conv, f"conv depths must be 6n+2 (8, 20, 32, 44, 56, 110, 1202...), got {bad_conv}"),
            (not bad_mlp, f"MLP depths count Linear layers and must be even and ≥ 2, got {bad_mlp}"),
            (not bad_act, f"unknown activation(s) {bad_act}; known: {', '.join(sorted(ACTIVATIONS))}"),
            (min(self.conv_steps, self.mlp_steps, self.batch_size) >= 1, "steps and batch size must be ≥ 1"),
            (all(e >= 0 for e in self.attack_eps), f"attack ε must be ≥ 0, got {self.attack_eps}"),
            (self.attack_images >= 0, "attack_images must be ≥ 0 (0 turns the attack off)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"depth study: {message}.")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    # ≤10 minutes on a 2-core CPU: three conv depths at half width, three MLP depths, two activations.
    "quick": {},
    # The whole picture: He et al.'s depths (1202 with activation checkpointing), full width, more steps,
    # every activation on the MLPs. Hours on a CPU; minutes on a GPU.
    "full": {"conv_depths": [8, 20, 56, 110, 1202], "mlp_depths": [10, 50, 100], "conv_width": 1.0,
             "conv_activations": ["relu"], "mlp_activations": ["sigmoid", "tanh", "relu", "leaky_relu", "gelu"],
             "conv_steps": 2000, "mlp_steps": 2000, "attack_images": 2000},
}


def study_config(preset: str = "quick", **overrides: Any) -> DepthStudyConfig:
    """The preset's settings with ``overrides`` (None values ignored), validated."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown depth-study preset {preset!r}. Presets: {', '.join(PRESETS)}.")
    known = {f.name for f in dataclasses.fields(DepthStudyConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"Unknown depth-study setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}, "preset": preset}
    return DepthStudyConfig(**values).validate()


@dataclass(frozen=True)
class Arm:
    """One trained network of the study."""

    family: str  # "conv" or "mlp"
    depth: int
    activation: str
    residual: bool

    @property
    def model(self) -> str:
        return MODELS[(self.family, self.residual)]

    @property
    def name(self) -> str:
        return f"{self.family}-{'residual' if self.residual else 'plain'}-{self.depth}-{self.activation}"

    def model_args(self, config: DepthStudyConfig) -> dict[str, Any]:
        args: dict[str, Any] = {"depth": self.depth, "activation": self.activation}
        if self.family == "conv":
            args["width"] = config.conv_width
        else:
            args["width"] = config.mlp_width
        if self.depth >= config.checkpoint_from_depth:
            args["checkpoint"] = True
        return args


def arms(config: DepthStudyConfig) -> list[Arm]:
    """Every network to train: shallow first, plain next to its residual twin."""
    plan = []
    for family, depths, activations in (("mlp", config.mlp_depths, config.mlp_activations),
                                          ("conv", config.conv_depths, config.conv_activations)):
        for activation in activations:
            for depth in sorted(depths):
                plan += [Arm(family, depth, activation, False), Arm(family, depth, activation, True)]
    return plan


def train_arm(arm: Arm, config: DepthStudyConfig, run_dir: Path) -> dict[str, Any]:
    """Train one network into ``run_dir`` (or reuse it if it finished before); its summary."""
    import archlab
    from archlab.runs import SUMMARY, read_json

    if (run_dir / SUMMARY).is_file():
        return read_json(run_dir / SUMMARY, "")
    if run_dir.exists():  # an interrupted earlier attempt: start this network again
        shutil.rmtree(run_dir)
    steps = config.conv_steps if arm.family == "conv" else config.mlp_steps
    every = max(1, steps // 25)
    run = archlab.train(
        arm.model, run_dir=run_dir, report=False, progress=False, data=config.data, data_dir=config.data_dir,
        max_steps=steps, batch_size=config.batch_size, optimizer=dict(config.optimizer), schedule=dict(config.schedule), seed=config.seed,
        model_args=arm.model_args(config), val_size=config.val_size, log_every_n_steps=every,
        monitor={"every_n_steps": every, "print_diagnoses": False}, histogram_every_n_epochs=0,
    )
    return run.summary


def attack_arm(run_dir: Path, config: DepthStudyConfig, test) -> dict[str, float]:
    """FGSM accuracy at ε = 0 and each study ε on the first ``attack_images`` test images."""
    from archlab.analysis.attack import robust_accuracy
    from archlab.runs import load_model

    if not config.attack_images:
        return {}
    loaded = load_model(run_dir)
    count = min(config.attack_images, len(test))
    accuracy = robust_accuracy(loaded.model, test.images[:count], test.labels[:count], "fgsm",
                               [0.0, *config.attack_eps], loaded.mean, loaded.std)
    return {f"{eps:g}": value for eps, value in accuracy.items()}


def gradient_ratios(run_dir: Path) -> dict[str, float | None]:
    """First/last-layer gradient-norm ratio at the first step (the network as initialised) and the last logged one."""
    from archlab.report.metrics_csv import read_metrics_csv, series

    path = run_dir / "metrics.csv"
    if not path.is_file():
        return {"first": None, "last": None}
    _, values = series(read_metrics_csv(path), "grad_first_last")
    values = values[np.isfinite(values)]
    return {"first": float(values[0]) if len(values) else None, "last": float(values[-1]) if len(values) else None}


def measure_arm(arm: Arm, config: DepthStudyConfig, out_dir: Path, test) -> dict[str, Any]:
    """Train one network (or reuse it) and measure it: accuracy, gradient ratios, FGSM accuracy."""
    run_dir = out_dir / "runs" / arm.name
    summary = train_arm(arm, config, run_dir)
    diagnostics = summary.get("diagnostics") or {}
    return {**dataclasses.asdict(arm), "model": arm.model, "name": arm.name, "run_dir": f"runs/{arm.name}",
            "test_accuracy": (summary.get("test_metrics") or {}).get("accuracy"),
            "train_seconds": summary.get("wall_seconds"), "params": summary.get("params"),
            "steps": summary.get("steps"), "stopped": diagnostics.get("stopped"),
            "diagnoses": sorted(diagnostics.get("counts") or {}),
            "grad_ratio": gradient_ratios(run_dir), "robust": attack_arm(run_dir, config, test)}


def run_depth_study(
    config: DepthStudyConfig,
    out_dir: str | Path,
    *,
    report: bool = True,
    on_arm: Callable[[int, int, Arm, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train every arm of ``config`` under ``out_dir/runs``, measure them, write study.json (and the report).

    ``on_arm(index, total, arm, result)`` is called after each network (for progress display).
    """
    from archlab.data import load_image_data

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(), time.perf_counter()
    plan = arms(config)
    test = load_image_data(config.data, config.data_dir, config.val_size, config.seed).test
    results = []
    # Lightning's per-run banners ("GPU available: ...") would repeat for every network.
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with flushing_denormals():  # the attacks run outside archlab.train: deep plain nets underflow there too
            for index, arm in enumerate(plan):
                results.append(measure_arm(arm, config, out_dir, test))
                if on_arm:
                    on_arm(index, len(plan), arm, results[-1])
    finally:
        lightning_log.setLevel(level)
    study = {"study": "depth", "config": dataclasses.asdict(config), "created": started.isoformat(timespec="seconds"),
             "seconds": round(time.perf_counter() - t0, 1), "results": results}
    study["findings"] = findings(study)
    atomic_write_json(out_dir / STUDY_FILE, study)
    if report:
        from archlab.report.study import build_study_report

        build_study_report(out_dir)
    return {**study, "path": str(out_dir)}


# --- what the run found -------------------------------------------------------------------------------


def pairs(results: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(plain, residual) results of the same family, activation and depth."""
    index = {(r["family"], r["activation"], r["depth"], r["residual"]): r for r in results}
    return [(r, index[(r["family"], r["activation"], r["depth"], True)]) for r in results
            if not r["residual"] and (r["family"], r["activation"], r["depth"], True) in index]


def _ratio(value: float) -> str:
    return "0 (underflow: under float32's 1e-38)" if value == 0 else f"{value:.1e}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def findings(study: dict[str, Any]) -> list[str]:
    """Sentences stating what this run measured: accuracy gaps, gradient ratios, robustness."""
    results, config = study["results"], study["config"]
    lines = []
    for plain, residual in pairs(results):
        if plain["test_accuracy"] is None or residual["test_accuracy"] is None:
            continue
        gap = residual["test_accuracy"] - plain["test_accuracy"]
        ratio_p, ratio_r = plain["grad_ratio"]["first"], residual["grad_ratio"]["first"]
        ratios = (f"; first/last gradient-norm ratio at the start {_ratio(ratio_p)} (plain) vs {_ratio(ratio_r)} (residual)"
                  if ratio_p is not None and ratio_r is not None else "")
        lines.append(f"{plain['family']} depth {plain['depth']} {plain['activation']}: plain {_pct(plain['test_accuracy'])}, "
                     f"residual {_pct(residual['test_accuracy'])} ({100 * gap:+.1f} points){ratios}.")
    lines += degradation(results)
    lines.append(robustness_verdict(results, config["attack_eps"], config["matched_within"]))
    return lines


def degradation(results: list[dict[str, Any]]) -> list[str]:
    """Per family/activation: how accuracy changes from the shallowest to the deepest net, plain vs residual."""
    lines = []
    groups: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for r in results:
        if r["test_accuracy"] is not None:
            groups.setdefault((r["family"], r["activation"], r["residual"]), []).append(r)
    for (family, activation, residual), members in sorted(groups.items()):
        members.sort(key=lambda r: r["depth"])
        if len(members) < 2:
            continue
        shallow, deep = members[0], members[-1]
        change = deep["test_accuracy"] - shallow["test_accuracy"]
        kind = "residual" if residual else "plain"
        lines.append(f"{family} {activation} {kind}: depth {shallow['depth']} → {deep['depth']} changes test accuracy "
                     f"by {100 * change:+.1f} points ({_pct(shallow['test_accuracy'])} → {_pct(deep['test_accuracy'])}).")
    return lines


def robustness_verdict(results: list[dict[str, Any]], eps_list: list[float], within: float) -> str:
    """Whether residual nets lost more accuracy under FGSM than plain nets of matched clean accuracy."""
    matched = [(p, r) for p, r in pairs(results) if p["robust"] and r["robust"]
               and abs(p["robust"]["0"] - r["robust"]["0"]) <= within]
    if not matched or not eps_list:
        return (f"Robustness: no plain/residual pair had clean accuracies within {100 * within:.0f} points of each "
                "other (or the attack was off), so the claim that residual nets are more susceptible was not tested.")
    eps = f"{max(eps_list):g}"
    drops = np.array([[p["robust"]["0"] - p["robust"][eps], r["robust"]["0"] - r["robust"][eps]] for p, r in matched])
    plain_drop, residual_drop = drops.mean(axis=0)
    difference = residual_drop - plain_drop
    if abs(difference) < 0.01:
        verdict = "no clear difference (under 1 point)"
    elif difference > 0:
        verdict = f"residual nets were MORE susceptible, by {100 * difference:.1f} points on average"
    else:
        verdict = f"residual nets were LESS susceptible, by {100 * -difference:.1f} points on average"
    return (f"Robustness (FGSM ε={eps}, {len(matched)} pairs with clean accuracy within {100 * within:.0f} points): "
            f"accuracy fell by {100 * plain_drop:.1f} points for plain nets and {100 * residual_drop:.1f} for "
            f"residual nets: {verdict}.")


def default_study_dir(root: str | Path = "runs") -> Path:
    return Path(root) / "study-depth" / datetime.now().strftime("%Y%m%d-%H%M%S")


def study_depth(preset: str = "quick", out_dir: str | Path | None = None, *, report: bool = True,
                **overrides: Any) -> dict[str, Any]:
    """Run the depth study (Python twin of ``archlab study depth``); returns what study.json holds.

    Example: ``archlab.study_depth("quick", mlp_depths=[10, 50], conv_depths=[8, 20])``
    """
    config = study_config(preset, **overrides)
    return run_depth_study(config, out_dir or default_study_dir(), report=report)
