"""Fixtures shared across test folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import tinydata  # noqa: E402

# `make test` runs two pytest workers on two cores: one thread each. More threads than cores makes
# OpenMP's spinning workers fight, and a step can take 10-100x longer.
torch.set_num_threads(1)


@pytest.fixture
def tiny_blobs(tmp_path, monkeypatch) -> dict:
    """The learnable ``tiny-blobs`` data set, cached in a private ``ARCHLAB_DATA`` folder.

    Returns the settings a test passes to ``archlab.train`` to use it quickly.
    """
    monkeypatch.setenv("ARCHLAB_DATA", str(tmp_path / "cache"))
    spec = tinydata.register(tmp_path / "source")
    yield {"data": tinydata.NAME, "val_size": 60, "eval_batch_size": 50, "batch_size": 32, "progress": False,
           "log_every_n_steps": 2, "monitor": {"every_n_steps": 4}}
    from archlab.data.fetch import DATASETS

    DATASETS.pop(spec.name, None)
