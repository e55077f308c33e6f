"""``TSBackend``: a Neuroglancer Precomputed volume through TensorStore.

Settings, and why:

* ``recheck_cached_data=True``: a cached chunk is revalidated against storage on every read (a
  stat on local files, a conditional request on object stores), so the cache never returns data
  older than the last write by any process; it saves decoding and downloads, not round trips.
* ``fill_missing_data_reads=True``: a chunk never written reads as zeros, like every reader of
  this format. (Caveat: TensorStore cannot read the ``*.gz`` chunk files that CloudVolume writes
  with compression on local paths and would see them as missing; opening a local scale that holds
  such files is refused with an error instead.)
* ``store_data_equal_to_fill_value=True``: all-zero chunks are written like any other, so a plain
  CloudVolume (which fails on missing chunks unless ``fill_missing``) reads them and stale data
  is overwritten.
* ``file_io_sync`` (local files): whether each chunk written is fsynced. Default ``False``,
  which is about 3x faster on local disks: data reach the page cache, survive a crash of the
  process but not of the machine. Tasks are idempotent and retried, so a machine crash costs a
  rerun. Set ``file_io_sync=True`` (or the environment variable ``ZETTA_FILE_IO_SYNC=1``) when
  each write must be on disk when it returns.
* ``cache_bytes_limit``: size of the in-memory cache of decoded chunks (TensorStore's
  ``cache_pool``), per volume and process; off (0) by default.
* ``revalidate_cache=False`` turns ``recheck_cached_data`` off: cached chunks are served without
  asking storage again. Only for a volume nothing writes while the backend reads it: the readers
  of :mod:`..read_cache` use it for a flow's inputs that the flow does not write. Writes by this
  process to the volume still drop such a backend's cache.

Raw, unsharded scales hold one plain file per chunk: the chunk's XYZC array in Fortran order,
little-endian (chunks clipped at the dataset end). The backend moves those bytes itself where
TensorStore's array interface would add copies and cache transactions per chunk
(``bench/bench_storage.py`` measures each way):

* Writes (every write is chunk-aligned, see :meth:`~..precomputed.PrecomputedBackend.write`)
  store whole chunk files, exactly the bytes the array interface would store. Local files are
  written to a hidden temporary file in the scale's folder and renamed into place (a reader never
  sees half a chunk; ``file_io_sync`` fsyncs the file and the folder); remote ones go through
  TensorStore's key-value store. The array interface copies the data twice (into its chunk cache,
  then encoding it) and runs a cache transaction per chunk: about three times the time of a
  plain file write per 1 MB chunk on local disk. ``ZETTA_RAW_CHUNK_WRITES=0`` sends every write
  through it instead.
* Reads of local scales go straight to the chunk files, by byte range (only the rows of a chunk a
  region covers) into the caller's buffer, where the array interface reads every chunk whole into
  its cache first (or each time, without one) and copies out of it in its own threads: 1.5-3x the
  CPU time per padded region of a subchunked flow. A missing chunk reads as zeros
  (``fill_missing_data_reads``); a chunk file of the wrong size is an error.
  ``ZETTA_RAW_CHUNK_READS=0`` sends every read through the array interface (and its cache,
  ``cache_bytes_limit``, which these reads do not need).
* Reads of local *sharded* raw scales (``identity`` hash, raw chunk data: what TensorStore,
  CloudVolume and igneous write for raw images) go the same way to each chunk's bytes in its
  shard file, located through the shard's index and minishard index (:mod:`.shards`; the indexes
  are kept per process and file, and read again when the file's ``fstat`` changes). Through the
  array interface a padded region reads every chunk whole and copies it out of the cache, and
  each chunk costs 2-3 file reads (chunk, minishard index, shard index): about 1.3x the CPU time
  of these reads (``bench/bench_prefetch_reads.py``). Other shardings read through TensorStore.

The chunk-file primitives (row reads by byte range, the temporary-file write, the switches) are
:mod:`..raw_chunks`, shared with ``CVBackend``.

Writes behind (a task's TensorStore commits, or its chunks' PUTs to object storage, finishing
while the worker goes on, see :mod:`zetta_utils.write_behind`) land in the order they were made
where they overlap: a write first waits for this process's earlier writes in flight to the same
scale whose boxes, widened to the scale's write grid (its chunks; its shards where sharded, the
whole scale for a hashed sharding), overlap its own. Writes to other chunks do not wait: with
write-behind, every chunkwise task's write would otherwise wait for the previous task's commit
or PUT (one write in flight per worker). ``ZETTA_TS_COMMIT_ORDER=volume`` makes each write wait
for every earlier one of the volume instead (as before; for comparisons).

Opening a scale (once per process) checks it on storage (bounds, chunk size, encoding, sharding)
against the layer's info before the first chunk file is read or written.

Handles are opened once per process, volume, scale and settings, and reused; the backend itself
holds only its path, info and settings, so it pickles small and reopens lazily in a worker.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from zetta_utils import write_behind
from zetta_utils.geometry import Vec3D

from .. import precomputed
from ..precomputed import PrecomputedBackend, VolumePath
from ..raw_chunks import (
    COMPRESSED_SUFFIXES,
    chunk_parts,
    copy_raw_rows,
    file_io_sync_default,
    handed_over,
    raw_chunk_array,
    raw_chunk_reads_enabled,
    raw_chunk_writes_enabled,
    read_chunk_file,
    whole_chunks,
    write_chunk_file,
)
from .shards import ShardLayout, shard_index

_GZIP_PROBE_ENTRIES = 64


_RAW_WRITE_MAX_PENDING_BYTES = 64 * 2**20
"""Raw chunk writes in flight at once, at most (the encoded chunks wait in memory)."""

COMMIT_ORDER_ENV = "ZETTA_TS_COMMIT_ORDER"


def _order_by_volume() -> bool:
    """Whether a write behind waits for every earlier write of its volume in flight
    (``$ZETTA_TS_COMMIT_ORDER=volume``), not only for those it overlaps (the default)."""
    return os.environ.get(COMMIT_ORDER_ENV, "").strip().lower() == "volume"


Box = tuple[tuple[int, int, int], tuple[int, int, int]]
"""Start and stop (voxels, XYZ) of a region, on a scale's write grid."""


class _InFlight:
    """This process's writes behind still in flight, by volume: the scale key and box each
    covers, and the future that completes once it landed (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_url: dict[str, list[tuple[str, Box, Any]]] = {}

    def add(self, url: str, key: str, box: Box, future: Any) -> None:
        with self.lock:
            self.by_url.setdefault(url, []).append((key, box, future))

    def overlapping(self, url: str, key: str, box: Box) -> list[Any]:
        """The futures of the writes in flight to ``box`` of scale ``key`` of ``url`` (every
        scale and box with ``$ZETTA_TS_COMMIT_ORDER=volume``); forgets those that finished."""
        with self.lock:
            entries = self.by_url.get(url)
            if not entries:
                return []
            live = [entry for entry in entries if not entry[2].done()]
            if not live:
                del self.by_url[url]
                return []
            self.by_url[url] = live
        if _order_by_volume():
            return [future for _, _, future in live]
        (a0, a1, a2), (b0, b1, b2) = box
        return [
            future
            for k, ((c0, c1, c2), (d0, d1, d2)), future in live
            if k == key and a0 < d0 and c0 < b0 and a1 < d1 and c1 < b1 and a2 < d2 and c2 < b2
        ]

    def wait_overlapping(self, url: str, key: str, box: Box) -> None:
        """Block until the writes in flight that ``box`` of scale ``key`` overlaps landed (or
        failed: their own tasks report that)."""
        for future in self.overlapping(url, key, box):
            try:
                future.exception()
            except Exception:  # (cancelled): the write's own task reports it
                pass

    def clear(self) -> None:
        self.lock = threading.Lock()  # (a lock held by another thread at a fork stays held)
        self.by_url = {}


_IN_FLIGHT = _InFlight()


class _Registry:
    """Per-process TensorStore contexts and open handles, dropped after ``fork``.

    ``generation`` changes whenever a handle is dropped (or the process forked): backends keep
    the handles they use with the generation they got them in, and look them up again once it
    changed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.contexts: dict[tuple[Any, ...], Any] = {}
        self.handles: dict[tuple[Any, ...], Any] = {}
        self.generation = 0
        # volumes with contexts or handles of revalidate_cache=False backends: every write
        # drops those, and the writes to any other volume need not look
        self.unrevalidated: set[str] = set()

    def check_pid(self) -> None:
        if self.pid != _PID[0]:
            self.contexts.clear()
            self.handles.clear()
            self.unrevalidated.clear()
            self.pid = _PID[0]
            self.generation += 1

    def added(self, key: tuple[Any, ...]) -> None:
        """Note an entry just added under ``key`` (the lock held)."""
        if not key[-1]:
            self.unrevalidated.add(key[0])

    def drop(self, url: str, unrevalidated_only: bool = False) -> None:
        """Forget the volume's contexts and handles (with ``unrevalidated_only``, those of
        backends with ``revalidate_cache=False``: the last item of their keys)."""
        if unrevalidated_only and url not in self.unrevalidated:
            return  # nothing to drop (every data write of this process asks)
        with self.lock:
            for table in (self.contexts, self.handles):
                for key in [k for k in table if k[0] == url and not (unrevalidated_only and k[-1])]:
                    del table[key]
            self.unrevalidated.discard(url)
            self.generation += 1


_PID = [os.getpid()]
"""This process's id, updated in a child after ``fork`` (``os.getpid`` is a system call, and every
chunk read or written looks its handle up)."""

_REGISTRY = _Registry()


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()
    _IN_FLIGHT.clear()  # (the parent's writes are not this process's)
    _REGISTRY.generation += 1  # the handles backends kept belong to the parent


os.register_at_fork(after_in_child=_after_fork_in_child)


def _on_event(url: str, event: precomputed.Event) -> None:
    # Data writes need nothing where cached chunks are revalidated on read; caches that are not
    # (revalidate_cache=False) are dropped. A new info means a new chunk grid or bounds: reopen.
    if event == "info":
        _REGISTRY.drop(url)
    else:
        _REGISTRY.drop(url, unrevalidated_only=True)


precomputed.add_listener(_on_event)


def _check_no_compressed_chunks(vpath: VolumePath, scale_key: str) -> None:
    directory = os.path.join(vpath.key, scale_key)
    try:
        with os.scandir(directory) as entries:
            for i, entry in enumerate(entries):
                if entry.name.endswith(COMPRESSED_SUFFIXES):
                    raise ValueError(
                        f"{vpath.url}: scale {scale_key} holds compressed chunk files such as "
                        f"{entry.name!r} (written by CloudVolume with compress on), which "
                        "TensorStore "
                        "cannot read and would return as zeros; read it with build_cv_layer, or "
                        "rewrite it uncompressed"
                    )
                if i >= _GZIP_PROBE_ENTRIES:
                    break
    except FileNotFoundError:
        pass


def _deferring() -> bool:
    """Whether writes now may finish after they return (write-behind, in a task's scope)."""
    scope = write_behind.current_scope()
    return scope is not None and scope.deferring


def _is_plain_raw(scale: Mapping[str, Any]) -> bool:
    """Whether the scale's chunks are plain files of raw bytes (raw encoding, no sharding)."""
    return scale.get("encoding") == "raw" and not scale.get("sharding")


DATA_COPY_CONCURRENCY_ENV = "ZETTA_TS_DATA_COPY_CONCURRENCY"


def _data_copy_concurrency() -> int | None:
    """TensorStore's decode/encode threads per context: ``$ZETTA_TS_DATA_COPY_CONCURRENCY`` (set
    in mazepa's local workers to their share of the cores, see ``mazepa.worker_threads``), or
    None for TensorStore's default (the core count)."""
    given = os.environ.get(DATA_COPY_CONCURRENCY_ENV, "").strip()
    if not given:
        return None
    if not given.isdigit() or int(given) < 1:
        raise ValueError(f"${DATA_COPY_CONCURRENCY_ENV} must be a positive integer, got {given!r}")
    return int(given)


class TSBackend(PrecomputedBackend):
    """A precomputed volume read and written through TensorStore (see the module docstring).

    :param path: the volume (``file://``, local path, ``gs://``, ``s3://``, ``http(s)://``).
    :param info: the volume's info if already known (else read from ``path``).
    :param cache_bytes_limit: bytes of decoded chunks to cache in memory; None/0: no cache.
    :param file_io_sync: fsync each chunk written to local files; None: ``ZETTA_FILE_IO_SYNC``.
    :param revalidate_cache: check cached chunks against storage on each read (default); False
        only for a volume nothing writes while this backend reads it (see the module docstring).
    """

    def __init__(
        self,
        path: str,
        info: Mapping[str, Any] | None = None,
        cache_bytes_limit: int | None = None,
        file_io_sync: bool | None = None,
        revalidate_cache: bool = True,
    ):
        super().__init__(path, info)
        self._check_decodable()
        if cache_bytes_limit is not None and (
            isinstance(cache_bytes_limit, bool)
            or not isinstance(cache_bytes_limit, int)
            or cache_bytes_limit < 0
        ):
            raise ValueError(
                "cache_bytes_limit: expected a non-negative integer or None, got "
                f"{cache_bytes_limit!r}"
            )
        if file_io_sync is not None and not isinstance(file_io_sync, bool):
            raise ValueError(f"file_io_sync: expected True, False or None, got {file_io_sync!r}")
        if not isinstance(revalidate_cache, bool):
            raise ValueError(f"revalidate_cache: expected True or False, got {revalidate_cache!r}")
        self.cache_bytes_limit = int(cache_bytes_limit or 0)
        self.file_io_sync = file_io_sync_default() if file_io_sync is None else file_io_sync
        self.revalidate_cache = revalidate_cache
        self._init_process_state()

    def _init_process_state(self) -> None:
        # this process's handles by scale key, with the registry generation they were got in
        self._stores: dict[str, tuple[int, Any]] = {}
        # whether reads of a scale may go to its chunk files, and whether its chunks are plain
        # raw files (writes), the switches aside (by scale key)
        self._raw_readable: dict[str, bool] = {}
        self._plain_raw: dict[str, bool] = {}
        # how a sharded raw scale's chunks lie in its shard files (None: not readable so)
        self._shard_layouts: dict[str, ShardLayout | None] = {}
        # a scale's write grid (origin, shape): what orders writes behind (by scale key)
        self._write_grids: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_stores", "_raw_readable", "_plain_raw", "_shard_layouts", "_write_grids"):
            del state[name]  # handles stay in their process (and the rest is found again)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_process_state()

    def _check_decodable(self) -> None:
        """Refuse, before any I/O, a volume TensorStore cannot decode (CloudVolume can)."""
        if self.data_type not in precomputed.SUPPORTED_DATA_TYPES:
            raise ValueError(
                f"{self.path}: data_type {self.data_type!r} is not supported by TensorStore's "
                "precomputed driver; open this volume with build_cv_layer (CloudVolume reads it)"
            )
        for scale in self._info["scales"]:
            if scale["encoding"] not in precomputed.TS_ENCODINGS:
                raise ValueError(
                    f"{self.path}: scale {scale['key']} is {scale['encoding']!r}-encoded, which "
                    f"TensorStore cannot decode (it reads {', '.join(precomputed.TS_ENCODINGS)}); "
                    "open this volume with build_cv_layer (CloudVolume reads it)"
                )

    def mazepa_id_components(self) -> tuple[Any, ...]:
        return ("TSBackend", self.path)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TSBackend)
            and other.path == self.path
            and other.cache_bytes_limit == self.cache_bytes_limit
            and other.file_io_sync == self.file_io_sync
            and other.revalidate_cache == self.revalidate_cache
            and other._info == self._info
        )

    def __hash__(self) -> int:
        return hash(("TSBackend", self.path))

    # --- handles -------------------------------------------------------------------------------
    def _context(self) -> Any:
        import tensorstore as ts

        copy_threads = _data_copy_concurrency()
        # (revalidate_cache last: see _Registry.added)
        key = (
            self.path,
            self.cache_bytes_limit,
            self.file_io_sync,
            copy_threads,
            self.revalidate_cache,
        )
        ctx = _REGISTRY.contexts.get(key)
        if ctx is None:
            spec: dict[str, Any] = {
                "cache_pool": {"total_bytes_limit": self.cache_bytes_limit},
                "file_io_sync": self.file_io_sync,
            }
            if copy_threads is not None:
                spec["data_copy_concurrency"] = {"limit": copy_threads}
            ctx = ts.Context(spec)
            _REGISTRY.contexts[key] = ctx
            _REGISTRY.added(key)
        return ctx

    def _handle(self, what: str, opener: Callable[[], Any]) -> Any:
        """This process's handle ``what`` (a scale key, or ``#kvstore``), opened on first use."""
        key = (self.path, what, self.cache_bytes_limit, self.file_io_sync, self.revalidate_cache)
        handle = _REGISTRY.handles.get(key)
        if handle is not None and _REGISTRY.pid == _PID[0]:
            return handle  # opened before in this process (the lock is for opening)
        with _REGISTRY.lock:
            _REGISTRY.check_pid()
            handle = _REGISTRY.handles.get(key)
            if handle is None:
                handle = _REGISTRY.handles[key] = opener()
                _REGISTRY.added(key)
        return handle

    def _store(self, scale: Mapping[str, Any]) -> Any:
        # every chunk read or written asks: this backend keeps what the registry gave it for as
        # long as the registry dropped nothing (a new info, a write to an unrevalidated volume)
        key = scale["key"]
        kept = self._stores.get(key)
        if kept is not None and kept[0] == _REGISTRY.generation:
            return kept[1]
        generation = _REGISTRY.generation
        store = self._handle(key, lambda: self._open(scale))
        self._stores[key] = (generation, store)
        return store

    def _open(self, scale: Mapping[str, Any]) -> Any:
        import tensorstore as ts

        if self._vpath.is_local:
            _check_no_compressed_chunks(self._vpath, scale["key"])
        spec = {
            "driver": "neuroglancer_precomputed",
            "kvstore": precomputed.tensorstore_kvstore_spec(self._vpath),
            "scale_metadata": {"key": scale["key"]},
            "recheck_cached_data": self.revalidate_cache,
            "fill_missing_data_reads": True,
            "store_data_equal_to_fill_value": True,
        }
        try:
            store = ts.open(
                spec,
                context=self._context(),
                open=True,
                read=True,
                write=self._vpath.is_writable,
            ).result()
        except ValueError as e:
            raise ValueError(
                f"TensorStore could not open scale {scale['key']} of {self.path}: {e}"
            ) from e
        lo = list(scale["voxel_offset"])
        hi = [o + s for o, s in zip(lo, scale["size"], strict=True)]
        dom = store.domain
        if list(dom.inclusive_min[:3]) != lo or list(dom.exclusive_max[:3]) != hi:
            raise ValueError(
                f"the info of {self.path} changed since this layer was built: scale {scale['key']} "
                f"spans {lo} - {hi} here but {list(dom.inclusive_min[:3])} - "
                f"{list(dom.exclusive_max[:3])} on storage; rebuild the layer"
            )
        # the chunk grid too: raw chunk writes put files where this info says chunks are
        chunk = [int(n) for n in scale["chunk_sizes"][0]]
        stored_chunk = [int(n or 0) for n in (store.chunk_layout.read_chunk.shape or ())[:3]]
        codec = store.schema.codec.to_json() if store.schema.codec is not None else {}
        sharded = "shard_data_encoding" in codec
        if (
            stored_chunk != chunk
            or codec.get("encoding") != scale.get("encoding")
            or sharded != bool(scale.get("sharding"))
        ):
            raise ValueError(
                f"the info of {self.path} changed since this layer was built: scale {scale['key']} "
                f"has {scale.get('encoding')} chunks of "
                f"{chunk}{' in shards' if scale.get('sharding') else ''} "
                f"here but {codec.get('encoding')} chunks of "
                f"{stored_chunk}{' in shards' if sharded else ''} "
                "on storage; rebuild the layer"
            )
        return store

    def get_shard_size(self, resolution: Vec3D[float]) -> Vec3D[int] | None:
        """The voxels one shard file of the scale at ``resolution`` holds, on the chunk grid
        (from the scale's voxel offset), or None for an unsharded scale: the smallest aligned
        region a write replaces shards of whole. A write of less (e.g. one chunk) is a
        read-modify-write of its shard (read, merged, rewritten whole, conditional on the shard
        not having changed meanwhile): chunkwise writes of a shard of ``n`` chunks write about
        ``(n + 1) / 2`` times its bytes (and read nearly as much), and writers of the same shard
        in other processes retry on each other's writes. Where a shard's chunks do not form a box
        (a hashed sharding, or more shards than ``shard_bits`` can name), this is the whole
        scale, as TensorStore reports it."""
        scale = self._scale(resolution)
        if not scale.get("sharding"):
            return None
        shape = self._store(scale).chunk_layout.write_chunk.shape
        return Vec3D(*(int(n) for n in shape[:3]))

    def clear_cache(self) -> None:
        """Drop this volume's handles and cached chunks in this process."""
        _REGISTRY.drop(self.path)

    # --- I/O -----------------------------------------------------------------------------------
    def _view(self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]) -> Any:
        """The region ``[start, stop)`` of the scale's handle (XYZC, in voxel coordinates)."""
        (x0, y0, z0), (x1, y1, z1) = start, stop
        return self._store(scale)[x0:x1, y0:y1, z0:z1]

    def writes_chunk_files(self, resolution: Vec3D[float]) -> bool:
        """Whether writes at ``resolution`` (a stored one) go to local chunk files directly, one
        file per chunk (a local raw unsharded scale; see the module docstring)."""
        scale = self._scale(resolution)
        return self._vpath.is_local and bool(_is_plain_raw(scale)) and raw_chunk_writes_enabled()

    def reads_chunk_files(self, resolution: Vec3D[float]) -> bool:
        """Whether reads at ``resolution`` (a stored one) go to the chunk files directly, taking
        only the part of each chunk a region covers (see the module docstring)."""
        return self._reads_raw_chunks(self._scale(resolution))

    def _reads_raw_chunks(self, scale: Mapping[str, Any]) -> bool:
        key = scale["key"]
        readable = self._raw_readable.get(key)
        if readable is None:
            readable = self._raw_readable[key] = self._vpath.is_local and (
                _is_plain_raw(scale) or self._shard_layout(scale) is not None
            )
        return readable and raw_chunk_reads_enabled()

    def _shard_layout(self, scale: Mapping[str, Any]) -> ShardLayout | None:
        """:meth:`ShardLayout.of` the scale, worked out once per scale (every read asks)."""
        key = scale["key"]
        try:
            return self._shard_layouts[key]
        except KeyError:
            layout = self._shard_layouts[key] = ShardLayout.of(scale)
            return layout

    def _read_xyzc(
        self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
    ) -> npt.NDArray[Any]:
        if self._reads_raw_chunks(scale):
            shape = (*(b - a for a, b in zip(start, stop, strict=True)), self.num_channels)
            out = np.empty(shape, dtype=self.data_type, order="F")
            self._read_raw_chunks_into(scale, start, stop, out)
            return out
        return self._view(scale, start, stop).read(order="F").result()

    def _read_xyzc_into(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        import tensorstore as ts

        if self._reads_raw_chunks(scale):
            self._read_raw_chunks_into(scale, start, stop, out)
            return

        # TensorStore copies the chunks straight into ``out`` (referenced, not copied)
        target = ts.array(out, copy=False, write=True)
        target.write(self._view(scale, start, stop)[ts.d[:].translate_to[0]]).result()

    def _write_xyzc(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        key = scale["key"]
        plain_raw = self._plain_raw.get(key)
        if plain_raw is None:
            plain_raw = self._plain_raw[key] = _is_plain_raw(scale)
        if plain_raw and raw_chunk_writes_enabled():
            self._write_raw_chunks(scale, start, stop, data)
            return
        view = self._view(scale, start, stop)
        if not _deferring():
            view.write(data).result()
            return
        # Write-behind: the caller may reuse ``data`` once TensorStore has copied it; encoding
        # and storing (the commit) finish while the worker goes on. A TensorStore write waits for
        # this process's commits in flight to the same chunks (shards) first, so that writes land
        # in the order they were made (see the module docstring).
        box = self._write_box(scale, start, stop)
        _IN_FLIGHT.wait_overlapping(self._url, key, box)
        futures = view.write(data)
        futures.copy.result()
        write_behind.track(self._url, futures.commit, data.nbytes)
        _IN_FLIGHT.add(self._url, key, box, futures.commit)

    def _write_box(
        self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
    ) -> Box:
        """``[start, stop)`` widened to the scale's write grid: the chunks (shards) it touches."""
        key = scale["key"]
        grid = self._write_grids.get(key)
        if grid is None:
            layout = self._store(scale).chunk_layout
            shape = tuple(int(n) for n in layout.write_chunk.shape[:3])
            origin = tuple(int(n) for n in layout.grid_origin[:3])
            grid = self._write_grids[key] = (origin, shape)
        origin, shape = grid
        lo = [o + (a - o) // n * n for a, o, n in zip(start, origin, shape, strict=True)]
        hi = [o + -(-(b - o) // n) * n for b, o, n in zip(stop, origin, shape, strict=True)]
        return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])

    # --- whole raw chunks through the key-value store (see the module docstring) ---------------
    def _kvstore(self) -> Any:
        import tensorstore as ts

        spec = precomputed.tensorstore_kvstore_spec(self._vpath)
        return self._handle(
            "#kvstore", lambda: ts.KvStore.open(spec, context=self._context()).result()
        )

    def _write_raw_chunks(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        """Write ``data`` (XYZC, covering whole chunks of a raw, unsharded scale: every write is
        chunk-aligned) as chunk files."""
        self._store(scale)  # opened once per process: checks the scale on storage against the info
        kvstore = None if self._vpath.is_local else self._kvstore()
        directory = os.path.join(self._vpath.key, scale["key"])
        deferring = _deferring()
        if kvstore is not None and deferring:
            self._write_raw_chunks_behind(kvstore, scale, start, stop, data)
            return
        pending: list[Any] = []
        pending_bytes = 0
        for name, part in whole_chunks(scale, start, stop, data):
            # a raw chunk is its XYZC array in Fortran order: its transpose in C order
            if kvstore is None:
                chunk = raw_chunk_array(part)
                if not deferring:
                    write_chunk_file(directory, name, chunk, self.file_io_sync)
                    continue
                if np.may_share_memory(chunk, data) and not handed_over():
                    chunk = chunk.copy()  # the deferred write must own its data
                write_behind.defer(
                    self._url,
                    functools.partial(write_chunk_file, directory, name, chunk, self.file_io_sync),
                    chunk.nbytes,
                )
                continue
            value = raw_chunk_array(part).tobytes()
            pending.append(kvstore.write(f"{scale['key']}/{name}", value))
            pending_bytes += len(value)
            if pending_bytes >= _RAW_WRITE_MAX_PENDING_BYTES:
                for future in pending:
                    future.result()
                pending, pending_bytes = [], 0
        for future in pending:
            future.result()

    def _write_raw_chunks_behind(
        self,
        kvstore: Any,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        """:meth:`_write_raw_chunks` to object storage with write-behind: each chunk's PUT is
        tracked, not awaited (after this process's PUTs in flight to the same chunks, so that
        they land in order)."""
        key = scale["key"]
        box = self._write_box(scale, start, stop)
        _IN_FLIGHT.wait_overlapping(self._url, key, box)
        for name, part in whole_chunks(scale, start, stop, data):
            value = raw_chunk_array(part).tobytes()  # (a copy: the PUT owns it)
            future = kvstore.write(f"{key}/{name}", value)
            write_behind.track(self._url, future, len(value))
            _IN_FLIGHT.add(self._url, key, box, future)

    def _read_raw_chunks_into(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        """Fill ``out`` (XYZC, any strides) with ``[start, stop)`` (inside the bounds) of a local
        raw scale, reading from each chunk file (or each chunk's bytes in its shard file) the rows
        the region covers."""
        self._store(scale)  # opened once per process: checks the scale on storage against the info
        layout = self._shard_layout(scale)
        if layout is not None:
            self._read_sharded_chunks_into(scale, layout, start, stop, out)
            return
        directory = os.path.join(self._vpath.key, scale["key"])
        stored = np.dtype(self.data_type).newbyteorder("<")
        channels = self.num_channels
        for c in chunk_parts(scale, start, stop, out):
            path = os.path.join(directory, precomputed.chunk_name(c.corner, c.end))
            if not read_chunk_file(path, stored, channels, c.shape, c.xs, c.ys, c.zs, c.target):
                c.target[...] = 0

    def _read_sharded_chunks_into(
        self,
        scale: Mapping[str, Any],
        layout: ShardLayout,
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        """:meth:`_read_raw_chunks_into` of a sharded raw scale: each chunk's rows read from its
        byte range in the shard file (see :mod:`.shards`), a shard file opened once per region; a
        missing shard file or chunk reads as zeros."""
        directory = os.path.join(self._vpath.key, scale["key"])
        stored = np.dtype(self.data_type).newbyteorder("<")
        channels = self.num_channels
        chunk = [int(n) for n in scale["chunk_sizes"][0]]
        lo = [int(v) for v in scale["voxel_offset"]]
        by_shard: dict[str, list[tuple[Any, ...]]] = {}
        for c in chunk_parts(scale, start, stop, out):
            (gx, gy, gz) = c.corner
            grid = ((gx - lo[0]) // chunk[0], (gy - lo[1]) // chunk[1], (gz - lo[2]) // chunk[2])
            name, minishard, chunk_id = layout.locate(grid)
            by_shard.setdefault(name, []).append(
                (minishard, chunk_id, c.shape, c.xs, c.ys, c.zs, c.target)
            )
        for name, chunks in by_shard.items():
            path = os.path.join(directory, name)
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                for *_, target in chunks:
                    target[...] = 0
                continue
            try:
                index = shard_index(fd, path, layout)  # (one fstat for the region's chunks)
                for minishard, chunk_id, shape, xs, ys, zs, target in chunks:
                    found = index.chunk_range(fd, path, layout, minishard, chunk_id)
                    if found is None:
                        target[...] = 0
                        continue
                    offset, size = found
                    nx, ny, nz = shape
                    expected = nx * ny * nz * channels * stored.itemsize
                    if size != expected:
                        raise ValueError(
                            f"shard file {path}: chunk {chunk_id} holds {size} bytes; a raw chunk "
                            f"of {nx} x {ny} x {nz} voxels and {channels} channel(s) of "
                            f"{stored.name} holds {expected}"
                        )
                    copy_raw_rows(
                        fd, path, offset, stored, channels, shape, xs, ys, zs, target, index.stamp
                    )
            finally:
                os.close(fd)
