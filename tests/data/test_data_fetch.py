"""The cache machinery with a fake registered data set: atomic install, verification, clean failures."""

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from archlab.data.fetch import data_dir, fetch, get_spec, is_cached, list_datasets, run_tool
from archlab.errors import DataError

TINY_NAME = "tiny-test"  # registered by the tiny_spec fixture (conftest.py)


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "archlab" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "archlab" / "data"
    monkeypatch.setenv("ARCHLAB_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert not any(tmp_path.iterdir()), "data_dir() must not create anything"


def test_fetch_installs_verified_folder_with_manifest(tiny_spec, cache_dir):
    final = cache_dir / TINY_NAME

    def watching_fetcher(tmp_dir: Path):
        assert not final.exists(), "the final folder must not appear before the files are verified"
        assert tmp_dir.parent.parent == cache_dir and tmp_dir.parent.name.startswith(f".tmp-{TINY_NAME}-")
        return inner(tmp_dir)

    inner = tiny_spec.fetcher
    object.__setattr__(tiny_spec, "fetcher", watching_fetcher)
    assert not is_cached(TINY_NAME, cache_dir)
    path = fetch(TINY_NAME, cache_dir, quiet=True)

    assert path == final and is_cached(TINY_NAME, cache_dir)
    assert sorted(p.name for p in cache_dir.iterdir()) == [TINY_NAME], "no temp folder may be left"
    manifest = json.loads((path / "manifest.json").read_text())
    for filename, md5 in tiny_spec.files.values():
        content = (path / filename).read_bytes()  # stored uncompressed
        assert hashlib.md5(content).hexdigest() == md5
        assert manifest["files"][filename] == {"md5": md5, "size": len(content)}


def test_cached_fetch_does_not_refetch_unless_forced(tiny_spec, cache_dir):
    fetch(TINY_NAME, cache_dir, quiet=True)
    fetch(TINY_NAME, cache_dir, quiet=True)
    assert tiny_spec.fetcher.calls == 1
    fetch(TINY_NAME, cache_dir, force=True, quiet=True)
    assert tiny_spec.fetcher.calls == 2
    assert sorted(p.name for p in cache_dir.iterdir()) == [TINY_NAME]


def test_damaged_cache_is_fetched_again(tiny_spec, cache_dir):
    path = fetch(TINY_NAME, cache_dir, quiet=True)
    victim = path / tiny_spec.files["train_labels"][0]
    victim.write_bytes(victim.read_bytes()[:-1])
    fetch(TINY_NAME, cache_dir, quiet=True)
    assert tiny_spec.fetcher.calls == 2
    assert hashlib.md5(victim.read_bytes()).hexdigest() == tiny_spec.files["train_labels"][1]


def test_md5_mismatch_leaves_nothing(tiny_spec, cache_dir, monkeypatch):
    files = dict(tiny_spec.files)
    files["test_labels"] = (files["test_labels"][0], "0" * 32)
    object.__setattr__(tiny_spec, "files", files)
    with pytest.raises(DataError, match="Checksum mismatch for t10k-labels-idx1-ubyte"):
        fetch(TINY_NAME, cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []
    assert not is_cached(TINY_NAME, cache_dir)


@pytest.mark.parametrize("failure", [RuntimeError("network down"), OSError("disk full")])
def test_fetcher_failing_midway_leaves_nothing(tiny_spec, cache_dir, failure):
    def failing_fetcher(tmp_dir: Path):
        (tmp_dir / "half-written").write_bytes(b"xx")
        raise failure

    object.__setattr__(tiny_spec, "fetcher", failing_fetcher)
    with pytest.raises(DataError, match=str(failure)):
        fetch(TINY_NAME, cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_interrupt_propagates_and_cleans_up(tiny_spec, cache_dir):
    def interrupted(tmp_dir: Path):
        raise KeyboardInterrupt

    object.__setattr__(tiny_spec, "fetcher", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(TINY_NAME, cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_leftover_temp_folder_is_never_loaded(tiny_spec, cache_dir):
    # What a killed fetch could leave behind: a staging folder with files but outside the final name.
    (cache_dir / f".tmp-{TINY_NAME}-dead" / TINY_NAME).mkdir(parents=True)
    assert not is_cached(TINY_NAME, cache_dir)
    assert [row["cached"] for row in list_datasets(cache_dir) if row["name"] == TINY_NAME] == [False]


def test_env_override_is_honoured(tiny_spec, cache_dir, monkeypatch):
    monkeypatch.setenv("ARCHLAB_DATA", str(cache_dir))
    path = fetch(TINY_NAME, quiet=True)
    assert path == cache_dir / TINY_NAME and is_cached(TINY_NAME)


def test_list_datasets_reports_cache_state(tiny_spec, cache_dir):
    def row():
        return next(r for r in list_datasets(cache_dir) if r["name"] == TINY_NAME)

    assert {"mnist", "fashion-mnist", TINY_NAME} <= {r["name"] for r in list_datasets(cache_dir)}
    before = row()
    assert before["cached"] is False and before["size_bytes"] == 0
    assert before["path"] == str(cache_dir / TINY_NAME) and before["source"] == "test fixture"
    folder = fetch(TINY_NAME, cache_dir, quiet=True)
    after = row()
    assert after["cached"] is True
    assert after["size_bytes"] == sum(p.stat().st_size for p in folder.iterdir()) > 0


def test_unknown_name_lists_known_names(cache_dir):
    for call in (lambda: get_spec("cifar"), lambda: fetch("cifar", cache_dir), lambda: is_cached("cifar")):
        with pytest.raises(DataError) as info:
            call()
        assert "cifar" in str(info.value) and "mnist" in str(info.value) and "fashion-mnist" in str(info.value)


def test_fetch_reports_unwritable_cache(tiny_spec, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="ARCHLAB_DATA"):
        fetch(TINY_NAME, blocker / "cache", quiet=True)


def test_fetch_prints_progress_unless_quiet(tiny_spec, cache_dir, capsys):
    fetch(TINY_NAME, cache_dir)
    assert "fetching tiny-test" in capsys.readouterr().err
    fetch(TINY_NAME, cache_dir, force=True, quiet=True)
    assert capsys.readouterr().err == ""


def test_run_tool_quotes_stderr_of_a_failing_tool(tmp_path, monkeypatch):
    tool = tmp_path / "bin" / "faketool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 'first line' >&2\necho 'E404 not found' >&2\nexit 3\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    with pytest.raises(DataError) as info:
        run_tool(["faketool", "x"], cwd=tmp_path, install_hint="install faketool")
    assert "status 3" in str(info.value) and "E404 not found" in str(info.value)
    assert os.environ["PATH"] == str(tool.parent)


def test_a_concurrent_fetch_that_finished_first_is_kept(tiny_spec, cache_dir):
    inner = tiny_spec.fetcher
    installed = {}

    def racing_fetcher(tmp_dir: Path):
        if not installed:  # another process (here: a nested fetch) completes while this one downloads
            installed["started"] = True
            installed["inode"] = fetch(TINY_NAME, cache_dir, quiet=True).stat().st_ino
        return inner(tmp_dir)

    object.__setattr__(tiny_spec, "fetcher", racing_fetcher)
    path = fetch(TINY_NAME, cache_dir, quiet=True)
    assert path.stat().st_ino == installed["inode"], "the folder another process installed is left alone"
    assert sorted(p.name for p in cache_dir.iterdir()) == [TINY_NAME]


def test_stale_work_folders_of_a_killed_fetch_are_removed(tiny_spec, cache_dir):
    cache_dir.mkdir(parents=True)
    stale = cache_dir / f".tmp-{tiny_spec.name}-killed"
    fresh = cache_dir / f".tmp-{tiny_spec.name}-running"
    for folder in (stale, fresh):
        (folder / "raw").mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    fetch(tiny_spec.name, cache_dir, quiet=True)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a fetch still running
