"""``BBox3D``: an axis-aligned cuboid in physical units (nm), independent of any resolution."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from zetta_utils import builder

from .vec import _PLAIN, Vec3D, _normalise, to_vec3d

SnapMode = Literal["shrink", "expand", "round"]
DEFAULT_UNIT = "nm"
_EPS = 1e-6  # in grid units: tolerance for "already on the grid" in floating point


_INF = math.inf


def _plain_bounds(value: Any) -> bool:
    """Whether ``value`` is already three ``(start, end)`` tuples of plain, finite, ordered
    numbers (what arithmetic on other boxes gives): accepted as it is, without a copy."""
    if type(value) is not tuple or len(value) != 3:
        return False
    x, y, z = value
    if not (type(x) is tuple and type(y) is tuple and type(z) is tuple):
        return False
    if len(x) != 2 or len(y) != 2 or len(z) != 2:
        return False
    (x0, x1), (y0, y1), (z0, z1) = x, y, z
    return (
        type(x0) in _PLAIN
        and type(x1) in _PLAIN
        and type(y0) in _PLAIN
        and type(y1) in _PLAIN
        and type(z0) in _PLAIN
        and type(z1) in _PLAIN
        and -_INF < x0 <= x1 < _INF
        and -_INF < y0 <= y1 < _INF
        and -_INF < z0 <= z1 < _INF
    )


def _to_bounds(value: Any) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    if _plain_bounds(value):
        return value
    try:
        pairs = tuple((_normalise(lo), _normalise(hi)) for lo, hi in value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`bounds` must be three (start, end) pairs, got {value!r}") from e
    if len(pairs) != 3:
        raise ValueError(f"`bounds` must be three (start, end) pairs, got {value!r}")
    for dim, (lo, hi) in zip("xyz", pairs, strict=True):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"`bounds` must be finite, got {dim}: ({lo}, {hi})")
        if hi < lo:
            raise ValueError(f"`bounds` end must not precede start, got {dim}: ({lo}, {hi})")
    return pairs


def _to_tuple3(value: Any) -> tuple[float, float, float]:
    if value is _UNIT_RESOLUTION:
        return value
    return to_vec3d(value, "pprint_px_resolution").tuple()


_UNIT_RESOLUTION = (1, 1, 1)


def _not_pad(name: str, pad: Any) -> ValueError:
    return ValueError(f"`{name}` must be three numbers or three (before, after) pairs, got {pad!r}")


def _pad_pairs(pad: Any, name: str) -> tuple[tuple[float, float], ...]:
    """``(x, y, z)`` (same on both sides) or ``((x0, x1), (y0, y1), (z0, z1))``."""
    if isinstance(pad, (Vec3D, int, float)):
        v = to_vec3d(pad, name)
        return tuple((e, e) for e in v)
    try:
        items = list(pad)
    except TypeError:
        raise _not_pad(name, pad) from None
    if len(items) != 3:
        raise ValueError(f"`{name}` must have three elements, got {pad!r}")
    if all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in items):
        return tuple((e, e) for e in items)
    try:
        return tuple((_normalise(a), _normalise(b)) for a, b in items)
    except (TypeError, ValueError):
        raise _not_pad(name, pad) from None


def _snap(
    value: float, offset: float, size: float, how: Literal["floor", "ceil", "round"]
) -> float:
    q = (value - offset) / size
    nearest = round(q)
    if abs(q - nearest) <= _EPS:
        q_int = nearest
    elif how == "floor":
        q_int = math.floor(q)
    elif how == "ceil":
        q_int = math.ceil(q)
    else:
        q_int = math.floor(q + 0.5)
    result = offset + q_int * size
    return (
        int(result)
        if isinstance(result, float) and result.is_integer() and isinstance(value, int)
        else result
    )


@attrs.frozen
class BBox3D:
    """A cuboid ``[start, end)`` per dimension, in ``unit`` (nanometres).

    Pixel amounts (pads, crops, offsets) are given together with the resolution they are in.
    ``pprint_px_resolution`` is only used to print the box in voxels.
    """

    bounds: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] = attrs.field(
        converter=_to_bounds
    )
    unit: str = DEFAULT_UNIT
    pprint_px_resolution: tuple[float, float, float] = attrs.field(
        default=_UNIT_RESOLUTION, converter=_to_tuple3
    )

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def _checked(
        cls, bounds: tuple[tuple[float, float], tuple[float, float], tuple[float, float]], unit: str
    ) -> BBox3D:
        """A box of ``bounds`` already checked (plain, finite, ordered numbers: what the
        converter would return as it is), without running the converters again."""
        box = object.__new__(cls)
        object.__setattr__(box, "bounds", bounds)
        object.__setattr__(box, "unit", unit)
        object.__setattr__(box, "pprint_px_resolution", _UNIT_RESOLUTION)
        return box

    @classmethod
    def from_coords(
        cls,
        start_coord: Sequence[float] | Vec3D[float],
        end_coord: Sequence[float] | Vec3D[float],
        resolution: Sequence[float] | Vec3D[float] = (1, 1, 1),
        unit: str = DEFAULT_UNIT,
    ) -> BBox3D:
        """The box from ``start_coord`` to ``end_coord``, both in voxels at ``resolution``."""
        start_t, end_t, res_t = _plain3(start_coord), _plain3(end_coord), _plain3(resolution)
        if start_t is not None and end_t is not None and res_t is not None:
            # the common case (flows build boxes per chunk): plain arithmetic, no Vec3D steps
            (s0, s1, s2), (e0, e1, e2), (r0, r1, r2) = start_t, end_t, res_t
            if r0 > 0 and r1 > 0 and r2 > 0 and s0 <= e0 and s1 <= e1 and s2 <= e2:
                return cls._checked(
                    ((s0 * r0, e0 * r0), (s1 * r1, e1 * r1), (s2 * r2, e2 * r2)), unit
                )
        start = to_vec3d(start_coord, "start_coord")
        end = to_vec3d(end_coord, "end_coord")
        res = to_vec3d(resolution, "resolution")
        _check_resolution(res)
        for dim, s, e in zip("xyz", start, end, strict=True):
            if e < s:
                raise ValueError(
                    f"end_coord must not precede start_coord; {dim}: start {s}, end {e}"
                )
        return cls(bounds=tuple(zip(start * res, end * res, strict=True)), unit=unit)

    @classmethod
    def from_slices(
        cls,
        slices: Sequence[slice],
        resolution: Sequence[float] | Vec3D[float] = (1, 1, 1),
        unit: str = DEFAULT_UNIT,
    ) -> BBox3D:
        """The box of three ``slice(start, stop)`` in voxels at ``resolution`` (step must be 1)."""
        if len(slices) != 3:
            raise ValueError(f"need three slices (x, y, z), got {len(slices)}")
        for dim, s in zip("xyz", slices, strict=True):
            if not isinstance(s, slice) or s.start is None or s.stop is None:
                raise ValueError(f"slice for {dim} must have an explicit start and stop, got {s!r}")
            if s.step not in (None, 1):
                raise ValueError(f"slice for {dim} must have step 1, got {s!r}")
        return cls.from_coords(
            [s.start for s in slices], [s.stop for s in slices], resolution=resolution, unit=unit
        )

    @classmethod
    def from_points(
        cls, points: Sequence[Sequence[float]], resolution: Sequence[float] = (1, 1, 1)
    ) -> BBox3D:
        """The smallest box containing every point (voxel coordinates at ``resolution``)."""
        if not points:
            raise ValueError("from_points needs at least one point")
        vs = [to_vec3d(p, "point") for p in points]
        start = Vec3D(*(min(v[i] for v in vs) for i in range(3)))
        end = Vec3D(*(max(v[i] for v in vs) for i in range(3)))
        return cls.from_coords(start, end, resolution)

    # --- accessors ---------------------------------------------------------------------------
    @property
    def start(self) -> Vec3D[float]:
        return Vec3D(*(b[0] for b in self.bounds))

    @property
    def end(self) -> Vec3D[float]:
        return Vec3D(*(b[1] for b in self.bounds))

    @property
    def shape(self) -> Vec3D[float]:
        """Size in ``unit`` along each dimension."""
        return self.end - self.start

    def start_at(self, resolution: Sequence[float] | Vec3D[float]) -> Vec3D[float]:
        return self.start / to_vec3d(resolution, "resolution")

    def end_at(self, resolution: Sequence[float] | Vec3D[float]) -> Vec3D[float]:
        return self.end / to_vec3d(resolution, "resolution")

    def shape_at(self, resolution: Sequence[float] | Vec3D[float]) -> Vec3D[float]:
        return self.shape / to_vec3d(resolution, "resolution")

    def get_size(self) -> float:
        """Volume in ``unit``³."""
        return self.shape.prod()

    def is_empty(self) -> bool:
        return any(hi <= lo for lo, hi in self.bounds)

    def to_slices(
        self, resolution: Sequence[float] | Vec3D[float], allow_slice_rounding: bool = False
    ) -> tuple[slice, slice, slice]:
        """Voxel slices at ``resolution``; the box must lie on that voxel grid unless
        ``allow_slice_rounding`` (then start and end are rounded to the nearest voxel)."""
        res = to_vec3d(resolution, "resolution")
        start = self.start / res
        end = self.end / res
        if not allow_slice_rounding:
            for name, v in (("start", start), ("end", end)):
                if not v.is_integral():
                    raise ValueError(
                        f"{self.pformat(res)} is not aligned to the voxel grid "
                        f"at resolution {tuple(res)} "
                        f"({name} {tuple(v)} in voxels); pass allow_slice_rounding=True to round it"
                    )
        s, e = start.round(), end.round()
        return (slice(s[0], e[0]), slice(s[1], e[1]), slice(s[2], e[2]))

    def pformat(self, resolution: Sequence[float] | Vec3D[float] | None = None) -> str:
        """``(x0, y0, z0) - (x1, y1, z1)`` in voxels at ``resolution`` (default
        ``pprint_px_resolution``)."""
        res = to_vec3d(
            self.pprint_px_resolution if resolution is None else resolution, "resolution"
        )
        s = tuple(round(e, 6) for e in self.start / res)
        e = tuple(round(e, 6) for e in self.end / res)
        return f"{s} - {e}"

    # --- transformations ---------------------------------------------------------------------
    def padded(self, pad: Any, resolution: Sequence[float] | Vec3D[float]) -> BBox3D:
        """Grow by ``pad`` voxels at ``resolution``: ``(x, y, z)`` on both sides, or
        ``((x0, x1), (y0, y1), (z0, z1))``. Negative pads crop."""
        res = to_vec3d(resolution, "resolution")
        pairs = _pad_pairs(pad, "pad")
        bounds = tuple(
            (float(lo - p0 * r), float(hi + p1 * r))
            for (lo, hi), (p0, p1), r in zip(self.bounds, pairs, res, strict=True)
        )
        return attrs.evolve(self, bounds=bounds)

    def cropped(self, crop: Any, resolution: Sequence[float] | Vec3D[float]) -> BBox3D:
        """Shrink by ``crop`` voxels at ``resolution`` (same forms as ``padded``)."""
        pairs = _pad_pairs(crop, "crop")
        for dim, (lo, hi), (c0, c1), r in zip(
            "xyz", self.bounds, pairs, to_vec3d(resolution), strict=True
        ):
            if (c0 + c1) * r > hi - lo + 1e-9:
                raise ValueError(
                    f"crop {(c0, c1)} voxels in {dim} exceeds the box size {(hi - lo) / r} voxels"
                )
        return self.padded(tuple((-a, -b) for a, b in pairs), resolution)

    def translated(
        self, offset: Sequence[float] | Vec3D[float], resolution: Sequence[float] | Vec3D[float]
    ) -> BBox3D:
        """Move by ``offset`` voxels at ``resolution``."""
        shift = to_vec3d(offset, "offset") * to_vec3d(resolution, "resolution")
        bounds = tuple((lo + d, hi + d) for (lo, hi), d in zip(self.bounds, shift, strict=True))
        return attrs.evolve(self, bounds=bounds)

    def translated_start(self, offset: Sequence[float], resolution: Sequence[float]) -> BBox3D:
        """Move only the start by ``offset`` voxels at ``resolution``."""
        shift = to_vec3d(offset, "offset") * to_vec3d(resolution, "resolution")
        return attrs.evolve(
            self, bounds=tuple((lo + d, hi) for (lo, hi), d in zip(self.bounds, shift, strict=True))
        )

    def translated_end(self, offset: Sequence[float], resolution: Sequence[float]) -> BBox3D:
        """Move only the end by ``offset`` voxels at ``resolution``."""
        shift = to_vec3d(offset, "offset") * to_vec3d(resolution, "resolution")
        return attrs.evolve(
            self, bounds=tuple((lo, hi + d) for (lo, hi), d in zip(self.bounds, shift, strict=True))
        )

    def intersection(self, other: BBox3D) -> BBox3D:
        """The common part; an empty box (start == end) at the nearest point when disjoint."""
        bounds = []
        for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds, strict=True):
            lo = max(a0, b0)
            hi = min(a1, b1)
            bounds.append((lo, max(lo, hi)))
        return attrs.evolve(self, bounds=tuple(bounds))

    def intersects(self, other: BBox3D) -> bool:
        return all(
            max(a0, b0) < min(a1, b1)
            for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds, strict=True)
        )

    def supremum(self, other: BBox3D) -> BBox3D:
        """The smallest box containing both."""
        bounds = tuple(
            (min(a0, b0), max(a1, b1))
            for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds, strict=True)
        )
        return attrs.evolve(self, bounds=bounds)

    def contains(self, other: BBox3D | Sequence[float] | Vec3D[float]) -> bool:
        """Whether ``other`` (a box, or a point in ``unit``) lies inside this box."""
        if isinstance(other, BBox3D):
            return all(
                a0 <= b0 and b1 <= a1
                for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds, strict=True)
            )
        p = to_vec3d(other, "point")
        return all(lo <= v < hi for (lo, hi), v in zip(self.bounds, p, strict=True))

    def snapped(
        self,
        grid_offset: Sequence[float] | Vec3D[float],
        grid_size: Sequence[float] | Vec3D[float],
        mode: SnapMode,
    ) -> BBox3D:
        """Move start and end onto the grid ``grid_offset + k * grid_size`` (in ``unit``):
        ``shrink`` inward, ``expand`` outward, ``round`` to the nearest grid line."""
        off = to_vec3d(grid_offset, "grid_offset")
        size = to_vec3d(grid_size, "grid_size")
        if any(s <= 0 for s in size):
            raise ValueError(f"grid_size must be positive, got {tuple(size)}")
        how_start: Literal["floor", "ceil", "round"]
        how_end: Literal["floor", "ceil", "round"]
        if mode == "shrink":
            how_start, how_end = "ceil", "floor"
        elif mode == "expand":
            how_start, how_end = "floor", "ceil"
        elif mode == "round":
            how_start = how_end = "round"
        else:
            raise ValueError(f"snapping mode must be 'shrink', 'expand' or 'round', got {mode!r}")
        bounds = []
        for (lo, hi), o, s in zip(self.bounds, off, size, strict=True):
            new_lo = _snap(lo, o, s, how_start)
            new_hi = _snap(hi, o, s, how_end)
            bounds.append((new_lo, max(new_lo, new_hi)))
        return attrs.evolve(self, bounds=tuple(bounds))

    def aligned(
        self, grid_offset: Sequence[float] | Vec3D[float], grid_size: Sequence[float] | Vec3D[float]
    ) -> bool:
        """Whether start and end both lie on the grid (in ``unit``)."""
        return self.snapped(grid_offset, grid_size, "round") == self

    def split(
        self,
        chunk_size: Sequence[float] | Vec3D[float],
        resolution: Sequence[float] | Vec3D[float],
        grid_offset: Sequence[float] | Vec3D[float] | None = None,
    ) -> list[BBox3D]:
        """Cut into chunks of ``chunk_size`` voxels at ``resolution``, x fastest.

        Chunk boundaries lie on the grid that starts at ``grid_offset`` voxels (default: this
        box's start); chunks at the box's faces are clipped, so together they cover the box
        exactly, without overlap.
        """
        res = to_vec3d(resolution, "resolution")
        step = to_vec3d(chunk_size, "chunk_size") * res
        if any(s <= 0 for s in step):
            raise ValueError(f"chunk_size must be positive, got {tuple(chunk_size)}")
        origin = self.start if grid_offset is None else to_vec3d(grid_offset, "grid_offset") * res
        cuts: list[list[float]] = []
        for (lo, hi), o, s in zip(self.bounds, origin, step, strict=True):
            points = [lo]
            k = math.floor((lo - o) / s + _EPS) + 1
            while True:
                p = o + k * s
                if p >= hi - _EPS * s:
                    break
                if p > lo:
                    points.append(p)
                k += 1
            points.append(hi)
            cuts.append(points)
        result = []
        for iz, iy, ix in itertools.product(*(range(len(c) - 1) for c in reversed(cuts))):
            b = (
                (cuts[0][ix], cuts[0][ix + 1]),
                (cuts[1][iy], cuts[1][iy + 1]),
                (cuts[2][iz], cuts[2][iz + 1]),
            )
            result.append(attrs.evolve(self, bounds=b))
        return result


def _plain3(value: Any) -> tuple[Any, Any, Any] | None:
    """``value`` as a tuple of three plain finite numbers, if it is a ``Vec3D`` or a tuple of
    them; else None (the caller takes its checked path)."""
    if type(value) is Vec3D:
        triple = value.tuple()
    elif type(value) is tuple and len(value) == 3:
        triple = value
    else:
        return None
    a, b, c = triple
    if (
        type(a) in _PLAIN
        and type(b) in _PLAIN
        and type(c) in _PLAIN
        and -_INF < a < _INF
        and -_INF < b < _INF
        and -_INF < c < _INF
    ):
        return triple
    return None


def _check_resolution(res: Vec3D[float]) -> None:
    if any(r <= 0 for r in res):
        raise ValueError(f"resolution must be positive, got {tuple(res)}")


builder.register("BBox3D")(BBox3D)
builder.register("BBox3D.from_coords")(BBox3D.from_coords)
builder.register("BBox3D.from_slices")(BBox3D.from_slices)
