"""Combining overlapping chunk outputs (pieces, see :mod:`.chunk_grid`) into one output box.

A cell covered by one piece (an interior, or a band at the region's edge) is copied; a cell
covered by several is their weighted sum (``linear``, ``quadratic``, ``bump``: the weights sum to
1 at every voxel) or their elementwise maximum (``max``). Two executions of that rule:

* :class:`LevelSchedule` (lower levels, in a worker's memory): every parent chunk of a level has
  the same geometry, so slices and weights are worked out once per level; chunk outputs are
  consumed as they are computed, interiors copied into the output and bands summed into a float
  buffer that is rounded into the output at the end;
* :func:`combine_pieces` (the top level's reduction, pieces read from storage, see
  :meth:`.intermediaries.PieceStore.reduce_box`): all pieces of a cell are at hand and combined
  at once.

Each chunk output is first converted to the destination's type. Exactness: integer data are
summed in float (float32 for types of up to 16 bits, float64 beyond) and rounded to the nearest
integer; weights sum to 1 up to rounding, so where all overlapping outputs agree (an identity
function) the result is exactly that value. For 64-bit integers, which float64 cannot hold
exactly, cells whose pieces all agree are copied instead of summed. Float outputs written to
integer destinations are rounded, and a value outside the type's range is an error.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from zetta_utils.tensor_ops import to_np, to_np_dtype

from .chunk_grid import Box, ChunkGrid, Int3, RampCache

# Data movement here runs in NumPy: copies and casts of small strided blocks are several times
# faster than torch's (whose intra-op threads also fight the worker processes for cores).
Array = npt.NDArray[Any]

BLEND_MODES = ("linear", "quadratic", "bump", "max", "defer")
"""``processing_blend_modes`` values: the first three are weight profiles across the overlap,
``max`` takes the elementwise maximum (for masks), ``defer`` leaves the top level's overlapping
outputs in the intermediaries for a later reduction."""


def empty_xfast(num_channels: int, shape: Sequence[int], dtype: Any, zero: bool = False) -> Array:
    """A CXYZ array laid out x-fastest, channel slowest (like TensorStore's ``order='F'`` reads
    of precomputed chunks), so copies between it and storage stay sequential."""
    make = np.zeros if zero else np.empty
    return make((num_channels, shape[2], shape[1], shape[0]), dtype=to_np_dtype(dtype)).transpose(0, 3, 2, 1)


def as_array(data: torch.Tensor | Array) -> Array:
    """A CPU NumPy view of ``data`` (a copy only for tensors on other devices or bfloat16)."""
    return to_np(data)


def copy_xfast(data: Array) -> Array:
    """A copy of ``data`` laid out like :func:`empty_xfast`."""
    out = empty_xfast(data.shape[0], data.shape[1:], data.dtype)
    np.copyto(out, data)
    return out


def accumulator_dtype(dtype: Any) -> np.dtype:
    """The float type that blends ``dtype`` exactly enough (see the module docstring)."""
    np_dtype = to_np_dtype(dtype)
    if np_dtype.itemsize >= 4 and np_dtype.kind in "iuf" and not (np_dtype.kind == "f" and np_dtype.itemsize == 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def to_output_dtype(data: Array, dtype: Any, what: str) -> Array:
    """``data`` as ``dtype``: float to integer rounds (and must fit), else a plain cast."""
    target = to_np_dtype(dtype)
    if data.dtype == target:
        return data
    if data.dtype.kind == "f" and target.kind in "iu":
        rounded = np.rint(data)
        if rounded.size > 0:
            info = np.iinfo(target)
            vmin, vmax = float(rounded.min()), float(rounded.max())
            if not (info.min <= vmin and vmax <= info.max):
                raise ValueError(
                    f"{what}: values span [{vmin}, {vmax}], outside the range of the output "
                    f"type {target} [{info.min}, {info.max}]"
                )
        return rounded.astype(target)
    if data.dtype.kind in "iu" and target.kind in "iu" and data.size > 0:
        info, src = np.iinfo(target), np.iinfo(data.dtype)
        if src.min < info.min or src.max > info.max:
            vmin, vmax = int(data.min()), int(data.max())
            if not (info.min <= vmin and vmax <= info.max):
                raise ValueError(
                    f"{what}: values span [{vmin}, {vmax}], outside the range of the output "
                    f"type {target} [{info.min}, {info.max}]"
                )
    return data.astype(target)


def weight_tensor(
    per_dim: Sequence[torch.Tensor | None], offset: Sequence[int], shape: Sequence[int], dtype: Any
) -> Array | None:
    """The product of per-dim weights (None: ones) over ``shape`` voxels from ``offset``, as an
    array broadcasting against CXYZ data; None when all are ones."""
    result: Array | None = None
    for d, w in enumerate(per_dim):
        if w is None:
            continue
        part = w[offset[d] : offset[d] + shape[d]].numpy().astype(dtype)
        view = [1, 1, 1, 1]
        view[d + 1] = part.shape[0]
        part = part.reshape(view)
        result = part if result is None else result * part
    return result


class CellCombiner:
    """Combines the pieces covering each cell of an output array as they arrive: single pieces
    are copied at once, shared ones are kept until the cell's last piece arrives and then
    combined by :func:`combine_pieces`."""

    def __init__(self, dtype: Any, mode: str, what: str):
        if mode not in ("linear", "quadratic", "bump", "max"):
            raise ValueError(f"internal: cannot combine pieces with blend mode {mode!r}")
        self.mode = mode
        self.what = what
        self._pending: dict[Any, tuple[list[Array], list[Array | None]]] = {}

    def add(self, cell: Any, dst: Array, sub: Array, weight: Array | None, coverage: int) -> None:
        """One piece ``sub`` of the cell ``cell`` (any hashable key; ``dst`` is the cell's part of
        the output, the same view for all its pieces); ``coverage`` pieces cover it in all."""
        if coverage == 1:
            combine_pieces(dst, [sub], [weight], self.mode, self.what)
            return
        subs, weights = self._pending.setdefault(cell, ([], []))
        subs.append(np.array(sub, copy=True))  # not a view: the chunk output it is from may go
        weights.append(weight)
        if len(subs) == coverage:
            del self._pending[cell]
            combine_pieces(dst, subs, weights, self.mode, self.what)

    def check_done(self) -> None:
        if self._pending:
            cell, (subs, _) = next(iter(self._pending.items()))
            raise RuntimeError(
                f"internal: {self.what}: blended cell {cell} received only {len(subs)} of its pieces"
            )


def combine_pieces(dst: Array, subs: Sequence[Array], weights: Sequence[Array | None], mode: str, what: str) -> None:
    """Write into ``dst`` the combination of all the pieces ``subs`` covering it (see the module
    docstring): a copy of a single piece, else their weighted sum (``weights[i]`` broadcasting
    against ``subs[i]``; None: ones) or, for ``max``, their maximum."""
    dtype = dst.dtype
    if len(subs) == 1:
        sub = subs[0]
        np.copyto(dst, sub if sub.dtype == dtype else to_output_dtype(sub, dtype, what))
        return
    if mode == "max":
        np.copyto(dst, to_output_dtype(subs[0], dtype, what))
        for sub in subs[1:]:
            np.maximum(dst, to_output_dtype(sub, dtype, what), out=dst)
        return
    is_int = dtype.kind in "iub"
    if is_int:
        values = [to_output_dtype(sub, dtype, what) if sub.dtype.kind == "f" else sub for sub in subs]  # range checks
        if dtype.itemsize == 8 and all(np.array_equal(values[0], v) for v in values[1:]):
            # float64 cannot hold every 64-bit integer: agreeing pieces are copied exactly
            np.copyto(dst, values[0], casting="unsafe")
            return
    acc_dtype = accumulator_dtype(dtype)
    acc: Array | None = None
    for sub, weight in zip(subs, weights, strict=True):
        term = sub.astype(acc_dtype) if weight is None else np.multiply(sub, weight, dtype=acc_dtype)
        if acc is None:
            acc = term
        else:
            acc += term
    assert acc is not None
    if is_int:
        np.rint(acc, out=acc)
    np.copyto(dst, acc, casting="unsafe")


def describe(value: Any) -> str:
    """A short description of an op output for errors."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"array of shape {tuple(value.shape)} and type {value.dtype}"
    return type(value).__name__


class LevelSchedule:
    """How the chunks of a lower level combine into the padded output of their parent chunk.

    Every parent chunk of a level has the same shape, so the pieces, cells and weights are worked
    out once per level: ``starts[k]`` is where chunk ``keys[k]``'s padded box starts relative to
    the parent's output box (chunks entirely in the parent's crop are left out), and ``ops[k]``
    lists, for each of its pieces inside that box, ``(cell, output slices, chunk output slices,
    weights, coverage)``. Executing it streams: each chunk's pieces are consumed as soon as the
    chunk is computed, so memory holds one chunk output and the unfinished bands.
    """

    def __init__(self, out_shape: Int3, crop: Int3, chunk: Int3, blend: Int3, mode: str, dtype: Any):
        out_box = Box((0, 0, 0), out_shape)
        grid = ChunkGrid.over(out_box.padded(crop), chunk, blend)
        ramps = RampCache(mode)
        acc_dtype = accumulator_dtype(dtype)
        self.mode = mode
        self.padded: Int3 = (chunk[0] + 2 * blend[0], chunk[1] + 2 * blend[1], chunk[2] + 2 * blend[2])
        self.starts: list[Int3] = []
        self.ops: list[list[tuple[int, Any, Any, Array | None, int]]] = []
        cells: dict[Box, int] = {}
        for key in grid.keys_overlapping(out_box):
            padded = grid.padded(key)
            ops = []
            for piece in grid.pieces(key):
                target = piece.box.intersection(out_box)
                if target.is_empty():
                    continue
                coverage = piece.coverage
                cell = cells.setdefault(piece.box, len(cells)) if coverage > 1 else -1
                weight = None
                if coverage > 1 and mode != "max":
                    offset = [t - s for t, s in zip(target.start, piece.box.start, strict=True)]
                    weight = weight_tensor(ramps.weights(grid, piece), offset, target.shape, acc_dtype)
                ops.append((cell, target.slices_in(out_box), target.slices_in(padded), weight, coverage))
            self.starts.append(padded.start)
            self.ops.append(ops)
        # Per dim, the blended bands inside the output: the voxels whose value is a blend are
        # exactly those inside some dim's band (a band at the region's edge is not blended).
        self.band_slabs: list[tuple[slice, ...]] = []
        for d, ax in enumerate(grid.axes):
            if ax.blend == 0:
                continue
            for j in range(1, ax.count):
                lo = max(ax.core(j)[0] - ax.blend, 0)
                hi = min(ax.core(j)[0] + ax.blend, out_shape[d])
                if lo < hi:
                    slab = [slice(None)] * 4
                    slab[d + 1] = slice(lo, hi)
                    self.band_slabs.append(tuple(slab))

    def run(self, out: Array, outputs: Any, what: str) -> None:
        """Fill ``out`` (the parent's output) from ``outputs``, an iterator of the chunk outputs
        in the order of ``starts``. Interior pieces are copied; band pieces are summed with their
        weights (or maxed) into a float buffer the size of the output, then rounded into it."""
        dtype = out.dtype
        if not self.band_slabs:
            for ops, data in zip(self.ops, outputs, strict=True):
                data = self._as_output(data, dtype, what)
                for _cell, out_slices, data_slices, _weight, _coverage in ops:
                    np.copyto(out[out_slices], data[data_slices], casting="unsafe")
            return
        if self.mode == "max":
            fill: Any = np.iinfo(dtype).min if dtype.kind in "iu" else (False if dtype.kind == "b" else -np.inf)
            band = _band_buffer(out.shape[0], out.shape[1:], dtype, fill)
        else:
            fill = 0
            band = _band_buffer(out.shape[0], out.shape[1:], accumulator_dtype(dtype), fill)
        is_int = dtype.kind in "iub"
        try:
            for ops, data in zip(self.ops, outputs, strict=True):
                data = self._as_output(data, dtype, what)
                for _cell, out_slices, data_slices, weight, coverage in ops:
                    src = data[data_slices]
                    if coverage == 1:
                        np.copyto(out[out_slices], src, casting="unsafe")
                        continue
                    target = band[out_slices]
                    if weight is None:
                        np.maximum(target, src, out=target, casting="unsafe")
                    else:
                        target += np.multiply(src, weight, dtype=target.dtype)
            for slab in self.band_slabs:
                value = band[slab]
                if self.mode != "max" and is_int:
                    value = np.rint(value)
                np.copyto(out[slab], value, casting="unsafe")
            for slab in self.band_slabs:
                band[slab] = fill  # ready for the next parent chunk
        except BaseException:
            _SCRATCH.__dict__.pop("band", None)  # left dirty
            raise

    @staticmethod
    def _as_output(data: Array, dtype: np.dtype, what: str) -> Array:
        if data.dtype.kind == "f" and dtype.kind in "iub":
            return to_output_dtype(data, dtype, what)
        return data


_SCRATCH = threading.local()


def _band_buffer(num_channels: int, shape: Sequence[int], dtype: Any, fill: Any) -> Array:
    """A buffer of ``shape`` filled with ``fill``, reused by the next run of the same shape in this
    thread (runs leave it filled again): a fresh one per parent chunk would cost its allocation
    and page faults every time. One is kept per thread."""
    key = (num_channels, tuple(shape), np.dtype(dtype).str, fill)
    cached = getattr(_SCRATCH, "band", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    buffer = empty_xfast(num_channels, shape, dtype)
    buffer[...] = fill
    _SCRATCH.band = (key, buffer)
    return buffer


@functools.lru_cache(maxsize=64)
def level_schedule(out_shape: Int3, crop: Int3, chunk: Int3, blend: Int3, mode: str, dtype: Any) -> LevelSchedule:
    return LevelSchedule(out_shape, crop, chunk, blend, mode, dtype)
