"""Where the top level's overlapping chunk outputs wait for their reduction.

Each chunk's padded output is cut into pieces (see :mod:`.chunk_grid`): its *interior* (label
``B`` in every dim), which no other chunk overlaps, and its *frame*, the bands it shares with its
neighbours (and at the region's edge). One precomputed volume under the run's directory,
``pieces``, raw-encoded with the destination's data type and channels, holds them all: chunk
``k``'s pieces (``k`` its x-fastest number), each flattened x-fastest and concatenated in a fixed
label order (the interior first), are one row ``[0, P) x [0, 1) x [k, k+1)``, one storage chunk.

Therefore every write is one whole storage chunk (chunk-aligned; no two tasks ever share one, so
no read-modify-write and no race, with any number of workers), a task writes one file, nothing is
stored twice, and a reduction reads by byte range what it needs: the interiors under it and the
(thin) frames of the chunks around it, one request per row on object storage (its channels
together, unless that reads more than twice what is needed), and not at all for what earlier
reductions of the process read of the same execution (its neighbours: they share bands); a row
whose frame only is needed, and whose interior a later reduction reduces, is read whole, so that
each row is read once when reductions follow one another, and the rows a process writes are kept
for its reductions, up to the bytes a reduction reads at most (see
:meth:`PieceStore._read_needs`): a serial run reads none back.

A run whose every task runs in this process (``mazepa.single_process()``: ``num_procs=1``) writes
no row at all, unless it keeps its intermediaries (``keep_intermediaries``) or defers its
reduction: its rows stay in memory for its reductions, and a row is written only if it is let go
of from memory (beyond the bound above, :data:`.volumetric_apply_flow.KEPT_ROWS_MAX_BYTES`) while
a reduction still needs it (see :meth:`PieceStore.write_chunk`). The checkpoint record of a
top-level task then waits (``mazepa.hold_record``) until its row is written or every reduction
reading it has finished, so that a resumed run never skips a task whose row is gone.
A run with several processes whose waves are independent goes in section tasks (see
:mod:`.volumetric_apply_flow`): a task computes a wave's rows and reduces them, and keeps them in
memory the same way for that one task (:meth:`PieceStore.rows_of_one_task`); no record waits.
Rows reduced are deleted in bulk on S3 (``DeleteObjects``, see :mod:`.s3_deletes`): one request
per 1000 rows, not one per row.

A ``manifest.json`` next to it records the geometry and the layout version, so a run with
``defer`` can be reduced later (:func:`~.subchunkable_apply_flow.build_deferred_reduction_flow`).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import math
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from zetta_utils import mazepa, write_behind
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.mazepa import record_holds
from zetta_utils.tensor_ops import to_np_dtype

from . import s3_deletes
from .chunk_grid import LABEL_B, LABEL_C, AxisGrid, Box, ChunkGrid, Int3, RampCache
from .reduction import (
    Array,
    Weights,
    accumulator_dtype,
    add_zero,
    combine_pieces,
    empty_xfast,
    phase_order,
    to_output_dtype,
)

MANIFEST = "manifest.json"
PIECES = "pieces"
RECYCLED = ".recycled"
"""Under the pieces volume: files of rows already reduced, kept to be overwritten by new rows."""
LAYOUT = 2
"""Version of the layout above (1: the interiors and the frames in two volumes)."""


def join_url(base: str, *names: str) -> str:
    url = precomputed.parse_path(base).url
    return "/".join([url.rstrip("/"), *names])


class PieceStore:
    """The piece volumes of one run's top level (see the module docstring)."""

    def __init__(
        self,
        path: str,
        resolution: Vec3D[float],
        grid: ChunkGrid,
        data_type: str,
        num_channels: int,
        region: Box | None = None,
    ):
        self.region = region
        self.path = precomputed.parse_path(path).url
        self.resolution = resolution
        self.grid = grid
        self.data_type = data_type
        self.num_channels = num_channels
        self._stores: dict[str, Any] = {}
        self.run_token: str | None = None
        """Set by :meth:`create`, once per execution: rows kept for the reductions of a process
        (see :class:`_RowCache`) belong to one execution, never to an earlier one."""
        self.keep_bytes = 0
        """The most bytes of rows a process keeps for its reductions (set by the flow: those a
        reduction reads at most, see :func:`.volumetric_apply_flow.kept_rows_bytes`); 0: those
        the last reduction needed."""
        self.in_memory = False
        """Set by the flow when every task of the run runs in this process
        (``mazepa.single_process()``) and the run neither keeps its intermediaries nor defers
        its reduction: rows stay in memory, written only if let go of while still needed (see
        :meth:`write_chunk`), during the run that called :meth:`create`."""
        self._run: record_holds.Run | None = None
        self._reset_in_memory()
        interior = (LABEL_B, LABEL_B, LABEL_B)
        self.interior: Int3 | None = interior if interior in grid.labels else None
        self.frame_labels: list[Int3] = [label for label in grid.labels if label != interior]
        # where each label's piece starts in a chunk's row: the interior, then the frame
        self.offsets: dict[Int3, int] = {}
        offset = 0
        for label in ([interior] if self.interior is not None else []) + self.frame_labels:
            self.offsets[label] = offset
            offset += math.prod(grid.tile_shape(label))
        self.interior_size = (
            math.prod(grid.tile_shape(interior)) if self.interior is not None else 0
        )
        self.row_size = offset

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stores"] = {}
        state.pop("_pooled", None)  # this process's listing
        state["in_memory"] = False  # rows in memory are this process's
        state["_run"] = None
        for name in ("_unwritten", "_consumed", "_spilled", "_holding", "_held_keys"):
            state[name] = type(state[name])()
        state["_taken"], state["_failed_attempts"] = None, []
        return state

    def _reset_in_memory(self) -> None:
        self._unwritten: set[Int3] = set()
        """Chunks whose rows are needed and held in memory only (see :meth:`write_chunk`)."""
        self._consumed: set[Int3] = set()
        """Chunks of :attr:`_unwritten` (or written frame only) whose interior was reduced."""
        self._spilled: set[Int3] = set()
        """Chunks whose rows were written after all (let go of from memory while needed)."""
        self._holding: dict[Int3, str] = {}
        """Chunk -> the top-level task whose checkpoint record waits for its row."""
        self._held_keys: dict[str, set[Int3]] = {}
        """Top-level task -> the chunks its record waits for."""
        self._taken: dict[Int3, list[tuple[int, Array]]] | None = None
        """While a reduction runs (:meth:`reduction_attempt`): the rows held in memory only whose
        interiors it reduced, as they were."""
        self._failed_attempts: list[dict[Int3, list[tuple[int, Array]]]] = []
        """What reductions whose deferred writes failed had taken (:meth:`reduction_attempt`),
        given back at the next read."""

    def mazepa_id_components(self) -> tuple[Any, ...]:
        return ("PieceStore", self.path)

    # --- layout ----------------------------------------------------------------------------------
    def volumes(self) -> list[str]:
        return [PIECES]

    def volume_path(self, name: str) -> str:
        return join_url(self.path, name)

    def info(self, name: str) -> dict[str, Any]:
        counts = self.grid.counts
        return {
            "@type": "neuroglancer_multiscale_volume",
            "type": "image",
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "scales": [
                {
                    "key": self._scale_key,
                    "resolution": [
                        int(r) if float(r).is_integer() else float(r) for r in self.resolution
                    ],
                    "voxel_offset": [0, 0, 0],
                    "size": [self.row_size, 1, counts[0] * counts[1] * counts[2]],
                    "chunk_sizes": [[self.row_size, 1, 1]],
                    "encoding": "raw",
                }
            ],
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "layout": LAYOUT,
            "resolution": list(self.resolution),
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "region": None
            if self.region is None
            else [list(self.region.start), list(self.region.stop)],
            "axes": [
                {
                    "origin": ax.origin,
                    "chunk": ax.chunk,
                    "blend": ax.blend,
                    "count": ax.count,
                    "gap": ax.gap,
                }
                for ax in self.grid.axes
            ],
        }

    @classmethod
    def from_manifest(cls, path: str) -> PieceStore:
        vpath = precomputed.parse_path(path)
        raw = precomputed.read_file(vpath, MANIFEST)
        if raw is None:
            raise FileNotFoundError(
                f"no {MANIFEST} at {vpath.url}: not the intermediaries directory of a deferred run"
            )
        m = json.loads(raw)
        if m.get("layout", 1) != LAYOUT:
            raise ValueError(
                f"the intermediaries at {vpath.url} have layout {m.get('layout', 1)}, this "
                f"version of zetta_utils reads layout {LAYOUT}: reduce them with the version that "
                "wrote them"
            )
        axes = [AxisGrid(**a) for a in m["axes"]]
        region = None if m.get("region") is None else Box.of(*m["region"])
        return cls(
            vpath.url,
            Vec3D(*m["resolution"]),
            ChunkGrid((axes[0], axes[1], axes[2])),
            m["data_type"],
            m["num_channels"],
            region=region,
        )

    # --- lifecycle -------------------------------------------------------------------------------
    def create(self) -> None:
        """Write the infos and the manifest (idempotent). Local files are not fsynced: the
        intermediaries live only as long as the run."""
        self.run_token = secrets.token_hex(8)
        self._run = record_holds.current_run()
        self._reset_in_memory()
        files = [(self.volume_path(name), "info", self.info(name)) for name in self.volumes()]
        files.append((self.path, MANIFEST, self.manifest()))
        for path, name, content in files:
            vpath = precomputed.parse_path(path)
            data = json.dumps(content, indent=1).encode()
            if vpath.is_local:
                os.makedirs(vpath.key, exist_ok=True)
                if name == "info":  # the scale's folder, where _write_row puts files
                    os.makedirs(os.path.join(vpath.key, self._scale_key), exist_ok=True)
                tmp = os.path.join(vpath.key, f".{name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(vpath.key, name))
            else:
                precomputed.write_file(vpath, name, data)

    def delete(self) -> None:
        """Remove the run's directory and everything in it."""
        vpath = precomputed.parse_path(self.path)
        self._stores.clear()
        _KEPT_ROWS.drop(self._frames_owner())
        # every reduction has finished: the records held for rows in memory may be written
        for task_id in list(self._held_keys):
            mazepa.release_record(task_id)
        self._reset_in_memory()
        if vpath.is_local:
            shutil.rmtree(vpath.key, ignore_errors=True)
            return
        if vpath.scheme == "s3":  # one listing and one request per 1000 objects
            s3_deletes.delete_prefix(vpath.location, vpath.key.rstrip("/") + "/")
            return
        import tensorstore as ts

        kvstore = ts.KvStore.open(precomputed.tensorstore_kvstore_spec(vpath)).result()
        kvstore.delete_range(ts.KvStore.KeyRange()).result()

    def delete_pieces(self, keys: list[Int3]) -> None:
        """Remove the rows of chunks ``keys`` (those missing are skipped): on S3 in one request per
        1000 rows. Local files are kept for reuse instead (see :meth:`_write_row`): moved out of
        the volume into a pool. Rows held in memory only are let go of (every reduction reading
        them has finished: the checkpoint records that waited for them are written)."""
        _KEPT_ROWS.drop(self._frames_owner(), keys)
        if self.in_memory:
            for key in keys:
                self._unwritten.discard(key)
                self._consumed.discard(key)
            self._settle(keys)
            # on object storage, only the rows written (a run resumed removes its predecessor's
            # at its end, with the whole directory)
            keys = [key for key in keys if key in self._spilled]
            if not keys:
                return
        if self._is_local:
            pool = self._pool_dir
            os.makedirs(pool, exist_ok=True)
            for key in keys:
                try:
                    os.replace(self._local_file(key), os.path.join(pool, str(self._linear(key))))
                except FileNotFoundError:
                    pass
            return
        volume = precomputed.parse_path(self.volume_path(PIECES))
        if volume.scheme == "s3":  # one request per 1000 rows
            prefix = volume.key.rstrip("/")
            s3_deletes.delete_keys(
                volume.location, [f"{prefix}/{self._chunk_key(key)}" for key in keys]
            )
            return
        kvstore = self._kvstore()
        for future in [kvstore.write(self._chunk_key(key), None) for key in keys]:  # None deletes
            future.result()

    def _linear(self, key: Int3) -> int:
        nx, ny, _ = self.grid.counts
        return key[0] + nx * (key[1] + ny * key[2])

    # --- I/O -------------------------------------------------------------------------------------
    # A chunk's row is one file: channel slowest, then its pieces (a raw chunk is its array's
    # bytes in (C, z, y, x) C-order). Local rows are written to a temporary file and renamed (a
    # reader never sees half a row) and read by byte range with plain file I/O; remote ones
    # through TensorStore's key-value store, by byte range too.
    def _chunk_key(self, key: Int3) -> str:
        k = self._linear(key)
        return f"{self._scale_key}/{precomputed.chunk_name((0, 0, k), (self.row_size, 1, k + 1))}"

    @functools.cached_property
    def _scale_key(self) -> str:
        return precomputed.scale_key(self.resolution)

    def _local_file(self, key: Int3) -> str:
        return os.path.join(self._volume_dir, self._chunk_key(key))

    @functools.cached_property
    def _volume_dir(self) -> str:
        return precomputed.parse_path(self.volume_path(PIECES)).key

    @functools.cached_property
    def _is_local(self) -> bool:
        return precomputed.parse_path(self.path).is_local

    @property
    def keeps_frames(self) -> bool:
        """Whether a reduction keeps the frames it read for the next one in this process, and a
        top-level task the row it wrote: on object storage, where a request costs more than its
        bytes, and on local storage too, where reading a row back costs a system call and a copy
        per row."""
        return True

    def _kvstore(self) -> Any:
        kvstore = self._stores.get(PIECES)
        if kvstore is None:
            import tensorstore as ts

            spec = precomputed.tensorstore_kvstore_spec(
                precomputed.parse_path(self.volume_path(PIECES))
            )
            kvstore = self._stores[PIECES] = ts.KvStore.open(spec).result()
        return kvstore

    def _write_row(self, key: Int3, row: Array) -> None:
        """Store chunk ``key``'s row (``(C, P)`` C-contiguous)."""
        if self._is_local:
            path = self._local_file(key)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            mode = "r+b" if self._take_pooled_file(tmp) else "wb"
            with open(tmp, mode) as f:
                row.tofile(f)
                if mode == "r+b":
                    f.truncate()
            os.replace(tmp, path)
            return
        self._kvstore().write(self._chunk_key(key), row.tobytes()).result()

    @functools.cached_property
    def _pool_dir(self) -> str:
        return os.path.join(self._volume_dir, RECYCLED)

    def _take_pooled_file(self, tmp: str) -> bool:
        """Move a file of the pool (rows already reduced, see :meth:`delete_pieces`) to ``tmp``;
        False if the pool is empty. Overwriting a file reuses its cached pages, where a new file
        needs fresh ones (which cost several times the copy on virtual machines that hand freed
        memory back to their host). Workers race for pooled files safely: a rename succeeds once."""
        names = self._pooled
        listed = False
        while True:
            if not names:
                if listed:  # the names listed were all taken by other writers
                    return False
                try:
                    names.extend(os.listdir(self._pool_dir))
                except FileNotFoundError:
                    return False
                listed = True
                if not names:
                    return False
            try:
                os.rename(os.path.join(self._pool_dir, names.pop()), tmp)
            except FileNotFoundError:  # taken by another writer since listed
                continue
            return True

    @functools.cached_property
    def _pooled(self) -> list[str]:
        """Names in the pool of this process's last listing not taken yet (listed again once
        they are all taken: one listing per batch of rows rather than one per row)."""
        return []

    def _read_rows(self, wanted: list[tuple[Int3, int, int]]) -> list[Array]:
        """For each ``(key, a, b)``: values ``[a, b)`` of every channel of chunk ``key``'s row,
        as a ``(C, b - a)`` array."""
        np_type = np.dtype(self.data_type)
        c, p, size = self.num_channels, self.row_size, np_type.itemsize
        for key, a, _ in wanted:
            if key in self._consumed and a < self.interior_size:
                raise RuntimeError(
                    f"intermediary chunk {self._chunk_key(key)} of {self.volume_path(PIECES)}: "
                    "its interior was kept in memory only (a run in one process) and a reduction "
                    "that succeeded reduced it already; no reduction reads it again. "
                    "Run the flow again with its checkpoint (zetta run's resume file): it "
                    "computes the chunk again"
                )
            if key in self._unwritten:
                raise AssertionError(f"the row of chunk {key}, held in memory only, is gone")
        result = []
        if self._is_local:
            for key, a, b in wanted:
                path = self._local_file(key)
                out = np.empty((c, b - a), dtype=np_type)
                try:
                    with open(path, "rb", buffering=0) as f:
                        stored = os.fstat(f.fileno()).st_size
                        if stored != c * p * size:
                            raise ValueError(
                                f"intermediary chunk {path} holds {stored} bytes, "
                                f"expected {c * p * size}"
                            )
                        for ch in range(c):
                            f.seek((ch * p + a) * size)
                            if f.readinto(memoryview(out[ch]).cast("B")) != (b - a) * size:
                                raise OSError(f"intermediary chunk {path}: short read")
                except FileNotFoundError:
                    raise FileNotFoundError(
                        f"intermediary chunk {path} is missing: its task did not complete"
                    ) from None
                result.append(out)
            return result
        kvstore = self._kvstore()
        futures = [
            [
                kvstore.read(self._chunk_key(key), byte_range=slice(lo * size, hi * size))
                for lo, hi in self._remote_ranges(a, b)
            ]
            for key, a, b in wanted
        ]
        for (key, a, b), parts in zip(wanted, futures, strict=True):
            ranges = self._remote_ranges(a, b)
            values = []
            for (lo, hi), future in zip(ranges, parts, strict=True):
                read = future.result()
                if read.state != "value" or len(read.value) != (hi - lo) * size:
                    raise FileNotFoundError(
                        f"intermediary chunk {self.volume_path(PIECES)}/{self._chunk_key(key)} "
                        "is missing or short: its task did not complete"
                    )
                values.append(np.frombuffer(read.value, dtype=np_type))
            if len(values) == c:  # one range per channel
                result.append(np.stack(values))
            else:  # one range over all channels: [a, b) of each of its rows of p values
                result.append(
                    np.lib.stride_tricks.as_strided(
                        values[0], shape=(c, b - a), strides=(p * size, size), writeable=False
                    ).copy()
                )
        return result

    def _remote_ranges(self, a: int, b: int) -> list[tuple[int, int]]:
        """The ranges of values of a stored row to request for values ``[a, b)`` of each channel:
        one request (which reads the values of the other channels in between too) when that is
        at most twice what is needed, else one per channel. A request costs far more than the
        bytes a row's frame and interior leave between channels."""
        c, p = self.num_channels, self.row_size
        if c == 1 or (c - 1) * p + (b - a) <= 2 * c * (b - a):
            return [(a, (c - 1) * p + b)]
        return [(ch * p + a, ch * p + b) for ch in range(c)]

    def write_chunk(self, key: Int3, output: Array) -> None:
        """Store the padded output of chunk ``key`` (CXYZ): its interior and its frame, one row.

        With :attr:`in_memory` (a run in one process) the row is not written: it is kept in
        memory for the reductions (see :class:`_RowCache`), and written only if let go of there
        while a reduction still needs it (:meth:`_spill`). The checkpoint record of the task
        computing it waits (``mazepa.hold_record``) until the row is written or every reduction
        reading it has finished (:meth:`delete_pieces`, :meth:`delete`): a resumed run that
        skipped the task would find no row."""
        np_type = np.dtype(self.data_type)
        if output.dtype != np_type:
            output = to_output_dtype(output, np_type, "intermediaries")
        c = self.num_channels
        row = np.empty((c, self.row_size), dtype=np_type)
        for start, stop, shape, piece in self._pack_plan:
            # x-fastest per channel: (C, z, y, x) flattened, copied once
            np.copyto(row[:, start:stop].reshape(c, *shape), output[piece].transpose(0, 3, 2, 1))
        keep = self.keeps_frames and self.run_token is not None and self.interior is not None
        if keep and self._rows_in_memory:
            task_id = mazepa.hold_record()
            if task_id is not None:
                self._holding[key] = task_id
                self._held_keys.setdefault(task_id, set()).add(key)
            self._unwritten.add(key)
            self._consumed.discard(key)
        else:
            self._write_row(key, row)
        if keep:
            # for the reduction of this chunk, when this process runs it (see _read_needs)
            _spill(
                _KEPT_ROWS.add(
                    self._frames_owner(), self, key, row, self._position, self.keep_bytes
                )
            )

    @property
    def _rows_in_memory(self) -> bool:
        """Whether rows are kept in memory only (:attr:`in_memory`, where the reductions reuse
        what they read: :meth:`_read_needs`)."""
        return (
            self.in_memory
            and self.keeps_frames
            and self.run_token is not None
            and self.interior is not None
            and self.row_size > self.interior_size
        )

    def _spill(self, key: Int3, parts: list[tuple[int, Array]]) -> None:
        """Write the row of chunk ``key`` if it is held in memory only: ``parts`` of it, let go
        of from memory, are still needed. A whole row is written as it is, and the record held
        for it may be written; a frame only (its interior reduced already) goes with zeros in
        place of the interior, which no reduction reads any more, and the record waits until
        the reductions reading the frame have finished (the one that reduced the interior may
        not be on record yet)."""
        if key not in self._unwritten or not record_holds.run_is_active(self._run):
            return  # (the run that needed it has ended)
        c, p, isz = self.num_channels, self.row_size, self.interior_size
        whole = next((v for start, v in parts if start == 0 and v.shape[1] == p), None)
        if whole is not None:
            row = whole
        else:
            frame = next((v for start, v in parts if start == isz and v.shape[1] == p - isz), None)
            if frame is None:
                raise AssertionError(f"no row or frame of chunk {key} in the parts let go of")
            row = np.zeros((c, p), dtype=frame.dtype)
            row[:, isz:] = frame
        self._write_row(key, row)
        self._unwritten.discard(key)
        self._spilled.add(key)
        if whole is not None and key not in self._consumed:
            self._settle([key])

    def _settle(self, keys: list[Int3]) -> None:
        """The rows of ``keys`` are written or no longer needed: release the checkpoint records
        of the tasks that wait for no other row."""
        for key in keys:
            task_id = self._holding.pop(key, None)
            if task_id is None:
                continue
            waiting = self._held_keys.get(task_id)
            if waiting is not None:
                waiting.discard(key)
                if not waiting:
                    del self._held_keys[task_id]
                    mazepa.release_record(task_id)

    @functools.cached_property
    def _pack_plan(self) -> list[tuple[int, int, tuple[int, int, int], tuple[slice, ...]]]:
        """Per label, in row order: where its piece lies in the row, its shape there (z, y, x)
        and its slices in a chunk's padded output (see :meth:`write_chunk`)."""
        grid = self.grid
        plan = []
        for label, start in self.offsets.items():
            t = grid.tile_shape(label)
            lo = [ax.offset_in_padded(lab) for ax, lab in zip(grid.axes, label, strict=True)]
            piece = (slice(None), *(slice(a, a + n) for a, n in zip(lo, t, strict=True)))
            plan.append((start, start + math.prod(t), (t[2], t[1], t[0]), piece))
        return plan

    def _frames_owner(self) -> tuple[str, str | None]:
        return (self.path, self.run_token)

    def _read_needs(
        self, needs: dict[Int3, tuple[bool, bool]], box: Box
    ) -> dict[Int3, list[tuple[int, Array]]]:
        """For each chunk key, whether its interior and whether its frame is needed -> the parts
        of its row at hand, as ``(start, values)`` (values ``(C, n)`` from ``start`` on).

        On object storage, where a request costs far more than its bytes, and on local storage
        too, where a read costs a system call and a copy, parts of rows that earlier reductions
        of this process read (of this execution) are taken from them instead of read again (see
        :class:`_RowCache`): the reductions next to each other read the same frames (the bands
        they share). And a chunk whose frame only is needed here, and whose
        interior a later reduction reduces (:meth:`_reduced_later`), is read whole, in the same
        request: that later reduction, when this process runs it, then reads nothing of it. So
        each row is read once in a run whose reductions follow one another; and the rows this
        process writes (:meth:`write_chunk`) are kept for its reductions too. What stays kept is
        at most :attr:`keep_bytes` (the bound of :func:`.summary.reduction_memory`), or what the
        last reduction needed."""
        isz, p = self.interior_size, self.row_size
        reuse = (
            self.keeps_frames
            and self.run_token is not None
            and self.interior is not None
            and p > isz
        )
        while self._failed_attempts:  # (appended from the write-behind thread)
            self._give_back(self._failed_attempts.pop())
        owner = self._frames_owner()
        if reuse:
            known, dropped = _KEPT_ROWS.take(owner)
        else:
            known, dropped = {}, _KEPT_ROWS.drop(owner)
        _spill(dropped)
        wanted: list[tuple[Int3, int, int]] = []
        segments: dict[Int3, list[tuple[int, Array]]] = {}
        for key, (inner, outer) in sorted(needs.items()):
            parts = known.get(key, [])
            have_in = _covering(parts, 0, isz) if inner else None
            have_out = _covering(parts, isz, p) if outer else None
            at_hand = [part for part in (have_in, have_out) if part is not None]
            if have_in is not None and have_out is not None and have_out[1] is have_in[1]:
                at_hand = [have_in]  # a whole row
            segments[key] = at_hand
            if inner and have_in is None:
                wanted.append((key, 0, p if outer and have_out is None else isz))
            elif outer and have_out is None:
                # (not an interior reduced already: reductions may run out of the order that
                # _reduced_later assumes, and a consumed interior held in memory only is gone)
                whole = (
                    reuse
                    and not inner
                    and key not in self._consumed
                    and _covering(parts, 0, isz) is None
                    and self._reduced_later(key, box)
                )
                wanted.append((key, 0 if whole else isz, p))
        try:
            read = self._read_rows(wanted)
        except BaseException:
            if reuse:  # rows held in memory only are not lost
                _spill(_KEPT_ROWS.put(owner, self, known, self._kept_budget(needs), self._position))
            raise
        for (key, a, _), values in zip(wanted, read, strict=True):
            segments[key].insert(0, (a, values))
            if reuse:
                parts = [part for part in known.get(key, []) if part[0] != a]
                known[key] = [(a, values), *parts]
        if reuse:
            kept = self._to_keep(known, set(needs), box)
            _spill(_KEPT_ROWS.put(owner, self, kept, self._kept_budget(needs), self._position))
        return segments

    @contextlib.contextmanager
    def rows_of_one_task(self) -> Iterator[None]:
        """Around a task that computes some top-level chunks and runs every reduction reading
        them (a section task, see :func:`.volumetric_apply_flow.section_waves`): their rows stay
        in memory, as in a run in one process (:attr:`in_memory`), and are written only if let
        go of while still needed. They belong to this run of the task: what an earlier run of
        it (or another task) left in this process is let go of unwritten first, and so is what
        is left when it ends (failed, its retry computes them again). No checkpoint record
        waits: the task is recorded once it has finished, reductions included."""
        owner = self._frames_owner()
        saved = self.in_memory, self._run
        _KEPT_ROWS.drop(owner)  # (not written: no reduction of this task reads them)
        self._reset_in_memory()
        self.in_memory, self._run = True, None
        try:
            yield
        finally:
            _KEPT_ROWS.drop(owner)
            self._reset_in_memory()
            self.in_memory, self._run = saved

    @contextlib.contextmanager
    def reduction_attempt(self) -> Iterator[None]:
        """Around one run of a reduction task (its :meth:`reduce_box` calls and its ``dst``
        writes). The interiors it reduces that were held in memory only (:attr:`in_memory`) are
        gone from memory once reduced; if the task fails (here, or later: a write of it that
        write-behind finishes after the task returned), they are given back to memory (or
        written, if they do not fit), so that the task's retry reduces them again."""
        if not self._rows_in_memory:
            yield
            return
        taken: dict[Int3, list[tuple[int, Array]]] = {}
        self._taken = taken
        try:
            yield
        except BaseException:
            self._give_back(taken)
            raise
        finally:
            self._taken = None
        scope = write_behind.current_scope()
        if taken and scope is not None:

            def after() -> None:  # on any thread: given back by the next read (_read_needs)
                if scope.error is not None:
                    self._failed_attempts.append(taken)

            scope.add_done_callback(after)

    def _give_back(self, taken: dict[Int3, list[tuple[int, Array]]]) -> None:
        """Rows of ``taken`` (see :meth:`reduction_attempt`) are needed again: back in memory."""
        c, p = self.num_channels, self.row_size
        for key, parts in taken.items():
            if key not in self._consumed or key not in self._unwritten:
                continue  # let go of since (its readers finished), or written
            self._consumed.discard(key)
            row = next((v for start, v in parts if start == 0 and v.shape[1] == p), None)
            if row is None:
                row = np.zeros((c, p), dtype=parts[0][1].dtype)
                for start, values in parts:
                    row[:, start : start + values.shape[1]] = values
            _spill(_KEPT_ROWS.add(self._frames_owner(), self, key, row, self._position))

    def _position(self, key: Int3) -> tuple[int, ...]:
        """Where chunk ``key`` comes in the order in which a run reduces (see
        :meth:`_reduced_later`)."""
        return tuple(key[d] for d in wave_order(self.grid.counts))

    def _reduced_later(self, key: Int3, box: Box) -> bool:
        """Whether the core of chunk ``key`` lies in a reduction chunk after ``box`` in the order
        in which a run yields them (:meth:`~.volumetric_apply_flow.Reducer.chunks`: along the
        slowest dim with more than one top-level chunk, then z, y, x)."""
        core = self.grid.core(key)
        for d in wave_order(self.grid.counts):
            if core.stop[d] <= box.start[d]:
                return False
            if core.start[d] >= box.stop[d]:
                return True
        return False

    def _to_keep(
        self, known: dict[Int3, list[tuple[int, Array]]], used: set[Int3], box: Box
    ) -> dict[Int3, list[tuple[int, Array]]]:
        """``known`` without the interiors that lie in ``box``, reduced now: no other reduction
        reads them (a whole row keeps its frame, copied, so as not to keep the interior alive)."""
        isz, p = self.interior_size, self.row_size
        kept: dict[Int3, list[tuple[int, Array]]] = {}
        for key, parts in known.items():
            if key in used and self._interior_inside(key, box):
                if key in self._unwritten:
                    self._consumed.add(key)
                    if self._taken is not None:
                        self._taken[key] = list(parts)
                frames = []
                for start, values in parts:
                    if start != 0:
                        frames.append((start, values))
                    elif values.shape[1] == p:
                        frames.append((isz, values[:, isz:].copy()))
                parts = frames
            if parts:
                kept[key] = parts
        return kept

    def _interior_inside(self, key: Int3, box: Box) -> bool:
        assert self.interior is not None
        for d, (ax, j) in enumerate(zip(self.grid.axes, key, strict=True)):
            a, b = ax.piece(j, self.interior[d])
            if a < box.start[d] or b > box.stop[d]:
                return False
        return True

    def _kept_budget(self, needs: dict[Int3, tuple[bool, bool]]) -> int:
        """Bytes kept after a reduction at most: :attr:`keep_bytes`, else the rows it needed."""
        if self.keep_bytes > 0:
            return self.keep_bytes
        return len(needs) * self.num_channels * self.row_size * np.dtype(self.data_type).itemsize

    def _unpack(self, values: Array, start: int, label: Int3) -> Array:
        """A label's piece (CXYZ) from ``values``, a chunk's row from ``start`` on (``(C, n)``)."""
        t = self.grid.tile_shape(label)
        offset = self.offsets[label] - start
        flat = values[:, offset : offset + math.prod(t)]
        return flat.reshape(self.num_channels, t[2], t[1], t[0]).transpose(0, 3, 2, 1)

    def reduce_box(self, box: Box, dtype: Any, mode: str, what: str = "reduction") -> Array:
        """The combination (``mode``: a blend profile or ``max``) of every stored piece over
        ``box``, CXYZ of type ``dtype``; voxels no piece covers (gaps) are zeros.

        Per dim, the pieces' spans clipped to ``box`` are the *cells* of that dim (the bands of two
        neighbours coincide); a 3D cell is a product of them and its pieces the products of theirs.
        All pieces are read concurrently first, then each cell is combined at once."""
        return self.reduce_strips(box, (), dtype, mode, what)[0]

    def reduce_strips(
        self, box: Box, cuts: Sequence[int], dtype: Any, mode: str, what: str = "reduction"
    ) -> list[Array]:
        """:meth:`reduce_box` of ``box``, its output cut in x at ``cuts`` (increasing, inside
        the box) into strips, each an array of its own (x-fastest: a strip one storage chunk
        wide holds each of its chunks as one block). Cells that a cut crosses are combined in
        two parts; every voxel is combined from the same pieces, in the same order."""
        grid = self.grid
        np_dtype = to_np_dtype(dtype)
        interior = self.interior
        axis_cells: list[list[tuple[tuple[int, int], list[tuple[int, int, int, Any]]]]] = []
        covered = True
        for d, ax in enumerate(grid.axes):
            lo, hi = box.start[d], box.stop[d]
            cells: dict[tuple[int, int], list[tuple[int, int, int, Any]]] = {}
            for j in ax.chunks_overlapping(lo, hi):
                for label in ax.labels:
                    a, b = ax.piece(j, label)
                    a2, b2 = max(a, lo), min(b, hi)
                    if a2 >= b2:
                        continue
                    # the weight along this dim: None (ones) or (falling, offset, length)
                    weight = (
                        (label == LABEL_C, a2 - a, b2 - a2)
                        if mode != "max" and ax.shared(j, label)
                        else None
                    )
                    cells.setdefault((a2, b2), []).append((j, label, a2 - a, weight))
            if d == 0 and cuts:
                cells = _cut_cells(cells, cuts)
            ordered = sorted(cells.items())
            covered = covered and sum(b - a for (a, b), _ in ordered) == hi - lo
            axis_cells.append(ordered)
        # what to read: per chunk, its interior, its frame, or both (a prefix, suffix or all of
        # its row)
        needs: dict[Int3, tuple[bool, bool]] = {}
        for cx, cy, cz in itertools.product(*axis_cells):
            for (jx, lx, _, _), (jy, ly, _, _), (jz, lz, _, _) in itertools.product(
                cx[1], cy[1], cz[1]
            ):
                inner, outer = needs.get((jx, jy, jz), (False, False))
                is_interior = (lx, ly, lz) == interior
                needs[jx, jy, jz] = (inner or is_interior, outer or not is_interior)
        segments = self._read_needs(needs, box)

        pieces: dict[tuple[Int3, Int3], Array] = {}

        def piece_data(key: Int3, label: Int3) -> Array:
            data = pieces.get((key, label))
            if data is None:
                offset = self.offsets[label]  # in the part at hand that starts last before it
                start, values = max(
                    (part for part in segments[key] if part[0] <= offset), key=lambda part: part[0]
                )
                data = pieces[key, label] = self._unpack(values, start, label)
            return data

        x0, y0, z0 = box.start
        edges = [x0, *cuts, box.stop[0]]
        outs = [
            empty_xfast(self.num_channels, (b - a, *box.shape[1:]), np_dtype, zero=not covered)
            for a, b in itertools.pairwise(edges)
        ]
        acc_dtype = accumulator_dtype(np_dtype)
        pads = (grid.axes[0].blend, grid.axes[1].blend, grid.axes[2].blend)
        for ((ax0, ax1), xs), ((ay0, ay1), ys), ((az0, az1), zs) in itertools.product(*axis_cells):
            nx, ny, nz = ax1 - ax0, ay1 - ay0, az1 - az0
            subs = []
            weights = []
            # summed in the original's order (see reduction.phase_order)
            for (jx, lx, ox, wx), (jy, ly, oy, wy), (jz, lz, oz, wz) in sorted(
                itertools.product(xs, ys, zs), key=_phase
            ):
                data = piece_data((jx, jy, jz), (lx, ly, lz))
                subs.append(data[:, ox : ox + nx, oy : oy + ny, oz : oz + nz])
                weights.append(
                    None
                    if wx is wy is wz is None
                    else weight_product(mode, pads, (wx, wy, wz), acc_dtype)
                )
            k = bisect.bisect_right(edges, ax0) - 1  # the strip the cell lies in
            sx = edges[k]
            dst = outs[k][:, ax0 - sx : ax1 - sx, ay0 - y0 : ay1 - y0, az0 - z0 : az1 - z0]
            combine_pieces(dst, subs, weights, mode, what)
        if mode != "max" and any(pads):
            for out in outs:
                add_zero(out)
        return outs


def _cut_cells(
    cells: dict[tuple[int, int], list[tuple[int, Any, int, Any]]], cuts: Sequence[int]
) -> dict[tuple[int, int], list[tuple[int, Any, int, Any]]]:
    """The cells of one dim (span -> its pieces: chunk, label, offset in the piece, weight
    spec) with those that ``cuts`` cross split there: each part keeps the same pieces, their
    offsets and weight specs (``(falling, offset, length)``) moved to the part."""
    result: dict[tuple[int, int], list[tuple[int, Any, int, Any]]] = {}
    for (a, b), pieces in cells.items():
        points = [a, *(c for c in cuts if a < c < b), b]
        for lo, hi in itertools.pairwise(points):
            shift = lo - a
            result[lo, hi] = [
                (
                    j,
                    label,
                    offset + shift,
                    None if weight is None else (weight[0], weight[1] + shift, hi - lo),
                )
                for j, label, offset, weight in pieces
            ]
    return result


Parts = dict[Int3, list[tuple[int, Array]]]
Dropped = list[tuple["PieceStore", Int3, list[tuple[int, Array]]]]
"""Parts of rows let go of from memory, with their store: those it holds in memory only are
written (:func:`_spill`)."""


class _RowCache:
    """The parts of rows that the reductions of this process read, and the rows its top-level
    tasks wrote, kept for the next reductions (see :meth:`PieceStore._read_needs`), with their
    store and execution, up to a budget of bytes (:attr:`PieceStore.keep_bytes`, or what the last
    reduction needed): beyond it, the frames of chunks reduced already are let go first (those
    reduced first, first), then the rows still to be reduced (those reduced last, first).

    One store's rows at a time: another store's rows replace them. Every method but
    :meth:`drop` returns what it let go of (:data:`Dropped`), for its store to write what it
    holds in memory only (:meth:`PieceStore._spill`)."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Hold nothing, let go of nothing (in a forked child: the rows are its parent's)."""
        self._lock = threading.Lock()
        self._owner: tuple[str, str | None] | None = None
        self._store: PieceStore | None = None
        self._rows: Parts = {}
        self._budget = 0

    def _let_go(self, keep: Parts | None = None) -> Dropped:
        """(Under the lock.) The rows held now, less the keys of ``keep``, as let go of."""
        store = self._store
        if store is None:
            return []
        return [(store, k, parts) for k, parts in self._rows.items() if not keep or k not in keep]

    def take(self, owner: tuple[str, str | None]) -> tuple[Parts, Dropped]:
        """The parts kept for ``owner`` (the cache is empty until :meth:`put`), and another
        owner's, let go of."""
        with self._lock:
            if self._owner == owner:
                rows, dropped = self._rows, []
            else:
                rows, dropped = {}, self._let_go()
            self._owner, self._store, self._rows = None, None, {}
        return rows, dropped

    def put(
        self,
        owner: tuple[str, str | None],
        store: PieceStore,
        rows: Parts,
        budget: int,
        position: Callable[[Int3], tuple[int, ...]],
    ) -> Dropped:
        """Keep ``rows`` for ``owner`` (of ``store``), as many as fit in ``budget`` bytes (the
        budget of :meth:`add` too); ``position``: a chunk's place in the order of the
        reductions."""
        with self._lock:
            dropped = self._let_go(rows)
            kept, trimmed = _trimmed(rows, budget, position)
            self._owner, self._store, self._rows, self._budget = owner, store, kept, budget
        return dropped + [(store, k, parts) for k, parts in trimmed.items()]

    def add(
        self,
        owner: tuple[str, str | None],
        store: PieceStore,
        key: Int3,
        row: Array,
        position: Callable[[Int3], tuple[int, ...]],
        budget: int = 0,
    ) -> Dropped:
        """Keep the whole row ``row`` of chunk ``key`` too, if it fits in ``budget`` bytes (0:
        the budget of the last :meth:`put` of ``owner``; nothing is kept then for an owner before
        its first reduction)."""
        with self._lock:
            dropped: Dropped = []
            if self._owner != owner:
                if budget <= 0:
                    return [(store, key, [(0, row)])]
                dropped = self._let_go()
                self._owner, self._store, self._rows = owner, store, {}
            self._budget = budget if budget > 0 else self._budget
            rows = dict(self._rows)
            rows[key] = [(0, row)]
            self._rows, trimmed = _trimmed(rows, self._budget, position)
        return dropped + [(store, k, parts) for k, parts in trimmed.items()]

    def drop(self, owner: tuple[str, str | None], keys: list[Int3] | None = None) -> Dropped:
        """Let go of ``owner``'s rows ``keys`` (all of them: None), e.g. once deleted."""
        with self._lock:
            if self._owner != owner:
                return []
            if keys is None:
                dropped = self._let_go()
                self._owner, self._store, self._rows = None, None, {}
                return dropped
            assert self._store is not None
            return [(self._store, key, self._rows.pop(key)) for key in keys if key in self._rows]


def _trimmed(
    rows: Parts, budget: int, position: Callable[[Int3], tuple[int, ...]]
) -> tuple[Parts, Parts]:
    """``rows`` less those let go of first (see :class:`_RowCache`) beyond ``budget`` bytes, and
    those."""
    total = sum(values.nbytes for parts in rows.values() for _, values in parts)
    if total <= budget:
        return rows, {}
    framed = {k for k, parts in rows.items() if all(start > 0 for start, _ in parts)}
    frames = sorted(framed, key=position)
    pending = sorted((k for k in rows if k not in framed), key=position, reverse=True)
    rows = dict(rows)
    trimmed: Parts = {}
    for key in frames + pending:
        if total <= budget:
            break
        parts = trimmed[key] = rows.pop(key)
        total -= sum(values.nbytes for _, values in parts)
    return rows, trimmed


def _spill(dropped: Dropped) -> None:
    """Write the rows let go of that their stores hold in memory only."""
    for store, key, parts in dropped:
        store._spill(key, parts)  # pylint: disable=protected-access


_KEPT_ROWS = _RowCache()
# a forked child starts with none: its parent's rows are its parent's to write
os.register_at_fork(after_in_child=_KEPT_ROWS.forget)


def _covering(parts: list[tuple[int, Array]], a: int, b: int) -> tuple[int, Array] | None:
    """The part of ``parts`` (``(start, values)``) holding values ``[a, b)`` of a row."""
    for start, values in parts:
        if start <= a and b <= start + values.shape[1]:
            return start, values
    return None


def wave_order(counts: Int3) -> list[int]:
    """The dims from slowest to fastest in which a run yields its reduction chunks: the slowest
    dim with more than one top-level chunk (the waves' axis), then the others z, y, x."""
    axis = next((d for d in (2, 1, 0) if counts[d] > 1), 2)
    return [axis] + [d for d in (2, 1, 0) if d != axis]


def _phase(piece: tuple[tuple[int, Any, Any, Any], ...]) -> tuple[int, ...]:
    return phase_order((piece[0][0], piece[1][0], piece[2][0]))


@functools.lru_cache(maxsize=8)
def ramp_cache(mode: str) -> RampCache:
    """The blend ramps of ``mode``, computed once per process."""
    return RampCache(mode if mode != "max" else "quadratic")


@functools.lru_cache(maxsize=4096)
def weight_product(mode: str, pads: Int3, specs: tuple[Any, Any, Any], dtype: np.dtype) -> Weights:
    """The weights over a piece's part: per dim ``None`` (ones) or ``(falling, offset, length)``
    of the dim's ramp (of half-width ``pads[d]``)."""
    ramps = ramp_cache(mode)
    per_dim = [
        None if spec is None else ramps.ramp(pads[d], spec[0]) for d, spec in enumerate(specs)
    ]
    offsets = [0 if spec is None else spec[1] for spec in specs]
    lengths = [0 if spec is None else spec[2] for spec in specs]
    return Weights.of(per_dim, offsets, lengths, dtype)


def stored_data_type(backend: Any) -> str:
    """The precomputed data type that holds what ``backend`` reads back."""
    data_type = getattr(backend, "data_type", None)
    if isinstance(data_type, str):
        return data_type
    dtype = backend.dtype
    mapping: Mapping[torch.dtype, str] = {
        torch.uint8: "uint8",
        torch.int8: "int8",
        torch.int16: "int16",
        torch.int32: "int32",
        torch.int64: "uint64",  # precomputed has no int64; see the note in the flow's docstring
        torch.float32: "float32",
        torch.float64: "float32",
        torch.float16: "float32",
        torch.bool: "uint8",
    }
    if dtype not in mapping:
        raise ValueError(f"cannot store intermediaries of type {dtype} (the destination's)")
    return mapping[dtype]
