"""The forecast task: leakage-free batches, rolling-origin folds, stateful detaching, and learning on real series."""

import time

import lightning as L
import numpy as np
import pytest
import torch

import archlab
from archlab.config import TrainConfig
from archlab.data.series_batches import SeriesArrays, StreamLoader, WindowLoader, full_series_batch
from archlab.data.timeseries import Series
from archlab.errors import ConfigError
from archlab.models import create_model
from archlab.tasks import OptimSettings, get_task
from archlab.tasks.forecast import ForecastOptions, ForecastTask, prepare
from archlab.data.temporal import temporal_split

TASK = get_task("forecast")


def counting_series(length: int = 200, period: int | None = 7) -> Series:
    """Value i at position i (so a target tells where it came from); one filled point at 150."""
    values = np.arange(length, dtype=np.float32)[:, None]
    observed = np.ones((length, 1), bool)
    observed[150] = False
    times = np.datetime64("2000-01-01") + np.arange(length).astype("timedelta64[D]")
    return Series("count", values, times.astype("datetime64[s]"), ("value",), "D", period, observed)


def counting_data(**options):
    series = counting_series()
    opts = ForecastOptions(**{"horizon": 3, "window": 10, **options})
    return prepare(series, temporal_split(len(series), 0.2, 0.2), opts)


def positions(data, batch):
    """Original positions of the targets (the series counts, so unscaling gives the index)."""
    offset, scale = data.target_units()
    return torch.round(batch.targets * scale + offset).long()


def test_temporal_split_has_no_leakage_into_earlier_parts():
    data = counting_data()
    config = TrainConfig(batch_size=16, eval_batch_size=50)
    train, val, test = TASK.loaders(config, data, 0, 1)
    split = data.split
    train_max = max(int(positions(data, b)[b.observed].max()) for b in train)
    for loader, part in ((val, split.val), (test, split.test)):
        for batch in loader:
            scored = positions(data, batch)[batch.scored]
            assert scored.min() >= part.start and scored.max() < part.stop
            assert int(positions(data, batch)[batch.observed].max()) < part.stop  # nothing from a later part
            assert scored.min() > train_max  # every scored target strictly after every training target
    assert train_max == split.train.stop - 1
    # the scaler saw the training part only: its mean is that of 0 .. train.stop - 1
    assert float(np.ravel(data.scaler.offset)[0]) == pytest.approx((split.train.stop - 1) / 2)


def test_window_inputs_precede_their_targets_and_filled_values_are_not_scored():
    data = counting_data()
    loader = WindowLoader(data.arrays, data.split.test, data.window, 64, shuffle=False)
    batch = next(iter(loader))
    offset, scale = data.target_units()
    inputs = torch.round(batch.inputs[..., 0] * scale + offset).long()
    targets = positions(data, batch)
    assert torch.equal(targets[:, :, 0], inputs + 1) and torch.equal(targets[:, -1], inputs[:, -1:] + torch.arange(1, 4))
    assert not batch.observed[targets == 150].any()  # the filled point is neither learned nor scored


def test_rolling_origin_folds_are_ordered_and_disjoint_and_keep_the_test_part_out():
    data = counting_data()
    folds = TASK.cv_folds(TrainConfig(cv=3, cv_method="rolling"), data)
    assert [fold.fold for fold in folds] == [0, 1, 2]
    tests = [fold.split.test for fold in folds]
    for fold in folds:
        assert fold.split.train.stop == fold.split.val.start and fold.split.val.stop == fold.split.test.start
        assert float(np.ravel(fold.scaler.offset)[0]) == pytest.approx((fold.split.train.stop - 1) / 2)
    for earlier, later in zip(tests, tests[1:]):
        assert earlier.stop <= later.start  # ordered and disjoint
    assert tests[-1].stop == data.split.val.stop  # the final test part is never used by a fold
    with pytest.raises(ConfigError, match="fewer folds"):
        TASK.cv_folds(TrainConfig(cv=60, cv_method="rolling"), data)


def test_stream_loader_continues_each_stream_and_marks_epoch_starts():
    data = counting_data(stateful=True)
    loader = StreamLoader(data.arrays, data.split.train, chunk=5, streams=3)
    first_epoch = list(loader)
    assert [batch.start for batch in first_epoch] == [True] + [False] * (len(first_epoch) - 1)
    offset, scale = data.target_units()
    steps = torch.cat([torch.round(b.inputs[..., 0] * scale + offset).long() for b in first_epoch], dim=1)
    assert torch.equal(steps[:, 1:] - steps[:, :-1], torch.ones_like(steps[:, 1:]))  # consecutive per stream
    assert int(positions(data, first_epoch[-1]).max()) < data.split.train.stop
    assert next(iter(loader)).start  # a new epoch starts the streams anew
    ranks = [next(iter(StreamLoader(data.arrays, data.split.train, chunk=5, streams=3, rank=rank, world_size=2)))
             for rank in (0, 1)]
    assert float(ranks[1].inputs[:, 0].min()) > float(ranks[0].inputs[:, 0].max())  # disjoint streams per rank
    with pytest.raises(ConfigError, match="smaller batch_size"):
        StreamLoader(data.arrays, data.split.train, chunk=50, streams=8)


def graph_size(tensor: torch.Tensor) -> int:
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


def test_stateful_training_detaches_the_state_between_batches():
    torch.manual_seed(0)
    data = counting_data(stateful=True)
    model = create_model("lstm-forecast", hidden=8, horizon=3)
    config = TrainConfig()
    module = ForecastTask(model, OptimSettings.from_config(config, 10, 10), offset=0.0, scale=1.0, warmup=2,
                          stateful=True)
    batches = list(StreamLoader(data.arrays, data.split.train, chunk=6, streams=2))
    sizes, states = [], []
    for index, batch in enumerate(batches[:4]):
        loss = module.training_step(batch, index)
        sizes.append(graph_size(loss))
        states.append(module.state)
        assert all(not part.requires_grad for part in module.state)
    assert len(set(sizes[1:])) == 1  # no growth of the graph from batch to batch
    assert sizes[0] <= sizes[1]
    # the carried state is the one of the previous chunk: continuing from it reproduces one long pass
    whole = model(torch.cat([b.inputs for b in batches[:2]], dim=1))
    assert torch.allclose(model.step(batches[1].inputs, states[0])[0], whole[:, 6:], atol=1e-5)
    module.on_train_epoch_start()
    assert module.state is None


def test_stateful_evaluation_scores_the_origins_of_the_part():
    data = counting_data()
    batch = full_series_batch(data.arrays, data.split.val)
    scored = positions(data, batch)[batch.scored]
    expected = WindowLoader(data.arrays, data.split.val, data.window, 100, shuffle=False)
    window_scored = positions(data, next(iter(expected)))[next(iter(expected)).scored]
    assert sorted(scored.tolist()) == sorted(window_scored.tolist())


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="no setting"):
        TASK.settings(TrainConfig(task_args={"horizn": 2}))
    with pytest.raises(ConfigError, match="horizon must be"):
        TASK.settings(TrainConfig(task_args={"horizon": 0}))
    with pytest.raises(ConfigError, match="no column"):
        prepare(counting_series(), temporal_split(200), ForecastOptions(target="nope"))
    with pytest.raises(ConfigError, match="does not support --cv kfold"):
        TASK.check(TrainConfig(cv=3, cv_method="kfold"), "series")


@pytest.mark.slow
def test_lstm_beats_the_last_value_on_co2_one_step(tmp_path):
    """Bar: test MAE (ppm, one week ahead, 343 origins 1995-2001) below the naive forecast's (0.398) and below
    0.36. Budget: 800 steps of a 32-unit LSTM on differenced inputs, ≤ 60 s on one core (about 15 s)."""
    started = time.perf_counter()
    run = archlab.train("lstm-forecast", data="co2", task_args={"horizon": 1}, batch_size=32,
                        model_args={"hidden": 32, "differences": True}, optimizer={"lr": 3e-3}, max_steps=800,
                        run_dir=tmp_path / "run", progress=False, report=False, seed=0,
                        monitor={"every_n_steps": 0})
    elapsed = time.perf_counter() - started
    rows = {row["model"]: row for row in run.summary["forecast"]["rows"] if row["horizon"] == 1}
    network = rows["network"]["MAE"]
    assert run.summary["test_metrics"]["mae"] == pytest.approx(network, rel=1e-3)
    print({name: round(row["MAE"], 4) for name, row in rows.items()}, run.summary["steps"], f"{elapsed:.1f} s")
    assert network < rows["naive"]["MAE"] and network < 0.36, rows
    assert elapsed < 60


@pytest.mark.slow
def test_stateful_gru_learns_elnino(tmp_path):
    """Bar: one-month-ahead validation loss (scaled MSE) falls below half its value after 10 steps, and the
    test MAE (deg C) beats the last value. Budget: 400 steps, 4 streams, ≤ 60 s (about 10 s)."""
    torch.manual_seed(0)
    config = TrainConfig(model="gru-forecast", data="elnino", task_args={"stateful": True, "window": 24},
                         batch_size=4)
    data = TASK.load(config)
    train, val, test = TASK.loaders(config, data, 0, 1)
    config.optimizer.lr = 3e-3
    losses = []
    for steps in (10, 400):
        torch.manual_seed(0)
        model = create_model("gru-forecast", **TASK.model_args(config, data), hidden=32)
        module = TASK.build(config, data, model, OptimSettings.from_config(config, steps, len(train)))
        trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, gradient_clip_val=1.0, num_sanity_val_steps=0,
                            check_val_every_n_epoch=10_000)
        trainer.fit(module, train)
        losses.append(trainer.validate(module, val, verbose=False)[0]["val_loss"])
        train = TASK.loaders(config, data, 0, 1)[0]
    from archlab.tasks.forecast_eval import evaluate_run_data

    rows = {row["model"]: row["MAE"] for row in evaluate_run_data(model, data).rows}
    print(losses, rows)
    assert losses[1] < 0.5 * losses[0], losses
    assert rows["network"] < rows["naive"], rows
