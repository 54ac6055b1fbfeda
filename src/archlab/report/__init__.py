"""Reports of runs: figures drawn with matplotlib's Agg canvas (no pyplot) and a self-contained HTML page.

``build_report(run_dir)`` writes ``run_dir/report.html``; ``read_metrics_csv(path)`` parses Lightning's
``metrics.csv``; :mod:`archlab.report.runs` finds and tabulates the runs under a folder.
"""

from archlab.report.html import build_report
from archlab.report.metrics_csv import read_metrics_csv

__all__ = ["build_report", "read_metrics_csv"]
