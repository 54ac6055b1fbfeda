"""gpt through the language task: a run, `archlab eval` in nats and bits, top-p, prompt cropping, the attention
maps and their report section, and learning on real Shakespeare."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import archlab
import archlab.cli
import archlab.runs
import archlab.cli_language  # noqa: F401  (registers `archlab generate`)
from archlab.data.fetch import DATASETS, DatasetSpec
from archlab.data.shakespeare import TextSplits
from archlab.errors import ConfigError
from archlab.generation import generate_text, next_token, nucleus
from archlab.report.attention import attention_section
from archlab.report.run_files import read_run_files
from archlab.tasks import language

WORDS = ("the", "king", "queen", "speaks", "and", "sleeps", "a", "lord", "of", "night", "doth", "come")


def sentences(count: int, seed: int) -> str:
    generator = torch.Generator().manual_seed(seed)
    picks = [torch.randint(len(WORDS), (int(torch.randint(3, 8, (1,), generator=generator)),), generator=generator)
             for _ in range(count)]
    return "\n".join(" ".join(WORDS[i] for i in p).capitalize() + "." for p in picks)


@pytest.fixture
def tiny_corpus(monkeypatch):
    splits = TextSplits(sentences(300, 1), sentences(60, 2), sentences(60, 3), ("a",), ("b",), ("c",))
    spec = DatasetSpec(name="tiny-text", description="test sentences", source="test fixture", classes=(), files={},
                       fetcher=lambda tmp: {}, kind="text")
    monkeypatch.setitem(DATASETS, spec.name, spec)
    monkeypatch.setitem(language.CORPORA, spec.name, lambda data_dir: splits)
    return splits


@pytest.fixture
def gpt_run(tiny_corpus, tmp_path):
    torch.manual_seed(0)
    return archlab.train("gpt", data="tiny-text", task="language", max_steps=40, batch_size=16, eval_batch_size=64,
                         optimizer={"name": "adamw", "lr": 3e-3}, run_dir=tmp_path / "run", progress=False,
                         report=False, task_args={"context": 24, "max_eval_windows": 1000, "sample_length": 30},
                         model_args={"context": 24, "layers": 2, "heads": 2, "dim": 16, "dropout": 0.0})


@pytest.fixture
def console(monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200))
    monkeypatch.setattr(archlab.cli, "errors", Console(stderr=True, soft_wrap=True, width=200))


def test_eval_recomputes_validation_and_test_loss_in_nats_and_bits(gpt_run, console):
    metrics = archlab.evaluate(gpt_run.path)
    trained = gpt_run.summary["test_metrics"]
    assert metrics["test"]["loss"] == pytest.approx(trained["loss"], rel=1e-4)  # the run's own test pass
    model, tokenizer = archlab.runs.load_model(gpt_run.path).model, language.CharTokenizer.fit(sentences(300, 1))
    ids = tokenizer.encode(sentences(60, 2))  # validation: every window of 24 (fewer than max_eval_windows)
    windows = ids[: (len(ids) - 1) // 24 * 24 + 1]
    inputs, targets = windows[:-1].view(-1, 24), windows[1:].view(-1, 24)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(inputs)[0].flatten(0, 1), targets.flatten())
    assert metrics["val"]["loss"] == pytest.approx(float(expected), rel=1e-4)
    for split in ("val", "test"):
        assert metrics[split]["bits_per_char"] == pytest.approx(metrics[split]["loss"] / math.log(2))
    result = CliRunner().invoke(archlab.cli.app, ["eval", str(gpt_run.path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"val loss {metrics['val']['loss']:.4f} nats/char = "
                               f"{metrics['val']['bits_per_char']:.4f} bits/char")
    assert lines[1].startswith(f"test loss {metrics['test']['loss']:.4f} nats/char")


def test_attention_maps_are_saved_and_drawn_in_the_report(gpt_run):
    with np.load(gpt_run.path / language.ATTENTION) as arrays:
        maps, text = arrays["maps"], str(arrays["text"])
    assert maps.shape == (2, 2, 24, 24) and len(text) == 24  # cropped to the model's 24 positions
    assert text in sentences(60, 2)  # a piece of the validation text
    np.testing.assert_allclose(maps.astype(np.float32).sum(-1), 1.0, atol=2e-3)
    figures = []
    html = attention_section(read_run_files(gpt_run.path), lambda name, figure, alt: figures.append(figure) or name)
    assert "Attention maps" in html and "layer(s) × 2 head(s)" in html and len(figures) == 1
    assert len(figures[0].axes) == 4  # layers × heads
    (gpt_run.path / language.ATTENTION).unlink()
    assert attention_section(read_run_files(gpt_run.path), lambda *a: "") == ""


def test_generate_crops_a_prompt_longer_than_the_context_with_a_note(gpt_run, console):
    prompt = sentences(5, 4)  # longer than 24 characters
    generated = generate_text(gpt_run.path, prompt, length=15, temperature=0)
    assert len(generated.text) == 15 and "only its last 24 are read" in generated.notes[0]
    assert generated.text == generate_text(gpt_run.path, prompt[-24:], length=15, temperature=0).text
    assert generate_text(gpt_run.path, prompt[-24:], length=5, temperature=0).notes == []
    result = CliRunner().invoke(archlab.cli.app, ["generate", str(gpt_run.path), "--prompt", prompt, "--tokens", "15",
                                                  "--temperature", "0"])
    assert result.exit_code == 0 and "note:" in result.output and generated.text in result.output
    with pytest.raises(ConfigError, match="'Z'"):
        generate_text(gpt_run.path, "Zed", length=5)


def test_top_p_keeps_the_smallest_set_holding_p():
    probabilities = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]])
    torch.testing.assert_close(nucleus(probabilities, 0.75), torch.tensor([[0.625, 0.375, 0, 0], [0, 0, 0.375, 0.625]]))
    torch.testing.assert_close(nucleus(probabilities, 0.8), nucleus(probabilities, 0.75))  # 0.5 + 0.3 ≥ 0.8
    assert nucleus(probabilities, 0.81)[0, 2] > 0
    torch.testing.assert_close(nucleus(probabilities, 0.1), torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]))
    logits = probabilities.log().repeat(200, 1)
    drawn = next_token(logits, 1.0, None, torch.Generator().manual_seed(0), top_p=0.75)
    assert set(drawn[::2].tolist()) == {0, 1} and set(drawn[1::2].tolist()) == {2, 3}
    with pytest.raises(ConfigError, match="top_p"):
        archlab.generation.check_sampling(5, 1.0, None, 1.5)


@pytest.mark.slow
def test_gpt_learns_shakespeare_well_below_the_unigram_entropy(tmp_path):
    """Bar: test loss < 2.6 nats/char (unigram entropy of the text ≈ 3.36 nats = 4.84 bits) after 400 steps of
    batch 32, context 64, a 4-layer 64-wide gpt. Budget: ~30 s of training on one CPU thread, under 60 s in all."""
    torch.manual_seed(0)
    run = archlab.train("gpt", data="shakespeare", task="language", max_steps=400, batch_size=32, eval_batch_size=128,
                        optimizer={"name": "adamw", "lr": 3e-3}, schedule={"name": "one-cycle", "warmup_fraction": 0.1},
                        run_dir=tmp_path / "run", progress=False, report=False,
                        task_args={"context": 64, "windows_per_epoch": 12800, "max_eval_windows": 128,
                                   "sample_length": 50},
                        model_args={"context": 64, "layers": 4, "heads": 4, "dim": 64, "dropout": 0.0})
    loss = run.summary["test_metrics"]["loss"]
    unigram_nats = run.summary["baseline_bits_per_char"]["unigram"] * math.log(2)
    assert unigram_nats == pytest.approx(3.36, abs=0.1)
    assert loss < 2.6, f"test loss {loss:.3f} nats/char (unigram {unigram_nats:.3f})"
