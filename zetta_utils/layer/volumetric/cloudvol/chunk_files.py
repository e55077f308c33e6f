"""Local raw, unsharded scales read and written as chunk files, for :class:`.CVBackend`.

Such a scale holds one file per chunk, named ``x0-x1_y0-y1_z0-z1`` (clipped at the dataset end):
the chunk's XYZC array in Fortran order, little-endian, either plain or gzipped (``*.gz``, what
CloudVolume writes on local paths with compression on). CloudVolume spends about 1.5 ms of Python
per 1 MB chunk read and as much per chunk written around the same file access and the same
decompression (``bench/bench_matrix.py --kinds gzip``: 3.6 ms per read against 2.2 ms here, 2.1 ms
per write against 0.6 ms), more than the rest of a flow's per-chunk work, so the backend moves
these bytes itself:

* Reads take the plain file if there is one (its rows by byte range, as TensorStore's raw reads
  do), else the ``.gz`` one, decompressed whole by cloud-files' own ``decompress``. A chunk with
  no file at all is zeros (``fill_missing``; without it, CloudVolume raises its error); one
  compressed otherwise (``.br``, ``.zstd``, ...) is read by CloudVolume. An empty plain file reads
  as zeros, as in CloudVolume; a file of the wrong size is an error.
* Writes (always whole chunks: see ``PrecomputedBackend.write``) store each chunk as a plain file
  with exactly the bytes CloudVolume writes (``compress=False``), through a temporary file renamed
  into place (readers never see half a chunk), and delete a compressed copy of the same chunk if
  one exists (CloudVolume would leave it, and may read it instead of the new data).

Reading rows of a plain file and writing through a temporary file are :mod:`..raw_chunks`'s, as
for ``TSBackend``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from zetta_utils import write_behind

from .. import precomputed
from ..raw_chunks import (
    COMPRESSED_SUFFIXES,
    chunk_parts,
    raw_chunk_array,
    read_chunk_file,
    whole_chunks,
    write_chunk_file,
)

ChunkFallback = Callable[[tuple[int, ...], tuple[int, ...]], npt.NDArray[Any]]
"""Reads the chunk ``[start, stop)`` (XYZC) another way: for chunks with no plain or gzip file."""


class ChunkCache:
    """Decoded chunks (XYZC arrays, by file path) of at most ``limit`` bytes, least recently used
    dropped first: CloudVolume's ``lru_bytes`` for the chunks read here, with its semantics (never
    revalidated; the backend clears it on this process's writes to the volume)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.nbytes = 0
        self._chunks: OrderedDict[str, npt.NDArray[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> npt.NDArray[Any] | None:
        with self._lock:
            chunk = self._chunks.get(path)
            if chunk is not None:
                self._chunks.move_to_end(path)
            return chunk

    def put(self, path: str, chunk: npt.NDArray[Any]) -> None:
        if chunk.nbytes > self.limit:
            return
        with self._lock:
            old = self._chunks.pop(path, None)
            if old is not None:
                self.nbytes -= old.nbytes
            while self._chunks and self.nbytes + chunk.nbytes > self.limit:
                self.nbytes -= self._chunks.popitem(last=False)[1].nbytes
            self._chunks[path] = chunk
            self.nbytes += chunk.nbytes

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self.nbytes = 0


def read_chunks_into(
    directory: str,
    scale: Mapping[str, Any],
    data_type: str,
    channels: int,
    start: Sequence[int],
    stop: Sequence[int],
    out: npt.NDArray[Any],
    fill_missing: bool,
    fallback: ChunkFallback,
    cache: ChunkCache | None = None,
) -> None:
    """Fill ``out`` (XYZC, any strides) with ``[start, stop)`` (inside the bounds) of the local
    raw, unsharded ``scale`` in ``directory`` (the volume's folder). A chunk with no file at all
    is zeros when ``fill_missing``; ``fallback`` reads the others without a plain or gzip file.
    With ``cache``, whole chunks are read, kept there and taken from there."""
    folder = os.path.join(directory, scale["key"])
    stored = np.dtype(data_type).newbyteorder("<")
    for c in chunk_parts(scale, start, stop, out):
        target, shape = c.target, c.shape
        path = os.path.join(folder, precomputed.chunk_name(c.corner, c.end))
        part = (slice(*c.xs), slice(*c.ys), slice(*c.zs))
        whole = None if cache is None else cache.get(path)
        if whole is None:
            if cache is None and _read_plain(path, stored, channels, shape, part, target):
                continue
            whole = _read_whole(path, stored, channels, shape)
            if whole is not None and cache is not None:
                cache.put(path, whole)
        if whole is None:
            if fill_missing and not has_compressed_chunk(path):
                target[...] = 0
                continue
            whole = fallback(c.corner, c.end)
        np.copyto(target, whole[part])


def _read_plain(
    path: str,
    dtype: np.dtype[Any],
    channels: int,
    shape: tuple[int, int, int],
    part: tuple[slice, slice, slice],
    target: npt.NDArray[Any],
) -> bool:
    """``part`` of the plain chunk file ``path`` into ``target``; False if there is none. An
    empty file reads as zeros, as CloudVolume decodes it."""
    return read_chunk_file(
        path,
        dtype,
        channels,
        shape,
        (part[0].start, part[0].stop),
        (part[1].start, part[1].stop),
        (part[2].start, part[2].stop),
        target,
        empty_is_zeros=True,
    )


def _read_whole(
    path: str, dtype: np.dtype[Any], channels: int, shape: tuple[int, int, int]
) -> npt.NDArray[Any] | None:
    """The whole chunk (XYZC) from its plain or gzipped file; None if there is neither."""
    whole = np.empty((*shape, channels), dtype=dtype, order="F")
    everything = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    if _read_plain(path, dtype, channels, shape, everything, whole):
        return whole
    return _read_gzip(path, dtype, channels, shape)


def _read_gzip(
    path: str, dtype: np.dtype[Any], channels: int, shape: tuple[int, int, int]
) -> npt.NDArray[Any] | None:
    """The whole chunk (XYZC) from the gzipped chunk file ``path.gz``; None if there is none."""
    from cloudfiles.compression import decompress

    try:
        with open(path + ".gz", "rb") as f:
            content = f.read()
    except FileNotFoundError:
        return None
    raw = decompress(content, "gzip", filename=path + ".gz")
    expected = shape[0] * shape[1] * shape[2] * channels * dtype.itemsize
    if len(raw) == 0:
        return np.zeros((*shape, channels), dtype=dtype, order="F")
    if len(raw) != expected:
        raise ValueError(
            f"chunk file {path}.gz holds {len(raw)} bytes once decompressed; a chunk of "
            f"{shape[0]} x {shape[1]} x {shape[2]} voxels and {channels} channel(s) of "
            f"{dtype.name} holds {expected}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape((*shape, channels), order="F")


def has_compressed_chunk(path: str) -> bool:
    """Whether a compressed file of the chunk ``path`` (without suffix) exists."""
    return any(os.path.exists(path + suffix) for suffix in COMPRESSED_SUFFIXES)


def write_chunks(
    directory: str,
    scale: Mapping[str, Any],
    start: Sequence[int],
    stop: Sequence[int],
    data: npt.NDArray[Any],
    sync: bool = False,
    key: str | None = None,
) -> None:
    """Store ``data`` (XYZC, whole chunks of the local raw, unsharded ``scale``) as plain chunk
    files in ``directory`` (the volume's folder); compressed copies of those chunks are deleted.
    With ``key`` (the volume's path), each chunk is written behind in a task's scope
    (:func:`zetta_utils.write_behind.defer`, on a copy of its data)."""
    folder = os.path.join(directory, scale["key"])
    scope = write_behind.current_scope() if key is not None else None
    deferring = scope is not None and scope.deferring
    for name, part in whole_chunks(scale, start, stop, data):
        # a raw chunk is its XYZC array in Fortran order: its transpose in C order
        chunk = raw_chunk_array(part)
        if not deferring:
            _write_chunk(folder, name, chunk, sync)
            continue
        assert key is not None
        if np.may_share_memory(chunk, data):  # the deferred write must own its data
            chunk = chunk.copy()
        write_behind.defer(
            key, functools.partial(_write_chunk, folder, name, chunk, sync), chunk.nbytes
        )


def _write_chunk(folder: str, name: str, chunk: npt.NDArray[Any], sync: bool) -> None:
    write_chunk_file(folder, name, chunk, sync)
    for suffix in COMPRESSED_SUFFIXES:
        try:
            os.unlink(os.path.join(folder, name + suffix))
        except FileNotFoundError:
            pass
