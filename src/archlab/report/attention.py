"""The "Attention maps" section of a Transformer language run's report, from ``attention.npz``.

After the test pass the language task feeds a short fixed input (the first characters of the validation text)
to a model that has ``attention_maps(tokens)`` (``models/transformer.py``) and stores the weights
``[layers, heads, T, T]`` with the characters. Here they are drawn as a grid of heat maps, one row per layer and
one column per head: row i of a map is where the character at position i looks (its attention over the keys
j ≤ i, summing to 1), with the characters on both axes. Sparse patterns show as the empty cells they never
compute.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from archlab.report.figures import new_figure
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, note, section

from archlab.tasks.language import ATTENTION  # noqa: E402


def _label(char: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(char, char)


def attention_grid(maps: np.ndarray, chars: list[str]) -> Figure:
    """Heat maps of ``maps [layers, heads, T, T]``: rows are layers, columns heads; characters on the axes."""
    layers, heads, length, _ = maps.shape
    cell = max(1.6, min(3.2, 0.075 * length))
    figure = new_figure(cell * heads + 0.6, cell * layers + 0.4)
    axes = np.atleast_2d(figure.subplots(layers, heads, squeeze=False))
    labels = [_label(c) for c in chars]
    show_chars = length <= 48
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(maps[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
            if show_chars:
                ax.set_xticks(range(length), labels, fontsize=5, rotation=90 if length > 24 else 0,
                              fontfamily="monospace")
                ax.set_yticks(range(length), labels, fontsize=5, fontfamily="monospace")
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            ax.tick_params(length=0, pad=1)
    return figure


def attention_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run whose model stores no attention maps (not a Transformer LM)."""
    path = Path(run.run_dir) / ATTENTION
    if not path.is_file():
        return ""
    try:
        with np.load(path) as arrays:
            maps, text = arrays["maps"].astype(np.float32), str(arrays["text"])
    except (OSError, KeyError, ValueError) as error:
        return section("attention", "Attention maps", note(f"{path.name} could not be read ({error})."))
    if maps.ndim != 4 or maps.shape[-1] != maps.shape[-2] or maps.shape[-1] != len(text):
        return section("attention", "Attention maps",
                       note(f"{path.name} holds maps of shape {maps.shape} for {len(text)} characters; expected "
                            f"[layers, heads, T, T] with T the number of characters."))
    layers, heads, length, _ = maps.shape
    figure = attention_grid(maps, list(text))
    caption = (f'<p class="caption">Attention weights of {layers} layer(s) × {heads} head(s) for the {length} '
               f"characters <code>{escape(text)!s}</code> (the start of the validation text; ⏎ is a newline, ␣ a "
               f"space). Row: the query character; column: the key it reads; each row sums to 1 and only earlier "
               f"characters are visible (causal).</p>")
    return section("attention", "Attention maps", embed("attention_maps", figure, "attention maps") + caption)
