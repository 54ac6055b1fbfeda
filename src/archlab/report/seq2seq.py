"""The "Sequence to sequence" section of a seq2seq run's report, from ``seq2seq_outputs.npz``.

A table of exact-match accuracy by input length (how many digit images were summed), and, for a few test
sequences, the digit images side by side above the decoder's attention map: one row per written token, one
column per input frame, so a column lines up with the image it weighs.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from archlab.report.figures import new_figure
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_percent, note, section, table
from archlab.tasks.seq2seq import SEQ2SEQ_OUTPUTS

EXAMPLE_COLUMNS = 2
MAX_FIGURE_EXAMPLES = 8


def length_table(lengths: np.ndarray, correct: np.ndarray) -> str:
    """Exact match per input length, and over all sequences."""
    rows = []
    for length in np.unique(lengths):
        members = correct[lengths == length]
        rows.append([f"{int(length)} digits", f"{len(members):,}", fmt_percent(float(members.mean()))])
    rows.append(["all", f"{len(correct):,}", fmt_percent(float(correct.mean()) if len(correct) else float("nan"))])
    return table(["input length", "test sequences", "exact match"], rows)


def _token_labels(tokens: np.ndarray, vocabulary: list[str]) -> list[str]:
    """The written tokens up to and including the first <eos>."""
    labels = []
    for token in tokens:
        labels.append(vocabulary[token] if 0 <= token < len(vocabulary) else "?")
        if labels[-1] == "<eos>":
            break
    return labels


def _title(digits: np.ndarray, predicted: str) -> str:
    shown = [int(d) for d in digits if d >= 0]
    total = sum(shown)
    verdict = "right" if predicted == str(total) else "wrong"
    return f"{' + '.join(map(str, shown))} = {total}; wrote {predicted or '(nothing)'} ({verdict})"


def attention_figure(arrays: dict[str, np.ndarray], vocabulary: list[str]) -> Figure:
    """Each example: its frames in a strip, and below it the attention of each written token over them."""
    count = min(len(arrays["example_lengths"]), MAX_FIGURE_EXAMPLES)
    rows = -(-count // EXAMPLE_COLUMNS)
    figure = new_figure(5.2 * EXAMPLE_COLUMNS, 2.9 * rows)
    grid = figure.add_gridspec(2 * rows, EXAMPLE_COLUMNS, height_ratios=[1.0, 1.5] * rows)
    attention = arrays.get("example_attention")
    image = None
    for example in range(count):
        row, column = divmod(example, EXAMPLE_COLUMNS)
        steps = int(arrays["example_lengths"][example])
        frames = arrays["example_frames"][example, :steps]
        strip = figure.add_subplot(grid[2 * row, column])
        strip.imshow(np.concatenate(list(frames), axis=1), cmap="gray", extent=(-0.5, steps - 0.5, 1, 0),
                     aspect="auto")
        strip.set_xticks([])
        strip.set_yticks([])
        strip.set_title(_title(arrays["example_digits"][example], str(arrays["example_predictions"][example])),
                        fontsize=9)
        heat = figure.add_subplot(grid[2 * row + 1, column])
        labels = _token_labels(arrays["example_tokens"][example], vocabulary)
        if attention is not None:
            weights = attention[example, : len(labels), :steps]
            image = heat.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto",
                                extent=(-0.5, steps - 0.5, len(labels) - 0.5, -0.5))
        heat.set_yticks(range(len(labels)), labels, fontsize=8)
        heat.set_xticks(range(steps), [f"frame {t + 1}" for t in range(steps)], fontsize=7)
        heat.set_xlim(-0.5, steps - 0.5)  # a column of the map sits under its frame
        heat.set_ylabel("written", fontsize=8)
    if image is not None:
        figure.colorbar(image, ax=figure.axes, shrink=0.6, label="attention weight")
    return figure


def seq2seq_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run that wrote no sequence-to-sequence outputs."""
    path = Path(run.run_dir) / SEQ2SEQ_OUTPUTS
    if not path.is_file():
        return ""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        lengths, correct = arrays["lengths"], arrays["correct"].astype(bool)
        vocabulary = [str(token) for token in arrays["vocabulary"]]
    except (OSError, KeyError, ValueError) as error:
        return section("seq2seq", "Sequence to sequence", note(f"{path.name} could not be read ({error})."))
    body = ("<p>Exact match: the whole sum, <code>&lt;eos&gt;</code> included, written right by greedy decoding, "
            "by the number of digit images in the input.</p>" + length_table(lengths, correct))
    if "example_lengths" in arrays and len(arrays["example_lengths"]):
        figure = attention_figure(arrays, vocabulary)
        has_attention = "example_attention" in arrays
        caption = ("Each test sequence: its digit images, and below, for every token written (rows), the "
                   "decoder's attention over the frames (columns)." if has_attention else
                   "Test sequences and what the model wrote; this model has no attention (attention=none), so "
                   "everything it knows of the input passes through the encoder's final state.")
        alt = "attention maps" if has_attention else "examples"
        body += embed("seq2seq_attention", figure, alt) + f'<p class="caption">{escape(caption)}</p>'
    return section("seq2seq", "Sequence to sequence", body)
