"""``build_subchunkable_apply_flow``: run a function or operation chunkwise over a region, with
recursive subchunking, cropping, blending, intermediaries and reduction.

How a run is carried out is described in :mod:`.volumetric_apply_flow`. The builders' arguments
are declared in :mod:`.subchunkable_args` (their signatures and per-argument rules come from
there), and :mod:`.subchunkable_plan` turns them into a validated
:class:`~.volumetric_apply_flow.SubchunkablePlan` in named stages. Every check runs when the flow
is built, before any task runs and before any file is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from zetta_utils import builder, mazepa
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa import id_generation

from .chunk_grid import Box, Int3
from .intermediaries import PieceStore
from .subchunkable_args import PostpadArgs, SubchunkableArgs, fmt, int3, taking
from .subchunkable_plan import make_subchunkable_plan, plan_subchunkable
from .volumetric_apply_flow import Reducer, deferred_reduction_flow, subchunkable_flow

__all__ = [
    "build_deferred_reduction_flow",
    "build_postpad_subchunkable_apply_flow",
    "build_subchunkable_apply_flow",
    "make_subchunkable_plan",
]


@builder.register("build_subchunkable_apply_flow")
@taking(SubchunkableArgs)
def build_subchunkable_apply_flow(args: SubchunkableArgs) -> mazepa.Flow:
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

    show = _summary_wanted(args)
    plan, facts = plan_subchunkable(args)
    if show:
        from .summary import print_plan_summary

        print_plan_summary(plan, facts, generate_ng_link=args.generate_ng_link)
    return mazepa.Flow(
        subchunkable_flow,
        (plan,),
        name=f"subchunkable {plan.task_name or plan.op_name}",
        flow_id=f"subchunkable-{plan.plan_id}",
    )


def _summary_wanted(args: SubchunkableArgs) -> bool:
    """Whether to print the summary: ``verbose``, or its old name ``print_summary``."""
    verbose, old = args.verbose, args.print_summary
    if verbose is not None and old is not None and verbose != old:
        raise ValueError("`verbose` and its old name `print_summary` disagree; give one of them")
    show = bool(verbose if verbose is not None else old if old is not None else True)
    if args.generate_ng_link and not show:
        raise ValueError("`generate_ng_link` puts the link in the summary; it needs verbose=True")
    return show


@builder.register("build_postpad_subchunkable_apply_flow")
@taking(PostpadArgs)
def build_postpad_subchunkable_apply_flow(args: Any) -> mazepa.Flow:
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

    sizes = args.checked["processing_input_sizes"]
    crop, blend = args.checked["processing_crop"], args.checked["processing_blend"]
    chunks = [_chunk_inside(i, size, crop, blend, len(sizes)) for i, size in enumerate(sizes)]
    if len(sizes) > 1 and not args.expand_bbox_processing:
        raise ValueError(
            "build_postpad_subchunkable_apply_flow rounds the upper `processing_input_sizes` "
            "down to divisible sizes (auto_divisibility), which grows the region to the new "
            "chunks: it needs expand_bbox_processing=True"
        )
    shared = attrs.fields_dict(SubchunkableArgs)
    given = {
        a.name: getattr(args, a.name)
        for a in attrs.fields(type(args))
        if a.init and a.name in shared
    }
    return build_subchunkable_apply_flow(
        **given,
        processing_chunk_sizes=chunks,
        processing_crop_pads=[(0, 0, 0)] * (len(sizes) - 1) + [crop],
        processing_blend_pads=blend,
        processing_blend_modes=args.processing_blend_mode,
        auto_divisibility=len(sizes) > 1,
    )


def _chunk_inside(i: int, size: Int3, crop: Int3, blend: Int3, num_levels: int) -> list[int]:
    """The chunk of an input of ``size``: less the blend on both sides (and at the bottom level
    the crop)."""
    bottom = i == num_levels - 1
    chunk = [s - 2 * b for s, b in zip(size, blend, strict=True)]
    if bottom:
        chunk = [c - 2 * r for c, r in zip(chunk, crop, strict=True)]
    if any(c < 1 for c in chunk):
        raise ValueError(
            f"processing_input_sizes[{i}] = {fmt(size)} leaves no chunk after removing the "
            f"blend {fmt(blend)}{' and crop ' + fmt(crop) if bottom else ''} on both sides"
        )
    return chunk


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
        bound = int3(max_reduction_chunk_size, "max_reduction_chunk_size", 1)
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
