"""interpolate() sends the original's power-of-two img/segmentation downsampling to tinybrain:
the same bytes as tinybrain called the way the original calls it, as an independent float64
reference (floor for unsigned integers), and as reads of a coarser resolution through a layer
over a volume that CloudVolume wrote (with the coarse scale made by tinybrain, as igneous does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tinybrain
import torch

from zetta_utils.tensor_ops import interpolate
from zetta_utils.tensor_ops.tinybrain_downsample import TINYBRAIN_SCALE_FACTORS, covers

INT_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]
DTYPES = [*INT_DTYPES, np.float32, np.float64]
FACTORS = [(2, 2, 1), (2, 2, 2), (4, 4, 1), (4, 4, 4), (8, 8, 1), (16, 16, 1)]


def random_array(dtype: Any, shape: tuple[int, ...], seed: int = 0) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    # Full range for small types; bounded for wide ones so that tinybrain's own sums (in the
    # type itself for 64-bit data) cannot overflow.
    low, high = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
    return rng.integers(low, high, size=shape, dtype=dtype, endpoint=True)


def as_tensor(array: npt.NDArray[Any], layout: str) -> torch.Tensor:
    """CXYZ tensor; "F": x fastest, as backends read (the Fortran-ordered XYZC tinybrain wants)."""
    if layout == "F":
        return torch.from_numpy(np.asfortranarray(array.transpose(1, 2, 3, 0))).permute(3, 0, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array))


def original_img(array: npt.NDArray[Any], factor: tuple[int, int, int]) -> npt.NDArray[Any]:
    """What the original computes: CXYZ -> XYZC, tinybrain with float factors, back to CXYZ."""
    result = tinybrain.downsample_with_averaging(
        img=np.moveaxis(array, 0, -1), factor=[float(f) for f in factor]
    )[0]
    return np.moveaxis(result, -1, 0)


def original_segmentation(
    array: npt.NDArray[Any], factor: tuple[int, int, int]
) -> npt.NDArray[Any]:
    """The original's call, one channel at a time, on Fortran-ordered XYZC data (the layout of
    the original's layer reads; tinybrain's 2x2x2 kernel needs it)."""
    channels = []
    for channel in array:
        xyzc = np.asfortranarray(channel[..., np.newaxis])
        channels.append(
            tinybrain.downsample_segmentation(img=xyzc, factor=[float(f) for f in factor])[0]
        )
    return np.stack([c[..., 0] for c in channels])


def same_bytes(result: torch.Tensor, expected: npt.NDArray[Any]) -> None:
    got = result.numpy()
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()


def img_cases() -> list[tuple[Any, tuple[int, int, int]]]:
    # tinybrain's 2x2x2 averaging lacks int32/int64: those stay with our code (tested below).
    return [
        (dtype, factor)
        for dtype in DTYPES
        for factor in FACTORS
        if not (factor == (2, 2, 2) and dtype in (np.int32, np.int64))
    ]


@pytest.mark.parametrize("dtype, factor", img_cases())
@pytest.mark.parametrize("layout", ["F", "C"])
@pytest.mark.parametrize("channels", [1, 2])
def test_img_equals_tinybrain_byte_for_byte(
    dtype: Any, factor: tuple[int, int, int], layout: str, channels: int
) -> None:
    shape = (channels, 2 * factor[0], 2 * factor[1], 3 * factor[2])
    array = random_array(dtype, shape, seed=factor[0] * 7 + factor[2])
    data = as_tensor(array, layout)
    result = interpolate(data, [1 / f for f in factor], mode="img")
    same_bytes(result, original_img(array, factor))
    assert torch.equal(data, torch.from_numpy(array))  # input untouched


def floor_reference(array: npt.NDArray[Any], k: tuple[int, int, int]) -> npt.NDArray[Any]:
    """Block means of integers, truncated toward zero (floor for unsigned), exact."""
    c, x, y, z = array.shape
    blocks = array.astype(object).reshape(c, x // k[0], k[0], y // k[1], k[1], z // k[2], k[2])
    sums = blocks.sum(axis=(2, 4, 6))
    n = k[0] * k[1] * k[2]
    means = np.vectorize(lambda s: abs(s) // n * (1 if s >= 0 else -1), otypes=[object])(sums)
    return means.astype(array.dtype)


def float64_reference(array: npt.NDArray[Any], k: tuple[int, int, int]) -> npt.NDArray[Any]:
    """Block means summed in float64, rounded to the input's type once."""
    c, x, y, z = array.shape
    blocks = array.astype(np.float64).reshape(c, x // k[0], k[0], y // k[1], k[1], z // k[2], k[2])
    return blocks.mean(axis=(2, 4, 6)).astype(array.dtype)


@pytest.mark.parametrize(
    "dtype, factor",
    [
        (np.uint8, (2, 2, 1)),
        (np.uint8, (2, 2, 2)),
        (np.uint8, (4, 4, 1)),
        (np.uint8, (8, 8, 1)),
        (np.uint16, (2, 2, 2)),
        (np.int8, (2, 2, 1)),
        (np.int16, (2, 2, 2)),
        (np.int32, (2, 2, 1)),
        (np.int32, (2, 2, 2)),  # our code: tinybrain lacks it, same rule
        (np.int64, (2, 2, 2)),  # our code
        (np.float32, (2, 2, 1)),
        (np.float32, (2, 2, 2)),
        (np.int64, (2, 2, 1)),
    ],
)
def test_img_matches_independent_reference(dtype: Any, factor: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(5)
    shape = (2, 4 * factor[0], 4 * factor[1], 2 * factor[2])
    if dtype == np.float32:
        # uniform magnitudes keep each float64 block sum exact, so "rounded once" is defined
        array = rng.uniform(0, 1000, size=shape).astype(np.float32)
        expected = float64_reference(array, factor)
    else:
        array = random_array(dtype, shape, seed=6)
        expected = floor_reference(array, factor)
    result = interpolate(as_tensor(array, "F"), [1 / f for f in factor], mode="img")
    same_bytes(result, expected)


def test_img_hand_computed() -> None:
    # uint8: 2.5 -> 2, 254.75 -> 254 (floor, where rounding would give 3 and 255)
    data = torch.tensor([[1, 2, 3, 4], [255, 255, 255, 254]], dtype=torch.uint8).reshape(2, 2, 2, 1)
    assert interpolate(data, [0.5, 0.5, 1], mode="img").flatten().tolist() == [2, 254]
    # float32: 1 + 2**-24 + 2**-24 is 1 when summed in float32 but 1 + 2**-23 in float64;
    # divided by 4 that is 0.25 + 2**-25, a float32 (0.25's ulp is 2**-25).
    tiny = 2.0**-24
    values = torch.tensor([1.0, tiny, tiny, 0.0], dtype=torch.float32).reshape(1, 2, 2, 1)
    result = interpolate(values, [0.5, 0.5, 1], mode="img")
    assert result.item() == 0.25 + 2.0**-25


def edge_mean_reference(array: npt.NDArray[Any], k: tuple[int, int, int]) -> npt.NDArray[Any]:
    c, x, y, z = array.shape
    out = np.empty((c, -(-x // k[0]), -(-y // k[1]), -(-z // k[2])), dtype=array.dtype)
    for ci, i, j, m in np.ndindex(*out.shape):
        block = array[
            ci, i * k[0] : (i + 1) * k[0], j * k[1] : (j + 1) * k[1], m * k[2] : (m + 1) * k[2]
        ]
        out[ci, i, j, m] = int(block.astype(np.int64).sum()) // block.size
    return out


@pytest.mark.parametrize("factor", [(2, 2, 1), (2, 2, 2), (4, 4, 1), (4, 4, 4)])
@pytest.mark.parametrize("shape", [(1, 5, 6, 3), (2, 7, 7, 7), (1, 6, 9, 5)])
def test_odd_sizes_behave_as_the_original(
    factor: tuple[int, int, int], shape: tuple[int, int, int, int]
) -> None:
    scale = [1 / f for f in factor]
    array = random_array(np.uint8, shape, seed=sum(shape))
    data = as_tensor(array, "F")
    with pytest.raises(ValueError, match="allow_slice_rounding"):
        interpolate(data, scale, mode="img")
    # With rounding allowed: ceil(size / factor) voxels, each edge voxel the truncated mean of
    # the voxels its block has (tinybrain's NumPy averaging)...
    result = interpolate(data, scale, mode="img", allow_slice_rounding=True)
    same_bytes(result, edge_mean_reference(array, factor))
    if factor not in ((2, 2, 1), (2, 2, 2)):
        # ...which is what the original gets from tinybrain, except at 2x2x1 and 2x2x2, where
        # tinybrain's compiled kernel leaves the last x column zero and reads outside the
        # array for the last y row (its output changes from run to run).
        same_bytes(result, original_img(array, factor))
    labels = random_array(np.uint64, shape, seed=1) % 3
    seg = interpolate(as_tensor(labels, "F"), scale, mode="segmentation", allow_slice_rounding=True)
    same_bytes(seg, original_segmentation(labels, factor))


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int32, np.int64, np.float32]
)
@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("layout", ["F", "C"])
def test_segmentation_equals_tinybrain(
    dtype: Any, factor: tuple[int, int, int], layout: str
) -> None:
    shape = (2, 2 * factor[0], 2 * factor[1], 2 * factor[2])
    rng = np.random.default_rng(factor[0] + factor[2])
    pool = random_array(dtype, (4,), seed=3)  # few labels, so that blocks repeat some
    array = pool[rng.integers(0, 4, size=shape)]
    data = as_tensor(array, layout)
    result = interpolate(data, [1 / f for f in factor], mode="segmentation")
    same_bytes(result, original_segmentation(array, factor))
    assert torch.equal(data, torch.from_numpy(array))  # input untouched
    # every label comes from its block
    k = factor
    for c, i, j, m in np.ndindex(*result.shape):
        block = array[
            c, i * k[0] : (i + 1) * k[0], j * k[1] : (j + 1) * k[1], m * k[2] : (m + 1) * k[2]
        ]
        assert result.numpy()[c, i, j, m] in block


def test_segmentation_countless_rule_hand_computed() -> None:
    # a = (x, y), b = (x+1, y), c = (x, y+1), d = (x+1, y+1): a if a == b or a == c, else b if
    # b == c, else d; here each channel is one 2x2 block given as (a, b, c, d)
    blocks = [(1, 1, 2, 2), (5, 3, 5, 3), (4, 7, 7, 4), (1, 2, 3, 4), (9, 8, 8, 8)]
    data = torch.tensor([[[a, c], [b, d]] for a, b, c, d in blocks], dtype=torch.int64).unsqueeze(
        -1
    )
    result = interpolate(data, [0.5, 0.5, 1], mode="segmentation")
    assert result.flatten().tolist() == [1, 5, 7, 4, 8]


def test_multichannel_2x2x2_segmentation_is_per_channel() -> None:
    # tinybrain's 2x2x2 kernel mishandles several channels at once; we call it per channel
    array = (random_array(np.uint64, (3, 4, 4, 4), seed=9) % 5).astype(np.uint64)
    result = interpolate(as_tensor(array, "F"), 0.5, mode="segmentation")
    for c in range(3):
        single = interpolate(as_tensor(array[c : c + 1], "F"), 0.5, mode="segmentation")
        assert torch.equal(result[c : c + 1], single)


def test_uniform_2x2x2_blocks_in_c_order() -> None:
    # tinybrain's 2x2x2 kernel ignores strides: C-ordered input must reach it in Fortran order
    labels = torch.arange(2 * 3 * 2, dtype=torch.int64).reshape(1, 2, 3, 2) * 1000 + 7
    up = labels.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert up.is_contiguous()
    assert torch.equal(interpolate(up, 0.5, mode="segmentation"), labels)


def test_dtypes_tinybrain_lacks_use_our_code() -> None:
    half = torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=torch.float16).reshape(1, 2, 2, 1)
    assert interpolate(half, [0.5, 0.5, 1], mode="img").item() == 2.75
    brain = half.to(torch.bfloat16)
    assert interpolate(brain, [0.5, 0.5, 1], mode="img").dtype == torch.bfloat16
    flags = torch.tensor([True, True, False, True]).reshape(1, 2, 2, 1)
    assert interpolate(flags, [0.5, 0.5, 1], mode="segmentation").item() is True
    assert not covers((1, 2, 2, 1), torch.float16, (0.5, 0.5, 1.0), "img")
    assert not covers((1, 2, 2, 2), torch.int32, (0.5, 0.5, 0.5), "img")
    assert covers((1, 2, 2, 2), torch.int32, (0.5, 0.5, 0.5), "segmentation")


def test_which_factors_and_modes_go_to_tinybrain() -> None:
    expected = {(0.5**i, 0.5**i, 1.0) for i in range(1, 5)} | {
        (0.5**i, 0.5**i, 0.5**i) for i in range(1, 5)
    }
    assert set(TINYBRAIN_SCALE_FACTORS) == expected
    for mode in ("img", "segmentation"):
        assert covers((1, 4, 4, 1), torch.uint8, (0.5, 0.5, 1.0), mode)
    for mode in ("mask", "field", "segmentation_strided"):
        assert not covers((1, 4, 4, 1), torch.float32, (0.5, 0.5, 1.0), mode)
    for factor in [(0.5, 1.0, 1.0), (1.0, 1.0, 0.5), (0.5, 0.5, 0.25), (1 / 3, 1 / 3, 1.0)]:
        assert not covers((1, 12, 12, 4), torch.uint8, factor, "img")
    # a plane smaller than the 2x2 block is refused by tinybrain's kernel: ours takes it
    assert not covers((1, 1, 4, 1), torch.uint8, (0.5, 0.5, 1.0), "img")
    row = torch.tensor([[1, 3]], dtype=torch.uint8).reshape(1, 1, 2, 1)
    assert interpolate(row, [0.5, 0.5, 1], mode="img", allow_slice_rounding=True).item() == 2


# ---------------------------------------------------------------------------------------------
# Layer reads of a coarser resolution equal the pyramid tinybrain wrote


def write_pyramid(path: Path, array: npt.NDArray[Any], layer_type: str) -> None:
    """A precomputed volume written by CloudVolume itself: scale 4x4x40 holds ``array`` (XYZC),
    scales 8x8x40 and 8x8x80 hold tinybrain's 2x2x1 and 2x2x2 downsamples of it, as igneous
    makes them."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=array.shape[3],
        layer_type=layer_type,
        data_type=str(array.dtype),
        encoding="raw",
        resolution=[4, 4, 40],
        voxel_offset=[0, 0, 0],
        chunk_size=[16, 16, 2],
        volume_size=list(array.shape[:3]),
    )
    url = f"file://{path}"
    base = CloudVolume(url, info=info, compress=False, progress=False)
    base.add_scale((2, 2, 1), chunk_size=[16, 16, 2])
    base.add_scale((2, 2, 2), chunk_size=[16, 16, 2])
    base.commit_info()
    down = (
        tinybrain.downsample_segmentation
        if layer_type == "segmentation"
        else (tinybrain.downsample_with_averaging)
    )
    for mip, factor in ((0, None), (1, (2, 2, 1)), (2, (2, 2, 2))):
        data = array if factor is None else down(np.asfortranarray(array), factor)[0]
        vol = CloudVolume(url, mip=mip, compress=False, progress=False)
        vol[:, :, :] = data


@pytest.mark.parametrize(
    "dtype, layer_type, mode",
    [
        (np.uint8, "image", "img"),
        (np.float32, "image", "img"),
        (np.uint64, "segmentation", "segmentation"),
    ],
)
@pytest.mark.parametrize("builder_name", ["build_cv_layer", "build_ts_layer"])
def test_layer_reads_of_a_coarser_resolution_equal_the_pyramid(
    tmp_path: Path, dtype: Any, layer_type: str, mode: str, builder_name: str
) -> None:
    from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    build = {"build_cv_layer": build_cv_layer, "build_ts_layer": build_ts_layer}[builder_name]
    array = random_array(dtype, (64, 64, 8, 1), seed=11)
    if mode == "segmentation":
        array = array % 4
    write_pyramid(tmp_path / "vol", array, layer_type)
    path = f"file://{tmp_path / 'vol'}"
    stored = build(path)
    resampled = build(path, data_resolution=(4, 4, 40), interpolation_mode=mode)
    for resolution, shape in (((8, 8, 40), (32, 32, 8)), ((8, 8, 80), (32, 32, 4))):
        x, y, z = shape
        ours = resampled[resolution, 0:x, 0:y, 0:z]
        pyramid = stored[resolution, 0:x, 0:y, 0:z]
        assert ours.dtype == pyramid.dtype
        assert ours.numpy().tobytes() == np.ascontiguousarray(pyramid.numpy()).tobytes()
        # and a sub-region, not aligned to the chunks
        part = resampled[resolution, 3:21, 5:30, 1:3]
        assert torch.equal(part, pyramid[:, 3:21, 5:30, 1:3])
