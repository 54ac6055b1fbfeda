"""In-memory image data: cached IDX files -> uint8 tensors -> train / validation / test splits.

The whole of MNIST is 55 MB of uint8, so it is kept in memory as tensors and batches are drawn by index
(see ``batches.py``). Validation images are carved out of the official training set by a seeded permutation;
the official test set is never touched. The normalization statistics (mean and std of pixel/255) are those of
the training part *after* the split, so no validation pixel leaks into them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from archlab.data.fetch import DATASETS, MANIFEST, DatasetSpec, fetch, get_spec, is_cached
from archlab.data.idx import read_idx
from archlab.errors import ConfigError, DataError


@dataclass
class TensorSplit:
    """One split: ``images`` uint8 [N, C, H, W] and ``labels`` int64 [N]. Treat the tensors as read-only."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> TensorSplit:
        """The samples at ``index`` (a 1-d index tensor), as a new split."""
        return TensorSplit(self.images[index], self.labels[index])

    def without_class(self, label: int | None) -> TensorSplit:
        """The split without the samples of class ``label`` (itself when ``label`` is None)."""
        return self if label is None else self.subset(torch.nonzero(self.labels != label).flatten())


@dataclass
class ImageData:
    """A data set ready for training: three splits, class names, and the train pixel mean/std (pixel/255)."""

    name: str
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    classes: tuple[str, ...]
    mean: float
    std: float


def holding_out(data: ImageData, label: int | None) -> ImageData:
    """``data`` without class ``label`` in its training and validation splits (the test split keeps it)."""
    if label is None:
        return data
    if not 0 <= label < len(data.classes):
        raise ConfigError(f"holdout_class must be a class of {data.name}: 0 to {len(data.classes) - 1}, got {label}.")
    return dataclasses.replace(data, train=data.train.without_class(label), val=data.val.without_class(label))


def signed(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float in [-1, 1] (x / 127.5 - 1): the range every generative model here reads and draws."""
    return images_uint8.float() / 127.5 - 1.0


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) std of ``images / 255`` for uint8 images, exact and in O(256) extra memory.

    Counting each of the 256 grey levels avoids a float copy of the whole set (350 MB in float64 for MNIST).
    """
    if images.numel() == 0:
        raise DataError("Cannot compute pixel statistics of an empty split; use a smaller validation size.")
    counts = torch.bincount(images.reshape(-1), minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    total = counts.sum()
    mean = (counts * levels).sum() / total
    variance = (counts * levels.square()).sum() / total - mean.square()
    return float(mean), float(variance.clamp_min(0).sqrt())


def _load_split(spec: DatasetSpec, folder: Path, images_key: str, labels_key: str) -> TensorSplit:
    """Read one pair of IDX files and check that they fit together and the spec."""
    images_path = folder / spec.files[images_key][0]
    labels_path = folder / spec.files[labels_key][0]
    images, labels = read_idx(images_path), read_idx(labels_path)
    n = images.shape[0]
    if images.size != n * int(torch.Size(spec.image_shape).numel()) or labels.shape != (n,):
        raise DataError(
            f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not hold {n} images of shape "
            f"{spec.image_shape} with one label each; delete {folder} and run `archlab data fetch {spec.name}`."
        )
    if n and int(labels.max()) >= len(spec.classes):
        raise DataError(f"{labels_path} has label {int(labels.max())} but {spec.name} has {len(spec.classes)} classes.")
    images_t = torch.from_numpy(images).reshape(n, *spec.image_shape)
    return TensorSplit(images_t, torch.from_numpy(labels).long())


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, folder: Path, manifest_mtime_ns: int) -> tuple[TensorSplit, TensorSplit]:
    """Parse a cached data set once per process; the manifest time makes a re-fetch invalidate the entry."""
    del manifest_mtime_ns  # only part of the cache key
    spec = get_spec(name)
    train = _load_split(spec, folder, "train_images", "train_labels")
    test = _load_split(spec, folder, "test_images", "test_labels")
    return train, test


def load_raw(
    name: str, data_dir: str | Path | None = None, fetch_if_missing: bool = True
) -> tuple[TensorSplit, TensorSplit, tuple[str, ...]]:
    """The full official train and test splits of ``name`` and its class names, fetching on demand."""
    spec = get_spec(name)
    if spec.kind != "image":
        images = ", ".join(n for n, other in DATASETS.items() if other.kind == "image")
        raise DataError(f"{name!r} is a {spec.kind} data set, and this needs images ({images}). Image models and "
                        f"the classification task read images only; load it with its own loader "
                        f"(archlab.data: load_spam, shakespeare_splits, load_series).")
    if not fetch_if_missing and not is_cached(name, data_dir):
        raise DataError(f"Data set {name!r} is not in the cache; run `archlab data fetch {name}` first.")
    folder = fetch(name, data_dir)
    resolved = folder.resolve()
    train, test = _load_cached(name, resolved, (resolved / MANIFEST).stat().st_mtime_ns)
    return train, test, spec.classes


def _permutation(n: int, seed: int) -> torch.Tensor:
    """A permutation of range(n) that depends only on ``seed`` (own generator, global RNG untouched)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_off(split: TensorSplit, val_size: int, seed: int) -> tuple[TensorSplit, TensorSplit]:
    """Carve a random validation split of ``val_size`` samples out of ``split``; return (rest, val)."""
    if not 0 <= val_size < len(split):
        raise ConfigError(f"val_size must be between 0 and {len(split) - 1} for this data set, got {val_size}.")
    order = _permutation(len(split), seed)
    # Sorted indices keep each part in the original order, which is friendlier to memory and to debugging.
    val_index, train_index = order[:val_size].sort().values, order[val_size:].sort().values
    return split.subset(train_index), split.subset(val_index)


def load_image_data(name: str, data_dir: str | Path | None = None, val_size: int = 5000, seed: int = 0) -> ImageData:
    """Train/val/test splits of an image data set, with the train-part pixel mean and std."""
    full_train, test, classes = load_raw(name, data_dir)
    train, val = split_off(full_train, val_size, seed)
    mean, std = pixel_stats(train.images)
    return ImageData(name=name, train=train, val=val, test=test, classes=classes, mean=mean, std=std)


def kfold_splits(split: TensorSplit, k: int, seed: int) -> list[tuple[TensorSplit, TensorSplit]]:
    """``k`` (train, val) pairs from one seeded permutation; each sample is in exactly one val fold."""
    if not 2 <= k <= len(split):
        raise ConfigError(f"k-fold cross-validation needs 2 <= k <= {len(split)} (the number of samples), got {k}.")
    folds = _permutation(len(split), seed).tensor_split(k)
    pairs = []
    for i, val_index in enumerate(folds):
        train_index = torch.cat([fold for j, fold in enumerate(folds) if j != i])
        pairs.append((split.subset(train_index.sort().values), split.subset(val_index.sort().values)))
    return pairs
