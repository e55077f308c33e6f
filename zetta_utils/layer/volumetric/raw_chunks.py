"""Local raw chunk files of precomputed volumes, moved without a storage library.

Both precomputed backends move the chunks of local raw scales themselves where a benchmark showed
their library to be the bottleneck (``TSBackend``: plain chunk files and sharded raw scales;
``CVBackend``: plain and gzipped chunk files); these are the primitives they share.

A raw chunk is its XYZC array in Fortran order, little-endian, of the chunk's shape clipped at
the dataset end: the rows (x runs) of one y and z are contiguous, so the rows of a region inside
a chunk are a few byte ranges of its file (or of its shard file). An unsharded scale holds one
file per chunk, named by :func:`~.precomputed.chunk_name` in the scale's folder.

The environment switches:

* ``ZETTA_RAW_CHUNK_READS=0`` (or ``false``/``no``/``off``): reads go through the libraries.
* ``ZETTA_RAW_CHUNK_WRITES=0``: writes go through the libraries.
* ``ZETTA_FILE_IO_SYNC=1`` (or ``true``/``yes``/``on``): chunks written are fsynced (the default
  of ``TSBackend(file_io_sync=None)``; always read by ``CVBackend``).
* ``ZETTA_RAW_CHUNK_CACHE=0``: :func:`chunk_cache` keeps nothing (read when this module is
  imported).

Padded reads of neighbouring regions (a chunkwise flow's prefetches) share storage chunks: a flow
reading 1280-voxel regions for 1024-voxel chunks over 1024-voxel storage chunks reads each storage
chunk ~3.8 times, and a partial read of a chunk still reads its rows whole (x ranges are cut out
of a row buffer). Inside :func:`chunk_cache` (a scope: one execution of a flow that only reads the
volume, as :mod:`.read_cache`'s scoped readers), the reads of this thread keep the *whole* chunks
they touch in a per-process cache of bounded size (bytes mapped), least recently used dropped
first, and copy their parts out of it. A chunk is kept as a read-only ``mmap`` of its bytes in the
file: a copy out of it reads the kernel's page cache directly, where a ``pread`` copies into a
buffer first (a cache of copies of the chunks measured no faster than the reads it saved: the
copies come from memory either way). A cached chunk is served only while its file's stamp (device,
inode, size, modification and change times, from ``fstat``/``stat``) is what it was when it was
mapped, so a chunk file replaced since (a new file renamed into place, as TensorStore and this
module write) is read again; writes of this process to a volume drop its cached chunks
(:func:`.precomputed.notify`), and a new scope drops the previous one's. Shard files: a chunk is
keyed by the file and its byte offset, under the shard file's stamp. As with the scoped readers,
nothing else may write the volume meanwhile: a file another process truncates in place
(CloudVolume rewrites local files in place) while a part is copied out of its map ends this
process with ``SIGBUS``. The chunks of the last scope stay mapped until a new scope or
:func:`clear_chunk_cache` (the space of a file deleted meanwhile is freed then).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import mmap
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import precomputed

Span = tuple[int, int, int, int]
"""Along one axis: a chunk's start, its stop clipped at the dataset end, the first voxel read
and the voxel after the last one read."""

COMPRESSED_SUFFIXES = (".gz", ".br", ".zstd", ".xz", ".bz2")
"""The compressed chunk files cloud-files (CloudVolume) writes and looks for after the plain one,
in its order."""

_OFF = ("0", "false", "no", "off")


def raw_chunk_reads_enabled() -> bool:
    """False when ``ZETTA_RAW_CHUNK_READS`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get("ZETTA_RAW_CHUNK_READS", "").strip().lower() not in _OFF


def raw_chunk_writes_enabled() -> bool:
    """False when ``ZETTA_RAW_CHUNK_WRITES`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get("ZETTA_RAW_CHUNK_WRITES", "").strip().lower() not in _OFF


def raw_chunk_cache_enabled() -> bool:
    """False when ``ZETTA_RAW_CHUNK_CACHE`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get("ZETTA_RAW_CHUNK_CACHE", "").strip().lower() not in _OFF


def file_io_sync_default() -> bool:
    """``ZETTA_FILE_IO_SYNC`` from the environment (``1``/``true``/``yes``), else False."""
    return os.environ.get("ZETTA_FILE_IO_SYNC", "").strip().lower() in ("1", "true", "yes", "on")


def chunk_spans(
    scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
) -> list[tuple[Span, Span, Span]]:
    """The chunks of ``scale`` under ``[start, stop)`` (inside the bounds), x fastest: per axis
    (x, y, z), the chunk's :data:`Span`."""
    lo = [int(v) for v in scale["voxel_offset"]]
    hi = [o + int(n) for o, n in zip(lo, scale["size"], strict=True)]
    chunk = [int(n) for n in scale["chunk_sizes"][0]]
    spans = []
    for d in range(3):
        first = lo[d] + (start[d] - lo[d]) // chunk[d] * chunk[d]
        spans.append(
            [
                (g, min(g + chunk[d], hi[d]), max(g, start[d]), min(g + chunk[d], stop[d]))
                for g in range(first, stop[d], chunk[d])
            ]
        )
    return [(x, y, z) for z in spans[2] for y in spans[1] for x in spans[0]]


class ChunkPart(NamedTuple):
    """What a read of ``[start, stop)`` takes from one chunk: the chunk's corner and its end
    (clipped by the bounds), the part inside the chunk per axis (chunk coordinates), and the view
    of the output buffer it goes to."""

    corner: tuple[int, int, int]
    end: tuple[int, int, int]
    xs: tuple[int, int]
    ys: tuple[int, int]
    zs: tuple[int, int]
    target: npt.NDArray[Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (
            self.end[0] - self.corner[0],
            self.end[1] - self.corner[1],
            self.end[2] - self.corner[2],
        )


def chunk_parts(
    scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int], out: npt.NDArray[Any]
) -> Iterator[ChunkPart]:
    """:func:`chunk_spans` of ``[start, stop)`` with the view of ``out`` (XYZC of the region)
    each chunk's part fills."""
    for (gx, ex, xa, xb), (gy, ey, ya, yb), (gz, ez, za, zb) in chunk_spans(scale, start, stop):
        yield ChunkPart(
            (gx, gy, gz),
            (ex, ey, ez),
            (xa - gx, xb - gx),
            (ya - gy, yb - gy),
            (za - gz, zb - gz),
            out[
                xa - start[0] : xb - start[0],
                ya - start[1] : yb - start[1],
                za - start[2] : zb - start[2],
            ],
        )


_HANDING_OVER = threading.local()


@contextlib.contextmanager
def handing_over() -> Iterator[None]:
    """Writes made by this thread inside hand their data over: the caller promises neither to
    change nor to reuse the arrays it writes (e.g. a reduction's output, dropped once written),
    so a write finishing behind (write-behind) may keep a chunk that is one block of the data as
    it is, instead of a copy of it."""
    depth = getattr(_HANDING_OVER, "depth", 0)
    _HANDING_OVER.depth = depth + 1
    try:
        yield
    finally:
        _HANDING_OVER.depth = depth


def handed_over() -> bool:
    """Whether this thread's writes hand their data over (see :func:`handing_over`)."""
    return getattr(_HANDING_OVER, "depth", 0) > 0


def whole_chunks(
    scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int], data: npt.NDArray[Any]
) -> Iterator[tuple[str, npt.NDArray[Any]]]:
    """The file name and the part of ``data`` (XYZC, little-endian, covering ``[start, stop)``:
    whole chunks of ``scale``, clipped at the dataset end) of each chunk, x fastest."""
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    cx, cy, cz = (int(n) for n in scale["chunk_sizes"][0])
    x0, y0, z0 = start
    x1, y1, z1 = stop
    for z in range(z0, z1, cz):
        ze = min(z + cz, z1)
        for y in range(y0, y1, cy):
            ye = min(y + cy, y1)
            for x in range(x0, x1, cx):
                xe = min(x + cx, x1)
                part = data[x - x0 : xe - x0, y - y0 : ye - y0, z - z0 : ze - z0]
                yield precomputed.chunk_name((x, y, z), (xe, ye, ze)), part


def raw_chunk_array(part: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The bytes of the raw chunk file of ``part`` (a chunk's XYZC array): its transpose in C
    order, ``part.T`` itself where it already is (no copy), else a new array. Data laid out
    otherwise is copied by the tiled copy of ``_chunk_copy.c`` where it is built (same bytes as
    NumPy's). It pays where the data must be transposed, an operation's output (a torch tensor:
    z, then y fastest): a 1 MB uint8 chunk of a 2048-wide tensor 2.4-2.7 ms with NumPy, 0.4-0.5
    ms tiled; of a 1280-wide one 0.6 and 0.5 ms (its rows fall into more cache sets). Data that
    is x-fastest already but not one contiguous block (a chunk of a wider x-fast buffer) costs a
    row-by-row copy either way."""
    source = part.T
    if source.flags.c_contiguous:
        return source
    out = np.empty(source.shape, dtype=source.dtype)
    if _CHUNK_COPY is not None and source.ndim <= 4:
        _CHUNK_COPY.copy(out, source)
    else:
        np.copyto(out, source)
    return out


def _load_chunk_copy() -> Any:
    try:
        # (the module itself, not ``from . import``: that names the package, which imports this
        # module)
        import zetta_utils.layer.volumetric._chunk_copy as chunk_copy  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # not built (no C compiler at install): NumPy copies
        return None
    return chunk_copy


_CHUNK_COPY = _load_chunk_copy()
"""The compiled tiled copy (None: not built; tests set it to None to check the NumPy path)."""


_TMP_TOKEN = secrets.token_hex(4)
"""In temporary file names with the process and thread: writers on other machines sharing a
file system may have the same process and thread ids."""


def write_chunk_file(directory: str, name: str, data: npt.NDArray[Any], sync: bool) -> None:
    """Store ``data`` (C-contiguous) as the file ``name`` in ``directory`` (created if need be),
    so that readers never see half a file and a writer killed midway leaves nothing behind.

    The bytes go to an unnamed file in ``directory`` (``O_TMPFILE``: the kernel frees it if the
    writer dies before it is complete), which then gets a hidden temporary name (one per writer:
    machine, process and thread) and is renamed into place. Where the file system has no unnamed
    files, the bytes go to the hidden temporary file itself. With ``sync``, the file and the
    directory are fsynced."""
    tmp = os.path.join(directory, f".{name}.{_TMP_TOKEN}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = _open_unnamed(directory)
    if fd is None or not _named_after_writing(fd, tmp, data, sync):
        _write_named(tmp, data, sync)
    try:
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        os.unlink(tmp)  # (a retry of this writer takes the same name)
        raise
    if sync:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_UNNAMED_FILES = [hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")]
"""Whether unnamed files (``O_TMPFILE``, named later through ``/proc/self/fd``) are used: off for
the rest of the process once a file system refused them."""


def _open_unnamed(directory: str) -> int | None:
    """A descriptor of a new unnamed file in ``directory`` (created if need be); None where
    unnamed files are not available."""
    if not _UNNAMED_FILES[0]:
        return None
    flags = os.O_WRONLY | os.O_TMPFILE  # type: ignore[attr-defined,unused-ignore]
    try:
        try:
            return os.open(directory, flags, 0o644)
        except FileNotFoundError:  # the scale's first chunk
            os.makedirs(directory, exist_ok=True)
            return os.open(directory, flags, 0o644)
    except OSError as e:
        # EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP/EINVAL: a file system without it
        if e.errno in (errno.EISDIR, errno.EOPNOTSUPP, errno.EINVAL):
            _UNNAMED_FILES[0] = False
            return None
        raise


def _named_after_writing(fd: int, tmp: str, data: npt.NDArray[Any], sync: bool) -> bool:
    """Write ``data`` to the unnamed file ``fd`` and name it ``tmp``; False (unnamed files off
    from now on) where it cannot be named."""
    try:
        _write_all(fd, data, sync)
        # (a directory descriptor makes os.link call linkat, which follows the /proc link)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=fd, follow_symlinks=True)
        except FileExistsError:  # left by a writer of this name that died between two steps
            os.unlink(tmp)
            os.link(f"/proc/self/fd/{fd}", tmp, src_dir_fd=fd, follow_symlinks=True)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EOPNOTSUPP):
            raise
        _UNNAMED_FILES[0] = False
        return False
    finally:
        os.close(fd)
    return True


def _write_named(tmp: str, data: npt.NDArray[Any], sync: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:  # the scale's first chunk
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        _write_all(fd, data, sync)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)


def _write_all(fd: int, data: npt.NDArray[Any], sync: bool) -> None:
    view = data.data.cast("B")
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])
    if sync:
        os.fsync(fd)


def read_chunk_file(
    path: str,
    dtype: np.dtype[Any],
    channels: int,
    shape: tuple[int, int, int],
    xs: tuple[int, int],
    ys: tuple[int, int],
    zs: tuple[int, int],
    target: npt.NDArray[Any],
    empty_is_zeros: bool = False,
) -> bool:
    """Copy the part ``xs`` x ``ys`` x ``zs`` (chunk coordinates) of the raw chunk file ``path``,
    whose array is ``shape`` x ``channels`` of ``dtype``, into ``target`` (XYZC); False (and
    ``target`` untouched) when there is no such file. A file of another size is an error, but
    with ``empty_is_zeros`` an empty one reads as zeros (as CloudVolume decodes it)."""
    if _caching():
        # a cached chunk is found by the file's stamp without opening the file
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        cached = _CACHE.get(path, 0, _stamp(st), dtype, channels, shape)
        if cached is not None:
            _copy_from_chunk(cached, xs, ys, zs, target)
            return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        st = os.fstat(fd)
        size = st.st_size
        if size == 0 and empty_is_zeros:
            target[...] = 0
            return True
        nx, ny, nz = shape
        expected = nx * ny * nz * channels * dtype.itemsize
        if size != expected:
            raise ValueError(
                f"raw chunk file {path} holds {size} bytes; a chunk of {nx} x {ny} x {nz} voxels "
                f"and {channels} channel(s) of {dtype.name} holds {expected}"
            )
        copy_raw_rows(fd, path, 0, dtype, channels, shape, xs, ys, zs, target, _stamp(st))
    finally:
        os.close(fd)
    return True


def copy_raw_rows(
    fd: int,
    path: str,
    base: int,
    dtype: np.dtype[Any],
    channels: int,
    shape: tuple[int, int, int],
    xs: tuple[int, int],
    ys: tuple[int, int],
    zs: tuple[int, int],
    target: npt.NDArray[Any],
    stamp: Stamp | None = None,
) -> None:
    """Copy the part ``xs`` x ``ys`` x ``zs`` of the raw chunk of ``shape`` x ``channels`` stored
    from byte ``base`` of the open file ``fd`` (``path``) into ``target`` (XYZC): the rows ``ys``
    of each z plane are one byte range, and so are the planes ``zs`` when the rows are all of
    them. Inside :func:`chunk_cache`, from the whole chunk, cached (``stamp``: the file's, when the
    caller has it)."""
    if _caching():
        chunk = _CACHE.chunk(fd, path, base, dtype, channels, shape, stamp)
        if chunk is not None:
            _copy_from_chunk(chunk, xs, ys, zs, target)
            return
    nx, ny, nz = shape
    (xa, xb), (ya, yb), (za, zb) = xs, ys, zs
    whole_planes = ya == 0 and yb == ny
    runs = [(za, zb)] if whole_planes else [(z, z + 1) for z in range(za, zb)]
    for c in range(channels):
        for z0, z1 in runs:
            offset = base + ((c * nz + z0) * ny + ya) * nx * dtype.itemsize
            part = target[:, :, z0 - za : z1 - za, c]
            direct = part.transpose(2, 1, 0)
            if xa == 0 and xb == nx and direct.flags.c_contiguous and direct.dtype == dtype:
                # the rows land where they belong (x fastest, whole rows): read straight there
                _pread_exactly(fd, path, direct, offset)
                continue
            buffer = np.empty((z1 - z0, yb - ya, nx), dtype=dtype)
            _pread_exactly(fd, path, buffer, offset)
            np.copyto(part, buffer[:, :, xa:xb].transpose(2, 1, 0))


def _pread_exactly(fd: int, path: str, buffer: npt.NDArray[Any], offset: int) -> None:
    view = buffer.data.cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError(f"raw chunk file {path}: short read at byte {offset + done}")
        done += n


# --- the cache of whole chunks (see the module docstring) ---------------------------------------

Stamp = tuple[int, int, int, int, int]
"""A file's device, inode, size, modification and change times (ns)."""


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ChunkCacheStats(NamedTuple):
    """What the chunk cache of this process holds and did since it was last cleared."""

    chunks: int
    nbytes: int
    """Bytes of files mapped."""
    limit: int
    scope: str | None
    hits: int
    misses: int


class _ChunkCache:
    """Chunks mapped from their files, by file and byte offset, each with its file's stamp, least
    recently used first; at most ``limit`` bytes mapped (the largest asked for in the current
    scope). A chunk dropped is unmapped once no copy out of it is running (the last reference
    to its map goes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (path, offset) -> the file's stamp, the chunk (a view of its map), bytes mapped
        self.entries: collections.OrderedDict[
            tuple[str, int], tuple[Stamp, npt.NDArray[Any], int]
        ] = collections.OrderedDict()
        self.nbytes = 0
        self.limit = 0
        self.scope: str | None = None
        # chunks per folder (a scale's, or one holding shard files): what a write to a volume
        # drops
        self.folders: collections.Counter[str] = collections.Counter()
        self.hits = 0
        self.misses = 0

    def enter(self, scope: str, max_bytes: int) -> None:
        with self.lock:
            if scope != self.scope:
                self._clear()
                self.scope = scope
            self.limit = max(self.limit, max_bytes)

    def clear(self) -> None:
        with self.lock:
            self._clear()
            self.scope = None
            self.hits = self.misses = 0

    def _clear(self) -> None:
        self.entries.clear()
        self.folders.clear()
        self.nbytes = 0
        self.limit = 0

    def get(
        self,
        path: str,
        base: int,
        stamp: Stamp,
        dtype: np.dtype[Any],
        channels: int,
        shape: tuple[int, int, int],
    ) -> npt.NDArray[Any] | None:
        """The cached chunk, if it was mapped from the file as it is now (``stamp``)."""
        key = (path, base)
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            known, chunk, _mapped = entry
            if (
                known != stamp
                or chunk.dtype != dtype
                or chunk.shape != (channels, shape[2], shape[1], shape[0])
            ):
                self._remove(key)
                return None
            self.entries.move_to_end(key)
            self.hits += 1
            return chunk

    def chunk(
        self,
        fd: int,
        path: str,
        base: int,
        dtype: np.dtype[Any],
        channels: int,
        shape: tuple[int, int, int],
        stamp: Stamp | None,
    ) -> npt.NDArray[Any] | None:
        """The chunk stored from byte ``base`` of the open file ``fd`` (``path``, whose size the
        caller checked) as an array ``(channels, z, y, x)``: cached, or mapped and cached; None
        where it is larger than the cache or cannot be mapped (the caller reads its part)."""
        if stamp is None:
            stamp = _stamp(os.fstat(fd))
        cached = self.get(path, base, stamp, dtype, channels, shape)
        if cached is not None:
            return cached
        nbytes = math.prod(shape) * channels * dtype.itemsize
        if nbytes > self.limit or nbytes == 0:
            return None
        start = base - base % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(fd, base - start + nbytes, prot=mmap.PROT_READ, offset=start)
        except (OSError, ValueError):  # a file changed meanwhile, a file system without maps
            return None
        chunk = np.frombuffer(
            mapped, dtype=dtype, count=nbytes // dtype.itemsize, offset=base - start
        )
        chunk = chunk.reshape(channels, shape[2], shape[1], shape[0])
        key = (path, base)
        with self.lock:
            self.misses += 1
            if key in self.entries:  # mapped by another thread meanwhile
                self._remove(key)
            self.entries[key] = (stamp, chunk, len(mapped))
            self.nbytes += len(mapped)
            self.folders[os.path.dirname(path)] += 1
            while self.nbytes > self.limit and self.entries:
                self._remove(next(iter(self.entries)))
        return chunk

    def _remove(self, key: tuple[str, int]) -> None:
        _known, _chunk, mapped = self.entries.pop(key)
        self.nbytes -= mapped
        folder = os.path.dirname(key[0])
        self.folders[folder] -= 1
        if self.folders[folder] <= 0:
            del self.folders[folder]

    def drop_under(self, directory: str) -> None:
        """Drop the chunks of files under ``directory``."""
        prefix = directory.rstrip("/") + "/"
        with self.lock:
            folders = {f for f in self.folders if (f + "/").startswith(prefix)}
            if not folders:
                return
            for key in [k for k in self.entries if os.path.dirname(k[0]) in folders]:
                self._remove(key)

    def stats(self) -> ChunkCacheStats:
        with self.lock:
            return ChunkCacheStats(
                len(self.entries), self.nbytes, self.limit, self.scope, self.hits, self.misses
            )


_CACHE = _ChunkCache()

_CHUNK_CACHE = [raw_chunk_cache_enabled()]
"""Whether :func:`chunk_cache` caches (``ZETTA_RAW_CHUNK_CACHE``; benchmarks switch it)."""

_CACHING = threading.local()


def _caching() -> bool:
    return getattr(_CACHING, "on", False)


@contextlib.contextmanager
def chunk_cache(scope: str, max_bytes: int) -> Iterator[None]:
    """Reads of raw chunks by this thread inside keep the whole chunks they touch cached (see the
    module docstring), for ``scope``: a token naming one execution of a flow that writes nothing
    to the volumes read so (a new scope drops the chunks of the previous one). ``max_bytes``: the
    most the cache may map; the largest asked for in a scope holds."""
    if not isinstance(scope, str) or not scope:
        raise ValueError(f"scope: expected a non-empty string, got {scope!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes: expected a positive integer, got {max_bytes!r}")
    if not _CHUNK_CACHE[0]:
        yield
        return
    _CACHE.enter(scope, max_bytes)
    before = _caching()
    _CACHING.on = True
    try:
        yield
    finally:
        _CACHING.on = before


def clear_chunk_cache() -> None:
    """Drop every cached chunk of this process (and the counts of hits and misses)."""
    _CACHE.clear()


def chunk_cache_stats() -> ChunkCacheStats:
    """What the chunk cache of this process holds (for tests and benchmarks)."""
    return _CACHE.stats()


def _copy_from_chunk(
    chunk: npt.NDArray[Any],
    xs: tuple[int, int],
    ys: tuple[int, int],
    zs: tuple[int, int],
    target: npt.NDArray[Any],
) -> None:
    """Copy the part ``xs`` x ``ys`` x ``zs`` of ``chunk`` (``(channels, z, y, x)``) into
    ``target`` (XYZC)."""
    (xa, xb), (ya, yb), (za, zb) = xs, ys, zs
    for c in range(chunk.shape[0]):
        np.copyto(target[:, :, :, c], chunk[c, za:zb, ya:yb, xa:xb].transpose(2, 1, 0))


def _on_write(url: str, event: precomputed.Event) -> None:
    # (every chunk written by this process notifies: nothing to do while nothing is cached)
    if _CACHE.folders and url.startswith("file://"):
        _CACHE.drop_under(url[len("file://") :])


precomputed.add_listener(_on_write)


def _after_fork() -> None:
    # a lock held by another thread at the fork would stay held in the child
    global _CACHE
    _CACHE = _ChunkCache()


os.register_at_fork(after_in_child=_after_fork)
