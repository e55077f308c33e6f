"""Builder registrations of geometry types with the original's names and arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zetta_utils import builder

from .bbox import BBox3D
from .vec import Vec3D, to_vec3d

__all__ = ["bbox_from_points"]



def _triple_to_vec3d(value: Any) -> Any:
    """``[x, y, z]`` (numbers) in a spec where a ``Vec3D`` is asked for: ``Vec3D(x, y, z)``."""
    if (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in value)
    ):
        return Vec3D(*value)
    return value


builder.register_coercion(Vec3D, _triple_to_vec3d)

POINTS_EPSILON = 1e-4
"""nm added to the upper bounds by ``BBox3D.from_points`` (bounds are half-open), as the
original does."""


@builder.register("BBox3D.from_points")
def bbox_from_points(
    points: Sequence[Sequence[float]],
    resolution: Sequence[float] = (1, 1, 1),
    unit: str = "nm",
    epsilon: float = POINTS_EPSILON,
) -> BBox3D:
    """The box tightly enclosing ``points`` (coordinates at ``resolution``), its upper bounds
    raised by ``epsilon`` (in ``unit``) so the half-open box contains the points on them."""
    if not points:
        raise ValueError("points: at least one point is needed")
    res = to_vec3d(resolution, "resolution")
    scaled = [to_vec3d(p, "points") * res for p in points]
    start = Vec3D(*(min(p[i] for p in scaled) for i in range(3)))
    end = Vec3D(*(max(p[i] for p in scaled) + epsilon for i in range(3)))
    return BBox3D.from_coords(start, end, unit=unit)


builder.register_unsupported(
    "BBoxStrider",
    (
        "bbox",
        "resolution",
        "chunk_size",
        "stride",
        "max_superchunk_size",
        "stride_start_offset_in_unit",
        "mode",
    ),
    "chunk iteration is internal to the flows here; give `processing_chunk_sizes` to "
    "build_subchunkable_apply_flow, or use VolumetricStridedIndexer for training samples",
)
