"""Anomaly detection with a GAN trained on all classes but one, next to an autoencoder baseline.

A GAN run trained with ``--task gan -t holdout_class=K`` has never seen class K. Each test image x gets three
anomaly scores (higher: more anomalous), and each score's ROC-AUC of "x is of class K" is reported
(0.5 is chance, 1 a perfect ranking; scikit-learn's ``roc_auc_score``):

- ``discriminator``: -D(x), the discriminator's raw score negated (a held-out digit should look less real).
- ``latent_search`` (AnoGAN; Schlegl et al. 2017, "Unsupervised Anomaly Detection with Generative Adversarial
  Networks to Guide Marker Discovery"): the closest image the generator can draw. z starts from N(0, I) and
  Adam minimises, for each image on its own,

      A(x) = min_z (1 - λ) Σ|x - G(z)| + λ Σ|f_D(x) - f_D(G(z))|,     λ = 0.1 as in the paper,

  with f_D the discriminator's penultimate features (``discriminator_features``; a model without them uses its
  discriminator score as a one-number feature, said in the result's notes). The anomaly score is A(x) after
  ``steps`` steps; ``latent_residual`` is its first term alone, Σ|x - G(z)|.
- ``autoencoder`` (a run of ``--task reconstruct`` with the same held-out class): mean (x - x̂)² per image.

The generator and the discriminator stay in eval mode (batch norm uses its running statistics), so each
image's search is independent of the others in its batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.data.splits import signed
from archlab.errors import ArchlabError, ConfigError
from archlab.io import atomic_write_json
from archlab.runs import CONFIG, LoadedModel, load_model

ANOMALY_JSON = "anomaly.json"
LAMBDA = 0.1  # Schlegl et al. 2017: weight of the feature term


def roc_auc(scores: torch.Tensor | np.ndarray, is_anomaly: torch.Tensor | np.ndarray) -> float:
    """ROC-AUC of ``scores`` (higher: more anomalous) for the boolean ``is_anomaly`` (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(is_anomaly.cpu() if isinstance(is_anomaly, torch.Tensor) else is_anomaly).astype(bool)
    values = np.asarray(scores.detach().cpu().float() if isinstance(scores, torch.Tensor) else scores, dtype=float)
    if truth.shape != values.shape or truth.ndim != 1:
        raise ConfigError(f"ROC-AUC needs one score per sample: scores {values.shape}, labels {truth.shape}.")
    if truth.all() or not truth.any():
        raise ConfigError("ROC-AUC needs both normal and anomalous samples; this set has only one kind. "
                          "Score more test images.")
    return float(roc_auc_score(truth, values))


def _batches(images: torch.Tensor, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def check_unconditional(model: nn.Module) -> None:
    if not hasattr(model, "discriminate") or not callable(getattr(model, "discriminate")):
        raise ConfigError(f"{type(model).__name__} has no discriminator; anomaly scores by a GAN need a run of "
                          "--task gan (dcgan, wgan-gp, pggan, seed-gan).")
    if getattr(model, "num_classes", 0):
        raise ConfigError("A class-conditional GAN (cgan) needs the class of the image it scores, which is what "
                          "anomaly detection does not know. Train an unconditional one: dcgan, wgan-gp, pggan.")


@torch.no_grad()
def discriminator_scores(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """-D(x) for each image [N] (higher: less real-looking, more anomalous)."""
    check_unconditional(model)
    return torch.cat([-model.discriminate(x).float().reshape(len(x), -1).mean(1) for x in _batches(images, batch_size)])


def feature_function(model: nn.Module) -> tuple[Any, str | None]:
    """f_D for the feature term: the discriminator's penultimate features, else its score (and a note saying so)."""
    probe = torch.zeros(2, 1, 28, 28, device=next(model.parameters()).device)
    try:
        with torch.no_grad():
            model.discriminator_features(probe)
        return model.discriminator_features, None
    except (AttributeError, NotImplementedError, TypeError):
        note = (f"{type(model).__name__} exposes no discriminator features; the feature term uses the "
                "discriminator's score instead.")
        return (lambda x: model.discriminate(x).reshape(len(x), -1)), note


@dataclass
class LatentSearch:
    """Settings of the AnoGAN latent search."""

    steps: int = 200
    lr: float = 0.05  # Adam on z
    lam: float = LAMBDA
    batch_size: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0 or not 0 <= self.lam <= 1 or self.batch_size < 1:
            raise ConfigError("latent search needs steps ≥ 1, lr > 0, 0 ≤ lam ≤ 1 and batch_size ≥ 1; got "
                              f"{self.steps}, {self.lr}, {self.lam}, {self.batch_size}.")


def latent_search(model: nn.Module, images: torch.Tensor, search: LatentSearch | None = None,
                  start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str | None]:
    """AnoGAN scores of ``images`` [N, 1, 28, 28] in [-1, 1]: (A(x) [N], Σ|x - G(z)| [N], G(z) [N, ...], note).

    ``model`` needs ``latent_dim``, ``forward(z) -> images`` and ``discriminate``; its weights are not changed.
    ``start``: the starting z [N, latent_dim] (default: N(0, I) drawn with ``search.seed``).
    """
    search = search or LatentSearch()
    check_unconditional(model)
    was_training = model.training
    model.eval()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    features, note = feature_function(model)
    if start is None:
        start = torch.randn(len(images), model.latent_dim, generator=torch.Generator().manual_seed(search.seed))
    if start.shape != (len(images), model.latent_dim):
        raise ConfigError(f"start must hold one z per image, shape {(len(images), model.latent_dim)}; "
                          f"got {tuple(start.shape)}.")
    scores, residuals, drawn = [], [], []
    try:
        for x, z0 in zip(_batches(images, search.batch_size), _batches(start, search.batch_size)):
            z = z0.detach().clone().to(x.device).requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=search.lr)
            with torch.no_grad():
                target = features(x).flatten(1)
            for _ in range(search.steps):
                loss, _, _ = _anogan_loss(model, features, x, z, target, search.lam)
                optimizer.zero_grad()
                loss.sum().backward()
                optimizer.step()
            with torch.no_grad():
                loss, residual, fake = _anogan_loss(model, features, x, z, target, search.lam)
            scores.append(loss)
            residuals.append(residual)
            drawn.append(fake)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
    return torch.cat(scores), torch.cat(residuals), torch.cat(drawn), note


def _anogan_loss(model: nn.Module, features, x: torch.Tensor, z: torch.Tensor, target: torch.Tensor, lam: float):
    fake = model(z)
    residual = (x - fake).abs().flatten(1).sum(1)
    feature_gap = (target - features(fake).flatten(1)).abs().sum(1)
    return (1 - lam) * residual + lam * feature_gap, residual.detach(), fake.detach()


@torch.no_grad()
def autoencoder_scores(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Mean squared reconstruction error of each image [N]."""
    return torch.cat([(model(x).float() - x.float()).pow(2).flatten(1).mean(1) for x in _batches(images, batch_size)])


# ---------------------------------------------------------------------------------------------- runs
def run_holdout(run_dir: str | Path, loaded: LoadedModel) -> int | None:
    """The class a run was trained without (its ``holdout_class`` setting), or None."""
    if loaded.meta.get("holdout_class") is not None:
        return int(loaded.meta["holdout_class"])
    path = Path(run_dir) / CONFIG
    if path.is_file():
        import yaml

        value = (yaml.safe_load(path.read_text()) or {}).get("task_args", {}).get("holdout_class")
        return None if value is None else int(value)
    return None


def resolve_holdout(run_dir: str | Path, loaded: LoadedModel, holdout: int | None) -> int:
    trained_without = run_holdout(run_dir, loaded)
    if holdout is None and trained_without is None:
        raise ConfigError(f"{run_dir} was trained on every class: there is no held-out class to detect. Train with "
                          f"`-t holdout_class=K`, or pass --holdout K to score class K anyway.")
    if holdout is not None and trained_without is not None and holdout != trained_without:
        raise ConfigError(f"{run_dir} was trained without class {trained_without}, not {holdout}: pass --holdout "
                          f"{trained_without} (or train another run with -t holdout_class={holdout}).")
    return int(holdout if holdout is not None else trained_without)


def scored_test_images(data: str, n: int | None, seed: int = 0, data_dir: str | Path | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test images in [-1, 1] drawn with a seeded permutation (all of them when n is None), and labels."""
    from archlab.data import load_raw

    _, test, _ = load_raw(data, data_dir)
    if n is not None and not 2 <= n <= len(test):
        raise ConfigError(f"--n must be between 2 and {len(test)} (the test split), got {n}.")
    index = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return signed(test.images[index]), test.labels[index]


@dataclass
class AnomalyResult:
    """ROC-AUC of each score for the held-out class, on ``n`` test images (``seconds``: scoring time)."""

    run_dir: str
    holdout: int
    n: int
    positives: int
    auc: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_runs(gan_run: str | Path, *, holdout: int | None = None, baseline: str | Path | None = None,
               n: int | None = 1000, search: LatentSearch | None = None, data_dir: str | Path | None = None,
               write: bool = True) -> AnomalyResult:
    """Score ``n`` test images (seeded subset) with a GAN run and, if given, an autoencoder run; write
    ``anomaly.json`` into the GAN run. The baseline must hold out the same class."""
    search = search or LatentSearch()
    loaded = load_model(gan_run)
    if loaded.meta.get("task") != "gan":
        raise ArchlabError(f"{gan_run} is a {loaded.meta.get('task')} run; anomaly scores need a GAN run "
                           f"(archlab train dcgan --data mnist --task gan -t holdout_class=7).")
    k = resolve_holdout(gan_run, loaded, holdout)
    images, labels = scored_test_images(loaded.meta["data"], n, search.seed, data_dir)
    truth = labels == k
    result = AnomalyResult(str(gan_run), k, len(labels), int(truth.sum()),
                           settings={"steps": search.steps, "lr": search.lr, "lambda": search.lam,
                                     "seed": search.seed, "data": loaded.meta["data"]})
    started = time.perf_counter()
    result.auc["discriminator"] = roc_auc(discriminator_scores(loaded.model, images), truth)
    result.seconds["discriminator"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    scores, residuals, _, note = latent_search(loaded.model, images, search)
    result.auc["latent_search"] = roc_auc(scores, truth)
    result.auc["latent_residual"] = roc_auc(residuals, truth)
    result.seconds["latent_search"] = round(time.perf_counter() - started, 2)
    if note:
        result.notes.append(note)
    if baseline is not None:
        base = load_model(baseline)
        if base.meta.get("task") != "reconstruct":
            raise ArchlabError(f"--baseline {baseline} is a {base.meta.get('task')} run; it must be an autoencoder "
                               "run (archlab train autoencoder --task reconstruct -t holdout_class=K).")
        if base.meta.get("data") != loaded.meta["data"] or resolve_holdout(baseline, base, k) != k:
            raise ConfigError(f"--baseline {baseline} must be trained on {loaded.meta['data']} without class {k}.")
        started = time.perf_counter()
        result.auc["autoencoder"] = roc_auc(autoencoder_scores(base.model, images), truth)
        result.seconds["autoencoder"] = round(time.perf_counter() - started, 2)
    if write:
        atomic_write_json(Path(gan_run) / ANOMALY_JSON, result.to_dict())
    return result
