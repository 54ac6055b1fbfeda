"""The ``archlab`` command line through typer's CliRunner: help, listings, user errors, and a full flow
(train → runs → eval → report → predict → resume) on the tiny learnable data set."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import tinydata
from archlab.cli import app

# A wide terminal, so that rich neither wraps messages nor folds table cells (paths, numbers).
ENV = {"COLUMNS": "400", "LINES": "50"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TINY = ["--data", "tiny-blobs", "--val-size", "60", "--batch-size", "32", "--no-progress"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _stderr(result) -> str | None:
    """The separately captured stderr, or None where this CliRunner version mixes it into output."""
    try:
        return ANSI.sub("", result.stderr or "")
    except ValueError:
        return None


def text(result) -> str:
    """Everything the user saw, without colour codes."""
    out = ANSI.sub("", result.output)
    err = _stderr(result)
    return out if not err or err in out else out + "\n" + err


def flat(result) -> str:
    """``text`` with all whitespace runs collapsed (rich may wrap long messages)."""
    return " ".join(text(result).split())


def assert_ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}, {result.exception!r}\n{text(result)}"


def assert_user_error(result, *needles: str):
    """Exit 2 with a message naming the problem, and no traceback (nor any escaped exception)."""
    seen = text(result)
    assert result.exit_code == 2, f"exit {result.exit_code}, {result.exception!r}\n{seen}"
    # CliRunner swallows uncaught exceptions into result.exception (exit 1); a handled user error is
    # a SystemExit(2) from typer.Exit / click's usage error.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in seen
    message = " ".join(seen.split())
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    err = _stderr(result)
    if err is not None:  # stderr captured on its own: the message belongs there
        assert needles[0] in " ".join(err.split()), f"message not on stderr: {err!r}"


def table_rows(result) -> dict[str, list[str]]:
    """Rows of a rich table, keyed by their first cell."""
    rows = {}
    for line in text(result).splitlines():
        if "│" in line:
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells and cells[0]:
                rows[cells[0]] = cells
    return rows


# --- help --------------------------------------------------------------------------------------

COMMANDS = [["models"], ["recipes"], ["train"], ["eval"], ["predict"], ["runs"], ["report"],
            ["data", "list"], ["data", "fetch"]]


def test_app_help_lists_every_command():
    result = invoke("--help")
    assert_ok(result)
    for name in ("models", "recipes", "train", "eval", "predict", "runs", "report", "data"):
        assert re.search(rf"^\W*{name}\s", text(result), re.MULTILINE), name


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_help_has_an_example(command):
    result = invoke(*command, "--help")
    assert_ok(result)
    assert "Usage" in text(result) and command[-1] in text(result)
    assert "Example" in text(result)


# --- listings ----------------------------------------------------------------------------------

def test_models_lists_the_registry_with_parameter_counts():
    result = invoke("models")
    assert_ok(result)
    rows = table_rows(result)
    assert "cnn" in rows and rows["cnn"][1] == "cnn"
    assert "seed-cnn" in rows
    assert "1,625,866" in rows["seed-cnn"]


def test_recipes_lists_the_shipped_recipes():
    result = invoke("recipes")
    assert_ok(result)
    rows = table_rows(result)
    assert {"mnist-fast", "mnist-best"} <= set(rows)
    assert "model=cnn" in rows["mnist-fast"][1]


# --- user errors: exit 2, a message, no traceback ------------------------------------------------

@pytest.mark.parametrize("flags, needles", [
    (["nosuch"], ["Unknown model 'nosuch'", "cnn", "mlp", "seed-cnn"]),
    (["cnn", "--precision", "64"], ["precision", "'64'", "bf16-mixed"]),
    (["cnn", "--epochs", "-1"], ["epochs must be > 0", "-1"]),
    (["cnn", "--optimizer", "adamax"], ["adamax", "sgd", "adam"]),
    (["cnn", "--augment", "rotate_deg"], ["--augment", "rotate_deg", "key=value"]),
    (["cnn", "--model-arg", "widht=3"], ["widht", "channels", "dropout"]),
], ids=["unknown-model", "precision", "epochs", "optimizer", "augment", "model-arg"])
def test_train_rejects_bad_values(tiny_blobs, tmp_path, flags, needles):
    epochs = [] if "--epochs" in flags else ["--epochs", "1"]
    result = invoke("train", *flags, *TINY, *epochs, "--run-dir", tmp_path / "run")
    assert_user_error(result, *needles)
    assert not (tmp_path / "run" / "weights.safetensors").exists()


def test_train_with_nothing_named():
    assert_user_error(invoke("train"), "Name a model", "--recipe", "--resume")


@pytest.mark.parametrize("command", ["eval", "predict", "report"])
def test_missing_run_directory(tmp_path, command):
    missing = tmp_path / "no-such-run"
    extra = [tmp_path / "digit.png"] if command == "predict" else []
    assert_user_error(invoke(command, missing, *extra), "does not exist", str(missing))


def test_error_message_is_not_read_as_markup(tmp_path):
    # Square brackets in a user's path must be shown verbatim, not parsed as rich markup.
    for name in ("runs[/old]", "runs[old]"):
        missing = tmp_path / name
        assert_user_error(invoke("eval", missing), str(missing), "does not exist")


def test_data_fetch_unknown_name(tmp_path):
    result = invoke("data", "fetch", "nosuch", "--data-dir", tmp_path / "cache")
    assert_user_error(result, "Unknown data set 'nosuch'", "mnist", "fashion-mnist")
    assert not (tmp_path / "cache" / "nosuch").exists()


def test_predict_top_k_must_be_positive(tmp_path):
    assert_user_error(invoke("predict", tmp_path, tmp_path / "x.png", "--top-k", "0"), "--top-k")


def test_resume_needs_a_run_directory(tmp_path):
    assert_user_error(invoke("train", "--resume", tmp_path), "Cannot resume", "config.yaml")


# --- end to end on tiny data -----------------------------------------------------------------------

ACCURACY = re.compile(r"test accuracy\W+([01]\.\d{4})")


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """One 2-epoch CNN run on tiny-blobs, trained through the CLI once per module (training is the slow
    part): the same setup as the ``tiny_blobs`` fixture (private ARCHLAB_DATA, registered data set)."""
    from archlab.data.fetch import DATASETS

    root = tmp_path_factory.mktemp("cli-train")
    run = root / "runs" / "cnn-tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHLAB_DATA", str(root / "cache"))
        tinydata.register(root / "source")
        try:
            result = invoke("train", "cnn", *TINY, "--epochs", "2", "--run-dir", run)
        finally:
            DATASETS.pop(tinydata.NAME, None)
    return run, result


@pytest.fixture
def trained_run(trained_once, tmp_path):
    """A private copy of the trained run directory (tests refresh, delete or resume files in it)."""
    original, result = trained_once
    assert_ok(result)
    run = tmp_path / "runs" / "cnn-tiny"
    shutil.copytree(original, run)
    return run


def test_train_prints_the_test_accuracy_and_writes_the_run(trained_once):
    run, result = trained_once
    assert_ok(result)
    summary = json.loads((run / "summary.json").read_text())
    match = ACCURACY.search(text(result))
    assert match, text(result)
    assert float(match.group(1)) == pytest.approx(summary["test_metrics"]["accuracy"], abs=5e-5)
    assert summary["test_metrics"]["accuracy"] >= 0.5  # ten classes: chance is 0.1
    assert str(run) in flat(result)
    for name in ("config.yaml", "meta.json", "weights.safetensors", "report.html", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name


def test_runs_eval_report_on_a_trained_run(tiny_blobs, trained_run):
    run = trained_run
    result = invoke("runs", "--root", run.parent)
    assert_ok(result)
    rows = [cells for cells in table_rows(result).values() if str(run) in cells]
    assert len(rows) == 1, text(result)
    accuracy = json.loads((run / "summary.json").read_text())["test_metrics"]["accuracy"]
    assert "cnn" in rows[0] and "tiny-blobs" in rows[0] and f"accuracy {accuracy:.4f}" in rows[0]

    result = invoke("eval", run)
    assert_ok(result)
    match = ACCURACY.search(text(result))
    assert match, text(result)
    assert float(match.group(1)) == pytest.approx(accuracy, abs=5e-5)

    (run / "report.html").unlink()
    result = invoke("report", run)
    assert_ok(result)
    assert (run / "report.html").is_file() and (run / "report.html").stat().st_size > 1000
    assert str(run / "report.html") in flat(result)


def test_runs_on_an_empty_folder(tmp_path):
    result = invoke("runs", "--root", tmp_path)
    assert_ok(result)
    assert "No runs under" in flat(result)


PREDICTION = re.compile(r"^(\S+): (\S+)\s+\((.*)\)$", re.MULTILINE)


def predictions(result) -> dict[str, list[str]]:
    """source → the ranked "class probability" entries of each prediction line."""
    return {source: [e.strip() for e in ranked.split(",")]
            for source, _, ranked in PREDICTION.findall(text(result))}


def test_predict_image_and_array(trained_run, tmp_path):
    run = trained_run
    # A tiny-blobs digit as a user would draw it: dark on a light background, RGB, 40×30 pixels.
    digit, digit_label = tinydata.blobs(8, seed=11)
    Image.fromarray(255 - digit[7]).resize((40, 30), Image.Resampling.BILINEAR).convert("RGB") \
        .save(tmp_path / "img.png")
    images, labels = tinydata.blobs(3, seed=7)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    np.save(tmp_path / "arr.npy", images)

    result = invoke("predict", run, tmp_path / "img.png", tmp_path / "arr.npy")
    assert_ok(result)
    out = flat(result)
    assert "converted mode RGB to greyscale" in out
    assert "resized 40×30 to 28×28" in out
    assert "inverted a light background" in out
    found = predictions(result)
    img = str(tmp_path / "img.png")
    arrays = [f"{tmp_path / 'arr.npy'}[{n}]" for n in range(3)]
    assert set(found) == {img, *arrays}, text(result)
    classes = [str(c) for c in range(10)]
    for entries in found.values():
        assert len(entries) == 3  # default top-k
        names = [e.split()[0] for e in entries]
        probs = [float(e.split()[1]) for e in entries]
        assert set(names) <= set(classes) and len(set(names)) == 3
        assert probs == sorted(probs, reverse=True) and 0 <= probs[-1] and probs[0] <= 1
    # Converted back to what the model was trained on, the inputs are recognised.
    correct = sum(found[a][0].split()[0] == str(c) for a, c in zip(arrays, labels))
    assert correct >= 2, (found, labels)
    assert found[img][0].split()[0] == str(digit_label[7]), (found[img], digit_label[7])


def test_predict_top_k_two(trained_run, tmp_path):
    run = trained_run
    np.save(tmp_path / "one.npy", tinydata.blobs(1, seed=3)[0][0])  # a single [28, 28] image
    result = invoke("predict", run, tmp_path / "one.npy", "--top-k", "2")
    assert_ok(result)
    found = predictions(result)
    assert list(found) == [str(tmp_path / "one.npy")], text(result)
    assert len(found[str(tmp_path / "one.npy")]) == 2


def test_predict_rejects_unreadable_and_missing_inputs(trained_run, tmp_path):
    run = trained_run
    fake = tmp_path / "fake.png"
    fake.write_text("this is not an image")
    assert_user_error(invoke("predict", run, fake), "Cannot read", str(fake), "as an image")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 5, 5), np.uint8))
    assert_user_error(invoke("predict", run, bad), str(bad), "(2, 5, 5)", "28×28")
    assert_user_error(invoke("predict", run, tmp_path / "nope.png"), "does not exist", "nope.png")


def test_resume_a_finished_run(tiny_blobs, trained_run, tmp_path):
    run = trained_run
    assert (run / "checkpoints" / "last.ckpt").is_file()
    steps = json.loads((run / "summary.json").read_text())["steps"]
    result = invoke("train", "--resume", run, "--no-progress")
    assert_ok(result)
    assert ACCURACY.search(text(result))
    assert json.loads((run / "summary.json").read_text())["steps"] == steps  # already at max steps

    # A run directory with its config but no checkpoint yet cannot be resumed.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(run / "config.yaml", fresh / "config.yaml")
    assert_user_error(invoke("train", "--resume", fresh, "--no-progress"), "Cannot resume", "last.ckpt")
