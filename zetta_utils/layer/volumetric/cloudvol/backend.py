"""``CVBackend``: a Neuroglancer Precomputed volume through CloudVolume.

CloudVolume is opened with settings that keep every volume readable by TensorStore and by plain
CloudVolume, and that never lose data silently (each measured with cloud-volume 12.15):

* ``compress=False`` by default: with compression on, CloudVolume writes ``*.gz`` chunk files on
  local paths that TensorStore cannot see (it reads them as zeros). ``compress="gzip"`` may be
  chosen for object stores (gs://, s3://), where it becomes a ``Content-Encoding`` that both
  libraries decode; it is refused for local paths.
* ``parallel=1``: ``parallel=2`` wrote wrong data without error (and costs a process spawn per
  call); parallelism belongs to the executors.
* ``fill_missing=True``: a chunk never written reads as zeros, as with TensorStore.
* ``non_aligned_writes=False`` and our own check before it (see ``PrecomputedBackend.write``):
  partial-chunk writes are refused instead of being read-modify-written.
* ``bounded=True``, ``autocrop=False``: bounds are handled before CloudVolume is called (reads
  outside give zeros; writes are clipped to the dataset).
* ``cdn_cache=False``: chunks that are rewritten must not be served stale by an HTTP cache.
* ``delete_black_uploads=False``: all-zero chunks are written, so stale data is overwritten.
* ``progress=False``, ``green_threads=False``, ``cache=False`` (no on-disk cache).
* ``lru_bytes=cache_bytes_limit`` with ``lru_encoding="raw"``: an in-memory cache of decoded
  chunks. CloudVolume does not revalidate it against storage: writes made in this process (by
  any backend) clear the caches of that volume, but writes by other processes are not seen while
  a chunk stays cached. Use the cache for data that do not change during the run.

Multi-channel ``jpeg`` and ``png`` and 16-bit ``png`` are refused: cloud-volume 12.15 decodes
them wrongly (TensorStore reads them correctly; use ``build_ts_layer``). It reads multi-channel
``compressed_segmentation`` correctly but cannot write it: such writes are refused.

Local raw, unsharded scales are read and written as chunk files by :mod:`.chunk_files` (the same
bytes; CloudVolume's Python costs more per chunk than the rest of a flow) when ``cv_kwargs`` has
nothing but ``fill_missing``, ``secrets``, ``use_https``; ``cache_bytes_limit`` then keeps their
decoded chunks as CloudVolume's LRU would (same bound, same clearing, never revalidated).
``ZETTA_RAW_CHUNK_READS=0`` / ``ZETTA_RAW_CHUNK_WRITES=0`` send them through CloudVolume instead
(the switches of :mod:`..raw_chunks`, shared with ``TSBackend``); ``ZETTA_FILE_IO_SYNC=1`` fsyncs
each chunk written so.

Writes to object storage (``gs://``, ``s3://``) inside a task's write-behind scope (see
:mod:`zetta_utils.write_behind`) go to a pool of ``$ZETTA_CV_WRITE_THREADS`` threads per process
(default 4; 1: one after another on write-behind's writer thread, as before), each with its own
CloudVolume handle, one storage chunk per job, so that several PUTs are in flight at once: a store
answering each request in 20-100 ms otherwise bounds a process at one chunk per round trip.
Writes whose regions overlap still reach storage in the order they were made. Local writes stay
on the writer thread. Each thread in flight costs cloud-files a client of its own once per process
(boto3: ~0.1 s of CPU): more threads pay off only where a round trip outlasts several tasks' work.

S3: ``s3://bucket/path`` goes to AWS, or to the endpoint named by ``ZETTA_S3_ENDPOINT`` /
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` through a cloud-files alias ``zettas3``. Credentials
are found by cloud-files: ``~/.cloudvolume/secrets/aws-secret.json`` (``zettas3-secret.json`` for a
custom endpoint), else the environment, where cloud-files also requires ``AWS_SESSION_TOKEN``.
"""

from __future__ import annotations

import concurrent.futures
import copy
import itertools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from zetta_utils import write_behind

from .. import precomputed
from ..precomputed import PrecomputedBackend, VolumePath
from ..raw_chunks import file_io_sync_default, raw_chunk_reads_enabled, raw_chunk_writes_enabled
from . import chunk_files

S3_ALIAS = "zettas3"
_FIXED_SETTINGS = (
    "mip",
    "info",
    "bounded",
    "autocrop",
    "non_aligned_writes",
    "parallel",
    "delete_black_uploads",
    "cdn_cache",
    "cache",
    "lru_bytes",
    "lru_encoding",
    "green_threads",
    "progress",
    "provenance",
    "background_color",
)
_CHUNK_FILE_KWARGS = frozenset({"fill_missing", "secrets", "use_https"})
"""``cv_kwargs`` that leave local raw chunks read and written as CloudVolume would, so that
:mod:`.chunk_files` may do it (``fill_missing`` is honoured there)."""
T = TypeVar("T")


def cloudvolume_path(vpath: VolumePath) -> str:
    """The path CloudVolume / cloud-files use for the volume (registers the S3 endpoint alias)."""
    if vpath.scheme == "file":
        return vpath.url
    if vpath.scheme == "s3":
        endpoint = precomputed.get_s3_endpoint()
        if endpoint is not None:
            import cloudfiles.paths

            host = f"s3://{endpoint}/"
            if cloudfiles.paths.ALIASES.get(S3_ALIAS) != host:
                cloudfiles.paths.add_alias(S3_ALIAS, host)
            return f"{S3_ALIAS}://{vpath.location}/{vpath.key}".rstrip("/")
    return vpath.url


def _two_voxels(
    start: list[int], stop: list[int], minpt: Sequence[int], maxpt: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The one-voxel box ``[start, stop)`` grown by a voxel along the first axis where the
    bounds ``[minpt, maxpt)`` leave room (unchanged when they leave none)."""
    for d in range(3):
        if stop[d] < maxpt[d]:
            return start, [*stop[:d], stop[d] + 1, *stop[d + 1 :]]
        if start[d] > minpt[d]:
            return [*start[:d], start[d] - 1, *start[d + 1 :]], stop
    return start, stop


def _translate_errors(fn: Callable[[], T], url: str) -> T:
    try:
        return fn()
    except KeyError as e:
        if e.args and e.args[0] == "AWS_SESSION_TOKEN":
            raise RuntimeError(
                f"{url}: cloud-files takes S3 credentials from the environment only together with "
                "AWS_SESSION_TOKEN; set it, or put AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in "
                f"~/.cloudvolume/secrets/aws-secret.json ({S3_ALIAS}-secret.json for a custom "
                "endpoint)"
            ) from e
        raise


class CloudFilesIO:
    """Small files (the info) through cloud-files, with CloudVolume's credentials."""

    def _cf(self, vpath: VolumePath) -> Any:
        from cloudfiles import CloudFiles

        return CloudFiles(cloudvolume_path(vpath))

    def read(self, vpath: VolumePath, name: str) -> bytes | None:
        data = _translate_errors(lambda: self._cf(vpath).get(name), vpath.url)
        return None if data is None else bytes(data)

    def write(self, vpath: VolumePath, name: str, data: bytes) -> None:
        _translate_errors(
            lambda: self._cf(vpath).put(
                name, data, compress=None, content_type="application/json", cache_control="no-cache"
            ),
            vpath.url,
        )


class _Registry:
    """Per-process CloudVolume handles, dropped after ``fork``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.handles: dict[tuple[Any, ...], Any] = {}
        self.chunk_caches: dict[tuple[Any, ...], chunk_files.ChunkCache] = {}
        # the volumes with handles or chunk caches here: a write to any other volume (every
        # chunk written by this process notifies) has nothing to clear
        self.urls: set[str] = set()

    def check_pid(self) -> None:
        if self.pid != os.getpid():
            self.handles.clear()
            self.chunk_caches.clear()
            self.urls.clear()
            self.pid = os.getpid()

    def drop(self, url: str) -> None:
        with self.lock:
            for key in [k for k in self.handles if k[0] == url]:
                del self.handles[key]
            for key in [k for k in self.chunk_caches if k[0] == url]:
                del self.chunk_caches[key]
            self.urls.discard(url)

    def clear_lru(self, url: str) -> None:
        if url not in self.urls:
            return
        with self.lock:
            for key, cv in self.handles.items():
                if key[0] == url:
                    cv.image.lru.clear()
            for key, cache in self.chunk_caches.items():
                if key[0] == url:
                    cache.clear()


_REGISTRY = _Registry()


def _on_event(url: str, event: precomputed.Event) -> None:
    if event == "info":
        _REGISTRY.drop(url)
    else:
        _REGISTRY.clear_lru(url)


precomputed.add_listener(_on_event)


def _import_cloudvolume() -> None:
    """Import CloudVolume (about 0.5 s, once per process) when a backend is built, so that the
    first read of a run does not pay for it; importing this module alone stays cheap."""
    import cloudvolume  # noqa: F401


class CVBackend(PrecomputedBackend):
    """A precomputed volume read and written through CloudVolume (see the module docstring).

    :param path: the volume (``file://``, local path, ``gs://``, ``s3://``, ``http(s)://``).
    :param info: the volume's info if already known (else read from ``path``).
    :param cache_bytes_limit: bytes of decoded chunks to cache in memory; None/0: no cache.
    :param compress: ``False`` (default) or ``"gzip"`` (object stores only) for chunk writes.
    :param cv_kwargs: more keyword arguments for ``CloudVolume`` (e.g. ``secrets``,
        ``agglomerate``); the settings listed in the module docstring stay ours (``compress`` goes
        through the ``compress`` argument).
    """

    def __init__(
        self,
        path: str,
        info: Mapping[str, Any] | None = None,
        cache_bytes_limit: int | None = None,
        compress: Literal[False, "gzip"] = False,
        cv_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(path, info, io=CloudFilesIO())
        cv_kwargs = dict(cv_kwargs or {})
        if "compress" in cv_kwargs:
            value = cv_kwargs.pop("compress")
            compress = "gzip" if value is True else (value or False)  # CloudVolume's True: gzip
        fixed = sorted(set(cv_kwargs) & set(_FIXED_SETTINGS))
        if fixed:
            raise ValueError(
                f"cv_kwargs: {', '.join(fixed)} cannot be set: CVBackend chooses them so that data "
                "are never lost silently and stay readable by TensorStore (see its docstring)"
            )
        self.cv_kwargs = cv_kwargs
        if cache_bytes_limit is not None and (
            isinstance(cache_bytes_limit, bool)
            or not isinstance(cache_bytes_limit, int)
            or cache_bytes_limit < 0
        ):
            raise ValueError(
                "cache_bytes_limit: expected a non-negative integer or None, got "
                f"{cache_bytes_limit!r}"
            )
        if compress not in (False, "gzip"):
            raise ValueError(f"compress: expected False or 'gzip', got {compress!r}")
        if compress and self._vpath.scheme not in ("gs", "s3"):
            raise ValueError(
                f"compress='gzip' is refused for {self._vpath.scheme}:// paths: CloudVolume would "
                "write *.gz chunk files that TensorStore reads as missing (zeros); it is allowed "
                "for gs:// and s3://"
            )
        self.cache_bytes_limit = int(cache_bytes_limit or 0)
        self.compress: Literal[False, "gzip"] = compress
        self._check_codecs()
        _import_cloudvolume()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # An unpickled copy (a worker's) imports CloudVolume now too, not inside its first read.
        self.__dict__.update(state)
        _import_cloudvolume()

    def _check_codecs(self) -> None:
        nc = self.num_channels
        for scale in self._info["scales"]:
            enc = scale["encoding"]
            bad = (enc in ("jpeg", "png") and nc > 1) or (
                enc == "png" and self.data_type != "uint8"
            )
            if bad:
                raise ValueError(
                    f"{self.path}: scale {scale['key']} is {enc} with {nc} channel(s) of "
                    f"{self.data_type}, which cloud-volume decodes wrongly (it handles "
                    "single-channel "
                    "uint8 jpeg/png only); use build_ts_layer for this volume"
                )

    def _check_writable_codec(self, scale: Mapping[str, Any]) -> None:
        if scale.get("sharding"):
            raise ValueError(
                f"{self.path}: scale {scale['key']} is sharded, and CloudVolume writes shards only "
                "whole; use build_ts_layer to write it (both backends read it)"
            )
        if scale["encoding"] == "compressed_segmentation" and self.num_channels > 1:
            raise ValueError(
                f"{self.path}: cloud-volume cannot write compressed_segmentation with "
                f"{self.num_channels} channels (scale {scale['key']}); use build_ts_layer to write "
                "it"
            )

    def mazepa_id_components(self) -> tuple[Any, ...]:
        return ("CVBackend", self.path)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CVBackend)
            and other.path == self.path
            and other.cache_bytes_limit == self.cache_bytes_limit
            and other.compress == self.compress
            and other.cv_kwargs == self.cv_kwargs
            and other._info == self._info
        )

    def __hash__(self) -> int:
        return hash(("CVBackend", self.path))

    # --- handles -------------------------------------------------------------------------------
    def _handle_key(self, scale: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            self.path,
            scale["key"],
            self.cache_bytes_limit,
            self.compress,
            repr(sorted(self.cv_kwargs.items())),
        )

    def _chunk_cache(self, scale: Mapping[str, Any]) -> chunk_files.ChunkCache | None:
        """This process's cache of the scale's chunks read as files (``cache_bytes_limit``)."""
        if not self.cache_bytes_limit:
            return None
        key = self._handle_key(scale)
        with _REGISTRY.lock:
            _REGISTRY.check_pid()
            cache = _REGISTRY.chunk_caches.get(key)
            if cache is None:
                cache = _REGISTRY.chunk_caches[key] = chunk_files.ChunkCache(self.cache_bytes_limit)
                _REGISTRY.urls.add(key[0])
        return cache

    def _volume(self, scale: Mapping[str, Any], own_thread: bool = False) -> Any:
        """This process's CloudVolume handle of ``scale`` (``own_thread``: this thread's)."""
        key = self._handle_key(scale)
        if own_thread:
            key = (*key, threading.get_ident())
        with _REGISTRY.lock:
            _REGISTRY.check_pid()
            cv = _REGISTRY.handles.get(key)
            if cv is None:
                cv = _translate_errors(lambda: self._open(scale), self.path)
                _REGISTRY.handles[key] = cv
                _REGISTRY.urls.add(key[0])
        return cv

    def _open(self, scale: Mapping[str, Any]) -> Any:
        from cloudvolume import CloudVolume

        from . import download_pool

        download_pool.install()

        mip = next(i for i, s in enumerate(self._info["scales"]) if s["key"] == scale["key"])
        settings: dict[str, Any] = {
            "mip": mip,
            "info": copy.deepcopy(self._info),
            "provenance": {},
            "bounded": True,
            "autocrop": False,
            "fill_missing": True,
            "cache": False,
            "cdn_cache": False,
            "progress": False,
            "compress": self.compress,
            "non_aligned_writes": False,
            "parallel": 1,
            "delete_black_uploads": False,
            "background_color": 0,
            "green_threads": False,
            "lru_bytes": self.cache_bytes_limit,
            "lru_encoding": "raw",
        }
        settings.update(self.cv_kwargs)  # checked in __init__: none of the fixed settings
        return CloudVolume(cloudvolume_path(self._vpath), **settings)

    def clear_cache(self) -> None:
        """Drop this volume's handles and cached chunks in this process."""
        _REGISTRY.drop(self.path)

    # --- I/O -----------------------------------------------------------------------------------
    def _uses_chunk_files(self, scale: Mapping[str, Any]) -> bool:
        """Whether the chunks of ``scale`` are moved as local chunk files (module docstring)."""
        return (
            self._vpath.is_local
            and scale["encoding"] == "raw"
            and not scale.get("sharding")
            and not self.compress
            and self.cv_kwargs.keys() <= _CHUNK_FILE_KWARGS
        )

    def _read_xyzc(
        self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
    ) -> npt.NDArray[Any]:
        if self._uses_chunk_files(scale) and raw_chunk_reads_enabled():
            shape = (*(b - a for a, b in zip(start, stop, strict=True)), self.num_channels)
            out = np.empty(shape, dtype=self.data_type, order="F")
            self._read_chunk_files_into(scale, start, stop, out)
            return out
        return self._read_cloudvolume(self._volume(scale), start, stop)

    def _read_xyzc_into(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        if self._uses_chunk_files(scale) and raw_chunk_reads_enabled():
            self._read_chunk_files_into(scale, start, stop, out)
            return
        out[...] = self._read_cloudvolume(self._volume(scale), start, stop)

    def _read_cloudvolume(
        self, cv: Any, start: Sequence[int], stop: Sequence[int]
    ) -> npt.NDArray[Any]:
        lo, hi = list(start), list(stop)
        if self.num_channels > 1 and all(b - a == 1 for a, b in zip(lo, hi, strict=True)):
            # cloud-volume 12.x reads one voxel of a multi-channel volume wrongly (shape (C, 1,
            # 1, 1); compressed_segmentation: a decode error): read two voxels, keep the first
            lo, hi = _two_voxels(lo, hi, cv.bounds.minpt, cv.bounds.maxpt)
        cutout = _translate_errors(
            lambda: cv[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], self.path
        )
        xyzc = np.asarray(cutout)
        o = [a - b for a, b in zip(start, lo, strict=True)]
        e = [b - a for a, b in zip(lo, stop, strict=True)]
        return xyzc[o[0] : e[0], o[1] : e[1], o[2] : e[2]]

    def _read_chunk_files_into(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        cv = self._volume(scale)  # opened once per process, for the chunks CloudVolume reads
        chunk_files.read_chunks_into(
            self._vpath.key,
            scale,
            self.data_type,
            self.num_channels,
            start,
            stop,
            out,
            fill_missing=bool(self.cv_kwargs.get("fill_missing", True)),
            fallback=lambda a, b: self._read_cloudvolume(cv, a, b),
            cache=self._chunk_cache(scale),
        )

    def _write_xyzc(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        self._check_writable_codec(scale)
        cv = self._volume(scale)
        if self._uses_chunk_files(scale) and raw_chunk_writes_enabled():
            chunk_files.write_chunks(
                self._vpath.key,
                scale,
                start,
                stop,
                data,
                sync=file_io_sync_default(),
                key=self.path,
            )
            return
        scope = write_behind.current_scope()
        if scope is not None and scope.deferring:
            # Write-behind: CloudVolume encodes and stores a copy while the worker goes on
            data = np.array(data, order="F")
            threads = remote_write_threads()
            if not self._vpath.is_local and threads > 1:
                # object storage: several writes in flight at once (module docstring), one
                # storage chunk each (CloudVolume would start threads of its own for several)
                for lo, hi in _chunk_boxes(scale, start, stop):
                    piece = data[
                        tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, start, strict=True))
                    ]
                    future = _WRITES.submit(self, scale, lo, hi, piece, threads)
                    write_behind.track(self.path, future, piece.nbytes)
                return
            # (the handle of this scale is used by the writer thread alone meanwhile: reads of
            # the volume wait for its pending writes)

        def put() -> None:
            cv[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]] = data

        write_behind.defer(self.path, lambda: _translate_errors(put, self.path), data.nbytes)

    def _put_on_writer_thread(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        """A deferred write on one of :data:`_WRITES`' threads, with that thread's own handle."""
        cv = self._volume(scale, own_thread=True)

        def put() -> None:
            cv[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]] = data

        _translate_errors(put, self.path)


REMOTE_WRITE_THREADS_ENV = "ZETTA_CV_WRITE_THREADS"
DEFAULT_REMOTE_WRITE_THREADS = 4


def remote_write_threads() -> int:
    """Deferred CloudVolume writes to object storage in flight at once per process:
    ``$ZETTA_CV_WRITE_THREADS``, default 4; 1 runs them one after another on write-behind's
    writer thread (as local writes always are)."""
    given = os.environ.get(REMOTE_WRITE_THREADS_ENV, "").strip()
    if not given:
        return DEFAULT_REMOTE_WRITE_THREADS
    if not given.isdigit() or int(given) < 1:
        raise ValueError(f"${REMOTE_WRITE_THREADS_ENV} must be a positive integer, got {given!r}")
    return int(given)


class _ConcurrentWrites:
    """This process's deferred CloudVolume writes to object storage, on a pool of threads (one
    CloudVolume handle per thread and scale). Writes whose regions overlap run in the order they
    were made: each waits for the earlier pending ones it overlaps (an earlier job never waits
    for a later one, and the pool takes jobs in order, so the oldest pending job always runs)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.threads = 0
        # pending writes by (volume, scale): their regions and futures
        self.pending: dict[tuple[str, str], list[tuple[Box3, concurrent.futures.Future[None]]]] = {}

    def submit(
        self,
        backend: CVBackend,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
        threads: int,
    ) -> concurrent.futures.Future[None]:
        box: Box3 = (tuple(start), tuple(stop))
        key = (backend.path, str(scale["key"]))
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's threads are not here
                self.pool, self.pending, self.pid = None, {}, os.getpid()
            if self.pool is None or self.threads != threads:
                if self.pool is not None:
                    self.pool.shutdown(wait=False)  # (its jobs still run)
                self.pool = concurrent.futures.ThreadPoolExecutor(
                    threads, thread_name_prefix="zetta-cv-writer"
                )
                self.threads = threads
            pending = self.pending.setdefault(key, [])
            before = [f for b, f in pending if _overlap(b, box)]
            future = self.pool.submit(self._run, backend, scale, start, stop, data, before)
            entry = (box, future)
            pending.append(entry)
        future.add_done_callback(lambda _: self._forget(key, entry))
        return future

    @staticmethod
    def _run(
        backend: CVBackend,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
        before: list[concurrent.futures.Future[None]],
    ) -> None:
        concurrent.futures.wait(before)  # (their errors are their tasks')
        backend._put_on_writer_thread(scale, start, stop, data)

    def _forget(
        self, key: tuple[str, str], entry: tuple[Box3, concurrent.futures.Future[None]]
    ) -> None:
        with self.lock:
            pending = self.pending.get(key)
            if pending is not None and entry in pending:
                pending.remove(entry)
                if not pending:
                    del self.pending[key]


Box3 = tuple[tuple[int, ...], tuple[int, ...]]


def _chunk_boxes(
    scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
) -> list[tuple[list[int], list[int]]]:
    """The region ``[start, stop)`` cut along the scale's chunk grid: one box per storage chunk
    it covers (a write of a whole chunk, or of the part of an edge chunk inside the bounds)."""
    chunk = scale["chunk_sizes"][0]
    offset = scale["voxel_offset"]
    cuts = []
    for d in range(3):
        edges = [int(start[d])]
        first = offset[d] + ((start[d] - offset[d]) // chunk[d] + 1) * chunk[d]
        edges += range(int(first), int(stop[d]), int(chunk[d]))
        edges.append(int(stop[d]))
        cuts.append(list(itertools.pairwise(edges)))
    return [
        ([x0, y0, z0], [x1, y1, z1])
        for (z0, z1) in cuts[2]
        for (y0, y1) in cuts[1]
        for (x0, x1) in cuts[0]
    ]


def _overlap(a: Box3, b: Box3) -> bool:
    return all(
        lo_a < hi_b and lo_b < hi_a
        for lo_a, hi_a, lo_b, hi_b in zip(a[0], a[1], b[0], b[1], strict=True)
    )


_WRITES = _ConcurrentWrites()
