"""Resampling of CXYZ volumes between resolutions.

``scale_factor`` is per spatial dim (x, y, z): ``> 1`` upsamples, ``< 1`` downsamples, ``1``
leaves the dim untouched. It is the ratio of resolutions, ``input_resolution / output_resolution``
(4 nm data read at 8 nm has scale factor 0.5). Each dim is treated on its own, so one call may
downsample x and y while upsampling z; downsampling is applied first, then upsampling.

Modes:

``img``
    Downsampling averages each block (``in/out`` voxels per dim) when the ratio is an integer;
    otherwise it is torch's adaptive area average (the unweighted mean of the window
    ``[floor(i*in/out), ceil((i+1)*in/out))``). Upsampling is (bi/tri)linear with
    ``align_corners=False`` semantics, applied only over the upsampled dims. Integer data comes
    back in its own dtype, truncated toward zero (floored for unsigned data), as the original
    and tinybrain do: block means of integers up to 32 bits are computed exactly with integer
    sums; everything else goes through float32 (up to 16 bits) or float64.
``field``
    A displacement field in pixels: channel 0 is the x displacement, channel 1 the y displacement
    (an optional channel 2 is z). Resampled like ``img``, then channel ``i`` is multiplied by the
    scale factor of dim ``i``, because a displacement of n pixels at 4 nm is n/2 pixels at 8 nm.
    Needs floating-point data.
``mask``
    The input is first thresholded (``value > mask_value_thr``). Downsampling sets a voxel if any
    voxel of its block (adaptive window for non-integer ratios) is set; upsampling is nearest.
    The output has the input's dtype and holds only 0 and 1 (False/True for bool).
``segmentation``
    Labels. Upsampling is nearest; downsampling picks the most frequent label of each block, ties
    going to the smallest label. Needs integer ratios when downsampling. Never produces a label
    absent from the block and never goes through float, so int64 labels are exact.
``segmentation_strided``
    Like ``segmentation`` but downsampling picks the first (lowest x, y, z) voxel of each block:
    ``out[i] = in[floor(i * in_size / out_size)]`` (a view, no copy, for integer ratios).

Tinybrain: ``img`` and ``segmentation`` downsampling by ``(1/2**i, 1/2**i, 1)`` or
``(1/2**i, 1/2**i, 1/2**i)``, ``i`` in 1..4, goes to tinybrain exactly as the original sends it
(see :mod:`.tinybrain_downsample`), so these reads equal existing pyramids byte for byte. There
``segmentation`` follows tinybrain's COUNTLESS rule instead of the smallest-label tie break, and
odd sizes (with ``allow_slice_rounding``) give ``ceil(size / factor)`` voxels. Dtypes tinybrain
lacks (bool, float16, bfloat16) use the code here.

Nearest upsampling maps output voxel ``i`` to input voxel ``floor((i + 0.5) * in / out)``, i.e.
each input voxel is repeated ``k`` times for an integer factor ``k``.

Output sizes are ``in_size * scale_factor`` per dim and must be integers, else ValueError unless
``allow_slice_rounding=True`` (then rounded half up).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from zetta_utils import builder

from . import tinybrain_downsample
from .common import SPATIAL_DIMS, as_xyz_floats, as_xyz_ints, check_cxyz

InterpolationMode = Literal["img", "field", "mask", "segmentation", "segmentation_strided"]
INTERPOLATION_MODES: tuple[str, ...] = get_args(InterpolationMode)

# Relative tolerance when deciding that in_size * scale_factor is an integer (absorbs float error
# of factors such as 4 / 6 without accepting genuinely fractional sizes).
_INTEGRAL_RTOL = 1e-9

_UNSIGNED_TO_SIGNED: dict[torch.dtype, torch.dtype] = {
    torch.uint16: torch.int16,
    torch.uint32: torch.int32,
    torch.uint64: torch.int64,
}


def get_interpolated_shape(
    shape_xyz: Sequence[int],
    scale_factor: float | Sequence[float],
    allow_slice_rounding: bool = False,
) -> tuple[int, int, int]:
    """The spatial shape :func:`interpolate` gives for input spatial shape ``shape_xyz``.

    Raises ValueError naming the dims whose ``size * scale_factor`` is not an integer, unless
    ``allow_slice_rounding`` (then those sizes are rounded half up; a non-empty dim never rounds
    to 0). Downsampling that goes to tinybrain (see the module docstring) rounds those sizes up
    instead, as tinybrain does: 5 voxels at 1/4 give 2, not 1.
    """
    factors = as_xyz_floats(scale_factor, "scale_factor")
    shape = as_xyz_ints(shape_xyz, "shape_xyz")
    return _interpolated_shape(shape, factors, allow_slice_rounding)


@functools.lru_cache(maxsize=1024)
def _interpolated_shape(
    shape: tuple[int, int, int],
    factors: tuple[float, float, float],
    allow_slice_rounding: bool,
) -> tuple[int, int, int]:
    if any(f <= 0 for f in factors):
        raise ValueError(f"scale_factor: expected positive numbers, got {factors!r}")
    result: list[int] = []
    bad: list[str] = []
    for dim, size, factor in zip(SPATIAL_DIMS, shape, factors, strict=True):
        exact = int(size) * factor
        nearest = math.floor(exact + 0.5)
        if abs(exact - nearest) > _INTEGRAL_RTOL * max(1.0, abs(exact)):
            bad.append(f"{dim}: {size} * {factor:g} = {exact:g}")
            if allow_slice_rounding:
                nearest = max(nearest, 1)
        result.append(nearest)
    if bad and not allow_slice_rounding:
        raise ValueError(
            f"scale_factor {tuple(factors)} on spatial shape {shape} gives non-integral sizes "
            f"({'; '.join(bad)}); use a shape divisible by the ratio or allow_slice_rounding=True"
        )
    return (result[0], result[1], result[2])


@builder.register("interpolate")
def interpolate(
    data: torch.Tensor,
    scale_factor: float | Sequence[float],
    mode: InterpolationMode,
    mask_value_thr: float = 0,
    allow_slice_rounding: bool = False,
) -> torch.Tensor:
    """``data`` (CXYZ) resampled by ``scale_factor`` (one number, or x, y, z) in ``mode``; see
    the module docstring for each mode. ``mask_value_thr`` is used by ``mask`` mode only.

    When every dim keeps its size the input is returned as it is (``mask`` mode still
    thresholds). The result may be a non-contiguous tensor (e.g. a strided view of the input).
    """
    data = check_cxyz(data)
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode: expected one of {INTERPOLATION_MODES}, got {mode!r}")
    if type(mask_value_thr) not in (int, float) and (
        not isinstance(mask_value_thr, numbers.Real) or isinstance(mask_value_thr, bool)
    ):
        raise TypeError(f"mask_value_thr: expected a number, got {mask_value_thr!r}")
    _check_dtype(data, mode)
    if mode == "field" and data.shape[0] not in (2, 3):
        raise ValueError(
            "data: field mode expects 2 channels (x, y displacement) or 3 (x, y, z), "
            f"got shape {tuple(data.shape)}"
        )
    factors = _xyz_factors(scale_factor)
    in_shape = (data.shape[1], data.shape[2], data.shape[3])
    out_shape = _interpolated_shape(in_shape, factors, allow_slice_rounding)

    if data.numel() == 0:
        dtype = data.dtype
        return torch.empty((data.shape[0], *out_shape), dtype=dtype, device=data.device)
    if in_shape != out_shape and tinybrain_downsample.covers(
        tuple(data.shape), data.dtype, factors, mode
    ):
        return tinybrain_downsample.downsample_unchecked(data, factors, mode)
    if mode == "mask":
        return _interpolate_mask(data, in_shape, out_shape, float(mask_value_thr))
    if mode in ("segmentation", "segmentation_strided"):
        if in_shape == out_shape:
            return data
        down: Literal["mode", "strided"] = "mode" if mode == "segmentation" else "strided"
        work, restore = _as_orderable(data)
        return restore(_resample_nearest_like(work, in_shape, out_shape, down=down))
    if in_shape == out_shape and (mode == "img" or factors == (1.0, 1.0, 1.0)):
        return data
    return _interpolate_img(data, in_shape, out_shape, factors if mode == "field" else None)


def _xyz_factors(scale_factor: float | Sequence[float]) -> tuple[float, float, float]:
    # Reads call this once per chunk: take three plain floats (what the layer passes) as they
    # are, and validate anything else in full.
    if (
        type(scale_factor) is tuple
        and len(scale_factor) == 3
        and all(type(v) is float and math.isfinite(v) for v in scale_factor)
    ):
        return scale_factor
    return as_xyz_floats(scale_factor, "scale_factor")


def _interpolate_img(
    data: torch.Tensor,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    field_factors: tuple[float, float, float] | None,
) -> torch.Tensor:
    dtype = data.dtype
    blocks = _block_sizes(in_shape, out_shape)
    grows = any(o > i for i, o in zip(in_shape, out_shape, strict=True))
    if not dtype.is_floating_point:
        # torch has no arithmetic for its uint16/32/64 types
        if dtype == torch.uint64:
            data = data.to(torch.float64)
        elif dtype in _UNSIGNED_TO_SIGNED:
            data = data.to(torch.int64)
        if (
            blocks is not None
            and not grows
            and data.dtype != torch.float64
            and torch.iinfo(dtype).bits <= 32
        ):
            # Exact: integer block sums, then truncating division.
            return _block_mean_int(data, blocks).to(dtype)
    work = _downsample_area(data, in_shape, out_shape, _compute_dtype(data.dtype))
    work = _upsample_linear(work, out_shape)
    if field_factors is not None:
        channels = data.shape[0]
        scale = torch.tensor(field_factors[:channels], dtype=work.dtype, device=work.device)
        work = work * scale.view(-1, 1, 1, 1)
    if dtype.is_floating_point:
        return work.to(dtype)
    low, high = _float_bounds(dtype)
    return work.trunc_().clamp_(low, high).to(dtype)


def _float_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """The integer range of ``dtype`` as floats that convert back without overflow (2**63 - 1
    itself is not a float64: use the largest float64 below 2**63)."""
    info = torch.iinfo(dtype)
    high = float(info.max)
    if high > info.max:
        high = math.nextafter(high, 0.0)
    return float(info.min), high


def _interpolate_mask(
    data: torch.Tensor,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    thr: float,
) -> torch.Tensor:
    target = _shrunk(in_shape, out_shape)
    if target == in_shape:
        mask = _greater_than(data, thr)
    else:
        blocks = _block_sizes(in_shape, out_shape)
        if blocks is not None:
            # any(x > thr) == (max(x) > thr): reduce the raw values, threshold the smaller result.
            work, restore = _as_orderable(data)
            mask = _greater_than(restore(_block_max(work, blocks)), thr)
        else:
            mask = _greater_than(data, thr).to(torch.float32)
            mask = F.adaptive_max_pool3d(mask.unsqueeze(0), target).squeeze(0) > 0
    if out_shape != target:
        mask = _upsample_nearest(mask, out_shape)
    return mask if data.dtype == torch.bool else mask.to(data.dtype)


def _check_dtype(data: torch.Tensor, mode: str) -> None:
    dtype = data.dtype
    if dtype.is_complex:
        raise TypeError(f"data: complex dtype {dtype} cannot be interpolated")
    if mode == "field" and not dtype.is_floating_point:
        raise TypeError(f"data: field mode needs a floating-point tensor, got {dtype}")
    if mode == "img" and dtype == torch.bool:
        raise TypeError("data: img mode cannot average a bool tensor; use mode='mask'")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype.is_floating_point:  # float16, bfloat16: pooling kernels lack them on CPU
        return torch.float32
    return torch.float64 if torch.iinfo(dtype).bits > 16 else torch.float32


def _greater_than(data: torch.Tensor, thr: float) -> torch.Tensor:
    if data.dtype == torch.bool:
        if thr < 0:
            return torch.ones_like(data)
        return data if thr < 1 else torch.zeros_like(data)
    signed = _UNSIGNED_TO_SIGNED.get(data.dtype)
    if signed is None:
        return data > thr
    # Torch lacks comparisons for wide unsigned types: compare the order-preserving signed image
    # (sign bit flipped) against the threshold moved the same way.
    bits = torch.iinfo(signed).bits
    if thr < 0:
        return torch.ones(data.shape, dtype=torch.bool, device=data.device)
    int_thr = math.floor(thr)
    if int_thr >= 2**bits - 1:
        return torch.zeros(data.shape, dtype=torch.bool, device=data.device)
    flipped = data.view(signed) ^ torch.iinfo(signed).min
    return flipped > int_thr - 2 ** (bits - 1)


def _as_orderable(data: torch.Tensor) -> tuple[torch.Tensor, _Restore]:
    """A view of ``data`` whose dtype torch can sort, index and compare, with the same equality
    and order, and the function that maps results back to ``data``'s dtype."""
    if data.dtype == torch.bool:
        return data.view(torch.uint8), _Restore(torch.bool, None)
    signed = _UNSIGNED_TO_SIGNED.get(data.dtype)
    if signed is None:
        return data, _Restore(None, None)
    flip = torch.iinfo(signed).min
    return data.view(signed) ^ flip, _Restore(data.dtype, flip)


class _Restore:
    def __init__(self, dtype: torch.dtype | None, flip: int | None):
        self.dtype = dtype
        self.flip = flip

    def __call__(self, result: torch.Tensor) -> torch.Tensor:
        if self.flip is not None:
            result = result ^ self.flip
        if self.dtype is not None:
            result = result.view(self.dtype)
        return result


def _block_sizes(in_shape: Sequence[int], out_shape: Sequence[int]) -> tuple[int, int, int] | None:
    """Per-dim integer block sizes ``in/out`` for dims that shrink (1 elsewhere), or None if some
    shrinking dim has a non-integer ratio."""
    blocks = []
    for size_in, size_out in zip(in_shape, out_shape, strict=True):
        if size_out < size_in:
            if size_out == 0 or size_in % size_out != 0:
                return None
            blocks.append(size_in // size_out)
        else:
            blocks.append(1)
    return (blocks[0], blocks[1], blocks[2])


def _shrunk(in_shape: Sequence[int], out_shape: Sequence[int]) -> tuple[int, int, int]:
    return (
        min(in_shape[0], out_shape[0]),
        min(in_shape[1], out_shape[1]),
        min(in_shape[2], out_shape[2]),
    )


def _downsample_area(
    data: torch.Tensor,
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    compute_dtype: torch.dtype,
) -> torch.Tensor:
    """Area average over the shrinking dims, in ``compute_dtype``."""
    target = _shrunk(in_shape, out_shape)
    if target == tuple(in_shape):
        return data.to(compute_dtype)
    blocks = _block_sizes(in_shape, out_shape)
    if blocks is None:
        return F.adaptive_avg_pool3d(data.to(compute_dtype), target)
    if blocks[2] > 1 and data.is_contiguous():
        # avg_pool3d wins only when it pools the innermost dim of contiguous data (measured 3x);
        # otherwise summing strided block members is 3-10x faster. (C, X, Y, Z) reads as an
        # unbatched (C, D, H, W) input.
        return F.avg_pool3d(data.to(compute_dtype), kernel_size=blocks, stride=blocks)
    total = _block_sum(data, blocks, compute_dtype)
    return total.div_(blocks[0] * blocks[1] * blocks[2])


def _block_members(data: torch.Tensor, blocks: Sequence[int]) -> list[torch.Tensor]:
    """One strided view (C, X/bx, Y/by, Z/bz) per position inside a block: the loops over these
    run over block positions, never over voxels."""
    split = _block_split(data, blocks)
    bx, by, bz = blocks
    return [split[:, :, a, :, b, :, c] for a in range(bx) for b in range(by) for c in range(bz)]


def _block_sum(data: torch.Tensor, blocks: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    members = _block_members(data, blocks)
    total = members[0].to(dtype, copy=True)
    for member in members[1:]:
        total.add_(member)
    return total


def _block_mean_int(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    """Block means of integer data of at most 32 bits, truncated toward zero, exactly."""
    n = blocks[0] * blocks[1] * blocks[2]
    accumulator = torch.int32 if torch.iinfo(data.dtype).bits <= 16 and n < 2**15 else torch.int64
    total = _block_sum(data, blocks, accumulator)
    return torch.div(total, n, rounding_mode="trunc")


def _block_max(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    members = _block_members(data, blocks)
    # fmax ignores NaN, so a NaN voxel neither sets nor hides a block.
    combine = torch.fmax if data.dtype.is_floating_point else torch.maximum
    result = members[0]
    for member in members[1:]:
        result = combine(result, member)
    return result


def _upsample_linear(data: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
    shape = tuple(data.shape[1:])
    up_dims = [d for d in range(3) if out_shape[d] > shape[d]]
    if not up_dims:
        return data
    # Interpolate only over the growing dims; the others join the batch so that a dim of
    # unchanged size costs nothing (and a NaN in it cannot leak into its neighbours).
    keep_dims = [d for d in range(3) if d not in up_dims]
    order = [0, *(d + 1 for d in keep_dims), *(d + 1 for d in up_dims)]
    moved = data.permute(order)
    lead = moved.shape[: 1 + len(keep_dims)]
    batch = moved.reshape(1, -1, *moved.shape[1 + len(keep_dims) :])
    linear_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(up_dims)]
    sizes = [int(out_shape[d]) for d in up_dims]
    result = F.interpolate(batch, size=sizes, mode=linear_mode, align_corners=False)
    result = result.reshape(*lead, *sizes)
    inverse = [0] * 4
    for position, axis in enumerate(order):
        inverse[axis] = position
    return result.permute(inverse)


def _resample_nearest_like(
    data: torch.Tensor,
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    down: Literal["mode", "strided"],
) -> torch.Tensor:
    target = _shrunk(in_shape, out_shape)
    if target != tuple(in_shape):
        blocks = _block_sizes(in_shape, out_shape)
        if down == "strided":
            if blocks is not None:
                data = data[:, :: blocks[0], :: blocks[1], :: blocks[2]]
            else:
                data = _gather(data, target, centered=False)
        else:
            if blocks is None:
                raise ValueError(
                    f"segmentation mode can only downsample by integer ratios; spatial shape "
                    f"{tuple(in_shape)} -> {tuple(out_shape)} is not one "
                    "(use mode='segmentation_strided' for a nearest-voxel pick)"
                )
            data = _block_mode(data, blocks)
    if tuple(out_shape) != target:
        data = _upsample_nearest(data, out_shape)
    return data


def _block_split(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    """(C, X/bx, bx, Y/by, by, Z/bz, bz): always a view, as splitting a dim needs no copy."""
    _, x, y, z = data.shape
    bx, by, bz = blocks
    return data.unflatten(3, (z // bz, bz)).unflatten(2, (y // by, by)).unflatten(1, (x // bx, bx))


def _block_view(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    """(C, X/bx, Y/by, Z/bz, bx*by*bz): the voxels of each block along the last dim (a copy unless
    blocks are trivial)."""
    c, x, y, z = data.shape
    bx, by, bz = blocks
    split = _block_split(data, blocks)
    return split.permute(0, 1, 3, 5, 2, 4, 6).reshape(c, x // bx, y // by, z // bz, bx * by * bz)


# Up to this many voxels per block, counting equal pairs beats sorting each block (measured 2-6x
# for 2x2x1 .. 4x4x1 blocks of int64 labels); sorting wins from 4x4x4 up.
_PAIRWISE_MODE_MAX_BLOCK = 16


def _block_mode(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    """The most frequent value of each block, the smallest one on ties."""
    n = blocks[0] * blocks[1] * blocks[2]
    if n == 1:
        return data
    if n <= _PAIRWISE_MODE_MAX_BLOCK:
        return _block_mode_pairwise(data, blocks)
    return _block_mode_sorted(data, blocks)


def _block_mode_pairwise(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    # One strided view per position inside the block; the loops run over block positions (at
    # most 16), never over voxels.
    members = _block_members(data, blocks)
    counts = [torch.zeros(members[0].shape, dtype=torch.uint8, device=data.device) for _ in members]
    for i in range(len(members)):
        for j in range(i + 1, len(members)):
            same = members[i] == members[j]
            counts[i] += same
            counts[j] += same
    best, best_count = members[0], counts[0]
    for member, count in zip(members[1:], counts[1:], strict=True):
        better = (count > best_count) | ((count == best_count) & (member < best))
        best = torch.where(better, member, best)
        best_count = torch.where(better, count, best_count)
    return best


def _block_mode_sorted(data: torch.Tensor, blocks: Sequence[int]) -> torch.Tensor:
    values = _block_view(data, blocks)
    n = values.shape[-1]
    ordered = torch.sort(values, dim=-1).values
    # In sorted order equal labels form runs. run_len[j] is the length of the run ending at j so
    # far; its first maximum ends the longest run whose label is smallest.
    positions = torch.arange(n, device=data.device)
    starts = torch.ones(ordered.shape, dtype=torch.bool, device=data.device)
    torch.ne(ordered[..., 1:], ordered[..., :-1], out=starts[..., 1:])
    run_start = torch.where(starts, positions, 0).cummax(dim=-1).values
    run_len = positions - run_start
    best = run_len.argmax(dim=-1, keepdim=True)
    return ordered.gather(-1, best).squeeze(-1)


def _source_indices(
    size_in: int, size_out: int, centered: bool, device: torch.device
) -> torch.Tensor:
    """Input index per output index: ``floor((i + 0.5) * in / out)`` if centered, else
    ``floor(i * in / out)``; exact integer arithmetic."""
    i = torch.arange(size_out, device=device, dtype=torch.int64)
    if centered:
        return torch.div((2 * i + 1) * size_in, 2 * size_out, rounding_mode="floor")
    return torch.div(i * size_in, size_out, rounding_mode="floor")


def _gather(data: torch.Tensor, out_shape: Sequence[int], centered: bool) -> torch.Tensor:
    result = data
    for d in range(3):
        size_in = result.shape[d + 1]
        if out_shape[d] != size_in:
            index = _source_indices(size_in, int(out_shape[d]), centered, data.device)
            result = result.index_select(d + 1, index)
    return result


def _upsample_nearest(data: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
    c, x, y, z = data.shape
    factors = [o // s if s else 1 for o, s in zip(out_shape, (x, y, z), strict=True)]
    if all(f * s == o for f, s, o in zip(factors, (x, y, z), out_shape, strict=True)):
        kx, ky, kz = factors
        expanded = data[:, :, None, :, None, :, None].expand(c, x, kx, y, ky, z, kz)
        return expanded.reshape(c, x * kx, y * ky, z * kz)
    return _gather(data, out_shape, centered=True)
