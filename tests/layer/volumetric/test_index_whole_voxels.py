"""VolumetricIndex's whole-voxel check (every chunk read and write asks it): a side within the
tolerance of a whole voxel, above or below, in any dimension, rounds to it; beyond, an error."""

from __future__ import annotations

import pytest

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.index import _WHOLE_VOXEL_TOL

RES = Vec3D(4.0, 4.0, 40.0)


def _index(start: tuple[float, float, float], allow: bool = False) -> VolumetricIndex:
    bbox = BBox3D.from_coords(start, (400.0, 400.0, 4000.0), (1, 1, 1))
    return VolumetricIndex(resolution=RES, bbox=bbox, allow_slice_rounding=allow)


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_within_the_tolerance_rounds_beyond_fails(dim: int, sign: float) -> None:
    base = [-8.0, 12.0, 80.0]  # nm: whole voxels (-2, 3, 2)
    near, far = list(base), list(base)
    near[dim] += sign * 0.5 * _WHOLE_VOXEL_TOL * RES[dim]
    far[dim] += sign * 2 * _WHOLE_VOXEL_TOL * RES[dim]
    assert _index((near[0], near[1], near[2])).voxel_box[0] == (-2, 3, 2)
    with pytest.raises(ValueError, match=r"^start of .* not a whole number"):
        _ = _index((far[0], far[1], far[2])).voxel_box
    assert _index((far[0], far[1], far[2]), allow=True).voxel_box[0] == (-2, 3, 2)
