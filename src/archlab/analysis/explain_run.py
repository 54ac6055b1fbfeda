"""``explain(run_dir, image)``: what a trained run's CNN sees in one user image, as figures and arrays.

The model is rebuilt from the run directory alone (``meta.json`` + ``weights.safetensors``); the image is
converted as ``archlab predict`` converts it (greyscale, resized to the training size, light background
inverted), then normalized with the run's mean and std. Written into ``RUN_DIR/explain/<image stem>/``:

    filters.png       the first convolution's filters
    activations.png   the most active channels of each convolutional stage
    grad_cam.png      Grad-CAM over the image, for the predicted class (and for ``target_class`` if given)
    grad_cam.npy      the Grad-CAM map of the target class, [H, W] in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from archlab.analysis.explain import activation_maps, first_layer_filters, grad_cam
from archlab.errors import ArchlabError, ConfigError
from archlab.inference import _image_to_array, _npy_to_array
from archlab.io import atomic_path, atomic_write_bytes
from archlab.report.explain_figures import activations_figure, filters_figure, grad_cam_figure
from archlab.report.figures import figure_to_png
from archlab.runs import LoadedModel, load_model

READERS = {".npy": _npy_to_array}  # any other suffix is read as an image file (PNG, JPEG, ...)


@dataclass
class Explanation:
    """The arrays behind the figures of one image, and where the figures were written."""

    source: Path
    predicted: str
    probability: float
    target: str
    layer: str
    grad_cam: np.ndarray
    activations: dict[str, np.ndarray]
    filters: np.ndarray
    paths: dict[str, Path]
    notes: list[str] = field(default_factory=list)


def read_image(path: Path, loaded: LoadedModel, notes: list[str]) -> np.ndarray:
    """One user image as uint8 ``[1, H, W]`` at the run's input size (PNG/JPEG or a .npy of one image)."""
    if not path.is_file():
        raise ArchlabError(f"Input {path} does not exist.")
    _, height, width = loaded.meta["input_shape"]
    images = READERS.get(path.suffix.lower(), _image_to_array)(path, (height, width), notes)
    if len(images) != 1:
        raise ConfigError(f"{path} holds {len(images)} images; explain takes one. "
                          "Save a single one with np.save(path, array[i]).")
    return images


def class_index(loaded: LoadedModel, value: str | int | None) -> int | None:
    """A class given by name (``"7"``, ``"Sneaker"``) or by index, as its index; None stays None."""
    if value is None:
        return None
    classes = loaded.classes
    if str(value) in classes:
        return classes.index(str(value))
    if str(value).isdigit() and int(value) < len(classes):
        return int(value)
    raise ConfigError(f"Unknown class {value!r}; the run's classes are {', '.join(classes)} "
                      f"(or their indices 0..{len(classes) - 1}).")


def explain(run_dir: str | Path, image: str | Path, layer: str | None = None, target_class: str | int | None = None,
            out_dir: str | Path | None = None) -> Explanation:
    """Filters, activation maps and Grad-CAM of ``image`` through the run's model; figures saved to ``out_dir``.

    ``layer`` picks the Grad-CAM layer (default: the last feature map); ``target_class`` (name or index)
    adds a Grad-CAM row for that class next to the predicted one. Returns the arrays and the file paths.
    """
    loaded = load_model(run_dir)
    path, notes = Path(image), []
    target = class_index(loaded, target_class)
    pixels = read_image(path, loaded, notes)
    x = torch.from_numpy(pixels.copy()).float().div(255).sub(loaded.mean).div(loaded.std).unsqueeze(0)
    predicted_maps = grad_cam(loaded.model, x, layer=layer)
    predicted = int(predicted_maps.predicted[0])
    rows = [(f"predicted: {loaded.classes[predicted]}", predicted_maps.maps.cpu().numpy())]
    target_maps = predicted_maps
    if target is not None and target != predicted:
        target_maps = grad_cam(loaded.model, x, target, layer=predicted_maps.layer)
        rows.append((f"class {loaded.classes[target]}", target_maps.maps.cpu().numpy()))
    result = Explanation(
        source=path, predicted=loaded.classes[predicted], probability=float(predicted_maps.probs[0, predicted]),
        target=loaded.classes[int(target_maps.target_class[0])], layer=predicted_maps.layer,
        grad_cam=target_maps.maps[0].cpu().numpy(),
        activations={name: a.cpu().numpy() for name, a in activation_maps(loaded.model, x).items()},
        filters=first_layer_filters(loaded.model).numpy(), paths={}, notes=notes,
    )
    folder = Path(out_dir) if out_dir else Path(run_dir) / "explain" / path.stem
    result.paths = write_figures(folder, result, pixels, rows)
    return result


def write_figures(folder: Path, result: Explanation, pixels: np.ndarray, rows: list[tuple[str, np.ndarray]]) -> dict:
    """Draw and atomically write the three figures and the Grad-CAM array; return their paths."""
    title = f"Grad-CAM at layer {result.layer} (predicted {result.predicted}, p = {result.probability:.2f})"
    figures = {
        "filters": filters_figure(result.filters),
        "activations": activations_figure(pixels, result.activations),
        "grad_cam": grad_cam_figure(pixels[None], rows, [result.source.name], suptitle=title),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = folder / f"{name}.png"
        atomic_write_bytes(paths[name], figure_to_png(figure))
    paths["grad_cam_array"] = folder / "grad_cam.npy"
    with atomic_path(paths["grad_cam_array"]) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, result.grad_cam.astype(np.float32))
    return paths
