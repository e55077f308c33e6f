"""``InterpolateOperation`` and ``build_interpolate_flow``: resampling a layer to other
resolutions (downsampling pyramids, mostly), with the original's names and arguments.

``InterpolateOperation`` is an ``op`` for ``build_subchunkable_apply_flow``: a
``VolumetricCallableOperation`` reading ``src`` at ``dst_resolution / res_change_mult`` and
resampling it to ``dst_resolution`` with ``tensor_ops.interpolate``. ``build_interpolate_flow``
chains one such flow per destination resolution, finest first, each reading what the previous
one wrote.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import torch

from zetta_utils import builder, mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.tensor_ops import interpolation

from .subchunkable_apply_flow import build_subchunkable_apply_flow
from .volumetric_callable_operation import VolumetricCallableOperation

__all__ = ["build_interpolate_flow", "make_interpolate_operation"]


def _resample(
    src: torch.Tensor,
    factors: tuple[float, float, float],
    mode: interpolation.InterpolationMode,
    mask_value_thr: float,
) -> torch.Tensor:
    return interpolation.interpolate(src, factors, mode, mask_value_thr=mask_value_thr)


@builder.register("InterpolateOperation")
def make_interpolate_operation(
    res_change_mult: Sequence[float],
    mode: interpolation.InterpolationMode,
    mask_value_thr: float = 0,
) -> VolumetricCallableOperation:
    """An operation writing ``dst[idx]`` = ``src`` read at ``idx.resolution / res_change_mult``,
    resampled to ``idx.resolution`` in ``mode`` (``img``, ``field``, ``mask`` with
    ``mask_value_thr``, ``segmentation``): ``res_change_mult`` [2, 2, 1] is a downsampling step
    halving x and y. It is a :class:`VolumetricCallableOperation` (crops work as for any)."""
    mult = Vec3D(*res_change_mult)
    if not all(m > 0 for m in mult):
        raise ValueError(f"res_change_mult: expected positive numbers, got {tuple(mult)}")
    if mode not in interpolation.INTERPOLATION_MODES:
        raise ValueError(f"mode: expected one of {interpolation.INTERPOLATION_MODES}, got {mode!r}")
    factors = (1 / mult[0], 1 / mult[1], 1 / mult[2])
    fn = functools.partial(_resample, factors=factors, mode=mode, mask_value_thr=mask_value_thr)
    return VolumetricCallableOperation(
        fn, res_change_mult=mult, operation_name=f"Interpolate<{mode}>"
    )


def _resolutions(
    dst_resolutions: Sequence[Sequence[float]] | Sequence[float],
) -> list[Vec3D[float]]:
    if len(dst_resolutions) and isinstance(dst_resolutions[0], (int, float)):
        listed = [Vec3D(*dst_resolutions)]  # one resolution
    else:
        listed = [Vec3D(*r) for r in dst_resolutions]  # type: ignore[misc]
    if not listed:
        raise ValueError("dst_resolutions: give at least one resolution")
    ordered = sorted(listed, key=tuple)
    for a, b in itertools.pairwise(ordered):
        if not all(x <= y for x, y in zip(a, b, strict=True)):
            raise ValueError(
                f"dst_resolutions: {tuple(a)} and {tuple(b)} cannot be ordered finest to coarsest"
            )
    return ordered


@builder.register("build_interpolate_flow")
def build_interpolate_flow(
    src: Any,
    dst: Any,
    src_resolution: Sequence[float],
    dst_resolutions: Sequence[Sequence[float]] | Sequence[float],
    mode: interpolation.InterpolationMode,
    processing_chunk_sizes: Sequence[Sequence[int]],
    level_intermediaries_dirs: Sequence[str | None] | None = None,
    skip_intermediaries: bool = False,
    expand_bbox_resolution: bool = False,
    expand_bbox_backend: bool = False,
    expand_bbox_processing: bool = True,
    shrink_processing_chunk: bool = False,
    auto_divisibility: bool = False,
    bbox: BBox3D | None = None,
    auto_bbox: bool = False,
    dst_tighten_bounds: bool = False,
) -> mazepa.Flow:
    """Resample ``src`` (at ``src_resolution``) to each of ``dst_resolutions``, finest first,
    into ``dst`` (``src`` itself when None): one ``build_subchunkable_apply_flow`` with an
    ``InterpolateOperation`` per resolution, each reading the previous one's output, run
    one after another. The other arguments go to each flow as they are."""
    if dst is None:
        dst = src
    stages = []
    last_res, last_src = Vec3D(*src_resolution), src
    for dst_res in _resolutions(dst_resolutions):
        stages.append(
            build_subchunkable_apply_flow(
                op=make_interpolate_operation(res_change_mult=dst_res / last_res, mode=mode),
                dst=dst,
                dst_resolution=dst_res,
                processing_chunk_sizes=processing_chunk_sizes,
                level_intermediaries_dirs=level_intermediaries_dirs,
                skip_intermediaries=skip_intermediaries,
                expand_bbox_resolution=expand_bbox_resolution,
                expand_bbox_backend=expand_bbox_backend,
                expand_bbox_processing=expand_bbox_processing,
                shrink_processing_chunk=shrink_processing_chunk,
                auto_divisibility=auto_divisibility,
                bbox=bbox,
                auto_bbox=auto_bbox,
                op_kwargs={"src": last_src},
                dst_tighten_bounds=dst_tighten_bounds,
            )
        )
        last_res, last_src = dst_res, dst
    return mazepa.seq_flow(stages)
