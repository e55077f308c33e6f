"""The execution plan of a subchunkable run, and the tasks and flow that carry it out.

A :class:`SubchunkablePlan` is the fully validated, normalised form of the arguments of
``build_subchunkable_apply_flow``; it holds everything a worker needs. The flow has at most two
stages, like daisy's blocks, each task a *read region* and a *write region*:

1. **Top-level tasks**, one per top-level chunk (with one level, a stack of ``task_stack_size``
   of them; ``task_stack_size`` runs the bottom-level chunks through the function in stacks). A
   task computes the chunk's padded output (its core grown by the top blend pad) by running the
   lower levels itself: the chunk's processing region (grown by the top crop pad) is split into
   the next level's chunks, each computed (recursively; the bottom level runs the operation with
   its crop pad) and blended in memory into the padded output. Inputs are read once per chunk of
   the level ``allow_cache_up_to_level`` names. The task then writes its output

   * straight to ``dst`` when top-level outputs neither overlap nor miss ``dst``'s chunk grid
     (``direct``), or when ``skip_intermediaries`` (then each bottom chunk is written by the
     operation itself, ``skip``);
   * otherwise into the intermediaries (``pieces``): its interior and its frame, one file (see
     :mod:`.intermediaries`); in a run that stays in one process (``num_procs=1``), one row in
     memory instead, written only if it must leave memory before its reductions ran (unless
     ``keep_intermediaries``: then every row is written).

2. **Reduction tasks** (``pieces`` only), one per reduction chunk: a box of whole ``dst``
   backend chunks (at most ``max_reduction_chunk_size``). A reduction task waits only for the
   top-level tasks whose outputs it reads, so reductions run while later top-level chunks are
   computed (:func:`pipelined_tasks`). Each reads the
   stored outputs overlapping its box, blends them (weights summing to 1 at every voxel) and writes
   the ``dst`` chunks that its part of the region meets, and no others: always, even when all
   zeros, so no stale data survive. Where a ``dst`` chunk sticks out of the region (or covers a
   ``processing_gap``), only its voxels inside the region are merged into what storage holds, by
   a write that cannot erase another flow's voxels merged into the same chunk at the same time
   (:mod:`.edge_writes`). Each ``dst`` chunk belongs to exactly one reduction task of a run.

**Section tasks** (``pieces`` with several processes, :func:`section_waves`). The top-level keys
go in *waves*, the slices of their grid along its slowest dim with more than one chunk (for a
2D flow, one z section each). When no reduction chunk reads two waves (no blend pad along the
waves' axis, reduction chunks one wave thick: the guide's flow (c)), the run, if not wholly in
one process (``mazepa.single_process()`` False: ``num_procs`` > 1, queue workers, any
``executor``), has one task per wave instead of the two stages: it computes the wave's top-level
chunks and runs the reductions of its region as it goes (each once what it reads is computed, in
the order of the reduction tasks), with the same code, its rows in memory as in a run in one
process (written only if let go of from memory while still needed), and deletes what it wrote.
No other task reads its rows, so nothing crosses processes: a task that fails (or a worker
killed) runs again whole, and its checkpoint record is written once it has finished, writes
included. Kept apart, as before: the intermediaries kept (``keep_intermediaries``), a deferred
reduction, ``task_stack_size`` > 1, different worker types for the two stages, fewer than
:data:`SECTION_MIN_WAVES` waves, or waves of more than :data:`SECTION_MAX_VOXELS` voxels (one
task's work, done again if it fails). ``ZETTA_SECTION_TASKS=0`` turns section tasks off.
Progress calls them "<operation> + reduction".

The pieces that no later reduction reads are deleted as soon as the reductions reading them have
finished, so that the run recycles their pages instead of growing by the size of all of them
(local files are not even deleted: later pieces overwrite them, see
:meth:`.intermediaries.PieceStore.delete_pieces`); the rest of the intermediaries goes at the end
(all of it is kept with ``keep_intermediaries``). Every task is idempotent: running it twice writes
the same bytes, and a task's bytes do not depend on the executor. (A reduction delivered again
after its pieces are gone fails before writing anything; its first run has completed it.)

Memory of a worker: the top-level chunk's prefetched input, its padded output, one lower-level
chunk output at a time and, when a lower level blends, float buffers for its blended bands.
Lower levels run one chunk after another inside the task; parallelism comes from running
top-level tasks in several processes or workers.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import torch

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex, read_ahead
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.raw_chunks import handing_over
from zetta_utils.layer.volumetric.read_ahead import Call as ReadAheadCall

from .chunk_grid import Box, ChunkGrid, Int3, core_spans, grid_spans
from .chunk_numbering import ChunkNumbering
from .edge_writes import merge_into
from .intermediaries import PieceStore
from .layer_wrappers import (
    CaptureBackend,
    ClipWritesBackend,
    PrefetchedKwargs,
    capture_layer,
    fast_source,
    merges_concurrent_reads,
    prefetch_ahead,
    prefetch_layer,
    prefetch_layer_voxels,
    read_fast,
)
from .reduction import (
    Array,
    CellCombiner,
    LevelSchedule,
    as_array,
    copy_xfast,
    empty_xfast,
    level_schedule,
    to_output_dtype,
)
from .volumetric_callable_operation import VolumetricCallableOperation, is_layer

TopMode = Literal["skip", "direct", "pieces"]

_TASK_BATCH = 1000


_NO_FAST: dict[str, tuple[Any, Box]] = {}

READ_AHEAD_STEPS = 3
"""The most top-level chunks a section task reads ahead of the one it computes (measured on raw
S3 at 20 ms: 3 took a section task 1.4x less time than 1, 5 no less than 3)."""
READ_AHEAD_STEPS_BYTES = 64 * 2**20
"""The most bytes of input those reads may hold (fewer chunks where their inputs are larger)."""


def _add(a: Sequence[int], b: Sequence[int]) -> Int3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


@attrs.frozen(eq=False)
class SubchunkablePlan:
    """Everything a subchunkable run needs, validated (see the module docstring).

    Levels are indexed top-down here: 0 is the largest. ``region`` is the output region in voxels
    at ``dst_resolution``; the top level's chunks tile ``region`` grown by ``roi_crop_pad``.
    """

    op: Any
    op_args: tuple[Any, ...]
    op_kwargs: Mapping[str, Any]
    op_name: str
    dst: VolumetricLayer | None
    dst_resolution: Vec3D[float]
    input_resolution: Vec3D[float]
    region: Box
    roi_crop_pad: Int3
    chunk_sizes: tuple[Int3, ...]
    crop_pads: tuple[Int3, ...]
    blend_pads: tuple[Int3, ...]
    blend_modes: tuple[str, ...]
    gap: Int3
    top_mode: TopMode
    dst_bounds: Box | None
    num_channels: int
    dtype: torch.dtype
    store: PieceStore | None
    reduction_chunk: Int3 | None
    prefetch_level: int | None
    plan_id: str
    keep_intermediaries: bool = False
    op_worker_type: str | None = None
    reduction_worker_type: str | None = None
    task_stack_size: int = 1
    task_name: str | None = None
    processing_box: Box | None = None
    bottom_stack: int = 1
    read_scope: str | None = None
    """A token naming one execution of the flow (:func:`with_read_scope`): its inputs that it
    does not write are read through caches valid for that execution only."""

    @property
    def num_levels(self) -> int:
        return len(self.chunk_sizes)

    @property
    def processing_region(self) -> Box:
        """What the top-level chunks tile: ``region`` grown by ``roi_crop_pad``, or, with
        ``exact_bbox_output``, the grown region while only ``region`` is written."""
        if self.processing_box is not None:
            return self.processing_box
        return self.region.padded(self.roi_crop_pad)

    @functools.cached_property
    def top_grid(self) -> ChunkGrid:
        return ChunkGrid.over(
            self.processing_region, self.chunk_sizes[0], self.blend_pads[0], self.gap
        )

    @functools.cached_property
    def op_crop_pad(self) -> Int3:
        """The crop pad of a :class:`VolumetricCallableOperation` ``op``, as plain ints."""
        x, y, z = self.op.crop_pad
        return (int(x), int(y), int(z))

    @functools.cached_property
    def numbering(self) -> ChunkNumbering:
        """The ``chunk_id`` of each chunk (see :mod:`.chunk_numbering`)."""
        return ChunkNumbering.of(
            self.top_grid.counts,
            self.chunk_sizes,
            self.crop_pads,
            self.blend_pads,
            self.roi_crop_pad,
        )

    def _index(self, box: Box, chunk_id: int) -> VolumetricIndex:
        resolution = self.dst_resolution
        bbox = BBox3D.from_coords(box.start, box.stop, resolution)
        return VolumetricIndex(resolution=resolution, bbox=bbox, chunk_id=chunk_id)

    @property
    def deferred(self) -> bool:
        return self.blend_modes[0] == "defer"

    def mazepa_id_components(self) -> str:
        return self.plan_id

    # --- geometry ------------------------------------------------------------------------------
    def input_context(self, level: int) -> Int3:
        """Voxels of input needed around a level's chunk output box to compute it."""
        ctx = self.crop_pads[-1]
        for i in range(self.num_levels - 2, level - 1, -1):
            ctx = _add(_add(self.crop_pads[i], self.blend_pads[i + 1]), ctx)
        return ctx

    def level_grid(self, level: int, out_box: Box) -> ChunkGrid:
        """The chunks of ``level`` (>= 1) computing the padded output ``out_box`` of a chunk of
        the level above."""
        region = out_box.padded(self.crop_pads[level - 1])
        return ChunkGrid.over(region, self.chunk_sizes[level], self.blend_pads[level])

    # --- inputs --------------------------------------------------------------------------------
    def prefetched(self, kwargs: Mapping[str, Any], out_box: Box, level: int) -> dict[str, Any]:
        """``kwargs`` with its layers reading the input of the chunk ``out_box`` of ``level``
        once, from memory."""
        read, reuse = self._prefetch_region(out_box, level)
        result = PrefetchedKwargs()
        for k, v in kwargs.items():
            if isinstance(v, VolumetricLayer):
                scope = self.input_read_scope(v)
                if isinstance(read, Box):
                    assert isinstance(reuse, Box)
                    v = prefetch_layer_voxels(v, self.input_resolution, read, reuse, scope)
                else:
                    assert isinstance(reuse, BBox3D)
                    v = prefetch_layer(v, self.input_resolution, read, reuse, scope)
                fast = fast_source(v, self.dst_resolution)
                if fast is not None:
                    result.fast[k] = fast
            result[k] = v
        return result

    def _prefetch_region(self, out_box: Box, level: int) -> tuple[Box | BBox3D, Box | BBox3D]:
        """What :meth:`prefetched` reads of each input for the chunk ``out_box`` of ``level``,
        and the region whose storage chunks later prefetches come back to: voxels at
        :attr:`input_resolution` when it is ``dst_resolution``, else ``BBox3D``s."""
        read_box = out_box.padded(self.input_context(level))
        # Chunks go x fastest: the storage chunks under this chunk's row of the region are read
        # again by the next row's chunks, and the prefetch cache is sized to hold them.
        region = self.processing_region.padded(_add(self.blend_pads[0], self.input_context(level)))
        row = Box((region.start[0], *read_box.start[1:]), (region.stop[0], *read_box.stop[1:]))
        if self.input_resolution == self.dst_resolution:
            return read_box, row
        return read_box.to_index(self.dst_resolution).bbox, row.to_index(self.dst_resolution).bbox

    def _top_prefetch_box(self, key: Int3) -> Box:
        """The box whose input a top-level chunk prefetches (see :meth:`process_top_chunk`)."""
        grid = self.top_grid
        return grid.core(key) if self.top_mode == "skip" else grid.padded(key)

    def input_read_scope(self, layer: VolumetricLayer) -> str | None:
        """:attr:`read_scope` for an input ``layer`` this run only reads: the operation is a
        function of its inputs (the run does every write) and ``layer`` is neither ``dst`` nor
        in the intermediaries. None otherwise (its cached chunks are revalidated on each read)."""
        if self.read_scope is None or not isinstance(self.op, VolumetricCallableOperation):
            return None
        path = getattr(layer.backend, "path", None)
        if not isinstance(path, str):
            return None
        written: list[Any] = [self.store.path] if self.store is not None else []
        if self.dst is not None:
            written.append(getattr(self.dst.backend, "path", None))
        inside = [
            w
            for w in written
            if isinstance(w, str) and (path + "/").startswith(w.rstrip("/") + "/")
        ]
        return None if inside else self.read_scope

    @functools.cached_property
    def read_ahead_layers(self) -> tuple[VolumetricLayer, ...]:
        """The inputs whose reads a task's top-level chunks start ahead (:meth:`read_ahead`),
        layers the run only reads that :mod:`zetta_utils.layer.volumetric.read_ahead` takes
        (remote ones): where the top level's chunks read their inputs once into memory
        (``prefetch_level`` 0: flow (c)), that read; else with one level whose chunks read their
        own inputs (no stacks, nothing prefetched: flow (a)), their reads. Per process."""
        op = self.op
        if not isinstance(op, VolumetricCallableOperation) or self.read_scope is None:
            return ()
        if self.prefetch_level == 0:
            return tuple(
                v
                for v in self.op_kwargs.values()
                if isinstance(v, VolumetricLayer)
                and self.input_read_scope(v) is not None
                and read_ahead.reads_backend_ahead(v.backend)
            )
        if (
            self.num_levels != 1
            or self.prefetch_level is not None
            or self.bottom_stack != 1
            or (self.top_mode != "skip" and self.input_resolution != self.dst_resolution)
        ):
            return ()
        return tuple(
            v
            for v in self.op_kwargs.values()
            if isinstance(v, VolumetricLayer)
            and self.input_read_scope(v) is not None
            and read_ahead.reads_ahead(v)
        )

    @functools.cached_property
    def read_ahead_steps(self) -> int:
        """How many top-level chunks a task going through several (a section task) reads ahead
        of the one it computes, where the top level reads its inputs once (0: none): reads in
        flight at once fetch the storage chunks they share once through TensorStore's cache, and
        top-level chunks computing faster than a round trip wait less for each with more in
        flight (at most :data:`READ_AHEAD_STEPS`, and :data:`READ_AHEAD_STEPS_BYTES` of inputs);
        one through CloudVolume's, whose reads sharing storage chunks go one after another."""
        layers = self.read_ahead_layers
        if not layers or self.prefetch_level != 0:
            return 0
        if not all(merges_concurrent_reads(v.backend) for v in layers):
            return 1
        grid = self.top_grid
        read_box = grid.padded((0, 0, 0)).padded(self.input_context(0))
        chunk_bytes = read_box.size() * sum(_voxel_bytes(v) for v in layers)
        return max(1, min(READ_AHEAD_STEPS, READ_AHEAD_STEPS_BYTES // max(1, chunk_bytes)))

    def read_ahead(self, keys: Sequence[Int3], in_task: bool = False, steps: int = 2) -> None:
        """Start reading the inputs (:attr:`read_ahead_layers`) of the top-level chunks ``keys``
        (a task about to run) ahead; with ``in_task``, the next chunks of the task running, as
        one step of it (at most ``steps`` held)."""
        layers = self.read_ahead_layers
        if not layers:
            return
        start: Callable[[Any], int] = read_ahead.start
        if in_task:
            start = functools.partial(read_ahead.start_in_task, steps=steps)
        if self.prefetch_level == 0:
            start(self._prefetch_reads(keys, layers))
            return
        op = self.op
        grid = self.top_grid
        indices: list[VolumetricIndex] = []
        for key in keys:
            if self.top_mode == "skip":
                idx = self._index(grid.core(key), self.numbering.chunk_id(0, key))
                if any(op.crop_pad):
                    idx = idx.padded(op.crop_pad)
                if op.changes_resolution:
                    idx = idx.with_resolution(op.get_input_resolution(idx.resolution))
            else:  # (run_op's read_fast)
                idx = grid.padded(key).padded(self.op_crop_pad).to_index(self.dst_resolution)
            indices.append(idx)
        start((layer, idx) for idx in indices for layer in layers)

    def _prefetch_reads(
        self, keys: Sequence[Int3], layers: Sequence[VolumetricLayer]
    ) -> list[ReadAheadCall]:
        """The reads of :meth:`prefetched` for the top-level chunks ``keys``, of ``layers``."""
        calls = []
        for key in keys:
            read, reuse = self._prefetch_region(self._top_prefetch_box(key), 0)
            for layer in layers:
                call = prefetch_ahead(
                    layer, self.input_resolution, read, reuse, self.input_read_scope(layer)
                )
                if call is not None:
                    calls.append(call)
        return calls

    def _kwargs_for(self, kwargs: Mapping[str, Any], out_box: Box, level: int) -> Mapping[str, Any]:
        if self.prefetch_level == level:
            return self.prefetched(kwargs, out_box, level)
        return kwargs

    # --- computing chunk outputs ---------------------------------------------------------------
    def _read_input(self, layer: Any, read_box: Box) -> Any:
        """An input of a :class:`VolumetricCallableOperation` over ``read_box`` (voxels at
        ``dst_resolution``), read at its input resolution (``res_change_mult``)."""
        if self.input_resolution == self.dst_resolution:
            return read_fast(layer, read_box, self.dst_resolution)
        return layer[read_box.to_index(self.dst_resolution).with_resolution(self.input_resolution)]

    def _op_inputs(
        self, out_box: Box, kwargs: Mapping[str, Any]
    ) -> tuple[Box, dict[str, Any], set[str]]:
        """What a :class:`VolumetricCallableOperation` reads for the padded bottom chunk
        ``out_box``: the box read (``out_box`` grown by its crop pad), its arguments, and the
        names of those read from layers."""
        cx, cy, cz = self.op_crop_pad
        (x0, y0, z0), (x1, y1, z1) = out_box
        x0, y0, z0, x1, y1, z1 = x0 - cx, y0 - cy, z0 - cz, x1 + cx, y1 + cy, z1 + cz
        read_box = Box((x0, y0, z0), (x1, y1, z1))
        fast = kwargs.fast if isinstance(kwargs, PrefetchedKwargs) else _NO_FAST
        inputs = {}
        read: set[str] = set()
        for k, v in kwargs.items():
            source = fast.get(k)
            if source is not None:
                array, ((a, b, c), (d, e, f)) = source
                if a <= x0 and b <= y0 and c <= z0 and x1 <= d and y1 <= e and z1 <= f:
                    # a copy: the function may change its input in place
                    inputs[k] = torch.from_numpy(
                        copy_xfast(array[:, x0 - a : x1 - a, y0 - b : y1 - b, z0 - c : z1 - c])
                    )
                    read.add(k)
                    continue
            if is_layer(v):
                inputs[k] = self._read_input(v, read_box)
                read.add(k)
            else:
                inputs[k] = v
        return read_box, inputs, read

    def _cropped(self, result: Array) -> Array:
        cx, cy, cz = self.op_crop_pad
        if cx or cy or cz:
            return result[
                :, cx : result.shape[1] - cx, cy : result.shape[2] - cy, cz : result.shape[3] - cz
            ]
        return result

    def run_op(self, out_box: Box, kwargs: Mapping[str, Any], chunk_id: int = 0) -> Array:
        """The bottom level: the operation's output for ``out_box`` (a padded bottom chunk, the
        chunk ``chunk_id``)."""
        op = self.op
        if isinstance(op, VolumetricCallableOperation):
            read_box, inputs, _ = self._op_inputs(out_box, kwargs)
            return self._cropped(as_array(op.compute_padded(read_box.shape, self.op_args, inputs)))
        capture = CaptureBackend(
            out_box, self.dst_resolution, self.num_channels, self.dtype, self.op_name
        )
        op(self._index(out_box, chunk_id), capture_layer(capture), *self.op_args, **kwargs)
        return as_array(capture.result())

    def _all_prefetched(self, kwargs: Mapping[str, Any]) -> dict[str, tuple[Array, Box]] | None:
        """The prefetched data of ``kwargs`` when the operation is a
        :class:`VolumetricCallableOperation` and every layer argument has some; else None."""
        if not isinstance(self.op, VolumetricCallableOperation) or not isinstance(
            kwargs, PrefetchedKwargs
        ):
            return None
        fast = kwargs.fast
        if not fast or any(k not in fast and is_layer(v) for k, v in kwargs.items()):
            return None
        return fast

    def sliced_run_op(self, kwargs: Mapping[str, Any]) -> Callable[[Box, int], Array] | None:
        """:meth:`run_op` for the bottom level's chunks under one prefetched chunk, as a function
        of ``(out_box, chunk_id)``; None unless the operation is a
        :class:`VolumetricCallableOperation` whose layer arguments all slice their prefetched
        data. Per chunk it does what :meth:`run_op` does (a copy of each input, the function,
        its checks, the crop), less the per-chunk lookups; a chunk reading outside the
        prefetched data goes through :meth:`run_op`."""
        op = self.op
        fast = self._all_prefetched(kwargs)
        if fast is None or not isinstance(op, VolumetricCallableOperation):
            return None
        # in the order of kwargs: (name, prefetched array and its box, or None and the value)
        items = [(k, fast.get(k), v) for k, v in kwargs.items()]
        cx, cy, cz = self.op_crop_pad
        args = self.op_args
        compute_padded = op.compute_padded
        cropped = self._cropped
        run_op = self.run_op

        def run(out_box: Box, chunk_id: int) -> Array:
            (x0, y0, z0), (x1, y1, z1) = out_box
            x0, y0, z0, x1, y1, z1 = x0 - cx, y0 - cy, z0 - cz, x1 + cx, y1 + cy, z1 + cz
            inputs = {}
            for k, source, value in items:
                if source is None:
                    inputs[k] = value
                    continue
                array, ((a, b, c), (d, e, f)) = source
                if not (a <= x0 and b <= y0 and c <= z0 and x1 <= d and y1 <= e and z1 <= f):
                    return run_op(out_box, kwargs, chunk_id)
                # a copy: the function may change its input in place
                inputs[k] = torch.from_numpy(
                    copy_xfast(array[:, x0 - a : x1 - a, y0 - b : y1 - b, z0 - c : z1 - c])
                )
            shape = (x1 - x0, y1 - y0, z1 - z0)
            return cropped(as_array(compute_padded(shape, args, inputs)))

        return run

    def bottom_outputs(
        self, kwargs: Mapping[str, Any], out_box: Box, schedule: LevelSchedule
    ) -> Iterator[Array] | None:
        """The outputs, *not cropped*, of the bottom level's chunks combined by ``schedule`` into
        the padded output ``out_box`` of a chunk above, in its order, when every one of them
        reads all its layers from prefetched data (:meth:`sliced_run_op`); else None. Per chunk:
        a copy of each input, the function and its checks; the geometry is worked out once per
        parent chunk, and the crop is left to the schedule (no view per chunk)."""
        op = self.op
        fast = self._all_prefetched(kwargs)
        if fast is None or not isinstance(op, VolumetricCallableOperation):
            return None
        cx, cy, cz = self.op_crop_pad
        sx, sy, sz = schedule.padded
        nx, ny, nz = sx + 2 * cx, sy + 2 * cy, sz + 2 * cz
        x0, y0, z0 = out_box.start
        starts = schedule.starts
        if not starts:
            return iter(())
        # the box every chunk's input lies in
        lo = [min(s[d] for s in starts) for d in range(3)]
        hi = [max(s[d] for s in starts) for d in range(3)]
        ux0, uy0, uz0 = x0 + lo[0] - cx, y0 + lo[1] - cy, z0 + lo[2] - cz
        ux1, uy1, uz1 = x0 + hi[0] + sx + cx, y0 + hi[1] + sy + cy, z0 + hi[2] + sz + cz
        # in the order of kwargs: (name, prefetched array or None, where the parent's padded
        # box less the crop starts in it, or the value)
        items: list[tuple[str, Array | None, Any]] = []
        for k, v in kwargs.items():
            source = fast.get(k)
            if source is None:
                items.append((k, None, v))
                continue
            array, ((a, b, c), (d, e, f)) = source
            if not (a <= ux0 and b <= uy0 and c <= uz0 and ux1 <= d and uy1 <= e and uz1 <= f):
                return None
            items.append((k, array, (x0 - cx - a, y0 - cy - b, z0 - cz - c)))
        args = self.op_args
        compute_padded = op.compute_padded
        shape = (nx, ny, nz)
        num_channels = self.num_channels
        what = self.op_name

        empty, from_numpy, copyto = np.empty, torch.from_numpy, np.copyto

        def outputs() -> Iterator[Array]:
            for ox, oy, oz in starts:
                inputs = {}
                for k, array, at in items:
                    if array is None:
                        inputs[k] = at
                        continue
                    px, py, pz = at[0] + ox, at[1] + oy, at[2] + oz
                    # a copy (x fastest, as copy_xfast): the function may change its input in
                    # place
                    copy = empty((array.shape[0], nz, ny, nx), array.dtype).transpose(0, 3, 2, 1)
                    copyto(copy, array[:, px : px + nx, py : py + ny, pz : pz + nz])
                    inputs[k] = from_numpy(copy)
                data = as_array(compute_padded(shape, args, inputs))
                if data.shape[0] != num_channels:
                    raise ValueError(
                        f"{what} (level {self.num_levels - 1}): its output has {data.shape[0]} "
                        f"channels, dst has {num_channels}"
                    )
                yield data

        return outputs()

    # --- task_stack_size: the bottom level's chunks through one call of the function -------------
    def _stacked_inputs(
        self, boxes: Sequence[Box], kwargs: Mapping[str, Any]
    ) -> tuple[Box, dict[str, Any]]:
        """The inputs of ``fn`` for the padded bottom chunks ``boxes`` (all of one shape), those
        read from layers stacked along a new first dim."""
        per_chunk = [self._op_inputs(box, kwargs) for box in boxes]
        read_box, first, read = per_chunk[0]
        stacked = dict(first)
        for k in read:
            stacked[k] = torch.stack([torch.as_tensor(inputs[k]) for _, inputs, _ in per_chunk])
        return read_box, stacked

    def _stackable_outputs(
        self, boxes: Sequence[Box], kwargs: Mapping[str, Any], chunk_ids: Sequence[int], dst: Any
    ) -> list[Array] | None:
        """An ``op`` with the original's stackable methods: ``read`` each chunk, one
        ``processing_fn`` call on the stacked data, ``write`` each chunk (into ``dst``, or
        captured when ``dst`` is "capture": the outputs are returned)."""
        op = self.op
        indices = [self._index(box, cid) for box, cid in zip(boxes, chunk_ids, strict=True)]
        data = [op.read(idx, *self.op_args, use_semaphore=False, **kwargs) for idx in indices]
        stacked = {k: _stack([d[k] for d in data], k, self.op_name) for k in data[0]}
        result = op.processing_fn(**stacked)
        outputs: list[Array] = []
        for i, (box, idx) in enumerate(zip(boxes, indices, strict=True)):
            if dst == "capture":
                capture = CaptureBackend(
                    box, self.dst_resolution, self.num_channels, self.dtype, self.op_name
                )
                op.write(
                    idx,
                    capture_layer(capture),
                    result[i],
                    *self.op_args,
                    use_semaphore=False,
                    **kwargs,
                )
                outputs.append(as_array(capture.result()))
            else:
                op.write(idx, dst, result[i], *self.op_args, use_semaphore=False, **kwargs)
        return outputs if dst == "capture" else None

    def run_ops(
        self, boxes: Sequence[Box], kwargs: Mapping[str, Any], chunk_ids: Sequence[int]
    ) -> list[Array]:
        """:meth:`run_op` for several padded bottom chunks, computed by one call of the function
        on their stacked inputs (``task_stack_size``)."""
        if len(boxes) == 1:
            return [self.run_op(boxes[0], kwargs, chunk_ids[0])]
        op = self.op
        if isinstance(op, VolumetricCallableOperation):
            read_box, inputs = self._stacked_inputs(boxes, kwargs)
            result = op.compute_stacked(read_box.shape, len(boxes), self.op_args, inputs)
            return [self._cropped(as_array(result[i])) for i in range(len(boxes))]
        outputs = self._stackable_outputs(boxes, kwargs, chunk_ids, "capture")
        assert outputs is not None
        return outputs

    def run_direct_stacked(
        self, cores: Sequence[Box], kwargs: Mapping[str, Any], dst: Any, chunk_ids: Sequence[int]
    ) -> None:
        """``skip_intermediaries``: bottom chunks ``cores`` computed by one call of the function
        and written by the operation (``task_stack_size``)."""
        op = self.op
        if len(cores) == 1:
            op(self._index(cores[0], chunk_ids[0]), dst, *self.op_args, **kwargs)
        elif isinstance(op, VolumetricCallableOperation):
            read_box, inputs = self._stacked_inputs(cores, kwargs)
            if dst is None:
                op.call_fn(self.op_args, inputs)
                return
            result = op.compute_stacked(read_box.shape, len(cores), self.op_args, inputs)
            for i, core in enumerate(cores):
                dst[core.to_index(self.dst_resolution)] = torch.from_numpy(
                    self._cropped(as_array(result[i]))
                )
        else:
            self._stackable_outputs(cores, kwargs, chunk_ids, dst)

    def chunk_output(
        self, level: int, out_box: Box, kwargs: Mapping[str, Any], chunk_id: int = 0
    ) -> Array:
        """The output of the ``level`` chunk whose padded box is ``out_box`` (the chunk
        ``chunk_id``)."""
        kwargs = self._kwargs_for(kwargs, out_box, level)
        if level == self.num_levels - 1:
            return self.run_op(out_box, kwargs, chunk_id)
        sub = level + 1
        mode = self.blend_modes[sub]
        schedule = level_schedule(
            out_box.shape,
            self.crop_pads[level],
            self.chunk_sizes[sub],
            self.blend_pads[sub],
            mode,
            self.dtype,
        )
        out = empty_xfast(self.num_channels, out_box.shape, self.dtype)
        what = f"{self.op_name} (level {sub})"
        x0, y0, z0 = out_box.start
        sx, sy, sz = schedule.padded

        # the bottom level's chunks (reading nothing ahead) straight from the operation
        compute = (
            self.run_op
            if sub == self.num_levels - 1 and self.prefetch_level != sub
            else functools.partial(self.chunk_output, sub)
        )
        sliced = self.sliced_run_op(kwargs) if compute == self.run_op else None
        num_channels = self.num_channels
        ids = self.numbering.sub_offsets(
            sub, schedule.starts, self.crop_pads[level], self.chunk_sizes[sub], self.blend_pads[sub]
        )

        def outputs() -> Iterator[Array]:
            for (ox, oy, oz), offset in zip(schedule.starts, ids, strict=True):
                start = (x0 + ox, y0 + oy, z0 + oz)
                box = Box(start, (start[0] + sx, start[1] + sy, start[2] + sz))
                if sliced is not None:
                    data = sliced(box, chunk_id + offset)
                else:
                    data = compute(box, kwargs, chunk_id + offset)
                if data.shape[0] != num_channels:
                    raise ValueError(
                        f"{what}: its output has {data.shape[0]} channels, dst has {num_channels}"
                    )
                yield data

        def stacked_outputs() -> Iterator[Array]:
            chunks = zip(schedule.starts, ids, strict=True)
            for batch in _batched(iter(chunks), self.bottom_stack):
                boxes = [
                    Box((x0 + ox, y0 + oy, z0 + oz), (x0 + ox + sx, y0 + oy + sy, z0 + oz + sz))
                    for (ox, oy, oz), _ in batch
                ]
                for data in self.run_ops(boxes, kwargs, [chunk_id + offset for _, offset in batch]):
                    if data.shape[0] != num_channels:
                        raise ValueError(
                            f"{what}: its output has {data.shape[0]} channels, dst has "
                            f"{num_channels}"
                        )
                    yield data

        if self.bottom_stack > 1 and sub == self.num_levels - 1:
            outputs = stacked_outputs

        int64_sums = out.dtype.kind in "iu" and out.dtype.itemsize == 8 and mode != "max"
        if sub == self.num_levels - 1 and self.bottom_stack == 1 and not int64_sums:
            uncropped = self.bottom_outputs(kwargs, out_box, schedule) if sliced else None
            if uncropped is not None:
                schedule.run(out, uncropped, what, self.op_crop_pad)
                return out
        if int64_sums:
            # float64 sums cannot hold every int64: cells whose pieces agree are copied exactly
            combiner = CellCombiner(self.dtype, mode, what)
            for ops, data in zip(schedule.ops, outputs(), strict=True):
                for cell, out_slices, data_slices, weight, coverage in ops:
                    combiner.add(cell, out[out_slices], data[data_slices], weight, coverage)
            combiner.check_done()
        else:
            schedule.run(out, outputs(), what)
        return out

    def run_direct(
        self, level: int, core: Box, kwargs: Mapping[str, Any], dst: Any, chunk_id: int = 0
    ) -> None:
        """``skip_intermediaries``: the bottom chunks under ``core`` (the chunk ``chunk_id`` of
        ``level``) written by the operation."""
        kwargs = self._kwargs_for(kwargs, core, level)
        if level == self.num_levels - 1:
            self.op(self._index(core, chunk_id), dst, *self.op_args, **kwargs)
            return
        grid = ChunkGrid.over(core, self.chunk_sizes[level + 1], (0, 0, 0))
        if self.bottom_stack > 1 and level + 1 == self.num_levels - 1:
            for keys in _batched(grid.keys(), self.bottom_stack):
                ids = [self.numbering.chunk_id(level + 1, key, chunk_id) for key in keys]
                self.run_direct_stacked([grid.core(key) for key in keys], kwargs, dst, ids)
            return
        for key in grid.keys():
            self.run_direct(
                level + 1,
                grid.core(key),
                kwargs,
                dst,
                self.numbering.chunk_id(level + 1, key, chunk_id),
            )

    def clipped_dst(self) -> Any:
        return self._clipped_dst

    @functools.cached_property
    def _clipped_dst(self) -> Any:
        # made once per process (every top-level task of a skip_intermediaries run asks)
        if self.dst is None or self.dst_bounds is None:
            return self.dst
        backend = ClipWritesBackend(self.dst.backend, self.dst_resolution, self.dst_bounds)
        return attrs.evolve(self.dst, backend=backend)

    def process_top_chunk(self, key: Int3) -> None:
        grid = self.top_grid
        chunk_id = self.numbering.chunk_id(0, key)
        if self.top_mode == "skip":
            self.run_direct(0, grid.core(key), self.op_kwargs, self.clipped_dst(), chunk_id)
            return
        out_box = grid.padded(key)
        data = to_output_dtype(
            self.chunk_output(0, out_box, self.op_kwargs, chunk_id), self.dtype, self.op_name
        )
        self._write_top(key, out_box, data)

    def process_top_chunks(self, keys: Sequence[Int3]) -> None:
        """The top-level chunks ``keys`` of a task; when the top level is the bottom one and
        ``task_stack_size`` stacks them, through one call of the function."""
        if self.bottom_stack == 1 or self.num_levels > 1 or len(keys) == 1:
            for key in keys:
                self.process_top_chunk(key)
            return
        grid = self.top_grid
        ids = [self.numbering.chunk_id(0, key) for key in keys]
        if self.top_mode == "skip":
            self.run_direct_stacked(
                [grid.core(key) for key in keys], self.op_kwargs, self.clipped_dst(), ids
            )
            return
        boxes = [grid.padded(key) for key in keys]
        for key, box, data in zip(
            keys, boxes, self.run_ops(boxes, self.op_kwargs, ids), strict=True
        ):
            self._write_top(key, box, to_output_dtype(data, self.dtype, self.op_name))

    def _write_top(self, key: Int3, out_box: Box, data: Array) -> None:
        """A top-level chunk's output: into ``dst`` or the intermediaries."""
        if self.top_mode == "direct":
            assert self.dst is not None and self.dst_bounds is not None
            target = out_box.intersection(self.region).intersection(self.dst_bounds)
            if not target.is_empty():
                self.dst[target.to_index(self.dst_resolution)] = torch.from_numpy(
                    data[target.slices_in(out_box)]
                )
        else:
            assert self.store is not None
            self.store.write_chunk(key, data)


@mazepa.taskable_operation_cls
class ProcessTopChunks(mazepa.OperationBase):
    """Task: compute top-level chunks (keys ``(jx, jy, jz)``) and write their outputs."""

    def __init__(self, plan: SubchunkablePlan):
        self.plan = plan
        self.read_ahead: Callable[[Sequence[Int3]], None] | None = (
            self._read_ahead if plan.read_ahead_layers else None
        )
        """Starts the reads of the task of ``keys`` (mazepa's ``Task.start_reads``); None where
        the plan reads nothing ahead (an attribute: looked up for every task)."""

    def get_operation_name(self) -> str:
        return self.plan.task_name or self.plan.op_name

    def mazepa_id_components(self) -> tuple[str, str]:
        return ("ProcessTopChunks", self.plan.plan_id)

    def __call__(self, keys: Sequence[Int3]) -> None:
        self.plan.process_top_chunks([(k[0], k[1], k[2]) for k in keys])

    def _read_ahead(self, keys: Sequence[Int3]) -> None:
        self.plan.read_ahead([(k[0], k[1], k[2]) for k in keys])

    def describe_region(self, keys: Sequence[Int3]) -> str:
        """The chunks' region, for error reports (e.g. a task that kills its workers)."""
        boxes = [self.plan.top_grid.core(tuple(k)) for k in keys]  # type: ignore[arg-type]
        levels = self.plan.num_levels
        level = "level 0" + (f" (the top of {levels}, largest first)" if levels > 1 else "")
        return f"{level}, " + _describe_boxes(boxes, self.plan.dst_resolution)


@attrs.frozen(eq=False)
class Reducer:
    """Combines stored pieces into ``dst`` (see the module docstring, stage 2)."""

    store: PieceStore
    dst: VolumetricLayer
    dst_resolution: Vec3D[float]
    region: Box
    dst_bounds: Box
    blend_mode: str
    num_channels: int
    dtype: torch.dtype
    plan_id: str

    def mazepa_id_components(self) -> str:
        return self.plan_id

    def _mode(self) -> str:
        return (
            self.blend_mode
            if self.blend_mode in ("linear", "quadratic", "bump", "max")
            else "quadratic"
        )

    def _blend(self, box: Box) -> Array:
        return self.store.reduce_box(box, self.dtype, self._mode())

    def reduce(self, aligned: Box, write: Box) -> None:
        """Write the ``dst`` chunks that ``write`` (a reduction chunk's part inside the region)
        covers; ``aligned`` is the box of those chunks. Chunks that ``write`` covers whole are
        written whole; only the voxels inside ``write`` of the others (on the region's edge, or
        across a ``processing_gap``) are merged into what storage holds (:mod:`.edge_writes`).
        Rows held in memory only that it reduces are given back if it fails (see
        :meth:`.intermediaries.PieceStore.reduction_attempt`): its retry reduces them again."""
        with self.store.reduction_attempt():
            self._reduce(aligned, write)

    def _reduce(self, aligned: Box, write: Box) -> None:
        grid = self.store.grid
        if aligned == write and not grid.gaps_intersect(write):
            strips = self._strips(write)
            if len(strips) == 1:
                self.dst[aligned.to_index(self.dst_resolution)] = torch.from_numpy(
                    self._blend(write)
                )
                return
            cuts = [box.start[0] for box in strips[1:]]
            outputs = self.store.reduce_strips(write, cuts, self.dtype, self._mode())
            for box, data in zip(strips, outputs, strict=True):
                # (each output is dropped once written: its chunks go to storage as they are)
                with handing_over():
                    self.dst[box.to_index(self.dst_resolution)] = torch.from_numpy(data)
            return
        data = self._blend(write)
        spans = [core_spans(ax, write.start[d], write.stop[d]) for d, ax in enumerate(grid.axes)]
        cells = self._dst_cells(spans)
        # per dim, the dst chunks that lie inside one covered span (whole in that dim)
        whole = [
            [any(a <= c0 and c1 <= b for a, b in spans[d]) for c0, c1 in cells[d]] for d in range(3)
        ]
        for runs in itertools.product(*(_runs(cells[d], whole[d]) for d in range(3))):
            box = Box.of([r[0] for r in runs], [r[1] for r in runs])
            self.dst[box.to_index(self.dst_resolution)] = torch.from_numpy(
                data[box.slices_in(write)]
            )
        parts = []
        for picks in itertools.product(*(range(len(cells[d])) for d in range(3))):
            if all(whole[d][k] for d, k in enumerate(picks)):
                continue
            per_dim = [
                [
                    (max(a, cells[d][k][0]), min(b, cells[d][k][1]))
                    for a, b in spans[d]
                    if a < cells[d][k][1] and cells[d][k][0] < b
                ]
                for d, k in enumerate(picks)
            ]
            for sx, sy, sz in itertools.product(*per_dim):
                box = Box.of((sx[0], sy[0], sz[0]), (sx[1], sy[1], sz[1]))
                parts.append(
                    (
                        box,
                        to_output_dtype(
                            self._processed(box, data[box.slices_in(write)]), self.dtype, "dst"
                        ),
                    )
                )
        merge_into(self.dst.backend, self.dst_resolution, parts)

    def _strips(self, write: Box) -> list[Box]:
        """``write`` (on the ``dst`` chunk grid) cut into strips one ``dst`` chunk wide in x,
        reduced into an output each (:meth:`.intermediaries.PieceStore.reduce_strips`) and
        written one by one, where ``dst`` stores its chunks as local files and has no
        processors; else ``write`` whole. A strip's output is x-fastest with rows one chunk
        long: each chunk of one z and channel is one block of it, which a write finishing behind
        keeps as it is (see :func:`.raw_chunks.handing_over`), where a chunk of a wider output
        is first copied out row by row (~2 ms of CPU per 4096^2 uint8 section). Every voxel is
        combined from the same pieces either way."""
        if not _STRIPS[0] or self.dst.write_procs or self.dst.index_procs:
            return [write]
        backend = self.dst.backend
        writes_files = getattr(backend, "writes_chunk_files", None)
        if writes_files is None or not writes_files(self.dst_resolution):
            return [write]
        width = int(backend.get_chunk_size(self.dst_resolution)[0])
        (x0, y0, z0), (x1, y1, z1) = write
        if x1 - x0 <= width:
            return [write]
        return [Box((x, y0, z0), (min(x + width, x1), y1, z1)) for x in range(x0, x1, width)]

    def _dst_cells(self, spans: Sequence[Sequence[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
        """Per dim, the ``dst`` chunks (clipped to its bounds) that meet ``spans[d]``."""
        offset = self.dst.backend.get_voxel_offset(self.dst_resolution)
        dchunk = self.dst.backend.get_chunk_size(self.dst_resolution)
        b = self.dst_bounds
        return [
            grid_spans(spans[d], int(offset[d]), int(dchunk[d]), b.start[d], b.stop[d])
            for d in range(3)
        ]

    def _processed(self, box: Box, data: Array) -> Array:
        """``data`` as ``dst``'s write processors would store it."""
        if not self.dst.write_procs:
            return data
        capture = CaptureBackend(
            box, self.dst_resolution, self.num_channels, self.dtype, "dst write_procs"
        )
        attrs.evolve(self.dst, backend=capture)[box.to_index(self.dst_resolution)] = (
            torch.from_numpy(data)
        )
        return as_array(capture.result())

    def chunks(self, reduction_chunk: Int3, outer: int = 2) -> Iterator[tuple[Box, Box]]:
        """``(aligned box, write box)`` of every reduction chunk that writes anything: its part
        inside the region (``write``), and the box of the ``dst`` chunks (of the dst chunk grid,
        clipped to its bounds) that the chunk cores there meet (``aligned``; no more, so that no
        chunk outside the region is written). Dim ``outer`` varies slowest, then the others z, y,
        x."""
        target = self.region.intersection(self.dst_bounds)
        if target.is_empty():
            return
        offset = self.dst.backend.get_voxel_offset(self.dst_resolution)
        dchunk = self.dst.backend.get_chunk_size(self.dst_resolution)
        start = [
            o + ((s - o) // c) * c for s, o, c in zip(target.start, offset, dchunk, strict=True)
        ]
        ranges = [range(start[d], target.stop[d], reduction_chunk[d]) for d in range(3)]
        dims = [outer] + [d for d in (2, 1, 0) if d != outer]
        axes = self.store.grid.axes
        for values in itertools.product(*(ranges[d] for d in dims)):
            corner = [0, 0, 0]
            for d, v in zip(dims, values, strict=True):
                corner[d] = v
            box = Box.of(corner, _add((corner[0], corner[1], corner[2]), reduction_chunk))
            write = box.intersection(target)
            if write.is_empty():
                continue
            cells = self._dst_cells(
                [core_spans(ax, write.start[d], write.stop[d]) for d, ax in enumerate(axes)]
            )
            if all(cells):  # else it lies in processing_gaps only: nothing to write
                yield Box.of([c[0][0] for c in cells], [c[-1][1] for c in cells]), write


_STRIPS = [
    os.environ.get("ZETTA_REDUCE_IN_STRIPS", "").strip().lower() not in ("0", "false", "no", "off")
]
"""Whether reductions into local chunk files go in strips (see :meth:`Reducer._strips`);
``ZETTA_REDUCE_IN_STRIPS=0``: not (tests and A/B runs)."""


def _runs(cells: Sequence[tuple[int, int]], whole: Sequence[bool]) -> list[tuple[int, int]]:
    """The spans of consecutive ``cells`` that are ``whole``."""
    runs: list[tuple[int, int]] = []
    for (a, b), ok in zip(cells, whole, strict=True):
        if not ok:
            continue
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


@mazepa.taskable_operation_cls
class ReduceChunks(mazepa.OperationBase):
    """Task: reduce some reduction chunks into ``dst``."""

    def __init__(self, reducer: Reducer, name: str):
        self.reducer = reducer
        self.name = name

    def get_operation_name(self) -> str:
        return self.name

    def mazepa_id_components(self) -> tuple[str, str]:
        return ("ReduceChunks", self.reducer.plan_id)

    def __call__(self, boxes: Sequence[tuple[Box, Box]]) -> None:
        for aligned, write in boxes:
            self.reducer.reduce(Box.of(*aligned), Box.of(*write))

    def describe_region(self, boxes: Sequence[tuple[Box, Box]]) -> str:
        """The region written, for error reports."""
        return "reduction into dst, " + _describe_boxes(
            [Box.of(*write) for _, write in boxes], self.reducer.dst_resolution
        )


def _describe_boxes(boxes: Sequence[Box], resolution: Vec3D[float]) -> str:
    from zetta_utils.mazepa.regions import describe_voxel_box

    start = [min(b.start[i] for b in boxes) for i in range(3)]
    stop = [max(b.stop[i] for b in boxes) for i in range(3)]
    return describe_voxel_box(start, stop, tuple(resolution))


def _stack(values: Sequence[Any], name: str, what: str) -> Any:
    """Values of one argument of several chunks, stacked along a new first dim."""
    if isinstance(values[0], torch.Tensor):
        return torch.stack(list(values))
    if isinstance(values[0], np.ndarray):
        return np.stack(list(values))
    raise TypeError(
        f"{what}: with task_stack_size, read() must return tensors or arrays; {name!r} is "
        f"{type(values[0]).__name__}"
    )


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while True:
        batch = list(itertools.islice(items, size))
        if not batch:
            return
        yield batch


def _top_task(op: ProcessTopChunks, keys: Sequence[Int3]) -> mazepa.Task[Any]:
    task = op.make_task(tuple(keys))
    if op.plan.op_worker_type is not None:
        task = task.with_options(worker_type=op.plan.op_worker_type)
    return task


def top_tasks(plan: SubchunkablePlan) -> Iterator[list[mazepa.Task[Any]]]:
    op = ProcessTopChunks(plan)
    for batch in _batched(_batched(plan.top_grid.keys(), plan.task_stack_size), _TASK_BATCH):
        yield [_top_task(op, keys) for keys in batch]


def reduction_tasks(
    reducer: Reducer, reduction_chunk: Int3, name: str, worker_type: str | None
) -> Iterator[list[mazepa.Task[Any]]]:
    yield from _reduction_batches(reducer, reducer.chunks(reduction_chunk), name, worker_type)


def _reduction_task(
    op: ReduceChunks, chunk: tuple[Box, Box], worker_type: str | None
) -> mazepa.Task[Any]:
    task = op.make_task((chunk,))
    if worker_type is not None:
        task = task.with_options(worker_type=worker_type)
    return task


def _reduction_batches(
    reducer: Reducer, chunks: Iterable[tuple[Box, Box]], name: str, worker_type: str | None
) -> Iterator[list[mazepa.Task[Any]]]:
    op = ReduceChunks(reducer, name)
    for batch in _batched(iter(chunks), _TASK_BATCH):
        yield [_reduction_task(op, chunk, worker_type) for chunk in batch]


@mazepa.flow_schema
def reduction_wave(tasks: list[mazepa.Task[Any]], after: list[str]) -> Iterator[Any]:
    """Reduction tasks ``tasks`` once the top-level tasks ``after`` (ids) have finished."""
    yield mazepa.Dependency(after)
    yield from _batched(iter(tasks), _TASK_BATCH)


@mazepa.flow_schema
def release_pieces(store: PieceStore, keys: list[Int3], after: list[mazepa.Flow]) -> Iterator[Any]:
    """Delete the pieces of top-level chunks ``keys`` once the sub-flows ``after``, their last
    readers, have finished (with all their tasks). Freed early, their pages are reused by the
    files written next."""
    yield mazepa.Dependency(after)
    store.delete_pieces(keys)


def _wave_axis(counts: Int3) -> int:
    """The slowest-varying dim of the top-level keys that has more than one chunk."""
    return next((d for d in (2, 1, 0) if counts[d] > 1), 2)


def pipelined_tasks(plan: SubchunkablePlan, reducer: Reducer) -> Iterator[Any]:
    """The top-level tasks, and the reduction tasks as soon as what they read is computed.

    Top-level keys go in *waves*: the slices of the key grid along its slowest dim. Once the
    tasks of wave ``w`` are yielded, the reduction chunks that read only outputs of waves up to
    ``w`` go in a sub-flow that waits for the tasks of those waves and then runs them, while the
    next waves are computed: reductions (mostly I/O) overlap the top-level work (mostly compute),
    instead of all of them waiting for the last top-level task. Once no later reduction chunk
    reads a wave, its pieces are deleted as soon as the sub-flows reducing it have finished
    (unless the intermediaries are kept).
    """
    assert plan.reduction_chunk is not None and plan.store is not None
    grid = plan.top_grid
    counts = grid.counts
    w_axis = _wave_axis(counts)
    axis = grid.axes[w_axis]
    reduce_op = ReduceChunks(reducer, f"{plan.task_name or plan.op_name} reduction")
    op = ProcessTopChunks(plan)
    # the reduction chunks with the waves they read, in order along the axis
    pending = (
        (chunk, axis.chunks_overlapping(chunk[1].start[w_axis], chunk[1].stop[w_axis]))
        for chunk in reducer.chunks(plan.reduction_chunk, outer=w_axis)
    )
    upcoming = next(pending, None)
    wave_tasks: dict[int, list[str]] = {}  # wave -> ids of the tasks computing its chunks
    key_tasks: dict[Int3, str] = {}  # key -> the id of the task computing it
    readers: dict[int, list[mazepa.Flow]] = {}  # wave -> the sub-flows reducing its outputs
    batch: list[mazepa.Task[Any]] = []
    done_wave = -1  # waves up to this one are all yielded
    for keys in _batched(grid.keys(), plan.task_stack_size):
        task = _top_task(op, keys)
        batch.append(task)
        for wave in sorted({key[w_axis] for key in keys}):
            wave_tasks.setdefault(wave, []).append(task.id)
        key_tasks.update(dict.fromkeys(keys, task.id))
        last = keys[-1]
        complete = (
            last[w_axis]
            if all(last[d] == counts[d] - 1 for d in range(w_axis))
            else last[w_axis] - 1
        )
        if complete > done_wave or len(batch) >= _TASK_BATCH:
            yield batch
            batch = []
        if complete <= done_wave:
            continue
        done_wave = complete
        ready: list[tuple[tuple[Box, Box], range]] = []
        first_wave = done_wave
        while upcoming is not None and (not upcoming[1] or upcoming[1][-1] <= done_wave):
            ready.append(upcoming)
            if upcoming[1]:
                first_wave = min(first_wave, upcoming[1].start)
            upcoming = next(pending, None)
        if ready:
            after = [
                tid for wave in range(first_wave, done_wave + 1) for tid in wave_tasks.get(wave, [])
            ]
            tasks = [
                _reduction_task(reduce_op, chunk, plan.reduction_worker_type) for chunk, _ in ready
            ]
            sub = reduction_wave(_reading(tasks, ready, grid, key_tasks), after)
            for wave in sorted({w for _, waves in ready for w in waves}):
                readers.setdefault(wave, []).append(sub)
            yield sub
        # later chunks read no wave before the next one's first (they come in order along the axis)
        keep_from = upcoming[1].start if upcoming is not None and upcoming[1] else done_wave + 1
        for wave in [w for w in wave_tasks if w < keep_from]:
            del wave_tasks[wave]
        for key in [k for k in key_tasks if k[w_axis] < keep_from]:
            del key_tasks[key]
        for wave in [w for w in readers if w < keep_from]:
            subs = readers.pop(wave)
            if not plan.keep_intermediaries:
                yield release_pieces(plan.store, _wave_keys(counts, w_axis, wave), subs)
    if batch:
        yield batch
    rest = [] if upcoming is None else [upcoming[0], *(chunk for chunk, _ in pending)]
    if rest:  # reads no top-level output at all, or the keys ran out first: after everything
        yield mazepa.Dependency()
        yield from _reduction_batches(reducer, rest, reduce_op.name, plan.reduction_worker_type)


SECTION_TASKS_ENV = "ZETTA_SECTION_TASKS"
"""``0`` (or ``false``/``no``/``off``): no section tasks (see :func:`section_waves`); every run
with several processes writes its rows, as a run with top-level and reduction tasks does."""

SECTION_MIN_WAVES = 4
"""The fewest waves a run cuts into section tasks: fewer would leave workers idle."""

SECTION_MAX_VOXELS = 2**28
"""The most voxels of top-level chunks in one section task (a wave: 16384 x 16384 x 1), a bound
on the work one task does and redoes when it fails."""


def section_tasks_enabled() -> bool:
    """Whether ``$ZETTA_SECTION_TASKS`` leaves section tasks on (the default)."""
    value = os.environ.get(SECTION_TASKS_ENV, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def section_waves(plan: SubchunkablePlan) -> int | None:
    """How many section tasks the run has, one per wave (the slices of the top-level key grid
    along its slowest dim with more than one chunk, see :func:`pipelined_tasks`), when its
    waves are independent; None when it keeps top-level and reduction tasks apart.

    A wave is independent when every reduction chunk reads the outputs of one wave only (no
    blend pad along the waves' axis, no reduction chunk spanning two waves: the guide's flow
    (c), waves of one z section): then one task can compute a wave's top-level chunks and run
    the reductions of its region, its rows in memory, and no other task reads them. That
    needs too: a reduction (not deferred) reading pieces, intermediaries not kept (their rows
    are written), one top-level chunk per task (``task_stack_size`` 1), the same worker type
    for both kinds of task, at least :data:`SECTION_MIN_WAVES` waves and at most
    :data:`SECTION_MAX_VOXELS` voxels per wave. Whether the run uses them is
    :func:`uses_section_tasks`."""
    if (
        plan.top_mode != "pieces"
        or plan.deferred
        or plan.reduction_chunk is None
        or plan.store is None
        or plan.dst is None
        or plan.dst_bounds is None
        or plan.keep_intermediaries
        or plan.task_stack_size != 1
        or plan.reduction_worker_type not in (None, plan.op_worker_type)
    ):
        return None
    grid = plan.top_grid
    counts = grid.counts
    w_axis = _wave_axis(counts)
    waves = counts[w_axis]
    if waves < SECTION_MIN_WAVES:
        return None
    per_wave = grid.num_chunks // waves
    if per_wave * math.prod(plan.chunk_sizes[0]) > SECTION_MAX_VOXELS:
        return None
    axis = grid.axes[w_axis]
    if axis.blend != 0:
        return None
    # the reduction chunks' extents along the waves' axis (see Reducer.chunks)
    target = plan.region.intersection(plan.dst_bounds)
    if target.is_empty():
        return None
    offset = int(plan.dst.backend.get_voxel_offset(plan.dst_resolution)[w_axis])
    dchunk = int(plan.dst.backend.get_chunk_size(plan.dst_resolution)[w_axis])
    lo, hi = target.start[w_axis], target.stop[w_axis]
    step = plan.reduction_chunk[w_axis]
    for start in range(offset + ((lo - offset) // dchunk) * dchunk, hi, step):
        a, b = max(start, lo), min(start + step, hi)
        if a < b and len(axis.chunks_overlapping(a, b)) != 1:
            return None
    return waves


def uses_section_tasks(plan: SubchunkablePlan) -> bool:
    """Whether the run goes in section tasks (:func:`section_waves`): its tasks run in other
    processes, or in this one but not as a run wholly in it (``mazepa.single_process()`` False:
    there, top-level tasks keep their rows in memory already), unless
    ``$ZETTA_SECTION_TASKS`` (or ``$ZETTA_PIECE_ROWS_IN_MEMORY``) turns them off."""
    return (
        not mazepa.single_process()
        and section_tasks_enabled()
        and _rows_in_memory_allowed()
        and section_waves(plan) is not None
    )


def section_tasks(plan: SubchunkablePlan, reducer: Reducer) -> Iterator[Any]:
    """One :class:`ProcessSection` task per wave, in order (see :func:`section_waves`)."""
    assert plan.reduction_chunk is not None
    grid = plan.top_grid
    w_axis = _wave_axis(grid.counts)
    axis = grid.axes[w_axis]
    op = ProcessSection(plan)
    pending = reducer.chunks(plan.reduction_chunk, outer=w_axis)
    upcoming = next(pending, None)
    batch: list[mazepa.Task[Any]] = []
    for wave in range(grid.counts[w_axis]):
        chunks = []
        while upcoming is not None:
            waves = axis.chunks_overlapping(upcoming[1].start[w_axis], upcoming[1].stop[w_axis])
            if waves.start != wave:
                assert waves.start > wave, "a reduction chunk before its wave"
                break
            chunks.append(upcoming)
            upcoming = next(pending, None)
        task = op.make_task(wave, tuple(chunks))
        if plan.op_worker_type is not None:
            task = task.with_options(worker_type=plan.op_worker_type)
        batch.append(task)
        if len(batch) >= _TASK_BATCH:
            yield batch
            batch = []
    assert upcoming is None, "a reduction chunk after the last wave"
    if batch:
        yield batch


@mazepa.taskable_operation_cls
class ProcessSection(mazepa.OperationBase):
    """Task: compute the top-level chunks of one wave and run the reductions of its region, in
    this process, the rows in memory (see :func:`section_waves`). Rows are written only if let
    go of from memory while a reduction of the task still needs them
    (:meth:`.intermediaries.PieceStore.rows_of_one_task`), and nothing else reads them: a task
    that fails runs again whole."""

    def __init__(self, plan: SubchunkablePlan):
        self.plan = plan
        self.read_ahead: Callable[[int, Sequence[tuple[Box, Box]]], None] | None = (
            self._read_ahead if plan.read_ahead_layers else None
        )
        """Starts the reads of the first chunk of the task of ``wave`` (mazepa's
        ``Task.start_reads``; the task reads its next chunks, ``plan.read_ahead_steps``, while
        one is computed); None where the plan reads nothing ahead."""

    def _read_ahead(self, wave: int, chunks: Sequence[tuple[Box, Box]]) -> None:
        self.plan.read_ahead(self.wave_keys(wave)[:1])

    @functools.cached_property
    def reducer(self) -> Reducer:
        reducer = plan_reducer(self.plan)
        assert reducer is not None
        return reducer

    def get_operation_name(self) -> str:
        return section_task_name(self.plan)

    def mazepa_id_components(self) -> tuple[str, str]:
        return ("ProcessSection", self.plan.plan_id)

    def __call__(self, wave: int, chunks: Sequence[tuple[Box, Box]]) -> None:
        plan, reducer = self.plan, self.reducer
        store = reducer.store
        keys = self.wave_keys(wave)
        position = {key: i for i, key in enumerate(keys)}
        grid = plan.top_grid
        # each reduction chunk with the position of the last key it reads: it runs once that
        # key is computed, in their order, so that the rows kept are those of a reduction or so
        todo = [
            (
                max((position[k] for k in grid.keys_overlapping(Box.of(*write))), default=-1),
                (Box.of(*aligned), Box.of(*write)),
            )
            for aligned, write in chunks
        ]
        with store.rows_of_one_task():
            done = 0
            steps = plan.read_ahead_steps if self.read_ahead is not None else 0
            for i, key in enumerate(keys):
                # the next chunks' inputs read meanwhile, each its own step of the task (the
                # oldest dropped first); the first chunk's too unless read ahead for the task,
                # so that CloudVolume reads ahead wait for it rather than fetch what it shares
                for ahead in keys[0 if i == 0 else i + steps : i + 1 + steps] if steps else ():
                    plan.read_ahead([ahead], in_task=True, steps=steps + 1)
                plan.process_top_chunks([key])
                while done < len(todo) and todo[done][0] <= i:
                    reducer.reduce(*todo[done][1])
                    done += 1
            for _, boxes in todo[done:]:
                reducer.reduce(*boxes)
            store.delete_pieces(keys)

    def wave_keys(self, wave: int) -> list[Int3]:
        counts = self.plan.top_grid.counts
        return _wave_keys(counts, _wave_axis(counts), wave)

    def describe_region(self, wave: int, chunks: Sequence[tuple[Box, Box]]) -> str:
        """The wave's region and what it writes, for error reports."""
        plan = self.plan
        boxes = [plan.top_grid.core(key) for key in self.wave_keys(wave)]
        text = f"section {wave}: level 0, " + _describe_boxes(boxes, plan.dst_resolution)
        if chunks:
            text += ", and its reduction into dst, " + _describe_boxes(
                [Box.of(*write) for _, write in chunks], plan.dst_resolution
            )
        return text


def section_task_name(plan: SubchunkablePlan) -> str:
    """What progress calls section tasks."""
    return f"{plan.task_name or plan.op_name} + reduction"


def _reading(
    tasks: list[mazepa.Task[Any]], ready: list[Any], grid: ChunkGrid, key_tasks: dict[Int3, str]
) -> list[mazepa.Task[Any]]:
    """The reduction ``tasks`` (of the chunks ``ready``) with the ids of the top-level tasks whose
    pieces each reads (``reads_from``): local workers run a reduction where most of them ran,
    which keeps their rows in memory (see ``PieceStore``)."""
    return [
        task.with_options(
            reads_from=[key_tasks[k] for k in grid.keys_overlapping(chunk[1]) if k in key_tasks]
        )
        for task, (chunk, _) in zip(tasks, ready, strict=True)
    ]


def _wave_keys(counts: Int3, w_axis: int, wave: int) -> list[Int3]:
    ranges = [range(wave, wave + 1) if d == w_axis else range(counts[d]) for d in range(3)]
    return [(x, y, z) for z in ranges[2] for y in ranges[1] for x in ranges[0]]


def plan_reducer(plan: SubchunkablePlan) -> Reducer | None:
    if plan.top_mode != "pieces" or plan.deferred:
        return None
    assert plan.store is not None and plan.dst is not None and plan.dst_bounds is not None
    return Reducer(
        store=plan.store,
        dst=plan.dst,
        dst_resolution=plan.dst_resolution,
        region=plan.region,
        dst_bounds=plan.dst_bounds,
        blend_mode=plan.blend_modes[0],
        num_channels=plan.num_channels,
        dtype=plan.dtype,
        plan_id=plan.plan_id,
    )


def with_read_scope(plan: SubchunkablePlan) -> SubchunkablePlan:
    """``plan`` for one execution: a fresh :attr:`~SubchunkablePlan.read_scope` (task ids do not
    depend on it)."""
    return attrs.evolve(plan, read_scope=secrets.token_hex(8))


def subchunkable_flow(plan: SubchunkablePlan) -> Iterator[Any]:
    """The flow of a run (see the module docstring)."""
    plan = with_read_scope(plan)
    sections = uses_section_tasks(plan)
    # the progress bars' totals, known before any task runs
    declare_expected_tasks(plan, sections)
    if plan.store is not None:
        plan.store.create()
    reducer = plan_reducer(plan)
    if reducer is not None and reducer.store.keeps_frames:
        reducer.store.in_memory = rows_in_memory(plan)
        # (a section task keeps its rows in memory as a run in one process does)
        in_memory = reducer.store.in_memory or sections
        reducer.store.keep_bytes = kept_rows_bytes(plan, in_memory)
    if reducer is None:
        yield from top_tasks(plan)
    elif sections:
        yield from section_tasks(plan, reducer)
    else:
        yield from pipelined_tasks(plan, reducer)
    yield mazepa.Dependency()
    if plan.store is not None and not plan.deferred and not plan.keep_intermediaries:
        plan.store.delete()


KEPT_ROWS_MAX_BYTES = 256 * 2**20
"""The most bytes of rows a process keeps for its reductions."""

ROWS_IN_MEMORY_ENV = "ZETTA_PIECE_ROWS_IN_MEMORY"
"""``0`` (or ``false``/``no``/``off``): rows are always written, also by runs in one process
(for comparisons), and runs with several processes have no section tasks."""


def rows_in_memory(plan: SubchunkablePlan) -> bool:
    """Whether the top-level tasks keep their rows in memory only, for the reductions (see
    :meth:`.intermediaries.PieceStore.write_chunk`): when every task of the run runs in this
    process (``mazepa.single_process()``), unless the intermediaries are kept (or the reduction
    deferred: there is no reducer then)."""
    return mazepa.single_process() and not plan.keep_intermediaries and _rows_in_memory_allowed()


def _rows_in_memory_allowed() -> bool:
    return os.environ.get(ROWS_IN_MEMORY_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def kept_rows_bytes(plan: SubchunkablePlan, in_memory: bool = False) -> int:
    """The bytes of rows a process keeps for its reductions (see
    :meth:`.intermediaries.PieceStore._read_needs`): those a reduction reads at most (every
    top-level chunk's padded output that a reduction chunk and its blend pads can meet; the
    bound :func:`.summary.reduction_memory` counts), at most :data:`KEPT_ROWS_MAX_BYTES`; 0 when
    the run has no reduction.

    Twice that (still at most :data:`KEPT_ROWS_MAX_BYTES`) with ``in_memory``, where rows stay in
    memory only (:func:`rows_in_memory`) and one let go of while needed is written and read back:
    a serial run computes a few top-level chunks of the next wave before the reductions of a wave
    run, and keeps the frames of a wave until its pieces are released.

    One row more where tasks read ahead (:func:`reads_ahead`): the executors then keep one task
    more queued, which may be a top-level task run before a reduction that was ready."""
    if plan.reduction_chunk is None or plan.store is None or not plan.store.keeps_frames:
        return 0
    chunk, blend = plan.chunk_sizes[0], plan.blend_pads[0]
    box = [
        min(int(r), int(n)) for r, n in zip(plan.reduction_chunk, plan.region.shape, strict=True)
    ]
    met = math.prod(
        0 if b + 2 * p <= 0 else -(-(b + 2 * p - 1) // c) + 1
        for b, p, c in zip(box, blend, chunk, strict=True)
    )
    met += 1 if reads_ahead(plan) else 0
    padded = math.prod(c + 2 * p for c, p in zip(chunk, blend, strict=True))
    voxel = torch.empty(0, dtype=plan.dtype).element_size() * plan.num_channels
    return min(KEPT_ROWS_MAX_BYTES, met * padded * voxel * (2 if in_memory else 1))


def reads_ahead(plan: SubchunkablePlan) -> bool:
    """Whether the run's tasks read inputs ahead (:attr:`SubchunkablePlan.read_ahead_layers`,
    as in the run: :func:`as_run`)."""
    return bool(as_run(plan).read_ahead_layers)


def as_run(plan: SubchunkablePlan) -> SubchunkablePlan:
    """``plan`` as a run sees it: with a read scope (:func:`with_read_scope` where it has none),
    which decides what is cached and read ahead."""
    return plan if plan.read_scope is not None else with_read_scope(plan)


def deferred_reduction_flow(
    reducer: Reducer, reduction_chunk: Int3, worker_type: str | None, keep_intermediaries: bool
) -> Iterator[Any]:
    yield from reduction_tasks(reducer, reduction_chunk, "deferred reduction", worker_type)
    yield mazepa.Dependency()
    if not keep_intermediaries:
        reducer.store.delete()


# The run's task counts, for the progress bars' totals (the summary printed before a run, in
# .summary, uses them too).


def _voxel_bytes(layer: Any) -> int:
    backend = getattr(layer, "backend", None)
    try:
        dtype = backend.dtype  # type: ignore[union-attr]
        channels = backend.num_channels  # type: ignore[union-attr]
        import torch

        return int(torch.empty(0, dtype=dtype).element_size()) * int(channels)
    except Exception:
        return 0


def dst_writes(plan: SubchunkablePlan) -> tuple[int, int]:
    """How many ``dst`` chunks the run writes, and their voxels: every chunk (clipped to dst's
    bounds) that the region's processed part (all of it but ``processing_gap`` s) meets, whole."""
    if plan.dst is None or plan.dst_bounds is None or plan.deferred:
        return 0, 0
    target = plan.region.intersection(plan.dst_bounds)
    if target.is_empty():
        return 0, 0
    offset = plan.dst.backend.get_voxel_offset(plan.dst_resolution)
    dchunk = plan.dst.backend.get_chunk_size(plan.dst_resolution)
    chunks, voxels = 1, 1
    for d, ax in enumerate(plan.top_grid.axes):
        spans = core_spans(ax, target.start[d], target.stop[d])
        cells = grid_spans(
            spans, int(offset[d]), int(dchunk[d]), plan.dst_bounds.start[d], plan.dst_bounds.stop[d]
        )
        chunks *= len(cells)
        voxels *= sum(b - a for a, b in cells)
    return chunks, voxels


def reduction_count(plan: SubchunkablePlan) -> int:
    """How many reduction tasks the run has: those of the reduction chunks (on dst's chunk grid)
    that the region's processed part meets (none lying wholly in ``processing_gap`` s)."""
    assert plan.dst is not None and plan.dst_bounds is not None and plan.reduction_chunk is not None
    target = plan.region.intersection(plan.dst_bounds)
    if target.is_empty():
        return 0
    offset = plan.dst.backend.get_voxel_offset(plan.dst_resolution)
    dchunk = plan.dst.backend.get_chunk_size(plan.dst_resolution)
    total = 1
    for d, ax in enumerate(plan.top_grid.axes):
        start = offset[d] + ((target.start[d] - offset[d]) // dchunk[d]) * dchunk[d]
        spans = core_spans(ax, target.start[d], target.stop[d])
        total *= len(grid_spans(spans, start, plan.reduction_chunk[d], start, target.stop[d]))
    return total


def expected_tasks(
    plan: SubchunkablePlan, sections: bool = False
) -> list[tuple[str, int, float, float]]:
    """``(operation name, tasks, voxels, bytes written)`` of each kind of task the run yields,
    for the progress bars' totals and the final summary: the top-level tasks process the
    region; the bytes written to dst are those of the tasks that write it (the reduction's, when
    there is one). With ``sections`` (:func:`uses_section_tasks`), the section tasks do both."""
    name = plan.task_name or plan.op_name
    top = math.ceil(plan.top_grid.num_chunks / plan.task_stack_size)
    written = float(dst_writes(plan)[1] * _voxel_bytes(plan.dst)) if plan.dst is not None else 0.0
    waves = section_waves(plan) if sections else None
    if waves is not None:
        return [(section_task_name(plan), waves, float(plan.region.size()), written)]
    if plan_reducer(plan) is None or plan.reduction_chunk is None:
        return [(name, top, float(plan.region.size()), written)]
    reductions = reduction_count(plan)
    return [
        (name, top, float(plan.region.size()), 0.0),
        (f"{name} reduction", reductions, 0.0, written),
    ]


def declare_expected_tasks(plan: SubchunkablePlan, sections: bool = False) -> None:
    """Tell the running ``mazepa.execute`` the run's task counts (see :func:`expected_tasks`)."""
    from zetta_utils.mazepa.progress import expect_tasks

    for name, tasks, voxels, written in expected_tasks(plan, sections):
        expect_tasks(name, tasks, voxels=voxels, bytes_written=written)
