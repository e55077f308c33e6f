"""interpolate() against hand-computed arrays and independent NumPy references."""

import math

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zetta_utils import builder
from zetta_utils.tensor_ops import get_interpolated_shape, interpolate

FAST = settings(max_examples=40, deadline=None)

# ---------------------------------------------------------------------------------------------
# Independent references (NumPy, written from the definitions, no torch)


def np_block_mean(a: npt.NDArray, k: tuple[int, int, int]) -> npt.NDArray:
    c, x, y, z = a.shape
    kx, ky, kz = k
    return a.reshape(c, x // kx, kx, y // ky, ky, z // kz, kz).mean(axis=(2, 4, 6))


def np_linear_1d(a: npt.NDArray, axis: int, out_size: int) -> npt.NDArray:
    """align_corners=False: output i samples input coordinate (i + 0.5) * in / out - 0.5,
    clamped to the first/last voxel."""
    size = a.shape[axis]
    moved = np.moveaxis(a, axis, 0)
    result = np.empty((out_size, *moved.shape[1:]), dtype=np.float64)
    for i in range(out_size):
        src = max((i + 0.5) * size / out_size - 0.5, 0.0)
        i0 = min(math.floor(src), size - 1)
        i1 = min(i0 + 1, size - 1)
        lam = src - i0
        result[i] = (1 - lam) * moved[i0] + lam * moved[i1]
    return np.moveaxis(result, 0, axis)


def np_block_mode(a: npt.NDArray, k: tuple[int, int, int]) -> npt.NDArray:
    c, x, y, z = a.shape
    kx, ky, kz = k
    out = np.empty((c, x // kx, y // ky, z // kz), dtype=a.dtype)
    for idx in np.ndindex(out.shape):
        ci, i, j, m = idx
        block = a[ci, i * kx : (i + 1) * kx, j * ky : (j + 1) * ky, m * kz : (m + 1) * kz]
        labels, counts = np.unique(block, return_counts=True)  # labels sorted ascending
        out[idx] = labels[np.argmax(counts)]  # first max: the smallest label among ties
    return out


def f_order(array: npt.NDArray) -> torch.Tensor:
    """A CXYZ tensor view with x fastest, as TensorStore reads arrive."""
    return torch.from_numpy(np.asfortranarray(array))


# ---------------------------------------------------------------------------------------------
# img


def test_img_downsample_hand_computed() -> None:
    data = torch.tensor(
        [
            [0.0, 1.0, 2.0, 3.0],
            [4.0, 5.0, 6.0, 7.0],
            [8.0, 9.0, 10.0, 11.0],
            [12.0, 13.0, 14.0, 15.0],
        ]
    ).reshape(1, 4, 4, 1)
    result = interpolate(data, [0.5, 0.5, 1], mode="img")
    expected = torch.tensor([[2.5, 4.5], [10.5, 12.5]]).reshape(1, 2, 2, 1)
    assert result.shape == (1, 2, 2, 1)
    torch.testing.assert_close(result, expected)


def test_img_upsample_hand_computed() -> None:
    data = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1)
    result = interpolate(data, [2, 1, 1], mode="img")
    torch.testing.assert_close(result.flatten(), torch.tensor([0.0, 0.25, 0.75, 1.0]))
    data = torch.tensor([0.0, 4.0, 8.0]).reshape(1, 1, 1, 3)
    result = interpolate(data, [1, 1, 2], mode="img")
    torch.testing.assert_close(result.flatten(), torch.tensor([0.0, 1.0, 3.0, 5.0, 7.0, 8.0]))


@pytest.mark.parametrize(
    "shape, block",
    [
        ((1, 8, 8, 1), (2, 2, 1)),
        ((2, 8, 4, 6), (2, 2, 2)),
        ((3, 9, 4, 6), (3, 1, 2)),
        ((1, 8, 8, 8), (4, 4, 4)),
        ((1, 6, 6, 4), (1, 1, 4)),
    ],
)
@pytest.mark.parametrize("layout", ["C", "F"])
def test_img_downsample_matches_block_mean(
    shape: tuple[int, ...], block: tuple[int, int, int], layout: str
) -> None:
    rng = np.random.default_rng(0)
    array = rng.random(shape, dtype=np.float32)
    data = torch.from_numpy(array) if layout == "C" else f_order(array)
    result = interpolate(data, [1 / b for b in block], mode="img")
    np.testing.assert_allclose(result.numpy(), np_block_mean(array, block), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape, factors",
    [
        ((1, 3, 4, 1), (2, 2, 1)),
        ((2, 3, 2, 3), (2, 3, 2)),
        ((1, 2, 5, 2), (1, 3, 1)),
        ((1, 2, 4, 2), (1.5, 1, 1)),
    ],
)
def test_img_upsample_matches_linear_reference(
    shape: tuple[int, ...], factors: tuple[float, float, float]
) -> None:
    rng = np.random.default_rng(1)
    array = rng.random(shape)
    expected = array
    for axis, factor in enumerate(factors, start=1):
        if factor != 1:
            expected = np_linear_1d(expected, axis, round(shape[axis] * factor))
    result = interpolate(torch.from_numpy(array), factors, mode="img")
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_img_mixed_down_xy_up_z() -> None:
    rng = np.random.default_rng(2)
    array = rng.random((2, 4, 6, 3))
    expected = np_linear_1d(np_block_mean(array, (2, 3, 1)), 3, 6)
    result = interpolate(torch.from_numpy(array), [0.5, 1 / 3, 2], mode="img")
    assert result.shape == (2, 2, 2, 6)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12)


def test_img_unchanged_dim_does_not_mix_neighbours() -> None:
    data = torch.tensor([[1.0, float("nan")], [3.0, 5.0]]).reshape(1, 2, 1, 2)
    result = interpolate(data, [2, 1, 1], mode="img")
    # z index 0 holds finite values only; the NaN at z=1 must not leak into it
    assert torch.isfinite(result[..., 0]).all()
    torch.testing.assert_close(result[0, :, 0, 0], torch.tensor([1.0, 1.5, 2.5, 3.0]))


def test_img_non_integer_ratio_uses_adaptive_windows() -> None:
    # x: 3 -> 2, windows [0, 2) and [1, 3)
    data = torch.tensor([0.0, 3.0, 9.0]).reshape(1, 3, 1, 1)
    result = interpolate(data, [2 / 3, 1, 1], mode="img")
    torch.testing.assert_close(result.flatten(), torch.tensor([1.5, 6.0]))


def test_img_uint8_truncates_and_stays_uint8() -> None:
    blocks = [[1, 2, 3, 4], [0, 0, 0, 1], [255, 255, 255, 254], [0, 1, 1, 0], [10, 10, 10, 11]]
    # each row is one block of 4 voxels; means 2.5, 0.25, 254.75, 0.5, 10.25
    expected = [2, 0, 254, 0, 10]
    data = torch.tensor(blocks, dtype=torch.uint8).reshape(5, 2, 2, 1)  # (C=5, X=2, Y=2, Z=1)
    result = interpolate(data, [0.5, 0.5, 1], mode="img")  # tinybrain
    assert result.dtype == torch.uint8
    assert result.flatten().tolist() == expected
    result = interpolate(data.reshape(5, 4, 1, 1), [0.25, 1, 1], mode="img")  # our own code
    assert result.dtype == torch.uint8
    assert result.flatten().tolist() == expected


def test_img_int8_negative_truncates_toward_zero() -> None:
    data = torch.tensor([[-1, -2], [-2, -2], [-1, -2], [-1, -2]], dtype=torch.int8).reshape(
        2, 2, 2, 1
    )
    # channel 0 block: -1, -2, -2, -2 -> -1.75 -> -1 ; channel 1 block: -1, -2, -1, -2 -> -1.5 -> -1
    result = interpolate(data, [0.5, 0.5, 1], mode="img")  # tinybrain
    assert result.dtype == torch.int8
    assert result.flatten().tolist() == [-1, -1]
    result = interpolate(data.reshape(2, 4, 1, 1), [0.25, 1, 1], mode="img")  # our own code
    assert result.flatten().tolist() == [-1, -1]


def test_img_uint8_upsample_truncates() -> None:
    data = torch.tensor([0, 255], dtype=torch.uint8).reshape(1, 2, 1, 1)
    result = interpolate(data, [2, 1, 1], mode="img")
    assert result.dtype == torch.uint8
    assert result.flatten().tolist() == [0, 63, 191, 255]  # 63.75, 191.25


@given(
    st.sampled_from([np.uint8, np.int16, np.int32, np.int64]),
    st.sampled_from([(2, 2, 1), (3, 1, 1), (2, 2, 2), (1, 4, 1), (2, 1, 2)]),
    st.integers(0, 2**16),
)
@FAST
def test_img_integer_down_matches_truncated_block_mean(
    np_dtype: type, block: tuple[int, int, int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(np_dtype)
    low, high = max(info.min, -(2**40)), min(info.max, 2**40)
    array = rng.integers(low, high, size=(2, 6, 4, 2), dtype=np_dtype, endpoint=True)
    c, x, y, z = array.shape
    kx, ky, kz = block
    blocks = array.reshape(c, x // kx, kx, y // ky, ky, z // kz, kz).astype(object)
    sums = blocks.sum(axis=(2, 4, 6))
    n = kx * ky * kz
    expected = np.vectorize(lambda s: abs(s) // n * (1 if s >= 0 else -1), otypes=[object])(sums)
    expected = expected.astype(np_dtype)  # the mean truncated toward zero, exact
    result = interpolate(torch.from_numpy(array), [1 / b for b in block], mode="img")
    assert result.dtype == torch.from_numpy(array).dtype
    np.testing.assert_array_equal(result.numpy(), expected)


def test_img_float16_keeps_dtype() -> None:
    data = torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=torch.float16).reshape(1, 4, 1, 1)
    result = interpolate(data, [0.5, 1, 1], mode="img")
    assert result.dtype == torch.float16
    assert result.flatten().tolist() == [1.5, 4.0]


def test_img_identity_returns_input() -> None:
    data = torch.rand(1, 4, 4, 2)
    assert interpolate(data, 1, mode="img") is data
    assert interpolate(data, [1, 1, 1], mode="segmentation") is data


def test_img_rejects_bool_and_complex() -> None:
    with pytest.raises(TypeError, match="mask"):
        interpolate(torch.ones(1, 2, 2, 1, dtype=torch.bool), [0.5, 0.5, 1], mode="img")
    with pytest.raises(TypeError, match="complex"):
        interpolate(torch.ones(1, 2, 2, 2, dtype=torch.complex64), 0.5, mode="img")


# ---------------------------------------------------------------------------------------------
# field


def test_field_downsample_halves_values() -> None:
    field = torch.empty(2, 4, 4, 1)
    field[0] = 3.0
    field[1] = -5.0
    result = interpolate(field, [0.5, 0.5, 1], mode="field")
    assert result.shape == (2, 2, 2, 1)
    torch.testing.assert_close(result[0], torch.full((2, 2, 1), 1.5))
    torch.testing.assert_close(result[1], torch.full((2, 2, 1), -2.5))


def test_field_scales_each_channel_by_its_dim() -> None:
    field = torch.empty(2, 4, 8, 1)
    field[0] = 4.0
    field[1] = 8.0
    result = interpolate(field, [0.5, 0.25, 1], mode="field")
    assert result.shape == (2, 2, 2, 1)
    assert result[0].unique().tolist() == [2.0]
    assert result[1].unique().tolist() == [2.0]
    up = interpolate(field, [2, 2, 1], mode="field")
    assert up[0].unique().tolist() == [8.0]
    assert up[1].unique().tolist() == [16.0]


@given(st.integers(0, 2**16), st.sampled_from([2, 4]))
@FAST
def test_field_down_is_block_mean_times_factor(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    array = rng.normal(size=(2, 8, 8, 1)) * 10
    result = interpolate(torch.from_numpy(array), [1 / k, 1 / k, 1], mode="field")
    np.testing.assert_allclose(result.numpy(), np_block_mean(array, (k, k, 1)) / k, rtol=1e-10)


def test_field_validation() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        interpolate(torch.ones(2, 4, 4, 1, dtype=torch.int32), 0.5, mode="field")
    with pytest.raises(ValueError, match="2 channels"):
        interpolate(torch.ones(1, 4, 4, 1), 0.5, mode="field")


# ---------------------------------------------------------------------------------------------
# mask


def test_mask_downsample_any_above_threshold() -> None:
    data = torch.tensor(
        [
            [0.0, 0.2, 0.0, 0.0],
            [0.6, 0.0, 0.0, 0.5],
        ]
    ).reshape(1, 2, 4, 1)
    result = interpolate(data, [0.5, 0.5, 1], mode="mask", mask_value_thr=0.5)
    assert result.dtype == torch.float32
    assert result.flatten().tolist() == [1.0, 0.0]  # 0.5 is not above 0.5
    result = interpolate(data, [0.5, 0.5, 1], mode="mask")
    assert result.flatten().tolist() == [1.0, 1.0]


def test_mask_bool_and_uint8() -> None:
    bools = torch.tensor([False, False, True, False, False, False]).reshape(1, 6, 1, 1)
    result = interpolate(bools, [0.5, 1, 1], mode="mask")
    assert result.dtype == torch.bool
    assert result.flatten().tolist() == [False, True, False]
    values = torch.tensor([0, 7, 0, 0, 200, 3], dtype=torch.uint8).reshape(1, 6, 1, 1)
    result = interpolate(values, [0.5, 1, 1], mode="mask", mask_value_thr=5)
    assert result.dtype == torch.uint8
    assert result.flatten().tolist() == [1, 0, 1]


def test_mask_bool_thresholds() -> None:
    bools = torch.tensor([False, True]).reshape(1, 2, 1, 1)
    assert interpolate(bools, 1, mode="mask", mask_value_thr=-0.5).flatten().tolist() == [
        True,
        True,
    ]
    assert interpolate(bools, 1, mode="mask", mask_value_thr=0.5).flatten().tolist() == [
        False,
        True,
    ]
    assert interpolate(bools, 1, mode="mask", mask_value_thr=1).flatten().tolist() == [False, False]
    assert interpolate(bools, [0.5, 1, 1], mode="mask", mask_value_thr=-1).flatten().tolist() == [
        True
    ]


def test_img_wide_unsigned_torch_dtypes() -> None:
    big = 2**32 - 1
    data = torch.tensor([big, big - 2, 0, 1], dtype=torch.uint32).reshape(1, 4, 1, 1)
    result = interpolate(data, [0.5, 1, 1], mode="img")
    assert result.dtype == torch.uint32
    assert result.to(torch.int64).flatten().tolist() == [big - 1, 0]  # 0.5 truncates
    data16 = torch.tensor([65535, 65534], dtype=torch.uint16).reshape(1, 2, 1, 1)
    assert interpolate(data16, [0.5, 1, 1], mode="img").to(torch.int64).flatten().tolist() == [
        65534
    ]


def test_mask_upsample_nearest_and_thresholded() -> None:
    data = torch.tensor([0.0, 0.3, 9.0]).reshape(1, 3, 1, 1)
    result = interpolate(data, [2, 1, 1], mode="mask", mask_value_thr=0.1)
    assert result.flatten().tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    same = interpolate(data, 1, mode="mask", mask_value_thr=0.1)
    assert same.flatten().tolist() == [0.0, 1.0, 1.0]


def test_mask_nan_does_not_hide_or_set() -> None:
    nan = float("nan")
    data = torch.tensor([nan, 2.0, nan, nan, 0.0, nan]).reshape(1, 6, 1, 1)
    result = interpolate(data, [0.5, 1, 1], mode="mask")
    assert result.flatten().tolist() == [1.0, 0.0, 0.0]


def test_mask_non_integer_ratio() -> None:
    # x: 3 -> 2, windows [0, 2) and [1, 3)
    data = torch.tensor([0, 0, 4], dtype=torch.int32).reshape(1, 3, 1, 1)
    result = interpolate(data, [2 / 3, 1, 1], mode="mask")
    assert result.flatten().tolist() == [0, 1]


@given(st.integers(0, 2**16), st.floats(-1, 1))
@FAST
def test_mask_down_matches_numpy_any(seed: int, thr: float) -> None:
    rng = np.random.default_rng(seed)
    array = rng.uniform(-1, 1, size=(2, 4, 6, 4)).astype(np.float32)
    expected = (array > thr).reshape(2, 2, 2, 3, 2, 2, 2).any(axis=(2, 4, 6))
    result = interpolate(torch.from_numpy(array), [0.5, 0.5, 0.5], mode="mask", mask_value_thr=thr)
    np.testing.assert_array_equal(result.numpy(), expected.astype(np.float32))


def test_mask_wide_unsigned_torch_dtypes() -> None:
    data = torch.tensor([0, 2**64 - 1, 5, 6], dtype=torch.uint64).reshape(1, 4, 1, 1)
    result = interpolate(data, [0.5, 1, 1], mode="mask", mask_value_thr=5)
    assert result.dtype == torch.uint64
    assert result.view(torch.int64).flatten().tolist() == [1, 1]
    result = interpolate(data, [0.5, 1, 1], mode="mask", mask_value_thr=6)
    assert result.view(torch.int64).flatten().tolist() == [1, 0]


# ---------------------------------------------------------------------------------------------
# segmentation


def test_segmentation_mode_hand_computed() -> None:
    data = torch.tensor(
        [
            [5, 5, 3, 3],
            [7, 5, 1, 3],
            [9, 8, 2, 2],
            [8, 9, 1, 1],
        ],
        dtype=torch.int64,
    ).reshape(1, 4, 4, 1)
    # Our own mode (a factor tinybrain does not take): blocks of 2 along y, then 2 along x.
    by_y = interpolate(data, [1, 0.5, 1], mode="segmentation")
    # rows {5,5},{3,3} ; {7,5},{1,3} ; {9,8},{2,2} ; {8,9},{1,1}: ties -> the smallest label
    assert by_y.flatten().tolist() == [5, 3, 5, 1, 8, 2, 8, 1]
    # 2x2x1 goes to tinybrain: with a = (x, y), b = (x+1, y), c = (x, y+1), d = (x+1, y+1), the
    # result is a if a == b or a == c, else b if b == c, else d.
    result = interpolate(data, [0.5, 0.5, 1], mode="segmentation")
    # blocks (a, b, c, d): (5,7,5,5) -> 5 ; (3,1,3,3) -> 3 ; (9,8,8,9) -> 8 ; (2,1,2,1) -> 2
    assert result.flatten().tolist() == [5, 3, 8, 2]


def test_segmentation_strided_picks_first_voxel_as_view() -> None:
    data = torch.arange(16, dtype=torch.int64).reshape(1, 4, 4, 1)
    result = interpolate(data, [0.5, 0.5, 1], mode="segmentation_strided")
    assert result.flatten().tolist() == [0, 2, 8, 10]
    assert result.untyped_storage().data_ptr() == data.untyped_storage().data_ptr()
    # non-integer ratio: out[i] = in[floor(i * 3 / 2)]
    row = torch.tensor([10, 20, 30], dtype=torch.int64).reshape(1, 3, 1, 1)
    assert interpolate(row, [2 / 3, 1, 1], mode="segmentation_strided").flatten().tolist() == [
        10,
        20,
    ]


def test_segmentation_nearest_upsample() -> None:
    data = torch.tensor([[1, 2], [3, 4]], dtype=torch.int64).reshape(1, 2, 2, 1)
    result = interpolate(data, [2, 1, 2], mode="segmentation")
    assert result.shape == (1, 4, 2, 2)
    assert result[0, :, :, 0].tolist() == [[1, 2], [1, 2], [3, 4], [3, 4]]
    assert torch.equal(result[..., 0], result[..., 1])
    # non-integer: out i takes in floor((i + 0.5) * 2 / 3) -> 0, 1, 1
    row = torch.tensor([10, 20], dtype=torch.int64).reshape(1, 2, 1, 1)
    assert interpolate(row, [1.5, 1, 1], mode="segmentation").flatten().tolist() == [10, 20, 20]


# Factors tinybrain does not take (those are in test_tinybrain_downsample.py).
@pytest.mark.parametrize("block", [(2, 1, 1), (2, 2, 4), (4, 4, 2), (1, 1, 4), (3, 1, 2)])
def test_segmentation_mode_matches_numpy(block: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(3)
    shape = (2, 8 if block[0] != 3 else 9, 8, 8 if block[2] != 3 else 6)
    array = rng.integers(0, 4, size=shape).astype(np.int64) * (2**61) - 3
    result = interpolate(torch.from_numpy(array), [1 / b for b in block], mode="segmentation")
    np.testing.assert_array_equal(result.numpy(), np_block_mode(array, block))


@given(
    st.sampled_from([(2, 1, 1), (2, 1, 2), (1, 2, 2), (4, 4, 2), (1, 3, 1)]),
    st.integers(1, 6),
    st.integers(0, 2**16),
)
@FAST
def test_segmentation_mode_property(block: tuple[int, int, int], labels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (1, 2 * block[0], 2 * block[1], 2 * block[2])
    array = rng.choice(rng.integers(-(2**63), 2**63 - 1, size=labels), size=shape)
    result = interpolate(torch.from_numpy(array), [1 / b for b in block], mode="segmentation")
    expected = np_block_mode(array, block)
    np.testing.assert_array_equal(result.numpy(), expected)
    # every output label occurs in its block
    for idx in np.ndindex(result.shape):
        _, i, j, m = idx
        kx, ky, kz = block
        window = array[0, i * kx : (i + 1) * kx, j * ky : (j + 1) * ky, m * kz : (m + 1) * kz]
        assert int(result[idx]) in set(window.flatten().tolist())


def test_segmentation_int64_near_limits_exact() -> None:
    big = 2**62
    labels = [big + 1, big + 1, big + 2, big, 2**63 - 1, 2**63 - 1, -(2**63), 2**63 - 2]
    data = torch.tensor(labels, dtype=torch.int64).reshape(1, 8, 1, 1)
    down = interpolate(data, [0.25, 1, 1], mode="segmentation")
    assert down.flatten().tolist() == [big + 1, 2**63 - 1]
    up = interpolate(data, [2, 1, 1], mode="segmentation")
    assert up.flatten().tolist() == [v for v in labels for _ in range(2)]


def test_segmentation_uint64_tie_breaks_on_unsigned_order() -> None:
    data = torch.tensor([2**64 - 1, 2**64 - 1, 3, 3], dtype=torch.uint64).reshape(1, 4, 1, 1)
    result = interpolate(data, [0.25, 1, 1], mode="segmentation")
    assert result.dtype == torch.uint64
    assert result.view(torch.int64).flatten().tolist() == [3]
    data = torch.tensor([2**64 - 1, 2**64 - 1, 2**64 - 1, 3], dtype=torch.uint64).reshape(
        1, 4, 1, 1
    )
    result = interpolate(data, [0.25, 1, 1], mode="segmentation")
    assert result.view(torch.int64).flatten().tolist() == [-1]  # bit pattern of 2**64 - 1


def test_segmentation_other_dtypes() -> None:
    data = torch.tensor([True, True, False, True], dtype=torch.bool).reshape(1, 4, 1, 1)
    assert interpolate(data, [0.25, 1, 1], mode="segmentation").flatten().tolist() == [True]
    data = torch.tensor([200, 7, 7, 200, 200, 1], dtype=torch.uint8).reshape(1, 6, 1, 1)
    result = interpolate(data, [1 / 3, 1, 1], mode="segmentation")
    assert result.dtype == torch.uint8
    assert result.flatten().tolist() == [7, 200]


@given(
    st.sampled_from([(2, 2, 1), (2, 2, 2), (3, 1, 1), (4, 4, 2)]),
    st.integers(0, 2**16),
)
@FAST
def test_segmentation_roundtrip_up_then_down(block: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    array = rng.integers(-(2**63), 2**63 - 1, size=(2, 3, 4, 2), dtype=np.int64)
    data = torch.from_numpy(array)
    up = interpolate(data, list(block), mode="segmentation")
    for mode in ("segmentation", "segmentation_strided"):
        down = interpolate(up, [1 / b for b in block], mode=mode)
        assert torch.equal(down, data)


def test_segmentation_mixed_down_up() -> None:
    data = torch.tensor([[1, 1], [2, 1]], dtype=torch.int64).reshape(1, 2, 1, 2)
    # x: 2 -> 1 by mode over {1, 2} per z; z: 2 -> 4 nearest
    result = interpolate(data, [0.5, 1, 2], mode="segmentation")
    assert result.shape == (1, 1, 1, 4)
    assert result.flatten().tolist() == [1, 1, 1, 1]
    data = torch.tensor([[3, 4], [3, 5]], dtype=torch.int64).reshape(1, 2, 1, 2)
    assert interpolate(data, [0.5, 1, 2], mode="segmentation").flatten().tolist() == [3, 3, 4, 4]


def test_segmentation_non_integer_down_is_rejected() -> None:
    with pytest.raises(ValueError, match="segmentation_strided"):
        interpolate(torch.zeros(1, 3, 1, 1, dtype=torch.int64), [2 / 3, 1, 1], mode="segmentation")


# ---------------------------------------------------------------------------------------------
# shapes and validation


def test_non_integral_size_names_dims() -> None:
    data = torch.zeros(1, 5, 6, 3)
    with pytest.raises(ValueError, match=r"x: 5 \* 0.5 = 2.5; z: 3 \* 0.5 = 1.5") as info:
        interpolate(data, 0.5, mode="img")
    assert "y:" not in str(info.value)
    assert "allow_slice_rounding" in str(info.value)
    result = interpolate(data, 0.5, mode="img", allow_slice_rounding=True)
    assert result.shape == (1, 3, 3, 2)  # 2.5 -> 3, 1.5 -> 2 (half up)


def test_get_interpolated_shape() -> None:
    assert get_interpolated_shape((30, 12, 1), [4 / 6, 1 / 3, 1]) == (20, 4, 1)
    assert get_interpolated_shape((3, 1, 1), 0.25, allow_slice_rounding=True) == (1, 1, 1)
    with pytest.raises(ValueError, match="shape_xyz"):
        get_interpolated_shape((3, 1), 1)
    with pytest.raises(ValueError, match="positive"):
        get_interpolated_shape((3, 1, 1), [1, 0, 1])


def test_argument_validation() -> None:
    data = torch.zeros(1, 4, 4, 1)
    with pytest.raises(ValueError, match="mode"):
        interpolate(data, 0.5, mode="bilinear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"4D tensor \(channel, x, y, z\)"):
        interpolate(torch.zeros(4, 4, 1), 0.5, mode="img")
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        interpolate(np.zeros((1, 4, 4, 1)), 0.5, mode="img")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale_factor"):
        interpolate(data, [0.5, 0.5], mode="img")
    with pytest.raises(ValueError, match="scale_factor"):
        interpolate(data, [0.5, -0.5, 1], mode="img")
    with pytest.raises(ValueError, match="finite"):
        interpolate(data, float("inf"), mode="img")
    # three plain floats (a layer's call) take a shorter path, with the same checks
    with pytest.raises(ValueError, match="positive"):
        interpolate(data, (0.5, -0.5, 1.0), mode="img")
    with pytest.raises(ValueError, match="finite"):
        interpolate(data, (0.5, float("nan"), 1.0), mode="img")
    with pytest.raises(TypeError, match="mask_value_thr"):
        interpolate(data, 0.5, mode="mask", mask_value_thr="0")  # type: ignore[arg-type]


def test_empty_input() -> None:
    data = torch.zeros(2, 0, 4, 2, dtype=torch.int64)
    result = interpolate(data, [2, 0.5, 1], mode="segmentation")
    assert result.shape == (2, 0, 2, 2)
    assert result.dtype == torch.int64


def test_registered_with_builder() -> None:
    data = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1, 1)
    result = builder.build(
        {"@type": "interpolate", "data": data, "scale_factor": [0.5, 1, 1], "mode": "img"}
    )
    assert result.flatten().tolist() == [0.5, 2.5]
