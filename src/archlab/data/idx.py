"""Read and write IDX files, the binary format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, then one big-endian int32 per dimension, then the payload in C order::

    magic = 0x00 0x00 <type code> <ndim>     type code 0x08 = unsigned byte (the only one used here)
    dims  = ndim x int32 (big-endian)
    data  = prod(dims) values

The reader checks every part of that header and that the payload has exactly ``prod(dims)`` bytes, so a
truncated download or a wrong file is reported instead of being loaded as garbage. Files ending in ``.gz`` are
read and written through gzip.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from archlab.errors import DataError

UINT8_CODE = 0x08
MAX_NDIM = 4


def _corrupt(path: Path, problem: str) -> DataError:
    """A DataError for a bad IDX file, with the fix for a file that lives in the archlab cache."""
    folder = path.parent
    return DataError(
        f"{path} is not a valid IDX file: {problem}. The file is damaged or is not what its name says. "
        f"If it is part of the archlab data cache, delete {folder} and run "
        f"`archlab data fetch {folder.name}` to download and verify it again."
    )


def _read_bytes(path: Path) -> bytes:
    """The whole (decompressed) content of ``path``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except FileNotFoundError as error:
        raise DataError(f"IDX file {path} does not exist; check the path or re-fetch the data set.") from error
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise _corrupt(path, f"it cannot be read ({error})") from error


def _parse_header(path: Path, content: bytes) -> tuple[tuple[int, ...], int]:
    """The dimensions and the header length, after checking the magic number."""
    if len(content) < 4:
        raise _corrupt(path, f"it has {len(content)} bytes, fewer than the 4 of the magic number")
    zero_a, zero_b, type_code, ndim = content[:4]
    if zero_a != 0 or zero_b != 0:
        raise _corrupt(path, f"the magic number starts with {zero_a:#04x} {zero_b:#04x} instead of two zero bytes")
    if type_code != UINT8_CODE:
        raise _corrupt(path, f"type code {type_code:#04x} is not {UINT8_CODE:#04x} (uint8), the only one supported")
    if not 1 <= ndim <= MAX_NDIM:
        raise _corrupt(path, f"it declares {ndim} dimensions, expected 1 to {MAX_NDIM}")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise _corrupt(path, f"the header needs {header_len} bytes but the file has only {len(content)}")
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise _corrupt(path, f"it declares negative dimensions {dims}")
    return dims, header_len


def read_idx(path: str | Path) -> np.ndarray:
    """Read a uint8 IDX file (plain or ``.gz``) into a writable array of the declared shape.

    Raises DataError naming the file when the magic number, the type code, the number of dimensions or the
    payload size (truncated or trailing bytes) is wrong.
    """
    path = Path(path)
    content = _read_bytes(path)
    dims, header_len = _parse_header(path, content)
    expected = int(np.prod(dims, dtype=np.int64))
    found = len(content) - header_len
    if found != expected:
        kind = "truncated" if found < expected else "followed by trailing bytes"
        raise _corrupt(path, f"the payload is {kind}: shape {dims} needs {expected} bytes, found {found}")
    # Copy so the array owns writable memory (np.frombuffer over bytes is read-only).
    return np.frombuffer(content, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array of 1 to 4 dimensions as an IDX file (gzip-compressed when ``path`` ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"write_idx({path}): the array has dtype {array.dtype}; convert it to uint8 first.")
    if not 1 <= array.ndim <= MAX_NDIM:
        raise DataError(f"write_idx({path}): the array has {array.ndim} dimensions; IDX files here need 1 to 4.")
    header = bytes([0, 0, UINT8_CODE, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    content = header + np.ascontiguousarray(array).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as stream:
            stream.write(content)
    else:
        path.write_bytes(content)
    return path
