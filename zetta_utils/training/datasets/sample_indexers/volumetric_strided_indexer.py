"""``VolumetricStridedIndexer``: windows of ``chunk_size`` voxels every ``stride`` voxels over a
bounding box."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D, to_vec3d
from zetta_utils.layer.volumetric import VolumetricIndex

from .base import SampleIndexer

StrideMode = Literal["shrink", "expand"]
_EPS = 1e-9


def _positive_ints(value: Any, name: str) -> Vec3D[int]:
    vec = to_vec3d(value, name)
    if not vec.is_integral() or any(v <= 0 for v in vec):
        raise ValueError(f"{name}: expected three positive integers (voxels), got {tuple(vec)}")
    return vec.round()


def _chunk_size(value: Any) -> Vec3D[int]:
    return _positive_ints(value, "chunk_size")


def _stride(value: Any) -> Vec3D[int]:
    return _positive_ints(value, "stride")


def _resolution(value: Any) -> Vec3D[float]:
    vec = to_vec3d(value, "resolution")
    if any(v <= 0 for v in vec):
        raise ValueError(f"resolution: expected three positive numbers (nm), got {tuple(vec)}")
    return vec


def _check_bbox(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, BBox3D):
        raise TypeError(f"bbox: expected a BBox3D, got {type(value).__name__}: {value!r}")


def _check_mode(_instance: Any, _attribute: Any, value: Any) -> None:
    if value not in ("shrink", "expand"):
        raise ValueError(f"mode: expected 'shrink' or 'expand', got {value!r}")


@builder.register("VolumetricStridedIndexer")
@attrs.frozen
class VolumetricStridedIndexer(SampleIndexer[VolumetricIndex]):
    """Sample ``i`` is the window of ``chunk_size`` voxels at ``resolution`` starting
    ``stride * (ix, iy, iz)`` voxels from the start of ``bbox``, numbered x fastest, then y,
    then z.

    ``mode="shrink"`` keeps only windows inside ``bbox`` (``floor((size - chunk) / stride) + 1``
    per dimension); ``mode="expand"`` adds windows until ``bbox`` is covered, the last ones
    reaching past its end (``ceil((size - chunk) / stride) + 1``, at least 1).

    :param bbox: the region; its start must be a whole voxel at ``resolution``.
    :param resolution: voxel size of the windows, nm.
    :param chunk_size: window size, voxels.
    :param stride: step between windows, voxels.
    :param mode: ``"shrink"`` or ``"expand"``.
    """

    bbox: BBox3D = attrs.field(validator=_check_bbox)
    resolution: Vec3D[float] = attrs.field(converter=_resolution)
    chunk_size: Vec3D[int] = attrs.field(converter=_chunk_size)
    stride: Vec3D[int] = attrs.field(converter=_stride)
    mode: StrideMode = attrs.field(default="shrink", validator=_check_mode)
    start: Vec3D[int] = attrs.field(init=False)
    counts: Vec3D[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        start = self.bbox.start / self.resolution
        if not start.is_integral():
            raise ValueError(
                f"bbox: its start {tuple(self.bbox.start)} nm is not a whole voxel at resolution "
                f"{tuple(self.resolution)} ({tuple(start)} voxels)"
            )
        size = self.bbox.shape / self.resolution
        counts = []
        for dim, s, c, st in zip("xyz", size, self.chunk_size, self.stride, strict=True):
            steps = (s - c) / st
            if self.mode == "shrink":
                if s + _EPS < c:
                    raise ValueError(
                        f"bbox: {s:g} voxels in {dim} at resolution {tuple(self.resolution)} is "
                        f"smaller than chunk_size {c}, so mode='shrink' has no samples; use a "
                        "larger bbox, a smaller chunk_size or mode='expand'"
                    )
                counts.append(math.floor(steps + _EPS) + 1)
            else:
                counts.append(max(1, math.ceil(steps - _EPS) + 1))
        object.__setattr__(self, "start", start.round())
        object.__setattr__(self, "counts", Vec3D(*counts))

    def __len__(self) -> int:
        return self.counts[0] * self.counts[1] * self.counts[2]

    def __call__(self, idx: int) -> VolumetricIndex:
        i = self.check_sample_number(idx)
        nx, ny, _ = self.counts
        position = Vec3D(i % nx, (i // nx) % ny, i // (nx * ny))
        start = self.start + position * self.stride
        return VolumetricIndex.from_coords(
            start, start + self.chunk_size, self.resolution, chunk_id=i
        )

    def sample_of(self, position: Sequence[int]) -> int:
        """The sample number of the window at grid position ``(ix, iy, iz)``."""
        ix, iy, iz = (int(p) for p in position)
        nx, ny, nz = self.counts
        if not (0 <= ix < nx and 0 <= iy < ny and 0 <= iz < nz):
            raise IndexError(
                f"position {(ix, iy, iz)} is outside the sample grid {tuple(self.counts)}"
            )
        return ix + nx * (iy + ny * iz)
