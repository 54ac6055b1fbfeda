"""``archlab explain`` and ``archlab attack`` through typer's CliRunner, on a run trained on tiny-blobs:
figures and files written, numbers printed, and exit code 2 with one clear paragraph on bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import archlab.cli
import tinydata
from archlab.cli import app
from archlab.runs import load_model

ENV = {"COLUMNS": "400", "LINES": "50"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200))
    monkeypatch.setattr(archlab.cli, "errors", Console(stderr=True, soft_wrap=True, width=200))


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def text(result) -> str:
    """Everything the user saw (stdout and stderr), without colour codes, whitespace runs collapsed."""
    try:
        err = result.stderr or ""
    except ValueError:  # this CliRunner version mixes stderr into output
        err = ""
    return " ".join(ANSI.sub("", result.output + "\n" + err).split())


def table_rows(result) -> dict[str, list[str]]:
    """Rows of a rich table, keyed by their first cell."""
    rows = {}
    for line in ANSI.sub("", result.output).splitlines():
        if "│" in line:
            cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def assert_ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}, {result.exception!r}\n{text(result)}"


def assert_user_error(result, *needles):
    seen = text(result)
    assert result.exit_code == 2, f"exit {result.exit_code}, {result.exception!r}\n{seen}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in seen
    for needle in needles:
        assert needle in seen, f"{needle!r} not in {seen!r}"


@pytest.mark.parametrize("command", ["explain", "attack"])
def test_help_has_an_example(command):
    result = invoke(command, "--help")
    assert_ok(result)
    assert "Usage" in text(result) and f"Example: archlab {command}" in text(result)
    assert re.search(rf"^\W*{command}\s", ANSI.sub("", invoke("--help").output), re.MULTILINE)


# --- explain ------------------------------------------------------------------------------------------------

def test_explain_a_png(trained_run, tmp_path):
    digits, labels = tinydata.blobs(8, seed=11)
    Image.fromarray(255 - digits[3]).convert("RGB").save(tmp_path / "digit.png")  # dark on light, as drawn
    result = invoke("explain", trained_run, tmp_path / "digit.png")
    assert_ok(result)
    seen = text(result)
    assert f"predicted {labels[3]} (p = " in seen and "Grad-CAM at layer stages" in seen
    assert "inverted a light background" in seen
    folder = trained_run / "explain" / "digit"
    for name in ("filters.png", "activations.png", "grad_cam.png"):
        assert (folder / name).read_bytes().startswith(b"\x89PNG"), name
        assert str(folder / name) in seen
    heat = np.load(folder / "grad_cam.npy")
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() <= 1


def test_explain_an_array_at_a_layer_for_a_class(trained_run, tmp_path):
    np.save(tmp_path / "one.npy", tinydata.blobs(1, seed=5)[0][0])
    out = tmp_path / "out"
    result = invoke("explain", trained_run, tmp_path / "one.npy", "--layer", "stages.0", "--class", "3", "--out", out)
    assert_ok(result)
    assert "Grad-CAM at layer stages.0" in text(result)
    assert sorted(p.name for p in out.iterdir()) == ["activations.png", "filters.png", "grad_cam.npy", "grad_cam.png"]


def test_explain_python_api(trained_run, tmp_path):
    import archlab

    image, label = tinydata.blobs(1, seed=9)
    np.save(tmp_path / "x.npy", image)  # [1, 28, 28]
    result = archlab.explain(trained_run, tmp_path / "x.npy", target_class=4, out_dir=tmp_path / "o")
    assert result.predicted == str(label[0]) and result.target == "4"
    assert result.grad_cam.shape == (28, 28) and result.filters.shape == (8, 1, 5, 5)
    assert list(result.activations) == ["stem", "stages.0", "stages.1"]
    assert all(path.is_file() for path in result.paths.values())


@pytest.mark.parametrize("case", ["missing-image", "many-images", "layer", "class", "missing-run"])
def test_explain_rejects_bad_input(trained_run, tmp_path, case):
    np.save(tmp_path / "three.npy", tinydata.blobs(3, seed=1)[0])
    np.save(tmp_path / "one.npy", tinydata.blobs(1, seed=1)[0])
    one = tmp_path / "one.npy"
    cases = {
        "missing-image": ([trained_run, tmp_path / "nope.png"], ["does not exist", "nope.png"]),
        "many-images": ([trained_run, tmp_path / "three.npy"], ["holds 3 images", "explain takes one"]),
        "layer": ([trained_run, one, "--layer", "nope"], ["Unknown layer 'nope'", "stages.0"]),
        "class": ([trained_run, one, "--class", "12"], ["Unknown class '12'", "0, 1, 2"]),
        "missing-run": ([tmp_path / "no-run", one], ["does not exist", "no-run"]),
    }
    args, needles = cases[case]
    assert_user_error(invoke("explain", *args), *needles)


# --- attack -------------------------------------------------------------------------------------------------

def test_attack_fgsm_end_to_end(tiny_blobs, trained_run):
    result = invoke("attack", trained_run, "--eps", "0,0.1,0.3", "--limit", "40")
    assert_ok(result)
    record = json.loads((trained_run / "attack-fgsm.json").read_text())
    assert record["method"] == "fgsm" and record["eps"] == [0.0, 0.1, 0.3] and record["images"] == 40
    rows = table_rows(result)
    for value, accuracy in zip(record["eps"], record["accuracy"]):
        assert rows[f"{value:g}"][1] == f"{accuracy:.4f}", rows
    # ε = 0 is exactly the clean accuracy of the saved model on those images.
    loaded = load_model(trained_run)
    images, labels = tinydata.blobs(100, seed=2)
    x = torch.from_numpy(images[:40, None]).float().div(255).sub(loaded.mean).div(loaded.std)
    with torch.no_grad():
        clean = float((loaded.model(x).argmax(1) == torch.from_numpy(labels[:40]).long()).float().mean())
    assert record["accuracy"][0] == record["clean_accuracy"] == clean
    assert record["accuracy"][-1] <= record["accuracy"][0]
    assert (trained_run / "attack-fgsm.png").read_bytes().startswith(b"\x89PNG")
    assert 'id="robustness"' in (trained_run / "report.html").read_text()  # the report was rebuilt


def test_attack_pgd_python_api(tiny_blobs, trained_run):
    import archlab

    result = archlab.attack(trained_run, method="pgd", eps=[0.2, 0.0], steps=3, limit=30, update_report=False)
    assert result.eps == [0.0, 0.2] and result.images == 30
    assert result.accuracy[1] <= result.accuracy[0] == result.clean_accuracy
    assert set(result.paths) == {"json", "png"}
    assert json.loads(result.paths["json"].read_text())["settings"]["steps"] == 3


@pytest.mark.parametrize("flags, needles", [
    (["--method", "cw"], ["Unknown attack method 'cw'", "fgsm, pgd"]),
    (["--eps", "0,-0.1"], ["ε must be in [0, 1]", "-0.1"]),
    (["--eps", "0,big"], ["--eps '0,big'", "numbers separated by commas"]),
    (["--steps", "0", "--method", "pgd"], ["steps must be at least 1"]),
    (["--limit", "0"], ["limit must be at least 1"]),
], ids=["method", "negative-eps", "not-a-number", "steps", "limit"])
def test_attack_rejects_bad_input(trained_run, flags, needles):
    assert_user_error(invoke("attack", trained_run, *flags), *needles)
    assert not list(trained_run.glob("attack-*"))


def test_attack_a_missing_run(tmp_path):
    assert_user_error(invoke("attack", tmp_path / "no-run"), "does not exist", "no-run")
