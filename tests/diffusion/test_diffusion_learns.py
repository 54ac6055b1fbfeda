"""Real-data learning test of the diffusion task (marked slow)."""

from __future__ import annotations

import csv

import pytest

import archlab


@pytest.mark.slow
def test_ddpm_denoising_loss_falls_on_mnist(tmp_path):
    """Bar: after 100 steps of batch 32 on MNIST, a 33k-parameter ddpm U-Net (widths 8/16) reaches a validation
    loss (fixed t's and noise, EMA weights) under 0.2, and under a third of its first logged training loss; a
    network that predicts no noise at all scores ≈ 1.0. Budget: about 25 s on one busy core (measured 0.09)."""
    run = archlab.train("ddpm", data="mnist", max_steps=100, batch_size=32, val_size=500, eval_batch_size=500,
                        optimizer={"name": "adamw", "lr": 2e-3}, log_every_n_steps=10, eval_test=False,
                        model_args={"base_channels": 8, "channel_mults": [1, 2], "heads": 2, "groups": 4},
                        task_args={"eval_samples": 0}, run_dir=tmp_path / "run", progress=False, report=False)
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    first = float(next(row["train_loss"] for row in rows if row.get("train_loss")))
    final = run.summary["best_val"]["val_loss"]
    assert final < 0.2 and final < first / 3, (first, final)


@pytest.fixture
def stand_in_judge(tmp_path, monkeypatch):
    """An untrained judge network in a private folder: the scoring *path* is under test, not the scores."""
    from archlab.metrics import generative, judge
    from archlab.models import create_model

    folder = tmp_path / "judges"
    entry = {"version": 1, "data": "mnist", "model": "cnn", "model_args": {"channels": [4, 8]},
             "normalization": {"mean": 0.13, "std": 0.31}}
    judge.write_judge("mnist", create_model("cnn", channels=(4, 8)).eval(), entry, folder)
    score, load = generative.score_images, judge.load_judge
    monkeypatch.setattr(generative, "score_images", lambda images, data, **kw: score(images, data, folder=folder, **kw))
    monkeypatch.setattr(judge, "load_judge", lambda data: load(data, folder))
    generative.clear_cache()
    yield folder
    generative.clear_cache()


@pytest.mark.slow
def test_samples_are_scored_at_test_time_and_by_eval(tmp_path, stand_in_judge):
    """The test pass scores its samples (FID headline, coverage in the summary) and `archlab eval` re-scores
    them with another sampler. Budget: about 30 s on one busy core (MNIST test features through the stand-in judge)."""
    from archlab.inference import describe_evaluation, evaluate
    from archlab.diffusion.evaluation import evaluate_diffusion
    from archlab.runs import load_model

    run = archlab.train("ddpm", data="mnist", max_steps=2, batch_size=16, val_size=100, eval_batch_size=500,
                        model_args={"base_channels": 8, "channel_mults": [1, 2], "heads": 2, "groups": 4},
                        task_args={"timesteps": 20, "eval_samples": 30, "eval_steps": 3}, run_dir=tmp_path / "run",
                        progress=False, report=False)
    test = run.summary["test_metrics"]
    assert {"fid", "kid_mean", "inception_score", "coverage_entropy", "loss"} <= set(test) and test["fid"] > 0
    assert len(run.summary["class_histogram"]) == 10
    metrics = evaluate(run.path)
    assert metrics["n"] == 30 and metrics["sampler"] == "ddim" and metrics["steps"] == 3
    assert "FID" in describe_evaluation(run.path, metrics)[1]
    ancestral = evaluate_diffusion(run.path, load_model(run.path), n=10, sampler="ddpm")
    assert ancestral["n"] == 10 and ancestral["steps"] is None
