"""Blending weights for overlapping chunks.

A chunk of core size ``c`` padded by ``p`` on each side (size ``c + 2p``), repeated with stride
``c``, overlaps each neighbour by ``2p`` voxels. Over such an overlap, at step ``k = 1 .. 2p``
counted from the start of the overlap, the chunk that begins there gets weight ``w(k)`` and the
one that ends there ``w(2p + 1 - k)``. Every ramp satisfies ``w(k) + w(2p + 1 - k) = 1``, so
overlapping weights sum to 1; away from the overlaps the weight is 1. In 3D the weight is the
product of the per-dim weights, which also sums to 1 where 4 or 8 chunks meet.

Ramps, with ``t = k / (2p + 1)`` in (0, 1):

``linear``
    ``w = t``.
``quadratic``
    ``u = k / (p + 0.5) = 2t``; ``w = u**2 / 2`` for ``u <= 1`` and ``1 - (2 - u)**2 / 2``
    after: continuous slope, flat at both ends.
``bump``
    ``w = b(t) / (b(t) + b(1 - t))`` with the bump ``b(t) = exp(-1 / t)``: a normalised smooth
    step, flat to every order at both ends.

A chunk side that lies on the outer boundary of the processed region has no neighbour to share
with; ``edges`` marks such sides, which then keep weight 1 instead of a ramp so that no weight is
lost there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import torch

from .common import SPATIAL_DIMS, as_xyz_ints

BlendMode = Literal["linear", "quadratic", "bump"]
BLEND_MODES: tuple[str, ...] = get_args(BlendMode)


def blend_ramp_array(pad: int, mode: BlendMode) -> np.ndarray:
    """The rising ramp ``w(k)``, ``k = 1 .. 2*pad``, as a float64 NumPy array (empty for
    ``pad == 0``). Chunkwise flows build their weights from it in worker processes, where a
    first call into torch would cost tens of milliseconds (its code paged in after the fork)."""
    if mode not in BLEND_MODES:
        raise ValueError(f"mode: expected one of {BLEND_MODES}, got {mode!r}")
    if not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad: expected a non-negative int, got {pad!r}")
    k = np.arange(1, 2 * pad + 1, dtype=np.float64)
    if mode == "linear":
        return k / (2 * pad + 1)
    if mode == "quadratic":
        u = k / (pad + 0.5)
        return np.where(u <= 1, u * u / 2, 1 - (2 - u) ** 2 / 2)
    t = k / (2 * pad + 1)
    # b(t) / (b(t) + b(1-t)) == sigmoid(1/(1-t) - 1/t), which stays finite for tiny t.
    with np.errstate(over="ignore"):  # exp(-x) -> inf for very negative x: weight 0, as meant
        return 1 / (1 + np.exp(-(1 / (1 - t) - 1 / t)))


def get_blend_ramp(pad: int, mode: BlendMode) -> torch.Tensor:
    """The rising ramp ``w(k)``, ``k = 1 .. 2*pad``, in float64 (empty for ``pad == 0``)."""
    return torch.from_numpy(blend_ramp_array(pad, mode))


def get_blend_weights_1d(
    size: int,
    pad: int,
    mode: BlendMode,
    edges: tuple[bool, bool] = (False, False),
) -> torch.Tensor:
    """Weights (float64, length ``size``) along one dim of a padded chunk of ``size`` voxels:
    a rising ramp over the first ``2*pad`` voxels, a falling one over the last ``2*pad``, 1
    between. ``edges[0]`` / ``edges[1]``: that side is a region boundary and is not ramped."""
    ramp = get_blend_ramp(pad, mode)
    weights = torch.ones(size, dtype=torch.float64)
    if pad == 0:
        return weights
    ramped_sides = (not edges[0]) + (not edges[1])
    if ramped_sides * 2 * pad > size:
        raise ValueError(
            f"blend_pad {pad} needs a padded chunk of at least {ramped_sides * 2 * pad} voxels "
            f"(core at least 2 * blend_pad), got {size}"
        )
    if not edges[0]:
        weights[: 2 * pad] = ramp
    if not edges[1]:
        weights[size - 2 * pad :] = ramp.flip(0)
    return weights


def get_blend_weights(
    shape_xyz: Sequence[int],
    blend_pad: int | Sequence[int],
    mode: BlendMode = "quadratic",
    edges: Sequence[Sequence[bool]] | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Per-voxel weights, shape ``shape_xyz`` (X, Y, Z; it broadcasts against CXYZ data), for a
    padded chunk of spatial shape ``shape_xyz`` with blend pad ``blend_pad`` (one int or x, y, z).

    Chunks of core ``shape_xyz - 2 * blend_pad`` laid with that stride have weights summing to 1
    at every voxel (up to float rounding). ``edges`` is ``((x_start, x_end), (y_start, y_end),
    (z_start, z_end))``: True marks a side on the region's boundary, left un-ramped.
    """
    shape = as_xyz_ints(shape_xyz, "shape_xyz")
    pads = as_xyz_ints(blend_pad, "blend_pad")
    if mode not in BLEND_MODES:
        raise ValueError(f"mode: expected one of {BLEND_MODES}, got {mode!r}")
    sides = _parse_edges(edges)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
    per_dim = []
    for dim, size, pad, side in zip(SPATIAL_DIMS, shape, pads, sides, strict=True):
        try:
            per_dim.append(get_blend_weights_1d(size, pad, mode, side))
        except ValueError as e:
            raise ValueError(f"blend_pad ({dim}): {e}") from e
    wx, wy, wz = per_dim
    weights = wx[:, None, None] * wy[None, :, None] * wz[None, None, :]
    return weights.to(dtype=dtype, device=device)


def _parse_edges(edges: Sequence[Sequence[bool]] | None) -> list[tuple[bool, bool]]:
    if edges is None:
        return [(False, False)] * 3
    try:
        pairs = [tuple(pair) for pair in edges]
    except TypeError as e:
        raise TypeError(f"edges: expected 3 pairs of bools, got {edges!r}") from e
    if len(pairs) != 3 or not all(
        len(p) == 2 and all(isinstance(v, bool) for v in p) for p in pairs
    ):
        raise ValueError(
            "edges: expected ((x_start, x_end), (y_start, y_end), (z_start, z_end)) of bools, "
            f"got {edges!r}"
        )
    return [(bool(p[0]), bool(p[1])) for p in pairs]
