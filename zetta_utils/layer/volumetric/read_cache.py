"""Readers that keep decoded storage chunks in memory, for the padded reads of chunkwise flows.

The padded regions of neighbouring chunks overlap, and so do the storage chunks under them: a
flow reading 1360-voxel regions for 1024-voxel chunks over 1024-voxel storage chunks meets each
storage chunk up to 9 times, and without a cache fetches and decodes it that often (measured:
6.25 decodes per chunk on a 4 x 4 chunk section, 58% of a gzip run's time).
:func:`cached_reader` gives a backend reading the same volume through a cache of decoded
chunks, one per process, volume and size, so that consecutive tasks share it. Two kinds:

* *revalidating* (``scope=None``): TensorStore volumes only (``recheck_cached_data``): a cached
  chunk is checked against storage on every read (a stat locally, a conditional request on
  object stores), so it is safe whatever else writes the volume. Other backends read as they are.
* *scoped* (``scope``, a token naming one execution of one flow that only reads the volume):
  cached chunks are served without asking storage again, which saves the round trip of every
  reuse on object stores and lets CloudVolume (whose LRU never revalidates) cache too. That is
  safe because (1) the flow checks that it writes nothing to the volume (not its destination,
  not its intermediaries) before asking for a scoped reader, (2) writes by this process to the
  volume drop the cache (:func:`.precomputed.notify`), and (3) a reader serves one scope only:
  when a process is asked for a reader of another scope, the readers of the previous one and
  their caches are dropped. Another process writing the volume while a flow reads it would race
  with that flow's reads anyway.

Each reader's cache is bounded by the size asked for (TensorStore's ``cache_pool``,
CloudVolume's ``lru_bytes``): the memory a worker may hold on top of its task's own.
"""

from __future__ import annotations

import threading
from typing import Any

from .backend import VolumetricBackend

MAX_READERS = 16
"""Readers kept per process (their caches included); all are dropped when more are needed."""

_LOCK = threading.Lock()
_READERS: dict[tuple[Any, ...], list[VolumetricBackend]] = {}
_SCOPE: list[str | None] = [None]


def cached_reader(
    backend: VolumetricBackend, cache_bytes: int, scope: str | None = None
) -> VolumetricBackend:
    """``backend``'s volume read through a cache of ``cache_bytes`` of decoded storage chunks
    (see the module docstring); ``backend`` itself when it has a cache of its own or is of a kind
    that cannot be cached so (``scope=None`` and not TensorStore, or neither TensorStore nor
    CloudVolume). The same reader is returned for equal backends (e.g. unpickled again with each
    task), sizes and scopes, in this process."""
    if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes <= 0:
        raise ValueError(f"cache_bytes: expected a positive integer, got {cache_bytes!r}")
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ValueError(f"scope: expected None or a non-empty string, got {scope!r}")
    key = _reader_key(backend, scope)
    if key is None:
        return backend
    with _LOCK:
        if scope is not None and _SCOPE[0] != scope:
            _drop_scoped()
            _SCOPE[0] = scope
        readers = _READERS.setdefault(key, [])
        same = [r for r in readers if r.has_same_info(backend)]  # type: ignore[attr-defined]
        for reader in same:
            size = reader.cache_bytes_limit  # type: ignore[attr-defined]
            if size == cache_bytes or (scope is not None and size > cache_bytes):
                return reader
        if scope is not None:
            # One cache per volume and scope, the largest asked for: tasks at the region's edge
            # ask for less than the others, and two caches would each decode the chunks.
            for reader in same:
                readers.remove(reader)
                reader.clear_cache()
        if sum(len(r) for r in _READERS.values()) >= MAX_READERS:
            _drop_all()
            readers = _READERS.setdefault(key, [])
        reader = _make_reader(backend, cache_bytes, scope)
        readers.append(reader)
        return reader


def clear() -> None:
    """Drop every reader of this process and its cache."""
    with _LOCK:
        _drop_all()
        _SCOPE[0] = None


def readers() -> list[VolumetricBackend]:
    """The readers this process holds (for tests and benchmarks)."""
    with _LOCK:
        return [r for rs in _READERS.values() for r in rs]


def _reader_key(backend: VolumetricBackend, scope: str | None) -> tuple[Any, ...] | None:
    from .cloudvol import CVBackend
    from .tensorstore import TSBackend

    if isinstance(backend, TSBackend):
        if backend.cache_bytes_limit or not backend.revalidate_cache:
            return None
        return ("ts", backend.path, backend.file_io_sync, scope)
    if isinstance(backend, CVBackend) and scope is not None:
        if backend.cache_bytes_limit:
            return None
        return (
            "cv",
            backend.path,
            backend.compress,
            repr(sorted(backend.cv_kwargs.items())),
            scope,
        )
    return None


def _make_reader(
    backend: VolumetricBackend, cache_bytes: int, scope: str | None
) -> VolumetricBackend:
    from .cloudvol import CVBackend
    from .tensorstore import TSBackend

    if isinstance(backend, TSBackend):
        return TSBackend(
            backend.path,
            info=backend.info,
            cache_bytes_limit=cache_bytes,
            file_io_sync=backend.file_io_sync,
            revalidate_cache=scope is None,
        )
    assert isinstance(backend, CVBackend)
    return CVBackend(
        backend.path,
        info=backend.info,
        cache_bytes_limit=cache_bytes,
        compress=backend.compress,
        cv_kwargs=backend.cv_kwargs,
    )


def _drop_scoped() -> None:
    for key in [k for k in _READERS if k[-1] is not None]:
        for reader in _READERS.pop(key):
            reader.clear_cache()


def _drop_all() -> None:
    for rs in _READERS.values():
        for reader in rs:
            reader.clear_cache()
    _READERS.clear()
