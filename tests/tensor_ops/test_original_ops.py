"""The tensor operations registered with the original's names and arguments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.tensor_ops import common, generic, mask


def _mask(shape: tuple[int, ...] = (1, 8, 8, 2)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[0, 2:6, 2:6, :] = 1  # a 4x4 square in both sections
    m[0, 0, 7, 1] = 1  # one lone voxel in section 1
    return m


def test_arithmetic_and_shapes_keep_the_kind_and_support_dicts() -> None:
    a = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)
    t = torch.from_numpy(a.copy())
    assert isinstance(generic.power(t, 2), torch.Tensor)
    np.testing.assert_array_equal(generic.power(a, 2), a**2)
    np.testing.assert_array_equal(generic.divide(a, 2), a / 2)
    np.testing.assert_array_equal(generic.int_divide(a, 4), a // 4)
    assert generic.unsqueeze_to(t, 6).shape == (1, 1, 1, 2, 3, 1)
    assert generic.squeeze_to(torch.zeros(1, 1, 2, 3), 2).shape == (2, 3)
    with pytest.raises(ValueError, match="shape\\[0\\] != 1"):
        generic.squeeze_to(torch.zeros(2, 3), 1)
    out = generic.rearrange({"img": a, "seg": a}, "c x y z -> z c y x", targets=["img"])
    assert out["img"].shape == (1, 1, 3, 2) and out["seg"] is a
    assert generic.reduce(a, pattern="c x y z -> c z", reduction="max").tolist() == [[5.0]]
    assert generic.repeat(a, pattern="c x y z -> (c r) x y z", r=3).shape == (3, 2, 3, 1)
    with pytest.raises(TypeError, match="targets"):
        generic.abs(a, targets=["x"])
    # specs may name the targets too
    spec = {"@type": "power", "data": {"img": t, "seg": t}, "value": 2, "targets": ["seg"]}
    built = builder.build(spec)
    assert torch.equal(built["seg"], t**2) and built["img"] is t


def test_compare_crop_and_pad() -> None:
    t = torch.tensor([[1.0, 5.0, 9.0]])
    assert generic.compare(t, ">=", 5).tolist() == [[False, True, True]]
    assert generic.compare(t.clone(), "lt", 5, binarize=False, fill=0).tolist() == [[0.0, 5.0, 9.0]]
    with pytest.raises(ValueError, match="fill"):
        generic.compare(t, "eq", 1, binarize=False)
    data = torch.arange(2 * 6 * 5 * 3).reshape(2, 6, 5, 3)
    # the original's meaning: the sequence applies to the last dims
    assert torch.equal(common.crop(data, crop=[1, 1]), data[:, :, 1:4, 1:2])
    with pytest.raises(ValueError, match="removes more than"):
        common.crop(data, crop=[1, 2])
    assert torch.equal(common.crop(data, [1, 0, 1]), data[:, 1:5, :, 1:2])
    centre = generic.crop_center(data, [4, 3, 1])
    assert torch.equal(centre, data[:, 1:5, 1:4, 1:2])
    padded = generic.pad_center_to(torch.ones(1, 2, 3), [5, 4], value=7.0)
    assert padded.shape == (1, 5, 4)
    assert padded[0, :, 0].tolist() == [7.0, 1.0, 1.0, 7.0, 7.0]
    assert padded[0, 0].tolist() == [7.0, 7.0, 7.0, 7.0]
    assert padded[0, 1].tolist() == [1.0, 1.0, 1.0, 7.0]


def test_chains_projection_and_filters() -> None:
    data = np.array([[[[0, 3, 4]], [[0, 0, 0]]]], dtype=np.float32)  # C=1 X=2 Y=1 Z=3
    steps = [builder.build({"@type": "add", "@mode": "partial", "value": 1}), generic.abs]
    np.testing.assert_array_equal(generic.tensor_op_chain(-data, steps), np.abs(1 - data))
    proj = generic.first_hit_projection(data)
    assert proj.shape == (1, 2, 1, 1) and proj.ravel().tolist() == [3.0, 0.0]
    assert generic.first_hit_projection(data, direction="last").ravel().tolist() == [4.0, 0.0]
    stack = np.ones((1, 1, 1, 9), np.float32)
    stack[0, 0, 0, 4] = 50
    filtered = generic.nanmedian_filter(stack, threshold=10)
    assert np.isnan(filtered[0, 0, 0, 4]) and np.all(np.delete(filtered.ravel(), 4) == 1)
    maxed = generic.split_reduce(torch.tensor([1.0, -3.0]), paths=[lambda x: x, lambda x: -x])
    assert maxed.tolist() == [1.0, 3.0]
    assert generic.to_uint8(np.array([1.7])).dtype == np.uint8
    assert generic.to_float32(torch.tensor([1])).dtype == torch.float32
    c = generic.clone(data)
    c[...] = 9
    assert data.max() == 4


def test_connected_components_and_binary_morphology() -> None:
    m = _mask()
    small = mask.filter_cc(m, mode="keep_small", thr=3)
    large = mask.filter_cc(torch.from_numpy(m), mode="keep_large", thr=3)
    assert small.sum() == 1 and small[0, 0, 7, 1] == 1
    assert isinstance(large, torch.Tensor) and int(large.sum()) == 32
    grown = mask.coarsen_mask(m, width=1)
    assert grown[0, :, :, 0].sum() == 36  # 4x4 -> 6x6
    assert mask.coarsen_mask(m, width=1, thr=9)[0, :, :, 0].sum() == 4  # only the 2x2 centre
    holed = _mask()
    holed[0, 3, 3, 0] = 0
    assert mask.binary_closing(holed)[0, 3, 3, 0] == 1
    assert mask.binary_closing(holed, width=1)[0, 3, 3, 0] == 1
    # coarsen: thr 3 by default, so a lone voxel (1 set voxel around any other) does not grow
    lone = np.zeros((1, 5, 5, 1), np.uint8)
    lone[0, 2, 2, 0] = 1
    assert mask.coarsen(lone).sum() == 0 and mask.coarsen_mask(lone).sum() == 9
    assert mask.erode(m).dtype == bool
    square = np.zeros((1, 6, 6, 1), np.uint8)
    square[0, 1:5, 1:5, 0] = 1
    assert mask.erode(square, thr=1)[0, :, :, 0].sum() == 4  # any background neighbour erodes


@pytest.mark.parametrize(
    ("name", "kernel", "width", "expected"),
    [
        ("kornia_erosion", "square", 3, 4),
        ("kornia_dilation", "square", 3, 36 + 3),  # the lone edge voxel: 2x2, one already set
        ("kornia_dilation", "disk", 1, 16 + 16 + 3),
        ("kornia_dilation", "diamond", 1, 16 + 16 + 3),
        ("kornia_opening", "square", 3, 16),
        ("kornia_closing", "square", 3, 16 + 1),
    ],
)
def test_grey_morphology(name: str, kernel: str, width: int, expected: int) -> None:
    spec: dict[str, Any] = {
        "@type": name,
        "data": torch.from_numpy(_mask()),
        "kernel": kernel,
        "width": width,
    }
    out = builder.build(spec)
    assert out.dtype == torch.uint8
    assert int(out[..., 1].sum()) == expected


def test_pixel_error_and_combine() -> None:
    a = np.zeros((1, 12, 12, 1), np.float32)
    b = np.zeros_like(a)
    a[0, 1:9, 1:9] = 2.0
    b[0, 3:11, 3:11] = 5.0
    err = mask.compute_pixel_error(a, b, erosion=3)
    assert set(np.unique(err)) == {0.0, 3.0}
    assert (err == 3.0).sum() == 4 * 4  # the overlap 3..8 eroded by one voxel: 4..7
    combined = mask.erode_combine(a, b, erosion=3)
    assert (
        combined[0, 5, 5, 0] == 3.5
        and combined[0, 2, 2, 0] == 2.0
        and combined[0, 10, 10, 0] == 5.0
    )


def test_labels() -> None:
    seg = np.zeros((1, 4, 3, 2), np.uint64)
    seg[0, :2] = 7
    seg[0, 2:] = 9
    first, second = mask.get_disp_pair(seg, (1, 0, 0))
    assert first.shape == second.shape == (1, 3, 3, 2)
    aff = mask.seg_to_aff(seg, (1, 0, 0))
    assert aff[0, :, 0, 0].tolist() == [1, 0, 1]
    aff2, amask = mask.seg_to_aff(seg, (0, 1, 0), mask=np.ones_like(seg))
    assert aff2.min() == 1 and amask.shape == aff2.shape
    rgb = mask.seg_to_rgb(torch.from_numpy(seg.astype(np.int64)))
    assert rgb.shape == (3, 4, 3, 2) and rgb.dtype == torch.float32
    with pytest.raises(ValueError, match="disp"):
        mask.get_disp_pair(seg, (5, 0, 0))


def test_unsupported_ops_say_so() -> None:
    with pytest.raises(NotImplementedError, match="OpenCV"):
        builder.build({"@type": "apply_clahe", "data": None})
    with pytest.raises(TypeError, match="kornia argument"):
        mask.kornia_erosion(_mask(), border_type="constant")
