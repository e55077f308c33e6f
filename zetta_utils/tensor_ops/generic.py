"""Tensor operations the original registers for specs, with its names and arguments.

Each takes a NumPy array or a torch tensor and returns the same kind. Those marked
"dict-aware" also take a mapping of name -> tensor and apply themselves to each value (or to
the names in ``targets`` only), as the original's do for layer-set data.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, Literal

import einops
import numpy as np
import numpy.typing as npt
import torch

from zetta_utils import builder

from .convert import to_np, to_torch

__all__ = [
    "abs",
    "clone",
    "compare",
    "crop_center",
    "divide",
    "first_hit_projection",
    "int_divide",
    "nanmedian_filter",
    "pad_center_to",
    "power",
    "rearrange",
    "reduce",
    "repeat",
    "split_reduce",
    "squeeze_to",
    "supports_dict",
    "tensor_op_chain",
    "to_float32",
    "to_uint8",
    "unsqueeze_to",
]

Tensor = torch.Tensor | npt.NDArray[Any]


def supports_dict(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``fn(data, ...)`` also accept a mapping of tensors: it is applied to every value, or
    to the keys in ``targets`` only (others pass through unchanged)."""

    @functools.wraps(fn)
    def wrapper(data: Any, *args: Any, targets: Container[str] | None = None, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            return {
                k: fn(v, *args, **kwargs) if targets is None or k in targets else v
                for k, v in data.items()
            }
        if targets is not None:
            raise TypeError("`targets`: only applies when `data` is a mapping of tensors")
        return fn(data, *args, **kwargs)

    # ``targets`` shows in the signature, so specs may give it too
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    targets = inspect.Parameter("targets", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    full = sig.replace(parameters=[*params[:at], targets, *params[at:]])
    wrapper.__signature__ = full  # type: ignore[attr-defined]
    return wrapper


def like(result: Tensor, reference: Tensor) -> Any:
    """``result`` as the kind of ``reference`` (array or tensor)."""
    return to_torch(result) if isinstance(reference, torch.Tensor) else to_np(result)


@builder.register("rearrange")
@supports_dict
def rearrange(data: Tensor, pattern: str, **kwargs: Any) -> Any:
    """``einops.rearrange(data, pattern, **axes_lengths)``."""
    return einops.rearrange(data, pattern, **kwargs)


@builder.register("reduce")
@supports_dict
def reduce(data: Tensor, **kwargs: Any) -> Any:
    """``einops.reduce(data, pattern=..., reduction=..., **axes_lengths)``."""
    return einops.reduce(data, **kwargs)


@builder.register("repeat")
@supports_dict
def repeat(data: Tensor, **kwargs: Any) -> Any:
    """``einops.repeat(data, pattern=..., **axes_lengths)``."""
    return einops.repeat(data, **kwargs)


@builder.register("power")
@supports_dict
def power(data: Tensor, value: Any) -> Any:
    """``data ** value``."""
    return data**value


@builder.register("divide")
@supports_dict
def divide(data: Tensor, value: Any) -> Any:
    """``data / value``."""
    return data / value


@builder.register("int_divide")
@supports_dict
def int_divide(data: Tensor, value: Any) -> Any:
    """``data // value``."""
    return data // value


@builder.register("unsqueeze_to")
@supports_dict
def unsqueeze_to(data: Tensor, ndim: int | None) -> Any:
    """``data`` with size-1 dimensions added in front until it has ``ndim`` dimensions."""
    if ndim is not None:
        while data.ndim < ndim:
            data = data[None]
    return data


@builder.register("squeeze_to")
@supports_dict
def squeeze_to(data: Tensor, ndim: int | None) -> Any:
    """``data`` with its leading dimensions removed until it has ``ndim`` dimensions; each
    removed dimension must be of size 1."""
    if ndim is not None:
        while data.ndim > ndim:
            if data.shape[0] != 1:
                raise ValueError(
                    f"ndim: cannot squeeze shape {tuple(data.shape)} to {ndim} dims: shape[0] != 1"
                )
            data = data[0]
    return data


CompareMode = Literal["eq", "==", "neq", "!=", "gt", ">", "gte", ">=", "lt", "<", "lte", "<="]
_COMPARISONS: dict[str, Callable[[Any, float], Any]] = {
    "eq": lambda d, v: d == v,
    "neq": lambda d, v: d != v,
    "gt": lambda d, v: d > v,
    "gte": lambda d, v: d >= v,
    "lt": lambda d, v: d < v,
    "lte": lambda d, v: d <= v,
}
_COMPARE_ALIASES = {"==": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


@builder.register("compare")
@supports_dict
def compare(
    data: Tensor, mode: CompareMode, value: float, binarize: bool = True, fill: float | None = None
) -> Any:
    """Compare ``data`` with ``value``: the boolean result (``binarize``), or ``data`` with the
    values that pass replaced by ``fill`` (``binarize=False``; modifies ``data`` in place)."""
    key = _COMPARE_ALIASES.get(mode, mode)
    if key not in _COMPARISONS:
        known = ", ".join(CompareMode.__args__)  # type: ignore[attr-defined]
        raise ValueError(f"mode: expected one of {known}, got {mode!r}")
    mask = _COMPARISONS[key](data, value)
    if binarize:
        if fill is not None:
            raise ValueError("`fill` must be None when `binarize` is True")
        return mask
    if fill is None:
        raise ValueError("`fill` must be a number when `binarize` is False")
    data[mask] = fill
    return data


def _centered_slices(in_shape: Sequence[int], out_shape: Sequence[int], name: str) -> list[slice]:
    slices = []
    for insz, outsz in zip(in_shape, out_shape, strict=True):
        if outsz > insz:
            raise ValueError(
                f"{name}: {tuple(out_shape)} is larger than the data's {tuple(in_shape)}"
            )
        lcrop = (insz - outsz) // 2
        slices.append(slice(lcrop, lcrop + outsz))
    return slices


@builder.register("crop_center")
@supports_dict
def crop_center(data: Tensor, size: Sequence[int]) -> Any:
    """The centre of ``data`` of ``size`` along its last ``len(size)`` dimensions (the extra
    voxel of an odd difference is cut at the end)."""
    ndim = len(size)
    keep = [slice(None)] * (data.ndim - ndim)
    return data[tuple(keep + _centered_slices(data.shape[-ndim:], size, "size"))]


@builder.register("clone")
def clone(data: Tensor) -> Any:
    """A copy of ``data``."""
    return data.clone() if isinstance(data, torch.Tensor) else data.copy()


@builder.register("tensor_op_chain")
@supports_dict
def tensor_op_chain(data: Tensor, steps: Sequence[Callable[[Any], Any]]) -> Any:
    """``data`` passed through each of ``steps`` in turn."""
    for step in steps:
        data = step(data)
    return data


@builder.register("abs")
@supports_dict
def abs(data: Tensor) -> Any:
    """Element-wise absolute value."""
    return data.abs() if isinstance(data, torch.Tensor) else np.abs(data)


@builder.register("pad_center_to")
@supports_dict
def pad_center_to(
    data: Tensor,
    shape: Sequence[int],
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant",
    value: float | None = None,
) -> Any:
    """``data`` padded evenly on both sides of its last ``len(shape)`` dimensions to ``shape``
    (the extra voxel of an odd difference goes at the end), as ``torch.nn.functional.pad``."""
    ndim = len(shape)
    pads: list[int] = []
    for insz, outsz in zip(data.shape[-ndim:], shape, strict=True):
        if outsz < insz:
            raise ValueError(
                f"shape: {tuple(shape)} is smaller than the data's {tuple(data.shape[-ndim:])}"
            )
        lpad = (outsz - insz) // 2
        pads.extend([lpad, outsz - insz - lpad])
    torch_pads: list[int] = []
    for i in reversed(range(ndim)):  # torch lists the last dimension first
        torch_pads.extend(pads[2 * i : 2 * i + 2])
    result = torch.nn.functional.pad(to_torch(data), tuple(torch_pads), mode=mode, value=value)
    return like(result, data)


@builder.register("split_reduce")
def split_reduce(
    data: Tensor, paths: list[Callable[[Any], Any]], reduce_mode: Literal["maximum"] = "maximum"
) -> Any:
    """The element-wise maximum of ``path(data)`` over ``paths``."""
    if reduce_mode != "maximum":
        raise ValueError(f"reduce_mode: only 'maximum' is supported, got {reduce_mode!r}")
    results = [to_torch(path(data)) for path in paths]
    out = results[0]
    for r in results[1:]:
        out = torch.maximum(out, r)
    return like(out, data)


@builder.register("to_float32")
@supports_dict
def to_float32(data: Tensor) -> Any:
    """``data`` as float32."""
    return data.float() if isinstance(data, torch.Tensor) else data.astype(np.float32)


@builder.register("to_uint8")
@supports_dict
def to_uint8(data: Tensor) -> Any:
    """``data`` as uint8 (a plain cast: values wrap)."""
    return data.byte() if isinstance(data, torch.Tensor) else data.astype(np.uint8)


@builder.register("first_hit_projection")
@supports_dict
def first_hit_projection(
    data: Tensor,
    bg_color: float | Sequence[float] = 0.0,
    axis: int = 3,
    direction: Literal["first", "last"] = "first",
    rtol: float = 1.0e-5,
    atol: float = 1.0e-8,
) -> Any:
    """Project CXYZ ``data`` along ``axis`` (size 1 there after) onto the first (or last) voxel
    whose channels are not all ``bg_color`` (per channel or one value); ``bg_color`` where none."""
    arr = to_np(data)
    if direction == "last":
        arr = np.flip(arr, axis=axis)
    bg = np.array(bg_color, dtype=arr.dtype)
    if bg.ndim == 0:
        bg = np.full(arr.shape[0], bg)
    bg = bg.reshape(-1, 1, 1, 1)
    is_bg = np.isclose(arr, bg, rtol=rtol, atol=atol, equal_nan=True)
    valid = np.any(~is_bg, axis=0, keepdims=True)
    first = np.argmax(valid, axis=axis, keepdims=True)
    has_valid = np.any(valid, axis=axis, keepdims=True)
    projection = np.where(has_valid, np.take_along_axis(arr, first, axis=axis), bg)
    return like(projection, data)


@builder.register("nanmedian_filter")
@supports_dict
def nanmedian_filter(
    data: Tensor,
    axis: int = 3,
    sigma: float | None = None,
    threshold: float | None = None,
    fill_value: float = np.nan,
) -> Any:
    """Replace voxels deviating from the NaN-aware median along ``axis`` by more than ``sigma``
    robust standard deviations (MAD scaled to a normal's) or more than ``threshold`` with
    ``fill_value`` (in every channel, when any channel deviates)."""
    from scipy.stats import median_abs_deviation

    if sigma is None and threshold is None:
        raise ValueError("give at least one of `sigma` and `threshold`")
    arr = to_np(data)
    median = np.nanmedian(arr, axis=axis, keepdims=True)
    outlier = np.zeros_like(arr, dtype=bool)
    if sigma is not None:
        mad = np.expand_dims(
            median_abs_deviation(arr, axis=axis, scale="normal", nan_policy="omit"), axis
        )
        outlier |= (arr < median - sigma * mad) | (arr > median + sigma * mad)
    if threshold is not None:
        outlier |= (arr < median - threshold) | (arr > median + threshold)
    any_channel = np.any(outlier, axis=0, keepdims=True).repeat(arr.shape[0], axis=0)
    fills = np.atleast_1d(fill_value).astype(arr.dtype)
    if fills.size == 1:
        fills = np.repeat(fills, arr.shape[0])
    return like(np.where(any_channel, fills[:, None, None, None], arr), data)
