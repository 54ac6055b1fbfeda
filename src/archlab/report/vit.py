"""The "Attention (ViT)" section of an image classifier's report: where a Vision Transformer looks.

For a few test images (the report's usual sample: correct ones first, then mistakes), the figure shows the
image, the attention rollout of the class token over the patches (Abnar & Zuidema 2020; see
:mod:`archlab.analysis.attention`) laid over it, and each layer's own head-averaged class-token attention.
The model is rebuilt from the run directory and run on those images only, so the section costs about a
second. Runs whose model has no ``attention_maps`` (every non-transformer) get no section; a model that cannot
be loaded leaves a note.
"""

from __future__ import annotations

from html import escape

import numpy as np
from matplotlib.figure import Figure
from safetensors import SafetensorError

from archlab.report.analysis_sections import LOAD_ERRORS, Samples, sample_images
from archlab.report.explain_figures import overlay, show_mosaic, to_unit
from archlab.report.figures import new_figure
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, note, section

ANCHOR, TITLE = "vit-attention", "Attention (ViT)"
SHOWN = 6  # images in the figure


def vit_attention_section(run: RunFiles, embed: Embed) -> str:
    """The section, or "" when the run is not an image classifier whose model has ``attention_maps``."""
    if run.summary.get("cv") or not _is_vit_run(run.meta):
        return ""
    from archlab.runs import load_model

    try:
        loaded = load_model(run.run_dir)
    except (*LOAD_ERRORS, SafetensorError) as error:
        return section(ANCHOR, TITLE, note(f"The model could not be loaded ({error}), so its attention is not shown."))
    samples, notes = sample_images(run)
    if samples is None:
        return section(ANCHOR, TITLE, "\n".join(note(text) for text in notes))
    try:
        body = _attention_figure(loaded, embed, samples)
    except LOAD_ERRORS as error:
        body = note(f"The attention maps could not be computed ({error}).")
    return section(ANCHOR, TITLE, body + "\n".join(note(text) for text in notes))


def _is_vit_run(meta: dict) -> bool:
    from archlab.errors import ArchlabError
    from archlab.models import get_model_info

    if "classes" not in meta or meta.get("input_kind", "image") != "image" or "model" not in meta:
        return False
    try:
        builder = get_model_info(str(meta["model"])).builder
    except ArchlabError:
        return False
    return callable(getattr(builder, "attention_maps", None))


def _attention_figure(loaded, embed: Embed, samples: Samples) -> str:
    import torch

    from archlab.analysis.attention import attention_rollout, class_attention_by_layer, class_token_map

    images = samples.images[:SHOWN]
    x = torch.from_numpy(images.astype(np.float32) / 255).sub(loaded.mean).div(loaded.std)
    model = loaded.model.eval()
    maps = model.attention_maps(x)
    size = tuple(images.shape[-2:])
    rollout = class_token_map(attention_rollout(maps), model.grid, size).numpy()
    layers = torch.nn.functional.interpolate(class_attention_by_layer(maps, model.grid), size=size,
                                             mode="bilinear", align_corners=False).numpy()
    figure = attention_figure(images, rollout, layers, samples.titles[:SHOWN])
    caption = (f"Top row: test images (true class, →predicted when wrong). Second row: attention rollout (Abnar & "
               f"Zuidema 2020) of the class token over the {model.grid}×{model.grid} patches: each layer's "
               "head-averaged attention mixed half and half with the identity (the residual path), rows "
               "renormalised, multiplied through all layers. Lower rows: each layer's own head-averaged "
               "attention of the class token. Every map is scaled to its own maximum (red).")
    return embed("vit_attention", figure, "ViT attention rollout") + f'<p class="caption">{escape(caption)}</p>'


def attention_figure(images: np.ndarray, rollout: np.ndarray, layers: np.ndarray, titles: list[str]) -> Figure:
    """Columns: images ``[K, C, H, W]`` (uint8). Rows: the image, the rollout ``[K, H, W]`` over it, then one row
    per layer of ``layers`` ``[L, K, H, W]``. Each heat map is divided by its own maximum."""
    rows = [("rollout", rollout)] + [(f"layer {index + 1}", layer) for index, layer in enumerate(layers)]
    figure = new_figure(max(1.1 * len(images) + 0.9, 4.5), 1.15 * (len(rows) + 1) + 0.6)
    grid = figure.subplots(len(rows) + 1, 1, squeeze=False)[:, 0]
    show_mosaic(grid[0], [to_unit(image) for image in images], titles)
    grid[0].set_ylabel("image", fontsize=8)
    for axes, (label, heats) in zip(grid[1:], rows):
        show_mosaic(axes, [overlay(image, _unit(heat)) for image, heat in zip(images, heats)])
        axes.set_ylabel(label, fontsize=8)
    figure.suptitle("Where the class token looks", fontsize=10)
    return figure


def _unit(heat: np.ndarray) -> np.ndarray:
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0, None)
    peak = float(heat.max())
    return heat / peak if peak > 0 else heat
