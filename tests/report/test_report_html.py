"""The HTML report of a run: content, embedded figures, atomic write, missing inputs."""

import json

import pytest

from archlab.errors import RunError
from archlab.report import build_report

IMG_TAG = '<img src="data:image/png;base64,'
ALL_FIGURES = {"curves", "learning_rate", "confusion_matrix", "per_class_accuracy", "mistakes", "grad_norms"}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, make_fake_run):
    """A report built once from a complete fake run; returns (run_dir, html text)."""
    run_dir = make_fake_run(tmp_path_factory.mktemp("full") / "run")
    path = build_report(run_dir)
    assert path == run_dir / "report.html"
    return run_dir, path.read_text(encoding="utf-8")


def test_report_shows_the_headline_numbers(full_report):
    _, html = full_report
    for text in ("cnn", "mnist", "mnist-fast", "99.10 %", "0.0300", "98.90 %", "0.0410", "12.3 s",
                 "25,000 images/s", "123,456", "4.20", "bf16-mixed", "2026-11-23T10:00:00"):
        assert text in html, text


def test_report_embeds_one_image_per_figure_section(full_report):
    _, html = full_report
    assert html.count(IMG_TAG) == len(ALL_FIGURES)
    for anchor in ("curves", "learning-rate", "confusion", "per-class", "mistakes", "grad-norms"):
        start = html.index(f'<section id="{anchor}">')
        assert IMG_TAG in html[start:html.index("</section>", start)], anchor


def test_report_saves_figures_and_leaves_no_temporary_file(full_report):
    run_dir, _ = full_report
    assert {path.stem for path in (run_dir / "figures").glob("*.png")} == ALL_FIGURES
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in (run_dir / "figures").iterdir())
    leftovers = [path.name for path in run_dir.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


def test_report_has_cross_validation_table_and_escaped_config(full_report):
    _, html = full_report
    assert 'id="cross-validation"' in html and "5 folds" in html
    assert "98.40 % ± 0.28 %" in html
    assert 'note: &quot;a &lt; b &amp; c&quot;' in html


def test_missing_summary_raises_run_error(tmp_path, make_fake_run):
    run_dir = make_fake_run(tmp_path / "run")
    (run_dir / "summary.json").unlink()
    with pytest.raises(RunError, match=r"summary\.json.*archlab train"):
        build_report(run_dir)
    assert not (run_dir / "report.html").exists()


def test_missing_run_directory_raises_run_error(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        build_report(tmp_path / "nowhere")


def test_corrupt_summary_raises_run_error(tmp_path, make_fake_run):
    run_dir = make_fake_run(tmp_path / "run")
    (run_dir / "summary.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunError, match="not valid JSON"):
        build_report(run_dir)


def test_missing_predictions_and_grad_norms_leave_notes(tmp_path, make_fake_run):
    run_dir = make_fake_run(tmp_path / "run", predictions=False, grad_norms=False, cv=False)
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert html.count(IMG_TAG) == 2  # curves and learning rate
    assert f"re-run `archlab eval {run_dir}` to recreate predictions" in html
    assert "no grad_norm/* column" in html
    assert "no gradient-flow diagnostics" in html
    assert 'id="cross-validation"' not in html


def test_partial_summary_shows_dashes(tmp_path, make_fake_run):
    run_dir = make_fake_run(tmp_path / "run", predictions=False)
    (run_dir / "summary.json").write_text(json.dumps({"model": "mlp"}), encoding="utf-8")
    for name in ("metrics.csv", "config.yaml", "meta.json"):
        (run_dir / name).unlink()
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert "<td>test accuracy</td><td>—</td>" in html
    assert "No metrics.csv" in html and "No config.yaml" in html
    assert IMG_TAG not in html


def test_diagnoses_and_stop_reason_are_listed_with_layers_in_forward_order(tmp_path, make_fake_run):
    run_dir = make_fake_run(tmp_path / "run")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["diagnostics"] = {
        "diagnoses": [{"kind": "vanishing", "step": 40, "message": "first layer <tiny>", "layers": ["a"],
                       "suggestion": "add skip connections"}],
        "counts": {"vanishing": 3}, "stopped": "the loss is nan at step 41", "layers": ["conv2", "conv1"]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    html = build_report(run_dir).read_text()
    section = html[html.index('<section id="grad-norms">'):]
    assert "Training stopped: the loss is nan at step 41." in section
    assert "<td>vanishing</td><td>40</td><td>3</td><td>first layer &lt;tiny&gt;</td>" in section
    assert "add skip connections" in section
