"""Scores of generated images, computed offline with archlab's judge (``archlab.metrics.judge``).

With ``f`` the judge's penultimate features and ``p(y|x)`` the softmax of its logits:

    FID = ||mu_r - mu_g||² + Tr(S_r + S_g - 2 (S_r S_g)^½)          Gaussians fitted to real / generated f
          (Heusel et al. 2017). Lower is better; 0 for identical feature statistics.
    KID = MMD² with the polynomial kernel k(a, b) = (a·b / d + 1)³, unbiased, averaged over random subsets
          (Bińkowski et al. 2018). Lower is better; unbiased, so it can dip slightly below 0.
    IS  = exp E_x KL(p(y|x) || p(y)), over 10 splits (Salimans et al. 2016). Higher is better, at most 10.
    coverage entropy = -sum_c h_c log2 h_c with h the histogram of argmax_y p(y|x): log2(10) ≈ 3.32 bits when
          every class is generated equally often, 0 when only one is (mode collapse).

FID, KID and IS are torchmetrics' implementations; the judge's features are computed once and handed to them
through an identity module, so the real side (the data set's test split) is embedded once per process and
cached in memory. All randomness (KID subsets, IS split order) is seeded.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.data.splits import signed
from archlab.errors import ConfigError
from archlab.metrics.judge import JUDGES_DIR, Judge, load_judge

KID_SUBSET = 1000  # torchmetrics' default subset size, the usual one for 10,000 samples
KID_SUBSETS = 100
IS_SPLITS = 10
_JUDGES: dict[tuple[str, str], Judge] = {}
_REAL: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}


class GivenFeatures(nn.Module):
    """Identity ``nn.Module`` with ``num_features``: lets torchmetrics' metrics take precomputed judge outputs."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def clear_cache() -> None:
    """Forget the loaded judges and the cached real features (after a judge is rebuilt)."""
    _JUDGES.clear()
    _REAL.clear()


def judge_for(data: str, folder: str | Path = JUDGES_DIR) -> Judge:
    """The judge of ``data``, loaded (and checksum-verified) once per process."""
    key = (data, str(Path(folder).resolve()))
    if key not in _JUDGES:
        _JUDGES[key] = load_judge(data, folder)
    return _JUDGES[key]



def real_features(data: str, data_dir: str | Path | None = None,
                  folder: str | Path = JUDGES_DIR) -> tuple[torch.Tensor, torch.Tensor]:
    """Judge features and logits of the test split of ``data`` (the real reference), computed once, on the CPU."""
    from archlab.data import load_raw

    key = (data, str(data_dir or ""), str(Path(folder).resolve()))
    if key not in _REAL:
        _, test, _ = load_raw(data, data_dir)
        _REAL[key] = judge_for(data, folder).embed(signed(test.images))
    return _REAL[key]


def check_images(images: torch.Tensor) -> None:
    """Refuse what the judge cannot score: a wrong shape, NaN/inf, values outside [-1, 1]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"The judge scores images of shape (N, 1, 28, 28), got {shape}.")
    if images.shape[0] < 2:
        raise ConfigError(f"Scoring needs at least 2 images (a covariance), got {images.shape[0]}.")
    if not torch.isfinite(images).all():
        raise ConfigError("The images hold NaN or infinite values; the generator diverged. Nothing to score.")
    low, high = float(images.min()), float(images.max())
    if low < -1.001 or high > 1.001:
        raise ConfigError(f"Images must be in [-1, 1] (got [{low:.3g}, {high:.3g}]). Clamp the samples, or map "
                          "uint8 pixels with x / 127.5 - 1.")


def _trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """Tr((S1 S2)^½) through symmetric eigendecompositions: with R = S1^½, S1 S2 is similar to R S2 R, which is
    symmetric positive semi-definite, so its eigenvalues come from ``eigvalsh`` (10-60× faster on a CPU than the
    general ``eigvals`` of S1 S2, and free of the spurious imaginary parts round-off gives the latter)."""
    values, vectors = torch.linalg.eigh(sigma1)
    root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    return torch.linalg.eigvalsh(root @ sigma2 @ root).clamp_min(0).sqrt().sum()


def _fid_metric(num_features: int):
    """torchmetrics' FID (its streaming float64 statistics) with a symmetric matrix square root in ``compute``."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    class SymmetricFID(FrechetInceptionDistance):
        def compute(self) -> torch.Tensor:
            stats = []
            for side in ("real", "fake"):
                count = getattr(self, f"{side}_features_num_samples")
                mean = getattr(self, f"{side}_features_sum") / count
                cov = (getattr(self, f"{side}_features_cov_sum") - count * torch.outer(mean, mean)) / (count - 1)
                stats.append((mean, cov))
            (mu1, s1), (mu2, s2) = stats
            return (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * _trace_sqrt_product(s1, s2)

    return SymmetricFID(feature=GivenFeatures(num_features), normalize=False)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of feature vectors [N, d] (torchmetrics' statistics in float64)."""
    if len(real) < 2 or len(fake) < 2:
        raise ConfigError("FID needs at least 2 feature vectors on each side (a covariance).")
    fid = _fid_metric(real.shape[1])
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return max(float(fid.compute()), 0.0)  # tiny negative values are round-off of a zero distance


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets) between two sets of feature vectors; subsets of min(1000, n/2) samples."""
    from torchmetrics.image.kid import KernelInceptionDistance

    subset = max(2, min(KID_SUBSET, len(real) // 2, len(fake) // 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=GivenFeatures(real.shape[1]), subsets=KID_SUBSETS, subset_size=subset)
    kid.update(real.float(), real=True)
    kid.update(fake.float(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """IS (mean, std over up to 10 splits) of the judge's logits (torchmetrics softmaxes them itself)."""
    from torchmetrics.image.inception import InceptionScore

    splits = max(1, min(IS_SPLITS, len(logits) // 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(feature=GivenFeatures(logits.shape[1]), splits=splits, normalize=False)
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    std = float(std)
    return float(mean), 0.0 if math.isnan(std) else std


def coverage(logits: torch.Tensor) -> tuple[list[float], float]:
    """Histogram of the judge's predicted classes (fractions) and its entropy in bits."""
    counts = torch.bincount(logits.argmax(1).cpu(), minlength=logits.shape[1]).double()
    histogram = counts / counts.sum()
    nonzero = histogram[histogram > 0]
    entropy = float(-(nonzero * nonzero.log2()).sum())
    return [float(h) for h in histogram], max(entropy, 0.0) + 0.0  # + 0.0: no "-0.0" 


def class_coverage(images: torch.Tensor, data: str, *, folder: str | Path = JUDGES_DIR) -> tuple[list[float], float]:
    """(histogram over the classes of the judge's argmax, entropy in bits; log2(10) = 3.32 is perfect)."""
    judge = judge_for(data, folder)
    check_images(images)
    return coverage(judge.embed(images)[1])


def score_features(fake_features: torch.Tensor, fake_logits: torch.Tensor, real: torch.Tensor,
                   seed: int = 0) -> dict[str, Any]:
    """FID, KID, IS and coverage of generated features/logits against real features (see module docstring)."""
    fake_features, fake_logits, real = fake_features.cpu(), fake_logits.cpu(), real.cpu()
    kid_mean, kid_std = kernel_distance(real, fake_features, seed)
    is_mean, is_std = inception_score(fake_logits, seed)
    histogram, entropy = coverage(fake_logits)
    return {"fid": frechet_distance(real, fake_features), "kid_mean": kid_mean, "kid_std": kid_std,
            "inception_score": is_mean, "inception_score_std": is_std, "coverage_entropy": entropy,
            "class_histogram": histogram, "n": int(len(fake_features))}


def score_images(images: torch.Tensor, data: str, *, n: int | None = None, data_dir: str | Path | None = None,
                 seed: int = 0, folder: str | Path = JUDGES_DIR) -> dict[str, Any]:
    """FID / KID / IS / coverage of ``images`` ((N, 1, 28, 28) in [-1, 1]) against the test split of ``data``.

    ``n``: score only the first ``n`` images (default: all). Published numbers use ≥ 10,000 samples: FID is
    biased upwards for small sets, so compare scores only at equal ``n``. Keys: ``fid``, ``kid_mean``,
    ``kid_std``, ``inception_score``, ``inception_score_std``, ``coverage_entropy`` (bits),
    ``class_histogram`` (one fraction per class), ``n``.
    """
    judge = judge_for(data, folder)
    if n is not None:
        if not 2 <= n <= len(images):
            raise ConfigError(f"n={n} samples asked for, but {len(images)} images were given (n must be 2..{len(images)}).")
        images = images[:n]
    check_images(images)
    real, _ = real_features(data, data_dir, folder)
    fake_features, fake_logits = judge.embed(images)
    return score_features(fake_features, fake_logits, real, seed)


def reference_scores(data: str, n: int = 10_000, *, data_dir: str | Path | None = None, seed: int = 0,
                     folder: str | Path = JUDGES_DIR) -> dict[str, dict[str, Any]]:
    """The scale of the scores for ``data``: ``train`` (n training images vs the test split: the floor any
    generator can hope for at this n) and ``noise`` (n uniform-noise images in [-1, 1]: the ceiling)."""
    from archlab.data import load_raw

    train, _, _ = load_raw(data, data_dir)
    if not 2 <= n <= len(train):
        raise ConfigError(f"Reference scores need 2..{len(train)} samples, got n={n}.")
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=generator)[:n]
    noise = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
    return {"train": score_images(signed(train.images[pick]), data, data_dir=data_dir, seed=seed, folder=folder),
            "noise": score_images(noise, data, data_dir=data_dir, seed=seed, folder=folder)}
