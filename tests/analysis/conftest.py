"""Small trained models and data for the analysis tests, trained once per session with a plain PyTorch loop.

- ``blob_cnn``: the registry's ``cnn`` (narrow) trained on tiny-blobs (class = where the bright square is);
  its head flattens the last feature map, so CAM does not apply to it.
- ``bar_gapnet``: a small net ending in global average pooling + one linear layer (the structure CAM needs),
  trained on ``bars``: class 0 = a horizontal bar, class 1 = a vertical bar, anywhere on noise.
- ``trained_run``: a copy of a run directory trained once through ``archlab.train`` on tiny-blobs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import archlab
import tinydata
from archlab.models import create_model
from tinymodels import GapNet, bars, fit, one_thread


@pytest.fixture(autouse=True)
def single_thread():
    """Every analysis test runs on one PyTorch thread (see ``tinymodels.one_thread``)."""
    with one_thread():
        yield


@pytest.fixture(scope="session")
def blob_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tiny-blobs images as uint8 [N, 1, 28, 28] with int64 labels: train (320) and test (100)."""
    return {part: (images[:, None], labels.astype(np.int64))
            for part, (images, labels) in (("train", tinydata.blobs(320, 1)), ("test", tinydata.blobs(100, 2)))}


@pytest.fixture(scope="session")
def blob_cnn(blob_data) -> nn.Module:
    """A narrow ``cnn`` trained for 60 steps on tiny-blobs (test accuracy 1.0), in eval mode."""
    torch.manual_seed(0)
    return fit(create_model("cnn", channels=(8, 16, 16)), *blob_data["train"], steps=60)


@pytest.fixture(scope="session")
def bar_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": bars(256, 1), "test": bars(32, 2)}


@pytest.fixture(scope="session")
def bar_gapnet(bar_data) -> nn.Module:
    """``GapNet`` trained for 80 steps on bars, in eval mode."""
    torch.manual_seed(0)
    return fit(GapNet(), *bar_data["train"], steps=80)


TINY_TRAIN = {"data": tinydata.NAME, "val_size": 60, "eval_batch_size": 50, "batch_size": 32, "progress": False,
              "log_every_n_steps": 2, "epochs": 2, "num_threads": 1, "model_args": {"channels": [8, 16, 16]}}


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> Path:
    """One narrow ``cnn`` run on tiny-blobs, trained once per session through ``archlab.train`` (private
    ARCHLAB_DATA and registration, as the ``tiny_blobs`` fixture does)."""
    from archlab.data.fetch import DATASETS

    root = tmp_path_factory.mktemp("analysis-run")
    with pytest.MonkeyPatch.context() as patch, one_thread():
        patch.setenv("ARCHLAB_DATA", str(root / "cache"))
        tinydata.register(root / "source")
        try:
            return archlab.train("cnn", run_dir=root / "run", **TINY_TRAIN).path
        finally:
            DATASETS.pop(tinydata.NAME, None)


@pytest.fixture
def trained_run(trained_once, tmp_path) -> Path:
    """A private copy of the trained run directory (tests add and delete files in it)."""
    run = tmp_path / "runs" / "cnn-tiny"
    shutil.copytree(trained_once, run)
    return run
