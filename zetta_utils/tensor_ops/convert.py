"""Conversions between NumPy arrays and torch tensors, and dtype casts.

Torch's support for unsigned integers wider than 8 bits is limited (most operators are not
implemented for ``torch.uint16/32/64``), so :func:`to_torch` widens them to signed types that
hold every value:

=============  =============  ==========================================================
NumPy dtype    torch dtype    notes
=============  =============  ==========================================================
uint8          uint8          zero-copy view
uint16         int32          copy (exact)
uint32         int64          copy (exact)
uint64         int64          zero-copy reinterpretation; ValueError if any value > 2**63-1
bool           bool           zero-copy view
other numeric  same           zero-copy view
=============  =============  ==========================================================

Arrays are shared with the result wherever the dtype allows, so writing to the tensor writes to
the array. Two cases copy even then: read-only arrays (torch cannot hold a read-only view safely)
and arrays whose strides torch cannot express (negative strides, non-native byte order).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import numpy.typing as npt
import torch

from zetta_utils import builder

_INT64_MAX = int(np.iinfo(np.int64).max)

# NumPy dtypes that torch.from_numpy would accept but that most torch operators do not support.
_WIDENED: dict[np.dtype, np.dtype] = {
    np.dtype(np.uint16): np.dtype(np.int32),
    np.dtype(np.uint32): np.dtype(np.int64),
}

_NP_TO_TORCH: dict[np.dtype, torch.dtype] = {
    np.dtype(np.bool_): torch.bool,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.uint16): torch.uint16,
    np.dtype(np.uint32): torch.uint32,
    np.dtype(np.uint64): torch.uint64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.complex64): torch.complex64,
    np.dtype(np.complex128): torch.complex128,
}
_TORCH_TO_NP: dict[torch.dtype, np.dtype] = {v: k for k, v in _NP_TO_TORCH.items()}

DTypeLike = torch.dtype | np.dtype | type | str


def to_torch_dtype(dtype: DTypeLike) -> torch.dtype:
    """The torch dtype for ``dtype`` (a torch dtype, a NumPy dtype or scalar type, or a name such
    as ``"uint8"``). No widening happens here: ``"uint32"`` gives ``torch.uint32``."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype: expected a torch or NumPy dtype or its name, got {dtype!r}") from e
    try:
        return _NP_TO_TORCH[np_dtype.newbyteorder("=")]
    except KeyError as e:
        raise TypeError(f"dtype: {np_dtype} has no torch equivalent") from e


def to_np_dtype(dtype: DTypeLike) -> np.dtype:
    """The NumPy dtype for ``dtype`` (see :func:`to_torch_dtype` for what is accepted);
    ``torch.bfloat16`` has no NumPy equivalent and raises TypeError."""
    if isinstance(dtype, torch.dtype):
        try:
            return _TORCH_TO_NP[dtype]
        except KeyError as e:
            raise TypeError(f"dtype: {dtype} has no NumPy equivalent") from e
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype: expected a torch or NumPy dtype or its name, got {dtype!r}") from e


def _np_to_torch(data: npt.NDArray) -> torch.Tensor:
    dtype = data.dtype
    if dtype.byteorder not in ("=", "|") and dtype.itemsize > 1:
        data = data.astype(dtype.newbyteorder("="))
        dtype = data.dtype
    if dtype not in _NP_TO_TORCH:
        raise TypeError(f"data: NumPy dtype {dtype} cannot be converted to a torch tensor")
    if dtype == np.uint64:
        if data.size > 0 and int(data.max()) > _INT64_MAX:
            raise ValueError(
                "data: uint64 array holds values above 2**63-1, which do not fit in torch.int64 "
                f"(max value {int(data.max())})"
            )
        # Every value fits, so the bit pattern of the uint64 is the int64 of the same value.
        data = data.view(np.int64)
    elif dtype in _WIDENED:
        data = data.astype(_WIDENED[dtype])
    if not data.flags.writeable or any(s < 0 for s in data.strides):
        data = np.array(data, copy=True)
    return torch.from_numpy(data)


def to_torch(
    data: torch.Tensor | npt.NDArray, device: str | torch.device | None = None
) -> torch.Tensor:
    """``data`` as a torch tensor, on ``device`` if given (else where it is: CPU for arrays).

    Tensors are returned as they are (moved if ``device`` differs). Arrays become views where the
    dtype allows; see the module docstring for the dtype rule (uint16 -> int32, uint32 -> int64,
    uint64 -> int64 with a ValueError for values above 2**63-1).
    """
    if isinstance(data, torch.Tensor):
        result = data
    elif isinstance(data, np.ndarray):
        result = _np_to_torch(data)
    else:
        raise TypeError(
            f"data: expected a torch.Tensor or numpy.ndarray, got {type(data).__name__}"
        )
    if device is not None:
        result = result.to(device)
    return result


def to_np(data: torch.Tensor | npt.NDArray) -> npt.NDArray:
    """``data`` as a NumPy array: arrays as they are, CPU tensors as views sharing memory, other
    tensors copied to the CPU. bfloat16 (which NumPy lacks) becomes float32."""
    if isinstance(data, np.ndarray):
        return data
    if not isinstance(data, torch.Tensor):
        raise TypeError(
            f"data: expected a torch.Tensor or numpy.ndarray, got {type(data).__name__}"
        )
    if data.dtype == torch.bfloat16:
        return data.detach().to(torch.float32).cpu().numpy()
    return data.numpy(force=True)


@overload
def astype(data: torch.Tensor, dtype: DTypeLike) -> torch.Tensor: ...
@overload
def astype(data: npt.NDArray, dtype: DTypeLike) -> npt.NDArray: ...
def astype(data: torch.Tensor | npt.NDArray, dtype: DTypeLike) -> torch.Tensor | npt.NDArray:
    """``data`` cast to ``dtype``, keeping its kind (tensor stays tensor, array stays array).

    ``dtype`` may be a torch dtype, a NumPy dtype or a name. The cast is a plain one (float to int
    truncates toward zero; out-of-range values wrap as in NumPy/torch); no copy is made when
    ``data`` already has that dtype.
    """
    if isinstance(data, torch.Tensor):
        return data.to(to_torch_dtype(dtype))
    if isinstance(data, np.ndarray):
        return data.astype(to_np_dtype(dtype), copy=False)
    raise TypeError(f"data: expected a torch.Tensor or numpy.ndarray, got {type(data).__name__}")


builder.register("to_torch")(to_torch)
builder.register("to_np")(to_np)
builder.register("astype")(astype)
