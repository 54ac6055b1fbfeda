"""The "Language model" section of a language run's report: bits per character and generated samples.

Numbers come from ``summary.json`` (test metrics, best validation loss, the n-gram baselines); the samples
from ``samples.json``, written after the test pass (``tasks/language.py``). Generated text is escaped and
shown verbatim in ``<pre>``.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_number, note, section, table
from archlab.tasks.language import SAMPLES


def _read_samples(run_dir: Path) -> tuple[dict, str]:
    path = run_dir / SAMPLES
    if not path.is_file():
        return {}, ""
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return {}, note(f"{SAMPLES} could not be read ({error}); write new samples with `archlab generate`.")
    if not isinstance(samples, dict):
        return {}, note(f"{SAMPLES} does not hold the expected object; write new samples with `archlab generate`.")
    return samples, ""


def _numbers(run: RunFiles, baselines: dict) -> str:
    test = run.summary.get("test_metrics") or {}
    best_loss = (run.summary.get("best_val") or {}).get("val_loss")
    best_bits = best_loss / math.log(2) if isinstance(best_loss, (int, float)) else None
    rows = [["this model, test", fmt_number(test.get("bits_per_char"), 3), fmt_number(test.get("perplexity"), 2),
             fmt_number(test.get("accuracy"), 3)],
            ["this model, best validation", fmt_number(best_bits, 3), fmt_number(
                math.exp(best_loss) if best_bits is not None else None, 2), "—"]]
    for name, bits in baselines.items():
        rows.append([f"{escape(str(name))} model of the training text, test", fmt_number(bits, 3),
                     fmt_number(2 ** bits if isinstance(bits, (int, float)) else None, 2), "—"])
    return table(["", "bits / char", "perplexity", "next-char accuracy"], rows)


def _samples(samples: dict) -> str:
    prompt = str(samples.get("prompt", ""))
    parts = []
    for sample in samples.get("samples") or []:
        if not isinstance(sample, dict):
            continue
        top_k = sample.get("top_k")
        settings = f"temperature {fmt_number(sample.get('temperature'), 2)}" + (
            f", top-k {escape(str(top_k))}" if top_k else "") + f", seed {escape(str(sample.get('seed')))}"
        parts.append(f"<h3>{settings}</h3>\n<pre><b>{escape(prompt)}</b>{escape(str(sample.get('text', '')))}</pre>")
    return "\n".join(parts)


def language_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run that is not a language model (no samples, no bits per character)."""
    samples, problem = _read_samples(Path(run.run_dir))
    has_bits = "bits_per_char" in (run.summary.get("test_metrics") or {})
    if not (samples or problem or has_bits):
        return ""
    baselines = samples.get("baseline_bits_per_char") or run.summary.get("baseline_bits_per_char") or {}
    intro = ("<p>Bits per character: the test cross-entropy in bits (loss / ln 2); perplexity = 2<sup>bits</sup>. "
             "Baselines: add-one-smoothed unigram and bigram character models fitted on the training text. "
             "Below, continuations of the prompt (in bold) sampled after training.</p>")
    body = intro + _numbers(run, baselines) + (problem or _samples(samples))
    return section("language-model", "Language model", body)
