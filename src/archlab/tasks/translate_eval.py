"""Judging a translation run: FID against the target domain, "content kept", sample grids, ``archlab eval``.

With J_S the judge of a source data set S (``archlab.metrics.judge``; features f, logits) and a test image a of
domain A with label y:

    fid                       FID between f(G_AB(a)) over the test images of A and f(b) over domain B's test
                              images, with the judge of B's source (for mnist-thick: the MNIST judge against
                              thickened test digits). For a plain domain (mnist, fashion-mnist) this is
                              ``score_images``' FID, whose KID, IS and coverage are added.
    content_cycle_acc         accuracy of J_A on G_BA(G_AB(a)) against y: the round trip keeps the content.
    content_translation_acc   accuracy of J_B on G_AB(a) against y, when A and B share their classes (mnist ↔
                              mnist-thick): the translation keeps the digit. Its ceiling is J_B's accuracy on
                              real B images (``reference_content_acc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.data.domains import Domain, DomainPair, get_domain, load_domain_pair
from archlab.data.splits import signed
from archlab.errors import ArchlabError, ConfigError
from archlab.io import atomic_path, atomic_write_json
from archlab.runs import SUMMARY, LoadedModel, load_model, read_json

SAMPLES_NPZ = "translations.npz"  # a, G_AB(a), G_BA(G_AB(a)) and b, G_BA(b), G_AB(G_BA(b)) of 10 test images each
GRID_AB, GRID_BA = "translate-ab.png", "translate-ba.png"
DIRECTIONS = ("ab", "ba")
_REFERENCE: dict[tuple[str, str], torch.Tensor] = {}


def domain_features(domain: Domain, data_dir: str | Path | None = None) -> torch.Tensor:
    """Judge features of the domain's test images (its source's test split, transformed); cached per process."""
    from archlab.data import load_raw
    from archlab.metrics.generative import judge_for

    key = (domain.name, str(data_dir or ""))
    if key not in _REFERENCE:
        _, test, _ = load_raw(domain.source, data_dir)
        _REFERENCE[key] = judge_for(domain.source).embed(signed(domain.apply(test.images)))[0]
    return _REFERENCE[key]


def domain_scores(images: torch.Tensor, domain: Domain, data_dir: str | Path | None = None) -> dict[str, float]:
    """FID of ``images`` ([-1, 1]) against ``domain``'s test images (plus KID, IS, coverage for a plain domain)."""
    from archlab.metrics.generative import check_images, frechet_distance, judge_for, score_images

    if domain.transform is None:
        scores = score_images(images, domain.source, data_dir=data_dir)
        return {key: float(value) for key, value in scores.items() if key not in ("class_histogram", "n")}
    check_images(images)
    return {"fid": frechet_distance(domain_features(domain, data_dir), judge_for(domain.source).embed(images)[0])}


def judge_accuracy(images: torch.Tensor, labels: torch.Tensor, source: str) -> float:
    """Accuracy of the judge of ``source`` on ``images`` ([-1, 1]) against ``labels``."""
    from archlab.metrics.generative import judge_for

    logits = judge_for(source).embed(images.clamp(-1, 1))[1]
    return float((logits.argmax(1).cpu() == labels.cpu()).float().mean())


def score_translation(fake_b: torch.Tensor, rec_a: torch.Tensor, labels_a: torch.Tensor, domain_a: str,
                      domain_b: str, data_dir: str | Path | None = None) -> dict[str, float]:
    """The test figures of the module docstring, for G_AB(a) = ``fake_b`` and G_BA(G_AB(a)) = ``rec_a``."""
    a, b = get_domain(domain_a), get_domain(domain_b)
    scores = domain_scores(fake_b.clamp(-1, 1), b, data_dir)
    scores["content_cycle_acc"] = judge_accuracy(rec_a, labels_a, a.source)
    if a.source == b.source:
        scores["content_translation_acc"] = judge_accuracy(fake_b, labels_a, b.source)
    return scores


def reference_scores(data: DomainPair, n: int, data_dir: str | Path | None = None) -> dict[str, float]:
    """The scale of the figures: FID of n real B training images against B's test images (the floor at this n)
    and, when A and B share their classes, the judge's accuracy on B's test images (the content ceiling)."""
    pick = torch.randperm(len(data.train_b), generator=torch.Generator().manual_seed(0))[:n]
    reference = {"reference_fid": domain_scores(signed(data.train_b.images[pick]), data.domain_b, data_dir)["fid"]}
    if data.domain_a.source == data.domain_b.source:
        reference["reference_content_acc"] = judge_accuracy(signed(data.test_b.images), data.test_b.labels,
                                                            data.domain_b.source)
    return reference


def one_of_each_class(labels: torch.Tensor, count: int = 10) -> torch.Tensor:
    """Indices of the first image of each class (in class order), then the next ones, ``count`` in all."""
    firsts = [int(torch.nonzero(labels == k)[0]) for k in labels.unique().tolist()]
    rest = [i for i in range(len(labels)) if i not in set(firsts)]
    return torch.tensor((firsts + rest)[:count])


@torch.no_grad()
def round_trips(model: nn.Module, images: torch.Tensor, direction: str) -> torch.Tensor:
    """Rows (x, G(x), G'(G(x))) stacked as one batch [3N, C, H, W] for a grid of N columns."""
    there, back = (model.g_ab, model.g_ba) if direction == "ab" else (model.g_ba, model.g_ab)
    translated = there(images)
    return torch.cat([images, translated, back(translated)]).clamp(-1, 1)


def translation_outputs(run_dir: Path, data: DomainPair, model: nn.Module, test_outputs: list, data_dir) -> dict[str, Any]:
    """Write the round-trip grids (``translate-ab.png``, ``translate-ba.png``, ``translations.npz``); returns
    the reference figures for the summary."""
    from archlab.report.image_grid import save_image_grid

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    grids = {}
    for direction, split in (("ab", data.test_a), ("ba", data.test_b)):
        pick = one_of_each_class(split.labels)
        grids[direction] = round_trips(model, signed(split.images[pick]).to(device), direction).cpu()
        save_image_grid(grids[direction], run_dir / (GRID_AB if direction == "ab" else GRID_BA), nrow=len(pick))
    model.train(was_training)
    with atomic_path(run_dir / SAMPLES_NPZ) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, ab=grids["ab"].numpy(), ba=grids["ba"].numpy())
    n = sum(len(part[0]) for part in test_outputs) if test_outputs else len(data.test_a)
    try:
        reference = reference_scores(data, max(2, min(n, len(data.train_b))), data_dir)
    except ArchlabError as error:  # no judge artifact: the run is still complete without its references
        reference = {"reference_note": str(error)}
    return {"domains": {"a": data.domain_a.name, "b": data.domain_b.name}, "translation_reference": reference}


# ------------------------------------------------------------------------------ using a finished run
def translation_model(run_dir: str | Path | LoadedModel) -> LoadedModel:
    """The run's model, refused unless the run is a translation run."""
    loaded = run_dir if isinstance(run_dir, LoadedModel) else load_model(run_dir)
    if loaded.meta.get("task") != "translate":
        raise ArchlabError(f"{run_dir} is a {loaded.meta.get('task')} run; translation needs a run of --task translate "
                           "(archlab train cyclegan --data mnist).")
    return loaded


@torch.no_grad()
def translate_images(run_dir: str | Path | LoadedModel, images: torch.Tensor, direction: str = "ab") -> torch.Tensor:
    """G_AB (``ab``) or G_BA (``ba``) of ``images`` [N, 1, 28, 28] in [-1, 1] with a translation run's model."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"Unknown direction {direction!r}: use 'ab' (domain A → B) or 'ba' (B → A).")
    loaded = translation_model(run_dir)
    shape = tuple(loaded.meta.get("input_shape", (1, 28, 28)))
    if images.dim() != 4 or tuple(images.shape[1:]) != shape:
        raise ConfigError(f"The run translates images of shape {shape} (N, C, H, W), got {tuple(images.shape)}. "
                          f"Resize the image to {shape[2]}×{shape[1]} pixels first.")
    return loaded.model.translate(images.float(), direction).clamp(-1, 1)


def evaluate_translation(run_dir: Path, loaded: LoadedModel, data_dir: str | Path | None = None) -> dict[str, Any]:
    """``archlab eval`` of a translation run: the test figures again from the saved weights (summary refreshed)."""
    meta, model = loaded.meta, translation_model(loaded).model
    data = load_domain_pair(meta["domain_a"], meta["domain_b"], data_dir)
    a = signed(data.test_a.images)
    with torch.no_grad():
        fake_b = torch.cat([model.g_ab(a[i:i + 500]) for i in range(0, len(a), 500)])
        rec_a = torch.cat([model.g_ba(fake_b[i:i + 500]) for i in range(0, len(a), 500)])
    metrics = score_translation(fake_b, rec_a, data.test_a.labels, meta["domain_a"], meta["domain_b"], data_dir)
    metrics["cycle_a"] = float((rec_a - a).abs().mean())
    summary_path = run_dir / SUMMARY
    summary = read_json(summary_path, "") if summary_path.is_file() else {"model": meta["model"]}
    summary["test_metrics"] = {**summary.get("test_metrics", {}), **metrics}
    atomic_write_json(summary_path, summary)
    return metrics


def describe_translation(metrics: dict[str, Any]) -> list[str]:
    lines = [f"FID of G_AB(test A) against domain B: {metrics['fid']:.3f}",
             f"judge accuracy on G_BA(G_AB(a)): {metrics['content_cycle_acc']:.4f}"]
    if "content_translation_acc" in metrics:
        lines.append(f"judge accuracy on G_AB(a) (the digit kept): {metrics['content_translation_acc']:.4f}")
    return lines
