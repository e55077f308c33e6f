"""Small tensor operations usable from specs, and argument helpers shared by this package.

All operations take CXYZ tensors (channel, x, y, z) unless they say otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import cast

import torch

from zetta_utils import builder

SPATIAL_DIMS = ("x", "y", "z")


def as_xyz_floats(value: float | Sequence[float], name: str) -> tuple[float, float, float]:
    """``value`` as three finite floats: one number applies to x, y and z; a sequence (a list, a
    tuple, a ``Vec3D``) gives one per dim."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        result: tuple[float, ...] = (number, number, number)
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = tuple(value)
        if len(items) != 3 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items
        ):
            raise ValueError(f"{name}: expected a number or 3 numbers (x, y, z), got {value!r}")
        result = tuple(float(v) for v in items)
    else:
        raise TypeError(f"{name}: expected a number or 3 numbers (x, y, z), got {value!r}")
    if not all(math.isfinite(v) for v in result):
        raise ValueError(f"{name}: expected finite numbers, got {value!r}")
    return (result[0], result[1], result[2])


def as_xyz_ints(value: int | Sequence[int], name: str, minimum: int = 0) -> tuple[int, int, int]:
    """``value`` as three ints >= ``minimum``: one int applies to x, y and z; a sequence gives one
    per dim. Floats with integral values (``2.0``) are accepted."""
    floats = as_xyz_floats(value, name)
    if not all(v == int(v) for v in floats):
        raise ValueError(f"{name}: expected integers, got {value!r}")
    ints = tuple(int(v) for v in floats)
    if not all(v >= minimum for v in ints):
        raise ValueError(f"{name}: expected integers >= {minimum}, got {value!r}")
    return (ints[0], ints[1], ints[2])


def check_cxyz(data: object, name: str = "data") -> torch.Tensor:
    """``data`` if it is a 4D (channel, x, y, z) tensor; a clear error otherwise."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (CXYZ), got {type(data).__name__}")
    if data.ndim != 4:
        raise ValueError(
            f"{name}: expected a 4D tensor (channel, x, y, z), got shape {tuple(data.shape)}"
        )
    return data


@builder.register("multiply")
def multiply(data: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """``data * value``."""
    return data * value


@builder.register("add")
def add(data: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """``data + value``."""
    return data + value


@builder.register("unsqueeze")
def unsqueeze(data: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``data`` with a new dimension of size 1 at ``dim`` (a view)."""
    return data.unsqueeze(dim)


@builder.register("squeeze")
def squeeze(data: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``data`` without the size-1 dimension ``dim`` (all size-1 dims if None); a view. Raises
    ValueError if ``dim`` is given and its size is not 1."""
    if dim is None:
        return data.squeeze()
    if data.shape[dim] != 1:
        raise ValueError(f"dim: dimension {dim} of shape {tuple(data.shape)} is not of size 1")
    return data.squeeze(dim)


@builder.register("crop")
def crop(
    data: torch.Tensor,
    crop: int | Sequence[int] | None = None,
    *,
    crop_pad: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """``data`` with ``crop`` voxels removed from both sides of its last dimensions (a view):
    a sequence applies to the last ``len(crop)`` dimensions (the original's meaning), one number
    to x, y and z of CXYZ data. ``crop_pad`` is an alias of ``crop``."""
    if (crop is None) == (crop_pad is None):
        raise TypeError("crop: give `crop` (voxels to remove from each side)")
    amount = crop if crop is not None else crop_pad
    assert amount is not None
    if isinstance(amount, int) and not isinstance(amount, bool):
        data = check_cxyz(data)
        pads: tuple[int, ...] = as_xyz_ints(amount, "crop")
    else:
        pads = tuple(cast(Sequence[int], amount))
        if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in pads):
            raise ValueError(f"crop: expected non-negative integers, got {amount!r}")
        if len(pads) > data.ndim:
            raise ValueError(f"crop: {len(pads)} values for a tensor of shape {tuple(data.shape)}")
    shape = tuple(data.shape[data.ndim - len(pads) :])
    if any(2 * p > s for p, s in zip(pads, shape, strict=True)):
        raise ValueError(f"crop: {pads} removes more than the shape {shape}")
    keep = [slice(None)] * (data.ndim - len(pads))
    return data[tuple(keep + [slice(p, s - p) for p, s in zip(pads, shape, strict=True)])]
