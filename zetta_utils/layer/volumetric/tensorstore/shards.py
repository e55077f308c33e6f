"""Where a chunk of a local sharded raw scale lies in its shard file, for reads by byte range.

A ``neuroglancer_uint64_sharded_v1`` scale stores its chunks in shard files: a chunk's id is the
compressed Morton code of its position in the chunk grid; with the ``identity`` hash, the id
shifted right by ``preshift_bits`` picks a minishard (its lowest ``minishard_bits``) and a shard
(the next ``shard_bits``, the file ``<shard in hex>.shard``). A shard file begins with its index,
one ``(start, end)`` pair of little-endian uint64 per minishard: the byte range of that
minishard's index (raw or gzip), which lists its chunks' ids, offsets and sizes as three
delta-coded uint64 arrays. Offsets count from the end of the shard index. With the ``raw`` data
encoding a chunk is stored as an unsharded raw chunk file would be: its XYZC array in Fortran
order, so the rows a region covers are byte ranges of the shard file, as they are of a chunk file.

:class:`ShardLayout` locates chunks (and remembers where); :func:`shard_index` reads a shard
file's index, and :meth:`ShardIndex.chunk_range` the minishard indexes it needs; they are kept
per process and file, checked against the open file's ``fstat`` (device, inode, size,
modification and change times) on every :func:`shard_index` call, as TensorStore's revalidated
cache checks a local file's generation: a shard rewritten since is read again.

Other hashes (``murmurhash3_x86_128``) and gzip-encoded chunk data are left to TensorStore.
"""

from __future__ import annotations

import math
import os
import threading
import zlib
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

SHARDING_TYPE = "neuroglancer_uint64_sharded_v1"
_INDEX_ENCODINGS = ("raw", "gzip")


@attrs.frozen
class ShardLayout:
    """How one sharded scale maps chunk positions to shard files and minishards."""

    preshift_bits: int
    minishard_bits: int
    shard_bits: int
    gzip_minishard_index: bool
    grid_bits: tuple[int, int, int]
    """Bits of each axis of the chunk grid in the compressed Morton code."""
    _located: dict[tuple[int, int, int], tuple[str, int, int]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False, hash=False
    )
    """:meth:`locate`'s answers so far (a flow reads each chunk several times: padded regions,
    a chunk read by parts)."""

    @classmethod
    def of(cls, scale: Mapping[str, Any]) -> ShardLayout | None:
        """The layout of ``scale``, or None where its chunks cannot be read by byte range here
        (not sharded, not raw, another hash, compressed chunk data)."""
        sharding = scale.get("sharding")
        if not isinstance(sharding, Mapping) or scale.get("encoding") != "raw":
            return None
        if (
            sharding.get("@type") != SHARDING_TYPE
            or sharding.get("hash") != "identity"
            or sharding.get("data_encoding", "raw") != "raw"
            or sharding.get("minishard_index_encoding", "raw") not in _INDEX_ENCODINGS
        ):
            return None
        size = [int(n) for n in scale["size"]]
        chunk = [int(n) for n in scale["chunk_sizes"][0]]
        grid = [math.ceil(s / c) for s, c in zip(size, chunk, strict=True)]
        bits = tuple(max(0, (g - 1).bit_length()) for g in grid)
        return cls(
            preshift_bits=int(sharding.get("preshift_bits", 0)),
            minishard_bits=int(sharding.get("minishard_bits", 0)),
            shard_bits=int(sharding.get("shard_bits", 0)),
            gzip_minishard_index=sharding.get("minishard_index_encoding", "raw") == "gzip",
            grid_bits=(bits[0], bits[1], bits[2]),
        )

    @property
    def index_bytes(self) -> int:
        """Size of a shard file's index: where the minishard indexes' offsets count from."""
        return 16 << self.minishard_bits

    def chunk_id(self, grid: tuple[int, int, int]) -> int:
        """The compressed Morton code of the chunk at ``grid`` (its position in chunks)."""
        code = 0
        j = 0
        for i in range(max(self.grid_bits)):
            for d in range(3):
                if i < self.grid_bits[d]:
                    code |= ((grid[d] >> i) & 1) << j
                    j += 1
        return code

    def locate(self, grid: tuple[int, int, int]) -> tuple[str, int, int]:
        """The shard file name, minishard and chunk id of the chunk at ``grid``."""
        found = self._located.get(grid)
        if found is not None:
            return found
        found = self._locate(grid)
        if len(self._located) >= _MAX_LOCATED:
            self._located.clear()
        self._located[grid] = found
        return found

    def _locate(self, grid: tuple[int, int, int]) -> tuple[str, int, int]:
        chunk_id = self.chunk_id(grid)
        hashed = chunk_id >> self.preshift_bits
        minishard = hashed & ((1 << self.minishard_bits) - 1)
        shard = (hashed >> self.minishard_bits) & ((1 << self.shard_bits) - 1)
        digits = (self.shard_bits + 3) // 4
        return f"{shard:0{digits}x}.shard", minishard, chunk_id


_MAX_LOCATED = 1 << 16
"""Chunk positions a layout remembers where they lie; all are dropped when more are needed."""

Stamp = tuple[int, int, int, int, int]
"""A shard file's device, inode, size, modification and change times (ns): its version."""


class ShardIndex:
    """A shard file's index and the minishard indexes decoded so far (chunk id -> absolute byte
    offset and size of the chunk in the file), for the file as it was when ``stamp`` was taken."""

    def __init__(self, stamp: Stamp, ranges: np.ndarray[Any, Any]):
        self.stamp = stamp
        self.ranges = ranges
        self.minishards: dict[int, dict[int, tuple[int, int]]] = {}

    def chunk_range(
        self, fd: int, path: str, layout: ShardLayout, minishard: int, chunk_id: int
    ) -> tuple[int, int] | None:
        """The absolute byte offset and size of chunk ``chunk_id`` in the open shard file ``fd``
        (``path``, the file this index was read from: see :func:`shard_index`), or None when the
        shard holds no such chunk."""
        chunks = self.minishards.get(minishard)
        if chunks is None:
            chunks = _read_minishard(fd, path, layout, self, minishard)
            with _LOCK:
                self.minishards[minishard] = chunks
        return chunks.get(chunk_id)


_MAX_SHARDS = 4096
"""Shard indexes kept per process; all are dropped when more are needed."""

_LOCK = threading.Lock()
_INDEXES: dict[str, ShardIndex] = {}


def _after_fork() -> None:
    # a lock held by another thread at the fork would stay held in the child
    global _LOCK
    _LOCK = threading.Lock()
    _INDEXES.clear()


os.register_at_fork(after_in_child=_after_fork)


def clear() -> None:
    """Forget every shard index this process keeps."""
    with _LOCK:
        _INDEXES.clear()


def chunk_range(
    fd: int, path: str, layout: ShardLayout, minishard: int, chunk_id: int
) -> tuple[int, int] | None:
    """The absolute byte offset and size of chunk ``chunk_id`` in the open shard file ``fd``
    (``path``), or None when the shard holds no such chunk."""
    return shard_index(fd, path, layout).chunk_range(fd, path, layout, minishard, chunk_id)


def shard_index(fd: int, path: str, layout: ShardLayout) -> ShardIndex:
    """The index of the open shard file ``fd`` (``path``): kept from an earlier read while the
    file's ``fstat`` is what it was then, else read again (one ``fstat`` a call: the chunks of a
    region in one shard file ask it once)."""
    st = os.fstat(fd)
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _LOCK:
        known = _INDEXES.get(path)
    if known is not None and known.stamp == stamp:
        return known
    raw = _pread(fd, path, layout.index_bytes, 0)
    ranges = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
    index = ShardIndex(stamp, ranges)
    with _LOCK:
        if len(_INDEXES) >= _MAX_SHARDS:
            _INDEXES.clear()
        _INDEXES[path] = index
    return index


def _read_minishard(
    fd: int, path: str, layout: ShardLayout, index: ShardIndex, minishard: int
) -> dict[int, tuple[int, int]]:
    start, end = (int(v) for v in index.ranges[minishard])
    if end <= start:
        return {}
    data = _pread(fd, path, end - start, layout.index_bytes + start)
    if layout.gzip_minishard_index:
        try:
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)  # gzip, not zlib
        except zlib.error as e:
            raise ValueError(f"shard file {path}: minishard {minishard}'s index: {e}") from e
    if len(data) % 24:
        raise ValueError(
            f"shard file {path}: minishard {minishard}'s index holds {len(data)} bytes, not a "
            "multiple of 24 (three uint64 per chunk)"
        )
    # uint64 throughout, as the format's ids and offsets are (sums wrap as they do there)
    table = np.frombuffer(data, dtype="<u8").reshape(3, -1).astype(np.uint64)
    ids = np.cumsum(table[0], dtype=np.uint64)
    sizes = table[2]
    # each offset is the delta plus the end of the previous chunk
    ends = np.concatenate((np.zeros(1, dtype=np.uint64), np.cumsum(sizes, dtype=np.uint64)[:-1]))
    offsets = np.cumsum(table[1], dtype=np.uint64) + ends + np.uint64(layout.index_bytes)
    rows = zip(ids.tolist(), offsets.tolist(), sizes.tolist(), strict=True)
    return {int(i): (int(o), int(s)) for i, o, s in rows}


def _pread(fd: int, path: str, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    while len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            raise ValueError(
                f"shard file {path}: {size} bytes expected at byte {offset}, the file ends "
                f"after {len(data)}"
            )
        data += more
    return data
