"""Kill -9 in the middle of an epoch, resume, and end with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

import archlab

TESTS = Path(__file__).resolve().parents[1]
SETTINGS = dict(epochs=3, seed=7, deterministic=True, checkpoint_every_n_steps=3, num_threads=1,
                model_args={"dropout": 0.3}, augment={"rotate_deg": 8, "erase_p": 0.3})
KILL_AT_STEP = 13  # epoch 2 of 3 (8 steps per epoch), one step after the checkpoint at step 12


def _killed_run(run_dir: Path, cache: Path, source: Path) -> subprocess.CompletedProcess:
    """Train in a child process that SIGKILLs itself right after optimizer step KILL_AT_STEP."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        import lightning as L, tinydata, archlab
        tinydata.register({str(source)!r})

        class Kill(L.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step == {KILL_AT_STEP}:
                    os.kill(os.getpid(), signal.SIGKILL)

        archlab.train("cnn", run_dir={str(run_dir)!r}, callbacks=[Kill()], data="tiny-blobs", val_size=60,
                      eval_batch_size=50, batch_size=32, progress=False, log_every_n_steps=2, **{SETTINGS!r})
    """)
    env = {**os.environ, "ARCHLAB_DATA": str(cache)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


def test_kill_and_resume_gives_the_same_final_weights(tiny_blobs, tmp_path):
    reference = archlab.train("cnn", run_dir=tmp_path / "reference", **SETTINGS, **tiny_blobs)

    killed_dir = tmp_path / "killed"
    child = _killed_run(killed_dir, Path(os.environ["ARCHLAB_DATA"]), tmp_path / "source")
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert not (killed_dir / "summary.json").exists()
    last = torch.load(killed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 12  # the latest periodic checkpoint before the kill

    class FirstStep(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            self.__dict__.setdefault("step", trainer.global_step)

    first = FirstStep()
    resumed = archlab.train(resume=killed_dir, callbacks=[first])
    assert first.step == 12  # continued from the checkpoint, not restarted
    assert resumed.summary["steps"] == reference.summary["steps"] == 24
    ref_weights = load_file(str(reference.path / "weights.safetensors"))
    new_weights = load_file(str(resumed.path / "weights.safetensors"))
    assert ref_weights.keys() == new_weights.keys()
    for name in ref_weights:
        torch.testing.assert_close(new_weights[name], ref_weights[name], rtol=0, atol=0, msg=name)
    assert resumed.test_accuracy == reference.test_accuracy
    # metrics.csv holds the whole history: steps before the kill and after the resume, once each
    with open(resumed.path / "metrics.csv", newline="") as handle:
        train_steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("train_loss")]
    assert train_steps == sorted(set(train_steps)) and min(train_steps) < 12 < max(train_steps)
    assert not list(resumed.path.glob(".metrics.csv*"))


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_blobs, tmp_path):
    run_dir = tmp_path / "fresh"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model: cnn\ndata: tiny-blobs\nval_size: 60\n")
    with pytest.raises(archlab.errors.RunError, match="no checkpoint"):
        archlab.train(resume=run_dir)
