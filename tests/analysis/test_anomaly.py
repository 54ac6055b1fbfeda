"""Anomaly detection: ROC-AUC, the discriminator score, AnoGAN's latent search, the autoencoder baseline, runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archlab
from archlab.analysis.anomaly import (
    ANOMALY_JSON,
    LatentSearch,
    autoencoder_scores,
    discriminator_scores,
    feature_function,
    latent_search,
    roc_auc,
    score_runs,
)
from archlab.cli import app
from archlab.errors import ConfigError
from archlab.models import create_model
from archlab.runs import save_model
from archlab.data.splits import holding_out


def test_roc_auc_is_one_for_separable_scores_and_one_half_for_identical_distributions():
    labels = np.array([0] * 50 + [1] * 50, dtype=bool)
    assert roc_auc(np.r_[np.zeros(50), np.ones(50)], labels) == 1.0
    assert roc_auc(np.r_[np.ones(50), np.zeros(50)], labels) == 0.0  # the direction matters
    rng = np.random.default_rng(0)
    same = roc_auc(torch.from_numpy(rng.normal(size=4000)), torch.from_numpy(rng.random(4000) < 0.1))
    assert abs(same - 0.5) < 0.05
    with pytest.raises(ConfigError, match="both normal and anomalous"):
        roc_auc(np.ones(4), np.zeros(4, dtype=bool))
    with pytest.raises(ConfigError, match="one score per sample"):
        roc_auc(np.ones(3), np.zeros(4, dtype=bool))


def real_digits(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    from archlab.data import load_raw

    _, test, _ = load_raw("mnist")
    return test.images[:n].float() / 127.5 - 1, test.labels[:n]


class PcaGan(nn.Module):
    """A linear "generator" spanning the top principal components of real digits, with a tiny discriminator."""

    num_classes = 0

    def __init__(self, digits: torch.Tensor, latent_dim: int = 20) -> None:
        super().__init__()
        flat = digits.flatten(1)
        mean = flat.mean(0)
        _, _, components = torch.pca_lowrank(flat - mean, q=latent_dim, center=False)
        self.latent_dim = latent_dim
        self.generator = nn.Linear(latent_dim, 784)
        with torch.no_grad():
            self.generator.weight.copy_(components * 3)
            self.generator.bias.copy_(mean)
        self.discriminator = nn.Conv2d(1, 2, 4, stride=4)

    def forward(self, z):
        return self.generator(z).view(-1, 1, 28, 28)

    def discriminator_features(self, images):
        return self.discriminator(images).flatten(1)

    def discriminate(self, images, labels=None):
        return self.discriminator_features(images).mean(1)


def test_latent_search_lowers_the_reconstruction_error_of_a_real_image():
    from archlab.data import load_raw

    train, test, _ = load_raw("mnist")
    model = PcaGan(train.images[:2000].float() / 127.5 - 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = test.images[:4].float() / 127.5 - 1  # images the components were not fitted on
    start = latent_search(model, x, LatentSearch(steps=1, seed=1))
    end = latent_search(model, x, LatentSearch(steps=200, seed=1))
    assert bool((end[1] < 0.6 * start[1]).all()), (start[1], end[1])  # Σ|x - G(z)| per image
    assert bool((end[0] < start[0]).all())  # and the AnoGAN score A(x) it minimises
    assert end[2].shape == x.shape and end[3] is None  # the model exposes discriminator features
    for name, value in model.state_dict().items():  # the generator itself is untouched
        torch.testing.assert_close(value, before[name])
    assert all(p.requires_grad for p in model.parameters())


def test_latent_search_runs_on_a_dcgan_and_lowers_its_score():
    torch.manual_seed(0)
    model = create_model("dcgan", width=8).eval()
    x, _ = real_digits(4)
    start = latent_search(model, x, LatentSearch(steps=1, seed=1))
    end = latent_search(model, x, LatentSearch(steps=40, seed=1))
    assert bool((end[0] < start[0]).all()) and end[3] is None


def test_search_of_each_image_ignores_the_rest_of_its_batch():
    torch.manual_seed(0)
    model = create_model("dcgan", width=4).eval()
    x, _ = real_digits(4)
    z = torch.randn(4, model.latent_dim)
    together = latent_search(model, x, LatentSearch(steps=5, batch_size=4), start=z)[0]
    alone = latent_search(model, x[:2], LatentSearch(steps=5, batch_size=4), start=z[:2])[0]
    torch.testing.assert_close(together[:2], alone, rtol=1e-4, atol=1e-3)
    with pytest.raises(ConfigError, match="one z per image"):
        latent_search(model, x, start=z[:3])


class ScoreOnlyGan(nn.Module):
    """A GAN without discriminator features: the feature term falls back to the score."""

    latent_dim = 3
    num_classes = 0

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(3, 784), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))

    def forward(self, z):
        return self.generator(z).view(-1, 1, 28, 28)

    def discriminate(self, images, labels=None):
        return self.discriminator(images).squeeze(1)


def test_discriminator_score_is_the_negated_output_and_features_fall_back_with_a_note():
    model = ScoreOnlyGan()
    x, _ = real_digits(3)
    torch.testing.assert_close(discriminator_scores(model, x), -model.discriminate(x).detach())
    features, note = feature_function(model)
    assert "no discriminator features" in note and features(x).shape == (3, 1)
    assert latent_search(model, x, LatentSearch(steps=2))[3] == note


def test_conditional_gans_and_non_gans_are_refused():
    x, _ = real_digits(2)
    with pytest.raises(ConfigError, match="class-conditional"):
        discriminator_scores(create_model("cgan", width=4), x)
    with pytest.raises(ConfigError, match="no discriminator"):
        discriminator_scores(create_model("autoencoder", width=4), x)


def test_holdout_removes_the_class_from_training_and_validation_only():
    from archlab.data import load_image_data

    data = holding_out(load_image_data("mnist", val_size=1000), 7)
    assert not bool((data.train.labels == 7).any()) and not bool((data.val.labels == 7).any())
    assert bool((data.test.labels == 7).any())
    assert data.test.without_class(None) is data.test
    with pytest.raises(ConfigError, match="0 to 9"):
        holding_out(data, 10)


def test_autoencoder_score_is_the_mean_squared_error_per_image():
    model = create_model("autoencoder", width=4, latent_dim=2).eval()
    x, _ = real_digits(3)
    with torch.no_grad():
        expected = (model(x) - x).pow(2).mean((1, 2, 3))
    torch.testing.assert_close(autoencoder_scores(model, x), expected)


@pytest.fixture
def gan_and_baseline(tmp_path):
    """A (untrained) dcgan run and autoencoder run directory, both 'without class 7'."""
    torch.manual_seed(0)
    gan_dir, ae_dir = tmp_path / "gan", tmp_path / "ae"
    for folder, name, args, task in ((gan_dir, "dcgan", {"width": 4}, "gan"),
                                     (ae_dir, "autoencoder", {"width": 4, "latent_dim": 4}, "reconstruct")):
        folder.mkdir()
        model = create_model(name, **args)
        save_model(folder, model, {"model": name, "model_args": args, "task": task, "data": "mnist",
                                   "holdout_class": 7})
    return gan_dir, ae_dir


def test_runs_are_scored_and_the_table_written(gan_and_baseline):
    gan_dir, ae_dir = gan_and_baseline
    result = score_runs(gan_dir, baseline=ae_dir, n=200, search=LatentSearch(steps=3))
    assert result.holdout == 7 and result.n == 200 and 0 < result.positives < 200
    assert set(result.auc) == {"discriminator", "latent_search", "latent_residual", "autoencoder"}
    assert all(0 <= auc <= 1 for auc in result.auc.values())
    saved = json.loads((gan_dir / ANOMALY_JSON).read_text())
    assert saved["auc"] == result.auc
    from archlab.report.run_files import RunFiles
    from archlab.report.translate import anomaly_section

    html = anomaly_section(RunFiles(gan_dir, {}), None)
    assert "ROC-AUC" in html and "autoencoder reconstruction error" in html
    with pytest.raises(ConfigError, match="trained without class 7, not 3"):
        score_runs(gan_dir, holdout=3, n=50)
    with pytest.raises(archlab.errors.ArchlabError, match="needs? a GAN run|anomaly scores need"):
        score_runs(ae_dir, n=50)


def test_anomaly_cli_prints_the_table(gan_and_baseline):
    gan_dir, ae_dir = gan_and_baseline
    result = CliRunner().invoke(app, ["anomaly", str(gan_dir), "--baseline", str(ae_dir), "--n", "100", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "held-out class 7" in result.output and "autoencoder" in result.output
    result = CliRunner().invoke(app, ["anomaly", str(gan_dir), "--holdout", "2", "--n", "100"])
    assert result.exit_code == 2 and "--holdout 7" in result.output


@pytest.mark.slow
def test_autoencoder_learns_real_digits_and_flags_the_held_out_one(tmp_path):
    """Bar: after 300 steps (about 20 s) the test reconstruction error is under 40 % of the untrained network's,
    and its ROC-AUC for the held-out digit 7 is above chance (> 0.6)."""
    torch.manual_seed(0)
    x, _ = real_digits(1000)
    with torch.no_grad():
        start = float(autoencoder_scores(create_model("autoencoder"), x).mean())
    run = archlab.train("autoencoder", data="mnist", task="reconstruct", task_args={"holdout_class": 7},
                        max_steps=300, batch_size=64, val_size=1000, optimizer={"name": "adam", "lr": 2e-3},
                        run_dir=tmp_path / "run", progress=False, report=False)
    metrics = run.summary["test_metrics"]
    assert metrics["loss"] < 0.4 * start, (start, metrics)
    assert metrics["anomaly_auc"] > 0.6, metrics
    assert (run.path / "reconstructions.npz").is_file()
