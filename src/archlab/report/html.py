"""The HTML report of one run: a single self-contained page, written atomically into the run directory.

``build_report(run_dir)`` reads the run's files, draws the figures, embeds each as a base64 PNG data URI
(and also saves it as ``run_dir/figures/NAME.png``), and writes ``run_dir/report.html`` through a temporary
file in the same folder and ``os.replace``, so a reader never sees a half-written report.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from archlab.io import atomic_write_bytes
from archlab.report import analysis_sections, sections
from archlab.report.hidden_states import hidden_states
from archlab.report.attention import attention_section
from archlab.report.diffusion import diffusion_section
from archlab.report.forecast import forecast_section
from archlab.report.gan import gan_section
from archlab.report.language import language_section
from archlab.report.seq2seq import seq2seq_section
from archlab.report.translate import anomaly_section, reconstruct_section, translate_section
from archlab.report.vit import vit_attention_section
from archlab.report.figures import figure_to_png
from archlab.report.run_files import read_run_files

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; max-width: 1100px;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
header { border-bottom: 2px solid #ddd; margin-bottom: 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #eee; }
.sub, .caption { color: #666; font-size: 0.9rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5rem 0.8rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.95rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; }
th { background: #f4f4f4; } tbody tr:nth-child(even) { background: #fafafa; }
table.kv td:first-child, td:first-child { text-align: left; }
img { max-width: 100%; height: auto; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
"""


def build_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (and ``run_dir/figures/*.png``) and return the report's path.

    Raises :class:`archlab.errors.RunError` when the run directory or its ``summary.json`` is missing.
    Missing optional inputs (predictions, metrics, gradient norms, config) leave a note in their section.
    """
    run = read_run_files(Path(run_dir))
    embed = FigureEmbedder(run.run_dir / FIGURES_DIR)
    parts = [
        sections.header(run),
        sections.key_numbers(run),
        sections.cross_validation(run),
        sections.curves(run, embed),
        sections.learning_rate(run, embed),
        sections.classification(run, embed),
        language_section(run, embed),
        attention_section(run, embed),
        forecast_section(run, embed),
        seq2seq_section(run, embed),
        gan_section(run, embed),
        diffusion_section(run, embed),
        anomaly_section(run, embed),
        translate_section(run, embed),
        reconstruct_section(run, embed),
        sections.grad_norms(run, embed),
        analysis_sections.inside_network(run, embed),
        vit_attention_section(run, embed),
        hidden_states(run, embed),
        analysis_sections.robustness(run, embed),
        sections.config(run),
    ]
    title = f"archlab report: {run.summary.get('model', 'model')} on {run.summary.get('data', 'data')}"
    path = run.run_dir / REPORT_FILE
    atomic_write_bytes(path, page(title, "\n".join(part for part in parts if part)).encode("utf-8"))
    return path


class FigureEmbedder:
    """Save figures as PNG files in one folder and return ``<img>`` tags embedding them as data URIs."""

    def __init__(self, folder: Path, dpi: int = 100) -> None:
        self.folder = folder
        self.dpi = dpi

    def __call__(self, name: str, figure: Figure, alt: str) -> str:
        """Save ``figure`` as ``NAME.png`` and return its ``<img>`` markup; the figure is cleared afterwards."""
        png = figure_to_png(figure, dpi=self.dpi)
        figure.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{name}.png", png)
        data = base64.b64encode(png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def page(title: str, body: str) -> str:
    """A complete HTML document with the inline style sheet."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
