"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017), from the Debian package ``dataset-fashion-mnist``.

Zalando's drop-in replacement for MNIST: 60,000 train / 10,000 test 28x28 grayscale images of clothing in
10 classes. Debian ships the four IDX files gzip-compressed under ``/usr/share/datasets/fashion-mnist``.
Debian re-compressed them, so the md5s of the ``.gz`` files differ from Zalando's published ones (which are
md5s of Zalando's ``.gz`` files); the md5s checked here are those of the *uncompressed* IDX files, which are
the original bytes.

Where to look: ``$ARCHLAB_FASHION_SRC`` if set (tests point it at tiny files), else the package's folder. If
the package is not installed, ``apt-get download`` fetches the .deb (no root needed) and ``dpkg-deb -x``
unpacks it inside the scratch folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from archlab.data.fetch import DatasetSpec, register_dataset, run_tool
from archlab.errors import DataError

DEB_PACKAGE = "dataset-fashion-mnist"
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
SOURCE_ENV = "ARCHLAB_FASHION_SRC"
APT_HINT = f"install it with `sudo apt-get install {DEB_PACKAGE}`"

FILES = {
    "train_images": ("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train_labels": ("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"),
    "test_images": ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
    "test_labels": ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"),
}

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def source_dir() -> Path:
    """The folder holding the ``*.gz`` files: ``$ARCHLAB_FASHION_SRC`` or the Debian package's folder."""
    return Path(os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE)


def _find_files(folder: Path) -> dict[str, Path] | None:
    """Logical name -> path of the four files in ``folder`` (gzip or plain), or None if any is missing."""
    found = {}
    for key, (filename, _) in FILES.items():
        candidates = [folder / f"{filename}.gz", folder / filename]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
        found[key] = path
    return found


def _download_deb(tmp_dir: Path) -> Path:
    """``apt-get download`` the package into ``tmp_dir``, unpack it there, return its data folder."""
    run_tool(["apt-get", "download", DEB_PACKAGE], cwd=tmp_dir, install_hint=APT_HINT)
    debs = sorted(tmp_dir.glob(f"{DEB_PACKAGE}_*.deb"))
    if not debs:
        raise DataError(f"`apt-get download {DEB_PACKAGE}` produced no .deb in {tmp_dir}; {APT_HINT}.")
    unpacked = tmp_dir / "deb-root"
    run_tool(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], cwd=tmp_dir, install_hint=APT_HINT)
    return unpacked / DEFAULT_SOURCE.relative_to("/")


def fetch_fashion(tmp_dir: Path) -> dict[str, Path]:
    """Fetcher of the Fashion-MNIST spec: the installed files, else the downloaded and unpacked .deb."""
    installed = _find_files(source_dir())
    if installed is not None:
        return installed
    try:
        downloaded = _find_files(_download_deb(tmp_dir))
    except DataError as error:
        raise DataError(
            f"Fashion-MNIST was not found in {source_dir()} and downloading the Debian package failed "
            f"({error}). {APT_HINT[0].upper()}{APT_HINT[1:]}, then run `archlab data fetch fashion-mnist`."
        ) from error
    if downloaded is None:
        raise DataError(f"The package {DEB_PACKAGE} did not contain the expected IDX files; {APT_HINT}.")
    return downloaded


FASHION_MNIST = register_dataset(
    DatasetSpec(
        name="fashion-mnist",
        description="Fashion-MNIST clothing images: 60,000 train / 10,000 test, 28x28 grayscale, 10 classes",
        source=f"Debian package {DEB_PACKAGE}",
        classes=CLASSES,
        files=FILES,
        fetcher=fetch_fashion,
    )
)
