import pytest
import torch

from zetta_utils import builder
from zetta_utils.tensor_ops import add, crop, multiply, squeeze, unsqueeze
from zetta_utils.tensor_ops.common import as_xyz_floats, as_xyz_ints, check_cxyz


def test_as_xyz_floats() -> None:
    assert as_xyz_floats(2, "f") == (2.0, 2.0, 2.0)
    assert as_xyz_floats([1, 2.5, 3], "f") == (1.0, 2.5, 3.0)
    assert as_xyz_floats(range(3), "f") == (0.0, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"f: expected a number or 3 numbers"):
        as_xyz_floats([1, 2], "f")
    with pytest.raises(ValueError, match="f: "):
        as_xyz_floats([1, True, 2], "f")
    with pytest.raises(TypeError, match="f: "):
        as_xyz_floats("123", "f")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        as_xyz_floats([1, float("nan"), 2], "f")


def test_as_xyz_ints() -> None:
    floats: list[float] = [1, 2.0, 3]
    assert as_xyz_ints(floats, "p") == (1, 2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integers"):
        as_xyz_ints([1, 2.5, 3], "p")  # type: ignore[list-item]
    with pytest.raises(ValueError, match=">= 1"):
        as_xyz_ints(0, "p", minimum=1)


def test_check_cxyz() -> None:
    data = torch.zeros(1, 2, 3, 4)
    assert check_cxyz(data) is data
    with pytest.raises(ValueError, match=r"src: expected a 4D tensor.*\(2, 3\)"):
        check_cxyz(torch.zeros(2, 3), "src")


def test_arithmetic_and_shape_ops() -> None:
    data = torch.tensor([1.0, 2.0])
    assert multiply(data, 3).tolist() == [3.0, 6.0]
    assert add(data, 0.5).tolist() == [1.5, 2.5]
    assert unsqueeze(data).shape == (1, 2)
    assert unsqueeze(data, -1).shape == (2, 1)
    assert squeeze(torch.zeros(1, 2, 1)).shape == (2,)
    assert squeeze(torch.zeros(1, 2, 1), 2).shape == (1, 2)
    with pytest.raises(ValueError, match="dim"):
        squeeze(torch.zeros(1, 2, 1), 1)


def test_crop() -> None:
    data = torch.arange(2 * 6 * 5 * 3).reshape(2, 6, 5, 3)
    result = crop(data, (1, 2, 0))
    assert result.shape == (2, 4, 1, 3)
    assert torch.equal(result, data[:, 1:5, 2:3, :])
    assert result.untyped_storage().data_ptr() == data.untyped_storage().data_ptr()
    with pytest.raises(ValueError, match="crop: "):
        crop(data, 3)


def test_builder_registrations() -> None:
    for name in ("interpolate", "multiply", "add", "unsqueeze", "squeeze", "crop", "to_torch"):
        assert name in builder.REGISTRY, name
    spec = {"@type": "multiply", "data": torch.ones(2), "value": 4}
    assert builder.build(spec).tolist() == [4.0, 4.0]
