"""The seq2seq task: masked loss, exact match of greedy decoding, its wiring into a run, and learning on MNIST."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch

import archlab
from archlab.config import TrainConfig
from archlab.data.digit_sums import EOS, SOS, VOCABULARY, DigitSumData, load_digit_sums
from archlab.errors import ConfigError
from archlab.models import create_model, get_model_info
from archlab.report.run_files import RunFiles
from archlab.report.seq2seq import seq2seq_section
from archlab.tasks import OptimSettings, get_task
from archlab.tasks.seq2seq import SEQ2SEQ_OUTPUTS, Seq2SeqTask, pick_examples, sequence_scores


def test_sequence_scores_count_every_target_token_and_nothing_after_eos():
    targets = torch.tensor([[2, 7, EOS], [9, EOS, EOS], [4, 5, EOS]])
    lengths = torch.tensor([3, 2, 3])
    predicted = torch.tensor([[2, 7, EOS, 3], [9, EOS, 1, 1], [4, 6, EOS, EOS]])
    exact, right = sequence_scores(predicted, targets, lengths)
    assert exact.tolist() == [True, True, False] and right.tolist() == [3, 2, 2]
    exact, right = sequence_scores(predicted[:, :2], targets, lengths)  # stopped before <eos>: wrong
    assert exact.tolist() == [False, True, False] and right.tolist() == [2, 2, 1]
    exact, _ = sequence_scores(torch.tensor([[2, 7, 7]]), targets[:1], lengths[:1])  # no <eos>: wrong
    assert exact.tolist() == [False]


def module(**model_overrides) -> Seq2SeqTask:
    torch.manual_seed(0)
    model = create_model("td-cnn", **{**get_model_info("td-cnn").tiny, **model_overrides})
    optim = OptimSettings.from_config(TrainConfig(log_every_n_steps=1), total_steps=10, steps_per_epoch=5)
    return Seq2SeqTask(model, optim, max_output_len=3)


def test_loss_ignores_the_padding_of_the_targets():
    task = module()
    logits = torch.randn(2, 3, len(VOCABULARY))
    targets = torch.tensor([[1, EOS, EOS], [1, 2, EOS]])
    lengths = torch.tensor([2, 3])
    changed = logits.clone()
    changed[0, 2] = 10 * torch.randn(len(VOCABULARY))  # past the first target's <eos>
    torch.testing.assert_close(task.loss(logits, targets, lengths), task.loss(changed, targets, lengths))
    expected = -torch.stack([logits[0, 0].log_softmax(-1)[1], logits[0, 1].log_softmax(-1)[EOS],
                             logits[1, 0].log_softmax(-1)[1], logits[1, 1].log_softmax(-1)[2],
                             logits[1, 2].log_softmax(-1)[EOS]]).mean()
    torch.testing.assert_close(task.loss(logits, targets, lengths), expected)


def test_pick_examples_spans_the_lengths():
    lengths = torch.tensor([2, 2, 3, 5, 2, 3, 4])
    assert pick_examples(lengths, 5).tolist() == [0, 2, 6, 3, 1]
    assert sorted(pick_examples(lengths, 20).tolist()) == list(range(7))


def test_the_task_refuses_what_it_cannot_do():
    task = get_task("seq2seq")
    assert task.monitor == ("val_exact_match", "max") and task.data_kinds == ("image",)
    with pytest.raises(ConfigError, match="needs a data set of digit images"):
        task.check(TrainConfig(model="td-cnn", data="fashion-mnist", task="seq2seq"), "image")
    with pytest.raises(ConfigError, match="no setting.*max_digit.*Its settings"):
        task.check(TrainConfig(model="td-cnn", data="mnist", task_args={"max_digit": 4}), "image")
    with pytest.raises(ConfigError, match="min_digits"):
        task.check(TrainConfig(model="td-cnn", data="mnist", task_args={"min_digits": 6}), "image")
    with pytest.raises(ConfigError, match="does not support --cv"):
        task.check(TrainConfig(model="td-cnn", data="mnist", cv=3), "image")
    with pytest.raises(ConfigError, match="Model 'cnn' does not do --task seq2seq.*Models for seq2seq: td-cnn"):
        archlab.train("cnn", data="mnist", task="seq2seq", run_dir="/nonexistent/never-made")


@pytest.fixture
def tiny_sums(tiny_blobs) -> tuple[TrainConfig, DigitSumData]:
    """Sequences over the tiny-blobs images (labelled 0-9) in a private cache: no real data needed."""
    config = TrainConfig(model="td-cnn", data=tiny_blobs["data"], task="seq2seq", val_size=10,
                         batch_size=16, eval_batch_size=32, log_every_n_steps=1,
                         task_args={"train_sequences": 64, "eval_sequences": 40, "examples": 5})
    options = get_task("seq2seq").settings(config)
    return config, load_digit_sums(config.data, None, 10, 0, train_sequences=options.train_sequences,
                                   eval_sequences=options.eval_sequences)


def test_a_short_run_logs_the_metrics_and_writes_what_the_report_draws(tiny_sums, tmp_path):
    config, data = tiny_sums
    task = get_task("seq2seq")
    args = {**task.model_args(config, data), **get_model_info("td-cnn").tiny}
    assert (args["sos_token"], args["eos_token"], args["max_output_len"]) == (SOS, EOS, 3)
    train, val, test = task.loaders(config, data, 0, 1)
    module = task.build(config, data, create_model("td-cnn", **args), OptimSettings.from_config(config, 4, len(train)))
    trainer = L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, val_check_interval=2)
    trainer.fit(module, train, val)
    assert {"val_loss", "val_exact_match", "val_token_accuracy"} <= set(trainer.callback_metrics)
    results = task.test_metrics(trainer.test(module, test, verbose=False)[0])
    assert set(results) == {"loss", "exact_match", "token_accuracy"}
    assert 0 <= results["exact_match"] <= results["token_accuracy"] <= 1
    extra = task.save_outputs(tmp_path, config, data, module)
    correct = np.concatenate([exact.numpy() for _, exact in module.test_records])
    assert len(correct) == 40 and np.mean(correct) == pytest.approx(results["exact_match"])
    assert set(extra["exact_match_by_length"]) <= {"2", "3", "4", "5"}
    with np.load(tmp_path / SEQ2SEQ_OUTPUTS) as arrays:
        assert arrays["example_frames"].shape[:2] == (5, arrays["example_lengths"].max())
        assert arrays["example_frames"].dtype == np.uint8
        assert arrays["example_attention"].shape[0] == 5 and arrays["example_attention"].shape[2] == 5
        torch.testing.assert_close(torch.from_numpy(arrays["example_attention"]).sum(-1),
                                   torch.ones(arrays["example_attention"].shape[:2]))
        assert list(arrays["vocabulary"]) == list(VOCABULARY)
    meta = task.meta(config, data)
    assert meta["vocabulary"] == list(VOCABULARY) and json.dumps(meta)
    figures = []
    html = seq2seq_section(RunFiles(tmp_path, {}), lambda name, figure, alt: figures.append(name) or f"<img {alt}>")
    assert "exact match" in html and "5 digits" in html and figures == ["seq2seq_attention"]
    assert seq2seq_section(RunFiles(tmp_path / "other", {}), lambda *a: "") == ""


def test_the_report_says_when_there_is_no_attention(tiny_sums, tmp_path):
    config, data = tiny_sums
    task = get_task("seq2seq")
    model = create_model("td-cnn", **{**task.model_args(config, data), **get_model_info("td-cnn").tiny,
                                      "attention": "none"})
    test_module = task.build(config, data, model, OptimSettings.from_config(config, 1, 1))
    _, _, test = task.loaders(config, data, 0, 1)
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
              enable_model_summary=False).test(test_module, test, verbose=False)
    task.save_outputs(tmp_path, config, data, test_module)
    with np.load(tmp_path / SEQ2SEQ_OUTPUTS) as arrays:
        assert "example_attention" not in arrays
    html = seq2seq_section(RunFiles(tmp_path, {}), lambda name, figure, alt: f"<img {alt}>")
    assert "no attention" in html


def test_archlab_train_runs_the_task_end_to_end(tiny_blobs, tmp_path):
    """The engine drives the task: summary, meta (vocabulary, normalization), outputs, reloadable weights."""
    settings = {**tiny_blobs, "task_args": {"train_sequences": 64, "eval_sequences": 30, "examples": 4}}
    run = archlab.train("td-cnn", task="seq2seq", max_steps=3, model_args=get_model_info("td-cnn").tiny,
                        run_dir=tmp_path / "run", report=False, **settings)
    assert run.summary["task"] == "seq2seq" and run.summary["headline"] == "exact_match"
    assert {"exact_match", "token_accuracy", "loss"} <= set(run.summary["test_metrics"])
    assert "val_exact_match" in run.summary["best_val"] and run.summary["mflops"] > 0
    assert run.summary["exact_match_by_length"]
    loaded = run.load_model()
    assert loaded.meta["vocabulary"] == list(VOCABULARY) and loaded.meta["eos_token"] == EOS
    assert (tmp_path / "run" / SEQ2SEQ_OUTPUTS).is_file()
    config = TrainConfig(**{k: v for k, v in settings.items() if k != "monitor"}, model="td-cnn")
    data = get_task("seq2seq").load(config)
    _, _, test = get_task("seq2seq").loaders(config, data, 0, 1)
    frames, lengths, _, _ = next(iter(test))
    tokens, weights = loaded.model.greedy_decode(frames, lengths)
    assert tokens.shape[0] == len(lengths) and weights.shape[2] == frames.shape[1]
    with pytest.raises(ConfigError, match="digit images"):
        archlab.train("td-cnn", data="fashion-mnist", task="seq2seq", run_dir=tmp_path / "refused")


@pytest.mark.slow
def test_td_cnn_learns_to_sum_real_mnist_digits(tmp_path):
    """Bar: ≥ 35% test exact match on sequences of 2-5 MNIST test digits (always answering the most frequent
    sum: 5%), and short sums more often right than long ones. Budget: 1000 steps of batch 64, one-cycle
    lr 5e-3 (about 35 s of training on one core).

    The digits' labels are never given: the CNN learns to read them from the sums alone.
    """
    run = archlab.train("td-cnn", data="mnist", task="seq2seq", max_steps=1000, batch_size=64,
                        optimizer={"lr": 5e-3}, schedule={"name": "one-cycle"}, eval_batch_size=1000,
                        task_args={"eval_sequences": 1000}, run_dir=tmp_path / "run", progress=False, report=False)
    summary = run.summary
    assert summary["test_metrics"]["exact_match"] >= 0.35, summary["test_metrics"]
    by_length = summary["exact_match_by_length"]
    assert by_length["2"] > by_length["5"], by_length
    with np.load(tmp_path / "run" / SEQ2SEQ_OUTPUTS) as arrays:
        attention, lengths = arrays["example_attention"], arrays["example_lengths"]
    for weights, length in zip(attention, lengths):
        assert (weights[:, length:] == 0).all()
