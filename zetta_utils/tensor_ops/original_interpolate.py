"""``{"@type": "interpolate"}`` with the original's arguments.

Specs written for the original call ``interpolate`` with ``size`` or ``scale_factor``, a
``mode`` that defaults to ``img`` and may also be one of torch's modes, and
``unsqueeze_input_to``: the data is given leading size-1 dimensions until it has that many
(batch, channel, then the spatial dims) and the result is squeezed back. This adapter turns such
a call into :func:`~.interpolation.interpolate` per (channel, x, y, z) volume, or into
``torch.nn.functional.interpolate`` for torch's modes; NumPy arrays come back as arrays.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal, cast, get_args

import numpy as np
import torch

from zetta_utils import builder

from . import interpolation
from .convert import to_np, to_torch
from .generic import Tensor

__all__ = ["TORCH_INTERPOLATION_MODES", "interpolate_from_spec"]

TorchInterpolationMode = Literal[
    "nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"
]
TORCH_INTERPOLATION_MODES: tuple[str, ...] = get_args(TorchInterpolationMode)

# Nearest-neighbour resampling only moves values: integer tensors go through as floats of the
# same width (bit patterns), as torch's interpolate refuses integer dtypes.
_NEAREST_VIEWS = {
    torch.bool: torch.uint8,
    torch.int8: torch.uint8,
    torch.int16: torch.float16,
    torch.int32: torch.float32,
    torch.int64: torch.float64,
}


def _factors(x: torch.Tensor, size: Sequence[int] | None, scale_factor: Any) -> tuple[float, ...]:
    spatial = x.ndim - 2
    if size is not None:
        if len(size) != spatial:
            raise ValueError(
                f"size: {len(size)} values for {spatial} spatial dims (data shape {tuple(x.shape)})"
            )
        return tuple(s / i for s, i in zip(size, x.shape[2:], strict=True))
    if isinstance(scale_factor, numbers.Real) and not isinstance(scale_factor, bool):
        return (float(scale_factor),) * spatial
    factors = tuple(float(f) for f in scale_factor)
    if len(factors) > spatial:
        raise ValueError(f"scale_factor: {len(factors)} values for {spatial} spatial dims")
    # as the original: missing leading dims keep their size
    return (1.0,) * (spatial - len(factors)) + factors


def _check_shape(x: torch.Tensor, factors: Sequence[float], allow_slice_rounding: bool) -> None:
    for i, (n, f) in enumerate(zip(x.shape[2:], factors, strict=True)):
        out = n * f
        if not allow_slice_rounding and round(out) != out:
            raise ValueError(
                f"scale_factor: {tuple(factors)} turns shape {tuple(x.shape)} into a non-integer "
                f"size along spatial dim {i} ({n} -> {out}) while allow_slice_rounding is False"
            )


def _torch_mode(
    x: torch.Tensor, size: Sequence[int] | None, factors: Sequence[float], mode: str
) -> torch.Tensor:
    out_size = (
        list(size)
        if size is not None
        else [round(n * f) for n, f in zip(x.shape[2:], factors, strict=True)]
    )
    if mode.startswith("nearest"):
        view = x.view(_NEAREST_VIEWS[x.dtype]) if x.dtype in _NEAREST_VIEWS else x
        return torch.nn.functional.interpolate(view, size=out_size, mode=mode).view(x.dtype)
    result = torch.nn.functional.interpolate(x.float(), size=out_size, mode=mode)
    return result.to(x.dtype)


def interpolate_from_spec(
    data: Tensor,
    size: Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: interpolation.InterpolationMode | TorchInterpolationMode = "img",
    mask_value_thr: float = 0,
    allow_slice_rounding: bool = False,
    unsqueeze_input_to: int | None = 5,
) -> Any:
    """Resample ``data`` to ``size`` or by ``scale_factor`` (one number, or the last spatial
    dims' factors) in ``mode`` (``img``, ``field``, ``mask``, ``segmentation`` as
    :func:`~.interpolation.interpolate` does them, or a torch mode). ``unsqueeze_input_to``:
    leading size-1 dims are added until the data has that many, read as (batch, channel,
    spatial...), and removed from the result."""
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of `size` and `scale_factor`")
    original_ndim = data.ndim
    x = to_torch(data)
    if unsqueeze_input_to is not None:
        while x.ndim < unsqueeze_input_to:
            x = x[None]
    if not 3 <= x.ndim <= 5:
        raise ValueError(
            f"data: expected (batch, channel, 1 to 3 spatial dims), got shape {tuple(x.shape)}"
        )
    factors = _factors(x, size, scale_factor)
    if mode in TORCH_INTERPOLATION_MODES:
        if size is None:
            _check_shape(x, factors, allow_slice_rounding)
        result = _torch_mode(x, size, factors, mode)
    else:
        if x.ndim != 5:
            raise ValueError(
                f"mode {mode!r} works on (batch, channel, x, y, z) data: "
                f"got shape {tuple(x.shape)} "
                f"(unsqueeze_input_to={unsqueeze_input_to})"
            )
        result = torch.stack(
            [
                interpolation.interpolate(
                    volume,
                    factors,
                    cast(interpolation.InterpolationMode, mode),
                    mask_value_thr=mask_value_thr,
                    allow_slice_rounding=allow_slice_rounding,
                )
                for volume in x
            ]
        )
    while result.ndim > original_ndim:
        if result.shape[0] != 1:
            raise ValueError(
                f"cannot squeeze the result of shape {tuple(result.shape)} "
                f"back to {original_ndim} dims"
            )
        result = result[0]
    if isinstance(data, np.ndarray):
        return to_np(result).astype(data.dtype, copy=False)  # undo to_torch's widening of uints
    return result


# Specs reach ``interpolation.interpolate`` through this adapter; the Python function keeps its
# own signature.
builder.unregister("interpolate")
builder.register("interpolate")(interpolate_from_spec)
