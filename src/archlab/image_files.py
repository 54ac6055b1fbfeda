"""Single greyscale images on disk ↔ tensors in [-1, 1], for the commands that take or give one image
(``enhance``, ``translate``): PNG/JPEG files (or ``.npy`` arrays) in, PNG files out (written atomically).

The training images are light strokes on black; a picture with a light background is inverted on request so
it looks like them (``invert_light``), and every conversion is said in the returned notes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from archlab.errors import ArchlabError, ConfigError
from archlab.io import atomic_path


def _read_array(path: Path, notes: list[str]) -> np.ndarray:
    """The file's pixels as a 2-d float array in [0, 255]."""
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim > 2 and int(np.prod(array.shape[:-2])) == 1:
            array = array.reshape(array.shape[-2:])
        if array.dtype != np.uint8:
            if array.min() < -1.001 or array.max() > 255:
                raise ConfigError(f"{path}: values must be uint8 pixels or floats in [-1, 1] or [0, 1].")
            if array.min() < 0:
                array = (array + 1) * 127.5
            elif array.max() <= 1.0:
                array = array * 255.0
        return np.asarray(array, dtype=np.float32)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "1"):
                notes.append(f"converted mode {image.mode} to greyscale")
            return np.asarray(image.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as err:
        raise ArchlabError(f"Cannot read {path} as an image ({err}). Pass a PNG/JPEG file or a .npy array.") from err


def read_image(path: str | Path, shape: tuple[int, int] | None = None, *,
               invert_light: bool = False) -> tuple[torch.Tensor, list[str]]:
    """A greyscale image file or ``.npy`` array → ``[1, 1, H, W]`` in [-1, 1], and notes on what was converted.

    ``shape`` (H, W): other sizes are refused (a resized image would not be the image the user meant).
    ``invert_light``: a mostly light picture is inverted to light strokes on black, like the training images.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchlabError(f"{path} does not exist. Pass a PNG/JPEG file or a .npy array.")
    notes: list[str] = []
    array = _read_array(path, notes)
    if array.ndim != 2 or (shape is not None and tuple(array.shape) != tuple(shape)):
        size = "×".join(str(s) for s in array.shape[::-1])
        wanted = f"{shape[1]}×{shape[0]} " if shape is not None else "2-d "
        raise ConfigError(f"{path} is {size} pixels; this command takes {wanted}greyscale images. Resize it first.")
    if invert_light and array.mean() > 127:
        notes.append("inverted a light background to match the training images (light strokes on black)")
        array = 255.0 - array
    return torch.from_numpy(array / 127.5 - 1.0)[None, None], notes


def write_png(image: torch.Tensor, path: str | Path) -> Path:
    """One image ``[1, 1, H, W]`` (or ``[1, H, W]``) in [-1, 1] as a greyscale PNG of its own size, atomically."""
    from PIL import Image

    pixels = ((image.detach().float().cpu().clamp(-1, 1).reshape(image.shape[-2:]) + 1) * 127.5).round()
    with atomic_path(path) as tmp:
        Image.fromarray(pixels.to(torch.uint8).numpy(), mode="L").save(tmp, format="PNG")
    return Path(path)
