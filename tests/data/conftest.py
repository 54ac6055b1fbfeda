"""Shared helpers for the data tests: a tiny hand-made IDX data set registered under a fake name.

Image ``i`` of a split carries its index in its first two pixels (``i % 256``, ``i // 256``), so tests can
tell which samples ended up where without comparing whole images.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from archlab.data.fetch import DATASETS, DatasetSpec
from archlab.data.idx import write_idx

import tinydata  # tests/ is on sys.path (tests/conftest.py)

TINY_NAME = "tiny-test"
TINY_SIZES = {"train": 60, "test": 20}
TINY_FILES = tinydata.FILES  # the IDX file names of a data set folder


def tiny_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28x28 uint8 images whose first two pixels encode their index, and labels ``i % 10``."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    index = np.arange(n)
    images[:, 0, 0], images[:, 0, 1] = index % 256, index // 256
    return images, (index % 10).astype(np.uint8)


def write_tiny_source(folder: Path) -> dict[str, tuple[str, str]]:
    """Write the tiny data set's raw files into ``folder`` (images gzipped) and return its spec ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, seed in (("train", 1), ("test", 2)):
        images, labels = tiny_arrays(TINY_SIZES[part], seed)
        for kind, array in (("images", images), ("labels", labels)):
            key = f"{part}_{kind}"
            plain = write_idx(folder / TINY_FILES[key], array)
            files[key] = (plain.name, hashlib.md5(plain.read_bytes()).hexdigest())
            if kind == "images":
                with open(plain, "rb") as src, gzip.open(folder / f"{plain.name}.gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                plain.unlink()
    return files


class TinyFetcher:
    """A fetcher that copies the tiny raw files into the scratch folder and counts its calls."""

    def __init__(self, source: Path) -> None:
        self.source, self.calls = source, 0

    def __call__(self, tmp_dir: Path) -> dict[str, Path]:
        self.calls += 1
        found = {}
        for key, filename in TINY_FILES.items():
            path = next(p for p in (self.source / f"{filename}.gz", self.source / filename) if p.exists())
            found[key] = Path(shutil.copy(path, tmp_dir / path.name))
        return found


@pytest.fixture
def tiny_source(tmp_path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """The folder of the tiny raw files and the matching ``files`` of a spec."""
    folder = tmp_path / "source"
    return folder, write_tiny_source(folder)


@pytest.fixture
def tiny_spec(monkeypatch, tiny_source) -> DatasetSpec:
    """A tiny data set registered as ``tiny-test`` for the duration of one test."""
    folder, files = tiny_source
    spec = DatasetSpec(
        name=TINY_NAME,
        description="tiny hand-made test data",
        source="test fixture",
        classes=tuple(str(c) for c in range(10)),
        files=files,
        fetcher=TinyFetcher(folder),
    )
    monkeypatch.setitem(DATASETS, TINY_NAME, spec)
    return spec


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty cache folder; ``ARCHLAB_DATA`` is cleared so only explicit arguments count."""
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    return tmp_path / "cache"
