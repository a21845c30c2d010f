"""Artifacts and snapshots as aligned, uncompressed .npz files, mapped on load (engine.recipes.array_file)."""

import hashlib
import mmap
import zipfile

import numpy as np
import pytest

from engine.recipes import array_file
from engine.recipes.array_file import ALIGN, Streamed, read_arrays, write_arrays

ARRAYS = {
    "__header__": np.array('{"recipe": "x"}'),
    "ids": np.array(["a", "bb", "ccc"]),
    "float32": np.arange(7, dtype=np.float32) / 3,
    "int32": np.arange(5, dtype=np.int32) - 2,
    "int64": np.array([2**40, -1], dtype=np.int64),
    "float64": np.array([np.nan, 1.5]),
    "flags": np.array([True, False, True]),
    "empty": np.empty(0, dtype=np.int32),
    "matrix": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
    "strided": np.arange(10)[::3],
}


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == np.ascontiguousarray(b).tobytes()


def mapped(array: np.ndarray) -> bool:
    """Whether the array's memory is a file mapping (not a copy read into memory)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, mmap.mmap) or (isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap))


def test_arrays_round_trip_and_numpy_reads_the_file(tmp_path):
    path = write_arrays(tmp_path / "a.npz", ARRAYS)
    loaded = read_arrays(path)
    assert list(loaded) == list(ARRAYS)
    assert all(same(loaded[k], np.asarray(v)) for k, v in ARRAYS.items())
    with np.load(path, allow_pickle=False) as npz:  # an ordinary .npz, CRCs included
        assert all(same(npz[k], np.asarray(v)) for k, v in ARRAYS.items())
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())


def test_array_data_lies_aligned_in_the_file_and_is_mapped(tmp_path):
    big = np.arange(100_000, dtype=np.float32)
    path = write_arrays(tmp_path / "a.npz", {"odd": np.array("x" * 13), "big": big, "ints": big.astype(np.int64)})
    data = path.read_bytes()
    for name, array in read_arrays(path).items():
        start = data.index(array.tobytes())
        assert start % ALIGN == 0, name
    assert all(mapped(array) for array in read_arrays(path).values())


def test_changing_a_loaded_array_leaves_the_file_alone(tmp_path):
    path = write_arrays(tmp_path / "a.npz", {"x": np.arange(1000, dtype=np.int32)})
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = read_arrays(path)["x"]
    loaded[:] = -1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert np.array_equal(read_arrays(path)["x"], np.arange(1000))


def test_rewriting_a_path_leaves_arrays_loaded_from_it_whole(tmp_path):
    path = write_arrays(tmp_path / "a.npz", {"x": np.arange(1000, dtype=np.int32)})
    loaded = read_arrays(path)["x"]
    write_arrays(path, {"x": np.zeros(10, dtype=np.int32)})  # a new file renamed over the old one
    assert np.array_equal(loaded, np.arange(1000))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_files_numpy_wrote_load_unaligned_or_compressed(tmp_path):
    np.savez(tmp_path / "plain.npz", **ARRAYS)
    np.savez_compressed(tmp_path / "small.npz", **ARRAYS)
    for name in ("plain.npz", "small.npz"):
        loaded = read_arrays(tmp_path / name)
        assert all(same(loaded[k], np.asarray(v)) for k, v in ARRAYS.items()), name


def test_object_arrays_are_refused_both_ways(tmp_path):
    with pytest.raises(ValueError):
        write_arrays(tmp_path / "a.npz", {"x": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "pickled.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        read_arrays(tmp_path / "pickled.npz")


def test_a_truncated_file_is_refused(tmp_path):
    path = write_arrays(tmp_path / "a.npz", {"x": np.arange(100_000, dtype=np.int64)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((ValueError, zipfile.BadZipFile)):
        read_arrays(path)


def test_a_member_shorter_than_its_header_says_is_refused(tmp_path):
    path = write_arrays(tmp_path / "a.npz", {"x": np.arange(1000, dtype=np.int64)})
    data = bytearray(path.read_bytes())
    header = data.index(b"'shape': (1000,)")
    data[header : header + 16] = b"'shape': (1001,)"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        read_arrays(path)


def streamed(values: np.ndarray, size: int) -> Streamed:
    """``values`` in blocks of ``size``, each laid out in one reused buffer (as a sims UPDATE's are)."""

    def blocks():
        buffer = np.empty(size, dtype=values.dtype)
        yield values[:0]  # an empty block is allowed
        for lo in range(0, len(values), size):
            part = buffer[: len(values[lo : lo + size])]
            part[:] = values[lo : lo + size]
            yield part

    return Streamed(values.dtype, len(values), blocks)


def test_streamed_members_are_filled_in_beside_each_other_and_read_like_any_other(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    big = rng.random(300_001).astype(np.float32)
    ints = rng.integers(-(2**40), 2**40, 70_003)
    arrays = {
        "__header__": np.array('{"recipe": "x"}'),
        "big": streamed(big, 65_536),
        "plain": np.arange(11, dtype=np.int16),
        "ints": streamed(ints, 1_000),
        "none": streamed(np.empty(0, dtype=np.int32), 8),
        "after": np.array(["a", "bb"]),
    }
    expected = {"big": big, "plain": np.arange(11, dtype=np.int16), "ints": ints, "after": np.array(["a", "bb"])}
    path = write_arrays(tmp_path / "a.npz", arrays)
    loaded = read_arrays(path)
    assert list(loaded) == list(arrays) and loaded["none"].shape == (0,)
    assert all(same(loaded[k], v) for k, v in expected.items())
    with np.load(path, allow_pickle=False) as npz:  # every member's CRC-32 checked
        assert all(same(npz[k], v) for k, v in expected.items())
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    for name in ("big", "ints"):
        data = path.read_bytes()
        assert data.index(loaded[name].tobytes()) % ALIGN == 0
    # Where the zip writer is not the one expected, each block goes through it: the same file.
    monkeypatch.setattr(array_file, "_raw_member", lambda member: False)
    again = write_arrays(tmp_path / "b.npz", arrays)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("length", [299_999, 300_002])
def test_a_streamed_member_of_the_wrong_length_leaves_no_file(tmp_path, length):
    values = np.arange(300_000, dtype=np.float64)
    wrong = Streamed(values.dtype, length, streamed(values, 4_096).blocks)
    with pytest.raises(ValueError):
        write_arrays(tmp_path / "a.npz", {"x": np.arange(3), "y": wrong, "z": streamed(values, 512)})
    assert not list(tmp_path.iterdir())
