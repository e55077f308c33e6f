"""Writes of ``dst`` chunks that a flow shares with what lies outside its region.

A reduction writes whole ``dst`` chunks wherever its region covers them. A chunk on the
region's edge (or across a ``processing_gap``) holds voxels that are not the flow's: only its
voxels inside the region are written, and the chunk's other voxels keep what storage holds.
Another flow whose region shares the chunk may be merging its own voxels into it at the same
time, so the merge must not be a plain read-modify-write (the later writer would put back the
earlier one's voxels as it read them, erasing its data):

* **Through TensorStore** (every encoding it writes: raw, jpeg, png, compressed_segmentation;
  sharded or not): the voxels are written as a partial-chunk write. TensorStore reads the chunk,
  merges the new voxels and writes the chunk back only if it has not changed on storage since it
  was read (a conditional write on the chunk's generation: on local files under TensorStore's
  lock file, on GCS with ``if-generation-match``); otherwise it reads the chunk again and
  retries. Concurrent merges of disjoint voxels into one chunk, from any number of processes or
  machines, all survive.
* **Otherwise** (encodings only CloudVolume writes, and non-precomputed backends): the chunk is
  read, merged and written whole through the layer's backend, holding an exclusive lock
  (``flock``) on the scale's folder for local volumes. That serializes merges on one machine (or a
  file system with working ``flock``); for remote volumes no lock exists and two flows merging
  into one chunk at the same time can lose one's voxels: give such flows regions that share no
  ``dst`` chunk, or run them one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from zetta_utils import write_behind
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import precomputed

from .chunk_grid import Box
from .reduction import Array, as_array, copy_xfast

TS_WRITABLE_ENCODINGS = frozenset({"raw", "jpeg", "png", "compressed_segmentation"})

_lock = threading.Lock()
_handles: dict[tuple[Any, ...], Any] = {}
_handles_pid = os.getpid()


def merge_into(backend: Any, resolution: Vec3D[float], parts: Sequence[tuple[Box, Array]]) -> None:
    """Write each ``(box, data)`` of ``parts`` (``data`` CXYZ of the backend's type, ``box`` inside
    the bounds) into the volume of ``backend`` at ``resolution``, leaving every other voxel of the
    chunks they touch as it is on storage (see the module docstring)."""
    if not parts:
        return
    store = _tensorstore(backend, resolution)
    if store is not None:
        write_behind.wait_for(backend.path)  # this process's pending writes land first
        futures = []
        for box, data in parts:
            (x0, y0, z0), (x1, y1, z1) = box
            stored = precomputed.to_stored(
                torch.from_numpy(np.asarray(data)), backend.data_type, "dst"
            )
            futures.append(store[x0:x1, y0:y1, z0:z1].write(stored.transpose(1, 2, 3, 0)))
        for future in futures:
            future.result()
        precomputed.notify(backend.path, "data")
        return
    aligned = _chunks_around(backend, resolution, parts)
    index = aligned.to_index(resolution)
    # the merged chunks are on storage before the lock is released (no write-behind)
    with _local_lock(backend, resolution), write_behind.synchronous():
        raw = copy_xfast(as_array(backend.read(index)))
        for box, data in parts:
            raw[box.slices_in(aligned)] = data
        backend.write(index, torch.from_numpy(raw))


def _scale(backend: Any, resolution: Vec3D[float]) -> dict[str, Any] | None:
    info = getattr(backend, "info", None)
    if not isinstance(backend, precomputed.PrecomputedBackend) or not isinstance(info, dict):
        return None
    return precomputed.find_scale(info, resolution)


def _tensorstore(backend: Any, resolution: Vec3D[float]) -> Any:
    """This process's TensorStore handle on the scale, or None where TensorStore cannot write
    it (see the module docstring)."""
    scale = _scale(backend, resolution)
    if scale is None or scale.get("encoding") not in TS_WRITABLE_ENCODINGS:
        return None
    sync = bool(getattr(backend, "file_io_sync", False))
    # the data type, channels and the scale's whole entry: a volume made again at the same path
    # with another type or grid reopens (a stale handle would write the old type's bytes)
    info = backend.info
    described = {
        "data_type": info.get("data_type"),
        "num_channels": info.get("num_channels"),
        "scale": scale,
    }
    key = (backend.path, json.dumps(described, sort_keys=True), sync)
    global _handles_pid
    with _lock:
        if _handles_pid != os.getpid():  # handles do not survive a fork
            _handles.clear()
            _handles_pid = os.getpid()
        if key not in _handles:
            _handles[key] = _open(backend.path, scale["key"], sync)
        return _handles[key]


def _open(path: str, scale_key: str, sync: bool) -> Any:
    import tensorstore as ts

    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": precomputed.tensorstore_kvstore_spec(precomputed.parse_path(path)),
        "scale_metadata": {"key": scale_key},
        "recheck_cached_data": True,
        "store_data_equal_to_fill_value": True,
    }
    context = ts.Context({"cache_pool": {"total_bytes_limit": 0}, "file_io_sync": sync})
    try:
        return ts.open(spec, context=context, open=True, read=True, write=True).result()
    except ValueError:  # a volume TensorStore does not take (e.g. float64): merged under the lock
        return None


@contextlib.contextmanager
def _local_lock(backend: Any, resolution: Vec3D[float]) -> Iterator[None]:
    scale = _scale(backend, resolution)
    vpath = None if scale is None else precomputed.parse_path(backend.path)
    if vpath is None or not vpath.is_local:
        yield
        return
    assert scale is not None
    folder = os.path.join(vpath.key, scale["key"])
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _chunks_around(
    backend: Any, resolution: Vec3D[float], parts: Sequence[tuple[Box, Array]]
) -> Box:
    """The box of whole chunks (clipped to the bounds) around all ``parts``."""
    offset = backend.get_voxel_offset(resolution)
    chunk = backend.get_chunk_size(resolution)
    bounds = Box.from_index(backend.get_bounds(resolution))
    start = [min(box.start[d] for box, _ in parts) for d in range(3)]
    stop = [max(box.stop[d] for box, _ in parts) for d in range(3)]
    lo = [offset[d] + (start[d] - offset[d]) // chunk[d] * chunk[d] for d in range(3)]
    hi = [offset[d] - (offset[d] - stop[d]) // chunk[d] * chunk[d] for d in range(3)]
    return Box.of(lo, hi).intersection(bounds)
