"""Combining overlapping chunk outputs (pieces, see :mod:`.chunk_grid`) into one output box.

A cell covered by one piece (an interior, or a band at the region's edge) is copied; a cell
covered by several is their weighted sum (``linear``, ``quadratic``, ``bump``: the weights sum to
1 at every voxel) or their elementwise maximum (``max``). Two executions of that rule:

* :class:`LevelSchedule` (lower levels, in a worker's memory): every parent chunk of a level has
  the same geometry, so slices and weights are worked out once per level; chunk outputs are
  consumed as they are computed, interiors copied into the output and bands summed into compact
  float buffers (one per band region) that are rounded into the output at the end;
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
import itertools
import os
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from zetta_utils.tensor_ops import to_np, to_np_dtype

from .chunk_grid import LABEL_C, AxisGrid, Box, ChunkGrid, Int3, RampCache

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
    return make((num_channels, shape[2], shape[1], shape[0]), dtype=to_np_dtype(dtype)).transpose(
        0, 3, 2, 1
    )


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
    if (
        np_dtype.itemsize >= 4
        and np_dtype.kind in "iuf"
        and not (np_dtype.kind == "f" and np_dtype.itemsize == 4)
    ):
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


class Weights:
    """The blend weights over (part of) a piece: per dim ``x``, ``y``, ``z`` a contiguous vector
    of the accumulator's type, or None for ones. The weight of a voxel is their product."""

    __slots__ = ("_product", "x", "y", "z")

    def __init__(self, x: Array | None, y: Array | None, z: Array | None):
        self.x, self.y, self.z = x, y, z
        self._product: Array | None = None

    @classmethod
    def of(
        cls,
        per_dim: Sequence[torch.Tensor | Array | None],
        offset: Sequence[int],
        shape: Sequence[int],
        dtype: Any,
    ) -> Weights:
        """The weights over ``shape`` voxels from ``offset`` of per-dim weights (None: ones)."""
        parts = [
            None if w is None else np.ascontiguousarray(np.asarray(w)[o : o + n], dtype=dtype)
            for w, o, n in zip(per_dim, offset, shape, strict=True)
        ]
        return cls(parts[0], parts[1], parts[2])

    def product(self) -> Array | None:
        """The weights as one array broadcasting against CXYZ data (None: all ones)."""
        if self._product is None:
            result: Array | None = None
            for d, w in enumerate((self.x, self.y, self.z)):
                if w is None:
                    continue
                view = [1, 1, 1, 1]
                view[d + 1] = w.shape[0]
                result = w.reshape(view) if result is None else result * w.reshape(view)
            self._product = result
        return self._product


def _compiled() -> Any:
    try:
        from . import _blend
    except ImportError:  # installed without a C compiler: NumPy does the same
        return None
    return _blend


KERNELS: Any = _compiled()
"""The compiled loops of ``_blend.c`` (None: not built; tests set it to None to check the NumPy
path gives the same result)."""

_KERNEL_TYPES = frozenset("?bBhHiIlLqQfd")

_FUSED_COMBINE = [
    os.environ.get("ZETTA_FUSED_COMBINE", "").strip().lower() not in ("0", "false", "no", "off")
]
"""Whether :func:`combine_pieces` sums a cell's pieces with ``_blend.combine`` (one pass, the
same operations) rather than ``accumulate`` per piece and ``store``; ``ZETTA_FUSED_COMBINE=0``:
not (A/B runs)."""


def _kernel_ok(*arrays: Array) -> bool:
    return KERNELS is not None and all(
        a.dtype.char in _KERNEL_TYPES and a.dtype.isnative for a in arrays
    )


def accumulate(acc: Array, src: Array, weights: Weights | None) -> None:
    """``acc += src * weights`` (``acc`` float32 or float64; ``weights`` None: ones), in one pass
    with the compiled loops."""
    if _kernel_ok(acc, src):
        if weights is None:
            KERNELS.accumulate(acc, src, None, None, None)
        else:
            KERNELS.accumulate(acc, src, weights.x, weights.y, weights.z)
        return
    product = None if weights is None else weights.product()
    if product is None:
        np.add(acc, src, out=acc, casting="unsafe")
    else:
        acc += np.multiply(src, product, dtype=acc.dtype)


def store_accumulated(dst: Array, acc: Array, round_values: bool, clear: bool = False) -> None:
    """``dst = rint(acc)`` (``round_values``) or ``acc``, cast to ``dst``'s type; then
    ``acc = 0`` if ``clear``."""
    if _kernel_ok(dst, acc):
        KERNELS.store(dst, acc, round_values, clear)
        return
    np.copyto(dst, np.rint(acc) if round_values else acc, casting="unsafe")
    if clear:
        acc[...] = 0


class CellCombiner:
    """Combines the pieces covering each cell of an output array as they arrive: single pieces
    are copied at once, shared ones are kept until the cell's last piece arrives and then
    combined by :func:`combine_pieces`."""

    def __init__(self, dtype: Any, mode: str, what: str):
        if mode not in ("linear", "quadratic", "bump", "max"):
            raise ValueError(f"internal: cannot combine pieces with blend mode {mode!r}")
        self.mode = mode
        self.what = what
        self._pending: dict[Any, tuple[list[Array], list[Weights | None]]] = {}

    def add(self, cell: Any, dst: Array, sub: Array, weight: Weights | None, coverage: int) -> None:
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
                f"internal: {self.what}: blended cell {cell} received only {len(subs)} of its "
                "pieces"
            )


def combine_pieces(
    dst: Array, subs: Sequence[Array], weights: Sequence[Weights | None], mode: str, what: str
) -> None:
    """Write into ``dst`` the combination of all the pieces ``subs`` covering it (see the module
    docstring): a copy of a single piece, else their weighted sum (``weights[i]`` those of
    ``subs[i]``; None: ones) or, for ``max``, their maximum."""
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
        values = [
            to_output_dtype(sub, dtype, what) if sub.dtype.kind == "f" else sub for sub in subs
        ]  # range checks
        if dtype.itemsize == 8 and all(np.array_equal(values[0], v) for v in values[1:]):
            # float64 cannot hold every 64-bit integer: agreeing pieces are copied exactly
            np.copyto(dst, values[0], casting="unsafe")
            return
    acc_dtype = accumulator_dtype(dtype)
    if _FUSED_COMBINE[0] and _kernel_ok(dst, *subs) and hasattr(KERNELS, "combine"):
        # the loops below in one pass, the sum of each row in a row buffer
        KERNELS.combine(
            dst,
            subs,
            [None if w is None else (w.x, w.y, w.z) for w in weights],
            acc_dtype == np.float64,
            is_int,
        )
        return
    acc = empty_xfast(dst.shape[0], dst.shape[1:], acc_dtype, zero=True)
    for sub, weight in zip(subs, weights, strict=True):
        accumulate(acc, sub, weight)
    store_accumulated(dst, acc, round_values=is_int)


def describe(value: Any) -> str:
    """A short description of an op output for errors."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"array of shape {tuple(value.shape)} and type {value.dtype}"
    return type(value).__name__


Op = tuple[int, Any, Any, Weights | None, int]
"""One piece of a chunk output: (cell or region, output slices, chunk output slices, weights,
coverage)."""
Region = tuple[tuple[slice, ...], Int3]
"""A band region of a parent's output: its slices there and its shape."""


def add_zero(out: Array) -> None:
    """``out += 0`` for float ``out``: turns ``-0.0`` into ``0.0``. Where a level blends, the
    original computes every voxel as a sum from zero, a voxel of one chunk too (``0 + value * 1``),
    which stores a negative zero as a positive one; copies would keep its sign bit."""
    if out.dtype.kind == "f":
        np.add(out, out.dtype.type(0), out=out)


def phase_order(key: Int3) -> tuple[int, int, int, int, int, int]:
    """Sort key of chunk keys ``(jx, jy, jz)`` in the order whose overlapping outputs the
    original zetta_utils adds up: phase by phase of its checkerboard (the parities of ``jx``,
    ``jy``, ``jz``, x most significant; one chunk of a phase at most covers a voxel), each
    blended voxel summed from zero as ``acc + value * weight`` in that order. Floating-point
    addition is not associative, so summing the same pieces in another order changes the last
    bits of float outputs where three or more chunks overlap."""
    jx, jy, jz = key
    return (jx & 1, jy & 1, jz & 1, jz, jy, jx)


class LevelSchedule:
    """How the chunks of a lower level combine into the padded output of their parent chunk.

    Every parent chunk of a level has the same shape, so the pieces, cells and weights are worked
    out once per level: ``starts[k]`` is where the ``k``-th chunk's padded box starts relative to
    the parent's output box (chunks entirely in the parent's crop are left out; chunks in
    :func:`phase_order`, so that each voxel's pieces are summed in the original's order), and
    ``ops[k]``
    lists, for each of its pieces inside that box, ``(cell, output slices, chunk output slices,
    weights, coverage)``. Executing it streams: each chunk's pieces are consumed as soon as the
    chunk is computed, so memory holds one chunk output and the unfinished bands.
    """

    def __init__(
        self, out_shape: Int3, crop: Int3, chunk: Int3, blend: Int3, mode: str, dtype: Any
    ):
        out_box = Box((0, 0, 0), out_shape)
        grid = ChunkGrid.over(out_box.padded(crop), chunk, blend)
        self.mode = mode
        self.sums_all = mode != "max" and any(blend)
        """Whether the original sums every voxel (see :func:`add_zero`)."""
        self.padded: Int3 = (
            chunk[0] + 2 * blend[0],
            chunk[1] + 2 * blend[1],
            chunk[2] + 2 * blend[2],
        )
        self.starts: list[Int3] = []
        self.ops: list[list[Op]] = []
        # A piece is the product of one piece per dim: work those out once per dim.
        acc_dtype = accumulator_dtype(dtype)
        ramps = RampCache(mode)
        per_dim = [
            _axis_pieces(ax, out_shape[d], ramps, mode != "max", acc_dtype)
            for d, ax in enumerate(grid.axes)
        ]
        cells: dict[tuple[Any, ...], int] = {}
        for jx, jy, jz in sorted(grid.keys_overlapping(out_box), key=phase_order):
            ops: list[Op] = []
            (sx, xs), (sy, ys), (sz, zs) = per_dim[0][jx], per_dim[1][jy], per_dim[2][jz]
            for z, y, x in itertools.product(zs, ys, xs):
                shared = x.shared + y.shared + z.shared
                coverage = 1 << shared
                out_slices = (slice(None), x.target, y.target, z.target)
                data_slices = (slice(None), x.local, y.local, z.local)
                if coverage == 1:
                    ops.append((-1, out_slices, data_slices, None, 1))
                    continue
                cell = cells.setdefault((x.span, y.span, z.span), len(cells))
                weight = Weights(x.weight, y.weight, z.weight) if mode != "max" else None
                ops.append((cell, out_slices, data_slices, weight, coverage))
            self.starts.append((sx, sy, sz))
            self.ops.append(ops)
        # the same, with each blended piece's region and its slices in that region's buffer
        self.regions, self.region_ops = _band_regions(out_shape, grid, self.ops)
        self.region_shapes = tuple(shape for _slices, shape in self.regions)
        self.region_starts = np.array(
            [[sl.start for sl in slices[1:]] for slices, _shape in self.regions], dtype=np.int64
        ).reshape(-1, 3)
        self.plans, self.plan_weights = _kernel_plans(self.region_ops, acc_dtype)
        self._shifted: dict[Int3, list[Array]] = {}

    def run(self, out: Array, outputs: Any, what: str, crop: Int3 = (0, 0, 0)) -> None:
        """Fill ``out`` (the parent's output) from ``outputs``, an iterator of the chunk outputs
        in the order of ``starts`` (each still padded by ``crop`` on every side: the pad is left
        out here). Interior pieces are copied; band pieces are summed with their weights (or
        maxed) into compact float buffers, one per band region, rounded into the output at the
        end."""
        if not self._run(out, outputs, what, crop) and self.sums_all:
            add_zero(out)

    def _shifted_plans(self, crop: Int3) -> list[Array]:
        """:attr:`plans` for chunk outputs still padded by ``crop``: their data starts moved."""
        if not any(crop):
            return self.plans
        shifted = self._shifted.get(crop)
        if shifted is None:
            shifted = []
            for plan in self.plans:
                plan = plan.copy()
                plan[:, 4:7] += np.array(crop, dtype=np.int64)
                shifted.append(plan)
            self._shifted[crop] = shifted
        return shifted

    def _run(self, out: Array, outputs: Any, what: str, crop: Int3 = (0, 0, 0)) -> bool:
        """:meth:`run`; True if the compiled loops added zero to every copied voxel already."""
        dtype = out.dtype
        cx, cy, cz = crop
        cropping = bool(cx or cy or cz)

        def cropped(data: Array) -> Array:
            return data[
                :, cx : data.shape[1] - cx, cy : data.shape[2] - cy, cz : data.shape[3] - cz
            ]

        if not self.regions:
            for ops, data in zip(self.region_ops, outputs, strict=True):
                if cropping:
                    data = cropped(data)
                data = self._as_output(data, dtype, what)
                for _region, out_slices, data_slices, _weight, _coverage in ops:
                    np.copyto(out[out_slices], data[data_slices], casting="unsafe")
            return False
        is_max = self.mode == "max"
        if is_max:
            fill: Any = (
                np.iinfo(dtype).min
                if dtype.kind in "iu"
                else (False if dtype.kind == "b" else -np.inf)
            )
            buffer_dtype = dtype
        else:
            fill = 0
            buffer_dtype = accumulator_dtype(dtype)
        key = (out.shape[0], self.region_shapes, np.dtype(buffer_dtype).str, fill)
        buffers = _take_band_buffers(key)
        round_values = dtype.kind in "iub"
        compiled = not is_max and _kernel_ok(out)
        zero_added = compiled
        shifted = self._shifted_plans(crop) if compiled else self.plans
        # On an error the buffers are dropped (left dirty); otherwise handed back filled again.
        for ops, plan, moved, data in zip(
            self.region_ops, self.plans, shifted, outputs, strict=True
        ):
            if compiled and data.dtype == dtype:  # the pad left out by the plan's data starts
                KERNELS.apply(out, data, buffers, moved, self.plan_weights, self.sums_all)
                continue
            if cropping:
                data = cropped(data)
            data = self._as_output(data, dtype, what)
            if compiled and data.dtype == dtype:
                KERNELS.apply(out, data, buffers, plan, self.plan_weights, self.sums_all)
                continue
            zero_added = False
            for region, target_slices, data_slices, weight, _coverage in ops:
                src = data[data_slices]
                if region < 0:
                    np.copyto(out[target_slices], src, casting="unsafe")
                elif is_max:
                    target = buffers[region][target_slices]
                    np.maximum(target, src, out=target, casting="unsafe")
                else:
                    accumulate(buffers[region][target_slices], src, weight)
        if compiled:
            KERNELS.store_all(out, buffers, self.region_starts, round_values)
        else:
            for (slices, _shape), buffer in zip(self.regions, buffers, strict=True):
                if is_max:
                    np.copyto(out[slices], buffer, casting="unsafe")
                    buffer[...] = fill
                else:
                    store_accumulated(out[slices], buffer, round_values, clear=True)
        _give_back_band_buffers(key, buffers)
        return zero_added

    @staticmethod
    def _as_output(data: Array, dtype: np.dtype, what: str) -> Array:
        if data.dtype.kind == "f" and dtype.kind in "iub":
            return to_output_dtype(data, dtype, what)
        return data


class _AxisPiece(NamedTuple):
    """One dim of a piece of a lower-level chunk inside its parent's output (see LevelSchedule)."""

    span: tuple[int, int]
    """The piece in the parent's output coordinates, unclipped (identifies its cell)."""
    target: slice
    """The piece clipped to the parent's output."""
    local: slice
    """The same voxels in the chunk's padded output."""
    shared: int
    """1 if it overlaps the neighbour's piece (a blended band), else 0."""
    weight: Array | None
    """Its blend weights over ``target`` (None: ones)."""


def _axis_pieces(
    ax: AxisGrid, size: int, ramps: RampCache, weighted: bool, acc_dtype: Any
) -> dict[int, tuple[int, list[_AxisPiece]]]:
    """Per chunk ``j`` of ``ax`` overlapping ``[0, size)``: where its padded box starts, and its
    pieces there."""
    result: dict[int, tuple[int, list[_AxisPiece]]] = {}
    for j in ax.chunks_overlapping(0, size):
        start = ax.padded(j)[0]
        pieces = []
        for label in ax.labels:
            a, b = ax.piece(j, label)
            lo, hi = max(a, 0), min(b, size)
            if lo >= hi:
                continue
            shared = ax.shared(j, label)
            weight = None
            if shared and weighted:
                ramp = ramps.ramp(ax.blend, falling=label == LABEL_C)
                weight = np.ascontiguousarray(ramp[lo - a : hi - a], dtype=acc_dtype)
            pieces.append(
                _AxisPiece(
                    (a, b), slice(lo, hi), slice(lo - start, hi - start), int(shared), weight
                )
            )
        result[j] = (start, pieces)
    return result


def _band_regions(
    out_shape: Int3, grid: ChunkGrid, ops: list[list[Op]]
) -> tuple[list[Region], list[list[Op]]]:
    """The blended voxels of a parent's output cut into boxes (*regions*), each summed in its
    own compact buffer, and ``ops`` with each blended piece's first field set to its region and
    its output slices made relative to that region (copied pieces get -1).

    Per dim, the shared bands lie between neighbouring chunks; the voxels outside every band of
    a dim are its *interior segments*. A blended piece lies, per dim, either inside one band or
    inside one interior segment. Its region is fixed by the first dim ``d`` where it lies in a
    band: that band in ``d``, the interior segment it lies in for each dim before ``d``, the whole
    output for each dim after. These regions do not overlap and cover every blended voxel. A band
    buffer as large as the output would be mostly untouched, and its narrow bands would cost a
    cache miss per short row."""
    bands: list[list[tuple[int, int]]] = []
    segments: list[list[tuple[int, int]]] = []
    for d, ax in enumerate(grid.axes):
        dim_bands = []
        if ax.blend > 0:
            for j in range(1, ax.count):
                lo = max(ax.core(j)[0] - ax.blend, 0)
                hi = min(ax.core(j)[0] + ax.blend, out_shape[d])
                if lo < hi:
                    dim_bands.append((lo, hi))
        edges = [0] + [e for band in dim_bands for e in band] + [out_shape[d]]
        bands.append(dim_bands)
        segments.append([(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if a < b])
    index: dict[tuple[int, ...], int] = {}
    regions: list[Region] = []
    placed: list[list[Op]] = []

    def within(spans: list[tuple[int, int]], lo: int, hi: int) -> int:
        for i, (a, b) in enumerate(spans):
            if a <= lo and hi <= b:
                return i
        return -1

    for chunk_ops in ops:
        new_ops = []
        for _cell, out_slices, data_slices, weight, coverage in chunk_ops:
            if coverage == 1:
                new_ops.append((-1, out_slices, data_slices, weight, coverage))
                continue
            span = [(sl.start, sl.stop) for sl in out_slices[1:]]
            first = next(d for d in range(3) if within(bands[d], *span[d]) >= 0)
            key = [first]
            box = []
            for d in range(3):
                if d < first:
                    i = within(segments[d], *span[d])
                    if i < 0:
                        raise AssertionError("internal: a blended piece straddles a band's edge")
                    key.append(i)
                    box.append(segments[d][i])
                elif d == first:
                    i = within(bands[d], *span[d])
                    key.append(i)
                    box.append(bands[d][i])
                else:
                    box.append((0, out_shape[d]))
            r = index.get(tuple(key))
            if r is None:
                r = index[tuple(key)] = len(regions)
                shape = (box[0][1] - box[0][0], box[1][1] - box[1][0], box[2][1] - box[2][0])
                regions.append(((slice(None), *(slice(a, b) for a, b in box)), shape))
            relative = (
                slice(None),
                *(slice(a - b[0], z - b[0]) for (a, z), b in zip(span, box, strict=True)),
            )
            new_ops.append((r, relative, data_slices, weight, coverage))
        placed.append(new_ops)
    return regions, placed


def _kernel_plans(region_ops: list[list[Op]], acc_dtype: Any) -> tuple[list[Array], Array]:
    """``region_ops`` for ``_blend.apply``: per chunk, int64 rows (region, target start, data
    start, shape, offsets of the x, y, z weights in the returned weights array or -1)."""
    vectors: list[Array] = []
    size = 0

    def place(w: Array | None) -> int:
        nonlocal size
        if w is None:
            return -1
        vectors.append(w)
        size += w.shape[0]
        return size - w.shape[0]

    plans = []
    for ops in region_ops:
        rows = []
        for region, target_slices, data_slices, weight, _coverage in ops:
            t = [sl.start for sl in target_slices[1:]]
            d = [sl.start for sl in data_slices[1:]]
            n = [sl.stop - sl.start for sl in data_slices[1:]]
            w = (
                [-1, -1, -1]
                if weight is None
                else [place(weight.x), place(weight.y), place(weight.z)]
            )
            rows.append([region, *t, *d, *n, *w])
        plans.append(np.array(rows, dtype=np.int64).reshape(-1, 13))
    weights = np.concatenate(vectors).astype(acc_dtype) if vectors else np.zeros(0, acc_dtype)
    return plans, weights


_SCRATCH = threading.local()
_KEPT_BUFFER_SETS = 8
BandKey = tuple[int, tuple[tuple[int, ...], ...], str, Any]


def _take_band_buffers(key: BandKey) -> list[Array]:
    """Buffers for ``key`` (channels, the regions' shapes, type, fill) filled with ``fill``: a
    set handed back by an earlier run in this thread if any (fresh ones per parent chunk would
    cost their allocation and page faults every time), else new ones. Nested runs (three or more
    levels) take different sets even when their shapes agree."""
    free: dict[BandKey, list[list[Array]]] = _SCRATCH.__dict__.setdefault("free", {})
    sets = free.get(key)
    if sets:
        return sets.pop()
    num_channels, shapes, dtype, fill = key
    buffers = [empty_xfast(num_channels, shape, dtype) for shape in shapes]
    for buffer in buffers:
        buffer[...] = fill
    return buffers


def _give_back_band_buffers(key: BandKey, buffers: list[Array]) -> None:
    """Keep ``buffers`` (filled with their fill again) for the next run in this thread; for the
    most recently used kinds only (one per level that blends)."""
    free: dict[BandKey, list[list[Array]]] = _SCRATCH.__dict__.setdefault("free", {})
    sets = free.pop(key, [])
    sets.append(buffers)
    free[key] = sets  # most recent last
    while len(free) > _KEPT_BUFFER_SETS:
        free.pop(next(iter(free)))


@functools.lru_cache(maxsize=64)
def level_schedule(
    out_shape: Int3, crop: Int3, chunk: Int3, blend: Int3, mode: str, dtype: Any
) -> LevelSchedule:
    return LevelSchedule(out_shape, crop, chunk, blend, mode, dtype)
