"""The "Diffusion" section of a diffusion run's report: scores, samples, the reverse process, class grids.

Reads ``diffusion.json`` and the PNGs written after the test pass (``archlab.diffusion.outputs``) and the test
scores in ``summary.json``. For a ``seed-diffuser`` run it adds why that listing cannot denoise. Empty for runs
of other tasks.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_number, note, section, table

DIFFUSION_JSON = "diffusion.json"

SEED_DIFFUSER_NOTE = (
    "<p><b>Why the seed listing cannot denoise.</b> <code>seed-diffuser</code> is three 3×3 convolutions whose "
    "output is multiplied by t/1000. It never receives t except through that final scale, so it must make the "
    "same guess (up to a factor) about the noise in an image at every noise level: it cannot tell a nearly clean "
    "x<sub>t</sub> at small t from pure noise at t = T, which is exactly the distinction reverse diffusion needs. "
    "The scale also forces its prediction towards 0 as t → 0, where the ideal noise estimate is not small. "
    "Its receptive field is 7×7 pixels, too small to know what digit a stroke belongs to. Trained the only "
    "sensible way (predict the noise of x<sub>t</sub> under the same schedule as <code>ddpm</code>), its samples "
    "below stay textures and blobs; the <code>ddpm</code> U-Net (time embedding in every block, group norm, "
    "self-attention at 7×7, a 28×28 → 7×7 → 28×28 path) is what turns the same objective into digits.</p>")


def _png_figure(path: Path) -> Figure:
    """A figure showing the PNG at its own pixel size (100 dpi), without axes."""
    from PIL import Image
    import numpy as np

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    figure = Figure(figsize=(pixels.shape[1] / 100, pixels.shape[0] / 100), dpi=100)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    return figure


def _image(run_dir: Path, name: str | None, embed: Embed, anchor: str, alt: str) -> str:
    if not name or not (run_dir / name).is_file():
        return note(f"{name or alt} is missing; draw new samples with `archlab sample {run_dir}`.")
    return embed(anchor, _png_figure(run_dir / name), alt)


def _scores(run: RunFiles, info: dict) -> str:
    test = run.summary.get("test_metrics") or {}
    if "fid" not in test:
        return note("No sample scores: this run was trained with eval_samples=0; score it with `archlab eval "
                    f"{escape(str(run.run_dir))}`.")
    rows = [["FID (lower is better)", fmt_number(test.get("fid"), 2)],
            ["KID", f"{fmt_number(test.get('kid_mean'), 4)} ± {fmt_number(test.get('kid_std'), 4)}"],
            ["Inception Score (judge network)", f"{fmt_number(test.get('inception_score'), 2)} ± "
                                                f"{fmt_number(test.get('inception_score_std'), 2)}"],
            ["class coverage (bits; 3.32 = all ten even)", fmt_number(test.get("coverage_entropy"), 3)],
            ["samples scored", escape(str(info.get("eval_samples", "—")))]]
    return table(["", ""], rows, "kv")


def diffusion_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run that is not a diffusion model."""
    run_dir = Path(run.run_dir)
    path = run_dir / DIFFUSION_JSON
    if run.meta.get("task") != "diffusion" and not path.is_file():
        return ""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return section("diffusion", "Diffusion", note(f"{DIFFUSION_JSON} could not be read ({error}); rebuild the "
                                                      "outputs by training again or sample with `archlab sample`."))
    schedule = run.meta.get("schedule") or {}
    steps = info.get("steps") or "all"
    settings = (f"<p>Schedule <b>{escape(str(schedule.get('name', '?')))}</b> with T = "
                f"{escape(str(schedule.get('timesteps', '?')))}, the network predicts "
                f"<b>{escape(str(run.meta.get('prediction', 'eps')))}</b>, EMA decay "
                f"{escape(str(run.meta.get('ema_decay', '—')))} (the saved weights are the averaged ones). Samples "
                f"by <b>{escape(str(info.get('sampler')))}</b>, {escape(str(steps))} steps, eta "
                f"{escape(str(info.get('eta')))}, seed {escape(str(info.get('seed')))}.</p>")
    parts = [settings, _scores(run, info)]
    if run.meta.get("model") == "seed-diffuser":
        parts.append(SEED_DIFFUSER_NOTE)
    parts += ["<h3>Samples</h3>", _image(run_dir, info.get("samples_png"), embed, "diffusion-samples", "samples")]
    times = ", ".join("0 (clean)" if t == -1 else str(t) for t in info.get("strip_times") or [])
    parts += ["<h3>Reverse process</h3>", f"<p class='caption'>Each row one sample, from x<sub>T</sub> (left) to "
              f"x<sub>0</sub> (right); visited t: {escape(times)}.</p>",
              _image(run_dir, info.get("strip_png"), embed, "diffusion-reverse", "reverse process")]
    grids = info.get("class_grids") or {}
    if grids:
        parts.append("<h3>Classes by guidance scale</h3><p class='caption'>One row per class. Classifier-free "
                     "guidance eps = eps_u + w (eps_c - eps_u): w = 0 ignores the class, w = 1 is the plain "
                     "conditional model, larger w trades diversity for class fidelity.</p>")
        for scale, name in grids.items():
            parts += [f"<h4>w = {escape(str(scale))}</h4>",
                      _image(run_dir, name, embed, f"diffusion-classes-g{scale}", f"class grid, guidance {scale}")]
    return section("diffusion", "Diffusion", "\n".join(parts))
