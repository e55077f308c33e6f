"""Backends that wrap what an operation reads from and writes to inside a task.

* :class:`CaptureBackend`: the ``dst`` an operation writes to below the top level: the write is
  kept in memory (no copy when it covers the expected box) for the level's reduction.
* :class:`PrefetchedBackend`: an input layer read once for a whole chunk of an upper level;
  reads inside that region are served from memory (as copies, so in-place changes by the
  function cannot leak into neighbouring chunks), others go to the wrapped backend.
* :class:`ClipWritesBackend`: writes are clipped to a box (the destination's bounds), so chunks
  of a region grown past the dataset write only their part inside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex, raw_chunks, read_ahead, read_cache
from zetta_utils.layer.volumetric.backend import VolumetricBackend
from zetta_utils.layer.volumetric.layer import VolumetricLayer, build_volumetric_layer
from zetta_utils.layer.volumetric.precomputed import PrecomputedBackend
from zetta_utils.tensor_ops.convert import to_np_dtype

from .chunk_grid import Box, Int3
from .reduction import Array, as_array, copy_xfast, empty_xfast


class _DelegatingBackend(VolumetricBackend):
    def __init__(self, inner: VolumetricBackend):
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    @property
    def num_channels(self) -> int:
        return self.inner.num_channels

    @property
    def is_local(self) -> bool:
        return self.inner.is_local

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        return self.inner.read(idx)

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        self.inner.write(idx, data)

    def get_resolutions(self) -> Sequence[Vec3D[float]]:
        return self.inner.get_resolutions()

    def find_resolution(self, resolution: Vec3D[float]) -> Vec3D[float] | None:
        return self.inner.find_resolution(resolution)

    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return self.inner.get_voxel_offset(resolution)

    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return self.inner.get_chunk_size(resolution)

    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return self.inner.get_dataset_size(resolution)

    def get_bounds(self, resolution: Vec3D[float]) -> VolumetricIndex:
        return self.inner.get_bounds(resolution)

    def clear_cache(self) -> None:
        self.inner.clear_cache()


class CaptureBackend(VolumetricBackend):
    """Keeps what an operation writes inside ``box`` (at ``resolution``) in memory."""

    def __init__(
        self, box: Box, resolution: Vec3D[float], num_channels: int, dtype: torch.dtype, what: str
    ):
        self.box = box
        self.resolution = resolution
        self._num_channels = num_channels
        self._dtype = dtype
        self.what = what
        self.data: torch.Tensor | None = None
        self._whole = False

    @property
    def name(self) -> str:
        return f"<output of {self.what}>"

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def is_local(self) -> bool:
        return True

    def get_resolutions(self) -> Sequence[Vec3D[float]]:
        return [self.resolution]

    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*self.box.start)

    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*self.box.shape)

    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*self.box.shape)

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        raise PermissionError(  # a write-only sink, by design
            f"{self.what} read its `dst`; below the top level `dst` only receives the chunk's "
            "output (write it with dst[idx] = result)"
        )

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        box = Box.from_index(idx)
        if not self.box.contains(box):
            raise ValueError(
                f"{self.what} wrote {box.pformat()} but its chunk is {self.box.pformat()} (voxels "
                f"at {tuple(self.resolution)}); an operation must write inside the index it is "
                f"given"
            )
        if tuple(data.shape[1:]) != box.shape or data.ndim != 4:
            raise ValueError(
                f"{self.what} wrote data of shape {tuple(data.shape)} at {box.pformat()}, "
                f"expected (C, {box.shape[0]}, {box.shape[1]}, {box.shape[2]})"
            )
        if data.shape[0] != self._num_channels:
            raise ValueError(
                f"{self.what} wrote {data.shape[0]} channels; the destination has "
                f"{self._num_channels}"
            )
        if box == self.box and self.data is None:
            self.data = data
            self._whole = True
            return
        if self.data is None or self._whole:
            previous = self.data
            self.data = torch.from_numpy(
                empty_xfast(self._num_channels, self.box.shape, data.dtype, zero=True)
            )
            if previous is not None:
                self.data.copy_(previous)
            self._whole = False
        self.data[box.slices_in(self.box)] = data.to(self.data.dtype)

    def result(self) -> torch.Tensor:
        if self.data is None:
            return torch.from_numpy(
                empty_xfast(self._num_channels, self.box.shape, self._dtype, zero=True)
            )
        return self.data


def capture_layer(backend: CaptureBackend) -> VolumetricLayer:
    return build_volumetric_layer(backend)


class PrefetchedBackend(_DelegatingBackend):
    """Serves reads inside ``bbox`` at ``resolution`` from ``data`` (read once)."""

    def __init__(
        self, inner: VolumetricBackend, resolution: Vec3D[float], box: Box, data: torch.Tensor
    ):
        super().__init__(inner)
        self.resolution = resolution
        self.box = box
        self.data: torch.Tensor | None = data

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        if self.data is not None and idx.resolution == self.resolution:
            bbox_voxels_start = idx.bbox.start / self.resolution
            bbox_voxels_stop = idx.bbox.end / self.resolution
            if bbox_voxels_start.is_integral() and bbox_voxels_stop.is_integral():
                box = Box.of(bbox_voxels_start.round(), bbox_voxels_stop.round())
                if self.box.contains(box):
                    return torch.from_numpy(
                        copy_xfast(as_array(self.data[box.slices_in(self.box)]))
                    )
        return self.inner.read(idx)

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        self.data = None
        self.inner.write(idx, data)


PREFETCH_CACHE_BYTES = 128 * 2**20
"""Per process and input volume, the most memory TensorStore's cache of decoded chunks used by
prefetches may hold: neighbouring chunks' padded regions share storage chunks, and the cache lets
each be read once."""
_CACHE_STEP = 8 * 2**20

_CACHED_READERS = read_cache._READERS  # the readers of this process (tests look at them)
_HELD = read_ahead.HELD


def chunk_cached(
    backend: VolumetricBackend, cache_bytes: int = PREFETCH_CACHE_BYTES, scope: str | None = None
) -> VolumetricBackend:
    """``backend``, reading through a cache of ``cache_bytes`` of decoded storage chunks shared by
    consecutive tasks in this process: revalidated against storage on every read (TensorStore
    only), or, with ``scope`` (the run's token, given only for a volume the run does not write),
    not revalidated (TensorStore and CloudVolume). See
    :mod:`zetta_utils.layer.volumetric.read_cache`."""
    return read_cache.cached_reader(backend, cache_bytes, scope)


def _storage_chunks(box: Box, offset: Sequence[int], chunk: Sequence[int]) -> int:
    """How many storage chunks ``box`` overlaps."""
    if box.is_empty():
        return 0
    return math.prod(
        (box.stop[d] - offset[d] + chunk[d] - 1) // chunk[d]
        - (box.start[d] - offset[d]) // chunk[d]
        for d in range(3)
    )


def prefetch_cache_bytes(
    boxes: Sequence[Box], offset: Sequence[int], chunk: Sequence[int], chunk_bytes: int
) -> int:
    """The size of the prefetch cache that holds the storage chunks under ``boxes`` (the regions
    later prefetches come back to), in steps of 8 MiB, at most :data:`PREFETCH_CACHE_BYTES`. A
    cache larger than what is reused costs memory pages that every new worker process must first
    fault in, for nothing."""
    need = sum(_storage_chunks(box, offset, chunk) for box in boxes) * chunk_bytes
    return min(PREFETCH_CACHE_BYTES, max(1, math.ceil(need / _CACHE_STEP)) * _CACHE_STEP)


def _most_cache_bytes(source: _Source, shapes: Sequence[Sequence[int]]) -> int:
    """:func:`prefetch_cache_bytes` of boxes of ``shapes`` placed where they meet the most storage
    chunks of the dataset (``summary.estimate`` counts the same)."""
    count = 0
    for shape in shapes:
        met = 1
        for d in range(3):
            length, chunk = min(shape[d], source.bounds.shape[d]), source.chunk[d]
            in_bounds = -(-source.bounds.shape[d] // chunk)
            met *= 0 if length <= 0 else min(in_bounds, -(-(length - 1) // chunk) + 1)
        count += met
    need = count * source.chunk_bytes
    return min(PREFETCH_CACHE_BYTES, max(1, math.ceil(need / _CACHE_STEP)) * _CACHE_STEP)


def _voxel_box(bbox: BBox3D, resolution: Vec3D[float]) -> Box:
    """``bbox`` in voxels at ``resolution``, snapped outward (up to float noise)."""
    start = [math.floor(s / r + 1e-6) for s, r in zip(bbox.start, resolution, strict=True)]
    stop = [math.ceil(e / r - 1e-6) for e, r in zip(bbox.end, resolution, strict=True)]
    return Box.of(start, stop)


def _is_chunk_aligned(box: Box, offset: Sequence[int], chunk: Sequence[int], bounds: Box) -> bool:
    """Whether ``box`` covers whole storage chunks (chunks clipped by the dataset end count)."""
    return all(
        (box.start[d] - offset[d]) % chunk[d] == 0
        and ((box.stop[d] - offset[d]) % chunk[d] == 0 or box.stop[d] == bounds.stop[d])
        for d in range(3)
    )


@attrs.frozen
class _Source:
    """What prefetching a backend's data at a stored resolution needs, worked out once."""

    stored: Vec3D[float]
    offset: Int3
    bounds: Box
    chunk: Int3
    chunk_bytes: int
    num_channels: int
    dtype: torch.dtype
    into_buffer: bool
    """Whether it reads straight into a given buffer (a precomputed volume storing the type it
    returns)."""
    reads_chunk_files: bool
    """Whether it reads only the part of each storage chunk a region covers (no cache needed)."""


_SOURCES: dict[tuple[int, tuple[float, ...]], tuple[VolumetricBackend, _Source | None]] = {}


def _source(backend: VolumetricBackend, resolution: Vec3D[float]) -> _Source | None:
    """The prefetch geometry of ``backend`` at ``resolution`` (None: not stored there), per
    process and backend object (a backend's info does not change)."""
    key = (id(backend), tuple(resolution))
    known = _SOURCES.get(key)
    if known is not None and known[0] is backend:
        return known[1]
    stored = next((r for r in backend.get_resolutions() if r.allclose(resolution)), None)
    source = None
    if stored is not None:
        offset = tuple(int(v) for v in backend.get_voxel_offset(stored))
        size = tuple(int(v) for v in backend.get_dataset_size(stored))
        chunk = tuple(int(v) for v in backend.get_chunk_size(stored))
        dtype = backend.dtype
        source = _Source(
            stored=stored,
            offset=(offset[0], offset[1], offset[2]),
            bounds=Box.of(offset, [o + n for o, n in zip(offset, size, strict=True)]),
            chunk=(chunk[0], chunk[1], chunk[2]),
            chunk_bytes=math.prod(chunk) * backend.num_channels * to_np_dtype(dtype).itemsize,
            num_channels=backend.num_channels,
            dtype=dtype,
            into_buffer=isinstance(backend, PrecomputedBackend)
            and backend.data_type == str(to_np_dtype(dtype)),
            reads_chunk_files=_reads_chunk_files(backend, stored),
        )
    if len(_SOURCES) >= 64:
        _SOURCES.clear()
    _SOURCES[key] = (backend, source)
    return source


def _reads_chunk_files(backend: VolumetricBackend, resolution: Vec3D[float]) -> bool:
    from zetta_utils.layer.volumetric.tensorstore import TSBackend

    return isinstance(backend, TSBackend) and backend.reads_chunk_files(resolution)


def prefetch_layer(
    layer: VolumetricLayer,
    resolution: Vec3D[float],
    bbox: BBox3D,
    reuse_bbox: BBox3D | None = None,
    scope: str | None = None,
) -> VolumetricLayer:
    """``layer`` with the region ``bbox`` (snapped outward to voxels at ``resolution``) read once
    and served from memory; ``layer`` itself when its reads would not go straight to the stored
    data at ``resolution`` (resampling, index processors), which then read as usual.

    ``reuse_bbox``: the region whose storage chunks the next prefetches come back to (e.g. the row
    of chunks ``bbox`` belongs to); the cache of shared storage chunks is sized to hold it and
    ``bbox`` (default: :data:`PREFETCH_CACHE_BYTES`). ``scope``: see :func:`chunk_cached`.

    The data read ahead for exactly this prefetch (:func:`prefetch_ahead`) is used when there is
    some."""
    fetch = _bbox_fetch(layer, resolution, bbox, reuse_bbox, scope)
    return layer if fetch is None else _prefetch(layer, fetch)


def prefetch_layer_voxels(
    layer: VolumetricLayer,
    resolution: Vec3D[float],
    box: Box,
    reuse: Box | None = None,
    scope: str | None = None,
) -> VolumetricLayer:
    """:func:`prefetch_layer` of the voxels ``box`` (and ``reuse``) at ``resolution``."""
    fetch = _voxels_fetch(layer, resolution, box, reuse, scope)
    return layer if fetch is None else _prefetch(layer, fetch)


def prefetch_ahead(
    layer: VolumetricLayer,
    resolution: Vec3D[float],
    box: Box | BBox3D,
    reuse: Box | BBox3D | None = None,
    scope: str | None = None,
) -> read_ahead.Call | None:
    """The read of :func:`prefetch_layer_voxels` (``box``: a :class:`Box`) or
    :func:`prefetch_layer` (a ``BBox3D``) with these arguments, for :func:`.read_ahead.start`
    (a task's reads, made while the task before it runs): the prefetch then takes its data.
    None when nothing is read so ahead: without ``scope`` (a volume the run only reads), a
    layer that prefetching reads as usual, or a volume :mod:`.read_ahead` leaves alone (local
    unless ``$ZETTA_READ_AHEAD`` is ``all``, or ``off``)."""
    if scope is None:
        return None
    if isinstance(box, Box):
        assert reuse is None or isinstance(reuse, Box)
        fetch = _voxels_fetch(layer, resolution, box, reuse, scope)
    else:
        assert reuse is None or isinstance(reuse, BBox3D)
        fetch = _bbox_fetch(layer, resolution, box, reuse, scope)
    if fetch is None or not read_ahead.reads_backend_ahead(layer.backend):
        return None
    backend = layer.backend
    after = None
    if not merges_concurrent_reads(backend):
        # no merging of concurrent reads of a storage chunk: the reads of neighbouring chunks
        # (sharing storage chunks) one after another, the second from the cache
        def after(other: read_ahead.Call) -> bool:
            return isinstance(other.key, _Fetch) and _shares_chunks(fetch, other.key)

    return read_ahead.Call(layer, fetch, backend, lambda: _read_prefetch(backend, fetch), after)


def merges_concurrent_reads(backend: VolumetricBackend) -> bool:
    """Whether reads of ``backend``'s volume in flight at once fetch a storage chunk they share
    once (TensorStore's cache: yes; CloudVolume's: no, each fetches and decodes it)."""
    from zetta_utils.layer.volumetric.tensorstore import TSBackend

    return isinstance(backend, TSBackend)


def _shares_chunks(a: _Fetch, b: _Fetch) -> bool:
    """Whether the reads ``a`` and ``b`` (of the same volume) meet a storage chunk in common."""
    if a.source.stored != b.source.stored:
        return False
    offset, chunk = a.source.offset, a.source.chunk
    for d in range(3):
        # the storage chunks each meets along d (their grid indices), overlapping or not
        first = max(a.box.start[d], b.box.start[d]) - offset[d]
        last = min(a.box.stop[d], b.box.stop[d]) - 1 - offset[d]
        if first // chunk[d] > last // chunk[d]:
            return False
    return True


@attrs.frozen
class _Fetch:
    """One prefetch's read: ``box`` (voxels at ``source.stored``), the cache sized for
    ``reuse``, read with ``scope`` (the key of the data read ahead for it, with the layer)."""

    source: _Source
    box: Box
    reuse: Box | None
    scope: str | None


def _bbox_fetch(
    layer: VolumetricLayer,
    resolution: Vec3D[float],
    bbox: BBox3D,
    reuse_bbox: BBox3D | None,
    scope: str | None,
) -> _Fetch | None:
    source = _prefetchable(layer, resolution)
    if source is None:
        return None
    box = _voxel_box(bbox, source.stored)
    reuse = None if reuse_bbox is None else _voxel_box(reuse_bbox, source.stored)
    return _Fetch(source, box, reuse, scope)


def _voxels_fetch(
    layer: VolumetricLayer,
    resolution: Vec3D[float],
    box: Box,
    reuse: Box | None,
    scope: str | None,
) -> _Fetch | None:
    source = _prefetchable(layer, resolution)
    if source is None:
        return None
    if source.stored != resolution:  # stored at a resolution equal up to float noise
        box = _voxel_box(box.to_index(resolution).bbox, source.stored)
        reuse = (
            None if reuse is None else _voxel_box(reuse.to_index(resolution).bbox, source.stored)
        )
    return _Fetch(source, box, reuse, scope)


def _prefetchable(layer: VolumetricLayer, resolution: Vec3D[float]) -> _Source | None:
    backend = layer.backend
    if layer.index_procs or not isinstance(backend, VolumetricBackend):
        return None
    data_resolution = layer.frontend.data_resolution
    if data_resolution is not None and data_resolution != resolution:
        return None
    return _source(backend, resolution)


def _prefetch(layer: VolumetricLayer, fetch: _Fetch) -> VolumetricLayer:
    backend = layer.backend
    data = None
    if _HELD[0] and fetch.scope is not None:  # read ahead, maybe (prefetch_ahead)
        data = read_ahead.take_call(layer, fetch)
    if data is None:
        data = _read_prefetch(backend, fetch)
    prefetched = PrefetchedBackend(backend, fetch.source.stored, fetch.box, data)
    return attrs.evolve(layer, backend=prefetched)


def _read_prefetch(backend: VolumetricBackend, fetch: _Fetch) -> torch.Tensor:
    source, box, reuse, scope = fetch.source, fetch.box, fetch.reuse, fetch.scope
    inside = box.intersection(source.bounds)
    # A region on the storage chunk grid shares no storage chunk with its neighbours' regions:
    # read directly. Otherwise neighbours re-read the chunks they share: keep them cached (chunk
    # files: whole chunks by raw_chunks.chunk_cache, for a volume the run only reads).
    reader = backend
    whole_chunks_cache = 0
    if not inside.is_empty() and not _is_chunk_aligned(
        inside, source.offset, source.chunk, source.bounds
    ):
        if reuse is None:
            size = PREFETCH_CACHE_BYTES
        elif not source.reads_chunk_files:
            # the most any prefetch of these shapes needs, the same for every chunk of the run:
            # a larger size asked for later would replace the reader, its cache dropped
            size = _most_cache_bytes(source, [reuse.shape, box.shape])
        else:
            reuse = reuse.intersection(source.bounds)
            size = prefetch_cache_bytes(
                [reuse, inside], source.offset, source.chunk, source.chunk_bytes
            )
        if not source.reads_chunk_files:
            reader = chunk_cached(backend, size, scope)
        elif scope is not None:
            whole_chunks_cache = size
    if source.into_buffer and isinstance(reader, PrecomputedBackend):
        # Straight into one buffer, zeros outside the dataset (no second array, no copy).
        array = empty_xfast(source.num_channels, box.shape, source.dtype)
        if whole_chunks_cache:
            assert scope is not None
            with raw_chunks.chunk_cache(scope, whole_chunks_cache):
                reader.read_voxels_into(source.stored, box.start, box.stop, array)
        else:
            reader.read_voxels_into(source.stored, box.start, box.stop, array)
        data = torch.from_numpy(array)
    elif inside == box:
        data = reader.read(box.to_index(source.stored))
    else:
        # Outside the dataset reads as zeros; fill them here rather than have the backend read
        # and pad a region mostly outside it.
        array = empty_xfast(source.num_channels, box.shape, source.dtype, zero=True)
        if not inside.is_empty():
            array[inside.slices_in(box)] = as_array(reader.read(inside.to_index(source.stored)))
        data = torch.from_numpy(array)
    return data


class ClipWritesBackend(_DelegatingBackend):
    """Writes only the part of each write inside ``bounds`` (voxels at ``resolution``)."""

    def __init__(self, inner: VolumetricBackend, resolution: Vec3D[float], bounds: Box):
        super().__init__(inner)
        self.resolution = resolution
        self.bounds = bounds

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        resolution = idx.resolution
        if resolution is not self.resolution and resolution != self.resolution:
            self.inner.write(idx, data)
            return
        (x0, y0, z0), (x1, y1, z1) = idx.voxel_box
        (bx0, by0, bz0), (bx1, by1, bz1) = self.bounds
        if (
            bx0 <= x0 < x1 <= bx1 and by0 <= y0 < y1 <= by1 and bz0 <= z0 < z1 <= bz1
        ):  # wholly inside (every write of a chunk not at the edge): as it is
            self.inner.write(idx, data)
            return
        box = Box.from_index(idx)
        inside = box.intersection(self.bounds)
        if inside.is_empty():
            return
        if inside == box:
            self.inner.write(idx, data)
            return
        self.inner.write(inside.to_index(self.resolution), data[inside.slices_in(box)])


def read_fast(layer: VolumetricLayer, box: Box, resolution: Vec3D[float]) -> torch.Tensor:
    """``layer[box]`` at ``resolution``, sliced straight from prefetched data when nothing (index
    or read processors, resampling) stands between the layer and its stored data."""
    backend = layer.backend
    if (
        isinstance(backend, PrefetchedBackend)
        and backend.data is not None
        and not layer.read_procs
        and not layer.index_procs
        and backend.resolution.allclose(resolution)
        and backend.box.contains(box)
    ):
        return torch.from_numpy(copy_xfast(as_array(backend.data[box.slices_in(backend.box)])))
    return layer[box.to_index(resolution)]


class PrefetchedKwargs(dict[str, Any]):
    """Operation keyword arguments whose layers were prefetched; ``fast`` maps the names of
    those that read straight from the prefetched data to ``(array, box)``."""

    def __init__(self) -> None:
        super().__init__()
        self.fast: dict[str, tuple[Array, Box]] = {}


def fast_source(layer: VolumetricLayer, resolution: Vec3D[float]) -> tuple[Array, Box] | None:
    """``(data, box)`` when reading ``layer`` at ``resolution`` inside ``box`` is a plain slice of
    its prefetched data (no processors, no resampling)."""
    backend = layer.backend
    if (
        isinstance(backend, PrefetchedBackend)
        and backend.data is not None
        and not layer.read_procs
        and not layer.index_procs
        and backend.resolution.allclose(resolution)
        and (
            layer.frontend.data_resolution is None
            or layer.frontend.data_resolution.allclose(resolution)
        )
    ):
        return as_array(backend.data), backend.box
    return None
