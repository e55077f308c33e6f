"""The plan of a subchunkable run, made from its arguments in a few named stages.

:func:`plan_subchunkable` reads top to bottom in the order a run needs the decisions: the
arguments normalised per level, the work, where outputs go, the chunk sizes, the region, the
chunks fitted to the region, how top-level outputs reach ``dst``, the reduction chunks, the
caching of inputs, and the run's identity. Every check runs here (or in the rules of
:mod:`.subchunkable_args`), before any task runs and before any file is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa import id_generation

from .chunk_grid import Box, ChunkGrid, Int3, box_from_bbox
from .fn_check import check_fn_arguments
from .intermediaries import PieceStore, join_url, stored_data_type
from .subchunkable_args import SubchunkableArgs, fmt, int3, is_vec3, per_level, taking
from .volumetric_apply_flow import SubchunkablePlan, TopMode
from .volumetric_callable_operation import VolumetricCallableOperation, is_layer, op_name_of

__all__ = ["make_subchunkable_plan", "plan_subchunkable", "stored_resolution"]


@attrs.frozen
class Levels:
    """The sizes, normalised: one entry per level, largest first, where given per level."""

    res: Vec3D[float]
    chunks: tuple[Int3, ...]
    crops: tuple[Int3, ...]
    blends: tuple[Int3, ...]
    modes: tuple[str, ...]
    gap: Int3
    roi_crop: Int3
    stack: int
    cache_level: int
    max_reduction: Any
    """``max_reduction_chunk_size`` or its other spelling; checked with the reduction chunks."""

    @property
    def count(self) -> int:
        return len(self.chunks)


@attrs.frozen
class Work:
    """What runs at each bottom-level chunk."""

    op: Any
    op_name: str
    op_args: tuple[Any, ...]
    op_kwargs: dict[str, Any]
    input_resolution: Vec3D[float]


@attrs.frozen
class DstGrid:
    """What the plan needs to know of ``dst`` at ``dst_resolution``."""

    resolution: Vec3D[float]
    """``dst_resolution`` as ``dst`` stores it."""
    bounds: Box
    chunk: Int3
    offset: Int3
    dtype: Any
    num_channels: int


@attrs.frozen
class Region:
    """The region as given (``bbox``, and in voxels), and as processed (``box``)."""

    bbox: BBox3D
    given: Box
    box: Box


# --- the pipeline ------------------------------------------------------------------------------
def plan_subchunkable(args: SubchunkableArgs) -> tuple[SubchunkablePlan, dict[str, Any]]:
    """The plan of a run of ``build_subchunkable_apply_flow`` with ``args``; also returns facts
    for the summary."""
    levels = normalised_levels(args)
    work = the_work(args, levels)
    dirs = intermediaries_dirs(args, levels)
    levels, expand = sized_before_the_region(args, levels)
    region = the_region(args, levels.res)
    grid, region = region_in_dst(args, levels.res, region)
    levels, region = chunks_fitted_to_region(args, levels, region, expand)
    check_level_geometry(levels)
    top_mode = how_top_outputs_reach_dst(args, levels, region, grid)
    reduction_chunk = reduction_chunks(args, levels, grid)
    # after the checks of sizes and layers (their errors first), before anything runs
    check_fn_arguments(args.fn, args.op, work.op_kwargs, stacked=levels.stack > 1)
    prefetch_level = input_caching_level(levels, work)
    plan = the_plan(
        args, levels, work, dirs, region, grid, top_mode, reduction_chunk, prefetch_level
    )
    facts = {
        "original_bbox": region.bbox,
        "original_region": region.given,
        "level_intermediaries_dirs": dirs,
        "allow_cache_up_to_level": levels.cache_level,
        "expand_bbox_resolution": args.expand_bbox_resolution,
        "expand_bbox_backend": args.expand_bbox_backend,
        "expand_bbox_processing": expand,
        "dst_chunk": None if grid is None else grid.chunk,
    }
    return plan, facts


@taking(SubchunkableArgs)
def make_subchunkable_plan(args: SubchunkableArgs) -> tuple[SubchunkablePlan, dict[str, Any]]:
    """Check the arguments of ``build_subchunkable_apply_flow`` and make the plan; also returns
    facts for the summary."""
    return plan_subchunkable(args)


# --- the stages, in order ----------------------------------------------------------------------
def normalised_levels(args: SubchunkableArgs) -> Levels:
    """The checked sizes (see the rules of :class:`.SubchunkableArgs`), one entry per level."""
    c = args.checked
    if args.max_reduction_chunk_size is not None and args.max_reduction_chunk_sizes is not None:
        raise ValueError("give `max_reduction_chunk_size` or `max_reduction_chunk_sizes`, not both")
    return Levels(
        res=c["dst_resolution"],
        chunks=c["processing_chunk_sizes"],
        crops=c["processing_crop_pads"],
        blends=c["processing_blend_pads"],
        modes=c["processing_blend_modes"],
        gap=c["processing_gap"],
        roi_crop=c["roi_crop_pad"],
        stack=c["task_stack_size"],
        cache_level=c["allow_cache_up_to_level"],
        max_reduction=(
            args.max_reduction_chunk_size
            if args.max_reduction_chunk_size is not None
            else args.max_reduction_chunk_sizes
        ),
    )


def the_work(args: SubchunkableArgs, levels: Levels) -> Work:
    """The operation run at each bottom-level chunk (``fn`` wrapped, or ``op``), with the bottom
    crop added, and its arguments."""
    fn, op = args.fn, args.op
    if (fn is None) == (op is None):
        raise ValueError("give exactly one of `fn` (a function of tensors) and `op` (an operation)")
    if op is not None and args.fn_semaphores is not None:
        raise ValueError("`fn_semaphores` applies to `fn` only; an `op` takes its own semaphores")
    op_kwargs = {} if args.op_kwargs is None else args.op_kwargs
    if not isinstance(op_kwargs, Mapping) or not all(isinstance(k, str) for k in op_kwargs):
        raise TypeError(
            f"`op_kwargs` must be a mapping of argument names to values, got {op_kwargs!r}"
        )
    op_args = tuple(args.op_args)
    if op_args:
        raise ValueError(
            f"`op_args` must be empty (it exists for typing only, as in the original), got "
            f"{len(op_args)} argument(s); give `fn` / `op` its arguments by name in `op_kwargs`"
        )
    base_op: Any
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {fn!r}")
        base_op = VolumetricCallableOperation(
            fn, fn_semaphores=args.fn_semaphores, operation_name=args.task_name
        )
    else:
        if not callable(op):
            raise TypeError(f"`op` must be callable as op(idx, dst, **op_kwargs), got {op!r}")
        base_op = op
    level_op = _with_bottom_crop(base_op, levels)
    _check_stackable(level_op, levels.stack)
    get_input_res = getattr(level_op, "get_input_resolution", None)
    input_res = Vec3D(*get_input_res(levels.res)) if callable(get_input_res) else levels.res
    return Work(
        op=level_op,
        op_name=args.task_name or op_name_of(level_op),
        op_args=op_args,
        op_kwargs=dict(op_kwargs),
        input_resolution=input_res,
    )


def _with_bottom_crop(base_op: Any, levels: Levels) -> Any:
    bottom = levels.crops[-1]
    if not any(bottom):
        return base_op
    adder = getattr(base_op, "with_added_crop_pad", None)
    if not callable(adder):
        raise ValueError(
            f"processing_crop_pads[{levels.count - 1}] = {fmt(bottom)} needs an `op` with "
            "with_added_crop_pad(crop_pad); this one has none"
        )
    return adder(Vec3D(*bottom))


def _check_stackable(level_op: Any, stack: int) -> None:
    if stack == 1 or isinstance(level_op, VolumetricCallableOperation):
        return
    methods = ("read", "processing_fn", "write")
    missing = [m for m in methods if not callable(getattr(level_op, m, None))]
    if missing:
        raise TypeError(
            f"`task_stack_size` = {stack} runs the bottom-level chunks through the operation "
            f"stacked: its read(), processing_fn() and write() (the original's "
            f"StackableVolumetricOpProtocol); {type(level_op).__name__} has no "
            f"{', '.join(m + '()' for m in missing)}. Use `fn`, or task_stack_size 1"
        )


def intermediaries_dirs(args: SubchunkableArgs, levels: Levels) -> tuple[str | None, ...] | None:
    """Where outputs go: straight into ``dst`` (``skip_intermediaries``: no directories), or
    through intermediaries under one directory per level."""
    dst, skip = args.dst, args.skip_intermediaries
    if dst is None:
        if not skip:
            raise ValueError(
                "`dst` may be None only with skip_intermediaries=True (an op that writes by itself)"
            )
        for name, bad in (
            ("expand_bbox_backend", args.expand_bbox_backend),
            ("max_reduction_chunk_size", levels.max_reduction is not None),
            ("auto_bbox", args.auto_bbox),
        ):
            if bad:
                raise ValueError(f"`{name}` needs `dst`, which is None")
    if levels.modes[0] == "defer" and (dst is None or skip):
        raise ValueError(
            'processing_blend_modes "defer" needs `dst` and intermediaries (not '
            "skip_intermediaries)"
        )
    if skip:
        _check_nothing_to_blend(args, levels)
        return None
    dirs = _level_dirs(args.level_intermediaries_dirs, levels.count)
    assert dst is not None
    if dst.index_procs:
        raise ValueError(
            "`dst` must not have index_procs: reductions write dst chunks where they lie"
        )
    return dirs


def _check_nothing_to_blend(args: SubchunkableArgs, levels: Levels) -> None:
    """``skip_intermediaries`` writes each output where it lies: no blend, crops only at the
    bottom, no intermediaries."""
    if args.level_intermediaries_dirs is not None:
        raise ValueError(
            "`level_intermediaries_dirs` is not used with skip_intermediaries=True; remove one "
            "of them"
        )
    if args.reduction_worker_type is not None:
        raise ValueError(
            "`reduction_worker_type` is not used with skip_intermediaries=True (there is no "
            "reduction)"
        )
    for i, blend in enumerate(levels.blends):
        if any(blend):
            raise ValueError(
                f"skip_intermediaries=True writes results straight into dst, so nothing can be "
                f"blended: processing_blend_pads[{i}] = {fmt(blend)} must be (0, 0, 0)"
            )
    for i, crop in enumerate(levels.crops[:-1]):
        if any(crop):
            raise ValueError(
                f"skip_intermediaries=True allows a crop only at the bottom level: "
                f"processing_crop_pads[{i}] = {fmt(crop)} must be (0, 0, 0)"
            )
    if any(levels.roi_crop):
        raise ValueError(
            f"skip_intermediaries=True cannot crop the region: roi_crop_pad = "
            f"{fmt(levels.roi_crop)} must be (0, 0, 0)"
        )


def _level_dirs(given: Any, num_levels: int) -> tuple[str | None, ...]:
    if given is None:
        raise ValueError(
            "`level_intermediaries_dirs` is required (one directory per level, e.g. "
            "file://~/.zetta_utils/tmp/) unless skip_intermediaries=True"
        )
    if isinstance(given, str):
        given = [given] * num_levels
    if len(given) != num_levels:
        raise ValueError(
            f"`level_intermediaries_dirs` has {len(given)} entries but there are {num_levels} "
            "levels; give one directory per level"
        )
    # Lower levels blend in the worker's memory, so their directories may be None, as the
    # original allows for levels that need none; the top level's is always needed.
    return tuple(
        None if d is None and i > 0 else _writable_dir(d, f"level_intermediaries_dirs[{i}]")
        for i, d in enumerate(given)
    )


def _writable_dir(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"`{name}` must be a directory path or URL (file://, gs://, s3://), got {value!r}"
        )
    vpath = precomputed.parse_path(value)
    if not vpath.is_writable:
        raise ValueError(f"`{name}` must be writable; {vpath.scheme}:// is read-only")
    return vpath.url


def sized_before_the_region(args: SubchunkableArgs, levels: Levels) -> tuple[Levels, bool]:
    """The options that size the chunks or grow the region, checked together; the chunks made
    divisible (``auto_divisibility``); and whether the region grows to whole top chunks."""
    gap = levels.gap
    if any(v % 2 for v in gap):
        raise ValueError(f"`processing_gap` must be even in every dim, got {fmt(gap)}")
    if any(gap):
        _check_gap(args, levels)
    shrink, expand = args.shrink_processing_chunk, args.expand_bbox_processing
    if shrink and expand:
        raise ValueError(
            "shrink_processing_chunk=True and expand_bbox_processing=True exclude each other; "
            "set expand_bbox_processing=False to shrink chunks to the region instead of "
            "growing it"
        )
    if args.auto_divisibility:
        if shrink:
            raise ValueError(
                "auto_divisibility and shrink_processing_chunk exclude each other; choose one"
            )
        if not expand:
            raise ValueError(
                "auto_divisibility needs expand_bbox_processing=True (the region grows to the "
                "new chunks)"
            )
        if args.expand_bbox_backend:
            raise ValueError(
                "auto_divisibility cannot be used with expand_bbox_backend (divisibility takes "
                "precedence over dst alignment)"
            )
        chunks = _auto_divisibility(levels.chunks, levels.crops, levels.blends)
        levels = attrs.evolve(levels, chunks=chunks)
    if args.exact_bbox_output:
        _check_exact_bbox_output(args.dst, args.skip_intermediaries, levels.blends)
        # as in the original: the region grows to whole chunks, but only the given one is written
        expand = not shrink
    return levels, expand


def _check_gap(args: SubchunkableArgs, levels: Levels) -> None:
    gap = levels.gap
    if any(levels.blends[0]):
        raise ValueError(
            f"`processing_gap` {fmt(gap)} leaves space between top-level chunks, so they "
            f"cannot be blended: processing_blend_pads[0] = {fmt(levels.blends[0])} must be "
            "(0, 0, 0)"
        )
    # these move the region's edges or the chunk sizes, and with them where the gaps fall
    for name in (
        "auto_divisibility",
        "shrink_processing_chunk",
        "expand_bbox_backend",
        "expand_bbox_resolution",
    ):
        if getattr(args, name):
            raise ValueError(
                f"a nonzero `processing_gap` {fmt(gap)} cannot be used with `{name}`=True: it "
                "would move where the gaps fall; give a region and chunk sizes that need no "
                f"adjusting, or set `{name}`=False"
            )


def _auto_divisibility(
    chunks: Sequence[Int3], crops: Sequence[Int3], blends: Sequence[Int3]
) -> tuple[Int3, ...]:
    """Upper levels' chunks rounded down so each level divides the padded level above."""
    new = list(chunks)
    for i in range(len(chunks) - 1, 0, -1):
        sizes = []
        for d in range(3):
            pads = 2 * crops[i - 1][d] + 2 * blends[i - 1][d]
            region = chunks[i - 1][d] + pads
            size = (region // new[i][d]) * new[i][d] - pads
            if size < max(1, 2 * blends[i - 1][d]):
                raise ValueError(
                    f"auto_divisibility: processing_chunk_sizes[{i - 1}] {fmt(chunks[i - 1])} "
                    f"with crop {fmt(crops[i - 1])} and blend {fmt(blends[i - 1])} cannot hold "
                    f"a whole chunk of processing_chunk_sizes[{i}] {fmt(new[i])} in "
                    f"{'xyz'[d]}; make processing_chunk_sizes[{i - 1}] larger"
                )
            sizes.append(size)
        new[i - 1] = (sizes[0], sizes[1], sizes[2])
    return tuple(new)


def _check_exact_bbox_output(
    dst: VolumetricLayer | None, skip_intermediaries: bool, blends: Sequence[Int3]
) -> None:
    """The original's conditions for ``exact_bbox_output``."""
    if dst is None:
        raise ValueError(
            "`exact_bbox_output` writes exactly the region into `dst`, so it needs `dst` "
            "(it is None)"
        )
    if skip_intermediaries:
        raise ValueError(
            "`exact_bbox_output` writes the edges of the region through intermediaries, so it "
            "cannot be used with skip_intermediaries=True"
        )
    for i, blend in enumerate(blends):
        if any(blend):
            raise ValueError(
                f"`exact_bbox_output` is not supported with blending (as in the original): "
                f"processing_blend_pads[{i}] = {fmt(blend)} must be (0, 0, 0)"
            )


def the_region(args: SubchunkableArgs, res: Vec3D[float]) -> Region:
    """The region, given exactly one way, in whole voxels of ``dst_resolution``."""
    bbox = _given_region(args, res)
    snapped = bbox.snapped((0, 0, 0), res, "expand") if args.expand_bbox_resolution else bbox
    box = box_from_bbox(snapped, res, "the region (bbox)")
    if box.is_empty():
        raise ValueError(f"the region {snapped.pformat(res)} (voxels at {tuple(res)}) is empty")
    return Region(bbox=bbox, given=box, box=box)


def _given_region(args: SubchunkableArgs, res: Vec3D[float]) -> BBox3D:
    coords = [args.start_coord, args.end_coord, args.coord_resolution]
    given = [args.bbox is not None, any(c is not None for c in coords), bool(args.auto_bbox)]
    if sum(given) != 1:
        raise ValueError(
            "give the region exactly one way: `bbox`, or `start_coord` + `end_coord` + "
            "`coord_resolution`, or `auto_bbox=True` (the bounds of `dst`)"
        )
    if args.auto_bbox:
        if args.dst is None:
            raise ValueError("`auto_bbox` takes the bounds of `dst`, and `dst` is None")
        return args.dst.backend.get_bounds(res).bbox
    if args.bbox is not None:
        if not isinstance(args.bbox, BBox3D):
            raise TypeError(f"`bbox` must be a BBox3D, got {type(args.bbox).__name__}")
        return args.bbox
    if any(c is None for c in coords):
        raise ValueError(
            "`start_coord`, `end_coord` and `coord_resolution` must be given together"
        )
    return BBox3D.from_coords(
        args.start_coord, args.end_coord, args.coord_resolution  # type: ignore[arg-type]
    )


def region_in_dst(
    args: SubchunkableArgs, res: Vec3D[float], region: Region
) -> tuple[DstGrid | None, Region]:
    """``dst``'s bounds and chunk grid at ``dst_resolution``, which must hold the region; the
    region snapped outward to that grid (``expand_bbox_backend``)."""
    dst = args.dst
    if dst is None:
        return None, region
    stored = [r for r in dst.backend.get_resolutions() if r.allclose(res)]
    if not stored:
        raise ValueError(
            f"`dst` ({dst.name}) does not store dst_resolution {tuple(res)} (stored: "
            f"{', '.join(str(tuple(r)) for r in dst.backend.get_resolutions())}); add the scale "
            "to its info (info_add_scales) or pick a stored resolution"
        )
    grid = DstGrid(
        resolution=stored[0],
        bounds=Box.from_index(dst.backend.get_bounds(stored[0])),
        chunk=_int_vec(dst.backend.get_chunk_size(stored[0])),
        offset=_int_vec(dst.backend.get_voxel_offset(stored[0])),
        dtype=dst.backend.dtype,
        num_channels=dst.backend.num_channels,
    )
    if not grid.bounds.contains(region.box):
        raise ValueError(
            f"the region {region.box.pformat()} (voxels at {tuple(res)}) is not inside the "
            f"bounds of `dst` {grid.bounds.pformat()} ({dst.name}); enlarge dst "
            "(info_voxel_offset / info_dataset_size) or the region"
        )
    if args.expand_bbox_backend:
        snapped = region.box.to_index(res).snapped(grid.offset, grid.chunk, "expand")
        box = Box.from_index(snapped).intersection(grid.bounds)
        region = Region(region.bbox, region.given, box)
    return grid, region


def _int_vec(v: Sequence[Any]) -> Int3:
    return (int(v[0]), int(v[1]), int(v[2]))


def chunks_fitted_to_region(
    args: SubchunkableArgs, levels: Levels, region: Region, expand: bool
) -> tuple[Levels, Region]:
    """Chunks shrunk to the region (``shrink_processing_chunk``), or the region grown at its end
    to whole top-level chunks and gaps (``expand``); either way they must tile it."""
    chunks, gap, roi_crop = levels.chunks, levels.gap, levels.roi_crop
    shape = region.box.padded(roi_crop).shape
    if args.shrink_processing_chunk:
        new = [tuple(min(c, s) for c, s in zip(chunks[0], shape, strict=True))]
        for c in chunks[1:]:
            new.append(tuple(min(a, b) for a, b in zip(c, new[-1], strict=True)))
        chunks = tuple(new)  # type: ignore[arg-type]
        levels = attrs.evolve(levels, chunks=chunks)
    elif expand:
        grow = []
        for d in range(3):
            stride = chunks[0][d] + gap[d]
            n = max(1, math.ceil((shape[d] + gap[d]) / stride))
            grow.append(n * stride - gap[d] - shape[d])
        stop = [e + g for e, g in zip(region.box.stop, grow, strict=True)]
        region = Region(region.bbox, region.given, Box.of(region.box.start, stop))
    shape = region.box.padded(roi_crop).shape
    for d in range(3):
        stride = chunks[0][d] + gap[d]
        if (shape[d] + gap[d]) % stride != 0:
            raise ValueError(
                f"the region {region.box.pformat()} grown by roi_crop_pad {fmt(roi_crop)} is "
                f"{fmt(shape)} voxels, which top-level chunks of {fmt(chunks[0])} (with "
                f"processing_gap {fmt(gap)}) do not tile in {'xyz'[d]}; set "
                "expand_bbox_processing=True to grow the region, or change the chunk size"
            )
    return levels, region


def check_level_geometry(levels: Levels) -> None:
    """Each level's chunk divides the padded chunk of the level above; blends fit the chunk."""
    chunks, crops, blends = levels.chunks, levels.crops, levels.blends
    for i in range(1, levels.count):
        _check_divides(i, chunks, crops, blends)
    for i in range(levels.count):
        for d in range(3):
            if 2 * blends[i][d] > chunks[i][d]:
                raise ValueError(
                    f"processing_blend_pads[{i}] = {fmt(blends[i])} must be at most half of "
                    f"processing_chunk_sizes[{i}] = {fmt(chunks[i])} (in {'xyz'[d]}: "
                    f"{blends[i][d]} > {chunks[i][d]} / 2); use a blend pad of at most "
                    f"{chunks[i][d] // 2} or a larger chunk"
                )


def _check_divides(
    i: int, chunks: Sequence[Int3], crops: Sequence[Int3], blends: Sequence[Int3]
) -> None:
    pads = tuple(2 * crops[i - 1][d] + 2 * blends[i - 1][d] for d in range(3))
    region = tuple(chunks[i - 1][d] + pads[d] for d in range(3))
    bad = [d for d in range(3) if region[d] % chunks[i][d] != 0]
    if not bad:
        return
    lower = tuple(_divisor_near(region[d], chunks[i][d]) for d in range(3))
    upper = tuple(
        max(1, round(region[d] / chunks[i][d])) * chunks[i][d] - pads[d] for d in range(3)
    )
    dims = ", ".join("xyz"[d] for d in bad)
    raise ValueError(
        f"processing_chunk_sizes[{i}] = {fmt(chunks[i])} must evenly divide the padded chunk "
        f"of the level above (in {dims}): processing_chunk_sizes[{i - 1}] {fmt(chunks[i - 1])} "
        f"+ 2 * processing_crop_pads[{i - 1}] {fmt(crops[i - 1])} + 2 * "
        f"processing_blend_pads[{i - 1}] {fmt(blends[i - 1])} = {fmt(region)}. "
        f"Sizes that would work: processing_chunk_sizes[{i}] = {fmt(lower)}, or "
        f"processing_chunk_sizes[{i - 1}] = {fmt(upper)} (or set auto_divisibility=True)"
    )


def _divisor_near(n: int, target: int) -> int:
    best = 1
    for d in range(1, n + 1):
        if n % d == 0 and abs(d - target) < abs(best - target):
            best = d
    return best


def how_top_outputs_reach_dst(
    args: SubchunkableArgs, levels: Levels, region: Region, grid: DstGrid | None
) -> TopMode:
    """``skip``: each bottom output is written where it lies (it must be aligned to dst's
    chunks); ``direct``: each top-level output is whole dst chunks, written as it is;
    ``pieces``: through intermediaries, merged by the reduction."""
    chunks, gap = levels.chunks, levels.gap
    processing = region.box.padded(levels.roi_crop)
    counts = tuple((processing.shape[d] + gap[d]) // (chunks[0][d] + gap[d]) for d in range(3))
    if args.skip_intermediaries:
        if grid is not None:
            _check_skip_aligned(levels, processing, counts, grid)
        return "skip"
    if any(levels.blends[0]) or any(levels.roi_crop) or any(gap) or levels.modes[0] == "defer":
        return "pieces"
    assert grid is not None
    aligned = all(
        _chunks_aligned(
            processing.start[d], chunks[0][d], counts[d], chunks[0][d], 1,
            grid.offset[d], grid.chunk[d], grid.bounds.stop[d],
        )
        for d in range(3)
    )
    if not aligned:
        return "pieces"
    if args.exact_bbox_output and not _box_aligned(region.given, grid):
        return "pieces"  # the edges of what is written are not whole dst chunks: merged
    return "direct"


def _check_skip_aligned(
    levels: Levels, processing: Box, counts: Sequence[int], grid: DstGrid
) -> None:
    chunks, gap, bottom = levels.chunks, levels.gap, levels.chunks[-1]
    for d in range(3):
        if not _chunks_aligned(
            processing.start[d], chunks[0][d] + gap[d], counts[d], bottom[d],
            chunks[0][d] // bottom[d], grid.offset[d], grid.chunk[d], grid.bounds.stop[d],
        ):
            raise ValueError(
                "skip_intermediaries=True writes each bottom-level chunk straight into dst, "
                f"so the chunks must be aligned to dst's backend chunks; in {'xyz'[d]}, "
                f"chunks of processing_chunk_sizes[{levels.count - 1}] = {fmt(bottom)} from "
                f"{processing.start[d]} (top-level stride {chunks[0][d] + gap[d]}) do not "
                f"align with dst chunks of {grid.chunk[d]} from {grid.offset[d]}. Use "
                "expand_bbox_backend=True, chunk sizes that are multiples of dst's chunk "
                "size, or intermediaries (level_intermediaries_dirs)"
            )


def _box_aligned(box: Box, grid: DstGrid) -> bool:
    """Whether ``box`` is made of whole dst chunks (a chunk cut by the dataset end counts)."""
    offset, dchunk, bounds = grid.offset, grid.chunk, grid.bounds
    return all(
        (box.start[d] - offset[d]) % dchunk[d] == 0
        and ((box.stop[d] - offset[d]) % dchunk[d] == 0 or box.stop[d] >= bounds.stop[d])
        for d in range(3)
    )


def _chunks_aligned(
    first: int,
    top_stride: int,
    top_count: int,
    size: int,
    per_top: int,
    offset: int,
    dchunk: int,
    bound_end: int,
) -> bool:
    """Whether the boxes ``[first + j*top_stride + k*size, ... + size)`` (``j < top_count``,
    ``k < per_top``) are all aligned to a dst chunk grid (``offset``, ``dchunk``): each starts on
    it and ends on it or at/after the dataset end ``bound_end``."""
    if (first - offset) % dchunk != 0:
        return False
    if top_count > 1 and top_stride % dchunk != 0:
        return False
    if size % dchunk == 0:
        return True
    return top_count * per_top == 1 and first + size >= bound_end


def reduction_chunks(
    args: SubchunkableArgs, levels: Levels, grid: DstGrid | None
) -> Int3 | None:
    """The chunks the reduction merges intermediaries in: whole dst chunks, at least the top
    chunk, at most ``max_reduction_chunk_size``."""
    if grid is None or args.skip_intermediaries:
        return None
    top, dchunk, given = levels.chunks[0], grid.chunk, levels.max_reduction
    if given is None:
        bound = tuple(max(c, dc) for c, dc in zip(top, dchunk, strict=True))
    else:
        if not is_vec3(given):
            bound = per_level(given, "max_reduction_chunk_sizes", levels.count, 1)[0]
        else:
            bound = int3(given, "max_reduction_chunk_size", 1)
        for d in range(3):
            if bound[d] < top[d] or bound[d] < dchunk[d]:
                raise ValueError(
                    f"`max_reduction_chunk_size` {fmt(bound)} must be at least the top-level "
                    f"chunk {fmt(top)} and dst's backend chunk {fmt(dchunk)} in every "
                    f"dim ({'xyz'[d]} is {bound[d]})"
                )
    return _int_vec([(b // dc) * dc for b, dc in zip(bound, dchunk, strict=True)])


def input_caching_level(levels: Levels, work: Work) -> int | None:
    """The level (top-down) whose chunks read the inputs once for the levels below it
    (``allow_cache_up_to_level``); None: each bottom chunk reads its own."""
    prefetch_level = levels.count - 1 - levels.cache_level
    if prefetch_level == levels.count - 1:
        return None
    if not any(is_layer(v) for v in work.op_kwargs.values()):
        return None
    return prefetch_level


def the_plan(
    args: SubchunkableArgs,
    levels: Levels,
    work: Work,
    dirs: tuple[str | None, ...] | None,
    region: Region,
    grid: DstGrid | None,
    top_mode: TopMode,
    reduction_chunk: Int3 | None,
    prefetch_level: int | None,
) -> SubchunkablePlan:
    """The plan, named by a digest of everything that decides what it writes; with the store of
    the top-level outputs (``pieces``) under the first intermediaries directory."""
    output, processing_box = region.box, None
    if args.exact_bbox_output and region.given != region.box:
        output, processing_box = region.given, region.box.padded(levels.roi_crop)
    plan_id = id_generation.hash_object(
        (
            "subchunkable", work.op, work.op_args, work.op_kwargs, args.dst, tuple(levels.res),
            output, levels.roi_crop, levels.chunks, levels.crops, levels.blends, levels.modes,
            levels.gap, dirs, top_mode, reduction_chunk, prefetch_level, processing_box,
        )
    )
    store = None
    if top_mode == "pieces":
        assert dirs is not None and dirs[0] is not None and args.dst is not None and grid
        path = join_url(dirs[0], f"subchunkable-{plan_id[:20]}")
        store = _piece_store(args.dst, grid, levels, path, region.box, output)
    return SubchunkablePlan(
        op=work.op,
        op_args=work.op_args,
        op_kwargs=work.op_kwargs,
        op_name=work.op_name,
        dst=args.dst,
        dst_resolution=levels.res,
        input_resolution=work.input_resolution,
        region=output,
        roi_crop_pad=levels.roi_crop,
        chunk_sizes=levels.chunks,
        crop_pads=levels.crops,
        blend_pads=levels.blends,
        blend_modes=levels.modes,
        gap=levels.gap,
        top_mode=top_mode,
        dst_bounds=None if grid is None else grid.bounds,
        num_channels=1 if grid is None else grid.num_channels,
        dtype=grid.dtype if grid is not None and grid.dtype is not None else _default_dtype(),
        store=store,
        reduction_chunk=reduction_chunk,
        prefetch_level=prefetch_level,
        plan_id=plan_id,
        keep_intermediaries=args.keep_intermediaries,
        op_worker_type=args.op_worker_type,
        reduction_worker_type=args.reduction_worker_type,
        # as in the original, the top level's tasks hold several chunks only when it is the
        # bottom level; below, a worker runs the bottom chunks in stacks
        task_stack_size=levels.stack if levels.count == 1 else 1,
        task_name=args.task_name,
        processing_box=processing_box,
        bottom_stack=levels.stack,
    )


def _piece_store(
    dst: VolumetricLayer, grid: DstGrid, levels: Levels, path: str, region: Box, output: Box
) -> PieceStore:
    """Where the top-level outputs of the (fitted) ``region`` are kept until reduced into
    ``output``."""
    return PieceStore(
        path,
        Vec3D(*grid.resolution),
        ChunkGrid.over(
            region.padded(levels.roi_crop), levels.chunks[0], levels.blends[0], levels.gap
        ),
        stored_data_type(dst.backend),
        grid.num_channels,
        region=output,
    )


def stored_resolution(dst: VolumetricLayer, res: Vec3D[float]) -> Vec3D[float]:
    return next(r for r in dst.backend.get_resolutions() if r.allclose(res))


def _default_dtype() -> Any:
    import torch

    return torch.float32
