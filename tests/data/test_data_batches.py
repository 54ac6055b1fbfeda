"""BatchLoader: shapes, normalization, coverage, determinism, DDP sharding and exact mid-epoch resume.

Labels are the sample indices (0..N-1), so each batch says which samples it holds.
"""

from collections import Counter

import pytest
import torch

from archlab.data.augment import Augment, AugmentConfig
from archlab.data.batches import BatchLoader
from archlab.data.splits import TensorSplit
from archlab.errors import ConfigError

N = 103
MEAN, STD = 0.4, 0.25


@pytest.fixture(scope="module")
def split():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (N, 1, 28, 28), dtype=torch.uint8, generator=generator)
    return TensorSplit(images, torch.arange(N))


def make(split, batch_size=16, **kwargs):
    return BatchLoader(split, batch_size, mean=MEAN, std=STD, **kwargs)


def ids(batches):
    return [i for _, y in batches for i in y.tolist()]


def test_batches_have_the_right_shapes_types_and_values(split):
    loader = make(split, shuffle=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 7 and loader.num_samples == N and loader.batch_size == 16
    assert [len(y) for _, y in batches] == [16] * 6 + [7]
    x, y = batches[0]
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected = (split.images[:16].float() / 255 - MEAN) / STD
    torch.testing.assert_close(x, expected)


def test_drop_last(split):
    loader = make(split, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == N // 16
    assert all(len(y) == 16 for _, y in batches)


def test_every_sample_once_per_epoch(split):
    loader = make(split)
    for _ in range(2):
        assert sorted(ids(loader)) == list(range(N))


def test_deterministic_by_seed_and_independent_of_global_rng(split):
    torch.manual_seed(1)
    first = ids(make(split, seed=5))
    torch.manual_seed(2)
    state = torch.get_rng_state()
    assert ids(make(split, seed=5)) == first
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must not be consumed"
    assert ids(make(split, seed=6)) != first
    assert ids(make(split, shuffle=False)) == list(range(N))


def test_epochs_advance_and_set_epoch_replays(split):
    loader = make(split)
    epoch0, epoch1 = ids(loader), ids(loader)
    assert epoch0 != epoch1 and loader.epoch == 1
    loader.set_epoch(0)
    assert ids(loader) == epoch0
    loader.set_epoch(0)
    assert ids(loader) == epoch0, "set_epoch pins the epoch like DistributedSampler"


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("n", [N, 102])
def test_ddp_shards_are_disjoint_and_complete(split, world_size, n):
    part = TensorSplit(split.images[:n], split.labels[:n])
    loaders = [make(part, rank=r, world_size=world_size, seed=9) for r in range(world_size)]
    shards = [ids(loader) for loader in loaders]
    assert len({len(loader) for loader in loaders}) == 1, "every rank runs the same number of batches"
    assert len({len(shard) for shard in shards}) == 1
    counts = Counter(i for shard in shards for i in shard)
    assert set(counts) == set(range(n))
    # Only the padding (the first -n % world_size indices of the permutation, as in DistributedSampler) repeats.
    assert sum(c - 1 for c in counts.values()) == -n % world_size


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_with_drop_last_keeps_ranks_in_step(split, world_size):
    loaders = [make(split, rank=r, world_size=world_size, drop_last=True) for r in range(world_size)]
    assert len({len(loader) for loader in loaders}) == 1
    assert all(len(y) == 16 for loader in loaders for _, y in loader)


def test_channels_last(split):
    x, _ = next(iter(make(split, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


AUGMENT = Augment(AugmentConfig(rotate_deg=15, translate=0.1, erase_p=0.5, noise_std=0.05))


def _run(loader, n_batches=None):
    out = []
    for batch in loader:
        out.append(batch)
        if n_batches is not None and len(out) == n_batches:
            break
    return out


def _assert_same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for (xa, ya), (xb, yb) in zip(batches_a, batches_b):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)


def test_resume_mid_epoch_replays_exactly_with_augmentation(split):
    uninterrupted = make(split, augment=AUGMENT, seed=4)
    _run(uninterrupted)  # epoch 0
    reference = _run(uninterrupted)  # epoch 1
    next_epoch = _run(uninterrupted)  # epoch 2

    interrupted = make(split, augment=AUGMENT, seed=4)
    _run(interrupted)
    head = _run(interrupted, n_batches=3)
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches_done": 3, "seed": 4, "num_samples": N}

    resumed = make(split, augment=AUGMENT, seed=999)  # the seed comes back from the state
    resumed.load_state_dict(state)
    resumed.set_epoch(1)  # a trainer re-announcing the same epoch must not restart it
    _assert_same(head + _run(resumed), reference)
    _assert_same(_run(resumed), next_epoch)


def test_resume_from_an_epoch_boundary_starts_the_next_epoch(split):
    loader = make(split, seed=2)
    _run(loader)
    expected = ids(loader)
    fresh = make(split, seed=2)
    loader.set_epoch(0)
    _run(loader)
    fresh.load_state_dict(loader.state_dict())
    assert ids(fresh) == expected


def test_partly_consumed_epoch_then_new_iter_moves_on(split):
    loader = make(split)
    _run(loader, n_batches=2)
    assert loader.state_dict()["batches_done"] == 2
    full = ids(loader)
    assert loader.epoch == 1 and sorted(full) == list(range(N))


def test_resume_with_other_data_is_refused(split):
    state = make(split).state_dict()
    smaller = TensorSplit(split.images[:50], split.labels[:50])
    with pytest.raises(ConfigError, match="resume"):
        make(smaller).load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"rank": 2, "world_size": 2}, {"rank": -1}, {"std": 0.0}]
)
def test_bad_arguments(split, kwargs):
    params = {"batch_size": 8, "mean": MEAN, "std": STD, **kwargs}
    with pytest.raises(ConfigError):
        BatchLoader(split, params.pop("batch_size"), **params)


def test_empty_split_yields_nothing():
    empty = TensorSplit(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    loader = make(empty)
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_matches_cpu(split):
    cpu = _run(make(split, seed=3))
    gpu = _run(make(split, seed=3, device="cuda"))
    assert gpu[0][0].device.type == "cuda" and gpu[0][1].device.type == "cuda"
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert torch.equal(yc, yg.cpu())
        torch.testing.assert_close(xc, xg.cpu())
