"""Power-of-two downsampling through tinybrain, the library that made most existing pyramids.

The original zetta_utils (and igneous, which writes through the same library) downsamples
``img`` and ``segmentation`` data with tinybrain whenever the scale factor is one of
``(1/2**i, 1/2**i, 1)`` or ``(1/2**i, 1/2**i, 1/2**i)`` for ``i`` in 1..4. Sending exactly those
cases to tinybrain, with the same arguments, makes our reads of a coarser resolution equal to the
pyramids such tools wrote, byte for byte:

``img``
    ``tinybrain.downsample_with_averaging(xyzc, factor)``: 2x2x1 and 2x2x2 run its compiled
    kernel (integer sums in a wider integer type, then truncating division, so unsigned means
    are floored and signed ones truncated toward zero; float32 sums in float64, rounded once);
    larger factors run its NumPy path (float32 sums, truncating cast for integers).
``segmentation``
    ``tinybrain.downsample_segmentation(xyzc, factor)``: 2x2x1 and 2x2x2 pick a label of each
    block by tinybrain's COUNTLESS rule (a label that repeats within the block wins; ties go
    to the first such pair in block order, else the last voxel), larger factors apply it
    recursively. Called once per channel with Fortran-ordered data: tinybrain's 2x2x2 kernel
    ignores strides and reads past the array when given more than one channel.

Odd sizes (only with ``allow_slice_rounding``) give tinybrain's ``ceil(size / factor)`` voxels,
the last one computed from the voxels that exist. For ``img`` at 2x2x1 / 2x2x2 that is
tinybrain's NumPy averaging (float32 sums), not its compiled kernel, whose output for odd sizes
is wrong and not repeatable (it reads outside the array); the original calls the kernel there.

Tensors cross to NumPy and back as views: a CXYZ tensor whose x is fastest (the layout backends
read) is the Fortran-ordered XYZC array tinybrain wants, so no copy is made on the way in, and
tinybrain's Fortran-ordered result comes back as a CXYZ view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import tinybrain
import torch

# The original's list: 2D factors of 2 in x and y (z kept) or in all three dims, up to 16.
TINYBRAIN_SCALE_FACTORS: frozenset[tuple[float, float, float]] = frozenset(
    [(0.5**i, 0.5**i, 1.0) for i in range(1, 5)] + [(0.5**i, 0.5**i, 0.5**i) for i in range(1, 5)]
)
# Factors tinybrain runs through its compiled single-level kernels.
_CUBE = (0.5, 0.5, 0.5)
_KERNEL_FACTORS = frozenset([(0.5, 0.5, 1.0), _CUBE])

# Dtypes tinybrain handles (less int32 and int64 for 2x2x2 averaging); for others (bool,
# float16, bfloat16, complex) the original fails inside tinybrain, and we keep our own code.
_TINYBRAIN_DTYPES = frozenset(
    [
        torch.uint8,
        torch.uint16,
        torch.uint32,
        torch.uint64,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float32,
        torch.float64,
    ]
)


def covers(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    scale_factor: tuple[float, float, float],
    mode: str,
) -> bool:
    """Whether :func:`downsample` handles CXYZ data of this shape and dtype (the cases the
    original sends to tinybrain, less those where tinybrain itself fails)."""
    if mode not in ("img", "segmentation") or dtype not in _TINYBRAIN_DTYPES:
        return False
    if scale_factor not in TINYBRAIN_SCALE_FACTORS:
        return False
    if mode == "img" and scale_factor == _CUBE and dtype in (torch.int32, torch.int64):
        return False  # tinybrain's 2x2x2 averaging kernel lacks them
    # The compiled kernels refuse planes smaller than the block.
    return scale_factor not in _KERNEL_FACTORS or min(shape[1], shape[2]) >= 2


def downsample(
    data: torch.Tensor, scale_factor: tuple[float, float, float], mode: str
) -> torch.Tensor:
    """``data`` (CXYZ) downsampled by tinybrain; see the module docstring. ValueError where
    :func:`covers` does not hold. The result is on ``data``'s device, with its dtype."""
    if not covers(tuple(data.shape), data.dtype, scale_factor, mode):
        raise ValueError(
            f"tinybrain does not downsample {mode} data of dtype {data.dtype}, shape "
            f"{tuple(data.shape)} by scale_factor {scale_factor}"
        )
    return downsample_unchecked(data, scale_factor, mode)


def downsample_unchecked(
    data: torch.Tensor, scale_factor: tuple[float, float, float], mode: str
) -> torch.Tensor:
    """:func:`downsample` for callers that checked :func:`covers` already (a read's hot path)."""
    # The original's factor argument, as it computes it: 1 / 0.5 == 2.0 and so on.
    factor = [1.0 / scale_factor[0], 1.0 / scale_factor[1], 1.0 / scale_factor[2]]
    xyzc = data.detach().cpu().numpy().transpose(1, 2, 3, 0)
    if mode == "img":
        result = _average(xyzc, scale_factor, factor)
    else:
        result = _segmentation(xyzc, scale_factor, factor)
    if result.ndim == 3:  # tinybrain drops a trailing channel dim in some paths
        result = result[..., np.newaxis]
    tensor = torch.from_numpy(result.transpose(3, 0, 1, 2))
    return tensor if data.device.type == "cpu" else tensor.to(data.device)


def _average(
    xyzc: npt.NDArray[Any], scale_factor: tuple[float, float, float], factor: list[float]
) -> npt.NDArray[Any]:
    if scale_factor in _KERNEL_FACTORS:
        x, y, z = xyzc.shape[:3]
        if x % 2 or y % 2 or (scale_factor == _CUBE and z % 2):
            # tinybrain's compiled kernels mishandle odd sizes (the last x column is left zero,
            # the last y row reads outside the array, so the result is not even repeatable):
            # use the NumPy routine tinybrain runs for every other factor, which averages the
            # voxels each edge block has.
            return tinybrain.downsample.downsample_with_averaging_numpy(xyzc, factor)
    return tinybrain.downsample_with_averaging(xyzc, factor)[0]


def _segmentation(
    xyzc: npt.NDArray[Any], scale_factor: tuple[float, float, float], factor: list[float]
) -> npt.NDArray[Any]:
    in_place = scale_factor not in _KERNEL_FACTORS
    channels = []
    for c in range(xyzc.shape[3]):
        channel = xyzc[..., c : c + 1]
        # tinybrain's 2x2x2 kernel reads its input as Fortran-ordered whatever its strides (the
        # original's layer reads arrive so); its NumPy COUNTLESS (larger factors) adds 1 to its
        # input in place and subtracts it afterwards: give that one a copy, never the caller's
        # (maybe shared) data.
        channel = np.array(channel, order="F") if in_place else np.asfortranarray(channel)
        channels.append(tinybrain.downsample_segmentation(channel, factor)[0])
    return channels[0] if len(channels) == 1 else np.concatenate(channels, axis=3)
