import warnings

import numpy as np
import pytest
import torch

from zetta_utils.tensor_ops import astype, to_np, to_np_dtype, to_torch, to_torch_dtype


@pytest.mark.parametrize(
    "np_dtype, torch_dtype",
    [
        (np.uint8, torch.uint8),
        (np.int8, torch.int8),
        (np.int16, torch.int16),
        (np.int32, torch.int32),
        (np.int64, torch.int64),
        (np.float16, torch.float16),
        (np.float32, torch.float32),
        (np.float64, torch.float64),
        (np.bool_, torch.bool),
    ],
)
def test_to_torch_shares_memory_for_native_dtypes(np_dtype: type, torch_dtype: torch.dtype) -> None:
    array: np.ndarray = np.zeros((2, 3, 4, 5), dtype=np_dtype)
    tensor = to_torch(array)
    assert tensor.dtype == torch_dtype
    assert tensor.shape == (2, 3, 4, 5)
    tensor[1, 2, 3, 4] = 1
    assert array[1, 2, 3, 4] == 1


def test_to_torch_keeps_fortran_order_view() -> None:
    array = np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    tensor = to_torch(array)
    assert tensor.stride() == (1, 2, 6)
    assert tensor.data_ptr() == array.ctypes.data
    np.testing.assert_array_equal(tensor.numpy(), array)


def test_to_torch_widens_uint16_and_uint32_exactly() -> None:
    u16 = np.array([0, 1, 65535], dtype=np.uint16)
    u32 = np.array([0, 1, 2**32 - 1], dtype=np.uint32)
    t16 = to_torch(u16)
    t32 = to_torch(u32)
    assert t16.dtype == torch.int32
    assert t32.dtype == torch.int64
    assert t16.tolist() == [0, 1, 65535]
    assert t32.tolist() == [0, 1, 2**32 - 1]


def test_to_torch_uint64_within_int64_is_a_view() -> None:
    array = np.array([0, 2**62 + 1, 2**63 - 1], dtype=np.uint64)
    tensor = to_torch(array)
    assert tensor.dtype == torch.int64
    assert tensor.tolist() == [0, 2**62 + 1, 2**63 - 1]
    assert tensor.data_ptr() == array.ctypes.data


def test_to_torch_uint64_above_int64_raises() -> None:
    array = np.array([1, 2**63], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"uint64.*2\*\*63-1"):
        to_torch(array)


def test_to_torch_read_only_array_is_copied_without_warning() -> None:
    array = np.arange(4, dtype=np.int32)
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_torch(array)
    tensor[0] = 7
    assert array[0] == 0
    assert tensor.tolist() == [7, 1, 2, 3]


def test_to_torch_negative_strides_and_big_endian() -> None:
    reversed_view = np.arange(5, dtype=np.int64)[::-1]
    assert to_torch(reversed_view).tolist() == [4, 3, 2, 1, 0]
    big_endian = np.array([1, 256, 65535], dtype=">u2")
    converted = to_torch(big_endian)
    assert converted.dtype == torch.int32
    assert converted.tolist() == [1, 256, 65535]
    big_float = np.array([1.5, -2.0], dtype=">f4")
    assert to_torch(big_float).tolist() == [1.5, -2.0]


def test_to_torch_tensor_passthrough_and_device() -> None:
    tensor = torch.arange(3)
    assert to_torch(tensor) is tensor
    assert to_torch(tensor, device="cpu") is tensor
    assert to_torch(np.arange(3), device=torch.device("cpu")).device.type == "cpu"


def test_to_torch_rejects_other_types() -> None:
    with pytest.raises(
        TypeError, match=r"data: expected a torch.Tensor or numpy.ndarray, got list"
    ):
        to_torch([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="object"):
        to_torch(np.array([object()]))


def test_to_np_is_a_view_of_cpu_tensors() -> None:
    tensor = torch.zeros(2, 3)
    array = to_np(tensor)
    array[1, 2] = 5
    assert tensor[1, 2] == 5
    existing = np.ones(3)
    assert to_np(existing) is existing


def test_to_np_detaches_and_handles_bfloat16() -> None:
    grad = torch.ones(2, requires_grad=True) * 3
    assert to_np(grad).tolist() == [3.0, 3.0]
    bf = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    array = to_np(bf)
    assert array.dtype == np.float32
    assert array.tolist() == [1.5, -2.0]
    with pytest.raises(TypeError, match="data"):
        to_np("nope")  # type: ignore[arg-type]


def test_astype_keeps_kind_and_casts() -> None:
    tensor = torch.tensor([1.7, -1.7, 3.0])
    cast = astype(tensor, np.int32)
    assert isinstance(cast, torch.Tensor)
    assert cast.dtype == torch.int32
    assert cast.tolist() == [1, -1, 3]  # truncation toward zero
    array = np.array([1.7, 2.2])
    cast_array = astype(array, torch.uint8)
    assert isinstance(cast_array, np.ndarray)
    assert cast_array.dtype == np.uint8
    assert cast_array.tolist() == [1, 2]
    assert astype(tensor, "float64").dtype == torch.float64


def test_astype_same_dtype_does_not_copy() -> None:
    tensor = torch.zeros(3)
    array = np.zeros(3, dtype=np.float32)
    assert astype(tensor, torch.float32) is tensor
    assert astype(array, "float32") is array


def test_dtype_mapping_errors() -> None:
    assert to_torch_dtype("uint8") == torch.uint8
    assert to_torch_dtype(np.dtype(">i4")) == torch.int32
    assert to_np_dtype(torch.int16) == np.int16
    with pytest.raises(TypeError, match="bfloat16"):
        to_np_dtype(torch.bfloat16)
    with pytest.raises(TypeError, match="dtype"):
        to_torch_dtype("not-a-dtype")
    with pytest.raises(TypeError, match="no torch equivalent"):
        to_torch_dtype("U3")
    with pytest.raises(TypeError, match="data"):
        astype([1, 2], "int8")  # type: ignore[call-overload]
