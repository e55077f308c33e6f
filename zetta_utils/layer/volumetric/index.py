"""``VolumetricIndex``: a region of interest (a ``BBox3D``) together with a voxel resolution."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, SnapMode, Vec3D, to_vec3d

_WHOLE_VOXEL_TOL = 1e-6
"""How far from a whole voxel a coordinate may be and still count as one (``Vec3D.is_integral``)."""


def _to_resolution(value: Any) -> Vec3D[float]:
    if type(value) is Vec3D:  # the common case: a resolution passed on from another index
        x, y, z = value.tuple()
        if x > 0 and y > 0 and z > 0:
            return value
    res = to_vec3d(value, "resolution")
    if any(r <= 0 for r in res):
        raise ValueError(f"resolution must be positive, got {tuple(res)}")
    return res


@builder.register("VolumetricIndex")
@attrs.frozen
class VolumetricIndex:
    """A ``BBox3D`` read and written at ``resolution``. Voxel quantities (pads, crops, offsets,
    chunk sizes) given to its methods are in voxels at that resolution."""

    resolution: Vec3D[float] = attrs.field(converter=_to_resolution)
    bbox: BBox3D
    chunk_id: int = 0
    allow_slice_rounding: bool = False

    @classmethod
    def from_coords(
        cls,
        start_coord: Sequence[float] | Vec3D[float],
        end_coord: Sequence[float] | Vec3D[float],
        resolution: Sequence[float] | Vec3D[float],
        chunk_id: int = 0,
        allow_slice_rounding: bool = False,
    ) -> VolumetricIndex:
        """The region from ``start_coord`` to ``end_coord`` in voxels at ``resolution``."""
        res = _to_resolution(resolution)
        return cls(
            resolution=res,
            bbox=BBox3D.from_coords(start_coord, end_coord, res),
            chunk_id=chunk_id,
            allow_slice_rounding=allow_slice_rounding,
        )

    # --- voxel views -------------------------------------------------------------------------
    def _voxels(self, side: int, what: str) -> Vec3D[int]:
        """The ``side`` (0: start, 1: end) of the box in voxels, rounded (halves to even), or a
        ValueError where it is not within 1e-6 of a whole voxel and rounding is not allowed."""
        return Vec3D(*self._voxel_tuple(side, what))

    def _voxel_tuple(self, side: int, what: str) -> tuple[int, int, int]:
        """:meth:`_voxels` as a plain tuple, in plain arithmetic on the bounds: every read and
        write of a chunk asks for it."""
        (bx, by, bz), (rx, ry, rz) = self.bbox.bounds, self.resolution.tuple()
        x, y, z = bx[side] / rx, by[side] / ry, bz[side] / rz
        vx, vy, vz = round(x), round(y), round(z)
        dx, dy, dz = x - vx, y - vy, z - vz
        if not self.allow_slice_rounding and (
            not -_WHOLE_VOXEL_TOL <= dx <= _WHOLE_VOXEL_TOL
            or not -_WHOLE_VOXEL_TOL <= dy <= _WHOLE_VOXEL_TOL
            or not -_WHOLE_VOXEL_TOL <= dz <= _WHOLE_VOXEL_TOL
        ):
            raise ValueError(
                f"{what} of {self.pformat()} at resolution {tuple(self.resolution)} is not a whole "
                f"number of voxels ({(x, y, z)}); use allow_slice_rounding=True to round"
            )
        return vx, vy, vz

    @functools.cached_property
    def start(self) -> Vec3D[int]:
        """First voxel, at ``resolution``."""
        return self._voxels(0, "start")

    @functools.cached_property
    def stop(self) -> Vec3D[int]:
        """One past the last voxel, at ``resolution``."""
        return self._voxels(1, "stop")

    @functools.cached_property
    def voxel_box(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """``(start, stop)`` as plain tuples (what the per-chunk paths of layers and backends
        index with); the errors of :attr:`start`, then :attr:`stop`."""
        return self._voxel_tuple(0, "start"), self._voxel_tuple(1, "stop")

    @property
    def shape(self) -> Vec3D[int]:
        """Size in voxels at ``resolution``."""
        return self.stop - self.start

    def get_size(self) -> int:
        """Number of voxels."""
        return self.shape.prod()

    def to_slices(self) -> tuple[slice, slice, slice]:
        return self.bbox.to_slices(self.resolution, allow_slice_rounding=self.allow_slice_rounding)

    def pformat(self) -> str:
        """``(x0, y0, z0) - (x1, y1, z1)`` in voxels at ``resolution``."""
        return self.bbox.pformat(self.resolution)

    # --- transformations (delegated to BBox3D at this resolution) ----------------------------
    def padded(self, pad: Any) -> VolumetricIndex:
        return attrs.evolve(self, bbox=self.bbox.padded(pad, self.resolution))

    def cropped(self, crop: Any) -> VolumetricIndex:
        return attrs.evolve(self, bbox=self.bbox.cropped(crop, self.resolution))

    def translated(self, offset: Sequence[float] | Vec3D[float]) -> VolumetricIndex:
        return attrs.evolve(self, bbox=self.bbox.translated(offset, self.resolution))

    def translated_start(self, offset: Sequence[float] | Vec3D[float]) -> VolumetricIndex:
        return attrs.evolve(self, bbox=self.bbox.translated_start(offset, self.resolution))

    def translated_end(self, offset: Sequence[float] | Vec3D[float]) -> VolumetricIndex:
        return attrs.evolve(self, bbox=self.bbox.translated_end(offset, self.resolution))

    def snapped(
        self,
        grid_offset: Sequence[float] | Vec3D[float],
        grid_size: Sequence[float] | Vec3D[float],
        mode: SnapMode,
    ) -> VolumetricIndex:
        """Snap to the voxel grid ``grid_offset + k * grid_size`` (in voxels at ``resolution``)."""
        return attrs.evolve(
            self,
            bbox=self.bbox.snapped(
                to_vec3d(grid_offset, "grid_offset") * self.resolution,
                to_vec3d(grid_size, "grid_size") * self.resolution,
                mode,
            ),
        )

    def intersection(self, other: VolumetricIndex | BBox3D) -> VolumetricIndex:
        other_bbox = other.bbox if isinstance(other, VolumetricIndex) else other
        return attrs.evolve(self, bbox=self.bbox.intersection(other_bbox))

    def intersects(self, other: VolumetricIndex | BBox3D) -> bool:
        return self.bbox.intersects(other.bbox if isinstance(other, VolumetricIndex) else other)

    def contains(self, other: VolumetricIndex | BBox3D) -> bool:
        return self.bbox.contains(other.bbox if isinstance(other, VolumetricIndex) else other)

    def supremum(self, other: VolumetricIndex | BBox3D) -> VolumetricIndex:
        other_bbox = other.bbox if isinstance(other, VolumetricIndex) else other
        return attrs.evolve(self, bbox=self.bbox.supremum(other_bbox))

    def with_resolution(self, resolution: Sequence[float] | Vec3D[float]) -> VolumetricIndex:
        """The same region at another resolution."""
        return attrs.evolve(self, resolution=_to_resolution(resolution))

    def split(
        self,
        chunk_size: Sequence[int] | Vec3D[int],
        grid_offset: Sequence[float] | Vec3D[float] | None = None,
    ) -> list[VolumetricIndex]:
        """Chunks of ``chunk_size`` voxels covering this region exactly, x fastest, with
        ``chunk_id`` numbering them in that order (see ``BBox3D.split``)."""
        return [
            attrs.evolve(self, bbox=b, chunk_id=i)
            for i, b in enumerate(self.bbox.split(chunk_size, self.resolution, grid_offset))
        ]


builder.register("VolumetricIndex.from_coords")(VolumetricIndex.from_coords)
