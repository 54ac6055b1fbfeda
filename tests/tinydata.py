"""A tiny *learnable* image data set for engine and CLI tests, registered like a real source.

Class ``c`` is a bright 6×6 square at one of ten positions, on noise: a small CNN learns it in a few
dozen steps, so tests can check that training works end to end without the real data.
Importable from a subprocess too (``sys.path.insert(0, tests_dir)``), for the kill-and-resume test.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from archlab.data.fetch import DATASETS, DatasetSpec
from archlab.data.idx import write_idx

NAME = "tiny-blobs"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        row, col = 3 + 12 * (c // 5), 1 + 5 * (c % 5)
        images[i, row : row + 6, col : col + 5] = 255
    return images, labels


def write_source(folder: Path, n_train: int = 320, n_test: int = 100) -> dict[str, tuple[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = blobs(n, seed)
        for kind, array in (("images", images), ("labels", labels)):
            key = f"{part}_{kind}"
            path = write_idx(folder / FILES[key], array)
            files[key] = (path.name, hashlib.md5(path.read_bytes()).hexdigest())
    return files


def register(source: Path | str) -> DatasetSpec:
    """Write the raw files into ``source`` (if missing) and register the data set as ``tiny-blobs``."""
    source = Path(source)
    files = write_source(source)

    def fetcher(tmp_dir: Path) -> dict[str, Path]:
        return {key: Path(shutil.copy(source / name, tmp_dir / name)) for key, name in FILES.items()}

    spec = DatasetSpec(name=NAME, description="tiny learnable test data", source="test fixture",
                       classes=tuple(str(c) for c in range(10)), files=files, fetcher=fetcher)
    DATASETS[NAME] = spec
    return spec
