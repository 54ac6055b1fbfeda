"""IDX reading and writing on tiny hand-made files, including every kind of damage the reader must catch."""

import gzip

import numpy as np
import pytest

from archlab.data.idx import read_idx, write_idx
from archlab.errors import DataError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 2, 3), (2, 1, 4, 4)])
def test_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = write_idx(tmp_path / f"a-ubyte{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result owns writable memory


def test_header_layout_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "labels", np.arange(3, dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2])


def _write_raw(tmp_path, content: bytes, name="bad-ubyte"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _expect_error(path, *fragments):
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_wrong_magic(tmp_path):
    _expect_error(_write_raw(tmp_path, bytes([1, 0, 8, 1, 0, 0, 0, 1, 5])), "two zero bytes")


def test_non_uint8_type_code(tmp_path):
    # 0x0D is float32 in the IDX format.
    _expect_error(_write_raw(tmp_path, bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0])), "type code 0x0d")


@pytest.mark.parametrize("ndim", [0, 5])
def test_bad_number_of_dimensions(tmp_path, ndim):
    _expect_error(_write_raw(tmp_path, bytes([0, 0, 8, ndim]) + bytes(4 * 5)), "dimensions")


def test_too_short_for_header(tmp_path):
    _expect_error(_write_raw(tmp_path, bytes([0, 0])), "fewer than")
    _expect_error(_write_raw(tmp_path, bytes([0, 0, 8, 2, 0, 0, 0, 1])), "header needs")


def test_truncated_payload_names_sizes_and_fix(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-4])
    message = _expect_error(path, "truncated", "needs 18 bytes, found 14", "archlab data fetch", str(tmp_path))
    assert f"delete {tmp_path}" in message


def test_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "x-ubyte", np.zeros((2, 2), np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    _expect_error(path, "trailing", "needs 4 bytes, found 5")


def test_truncated_gz_payload(tmp_path):
    content = bytes([0, 0, 8, 1, 0, 0, 0, 10]) + bytes(3)
    path = tmp_path / "short-ubyte.gz"
    path.write_bytes(gzip.compress(content))
    _expect_error(path, "truncated")


def test_damaged_gzip(tmp_path):
    _expect_error(_write_raw(tmp_path, b"not gzip at all", name="x-ubyte.gz"), "cannot be read")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope")


def test_write_rejects_other_dtypes_and_ranks(tmp_path):
    with pytest.raises(DataError, match="uint8"):
        write_idx(tmp_path / "f", np.zeros(3, np.float32))
    with pytest.raises(DataError, match="dimensions"):
        write_idx(tmp_path / "f", np.zeros((1,) * 5, np.uint8))
