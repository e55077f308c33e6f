"""Mask and label operations the original registers for specs, with its names and arguments.

Masks are CXYZ (channel, x, y, z) arrays or tensors; the morphology works in the XY plane of
each section, as the original's does. Results have the kind (array or tensor) and dtype of the
input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from zetta_utils import builder

from .convert import to_np, to_torch
from .generic import Tensor, like

__all__ = [
    "binary_closing",
    "coarsen",
    "coarsen_mask",
    "compute_pixel_error",
    "erode",
    "erode_combine",
    "filter_cc",
    "get_disp_pair",
    "kornia_closing",
    "kornia_dilation",
    "kornia_erosion",
    "kornia_opening",
    "seg_to_aff",
    "seg_to_rgb",
]

KernelName = Literal["square", "diamond", "disk"]


def _sections(data: Tensor, name: str = "data") -> npt.NDArray[Any]:
    arr = to_np(data)
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected a CXYZ array (4 dims), got shape {tuple(arr.shape)}")
    return arr


@builder.register("filter_cc")
def filter_cc(
    data: Tensor, mode: Literal["keep_large", "keep_small"] = "keep_small", thr: int = 100
) -> Any:
    """``data`` with connected components of its non-zero voxels removed, per section (8-connected
    in XY): ``keep_small`` keeps components of at most ``thr`` voxels, ``keep_large`` those of
    more than ``thr``."""
    from scipy import ndimage

    if mode not in ("keep_large", "keep_small"):
        raise ValueError(f"mode: expected 'keep_large' or 'keep_small', got {mode!r}")
    arr = _sections(data)
    result = np.zeros_like(arr)
    for c in range(arr.shape[0]):
        for z in range(arr.shape[3]):
            plane = arr[c, :, :, z]
            labels, _ = ndimage.label(plane != 0, structure=np.ones((3, 3), dtype=bool))
            counts = np.bincount(labels.ravel())
            keep = counts > thr if mode == "keep_large" else counts <= thr
            keep[0] = False
            result[c, :, :, z] = np.where(keep[labels], plane, 0)
    return like(result, data)


@builder.register("coarsen_mask")
def coarsen_mask(data: Tensor, width: int = 1, thr: int = 1) -> Any:
    """Grow a mask in XY: ``width`` times, a voxel is set when at least ``thr`` voxels of its
    3x3 neighbourhood are (``coarsen``: the same with ``thr`` 3 by default)."""
    arr = _sections(data)
    planes = torch.from_numpy(np.moveaxis(arr != 0, 3, 0).astype(np.float32))  # Z C X Y
    kernel = torch.ones((planes.shape[1], 1, 3, 3))
    for _ in range(width):
        counts = torch.nn.functional.conv2d(planes, kernel, padding=1, groups=planes.shape[1])
        planes = (counts >= thr).float()
    result = np.moveaxis(planes.numpy() > 0, 0, 3).astype(arr.dtype)
    return like(result, data)


@builder.register("coarsen")
def coarsen(data: Tensor, width: int = 1, thr: int = 3) -> Any:
    """``coarsen_mask`` under the name (and default ``thr``) of the original's earlier releases."""
    return coarsen_mask(data, width=width, thr=thr)


@builder.register("erode")
def erode(data: Tensor, width: int = 1, thr: int = 3) -> Any:
    """Shrink a mask in XY: the complement of coarsening its complement (``coarsen``'s
    arguments); the result is boolean."""
    return like(np.asarray(to_np(coarsen(to_np(data) == 0, width=width, thr=thr))) == 0, data)


@builder.register("binary_closing")
def binary_closing(data: Tensor, iterations: int = 1, width: int | None = None) -> Any:
    """Binary closing of a mask in XY (cross-shaped element, ``iterations`` times; ``width`` is
    the name earlier releases gave it); voxels within ``iterations`` of the XY border keep their
    value instead of being eroded."""
    from scipy import ndimage

    if width is not None:
        iterations = width
    arr = _sections(data)
    result = np.zeros(arr.shape, dtype=bool)
    n = iterations
    for c in range(arr.shape[0]):
        for z in range(arr.shape[3]):
            plane = arr[c, :, :, z].astype(bool)
            closed = ndimage.binary_closing(plane, iterations=n)
            for edge in (np.s_[:n, :], np.s_[-n:, :], np.s_[:, :n], np.s_[:, -n:]):
                closed[edge] |= plane[edge]
            result[c, :, :, z] = closed
    return like(result.astype(arr.dtype), data)


def _kernel(kernel: Tensor | KernelName, width: int) -> torch.Tensor:
    if isinstance(kernel, str):
        if kernel == "square":
            return torch.ones((width, width), dtype=torch.bool)
        r = torch.arange(-width, width + 1)
        if kernel == "diamond":
            return r[:, None].abs() + r[None, :].abs() <= width
        if kernel == "disk":
            return r[:, None] ** 2 + r[None, :] ** 2 <= width**2
        raise ValueError(
            f"kernel: expected 'square', 'diamond', 'disk' or a 2D array, got {kernel!r}"
        )
    k = to_torch(kernel)
    if k.ndim != 2:
        raise ValueError(f"kernel: only 2D kernels are supported, got {k.ndim}D")
    return k != 0


def _morph(
    data: Tensor, kernel: Tensor | KernelName, width: int, op: Literal["erode", "dilate"]
) -> torch.Tensor:
    """Flat grey-level erosion/dilation in XY; voxels outside the data are ignored."""
    x = to_torch(data)
    if x.ndim != 4:
        raise ValueError(f"data: expected a CXYZ tensor (4 dims), got shape {tuple(x.shape)}")
    k = _kernel(kernel, width).to(x.device)
    kh, kw = k.shape
    planes = x.permute(3, 0, 1, 2).to(torch.float64)  # Z C X Y
    fill = float("inf") if op == "erode" else float("-inf")
    oh, ow = kh // 2, kw // 2
    padded = torch.nn.functional.pad(planes, (ow, kw - ow - 1, oh, kh - oh - 1), value=fill)
    z, c, h, w = planes.shape
    windows = padded.unfold(2, kh, 1).unfold(3, kw, 1)  # Z C X Y kh kw
    values = windows[..., k]
    out = values.amin(dim=-1) if op == "erode" else values.amax(dim=-1)
    return out.reshape(z, c, h, w).permute(1, 2, 3, 0).to(x.dtype)


def _skip_if_empty(data: Tensor) -> bool:
    return not bool((data != 0).any())


@builder.register("kornia_erosion")
def kornia_erosion(
    data: Tensor,
    kernel: Tensor | KernelName = "square",
    device: Any = None,
    width: int = 3,
    **kwargs: Any,
) -> Any:
    """Grey-level erosion in XY with a flat element: a 2D array, or ``square`` (side ``width``),
    ``diamond`` or ``disk`` (radius ``width``), as skimage draws them. ``device`` moves the work
    to that torch device. Implemented here (not with kornia); extra kornia arguments are refused."""
    return _morphology(data, kernel, device, width, kwargs, ("erode",))


@builder.register("kornia_dilation")
def kornia_dilation(
    data: Tensor,
    kernel: Tensor | KernelName = "square",
    device: Any = None,
    width: int = 3,
    **kwargs: Any,
) -> Any:
    """Grey-level dilation in XY (see ``kornia_erosion`` for the arguments)."""
    return _morphology(data, kernel, device, width, kwargs, ("dilate",))


@builder.register("kornia_opening")
def kornia_opening(
    data: Tensor,
    kernel: Tensor | KernelName = "square",
    device: Any = None,
    width: int = 3,
    **kwargs: Any,
) -> Any:
    """Erosion then dilation in XY (see ``kornia_erosion`` for the arguments)."""
    return _morphology(data, kernel, device, width, kwargs, ("erode", "dilate"))


@builder.register("kornia_closing")
def kornia_closing(
    data: Tensor,
    kernel: Tensor | KernelName = "square",
    device: Any = None,
    width: int = 3,
    **kwargs: Any,
) -> Any:
    """Dilation then erosion in XY (see ``kornia_erosion`` for the arguments)."""
    return _morphology(data, kernel, device, width, kwargs, ("dilate", "erode"))


def _morphology(
    data: Tensor,
    kernel: Tensor | KernelName,
    device: Any,
    width: int,
    extra: dict[str, Any],
    ops: Sequence[str],
) -> Any:
    extra.pop("max_val", None)  # kornia's penalty for the element's zeros: they are ignored here
    if extra:
        raise TypeError(f"unsupported kornia argument(s): {', '.join(sorted(extra))}")
    if _skip_if_empty(data):
        return data
    x = to_torch(data, device=device)
    for op in ops:
        x = _morph(x, kernel, width, op)  # type: ignore[arg-type]
    return like(x, data)


@builder.register("compute_pixel_error")
def compute_pixel_error(data1: Tensor, data2: Tensor, erosion: int = 5, **kwargs: Any) -> Any:
    """``|data1 - data2|`` where both are non-zero after an erosion by a ``erosion``-wide square,
    0 elsewhere (edge effects excluded)."""
    if _skip_if_empty(data1) and _skip_if_empty(data2):
        return data1
    a, b = to_torch(data1), to_torch(data2)
    outside = (to_torch(kornia_erosion(a, "square", width=erosion, **kwargs)) == 0) | (
        to_torch(kornia_erosion(b, "square", width=erosion, **kwargs)) == 0
    )
    result = torch.where(outside, torch.zeros_like(a), (a - b).abs())
    return like(result, data1)


@builder.register("erode_combine")
def erode_combine(data1: Tensor, data2: Tensor, erosion: int = 5, **kwargs: Any) -> Any:
    """Combine two tensors: each one's values where only it is non-zero after erosion by a
    ``erosion``-wide square, their mean where both are."""
    if _skip_if_empty(data1) and _skip_if_empty(data2):
        return data1
    a, b = to_torch(data1), to_torch(data2)
    in_a = to_torch(kornia_erosion(a, "square", width=erosion, **kwargs)) != 0
    in_b = to_torch(kornia_erosion(b, "square", width=erosion, **kwargs)) != 0
    result = torch.where(in_a & in_b, (0.5 * a + 0.5 * b).to(a.dtype), torch.zeros_like(a))
    result = torch.where(~in_b, a, result)
    result = torch.where(~in_a, b, result)
    return like(result, data1)


@builder.register("get_disp_pair")
def get_disp_pair(data: Tensor, disp: Sequence[int]) -> tuple[Any, Any]:
    """Two same-sized views of ``data`` displaced from each other by ``disp`` (x, y, z) along
    its last three dimensions."""
    if len(disp) != 3:
        raise ValueError(f"disp: expected 3 integers (x, y, z), got {disp!r}")
    if data.ndim < 3 or any(s <= abs(d) for s, d in zip(data.shape[-3:], disp, strict=True)):
        raise ValueError(f"disp: {tuple(disp)} does not fit in shape {tuple(data.shape)}")
    keep = [slice(None)] * (data.ndim - 3)
    first, second = list(keep), list(keep)
    for size, d in zip(data.shape[-3:], disp, strict=True):
        d1, d2 = max(d, 0), max(-d, 0)
        first.append(slice(d1, size - d2))
        second.append(slice(d2, size - d1))
    return data[tuple(first)], data[tuple(second)]


@builder.register("seg_to_aff")
def seg_to_aff(data: Tensor, edge: Sequence[int], mask: Tensor | None = None) -> Any:
    """The affinity of a segmentation along the offset ``edge``: 1 where both voxels belong to
    the same non-zero segment. With ``mask``, also the affinity mask (product of the mask's
    displaced pair)."""
    a, b = get_disp_pair(data, edge)
    aff = (a == b) & (a != 0) & (b != 0)
    aff = aff.to(data.dtype) if isinstance(data, torch.Tensor) else aff.astype(data.dtype)
    if mask is None:
        return aff
    if tuple(mask.shape) != tuple(data.shape):
        raise ValueError(f"mask: shape {tuple(mask.shape)} differs from data's {tuple(data.shape)}")
    m1, m2 = get_disp_pair(mask, edge)
    return aff, m1 * m2


@builder.register("seg_to_rgb")
def seg_to_rgb(data: Tensor) -> Any:
    """A random colour (float32 RGB channels) per segment of ``data``; segment 0 is black."""
    arr = to_np(data)
    if not 2 <= arr.ndim <= 5:
        raise ValueError(f"data: expected 2 to 5 dims, got shape {tuple(arr.shape)}")
    while arr.ndim > 3:
        arr = arr[0]
    ids, inverse = np.unique(arr, return_inverse=True)
    colours = np.random.rand(3, len(ids))
    colours[:, ids == 0] = 0
    rgb = colours[:, inverse.reshape(arr.shape)].astype(np.float32)
    return like(rgb, data)
