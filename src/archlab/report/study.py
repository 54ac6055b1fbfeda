"""The HTML report of a depth study (``archlab study depth``): what this run found, with its evidence.

Reads ``study.json`` and each network's run directory; writes ``STUDY_DIR/report.html`` and
``STUDY_DIR/figures/*.png`` atomically. Sections: findings, accuracy against depth (plain vs residual),
training curves per depth, the first/last gradient-norm ratio table, per-layer gradient-norm heat maps
of the deepest plain and residual nets, and accuracy under FGSM.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from archlab.errors import RunError
from archlab.io import atomic_write_bytes
from archlab.report import figures
from archlab.report.html import FIGURES_DIR, REPORT_FILE, FigureEmbedder, page
from archlab.report.metrics_csv import read_metrics_csv, series
from archlab.report.sections import fmt_number, fmt_percent, fmt_text, note, section, table

RESIDUAL, PLAIN = "tab:blue", "tab:red"


def _groups(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["family"], r["activation"]) for r in results))


def _read_rows(study_dir: Path, result: dict[str, Any]) -> list[dict]:
    path = study_dir / result["run_dir"] / "metrics.csv"
    return read_metrics_csv(path) if path.is_file() else []


def accuracy_vs_depth(results: list[dict[str, Any]]) -> Figure:
    """Test accuracy against depth, one panel per (family, activation), plain and residual lines."""
    groups = _groups(results)
    figure = figures.new_figure(4.2 * len(groups), 3.4)
    for axes, (family, activation) in zip(np.atleast_1d(figure.subplots(1, len(groups))), groups):
        for residual, colour, label in ((True, RESIDUAL, "residual"), (False, PLAIN, "plain")):
            members = sorted((r for r in results if (r["family"], r["activation"], r["residual"]) ==
                              (family, activation, residual) and r["test_accuracy"] is not None),
                             key=lambda r: r["depth"])
            if members:
                axes.plot([r["depth"] for r in members], [100 * r["test_accuracy"] for r in members], "o-",
                          color=colour, label=label)
        axes.set_xscale("log")
        depths = sorted({r["depth"] for r in results if (r["family"], r["activation"]) == (family, activation)})
        axes.set_xticks(depths, [str(d) for d in depths])
        axes.minorticks_off()
        axes.set_xlabel("depth (layers)")
        axes.set_ylabel("test accuracy (%)")
        axes.set_title(f"{family}, {activation}")
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def loss_curves(study_dir: Path, results: list[dict[str, Any]]) -> Figure:
    """Training loss against step for every net: solid residual, dashed plain, darker = deeper."""
    groups = _groups(results)
    figure = figures.new_figure(4.2 * len(groups), 3.4)
    for axes, (family, activation) in zip(np.atleast_1d(figure.subplots(1, len(groups))), groups):
        members = [r for r in results if (r["family"], r["activation"]) == (family, activation)]
        depths = sorted({r["depth"] for r in members})
        for r in members:
            steps, values = series(_read_rows(study_dir, r), "train_loss")
            if len(values):
                shade = 0.35 + 0.65 * depths.index(r["depth"]) / max(1, len(depths) - 1)
                colour = (0.1, 0.3, shade) if r["residual"] else (shade, 0.15, 0.1)
                axes.plot(steps, values, "-" if r["residual"] else "--", color=colour,
                          label=f"{'res' if r['residual'] else 'plain'} {r['depth']}")
        axes.set_xlabel("step")
        axes.set_ylabel("training loss")
        axes.set_title(f"{family}, {activation}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, ncol=2)
    return figure


def robustness_figure(results: list[dict[str, Any]]) -> Figure | None:
    """Accuracy against FGSM ε for every net with attack results."""
    attacked = [r for r in results if r.get("robust")]
    if not attacked:
        return None
    figure = figures.new_figure(6.5, 3.8)
    axes = figure.subplots()
    for r in attacked:
        eps = sorted(r["robust"], key=float)
        axes.plot([float(e) for e in eps], [100 * r["robust"][e] for e in eps], "-" if r["residual"] else "--",
                  marker="o", color=RESIDUAL if r["residual"] else PLAIN, alpha=0.8,
                  label=f"{r['family']} {'res' if r['residual'] else 'plain'} {r['depth']} {r['activation']}")
    axes.set_xlabel("FGSM ε (pixel units)")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, ncol=2)
    return figure


def _heatmap_section(study_dir: Path, results: list[dict[str, Any]], embed: FigureEmbedder) -> str:
    """Per-layer gradient norm (layer × step) of the deepest plain and residual net of each family."""
    parts = []
    for family in dict.fromkeys(r["family"] for r in results):
        deepest = max(r["depth"] for r in results if r["family"] == family)
        for r in results:
            if r["family"] != family or r["depth"] != deepest:
                continue
            order = _layer_order(study_dir, r)
            drawn = figures.layer_heatmap(_read_rows(study_dir, r), "grad_norm/", "log10 gradient norm",
                                          f"{r['name']}: gradient norm per layer (log10)", order)
            parts.append(embed(f"heatmap_{r['name']}", drawn, f"gradient norm per layer of {r['name']}") if drawn
                         else note(f"{r['name']} logged no gradient norms."))
    return section("heatmaps", "Gradient norm per layer and step (deepest nets)", "\n".join(parts))


def _layer_order(study_dir: Path, result: dict[str, Any]) -> list[str] | None:
    path = study_dir / result["run_dir"] / "summary.json"
    try:
        return (json.loads(path.read_text()).get("diagnostics") or {}).get("layers")
    except (OSError, ValueError):
        return None


def _ratio_table(results: list[dict[str, Any]]) -> str:
    rows = [[fmt_text(r["name"]), fmt_text(r["depth"]), fmt_percent(r["test_accuracy"]),
             _sci(r["grad_ratio"]["first"]), _sci(r["grad_ratio"]["last"]), fmt_number(r["train_seconds"], 1, " s"),
             fmt_text(", ".join(r.get("diagnoses") or []) or "none")] for r in results]
    return table(["network", "depth", "test accuracy", "first/last grad ratio (start)", "(end)", "train time",
                  "monitor's diagnoses"], rows)


def _sci(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def _robust_table(results: list[dict[str, Any]]) -> str:
    attacked = [r for r in results if r.get("robust")]
    if not attacked:
        return note("The attack was off (attack_images = 0).")
    eps = sorted(attacked[0]["robust"], key=float)
    rows = [[fmt_text(r["name"])] + [fmt_percent(r["robust"].get(e)) for e in eps] for r in attacked]
    return table(["network"] + [f"ε = {escape(e)}" for e in eps], rows)


def _robust_section(results: list[dict[str, Any]], embed: FigureEmbedder) -> str:
    drawn = robustness_figure(results)
    figure = embed("robustness", drawn, "accuracy against FGSM ε") if drawn else ""
    return _robust_table(results) + figure


def build_study_report(study_dir: str | Path) -> Path:
    """Write ``study_dir/report.html`` from ``study.json`` and the networks' runs; return its path."""
    study_dir = Path(study_dir)
    path = study_dir / "study.json"
    if not path.is_file():
        raise RunError(f"{path} is missing: run `archlab study depth --out {study_dir}` first.")
    study = json.loads(path.read_text())
    results, config = study["results"], study["config"]
    embed = FigureEmbedder(study_dir / FIGURES_DIR)
    findings = "".join(f"<li>{escape(line)}</li>" for line in study.get("findings") or [])
    setup = (f"{fmt_text(config['data'])}; preset {fmt_text(config['preset'])}; conv nets: width ×{config['conv_width']}, "
             f"{config['conv_steps']} steps; MLPs: width {config['mlp_width']}, {config['mlp_steps']} steps; batch "
             f"{config['batch_size']}; optimizer {escape(json.dumps(config['optimizer']))}, schedule "
             f"{escape(json.dumps(config.get('schedule')))}; seed {config['seed']}; conv nets have batch norm and He "
             "initialisation, MLPs no normalisation and PyTorch's default initialisation; "
             f"{fmt_number(study.get('seconds'), 0, ' s')} in all.")
    parts = [
        f"<header><h1>Depth study: plain vs residual</h1><p class=\"sub\">{setup} Created {fmt_text(study.get('created'))}."
        "</p></header>",
        section("findings", "What this run found", f"<ul>{findings}</ul>"),
        section("accuracy", "Test accuracy against depth", embed("accuracy_vs_depth", accuracy_vs_depth(results),
                                                                 "test accuracy against depth")),
        section("curves", "Training loss per depth", embed("loss_curves", loss_curves(study_dir, results),
                                                           "training loss curves")),
        section("ratios", "Gradient flow: first/last-layer gradient-norm ratio", _ratio_table(results)),
        _heatmap_section(study_dir, results, embed),
        section("robustness", "Accuracy under FGSM", _robust_section(results, embed)),
    ]
    report = study_dir / REPORT_FILE
    atomic_write_bytes(report, page("archlab depth study", "\n".join(parts)).encode("utf-8"))
    return report
