"""Generation from a language run: sampling rules, O(1) work per token, clear errors, CLI and report."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import archlab.cli
import archlab.cli_language  # noqa: F401  (registers `archlab generate` and the summary printer)
from archlab.data.text import UNK_CHAR, CharTokenizer
from archlab.errors import ConfigError, RunError
from archlab.generation import generate, next_token
from archlab.models import create_model, resolve_model_args
from archlab.report.language import language_section
from archlab.report.run_files import read_run_files
from archlab.runs import load_model, save_model

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"
ARGS = {"vocab_size": CharTokenizer.fit(TEXT).vocab_size, "embedding_dim": 16, "hidden": 24, "layers": 2}


def save_run(run_dir, name="gru-lm", **meta):
    torch.manual_seed(0)
    model = create_model(name, **ARGS)
    with torch.no_grad():  # larger weights than the initialisation: peaked, varied next-token distributions
        for param in model.parameters():
            param.mul_(4)
    meta = {"model": name, "model_args": resolve_model_args(name, **ARGS), "task": "language",
            "tokenizer": CharTokenizer.fit(TEXT).to_dict(), **meta}
    save_model(run_dir, model, meta)
    return run_dir


@pytest.fixture
def run_dir(tmp_path):
    return save_run(tmp_path / "run")


def reread_greedy(run_dir, prompt: str, length: int, top_k_check: int | None = None, drawn: str | None = None):
    """Reference decoding that re-reads the whole text at every step (no state carried): greedy text, or,
    given ``drawn``, whether each drawn character was among the ``top_k_check`` most likely."""
    loaded = load_model(run_dir)
    tokenizer = CharTokenizer.from_dict(loaded.meta["tokenizer"])
    text, inside = prompt, []
    with torch.no_grad():
        for step in range(length):
            logits = loaded.model(tokenizer.encode(text)[None])[0][0, -1]
            logits[tokenizer.unk_id] = float("-inf")
            if drawn is None:
                text += tokenizer.decode([int(logits.argmax())])
            else:
                inside.append(int(tokenizer.encode(drawn[step])) in logits.topk(top_k_check).indices.tolist())
                text += drawn[step]
    return text[len(prompt):] if drawn is None else inside


# --- sampling --------------------------------------------------------------------------------------------


def test_same_seed_same_text_other_seed_other_text(run_dir):
    first = generate(run_dir, "To be", length=60, temperature=1.0, seed=3)
    assert len(first) == 60 and first == generate(run_dir, "To be", length=60, temperature=1.0, seed=3)
    assert first != generate(run_dir, "To be", length=60, temperature=1.0, seed=4)


def test_temperature_zero_is_greedy_and_equals_rereading_the_whole_text(run_dir):
    greedy = generate(run_dir, "Whether", length=40, temperature=0)
    assert greedy == reread_greedy(run_dir, "Whether", 40)
    assert greedy == generate(run_dir, "Whether", length=40, temperature=0, seed=9)  # no randomness left
    assert len(set(greedy)) > 1  # a varied text, so the comparison means something


def test_top_k_one_is_greedy_at_any_temperature(run_dir):
    assert generate(run_dir, "To", length=40, temperature=1.7, top_k=1, seed=1) == generate(
        run_dir, "To", length=40, temperature=0)


def test_top_k_draws_only_among_the_k_most_likely(run_dir):
    drawn = generate(run_dir, "To", length=40, temperature=5.0, top_k=3, seed=2)
    assert all(reread_greedy(run_dir, "To", 40, top_k_check=3, drawn=drawn))
    free = generate(run_dir, "To", length=40, temperature=5.0, seed=2)
    assert not all(reread_greedy(run_dir, "To", 40, top_k_check=3, drawn=free))  # the filter is what did it


def test_the_prompt_is_read_once_then_one_token_per_step(run_dir, monkeypatch):
    loaded = load_model(run_dir)
    calls = []
    loaded.model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[1]))
    monkeypatch.setattr("archlab.generation.load_model", lambda path: loaded)
    generate(run_dir, "To be, or", length=25, seed=0)
    assert calls == [len("To be, or")] + [1] * 24


def test_unk_is_never_written(tmp_path):
    run_dir = save_run(tmp_path / "run")
    loaded = load_model(run_dir)
    with torch.no_grad():
        loaded.model.decoder.bias[0] = 1e4  # the model all but insists on <unk>
    save_model(run_dir, loaded.model, loaded.meta)
    assert UNK_CHAR not in generate(run_dir, "To", length=50, temperature=1.0, seed=0)


def test_next_token_keeps_ties_and_excludes():
    logits = torch.tensor([[5.0, 1.0, 5.0, 0.0]])
    assert int(next_token(logits, 0.0, None, None)) == 0
    assert int(next_token(logits, 0.0, None, None, exclude=(0,))) == 2
    draws = {int(next_token(logits, 1.0, 2, torch.Generator().manual_seed(s))) for s in range(30)}
    assert draws == {0, 2}


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt, message", [("", "prompt is empty"), ("To bé or ¿", r"'¿', 'é'.*<unk>")])
def test_bad_prompts_say_what_is_wrong(run_dir, prompt, message):
    with pytest.raises(ConfigError, match=message):
        generate(run_dir, prompt, length=5)


@pytest.mark.parametrize("settings, message", [({"temperature": -1}, "temperature must be ≥ 0"),
                                               ({"top_k": 0}, "top_k must be ≥ 1"),
                                               ({"length": 10**7}, "length must be between")])
def test_bad_settings_are_refused(run_dir, settings, message):
    with pytest.raises(ConfigError, match=message):
        generate(run_dir, "To", **{"length": 5, **settings})


def test_a_classifier_run_points_to_predict(tmp_path):
    model = create_model("mlp")
    save_model(tmp_path / "cls", model, {"model": "mlp", "model_args": resolve_model_args("mlp"), "task": "classify"})
    with pytest.raises(RunError, match="not a language model.*archlab predict"):
        generate(tmp_path / "cls", "To", length=5)
    with pytest.raises(RunError, match="does not exist"):
        generate(tmp_path / "nowhere", "To", length=5)


# --- CLI and report --------------------------------------------------------------------------------------


@pytest.fixture
def console(monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200))
    monkeypatch.setattr(archlab.cli, "errors", Console(stderr=True, soft_wrap=True, width=200))


def test_cli_generate_prints_prompt_and_continuation(run_dir, console):
    result = CliRunner().invoke(archlab.cli.app, ["generate", str(run_dir), "--prompt", "To be", "--length", "30",
                                                  "--temperature", "0.8", "--top-k", "5", "--seed", "0"])
    assert result.exit_code == 0, result.output
    expected = generate(run_dir, "To be", length=30, temperature=0.8, top_k=5, seed=0)
    assert result.output.rstrip("\n") == "To be" + expected.rstrip("\n")
    failed = CliRunner().invoke(archlab.cli.app, ["generate", str(run_dir), "--prompt", ""])
    assert failed.exit_code == 2 and "prompt is empty" in failed.output + str(getattr(failed, "stderr", ""))


def test_summary_printer_shows_bits_per_char_and_baselines(capsys, monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200, file=None))
    archlab.cli.SUMMARY_PRINTERS["language"]({
        "test_metrics": {"bits_per_char": 2.345, "perplexity": 5.08, "accuracy": 0.45},
        "best_val": {"val_loss": 1.5}, "baseline_bits_per_char": {"unigram": 4.84, "bigram": 3.63}})
    out = capsys.readouterr().out
    assert "2.345" in out and "5.08" in out and "2.164" in out and "4.840" in out and "bigram" in out


def test_report_section_shows_numbers_and_escaped_samples(run_dir):
    summary = {"model": "gru-lm", "test_metrics": {"bits_per_char": 2.5, "perplexity": 5.66, "loss": 1.733}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    samples = {"prompt": "Romeo.\n", "baseline_bits_per_char": {"unigram": 4.84},
               "samples": [{"temperature": 0.5, "top_k": None, "seed": 0, "text": "<b>What, ho!</b> & so"}]}
    (run_dir / "samples.json").write_text(json.dumps(samples))
    html = language_section(read_run_files(run_dir), embed=lambda *args: "")
    assert "2.500" in html and "4.840" in html and "temperature 0.50" in html
    assert "&lt;b&gt;What, ho!&lt;/b&gt; &amp; so" in html and "<pre>" in html
    (run_dir / "samples.json").unlink()
    (run_dir / "summary.json").write_text(json.dumps({"model": "cnn", "test_metrics": {"accuracy": 0.9}}))
    assert language_section(read_run_files(run_dir), embed=lambda *args: "") == ""
