"""``{"@type": "interpolate"}`` with the original's arguments (size, unsqueeze_input_to,
torch's modes, NumPy in and out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.tensor_ops import interpolation


def _build(**kwargs: Any) -> Any:
    return builder.build({"@type": "interpolate", **kwargs})


def test_custom_modes_match_the_cxyz_function_and_keep_numpy() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(2, 8, 6, 2), dtype=np.uint8)
    out = _build(data=img, scale_factor=[0.5, 0.5, 1])  # mode defaults to img
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    expected = interpolation.interpolate(torch.from_numpy(img), [0.5, 0.5, 1], "img")
    np.testing.assert_array_equal(out, expected.numpy())
    # size gives the same as the equivalent factors; two factors apply to the last two dims
    np.testing.assert_array_equal(_build(data=img, size=[4, 3, 2]), out)
    np.testing.assert_array_equal(
        _build(data=img, scale_factor=[0.5, 1]), _build(data=img, scale_factor=[1, 0.5, 1])
    )
    seg = rng.integers(0, 2**40, size=(1, 4, 4, 1), dtype=np.uint64)
    down = _build(data=seg, scale_factor=[0.5, 0.5, 1], mode="segmentation")
    assert down.dtype == np.uint64 and down.shape == (1, 2, 2, 1)


def test_torch_modes_and_other_ranks() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)  # C X Y with unsqueeze_input_to=4
    out = _build(data=x, size=[6, 8], mode="bilinear", unsqueeze_input_to=4)
    ref = torch.nn.functional.interpolate(x[None], size=[6, 8], mode="bilinear")[0]
    assert torch.equal(out, ref)
    labels = torch.tensor([[[[7, 9]]]], dtype=torch.int64)  # 1 1 1 2
    up = _build(data=labels, scale_factor=[1, 1, 2], mode="nearest")
    assert up.dtype == torch.int64 and up.flatten().tolist() == [7, 7, 9, 9]


def test_bad_arguments() -> None:
    x = torch.zeros(1, 4, 4, 1)
    with pytest.raises(ValueError, match="exactly one of"):
        _build(data=x)
    with pytest.raises(ValueError, match="exactly one of"):
        _build(data=x, size=[2, 2, 1], scale_factor=0.5)
    with pytest.raises(ValueError, match="non-integer"):
        _build(data=x, scale_factor=[1, 0.3, 1], mode="trilinear")
    with pytest.raises(ValueError, match="size: 2 values"):
        _build(data=x, size=[2, 2])
