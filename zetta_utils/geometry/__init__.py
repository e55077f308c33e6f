"""Geometry: ``Vec3D`` / ``IntVec3D`` vectors and ``BBox3D`` boxes in physical units."""

from . import registrations  # noqa: F401  (builder types with the original's arguments)
from .bbox import BBox3D, SnapMode
from .vec import IntVec3D, Vec3D, to_vec3d

__all__ = ["BBox3D", "IntVec3D", "SnapMode", "Vec3D", "to_vec3d"]
