"""FID / KID / IS / class coverage (archlab.metrics.generative) and the image grids of generated samples.

The metric tests run on feature vectors and logits made here (exact expectations); the real-data tests score
MNIST images with the committed MNIST judge (its test split is embedded once per process, a few seconds).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from archlab.data.splits import signed
from archlab.errors import ConfigError
from archlab.metrics import generative as G
from archlab.report.image_grid import grid_array, image_grid, save_image_grid

LOG2_10 = math.log2(10)


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """n samples of one correlated Gaussian (the same for every seed), shifted and scaled."""
    mixing = torch.randn(dim, dim, generator=torch.Generator().manual_seed(1234)) / math.sqrt(dim)
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(n, dim, generator=generator) @ mixing) * scale + shift


# ------------------------------------------------------------------------------------------------------ FID
def test_fid_of_a_set_against_itself_is_zero():
    features = gaussian(3000, 32, seed=0)
    assert G.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_fid_is_symmetric_and_grows_with_the_shift():
    a, b = gaussian(2000, 32, seed=1), gaussian(2000, 32, seed=2, shift=0.5, scale=1.5)
    ab, ba = G.frechet_distance(a, b), G.frechet_distance(b, a)
    assert ab > 1.0
    assert ab == pytest.approx(ba, rel=1e-9)
    assert G.frechet_distance(a, gaussian(2000, 32, seed=2, shift=1.0, scale=1.5)) > ab


def test_fid_equals_the_closed_form_on_the_sample_statistics():
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½), with the square root taken by SciPy's sqrtm."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = gaussian(1500, 12, seed=3).double(), gaussian(1500, 12, seed=4, shift=0.3, scale=0.7).double()
    mu1, mu2 = a.mean(0).numpy(), b.mean(0).numpy()
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy_linalg.sqrtm(s1 @ s2).real)
    assert G.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------------------------- KID and IS
def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    a, b = gaussian(1000, 16, seed=5), gaussian(1000, 16, seed=6)
    same, _ = G.kernel_distance(a, b, seed=0)
    shifted, std = G.kernel_distance(a, gaussian(1000, 16, seed=6, shift=1.0), seed=0)
    assert abs(same) < 0.02 < shifted and std >= 0
    assert G.kernel_distance(a, b, seed=0) == G.kernel_distance(a, b, seed=0)  # seeded subsets


def test_inception_score_is_the_number_of_equally_used_confident_classes():
    confident = torch.eye(10).repeat(100, 1) * 50.0  # 1000 samples, 100 per class, p(y|x) ≈ one-hot
    # 10 random splits of 100: each split's class mix is a little uneven, so slightly under 10
    assert 9.4 < G.inception_score(confident)[0] <= 10.0
    assert G.inception_score(torch.eye(10)[[4] * 200] * 50.0)[0] == pytest.approx(1.0, abs=1e-3)
    assert G.inception_score(torch.zeros(200, 10))[0] == pytest.approx(1.0, abs=1e-6)  # unsure: no information


def test_coverage_entropy_is_zero_for_one_class_and_log2_10_for_all_classes():
    histogram, bits = G.coverage(torch.eye(10)[[7] * 50])
    assert bits == 0.0 and histogram[7] == 1.0 and sum(histogram) == pytest.approx(1.0)
    histogram, bits = G.coverage(torch.eye(10).repeat(30, 1))
    assert bits == pytest.approx(LOG2_10) and histogram == pytest.approx([0.1] * 10)


def test_score_features_keys_and_types():
    real = gaussian(600, 8, seed=7)
    scores = G.score_features(gaussian(300, 8, seed=8), torch.randn(300, 10), real)
    assert set(scores) == {"fid", "kid_mean", "kid_std", "inception_score", "inception_score_std",
                           "coverage_entropy", "class_histogram", "n"}
    assert scores["n"] == 300 and len(scores["class_histogram"]) == 10


@pytest.mark.parametrize("images, message", [
    (torch.zeros(4, 3, 28, 28), "shape"),
    (torch.zeros(1, 1, 28, 28), "at least 2"),
    (torch.full((4, 1, 28, 28), 2.0), r"\[-1, 1\]"),
    (torch.full((4, 1, 28, 28), float("nan")), "NaN"),
])
def test_images_the_judge_cannot_score_are_refused(images, message):
    with pytest.raises(ConfigError, match=message):
        G.check_images(images)


# ----------------------------------------------------------------------------------- real MNIST, real judge
@pytest.fixture(scope="module")
def mnist():
    from archlab.data import load_raw

    train, test, _ = load_raw("mnist")
    return train, test


def test_test_split_covers_every_digit_and_one_digit_covers_one(mnist):
    _, test = mnist
    histogram, bits = G.class_coverage(signed(test.images), "mnist")
    assert bits > 3.3 and bits <= LOG2_10 + 1e-9  # the test split is nearly balanced (892..1135 per digit)
    sevens = signed(test.images[test.labels == 7][:500])
    histogram, bits = G.class_coverage(sevens, "mnist")
    assert histogram[7] > 0.98 and bits < 0.2


def test_noise_scores_far_worse_than_real_digits(mnist):
    train, _ = mnist
    real = G.score_images(signed(train.images[:1000]), "mnist")
    noise = G.score_images(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1, "mnist")
    assert real["n"] == noise["n"] == 1000
    assert noise["fid"] > 20 * real["fid"] and noise["kid_mean"] > 20 * max(real["kid_mean"], 1e-3)
    assert real["inception_score"] > 8.0 > 2.0 > noise["inception_score"]
    assert real["coverage_entropy"] > 3.2 > 1.0 > noise["coverage_entropy"]


def test_score_images_uses_the_first_n_and_refuses_more_than_given(mnist):
    train, _ = mnist
    images = signed(train.images[:300])
    assert G.score_images(images, "mnist", n=100)["n"] == 100
    with pytest.raises(ConfigError, match="n=400"):
        G.score_images(images, "mnist", n=400)


# ----------------------------------------------------------------------------------------------- image grid
def test_grid_array_lays_tiles_in_rows_with_gaps():
    images = torch.linspace(-1, 1, 10).view(10, 1, 1, 1).expand(10, 1, 28, 28)
    grid = grid_array(images, nrow=4)
    assert grid.shape == (3 * 29 - 1, 4 * 29 - 1, 1) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 0 and grid[0, 3 * 29, 0] == round((images[3, 0, 0, 0].item() + 1) * 127.5)
    assert grid[28, 0, 0] == 255  # the gap between rows
    assert (grid[2 * 29: 2 * 29 + 28, 2 * 29:] == 255).all()  # two empty tiles in the last row


def test_save_image_grid_writes_a_png_of_the_right_size(tmp_path):
    from PIL import Image

    path = save_image_grid(torch.rand(6, 1, 28, 28) * 2 - 1, tmp_path / "grid.png", nrow=3, scale=2)
    with Image.open(path) as picture:
        assert picture.size == (2 * (3 * 29 - 1), 2 * (2 * 29 - 1)) and picture.mode == "L"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file


def test_image_grid_figure_has_one_titled_axis_per_tile():
    figure = image_grid(torch.zeros(5, 1, 28, 28), nrow=3, titles=[str(i) for i in range(5)])
    axes = figure.get_axes()
    assert len(axes) == 6 and [ax.get_title() for ax in axes[:5]] == ["0", "1", "2", "3", "4"]
    with pytest.raises(ConfigError, match="titles"):
        image_grid(torch.zeros(5, 1, 28, 28), titles=["a"])
