"""``InterpolateOperation`` and ``build_interpolate_flow``: resampling a layer to other
resolutions (downsampling pyramids, mostly), with the original's names and arguments.

``InterpolateOperation`` is an ``op`` for ``build_subchunkable_apply_flow``: it reads ``src`` at
``dst_resolution / res_change_mult`` and resamples it to ``dst_resolution`` with
``tensor_ops.interpolate``. ``build_interpolate_flow`` chains one such flow per destination
resolution, finest first, each reading what the previous one wrote.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs

from zetta_utils import builder, mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.tensor_ops import interpolation

from .subchunkable_apply_flow import build_subchunkable_apply_flow

__all__ = ["InterpolateOperation", "build_interpolate_flow", "make_interpolate_operation"]


def _vec(value: Any) -> Vec3D[float]:
    return value if isinstance(value, Vec3D) else Vec3D(*value)


def _int_vec(value: Any) -> Vec3D[int]:
    v = _vec(value)
    if not all(float(e).is_integer() and e >= 0 for e in v):
        raise ValueError(f"crop_pad: expected three non-negative integers, got {tuple(v)}")
    return Vec3D(*(int(e) for e in v))


@mazepa.taskable_operation_cls
@attrs.frozen
class InterpolateOperation(mazepa.OperationBase):
    """Write ``dst[idx]`` = ``src`` read at ``idx.resolution / res_change_mult``, resampled to
    ``idx.resolution`` in ``mode`` (``img``, ``field``, ``mask`` with ``mask_value_thr``,
    ``segmentation``). ``res_change_mult`` [2, 2, 1] halves x and y: a downsampling step.

    ``crop_pad`` (destination voxels, added by flows' bottom-level crops) is read around the
    chunk and cropped off the result.
    """

    res_change_mult: Vec3D[float] = attrs.field(converter=_vec)
    mode: interpolation.InterpolationMode
    mask_value_thr: float = 0
    crop_pad: Vec3D[int] = attrs.field(default=Vec3D(0, 0, 0), converter=_int_vec)

    def __attrs_post_init__(self) -> None:
        if not all(m > 0 for m in self.res_change_mult):
            raise ValueError(
                f"res_change_mult: expected positive numbers, got {tuple(self.res_change_mult)}"
            )
        if self.mode not in interpolation.INTERPOLATION_MODES:
            raise ValueError(
                f"mode: expected one of {interpolation.INTERPOLATION_MODES}, got {self.mode!r}"
            )
        input_pad = self.crop_pad * self.res_change_mult
        if not all(float(p).is_integer() for p in input_pad):
            raise ValueError(
                f"crop_pad {tuple(self.crop_pad)} times res_change_mult "
                f"{tuple(self.res_change_mult)} "
                f"is not a whole number of source voxels"
            )

    def get_operation_name(self) -> str:
        return f"Interpolate<{self.mode}>"

    def get_input_resolution(self, dst_resolution: Vec3D[float]) -> Vec3D[float]:
        return _vec(dst_resolution) / self.res_change_mult

    def with_added_crop_pad(self, crop_pad: Sequence[int]) -> InterpolateOperation:
        return attrs.evolve(self, crop_pad=self.crop_pad + Vec3D(*crop_pad))

    def __call__(self, idx: VolumetricIndex, dst: Any, src: Any) -> None:
        read_idx = idx.padded(self.crop_pad) if any(self.crop_pad) else idx
        data = src[read_idx.with_resolution(self.get_input_resolution(idx.resolution))]
        factors = tuple(1 / m for m in self.res_change_mult)
        result = interpolation.interpolate(
            data, factors, self.mode, mask_value_thr=self.mask_value_thr
        )
        if any(self.crop_pad):
            cx, cy, cz = self.crop_pad
            result = result[
                :, cx : result.shape[1] - cx, cy : result.shape[2] - cy, cz : result.shape[3] - cz
            ]
        dst[idx] = result


@builder.register("InterpolateOperation")
def make_interpolate_operation(
    res_change_mult: Sequence[float],
    mode: interpolation.InterpolationMode,
    mask_value_thr: float = 0,
) -> InterpolateOperation:
    """The operation resampling ``src`` by ``res_change_mult`` (see
    :class:`InterpolateOperation`)."""
    return InterpolateOperation(
        res_change_mult=res_change_mult, mode=mode, mask_value_thr=mask_value_thr
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
    :class:`InterpolateOperation` per resolution, each reading the previous one's output, run
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
