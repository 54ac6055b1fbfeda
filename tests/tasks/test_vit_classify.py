"""The ViT through the classify task: it learns real MNIST, and its report shows where it looks."""

from __future__ import annotations

import pytest

import archlab
from archlab.report.html import FigureEmbedder
from archlab.report.run_files import read_run_files
from archlab.report.vit import vit_attention_section

TINY_VIT = {"patch": 7, "dim": 32, "layers": 2, "heads": 2, "mlp_ratio": 2.0}


def test_report_of_a_vit_run_shows_the_attention_rollout(tiny_blobs, tmp_path):
    run = archlab.train("vit", model_args=TINY_VIT, max_steps=12, optimizer={"name": "adamw", "lr": 0.003},
                        run_dir=tmp_path / "vit", report=False, **tiny_blobs)
    html = vit_attention_section(read_run_files(run.path), FigureEmbedder(tmp_path / "figures"))
    assert 'id="vit-attention"' in html and "attention rollout" in html and "<img" in html
    assert (tmp_path / "figures" / "vit_attention.png").stat().st_size > 1000


def test_no_attention_section_for_a_cnn(tiny_blobs, tmp_path):
    run = archlab.train("cnn", model_args={"channels": [4, 8]}, max_steps=2, run_dir=tmp_path / "cnn",
                        report=False, **tiny_blobs)
    drawn = []
    assert vit_attention_section(read_run_files(run.path), lambda *args: drawn.append(args) or "") == ""
    assert not drawn


def test_a_vit_run_that_cannot_be_loaded_leaves_a_note(tiny_blobs, tmp_path):
    run = archlab.train("vit", model_args=TINY_VIT, max_steps=2, run_dir=tmp_path / "vit", report=False,
                        **tiny_blobs)
    (run.path / "weights.safetensors").write_bytes(b"not weights")
    html = vit_attention_section(read_run_files(run.path), lambda *args: "")
    assert 'id="vit-attention"' in html and "could not be loaded" in html


@pytest.mark.slow
def test_vit_learns_mnist(tmp_path):
    """Bar: ≥95% MNIST test accuracy from a 3-layer, patch-7 ViT (106k parameters) trained for 1.5 epochs
    (budget: about 25 s of training on one quiet core; measured 96-97%, against 11% by chance)."""
    run = archlab.train("vit", data="mnist", model_args={"patch": 7, "dim": 64, "layers": 3, "heads": 4},
                        epochs=1.5, batch_size=128, optimizer={"name": "adamw", "lr": 0.006},
                        schedule={"name": "one-cycle"}, run_dir=tmp_path / "run", progress=False, report=False)
    assert run.test_accuracy >= 0.95, run.summary
