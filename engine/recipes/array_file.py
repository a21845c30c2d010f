"""Named arrays in one ``.npz`` file, written and read without copies or checksums over the data.

The file is an ordinary uncompressed ``.npz`` (``np.load`` reads it, with or without this module),
written so that each array's bytes start at a multiple of 64 in the file: the ``.npy`` header of
each member is padded (with the spaces its format allows) up to that point. :func:`read_arrays`
then maps the file and hands out arrays that lie in the mapping (copy-on-write: a recipe that
changes a loaded array in place changes its own copy of those pages, never the file), so loading
a model costs a directory read, not a read of every byte into fresh memory plus a CRC-32 over it
(at a million events a sims model is about 110 MB; reading it that way took about half a second).

What it does not check is the per-member CRC-32 (``np.load`` does, when a member is read to its
end): a file is written once, to a temporary name renamed into place, and never rewritten, so a
reader sees a whole file or none. Structural damage (a member shorter than its header says, a
truncated file) is still refused. Files of other writers load too: members that are compressed,
or whose data does not lie aligned for their type (``np.savez`` writes them wherever they fall),
are read and copied the ordinary way.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Where each array's data starts, in the file (numpy aligns its headers to the same).
ALIGN = 64
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # the zip local file header, 30 bytes
_LOCAL_SIGNATURE = b"PK\x03\x04"
_NPY_PREFIX = 10  # magic (6), version (2), header length (2) of a version 1.0 .npy header
_DATA_DESCRIPTOR = 0x08  # a zip flag: sizes and CRC after the data (a writer that cannot seek back)
#: Streamed members filled in at once (at most one per core).
MAX_WRITERS = 4


@dataclass(frozen=True)
class Streamed:
    """A one-dimensional array written a block at a time, never held whole: ``blocks()`` yields
    its values in order (any number of blocks of any sizes, ``length`` values in all, each as
    ``dtype``; a block is written before the next is asked for, so a generator may lay every block
    out in the same buffer). ``blocks`` may be called in another thread, beside the other streamed
    members' (:func:`write_arrays`). A model that is mostly its previous version's arrays carried
    over (a sims UPDATE) writes its result this way: a whole new copy in memory, then another in the
    file, was most of the UPDATE's time (each megabyte of memory a process touches for the first
    time costs about as much as computing it)."""

    dtype: np.dtype
    length: int
    blocks: Callable[[], Iterable[np.ndarray]]


def write_arrays(path: str | Path, arrays: Mapping[str, np.ndarray | Streamed], *, sync: bool = False) -> Path:
    """Write ``arrays`` (no object arrays: nothing is pickled) as an uncompressed ``.npz`` at
    ``path``, through a temporary file renamed into place; ``sync``: flushed to disk first.
    A :class:`Streamed` member is written as the array its blocks make up.

    Every member's size is known before its data is written, so the file is laid out first (the
    headers written, each streamed member's data left as a hole of its size) and the streamed
    members are then filled in beside each other, one thread each, up to a thread per core (their
    blocks are made and their CRC-32 computed mostly without the interpreter lock): a sims UPDATE's
    four big members took one core about 0.15 s at a million events one after the other. Each
    member's CRC is written into its local header once known (the central directory is written
    last, with it)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open("wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                holes = []
                for name, value in arrays.items():
                    if isinstance(value, Streamed):
                        hole = _reserve_streamed(f, zf, name, value)
                        if hole is not None:
                            holes.append(hole)
                    else:
                        _write_member(f, zf, name, np.asanyarray(value))
                if holes:
                    _fill(f, holes)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _write_member(f, zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    if array.dtype.hasobject:
        raise ValueError(f"array {name!r} holds Python objects, which would need pickling")
    array = array if array.flags.c_contiguous else array.copy(order="C")
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    with zf.open(info, "w", force_zip64=True) as member:
        # The local header is written: the member's data starts here, and so does the .npy header.
        member.write(_npy_header(array, start=f.tell()))
        if array.size:
            member.write(array.reshape(-1).view(np.uint8))


@dataclass
class _Hole:
    """A streamed member's data, not yet written: ``size`` bytes from ``start`` in the file;
    ``crc``: the member's CRC-32 so far (over its ``.npy`` header)."""

    name: str
    info: zipfile.ZipInfo
    streamed: Streamed
    start: int
    size: int
    crc: int


def _reserve_streamed(f, zf: zipfile.ZipFile, name: str, streamed: Streamed) -> _Hole | None:
    """Write the member's headers and leave room for its data (the returned hole, filled by
    :func:`_fill`); where this Python's zip writer is not the one this expects, write the data
    through it instead (None)."""
    dtype = np.dtype(streamed.dtype)
    if dtype.hasobject:
        raise ValueError(f"array {name!r} holds Python objects, which would need pickling")
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    with zf.open(info, "w", force_zip64=True) as member:
        member.write(_npy_header(np.empty(0, dtype=dtype), start=f.tell(), shape=(streamed.length,)))
        if not (_raw_member(member) and member._fileobj is f and not info.flag_bits & _DATA_DESCRIPTOR):
            _write_blocks(member, name, streamed)
            return None
        start, size = f.tell(), streamed.length * dtype.itemsize
        f.seek(size, os.SEEK_CUR)
        member._file_size += size  # closing the member writes its local header with this size
        return _Hole(name, info, streamed, start, size, member._crc)


def _raw_blocks(name: str, streamed: Streamed) -> Iterator[np.ndarray]:
    """A streamed array's non-empty blocks as bytes, in order; an error once they hold more or
    fewer values than it says (the file is then left unrenamed: a partial write)."""
    dtype, written = np.dtype(streamed.dtype), 0
    for block in streamed.blocks():
        block = np.ascontiguousarray(block, dtype=dtype).reshape(-1)
        written += len(block)
        if written > streamed.length:
            break
        if len(block):
            yield block.view(np.uint8)
    if written != streamed.length:
        raise ValueError(f"array {name!r}: its blocks hold {written} values, not {streamed.length}")


def _write_blocks(member, name: str, streamed: Streamed) -> None:
    """The plain way: each block through the zip writer (which computes the CRC)."""
    for raw in _raw_blocks(name, streamed):
        member.write(raw)


def _fill(f, holes: list[_Hole]) -> None:
    """Write the holes' data, the largest first, each in one thread; then each member's local
    header again, with its CRC-32."""
    f.flush()
    fd = f.fileno()
    workers = max(1, min(len(holes), os.cpu_count() or 1, MAX_WRITERS))
    with ThreadPoolExecutor(workers, thread_name_prefix="streamed") as pool:
        filled = [(hole, pool.submit(_fill_hole, fd, hole)) for hole in sorted(holes, key=lambda h: -h.size)]
        crcs = [(hole, done.result()) for hole, done in filled]
    for hole, crc in crcs:
        before = len(hole.info.FileHeader(True))
        hole.info.CRC = crc
        header = hole.info.FileHeader(True)  # zip64, as the member was written (force_zip64)
        if len(header) != before:
            raise ValueError(f"array {hole.name!r}: its local header changed size")
        _write_at(fd, header, hole.info.header_offset)


def _fill_hole(fd: int, hole: _Hole) -> int:
    """Write a hole's blocks where they go; its member's CRC-32."""
    at, crc = hole.start, hole.crc
    for raw in _raw_blocks(hole.name, hole.streamed):
        crc = zlib.crc32(raw, crc)
        _write_at(fd, raw, at)
        at += len(raw)
    return crc


def _write_at(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _raw_member(member) -> bool:
    """Whether ``member`` (a stored member being written) is CPython's zip writer, whose data and
    CRC this module can then write itself: it keeps the running CRC and size in ``_crc`` and
    ``_file_size`` and writes through ``_fileobj`` (CPython 3.8 to 3.13 at least)."""
    return (
        getattr(member, "_compressor", True) is None
        and isinstance(getattr(member, "_crc", None), int)
        and isinstance(getattr(member, "_file_size", None), int)
        and hasattr(member, "_fileobj")
    )


def _npy_header(array: np.ndarray, *, start: int, shape: tuple[int, ...] | None = None) -> bytes:
    """A version 1.0 ``.npy`` header that ends (the array's data begins) at a multiple of
    :data:`ALIGN` in the file, for a member whose data starts at ``start`` (``shape``: the
    array's, where ``array`` only gives the type)."""
    shape = array.shape if shape is None else shape
    described = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": shape}
    text = repr(described).encode("latin1")
    end = start + _NPY_PREFIX + len(text) + 1  # + the closing newline
    text += b" " * (-end % ALIGN) + b"\n"
    if len(text) > 0xFFFF:
        raise ValueError("array header too long")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array in the ``.npz`` at ``path`` (names without ``.npy``), mapped where it can be.
    Raises ValueError on an object array (it would need unpickling) or a damaged file."""
    path = Path(path)
    with path.open("rb") as f:
        with zipfile.ZipFile(f) as zf:
            members = zf.infolist()
        size = os.fstat(f.fileno()).st_size
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else None
        arrays = {}
        for info in members:
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED or mapped is None:
                arrays[name] = _read_member(path, info)
                continue
            array = _mapped_member(mapped, info)
            arrays[name] = array if array is not None else _read_member(path, info)
    return arrays


def _mapped_member(mapped: mmap.mmap, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The member's array in ``mapped`` (None: its data is not aligned for its type)."""
    fields = _LOCAL_HEADER.unpack_from(mapped, info.header_offset)
    if fields[0] != _LOCAL_SIGNATURE:
        raise ValueError(f"damaged member {info.filename!r}")
    start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
    stop = start + info.file_size
    if stop > len(mapped):
        raise ValueError(f"member {info.filename!r} runs past the end of the file")
    head = io.BytesIO(mapped[start : min(stop, start + 0x10000 + _NPY_PREFIX + 2)])
    version = np.lib.format.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
    else:
        return None
    if dtype.hasobject:
        raise ValueError(f"member {info.filename!r} holds Python objects (loading them would need unpickling)")
    offset = start + head.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if offset + count * dtype.itemsize != stop:
        raise ValueError(f"member {info.filename!r} is not the size its header says")
    if count == 0:
        return np.empty(shape, dtype=dtype)
    if offset % max(dtype.alignment, 1):
        return None
    array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")


def _read_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return npz[info.filename.removesuffix(".npy")]
