"""``archlab forecast``, ``archlab.forecast`` and the report's forecast section, on a short co2 run."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import archlab
from archlab import cli
import archlab.cli_forecast  # noqa: F401  (registers the command and the summary printer)
from archlab.errors import RunError
from archlab.report.forecast import forecast_section
from archlab.report.run_files import read_run_files


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast") / "run"
    archlab.train("gru-forecast", data="co2", task_args={"horizon": 2, "window": 20}, model_args={"hidden": 8},
                  max_steps=20, batch_size=32, run_dir=folder, progress=False, report=False,
                  monitor={"every_n_steps": 0})
    return folder


def test_run_leaves_forecasts_and_self_describing_meta(run_dir):
    meta = json.loads((run_dir / "meta.json").read_text())["forecast"]
    assert meta["series"] == "co2" and meta["horizon"] == 2 and meta["window"] == 20
    assert meta["split"]["train"][1] == meta["split"]["val"][0] and meta["split"]["test"][1] == 2284
    summary = json.loads((run_dir / "summary.json").read_text())["forecast"]
    models = {row["model"] for row in summary["rows"]}
    assert {"network", "naive", "seasonal-naive(52)", "mean"} <= models and any(m.startswith("AR(") for m in models)
    with np.load(run_dir / "forecast.npz") as arrays:
        assert arrays["network"].shape == (arrays["origins"].size, 2) and arrays["origins"].min() >= arrays["split"][2]


def test_forecast_api_extends_the_horizon_by_feeding_forecasts_back(run_dir):
    result = archlab.forecast(run_dir, horizon=5)
    assert result.network.shape == (5,) and np.isfinite(result.network).all()
    assert np.all(np.diff(result.timestamps) == np.timedelta64(7, "D"))
    assert result.timestamps[0] == np.datetime64("2001-12-29") + np.timedelta64(7, "D")
    assert result.baselines["naive"].tolist() == [pytest.approx(371.5)] * 5  # the last co2 value, 2001-12-29
    assert {row["horizon"] for row in result.rows} == {1, 5}
    short = archlab.forecast(run_dir, horizon=1)
    assert short.network[0] == pytest.approx(result.network[0], abs=1e-4)


def test_cli_prints_the_forecast_and_the_comparison_and_saves_a_plot(run_dir, tmp_path):
    plot = tmp_path / "plot.png"
    result = CliRunner().invoke(cli.app, ["forecast", str(run_dir), "--horizon", "3", "--output", str(plot)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2002-01-05" in result.output and "network" in result.output and "naive" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(cli.app, ["forecast", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_summary_printer_is_registered(run_dir, capsys):
    summary = json.loads((run_dir / "summary.json").read_text())
    cli.SUMMARY_PRINTERS["forecast"](summary)
    assert "AR(" in capsys.readouterr().out


def test_report_section_has_the_table_and_the_plot(run_dir, tmp_path):
    embedded = []

    def embed(name, figure, alt):
        embedded.append(name)
        return f'<img alt="{alt}">'

    html = forecast_section(read_run_files(run_dir), embed)
    assert "network" in html and "seasonal-naive(52)" in html and "<strong>" in html and embedded == ["forecast"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text("{}")
    assert forecast_section(read_run_files(other), embed) == ""


def test_a_non_forecasting_run_is_refused(tmp_path, monkeypatch):
    from archlab import forecasting
    from archlab.runs import LoadedModel

    monkeypatch.setattr(forecasting, "load_model", lambda run_dir: LoadedModel(None, {"model": "cnn"}))
    with pytest.raises(RunError, match="not a forecasting run"):
        archlab.forecast(tmp_path)
