"""VolumetricFrontend: user index parsing in every form, and the choice of source resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.frontend import (
    VolumetricFrontend,
    choose_read_resolution,
    match_resolution,
)

R4 = Vec3D(4, 4, 40)
R64 = Vec3D(64, 64, 40)
R192 = Vec3D(192, 192, 80)


def test_slices_in_index_resolution_read_at_default_desired() -> None:
    """The guide's example: (4, 4, 40) coordinates, (192, 192, 80) output."""
    fe = VolumetricFrontend(index_resolution=R4, default_desired_resolution=R192)
    idx = fe.convert_idx((slice(211200, 216000), slice(64800, 69600), slice(2000, 2002)))
    assert idx.resolution == R192
    assert idx.bbox.bounds == ((844800, 864000), (259200, 278400), (80000, 80080))
    assert idx.shape == Vec3D(100, 100, 1)


def test_resolution_then_slices_without_index_resolution() -> None:
    fe = VolumetricFrontend()
    for res in (R64, (64, 64, 40), [64, 64, 40], np.array([64, 64, 40])):
        idx = fe.convert_idx((res, slice(13000, 13100), slice(4000, 4100), slice(2000, 2001)))
        assert idx.resolution == R64
        assert idx.shape == Vec3D(100, 100, 1)
        assert idx.bbox.start == Vec3D(13000 * 64, 4000 * 64, 2000 * 40)


def test_resolution_then_slices_with_index_resolution_slices_stay_in_index_resolution() -> None:
    fe = VolumetricFrontend(index_resolution=R4, default_desired_resolution=R192)
    idx = fe.convert_idx((R64, slice(0, 1600), slice(0, 160), slice(0, 3)))
    assert idx.resolution == R64  # the given resolution is the desired one
    assert idx.bbox.bounds == ((0, 6400), (0, 640), (0, 120))
    assert idx.shape == Vec3D(100, 10, 3)


def test_none_resolution_means_default_desired() -> None:
    fe = VolumetricFrontend(index_resolution=R4, default_desired_resolution=R64)
    idx = fe.convert_idx((None, slice(0, 64), slice(0, 64), slice(0, 1)))
    assert idx.resolution == R64 and idx.shape == Vec3D(4, 4, 1)


def test_volumetric_index_passes_through_unchanged() -> None:
    """A VolumetricIndex overrides index_resolution and is read at its own resolution."""
    fe = VolumetricFrontend(index_resolution=R4, default_desired_resolution=R192)
    idx = VolumetricIndex.from_coords((13000, 4000, 2000), (13100, 4100, 2001), R64)
    assert fe.convert_idx(idx) is idx


def test_bbox_forms() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (8, 8, 2), R64)
    fe = VolumetricFrontend(default_desired_resolution=R64)
    assert fe.convert_idx(bbox) == VolumetricIndex(resolution=R64, bbox=bbox)
    idx = VolumetricFrontend().convert_idx(((32, 32, 40), bbox))
    assert idx.resolution == Vec3D(32, 32, 40) and idx.shape == Vec3D(16, 16, 2)


def test_allow_slice_rounding_is_carried_into_the_index() -> None:
    fe = VolumetricFrontend(
        index_resolution=R4, default_desired_resolution=R64, allow_slice_rounding=True
    )
    idx = fe.convert_idx((slice(0, 70), slice(0, 64), slice(0, 1)))
    assert idx.allow_slice_rounding and idx.shape == Vec3D(4, 4, 1)
    strict = VolumetricFrontend(index_resolution=R4, default_desired_resolution=R64)
    with pytest.raises(ValueError, match="allow_slice_rounding"):
        _ = strict.convert_idx((slice(0, 70), slice(0, 64), slice(0, 1))).shape


def test_slices_without_any_resolution_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"needs index_resolution \(set it when building the layer\) "
        r"or a resolution as the first element",
    ):
        VolumetricFrontend(default_desired_resolution=R64).convert_idx(
            (slice(0, 1), slice(0, 1), slice(0, 1))
        )


def test_no_desired_resolution_error() -> None:
    with pytest.raises(ValueError, match="default_desired_resolution"):
        VolumetricFrontend(index_resolution=R4).convert_idx(
            (slice(0, 16), slice(0, 16), slice(0, 1))
        )
    with pytest.raises(ValueError, match="default_desired_resolution"):
        VolumetricFrontend().convert_idx(BBox3D.from_coords((0, 0, 0), (1, 1, 1)))


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (5, TypeError, "layer\\[...\\] expects"),
        ((slice(0, 1), slice(0, 1)), TypeError, "expects"),
        ((R64, 3, slice(0, 1), slice(0, 1)), TypeError, "x element must be a slice"),
        ((R64, slice(0, 1), slice(0, 1), 7), TypeError, "z element must be a slice"),
        ((R64, slice(0, 1, 2), slice(0, 1), slice(0, 1)), ValueError, "step 1"),
        ((R64, slice(None, 1), slice(0, 1), slice(0, 1)), ValueError, "explicit start"),
        (((0, 4, 40), slice(0, 1), slice(0, 1), slice(0, 1)), ValueError, "resolution .*positive"),
        (((4, 40), slice(0, 1), slice(0, 1), slice(0, 1)), ValueError, "three numbers"),
    ],
)
def test_bad_indices(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        VolumetricFrontend(default_desired_resolution=R64).convert_idx(bad)  # type: ignore[arg-type]


def test_frontend_validates_settings() -> None:
    with pytest.raises(ValueError, match="interpolation_mode"):
        VolumetricFrontend(data_resolution=R64)
    with pytest.raises(ValueError, match=r"interpolation_mode.*bilinear"):
        VolumetricFrontend(interpolation_mode="bilinear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index_resolution"):
        VolumetricFrontend(index_resolution=(4, 4))
    with pytest.raises(ValueError, match=r"default_desired_resolution.*positive"):
        VolumetricFrontend(default_desired_resolution=(4, -4, 40))
    fe = VolumetricFrontend(
        index_resolution=[4, 4, 40], data_resolution=(8, 8, 40), interpolation_mode="img"
    )
    assert fe.index_resolution == R4 and isinstance(fe.data_resolution, Vec3D)


def test_convert_write_accepts_numpy_and_checks_shape() -> None:
    fe = VolumetricFrontend()
    slices = (R64, slice(0, 4), slice(0, 2), slice(0, 1))
    array = np.arange(8, dtype=np.float32).reshape(1, 4, 2, 1)
    idx, data = fe.convert_write(slices, array)
    assert isinstance(data, torch.Tensor) and idx.shape == Vec3D(4, 2, 1)
    assert np.shares_memory(data.numpy(), array)  # no copy
    tensor = torch.zeros(2, 4, 2, 1)
    assert fe.convert_write(slices, tensor)[1] is tensor
    with pytest.raises(ValueError, match=r"shape \(C, 4, 2, 1\).*\(1, 2, 4, 1\)"):
        fe.convert_write(slices, np.zeros((1, 2, 4, 1)))
    with pytest.raises(ValueError, match="CXYZ"):
        fe.convert_write(slices, np.zeros((4, 2, 1)))
    with pytest.raises(TypeError, match=r"torch.Tensor or numpy.ndarray, got list"):
        fe.convert_write(slices, [[1.0]])


def test_match_resolution_tolerates_float_rounding() -> None:
    stored = [Vec3D(4.0, 4.0, 40.0), Vec3D(8, 8, 40)]
    assert match_resolution(Vec3D(4, 4, 40), stored) is stored[0]
    assert match_resolution(Vec3D((0.1 + 0.2) / 0.3 * 8, 8, 40), stored) is stored[1]
    assert match_resolution(Vec3D(16, 16, 40), stored) is None


@pytest.mark.parametrize(
    "desired, expected",
    [
        ((16, 16, 40), (8, 8, 40)),  # downsampling: nearest finer stored one (cheapest exact)
        ((12, 12, 40), (4, 4, 40)),  # 12/8 is not an integer ratio; 12/4 is
        ((2, 2, 40), (4, 4, 40)),  # upsampling: the finest
        ((64, 64, 80), (32, 32, 40)),
        ((8, 8, 20), (8, 8, 40)),  # finer than everything in z: least lost detail
        ((3, 3, 40), (4, 4, 40)),
    ],
)
def test_choose_read_resolution(desired: tuple[float, ...], expected: tuple[float, ...]) -> None:
    stored = [Vec3D(4, 4, 40), Vec3D(8, 8, 40), Vec3D(32, 32, 40)]
    assert choose_read_resolution(Vec3D(*desired), stored) == Vec3D(*expected)


def test_choose_read_resolution_mixed_anisotropy() -> None:
    stored = [Vec3D(4, 4, 80), Vec3D(16, 16, 40)]
    # (8, 8, 40): (4,4,80) loses z detail (log 2), (16,16,40) loses x and y (2 log 2)
    assert choose_read_resolution(Vec3D(8, 8, 40), stored) == Vec3D(4, 4, 80)
    with pytest.raises(ValueError, match="no resolutions"):
        choose_read_resolution(Vec3D(8, 8, 40), [])
