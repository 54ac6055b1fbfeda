"""FGSM and PGD in pixel space on a small trained CNN: ε = 0 is the clean accuracy exactly, accuracy falls as ε
grows, PGD is at least as strong as FGSM, perturbations stay in the ε-ball and in [0, 1], clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archlab.analysis.attack import (
    ATTACKS,
    AttackSettings,
    PixelSpace,
    adversarial_examples,
    fgsm,
    pgd,
    robust_accuracy,
)
from archlab.errors import ConfigError
from tinymodels import MEAN, STD, one_thread

EPS = [0.0, 0.05, 0.1, 0.2, 0.3]


@pytest.fixture
def test_set(blob_data):
    images, labels = blob_data["test"]
    return images[:60], labels[:60]


def clean_accuracy(model, images, labels) -> float:
    with torch.no_grad():
        logits = model((torch.from_numpy(images).float() / 255 - MEAN) / STD)
    return float((logits.argmax(1) == torch.from_numpy(labels)).float().mean())


@pytest.fixture(scope="module")
def fgsm_curve(blob_cnn, blob_data):
    images, labels = blob_data["test"]
    with one_thread():
        return robust_accuracy(blob_cnn, images[:60], labels[:60], "fgsm", EPS, MEAN, STD)


def test_eps_zero_is_the_clean_accuracy(blob_cnn, test_set, fgsm_curve):
    assert list(fgsm_curve) == EPS
    assert fgsm_curve[0.0] == clean_accuracy(blob_cnn, *test_set) == 1.0


def test_fgsm_accuracy_falls_as_eps_grows(fgsm_curve):
    accuracy = list(fgsm_curve.values())
    assert all(later <= earlier for earlier, later in zip(accuracy, accuracy[1:])), fgsm_curve
    assert accuracy[-1] < accuracy[0] - 0.2, fgsm_curve


def test_pgd_is_at_least_as_strong_as_fgsm(blob_cnn, test_set, fgsm_curve):
    pgd_curve = robust_accuracy(blob_cnn, *test_set, "pgd", EPS, MEAN, STD, steps=5)
    assert pgd_curve[0.0] == fgsm_curve[0.0]
    assert all(pgd_curve[eps] <= fgsm_curve[eps] for eps in EPS), (pgd_curve, fgsm_curve)
    assert pgd_curve[0.2] < fgsm_curve[0.2]


def test_float_pixels_and_uint8_give_the_same_numbers(blob_cnn, test_set):
    images, labels = test_set
    as_uint8 = robust_accuracy(blob_cnn, images[:20], labels[:20], "fgsm", [0, 0.1], MEAN, STD)
    as_float = robust_accuracy(blob_cnn, torch.from_numpy(images[:20]).float() / 255, torch.from_numpy(labels[:20]),
                               "fgsm", [0, 0.1], MEAN, STD, batch_size=7)
    assert as_uint8 == as_float


@pytest.mark.parametrize("method", sorted(ATTACKS))
def test_adversarial_images_stay_in_the_ball_and_in_range(blob_cnn, test_set, method):
    images, labels = test_set
    x, y = torch.from_numpy(images[:16]).float() / 255, torch.from_numpy(labels[:16])
    model = PixelSpace(blob_cnn, MEAN, STD)
    adversarial = ATTACKS[method](model, x, y, 0.1, AttackSettings(steps=3), torch.Generator().manual_seed(0))
    assert adversarial.shape == x.shape
    assert (adversarial - x).abs().max() <= 0.1 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert not torch.equal(adversarial, x)


def test_fgsm_moves_every_pixel_by_eps_unless_clipped(blob_cnn, test_set):
    images, labels = test_set
    x, y = torch.from_numpy(images[:4]).float() / 255, torch.from_numpy(labels[:4])
    adversarial = fgsm(PixelSpace(blob_cnn, MEAN, STD), x, y, 0.05, AttackSettings(), torch.Generator())
    moved = (adversarial - x).abs()
    inside = (x > 0.05) & (x < 0.95)
    assert torch.allclose(moved[inside], torch.full_like(moved[inside], 0.05), atol=1e-6)


def test_pgd_is_seeded(blob_cnn, test_set):
    images, labels = test_set
    x, y = torch.from_numpy(images[:8]).float() / 255, torch.from_numpy(labels[:8])
    model = PixelSpace(blob_cnn, MEAN, STD)
    runs = [pgd(model, x, y, 0.1, AttackSettings(steps=2), torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_the_model_is_evaluated_in_eval_mode_and_handed_back(blob_cnn, test_set):
    blob_cnn.train()
    try:
        curve = robust_accuracy(blob_cnn, *test_set, "fgsm", [0.0], MEAN, STD)
        assert all(m.training for m in blob_cnn.modules())
        assert all(p.grad is None for p in blob_cnn.parameters())
    finally:
        blob_cnn.eval()
    assert curve[0.0] == 1.0  # batch norm used its running statistics


def test_adversarial_examples_report_predictions(blob_cnn, test_set):
    images, labels = test_set
    examples = adversarial_examples(blob_cnn, images[:8], labels[:8], "pgd", 0.3, MEAN, STD,
                                    settings=AttackSettings(steps=5))
    assert examples.clean.shape == examples.adversarial.shape == (8, 1, 28, 28)
    assert torch.equal(examples.clean_pred, examples.labels)
    assert (examples.adversarial_pred != examples.labels).any()


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "cw"}, "Unknown attack method 'cw'; choose one of fgsm, pgd"),
    ({"eps_list": [0.1, -0.05]}, r"ε must be in \[0, 1\].*-0.05"),
    ({"eps_list": [2]}, r"ε must be in \[0, 1\]"),
    ({"eps_list": []}, "at least one ε"),
    ({"steps": 0}, "steps must be at least 1"),
    ({"step_size": -0.01}, "step_size must be > 0"),
    ({"images": np.full((3, 28, 28), 2.0, np.float32)}, r"float images must be pixels in \[0, 1\]"),
    ({"labels": np.zeros(2, np.int64)}, "as many labels as images"),
], ids=["method", "negative-eps", "eps-above-one", "no-eps", "steps", "step-size", "normalized-floats", "labels"])
def test_bad_arguments_are_clear_errors(blob_cnn, kwargs, message):
    arguments = {"images": np.zeros((3, 28, 28), np.uint8), "labels": np.zeros(3, np.int64), "method": "fgsm",
                 "eps_list": [0.1], **kwargs}
    with pytest.raises(ConfigError, match=message):
        robust_accuracy(blob_cnn, mean=MEAN, std=STD, **arguments)

