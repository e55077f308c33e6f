"""``build_subchunkable_apply_flow``: run a function or operation chunkwise over a region, with
recursive subchunking, cropping, blending, intermediaries and reduction.

How a run is carried out is described in :mod:`.volumetric_apply_flow`; this module turns the
arguments into a validated :class:`~.volumetric_apply_flow.SubchunkablePlan`. Every check runs
here, when the flow is built, before any task runs and before any file is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zetta_utils import builder, mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa import id_generation

from .chunk_grid import Box, Int3, box_from_bbox
from .fn_check import check_fn_arguments
from .intermediaries import PieceStore, join_url, stored_data_type
from .reduction import BLEND_MODES
from .volumetric_apply_flow import (
    Reducer,
    SubchunkablePlan,
    TopMode,
    deferred_reduction_flow,
    subchunkable_flow,
)
from .volumetric_callable_operation import VolumetricCallableOperation, is_layer, op_name_of

__all__ = [
    "build_deferred_reduction_flow",
    "build_postpad_subchunkable_apply_flow",
    "build_subchunkable_apply_flow",
    "make_subchunkable_plan",
]

Vec3Like = Sequence[int] | Vec3D[int]


# --- argument parsing ------------------------------------------------------------------------------
def _is_vec3(value: Any) -> bool:
    if isinstance(value, Vec3D):
        return True
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _int3(value: Any, name: str, minimum: int = 0) -> Int3:
    if not _is_vec3(value):
        raise ValueError(f"`{name}` must be three integers (x, y, z), got {value!r}")
    out = []
    for v in value:
        if float(v) != int(v):
            raise ValueError(f"`{name}` must be three integers (x, y, z), got {value!r}")
        out.append(int(v))
    if any(v < minimum for v in out):
        raise ValueError(f"`{name}` must be three integers >= {minimum}, got {tuple(out)}")
    return (out[0], out[1], out[2])


def _per_level(value: Any, name: str, num_levels: int, minimum: int = 0) -> tuple[Int3, ...]:
    """One 3-vector (or one integer, for x, y and z) for all levels, or one per level."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value, value)
    if _is_vec3(value):
        vec = _int3(value, name, minimum)
        return tuple(vec for _ in range(num_levels))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(
            f"`{name}` must be three integers (for every level) or a list of {num_levels} of "
            f"them (one per level), got {value!r}"
        )
    if len(value) != num_levels:
        raise ValueError(
            f"`{name}` has {len(value)} entries but there are {num_levels} levels (the length of "
            f"`processing_chunk_sizes`); give one per level, largest first, or a single "
            "(x, y, z) for all"
        )
    return tuple(_int3(v, f"{name}[{i}]", minimum) for i, v in enumerate(value))


def _modes(value: Any, num_levels: int) -> tuple[str, ...]:
    if isinstance(value, str):
        modes: tuple[str, ...] = tuple(value for _ in range(num_levels))
    elif isinstance(value, Sequence):
        if len(value) != num_levels:
            raise ValueError(
                f"`processing_blend_modes` has {len(value)} entries but there are {num_levels} "
                "levels; give one per level, largest first, or a single mode for all"
            )
        modes = tuple(value)
    else:
        raise ValueError(f"`processing_blend_modes` must be a mode or a list of modes, got {value!r}")
    for i, mode in enumerate(modes):
        if mode not in BLEND_MODES:
            raise ValueError(
                f"`processing_blend_modes[{i}]` must be one of {', '.join(BLEND_MODES)}, got {mode!r}"
            )
        if mode == "defer" and i > 0:
            raise ValueError(
                f'`processing_blend_modes[{i}]` is "defer", which only the top level (index 0) may use'
            )
    return modes


def _fmt(v: Sequence[Any]) -> str:
    return "(" + ", ".join(str(x) for x in v) + ")"


def _divisors_near(n: int, target: int) -> int:
    best = 1
    for d in range(1, n + 1):
        if n % d == 0 and abs(d - target) < abs(best - target):
            best = d
    return best


def _check_divisibility(
    chunks: Sequence[Int3], crops: Sequence[Int3], blends: Sequence[Int3]
) -> None:
    for i in range(1, len(chunks)):
        region = tuple(chunks[i - 1][d] + 2 * crops[i - 1][d] + 2 * blends[i - 1][d] for d in range(3))
        bad = [d for d in range(3) if region[d] % chunks[i][d] != 0]
        if not bad:
            continue
        suggest_lower = tuple(_divisors_near(region[d], chunks[i][d]) for d in range(3))
        suggest_upper = tuple(
            max(1, round(region[d] / chunks[i][d])) * chunks[i][d] - 2 * crops[i - 1][d] - 2 * blends[i - 1][d]
            for d in range(3)
        )
        dims = ", ".join("xyz"[d] for d in bad)
        raise ValueError(
            f"processing_chunk_sizes[{i}] = {_fmt(chunks[i])} must evenly divide the padded chunk "
            f"of the level above (in {dims}): processing_chunk_sizes[{i - 1}] {_fmt(chunks[i - 1])} "
            f"+ 2 * processing_crop_pads[{i - 1}] {_fmt(crops[i - 1])} + 2 * "
            f"processing_blend_pads[{i - 1}] {_fmt(blends[i - 1])} = {_fmt(region)}. "
            f"Sizes that would work: processing_chunk_sizes[{i}] = {_fmt(suggest_lower)}, or "
            f"processing_chunk_sizes[{i - 1}] = {_fmt(suggest_upper)} (or set auto_divisibility=True)"
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
                    f"auto_divisibility: processing_chunk_sizes[{i - 1}] {_fmt(chunks[i - 1])} with "
                    f"crop {_fmt(crops[i - 1])} and blend {_fmt(blends[i - 1])} cannot hold a whole "
                    f"chunk of processing_chunk_sizes[{i}] {_fmt(new[i])} in {'xyz'[d]}; "
                    f"make processing_chunk_sizes[{i - 1}] larger"
                )
            sizes.append(size)
        new[i - 1] = (sizes[0], sizes[1], sizes[2])
    return tuple(new)


def _parse_region(
    dst: VolumetricLayer | None,
    dst_resolution: Vec3D[float],
    bbox: BBox3D | None,
    start_coord: Vec3Like | None,
    end_coord: Vec3Like | None,
    coord_resolution: Sequence[float] | None,
    auto_bbox: bool,
) -> BBox3D:
    coords = [start_coord, end_coord, coord_resolution]
    given = [bbox is not None, any(c is not None for c in coords), bool(auto_bbox)]
    if sum(given) != 1:
        raise ValueError(
            "give the region exactly one way: `bbox`, or `start_coord` + `end_coord` + "
            "`coord_resolution`, or `auto_bbox=True` (the bounds of `dst`)"
        )
    if auto_bbox:
        if dst is None:
            raise ValueError("`auto_bbox` takes the bounds of `dst`, and `dst` is None")
        return dst.backend.get_bounds(dst_resolution).bbox
    if bbox is not None:
        if not isinstance(bbox, BBox3D):
            raise TypeError(f"`bbox` must be a BBox3D, got {type(bbox).__name__}")
        return bbox
    if any(c is None for c in coords):
        raise ValueError("`start_coord`, `end_coord` and `coord_resolution` must be given together")
    return BBox3D.from_coords(start_coord, end_coord, coord_resolution)  # type: ignore[arg-type]


def _check_dir(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a directory path or URL (file://, gs://, s3://), got {value!r}")
    vpath = precomputed.parse_path(value)
    if not vpath.is_writable:
        raise ValueError(f"`{name}` must be writable; {vpath.scheme}:// is read-only")
    return vpath.url


def _check_exact_bbox_output(dst: VolumetricLayer | None, skip_intermediaries: bool, blends: Sequence[Int3]) -> None:
    """The original's conditions for ``exact_bbox_output``."""
    if dst is None:
        raise ValueError("`exact_bbox_output` writes exactly the region into `dst`, so it needs `dst` (it is None)")
    if skip_intermediaries:
        raise ValueError(
            "`exact_bbox_output` writes the edges of the region through intermediaries, so it cannot "
            "be used with skip_intermediaries=True"
        )
    for i, blend in enumerate(blends):
        if any(blend):
            raise ValueError(
                f"`exact_bbox_output` is not supported with blending (as in the original): "
                f"processing_blend_pads[{i}] = {_fmt(blend)} must be (0, 0, 0)"
            )


def _box_aligned(box: Box, offset: Int3 | None, dchunk: Int3 | None, bounds: Box | None) -> bool:
    """Whether ``box`` is made of whole dst chunks (a chunk cut by the dataset end counts)."""
    assert offset is not None and dchunk is not None and bounds is not None
    return all(
        (box.start[d] - offset[d]) % dchunk[d] == 0
        and ((box.stop[d] - offset[d]) % dchunk[d] == 0 or box.stop[d] >= bounds.stop[d])
        for d in range(3)
    )


def _chunks_aligned(first: int, top_stride: int, top_count: int, size: int, per_top: int, offset: int, dchunk: int, bound_end: int) -> bool:
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


# --- the plan --------------------------------------------------------------------------------------
def make_subchunkable_plan(
    *,
    dst: VolumetricLayer | None,
    dst_resolution: Sequence[float],
    processing_chunk_sizes: Sequence[Sequence[int]],
    processing_gap: Sequence[int] = (0, 0, 0),
    processing_crop_pads: Any = (0, 0, 0),
    processing_blend_pads: Any = (0, 0, 0),
    processing_blend_modes: Any = "quadratic",
    level_intermediaries_dirs: Sequence[str | None] | None = None,
    skip_intermediaries: bool = False,
    max_reduction_chunk_size: Any = None,
    expand_bbox_resolution: bool = False,
    expand_bbox_backend: bool = False,
    expand_bbox_processing: bool = True,
    exact_bbox_output: bool = False,
    shrink_processing_chunk: bool = False,
    auto_divisibility: bool = False,
    allow_cache_up_to_level: int | None = None,
    op_worker_type: str | None = None,
    reduction_worker_type: str | None = None,
    task_stack_size: int | None = None,
    fn: Callable[..., Any] | None = None,
    fn_semaphores: Sequence[str] | None = None,
    op: Any = None,
    op_args: Iterable[Any] = (),
    op_kwargs: Mapping[str, Any] | None = None,
    bbox: BBox3D | None = None,
    start_coord: Vec3Like | None = None,
    end_coord: Vec3Like | None = None,
    coord_resolution: Sequence[float] | None = None,
    auto_bbox: bool = False,
    roi_crop_pad: Sequence[int] = (0, 0, 0),
    task_name: str | None = None,
    keep_intermediaries: bool = False,
) -> tuple[SubchunkablePlan, dict[str, Any]]:
    """Validate the arguments of ``build_subchunkable_apply_flow`` and make the plan; also returns
    facts for the summary."""
    # --- basic types ---------------------------------------------------------------------------
    if dst is not None and not isinstance(dst, VolumetricLayer):
        raise TypeError(f"`dst` must be a volumetric layer (build_ts_layer, build_cv_layer) or None, got {type(dst).__name__}")
    try:
        res = Vec3D(*dst_resolution)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`dst_resolution` must be three positive numbers, got {dst_resolution!r}") from e
    if not all(r > 0 for r in res):
        raise ValueError(f"`dst_resolution` must be three positive numbers, got {tuple(res)}")
    if _is_vec3(processing_chunk_sizes):
        processing_chunk_sizes = [processing_chunk_sizes]  # type: ignore[list-item]
    if isinstance(processing_chunk_sizes, (str, bytes)) or not isinstance(processing_chunk_sizes, Sequence) or not processing_chunk_sizes:
        raise ValueError(
            "`processing_chunk_sizes` must be a list of (x, y, z) chunk sizes, one per level, "
            f"largest first; got {processing_chunk_sizes!r}"
        )
    chunks = tuple(_int3(c, f"processing_chunk_sizes[{i}]", 1) for i, c in enumerate(processing_chunk_sizes))
    levels = len(chunks)
    crops = _per_level(processing_crop_pads, "processing_crop_pads", levels)
    blends = _per_level(processing_blend_pads, "processing_blend_pads", levels)
    modes = _modes(processing_blend_modes, levels)
    gap = _int3(processing_gap, "processing_gap")
    roi_crop = _int3(roi_crop_pad, "roi_crop_pad")
    for name, flag in (
        ("skip_intermediaries", skip_intermediaries),
        ("expand_bbox_resolution", expand_bbox_resolution),
        ("expand_bbox_backend", expand_bbox_backend),
        ("expand_bbox_processing", expand_bbox_processing),
        ("exact_bbox_output", exact_bbox_output),
        ("shrink_processing_chunk", shrink_processing_chunk),
        ("auto_divisibility", auto_divisibility),
        ("auto_bbox", auto_bbox),
        ("keep_intermediaries", keep_intermediaries),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"`{name}` must be True or False, got {flag!r}")
    for name, wt in (("op_worker_type", op_worker_type), ("reduction_worker_type", reduction_worker_type)):
        if wt is not None and (not isinstance(wt, str) or not wt):
            raise ValueError(f"`{name}` must be a non-empty string or None, got {wt!r}")
    stack = 1 if task_stack_size is None else task_stack_size
    if isinstance(stack, bool) or not isinstance(stack, int) or stack < 1:
        raise ValueError(f"`task_stack_size` must be an integer >= 1, got {task_stack_size!r}")
    cache_level = levels - 1 if allow_cache_up_to_level is None else allow_cache_up_to_level
    if isinstance(cache_level, bool) or not isinstance(cache_level, int):
        raise ValueError(
            f"`allow_cache_up_to_level` must be a level number from 0 (the smallest) to "
            f"{levels - 1} (the largest), got {allow_cache_up_to_level!r}"
        )
    # as in the original, a number past either end means the nearest level
    cache_level = min(max(cache_level, 0), levels - 1)
    if task_name is not None and not isinstance(task_name, str):
        raise TypeError(f"`task_name` must be a string, got {task_name!r}")

    # --- the work --------------------------------------------------------------------------------
    if (fn is None) == (op is None):
        raise ValueError("give exactly one of `fn` (a function of tensors) and `op` (an operation)")
    if op is not None and fn_semaphores is not None:
        raise ValueError("`fn_semaphores` applies to `fn` only; an `op` takes its own semaphores")
    if op_kwargs is None:
        op_kwargs = {}
    if not isinstance(op_kwargs, Mapping) or not all(isinstance(k, str) for k in op_kwargs):
        raise TypeError(f"`op_kwargs` must be a mapping of argument names to values, got {op_kwargs!r}")
    op_args_t = tuple(op_args)
    if op_args_t:
        raise ValueError(
            f"`op_args` must be empty (it exists for typing only, as in the original), got "
            f"{len(op_args_t)} argument(s); give `fn` / `op` its arguments by name in `op_kwargs`"
        )
    base_op: Any
    if fn is not None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {fn!r}")
        base_op = VolumetricCallableOperation(fn, fn_semaphores=fn_semaphores, operation_name=task_name)
    else:
        if not callable(op):
            raise TypeError(f"`op` must be callable as op(idx, dst, **op_kwargs), got {op!r}")
        base_op = op
    if any(crops[-1]):
        adder = getattr(base_op, "with_added_crop_pad", None)
        if not callable(adder):
            raise ValueError(
                f"processing_crop_pads[{levels - 1}] = {_fmt(crops[-1])} needs an `op` with "
                "with_added_crop_pad(crop_pad); this one has none"
            )
        level_op = adder(Vec3D(*crops[-1]))
    else:
        level_op = base_op
    if stack > 1 and not isinstance(level_op, VolumetricCallableOperation):
        missing = [m for m in ("read", "processing_fn", "write") if not callable(getattr(level_op, m, None))]
        if missing:
            raise TypeError(
                f"`task_stack_size` = {stack} runs the bottom-level chunks through the operation "
                f"stacked: its read(), processing_fn() and write() (the original's "
                f"StackableVolumetricOpProtocol); {type(level_op).__name__} has no "
                f"{', '.join(m + '()' for m in missing)}. Use `fn`, or task_stack_size 1"
            )
    get_input_res = getattr(level_op, "get_input_resolution", None)
    input_res = Vec3D(*get_input_res(res)) if callable(get_input_res) else res
    op_name = task_name or op_name_of(level_op)

    # --- dst and intermediaries -----------------------------------------------------------------
    if dst is None:
        if not skip_intermediaries:
            raise ValueError("`dst` may be None only with skip_intermediaries=True (an op that writes by itself)")
        for name, bad in (
            ("expand_bbox_backend", expand_bbox_backend),
            ("max_reduction_chunk_size", max_reduction_chunk_size is not None),
            ("auto_bbox", auto_bbox),
        ):
            if bad:
                raise ValueError(f"`{name}` needs `dst`, which is None")
    if modes[0] == "defer":
        if dst is None or skip_intermediaries:
            raise ValueError('processing_blend_modes "defer" needs `dst` and intermediaries (not skip_intermediaries)')
    if skip_intermediaries:
        if level_intermediaries_dirs is not None:
            raise ValueError("`level_intermediaries_dirs` is not used with skip_intermediaries=True; remove one of them")
        if reduction_worker_type is not None:
            raise ValueError("`reduction_worker_type` is not used with skip_intermediaries=True (there is no reduction)")
        for i, blend in enumerate(blends):
            if any(blend):
                raise ValueError(
                    f"skip_intermediaries=True writes results straight into dst, so nothing can be "
                    f"blended: processing_blend_pads[{i}] = {_fmt(blend)} must be (0, 0, 0)"
                )
        for i, crop in enumerate(crops[:-1]):
            if any(crop):
                raise ValueError(
                    f"skip_intermediaries=True allows a crop only at the bottom level: "
                    f"processing_crop_pads[{i}] = {_fmt(crop)} must be (0, 0, 0)"
                )
        if any(roi_crop):
            raise ValueError(f"skip_intermediaries=True cannot crop the region: roi_crop_pad = {_fmt(roi_crop)} must be (0, 0, 0)")
        dirs: tuple[str | None, ...] | None = None
    else:
        if level_intermediaries_dirs is None:
            raise ValueError(
                "`level_intermediaries_dirs` is required (one directory per level, e.g. "
                "file://~/.zetta_utils/tmp/) unless skip_intermediaries=True"
            )
        if isinstance(level_intermediaries_dirs, str):
            level_intermediaries_dirs = [level_intermediaries_dirs] * levels
        if len(level_intermediaries_dirs) != levels:
            raise ValueError(
                f"`level_intermediaries_dirs` has {len(level_intermediaries_dirs)} entries but there "
                f"are {levels} levels; give one directory per level"
            )
        # Lower levels blend in the worker's memory, so their directories may be None, as the
        # original allows for levels that need none; the top level's is always needed.
        dirs = tuple(
            None if d is None and i > 0 else _check_dir(d, f"level_intermediaries_dirs[{i}]")
            for i, d in enumerate(level_intermediaries_dirs)
        )
        assert dst is not None
        if dst.index_procs:
            raise ValueError("`dst` must not have index_procs: reductions write dst chunks where they lie")

    # --- chunk sizes and pads ----------------------------------------------------------------------
    if any(v % 2 for v in gap):
        raise ValueError(f"`processing_gap` must be even in every dim, got {_fmt(gap)}")
    if any(gap):
        if any(blends[0]):
            raise ValueError(
                f"`processing_gap` {_fmt(gap)} leaves space between top-level chunks, so they cannot "
                f"be blended: processing_blend_pads[0] = {_fmt(blends[0])} must be (0, 0, 0)"
            )
        # these move the region's edges or the chunk sizes, and with them where the gaps fall
        for name, flag in (
            ("auto_divisibility", auto_divisibility),
            ("shrink_processing_chunk", shrink_processing_chunk),
            ("expand_bbox_backend", expand_bbox_backend),
            ("expand_bbox_resolution", expand_bbox_resolution),
        ):
            if flag:
                raise ValueError(
                    f"a nonzero `processing_gap` {_fmt(gap)} cannot be used with `{name}`=True: it "
                    "would move where the gaps fall; give a region and chunk sizes that need no "
                    f"adjusting, or set `{name}`=False"
                )
    if shrink_processing_chunk and expand_bbox_processing:
        raise ValueError(
            "shrink_processing_chunk=True and expand_bbox_processing=True exclude each other; set "
            "expand_bbox_processing=False to shrink chunks to the region instead of growing it"
        )
    if auto_divisibility:
        if shrink_processing_chunk:
            raise ValueError("auto_divisibility and shrink_processing_chunk exclude each other; choose one")
        if not expand_bbox_processing:
            raise ValueError("auto_divisibility needs expand_bbox_processing=True (the region grows to the new chunks)")
        if expand_bbox_backend:
            raise ValueError("auto_divisibility cannot be used with expand_bbox_backend (divisibility takes precedence over dst alignment)")
        chunks = _auto_divisibility(chunks, crops, blends)
    if exact_bbox_output:
        _check_exact_bbox_output(dst, skip_intermediaries, blends)
        # as in the original: the region grows to whole chunks, but only the given one is written
        expand_bbox_processing = not shrink_processing_chunk

    # --- the region --------------------------------------------------------------------------------
    original_bbox = _parse_region(dst, res, bbox, start_coord, end_coord, coord_resolution, auto_bbox)
    region_bbox = original_bbox
    if expand_bbox_resolution:
        region_bbox = region_bbox.snapped((0, 0, 0), res, "expand")
    region = box_from_bbox(region_bbox, res, "the region (bbox)")
    if region.is_empty():
        raise ValueError(f"the region {region_bbox.pformat(res)} (voxels at {tuple(res)}) is empty")
    original_region = region
    written = region

    dst_bounds: Box | None = None
    dst_chunk: Int3 | None = None
    dst_offset: Int3 | None = None
    dtype = None
    num_channels = 1
    if dst is not None:
        stored = [r for r in dst.backend.get_resolutions() if r.allclose(res)]
        if not stored:
            raise ValueError(
                f"`dst` ({dst.name}) does not store dst_resolution {tuple(res)} (stored: "
                f"{', '.join(str(tuple(r)) for r in dst.backend.get_resolutions())}); add the scale "
                "to its info (info_add_scales) or pick a stored resolution"
            )
        dst_bounds = Box.from_index(dst.backend.get_bounds(stored[0]))
        dst_chunk = tuple(int(v) for v in dst.backend.get_chunk_size(stored[0]))  # type: ignore[assignment]
        dst_offset = tuple(int(v) for v in dst.backend.get_voxel_offset(stored[0]))  # type: ignore[assignment]
        dtype = dst.backend.dtype
        num_channels = dst.backend.num_channels
        if not dst_bounds.contains(region):
            raise ValueError(
                f"the region {region.pformat()} (voxels at {tuple(res)}) is not inside the bounds of "
                f"`dst` {dst_bounds.pformat()} ({dst.name}); enlarge dst (info_voxel_offset / "
                "info_dataset_size) or the region"
            )
        if expand_bbox_backend:
            assert dst_chunk is not None and dst_offset is not None
            snapped = region.to_index(res).snapped(dst_offset, dst_chunk, "expand")
            region = Box.from_index(snapped).intersection(dst_bounds)

    def processing_shape() -> Int3:
        p = region.padded(roi_crop)
        return p.shape

    if shrink_processing_chunk:
        shape = processing_shape()
        new = [tuple(min(c, s) for c, s in zip(chunks[0], shape, strict=True))]
        for c in chunks[1:]:
            new.append(tuple(min(a, b) for a, b in zip(c, new[-1], strict=True)))
        chunks = tuple(new)  # type: ignore[arg-type]
    elif expand_bbox_processing:
        shape = processing_shape()
        grow = []
        for d in range(3):
            stride = chunks[0][d] + gap[d]
            n = max(1, math.ceil((shape[d] + gap[d]) / stride))
            grow.append(n * stride - gap[d] - shape[d])
        region = Box.of(region.start, [e + g for e, g in zip(region.stop, grow, strict=True)])
    shape = processing_shape()
    for d in range(3):
        stride = chunks[0][d] + gap[d]
        if (shape[d] + gap[d]) % stride != 0:
            raise ValueError(
                f"the region {region.pformat()} grown by roi_crop_pad {_fmt(roi_crop)} is "
                f"{_fmt(shape)} voxels, which top-level chunks of {_fmt(chunks[0])} (with "
                f"processing_gap {_fmt(gap)}) do not tile in {'xyz'[d]}; set "
                "expand_bbox_processing=True to grow the region, or change the chunk size"
            )

    _check_divisibility(chunks, crops, blends)
    for i in range(levels):
        for d in range(3):
            if 2 * blends[i][d] > chunks[i][d]:
                raise ValueError(
                    f"processing_blend_pads[{i}] = {_fmt(blends[i])} must be at most half of "
                    f"processing_chunk_sizes[{i}] = {_fmt(chunks[i])} (in {'xyz'[d]}: "
                    f"{blends[i][d]} > {chunks[i][d]} / 2); use a blend pad of at most "
                    f"{chunks[i][d] // 2} or a larger chunk"
                )

    # --- how top-level outputs reach dst -----------------------------------------------------------
    processing = region.padded(roi_crop)
    counts = tuple((processing.shape[d] + gap[d]) // (chunks[0][d] + gap[d]) for d in range(3))
    top_mode: TopMode
    if skip_intermediaries:
        top_mode = "skip"
        if dst is not None:
            assert dst_bounds is not None and dst_chunk is not None and dst_offset is not None
            bottom = chunks[-1]
            for d in range(3):
                if not _chunks_aligned(
                    processing.start[d], chunks[0][d] + gap[d], counts[d], bottom[d],
                    chunks[0][d] // bottom[d], dst_offset[d], dst_chunk[d], dst_bounds.stop[d],
                ):
                    raise ValueError(
                        "skip_intermediaries=True writes each bottom-level chunk straight into dst, "
                        f"so the chunks must be aligned to dst's backend chunks; in {'xyz'[d]}, "
                        f"chunks of processing_chunk_sizes[{levels - 1}] = {_fmt(bottom)} from "
                        f"{processing.start[d]} (top-level stride {chunks[0][d] + gap[d]}) do not "
                        f"align with dst chunks of {dst_chunk[d]} from {dst_offset[d]}. Use "
                        "expand_bbox_backend=True, chunk sizes that are multiples of dst's chunk "
                        "size, or intermediaries (level_intermediaries_dirs)"
                    )
    elif not any(blends[0]) and not any(roi_crop) and not any(gap) and modes[0] != "defer":
        assert dst_bounds is not None and dst_chunk is not None and dst_offset is not None
        aligned = all(
            _chunks_aligned(
                processing.start[d], chunks[0][d], counts[d], chunks[0][d], 1,
                dst_offset[d], dst_chunk[d], dst_bounds.stop[d],
            )
            for d in range(3)
        )
        top_mode = "direct" if aligned else "pieces"
    else:
        top_mode = "pieces"

    if exact_bbox_output and top_mode == "direct" and not _box_aligned(written, dst_offset, dst_chunk, dst_bounds):
        top_mode = "pieces"  # the edges of what is written are not whole dst chunks: merged by the reduction

    # --- reduction chunks ----------------------------------------------------------------------------
    reduction_chunk: Int3 | None = None
    if dst is not None and not skip_intermediaries:
        assert dst_chunk is not None
        if max_reduction_chunk_size is None:
            bound = tuple(max(c, dc) for c, dc in zip(chunks[0], dst_chunk, strict=True))
        else:
            if not _is_vec3(max_reduction_chunk_size):
                candidates = _per_level(max_reduction_chunk_size, "max_reduction_chunk_sizes", levels, 1)
            else:
                candidates = (_int3(max_reduction_chunk_size, "max_reduction_chunk_size", 1),)
            bound = candidates[0]
            for d in range(3):
                if bound[d] < chunks[0][d] or bound[d] < dst_chunk[d]:
                    raise ValueError(
                        f"`max_reduction_chunk_size` {_fmt(bound)} must be at least the top-level "
                        f"chunk {_fmt(chunks[0])} and dst's backend chunk {_fmt(dst_chunk)} in every "
                        f"dim ({'xyz'[d]} is {bound[d]})"
                    )
        reduction_chunk = tuple((b // dc) * dc for b, dc in zip(bound, dst_chunk, strict=True))  # type: ignore[assignment]

    # after the checks of sizes and layers (their errors first), before anything runs
    check_fn_arguments(fn, op, op_kwargs, stacked=stack > 1)

    # --- caching of inputs ---------------------------------------------------------------------------
    prefetch_level: int | None = levels - 1 - cache_level
    if prefetch_level == levels - 1 or not any(is_layer(v) for v in op_kwargs.values()):
        prefetch_level = None

    # --- identity and intermediaries location -------------------------------------------------------
    processing_box: Box | None = None
    if exact_bbox_output and written != region:
        processing_box, region = processing, written
    plan_id = id_generation.hash_object(
        (
            "subchunkable",
            level_op,
            op_args_t,
            dict(op_kwargs),
            dst,
            tuple(res),
            region,
            roi_crop,
            chunks,
            crops,
            blends,
            modes,
            gap,
            dirs,
            top_mode,
            reduction_chunk,
            prefetch_level,
            processing_box,
        )
    )
    store: PieceStore | None = None
    if top_mode == "pieces":
        assert dirs is not None and dirs[0] is not None and dst is not None
        from .chunk_grid import ChunkGrid

        grid = ChunkGrid.over(processing, chunks[0], blends[0], gap)
        store = PieceStore(
            join_url(dirs[0], f"subchunkable-{plan_id[:20]}"),
            Vec3D(*stored_resolution(dst, res)),
            grid,
            stored_data_type(dst.backend),
            num_channels,
            region=region,
        )
    plan = SubchunkablePlan(
        op=level_op,
        op_args=op_args_t,
        op_kwargs=dict(op_kwargs),
        op_name=op_name,
        dst=dst,
        dst_resolution=res,
        input_resolution=input_res,
        region=region,
        roi_crop_pad=roi_crop,
        chunk_sizes=chunks,
        crop_pads=crops,
        blend_pads=blends,
        blend_modes=modes,
        gap=gap,
        top_mode=top_mode,
        dst_bounds=dst_bounds,
        num_channels=num_channels,
        dtype=dtype if dtype is not None else _default_dtype(),
        store=store,
        reduction_chunk=reduction_chunk,
        prefetch_level=prefetch_level,
        plan_id=plan_id,
        keep_intermediaries=keep_intermediaries,
        op_worker_type=op_worker_type,
        reduction_worker_type=reduction_worker_type,
        # as in the original, the top level's tasks hold several chunks only when it is the
        # bottom level; below, a worker runs the bottom chunks in stacks
        task_stack_size=stack if levels == 1 else 1,
        task_name=task_name,
        processing_box=processing_box,
        bottom_stack=stack,
    )
    facts = {
        "original_bbox": original_bbox,
        "original_region": original_region,
        "level_intermediaries_dirs": dirs,
        "allow_cache_up_to_level": cache_level,
        "expand_bbox_resolution": expand_bbox_resolution,
        "expand_bbox_backend": expand_bbox_backend,
        "expand_bbox_processing": expand_bbox_processing,
        "dst_chunk": dst_chunk,
    }
    return plan, facts


def stored_resolution(dst: VolumetricLayer, res: Vec3D[float]) -> Vec3D[float]:
    return next(r for r in dst.backend.get_resolutions() if r.allclose(res))


def _default_dtype() -> Any:
    import torch

    return torch.float32


# --- builders ------------------------------------------------------------------------------------
def _refuse_dst_tighten_bounds(value: bool) -> None:
    if value:
        raise ValueError(
            "`dst_tighten_bounds` is no longer supported (the original dropped it too): give `dst` "
            "the bounds of the run when building it instead, e.g. `info_bbox: #BBOX` (or "
            "`info_voxel_offset` and `info_dataset_size`) in its build_cv_layer / build_ts_layer spec"
        )


@builder.register("build_subchunkable_apply_flow")
def build_subchunkable_apply_flow(
    dst: VolumetricLayer | None,
    dst_resolution: Sequence[float],
    processing_chunk_sizes: Sequence[Sequence[int]],
    processing_gap: Sequence[int] = (0, 0, 0),
    processing_crop_pads: Sequence[int] | Sequence[Sequence[int]] = (0, 0, 0),
    processing_blend_pads: Sequence[int] | Sequence[Sequence[int]] = (0, 0, 0),
    processing_blend_modes: str | Sequence[str] = "quadratic",
    level_intermediaries_dirs: Sequence[str | None] | None = None,
    skip_intermediaries: bool = False,
    max_reduction_chunk_size: Sequence[int] | None = None,
    max_reduction_chunk_sizes: Sequence[int] | Sequence[Sequence[int]] | None = None,
    expand_bbox_resolution: bool = False,
    expand_bbox_backend: bool = False,
    expand_bbox_processing: bool = True,
    exact_bbox_output: bool = False,
    shrink_processing_chunk: bool = False,
    auto_divisibility: bool = False,
    allow_cache_up_to_level: int | None = None,
    op_worker_type: str | None = None,
    reduction_worker_type: str | None = None,
    task_stack_size: int | None = None,
    verbose: bool | None = None,
    print_summary: bool | None = None,
    generate_ng_link: bool = False,
    fn: Callable[..., Any] | None = None,
    fn_semaphores: Sequence[str] | None = None,
    op: Any = None,
    op_args: Iterable[Any] = (),
    op_kwargs: Mapping[str, Any] | None = None,
    bbox: BBox3D | None = None,
    start_coord: Vec3Like | None = None,
    end_coord: Vec3Like | None = None,
    coord_resolution: Sequence[float] | None = None,
    auto_bbox: bool = False,
    roi_crop_pad: Sequence[int] = (0, 0, 0),
    task_name: str | None = None,
    keep_intermediaries: bool = False,
    dst_tighten_bounds: bool = False,
) -> mazepa.Flow:
    """A flow that applies ``fn`` (or ``op``) chunkwise over a region, with recursive
    subchunking, cropping and blending; run it with ``mazepa.execute``.

    Region (exactly one way):

    :param bbox: a ``BBox3D``.
    :param start_coord, end_coord, coord_resolution: the region in voxels at ``coord_resolution``.
    :param auto_bbox: the bounds of ``dst`` at ``dst_resolution``.
    :param dst_resolution: the resolution of processing and of the output.
    :param roi_crop_pad: process the region grown by this many voxels (at ``dst_resolution``) on
        each side, but write only the region.
    :param expand_bbox_resolution: snap the region outward to whole voxels of ``dst_resolution``
        (otherwise it must be whole voxels already).
    :param expand_bbox_backend: snap the region outward to ``dst``'s chunk grid.
    :param expand_bbox_processing: (default) grow the region's end so the top-level chunks (and
        gaps) tile it.
    :param exact_bbox_output: process the region grown to whole top-level chunks
        (``expand_bbox_processing``) but write only the region given: voxels of ``dst`` around
        it are kept, also inside the ``dst`` chunks on its edge. Needs ``dst`` and intermediaries,
        and no blending (as in the original).
    :param shrink_processing_chunk: instead, shrink chunks larger than the region to its size.

    Work:

    :param fn: a function of tensors returning a CXYZ tensor; ``op_kwargs`` that are layers are
        read at each chunk padded by the bottom crop pad, other values are passed as they are.
    :param op: instead of ``fn``, an operation ``op(idx, dst, **op_kwargs)`` that writes
        ``dst[idx]`` (see :mod:`.volumetric_callable_operation`). ``idx.chunk_id`` numbers the
        bottom-level chunks ``0 .. N-1`` as the original does (see :mod:`.chunk_numbering`).
    :param op_kwargs: the arguments of ``fn`` / ``op``.
    :param op_args: must be empty (as in the original, it exists for typing only).
    :param fn_semaphores: ``mazepa.semaphore`` types held around ``fn`` (``read``, ``write``,
        ``cuda``, ``cpu``).
    :param task_name: the name of the tasks in progress displays (default: the function's).

    Output:

    :param dst: the output layer; None only with ``skip_intermediaries``, for an ``op`` that
        writes by itself or an ``fn`` run for its side effects (it may return anything; nothing
        is written).

    Chunking, one entry per level, largest first (a single (x, y, z) applies to every level):

    :param processing_chunk_sizes: the core chunk of each level, in voxels at dst_resolution.
    :param processing_crop_pads: voxels read around each chunk and cropped off its output.
    :param processing_blend_pads: voxels around each chunk whose output is blended with the
        neighbours' (neighbouring padded outputs overlap by twice this); at most half the chunk.
    :param processing_blend_modes: ``quadratic`` (default), ``linear``, ``bump``, ``max`` (masks),
        or ``defer`` (top level only: leave the overlapping outputs in the intermediaries; reduce
        them later with ``build_deferred_reduction_flow``).
    :param processing_gap: unprocessed voxels between top-level chunks (even; no top blend).
    :param auto_divisibility: treat the upper chunk sizes as upper bounds, rounded down so that
        each level's chunk divides the crop- and blend-padded chunk of the level above.

    Each level's chunk must evenly divide the padded chunk of the level above:
    ``chunk[i] + 2*crop[i] + 2*blend[i]`` divisible by ``chunk[i+1]``.

    Intermediaries and reduction:

    :param level_intermediaries_dirs: a directory per level (required unless
        ``skip_intermediaries``). The top level's overlapping outputs are written under the first
        one (it must be reachable by all workers), in a subdirectory named after a digest of the
        run's arguments (so a resumed run finds them), and deleted after the run. Lower levels are
        blended in the worker's memory: the worker computing a top-level chunk holds its padded
        output; their directories are validated but not written.
    :param skip_intermediaries: write each bottom-level chunk's output straight into ``dst``: no
        blend anywhere, crop only at the bottom level, no ``roi_crop_pad``, and the bottom chunks
        must be aligned to ``dst``'s backend chunks.
    :param max_reduction_chunk_size: bound of the reduction chunks (whole ``dst`` chunks); at
        least the top chunk and ``dst``'s chunk; default the larger of the two.
        ``max_reduction_chunk_sizes`` (the guide's spelling, one value or one per level) is the
        same.
    :param keep_intermediaries: keep the intermediaries after the run (for debugging).

    Execution:

    :param allow_cache_up_to_level: inputs are read once per chunk of this level (0 is the
        smallest; default the top level) and served from memory to the levels below it.
    :param op_worker_type, reduction_worker_type: worker groups for the operation's and the
        reduction's tasks (e.g. GPU and CPU workers).
    :param task_stack_size: bottom-level chunks computed together, as in the original: ``fn``
        is called once on their inputs stacked along a new first dim (N, C, X, Y, Z) and returns
        their outputs likewise (an ``op`` needs the original's ``read``, ``processing_fn`` and
        ``write`` methods). With one level, a task holds that many chunks; below, a worker runs
        the bottom chunks of its top-level chunk in such stacks. Default 1: one chunk, CXYZ.
    :param verbose: print a summary table before the run (default True); ``print_summary`` is
        its old name.
    :param generate_ng_link: add a Neuroglancer link to the output to the summary.
    :param dst_tighten_bounds: no longer supported (as in the original): give ``dst`` its bounds
        when building it (``info_bbox``, or ``info_voxel_offset`` and ``info_dataset_size``).

    Integer outputs are blended in float and rounded; where overlapping outputs agree (an identity
    function) the result equals them exactly. Float outputs of ``fn`` written to an integer
    ``dst`` through intermediaries are rounded to the nearest integer.
    """
    _refuse_dst_tighten_bounds(dst_tighten_bounds)
    if verbose is not None and print_summary is not None and verbose != print_summary:
        raise ValueError("`verbose` and its old name `print_summary` disagree; give one of them")
    show = True if verbose is None and print_summary is None else bool(verbose if verbose is not None else print_summary)
    if generate_ng_link and not show:
        raise ValueError("`generate_ng_link` puts the link in the summary; it needs verbose=True")
    if max_reduction_chunk_size is not None and max_reduction_chunk_sizes is not None:
        raise ValueError("give `max_reduction_chunk_size` or `max_reduction_chunk_sizes`, not both")
    plan, facts = make_subchunkable_plan(
        dst=dst,
        dst_resolution=dst_resolution,
        processing_chunk_sizes=processing_chunk_sizes,
        processing_gap=processing_gap,
        processing_crop_pads=processing_crop_pads,
        processing_blend_pads=processing_blend_pads,
        processing_blend_modes=processing_blend_modes,
        level_intermediaries_dirs=level_intermediaries_dirs,
        skip_intermediaries=skip_intermediaries,
        max_reduction_chunk_size=(
            max_reduction_chunk_size if max_reduction_chunk_size is not None else max_reduction_chunk_sizes
        ),
        expand_bbox_resolution=expand_bbox_resolution,
        expand_bbox_backend=expand_bbox_backend,
        expand_bbox_processing=expand_bbox_processing,
        exact_bbox_output=exact_bbox_output,
        shrink_processing_chunk=shrink_processing_chunk,
        auto_divisibility=auto_divisibility,
        allow_cache_up_to_level=allow_cache_up_to_level,
        op_worker_type=op_worker_type,
        reduction_worker_type=reduction_worker_type,
        task_stack_size=task_stack_size,
        fn=fn,
        fn_semaphores=fn_semaphores,
        op=op,
        op_args=op_args,
        op_kwargs=op_kwargs,
        bbox=bbox,
        start_coord=start_coord,
        end_coord=end_coord,
        coord_resolution=coord_resolution,
        auto_bbox=auto_bbox,
        roi_crop_pad=roi_crop_pad,
        task_name=task_name,
        keep_intermediaries=keep_intermediaries,
    )
    if show:
        from .summary import print_plan_summary

        print_plan_summary(plan, facts, generate_ng_link=generate_ng_link)
    return mazepa.Flow(
        subchunkable_flow,
        (plan,),
        name=f"subchunkable {plan.task_name or plan.op_name}",
        flow_id=f"subchunkable-{plan.plan_id}",
    )


@builder.register("build_postpad_subchunkable_apply_flow")
def build_postpad_subchunkable_apply_flow(
    dst: VolumetricLayer,
    dst_resolution: Sequence[float],
    processing_input_sizes: Sequence[Sequence[int]],
    processing_crop: Sequence[int] = (0, 0, 0),
    processing_blend: Sequence[int] = (0, 0, 0),
    processing_blend_mode: str = "quadratic",
    level_intermediaries_dirs: Sequence[str | None] | None = None,
    max_reduction_chunk_size: Sequence[int] | None = None,
    max_reduction_chunk_sizes: Sequence[int] | Sequence[Sequence[int]] | None = None,
    expand_bbox_processing: bool = True,
    expand_bbox_resolution: bool = False,
    allow_cache_up_to_level: int | None = None,
    op_worker_type: str | None = None,
    reduction_worker_type: str | None = None,
    task_stack_size: int | None = None,
    verbose: bool | None = None,
    print_summary: bool | None = None,
    generate_ng_link: bool = False,
    fn: Callable[..., Any] | None = None,
    fn_semaphores: Sequence[str] | None = None,
    op: Any = None,
    op_args: Iterable[Any] = (),
    op_kwargs: Mapping[str, Any] | None = None,
    bbox: BBox3D | None = None,
    start_coord: Vec3Like | None = None,
    end_coord: Vec3Like | None = None,
    coord_resolution: Sequence[float] | None = None,
    auto_bbox: bool = False,
    task_name: str | None = None,
    keep_intermediaries: bool = False,
    dst_tighten_bounds: bool = False,
) -> mazepa.Flow:
    """``build_subchunkable_apply_flow`` with sizes given after padding.

    :param processing_input_sizes: per level, largest first, the size of a chunk's input: its
        chunk plus ``processing_blend`` on both sides, and at the bottom level also plus
        ``processing_crop`` on both sides. The bottom size is kept; the upper ones are upper
        bounds, rounded down so that each level divides the level above (``auto_divisibility``).
    :param processing_crop: the crop of the bottom level (the upper levels crop nothing).
    :param processing_blend: the blend pad of every level.
    :param processing_blend_mode: the blend mode of every level.

    The other arguments are those of ``build_subchunkable_apply_flow``; as in the original, this
    builder always uses intermediaries, no ``processing_gap``, ``expand_bbox_backend`` or
    ``shrink_processing_chunk``, and ``dst`` is required.
    """
    _refuse_dst_tighten_bounds(dst_tighten_bounds)
    if _is_vec3(processing_input_sizes):
        processing_input_sizes = [processing_input_sizes]  # type: ignore[list-item]
    if isinstance(processing_input_sizes, (str, bytes)) or not isinstance(processing_input_sizes, Sequence) or not processing_input_sizes:
        raise ValueError(
            "`processing_input_sizes` must be a list of (x, y, z) input sizes, one per level, "
            f"largest first; got {processing_input_sizes!r}"
        )
    if not isinstance(processing_blend_mode, str):
        raise ValueError(f"`processing_blend_mode` must be one blend mode for all levels, got {processing_blend_mode!r}")
    crop = _int3(processing_crop, "processing_crop")
    blend = _int3(processing_blend, "processing_blend")
    sizes = [_int3(s, f"processing_input_sizes[{i}]", 1) for i, s in enumerate(processing_input_sizes)]
    chunks = []
    for i, size in enumerate(sizes):
        chunk = [s - 2 * b for s, b in zip(size, blend, strict=True)]
        if i == len(sizes) - 1:
            chunk = [c - 2 * r for c, r in zip(chunk, crop, strict=True)]
        if any(c < 1 for c in chunk):
            raise ValueError(
                f"processing_input_sizes[{i}] = {_fmt(size)} leaves no chunk after removing the "
                f"blend {_fmt(blend)}{' and crop ' + _fmt(crop) if i == len(sizes) - 1 else ''} on both sides"
            )
        chunks.append(chunk)
    if len(sizes) > 1 and not expand_bbox_processing:
        raise ValueError(
            "build_postpad_subchunkable_apply_flow rounds the upper `processing_input_sizes` down "
            "to divisible sizes (auto_divisibility), which grows the region to the new chunks: it "
            "needs expand_bbox_processing=True"
        )
    crops = [(0, 0, 0)] * (len(sizes) - 1) + [crop]
    return build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=dst_resolution,
        processing_chunk_sizes=chunks,
        processing_crop_pads=crops,
        processing_blend_pads=blend,
        processing_blend_modes=processing_blend_mode,
        level_intermediaries_dirs=level_intermediaries_dirs,
        max_reduction_chunk_size=max_reduction_chunk_size,
        max_reduction_chunk_sizes=max_reduction_chunk_sizes,
        expand_bbox_processing=expand_bbox_processing,
        expand_bbox_resolution=expand_bbox_resolution,
        auto_divisibility=len(sizes) > 1,
        allow_cache_up_to_level=allow_cache_up_to_level,
        op_worker_type=op_worker_type,
        reduction_worker_type=reduction_worker_type,
        task_stack_size=task_stack_size,
        verbose=verbose,
        print_summary=print_summary,
        generate_ng_link=generate_ng_link,
        fn=fn,
        fn_semaphores=fn_semaphores,
        op=op,
        op_args=op_args,
        op_kwargs=op_kwargs,
        bbox=bbox,
        start_coord=start_coord,
        end_coord=end_coord,
        coord_resolution=coord_resolution,
        auto_bbox=auto_bbox,
        task_name=task_name,
        keep_intermediaries=keep_intermediaries,
    )


@builder.register("build_deferred_reduction_flow")
def build_deferred_reduction_flow(
    intermediaries_path: str,
    dst: VolumetricLayer,
    blend_mode: str = "quadratic",
    max_reduction_chunk_size: Sequence[int] | None = None,
    reduction_worker_type: str | None = None,
    keep_intermediaries: bool = False,
) -> mazepa.Flow:
    """The reduction a ``processing_blend_modes`` ``"defer"`` run left out: combine the
    top-level outputs stored at ``intermediaries_path`` (printed in that run's summary) into
    ``dst`` with ``blend_mode`` (``linear``, ``quadratic``, ``bump``, ``max``), then delete them
    unless ``keep_intermediaries``."""
    if blend_mode not in ("linear", "quadratic", "bump", "max"):
        raise ValueError(f"`blend_mode` must be linear, quadratic, bump or max, got {blend_mode!r}")
    store = PieceStore.from_manifest(intermediaries_path)
    res = store.resolution
    if store.region is None:
        raise ValueError(f"the manifest at {intermediaries_path} records no region")
    region = store.region
    bounds = Box.from_index(dst.backend.get_bounds(res))
    dchunk = tuple(int(v) for v in dst.backend.get_chunk_size(res))
    top = tuple(ax.chunk for ax in store.grid.axes)
    if max_reduction_chunk_size is None:
        bound = tuple(max(t, dc) for t, dc in zip(top, dchunk, strict=True))
    else:
        bound = _int3(max_reduction_chunk_size, "max_reduction_chunk_size", 1)
    chunk: Int3 = tuple(max(dc, (b // dc) * dc) for b, dc in zip(bound, dchunk, strict=True))  # type: ignore[assignment]
    reducer = Reducer(
        store=store,
        dst=dst,
        dst_resolution=res,
        region=region,
        dst_bounds=bounds,
        blend_mode=blend_mode,
        num_channels=dst.backend.num_channels,
        dtype=dst.backend.dtype,
        plan_id=id_generation.hash_object(("deferred", store.path, dst, blend_mode, chunk)),
    )
    return mazepa.Flow(
        deferred_reduction_flow,
        (reducer, chunk, reduction_worker_type, keep_intermediaries),
        name="deferred reduction",
    )
