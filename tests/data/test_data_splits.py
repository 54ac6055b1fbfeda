"""Loading the tiny data set into tensors, carving validation splits, k-fold, pixel statistics."""

import pytest
import torch

from archlab.data.fetch import is_cached
from archlab.data.splits import TensorSplit, kfold_splits, load_image_data, load_raw, pixel_stats
from archlab.errors import ConfigError, DataError

NAME = "tiny-test"  # registered by the tiny_spec fixture (conftest.py)


def sample_ids(images) -> list[int]:
    """Decode the sample indices that conftest.tiny_arrays writes into the first two pixels."""
    flat = images.reshape(len(images), -1).long()
    return (flat[:, 0] + 256 * flat[:, 1]).tolist()


def test_load_raw_fetches_on_demand_and_gives_tensors(tiny_spec, cache_dir):
    train, test, classes = load_raw(NAME, cache_dir)
    assert is_cached(NAME, cache_dir)
    assert train.images.shape == (60, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.shape == (60,) and train.labels.dtype == torch.int64
    assert len(test) == 20 and classes == tuple("0123456789")
    assert sample_ids(train.images) == list(range(60))
    assert train.labels.tolist() == [i % 10 for i in range(60)]


def test_load_raw_is_cached_in_process(tiny_spec, cache_dir):
    first, _, _ = load_raw(NAME, cache_dir)
    second, _, _ = load_raw(NAME, cache_dir)
    assert second.images is first.images


def test_load_raw_without_fetch_asks_for_fetch(tiny_spec, cache_dir):
    with pytest.raises(DataError, match=f"archlab data fetch {NAME}"):
        load_raw(NAME, cache_dir, fetch_if_missing=False)
    assert tiny_spec.fetcher.calls == 0


def test_validation_is_carved_from_train(tiny_spec, cache_dir):
    data = load_image_data(NAME, cache_dir, val_size=15, seed=3)
    assert (len(data.train), len(data.val), len(data.test)) == (45, 15, 20)
    train_ids, val_ids = set(sample_ids(data.train.images)), set(sample_ids(data.val.images))
    assert not train_ids & val_ids and train_ids | val_ids == set(range(60))
    assert data.train.labels.tolist() == [i % 10 for i in sorted(train_ids)]
    assert sample_ids(data.test.images) == list(range(20)), "test split is untouched"


def test_split_is_deterministic_by_seed(tiny_spec, cache_dir):
    def val_ids(seed):
        return sample_ids(load_image_data(NAME, cache_dir, val_size=10, seed=seed).val.images)

    torch.manual_seed(123)
    first = val_ids(0)
    torch.manual_seed(456)  # the global RNG plays no part
    assert val_ids(0) == first
    assert val_ids(1) != first


def test_mean_std_come_from_the_train_part(tiny_spec, cache_dir):
    data = load_image_data(NAME, cache_dir, val_size=10)
    pixels = data.train.images.double() / 255
    assert data.mean == pytest.approx(pixels.mean().item(), abs=1e-12)
    assert data.std == pytest.approx(pixels.std(unbiased=False).item(), abs=1e-12)


def test_zero_val_size_gives_empty_val(tiny_spec, cache_dir):
    data = load_image_data(NAME, cache_dir, val_size=0)
    assert len(data.train) == 60 and len(data.val) == 0
    assert data.val.images.shape == (0, 1, 28, 28)


@pytest.mark.parametrize("val_size", [-1, 60, 1000])
def test_bad_val_size(tiny_spec, cache_dir, val_size):
    with pytest.raises(ConfigError, match="val_size"):
        load_image_data(NAME, cache_dir, val_size=val_size)


def _toy_split(n):
    return TensorSplit(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))


@pytest.mark.parametrize(("n", "k"), [(10, 2), (11, 3), (7, 7)])
def test_kfold_covers_every_sample_once(n, k):
    pairs = kfold_splits(_toy_split(n), k, seed=0)
    assert len(pairs) == k
    val_ids = [i for _, val in pairs for i in val.labels.tolist()]
    assert sorted(val_ids) == list(range(n))
    for train, val in pairs:
        assert sorted(train.labels.tolist() + val.labels.tolist()) == list(range(n))
        assert abs(len(val) - n / k) < 1
    again = kfold_splits(_toy_split(n), k, seed=0)
    assert all(torch.equal(a[1].labels, b[1].labels) for a, b in zip(pairs, again))


@pytest.mark.parametrize("k", [1, 11])
def test_kfold_rejects_bad_k(k):
    with pytest.raises(ConfigError):
        kfold_splits(_toy_split(10), k, seed=0)


def test_pixel_stats_matches_float_computation():
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8)
    mean, std = pixel_stats(images)
    pixels = images.double() / 255
    assert mean == pytest.approx(pixels.mean().item(), abs=1e-12)
    assert std == pytest.approx(pixels.std(unbiased=False).item(), abs=1e-12)
    with pytest.raises(DataError):
        pixel_stats(images[:0])


def test_label_out_of_range_is_reported(tiny_spec, cache_dir):
    object.__setattr__(tiny_spec, "classes", ("a", "b"))
    with pytest.raises(DataError, match="classes"):
        load_raw(NAME, cache_dir)
