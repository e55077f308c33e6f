"""The resolution frontend of volumetric layers: user indices to ``VolumetricIndex``, and reads
and writes at resolutions the volume does not store.

Three resolutions are independent:

``index_resolution``
    The unit of slice coordinates in ``layer[x0:x1, y0:y1, z0:z1]`` (also with a resolution in
    front, ``layer[res, x0:x1, ...]``). Without it, slices are in the resolution given in front.
``default_desired_resolution``
    The resolution of the returned tensor when the index does not name one. A resolution in front
    of the slices (``layer[res, ...]``) or the resolution of a ``VolumetricIndex`` takes
    precedence: a ``VolumetricIndex`` is always read and written at its own resolution (flows
    rely on it to get tensors at the resolution they asked for).
``data_resolution``
    The stored resolution to read from and write to, whatever the desired resolution; the data
    is resampled with ``interpolation_mode`` (required with it). Without it, a stored desired
    resolution is read directly and any other one is resampled from the stored resolution
    :func:`choose_read_resolution` picks.

Reads at a stored resolution return the backend's tensor untouched (no copy). Resampled reads
never shift data: the region read is the requested one when it lies on the stored voxel grid,
otherwise the smallest region on a grid common to both resolutions (their least common
multiple), interpolated and then cropped exactly. Linear upsampling (``img``, ``field``) reads
one such grid cell of context on each side of the upsampled dims (where the dataset has data
there), so results do not depend on how a volume is cut into chunks.

Writes at a resolution other than the stored one go to ``data_resolution`` only (the data is
resampled to it); a write at a resolution that is not stored, without ``data_resolution``, is an
error, since writing one arbitrary scale would leave the others stale. A resampled write must
cover whole voxels of ``data_resolution``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, TypeAlias

import attrs
import numpy as np
import torch

from zetta_utils.geometry import BBox3D, Vec3D, to_vec3d
from zetta_utils.tensor_ops import INTERPOLATION_MODES, InterpolationMode, interpolate, to_torch

from .backend import VolumetricBackend, match_resolution
from .index import VolumetricIndex

ResolutionLike: TypeAlias = Vec3D[float] | Sequence[float]
UserVolumetricIndex: TypeAlias = (
    VolumetricIndex
    | BBox3D
    | tuple[slice, slice, slice]
    | tuple[ResolutionLike | None, slice, slice, slice]
    | tuple[ResolutionLike | None, BBox3D]
)
"""What ``layer[...]`` accepts: a ``VolumetricIndex``; ``x, y, z`` slices; a resolution and
``x, y, z`` slices; a ``BBox3D``; or a resolution and a ``BBox3D``."""

# A resampled read or write works on a grid common to the stored and the desired resolution; a
# common cell larger than this many voxels means the resolutions have no useful common grid.
_MAX_CELL_VOXELS = 1024
_SLICES_NEED_RESOLUTION = (
    "layer[...] with slices needs index_resolution (set it when building the layer) "
    "or a resolution as the first element"
)


def to_resolution(value: ResolutionLike, name: str = "resolution") -> Vec3D[float]:
    """``value`` as a positive ``Vec3D``; ValueError naming ``name`` otherwise."""
    res = to_vec3d(value, name)
    if any(not (r > 0 and math.isfinite(r)) for r in res):
        raise ValueError(f"`{name}` must be three positive numbers, got {tuple(res)}")
    return res


def _optional_resolution(value: ResolutionLike | None, name: str) -> Vec3D[float] | None:
    return None if value is None else to_resolution(value, name)


# attrs converters (one per field, so that errors name the field)
def index_resolution_converter(value: ResolutionLike | None) -> Vec3D[float] | None:
    return _optional_resolution(value, "index_resolution")


def default_desired_resolution_converter(value: ResolutionLike | None) -> Vec3D[float] | None:
    return _optional_resolution(value, "default_desired_resolution")


def data_resolution_converter(value: ResolutionLike | None) -> Vec3D[float] | None:
    return _optional_resolution(value, "data_resolution")


def _check_interpolation_mode(value: str | None) -> InterpolationMode | None:
    if value is not None and value not in INTERPOLATION_MODES:
        raise ValueError(
            f"`interpolation_mode` must be one of {', '.join(INTERPOLATION_MODES)} or None, got "
            f"{value!r}"
        )
    return value  # type: ignore[return-value]


def _fmt(res: Vec3D[float]) -> str:
    return str(tuple(res))


# --- user index parsing --------------------------------------------------------------------------
def parse_volumetric_index(
    idx_user: Any,
    index_resolution: Vec3D[float] | None,
    default_desired_resolution: Vec3D[float] | None,
    allow_slice_rounding: bool,
) -> VolumetricIndex:
    """The ``VolumetricIndex`` that ``idx_user`` (see :data:`UserVolumetricIndex`) denotes."""
    if isinstance(idx_user, VolumetricIndex):
        return idx_user
    resolution: Any = None
    bbox: BBox3D | None = None
    slices: tuple[Any, ...] | None = None
    if isinstance(idx_user, BBox3D):
        bbox = idx_user
    elif isinstance(idx_user, tuple) and len(idx_user) == 3:
        slices = idx_user
    elif isinstance(idx_user, tuple) and len(idx_user) == 4:
        resolution, slices = idx_user[0], idx_user[1:]
    elif isinstance(idx_user, tuple) and len(idx_user) == 2 and isinstance(idx_user[1], BBox3D):
        resolution, bbox = idx_user
    else:
        raise TypeError(
            "layer[...] expects a VolumetricIndex, `x0:x1, y0:y1, z0:z1`, "
            "`resolution, x0:x1, y0:y1, z0:z1`, a BBox3D, or `resolution, bbox`; "
            f"got {idx_user!r}"
        )
    given = (
        None
        if resolution is None
        else to_resolution(resolution, "resolution (first element of the index)")
    )
    desired = given if given is not None else default_desired_resolution
    if slices is not None:
        for dim, s in zip("xyz", slices, strict=True):
            if not isinstance(s, slice):
                raise TypeError(
                    f"layer[...]: the {dim} element must be a slice such as 0:128, got {s!r}"
                )
        slice_resolution = index_resolution if index_resolution is not None else given
        if slice_resolution is None:
            raise ValueError(_SLICES_NEED_RESOLUTION)
        bbox = BBox3D.from_slices(slices, slice_resolution)
    if desired is None:
        raise ValueError(
            "layer[...] does not say which resolution to read: set default_desired_resolution "
            "when building the layer, or give a resolution as the first element "
            "(or index with a VolumetricIndex)"
        )
    assert bbox is not None
    return VolumetricIndex(resolution=desired, bbox=bbox, allow_slice_rounding=allow_slice_rounding)


def to_write_tensor(data_user: Any, idx: VolumetricIndex, what: str = "data") -> torch.Tensor:
    """``data_user`` (a torch tensor or NumPy array, CXYZ, spatial shape ``idx.shape``) as a
    tensor, without copying where the dtype allows."""
    if type(data_user) is torch.Tensor or isinstance(data_user, torch.Tensor):
        data = data_user
    elif isinstance(data_user, np.ndarray):
        data = to_torch(data_user)
    else:
        raise TypeError(
            f"{what} written to a volumetric layer must be a torch.Tensor or numpy.ndarray, got "
            f"{type(data_user).__name__}"
        )
    (x0, y0, z0), (x1, y1, z1) = idx.voxel_box
    shape = (x1 - x0, y1 - y0, z1 - z0)
    if data.ndim != 4 or data.shape[1:] != shape:
        raise ValueError(
            f"{what} written at {idx.pformat()} (resolution {_fmt(idx.resolution)}) must be CXYZ "
            "of "
            f"shape (C, {shape[0]}, {shape[1]}, {shape[2]}); got shape {tuple(data.shape)}"
        )
    return data


# --- resolution choice ----------------------------------------------------------------------------
def _integral_ratio(a: float, b: float) -> bool:
    ratio = max(a, b) / min(a, b)
    return abs(ratio - round(ratio)) <= 1e-9 * ratio


def choose_read_resolution(desired: Vec3D[float], stored: Sequence[Vec3D[float]]) -> Vec3D[float]:
    """The stored resolution to resample ``desired`` from.

    Quality first, then cost: a resolution that is finer than or equal to ``desired`` in every
    dim loses no detail; among those, integer ratios in every dim are preferred (exact block
    reductions, and the only ones ``segmentation`` can downsample), then the coarsest (fewest
    voxels to read). When none is finer everywhere, the one losing the least detail (the smallest
    sum of log-ratios over the dims where it is coarser) is taken, with the same tie-breaks.
    """
    if not stored:
        raise ValueError("the volume stores no resolutions")

    def key(s: Vec3D[float]) -> tuple[float, bool, float]:
        deficit = sum(max(0.0, math.log(si / di)) for si, di in zip(s, desired, strict=True))
        exact = all(_integral_ratio(si, di) for si, di in zip(s, desired, strict=True))
        return (round(deficit, 9), not exact, -float(s.prod()))

    return min(stored, key=key)


def _fraction(value: float) -> Fraction:
    return Fraction(value).limit_denominator(1_000_000)


def _common_cell(a: Vec3D[float], b: Vec3D[float]) -> Vec3D[float]:
    """Per dim, the least common multiple of two resolutions (the smallest length that is a whole
    number of voxels at both)."""
    cells = []
    for x, y in zip(a, b, strict=True):
        fx, fy = _fraction(x), _fraction(y)
        den = math.lcm(fx.denominator, fy.denominator)
        num = math.lcm(
            fx.numerator * (den // fx.denominator), fy.numerator * (den // fy.denominator)
        )
        cells.append(float(Fraction(num, den)))
    return Vec3D(*cells)


def _on_grid(values: Vec3D[float], res: Vec3D[float]) -> bool:
    return (values / res).is_integral()


def _grid_bounds(
    lo: Vec3D[float], hi: Vec3D[float], cell: Vec3D[float]
) -> tuple[list[float], list[float]]:
    """``[lo, hi)`` expanded outward to multiples of ``cell``."""
    snapped = BBox3D(bounds=tuple(zip(lo, hi, strict=True))).snapped((0, 0, 0), cell, "expand")
    return [b[0] for b in snapped.bounds], [b[1] for b in snapped.bounds]


# --- the frontend ---------------------------------------------------------------------------------
@attrs.frozen
class VolumetricFrontend:
    """Index conversion and resolution handling of a ``VolumetricLayer`` (see the module
    docstring for what each resolution means)."""

    index_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=index_resolution_converter
    )
    default_desired_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=default_desired_resolution_converter
    )
    data_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=data_resolution_converter
    )
    interpolation_mode: InterpolationMode | None = attrs.field(
        default=None, converter=_check_interpolation_mode
    )
    allow_slice_rounding: bool = False
    mask_value_thr: float = 0.0
    """``mask`` interpolation: values above it count as set."""

    def __attrs_post_init__(self) -> None:
        if self.data_resolution is not None and self.interpolation_mode is None:
            raise ValueError(
                f"`data_resolution` {_fmt(self.data_resolution)} is set but `interpolation_mode` "
                "is not; "
                f"give one of {', '.join(INTERPOLATION_MODES)} to resample to and from it"
            )

    # --- LayerFrontend -------------------------------------------------------------------------
    def convert_idx(self, idx_user: UserVolumetricIndex) -> VolumetricIndex:
        if type(idx_user) is VolumetricIndex:
            return idx_user
        return parse_volumetric_index(
            idx_user,
            self.index_resolution,
            self.default_desired_resolution,
            self.allow_slice_rounding,
        )

    def convert_write(
        self, idx_user: UserVolumetricIndex, data_user: torch.Tensor | np.ndarray
    ) -> tuple[VolumetricIndex, torch.Tensor]:
        idx = self.convert_idx(idx_user)
        return idx, to_write_tensor(data_user, idx)

    # --- backend access at any resolution --------------------------------------------------------
    def read(self, backend: VolumetricBackend, idx: VolumetricIndex) -> torch.Tensor:
        """CXYZ data of ``idx`` at ``idx.resolution``, resampled from the stored data if needed."""
        desired = idx.resolution
        src = self.data_resolution
        if src is None:
            match = backend.find_resolution(desired)
            if match is desired:  # (backends return the resolution asked for when stored as is)
                return backend.read(idx)
            if match is not None:
                return backend.read(idx if match == desired else idx.with_resolution(match))
            stored = backend.get_resolutions()
            if self.interpolation_mode is None:
                raise ValueError(
                    f"cannot read {backend.name} at resolution {_fmt(desired)}: it is not stored "
                    f"(stored: {', '.join(_fmt(s) for s in stored) or 'none'}) and the layer has "
                    "no "
                    f"interpolation_mode to resample with; set interpolation_mode (one of "
                    f"{', '.join(INTERPOLATION_MODES)}) or data_resolution"
                )
            src = choose_read_resolution(desired, stored)
        elif match_resolution(desired, (src,)) is not None:
            return backend.read(idx if src == desired else idx.with_resolution(src))
        assert self.interpolation_mode is not None
        return _read_resampled(backend, idx, src, self.interpolation_mode, self.mask_value_thr)

    def write(self, backend: VolumetricBackend, idx: VolumetricIndex, data: torch.Tensor) -> None:
        """Write CXYZ ``data`` of ``idx`` (at ``idx.resolution``), resampled to
        ``data_resolution`` if that differs."""
        desired = idx.resolution
        dst = self.data_resolution
        if dst is None:
            match = backend.find_resolution(desired)
            if match is None:
                stored = backend.get_resolutions()
                raise ValueError(
                    f"cannot write {backend.name} at resolution {_fmt(desired)}: it is not stored "
                    f"(stored: {', '.join(_fmt(s) for s in stored) or 'none'}); write at a stored "
                    "resolution, or set data_resolution and interpolation_mode to resample writes "
                    "to one"
                )
            if match is desired:
                backend.write(idx, data)
            else:
                backend.write(idx if match == desired else idx.with_resolution(match), data)
            return
        if match_resolution(desired, (dst,)) is not None:
            backend.write(idx if dst == desired else idx.with_resolution(dst), data)
            return
        assert self.interpolation_mode is not None
        _write_resampled(backend, idx, data, dst, self.interpolation_mode, self.mask_value_thr)


def _target_bounds(
    idx: VolumetricIndex,
) -> tuple[Vec3D[int], Vec3D[int], Vec3D[float], Vec3D[float]]:
    """The voxel range of ``idx`` at its resolution (rounded if it allows) and its extent in nm."""
    start, stop = idx.start, idx.stop
    return start, stop, start * idx.resolution, stop * idx.resolution


def _check_cell(cell: Vec3D[float], a: Vec3D[float], b: Vec3D[float]) -> None:
    for dim, c, ra, rb in zip("xyz", cell, a, b, strict=True):
        if c / min(ra, rb) > _MAX_CELL_VOXELS:
            raise ValueError(
                f"resolutions {_fmt(a)} and {_fmt(b)} have no common voxel grid small enough to "
                f"resample between them in {dim} (common cell {c:g} nm); use resolutions whose "
                "ratio is a simple fraction"
            )


def _read_resampled(
    backend: VolumetricBackend,
    idx: VolumetricIndex,
    src: Vec3D[float],
    mode: InterpolationMode,
    mask_value_thr: float = 0.0,
) -> torch.Tensor:
    desired = idx.resolution
    start, stop, lo, hi = _target_bounds(idx)
    upsampled = [s > d for s, d in zip(src, desired, strict=True)]
    with_context = mode in ("img", "field") and any(upsampled)
    if not with_context and _on_grid(lo, src) and _on_grid(hi, src):
        cover_lo, cover_hi = list(lo), list(hi)
    else:
        cell = _common_cell(src, desired)
        _check_cell(cell, src, desired)
        cover_lo, cover_hi = _grid_bounds(lo, hi, cell)
        if with_context:
            data_bounds = backend.get_bounds(src).bbox.bounds
            for i, up in enumerate(upsampled):
                if not up:
                    continue
                # Context only where the dataset has data beyond the region: at the dataset's
                # faces the interpolation clamps, as it would for the whole volume at once.
                tol = 1e-6 * cell[i]
                if cover_lo[i] > data_bounds[i][0] + tol:
                    cover_lo[i] -= cell[i]
                if cover_hi[i] < data_bounds[i][1] - tol:
                    cover_hi[i] += cell[i]
    cover = attrs.evolve(idx.bbox, bounds=tuple(zip(cover_lo, cover_hi, strict=True)))
    raw = backend.read(attrs.evolve(idx, resolution=src, bbox=cover))
    result = interpolate(
        raw, scale_factor=tuple(src / desired), mode=mode, mask_value_thr=mask_value_thr
    )
    if cover_lo == list(lo) and cover_hi == list(hi):
        return result
    offset = ((lo - Vec3D(*cover_lo)) / desired).round()
    size = stop - start
    return result[
        :,
        offset[0] : offset[0] + size[0],
        offset[1] : offset[1] + size[1],
        offset[2] : offset[2] + size[2],
    ]


def _write_resampled(
    backend: VolumetricBackend,
    idx: VolumetricIndex,
    data: torch.Tensor,
    dst: Vec3D[float],
    mode: InterpolationMode,
    mask_value_thr: float = 0.0,
) -> None:
    desired = idx.resolution
    start, stop, lo, hi = _target_bounds(idx)
    if not (_on_grid(lo, dst) and _on_grid(hi, dst)):
        raise ValueError(
            f"cannot write {idx.pformat()} at resolution {_fmt(desired)} to {backend.name} at "
            f"data_resolution {_fmt(dst)}: the region {tuple(lo)} - {tuple(hi)} nm does not lie on "
            f"the voxel grid of {_fmt(dst)}, so it would cover partial voxels; align the region "
            "to whole data_resolution voxels"
        )
    shape = tuple(stop - start)
    if data.ndim != 4 or tuple(data.shape[1:]) != shape:
        raise ValueError(
            f"data written at {idx.pformat()} (resolution {_fmt(desired)}) to {backend.name} must "
            "be "
            f"CXYZ with spatial shape {shape}, got shape {tuple(data.shape)}"
        )
    resampled = interpolate(
        data, scale_factor=tuple(desired / dst), mode=mode, mask_value_thr=mask_value_thr
    )
    target = attrs.evolve(idx.bbox, bounds=tuple(zip(lo, hi, strict=True)))
    backend.write(attrs.evolve(idx, resolution=dst, bbox=target), resampled)
