"""Integer voxel boxes and the chunk grid of one processing level, with its blend pieces.

A level splits a region whose first chunk starts at ``origin`` into ``count`` chunks of ``chunk``
voxels per dim (with an unprocessed ``gap`` between them at the top level). Chunk ``j`` produces
output for its *padded box*: its core ``[origin + j*stride, ... + chunk)`` grown by ``blend`` on
both sides, so neighbours overlap by ``2*blend``.

Per dim, a padded chunk output is cut into three *pieces* (with ``blend > 0``)::

    A = [core_start - b, core_start + b)   the band shared with the previous chunk
    B = [core_start + b, core_end - b)     the interior, this chunk's alone
    C = [core_end - b,   core_end + b)     the band shared with the next chunk

(with ``blend == 0`` there is only ``B`` = the core). The piece C of chunk ``j`` and the piece
A of chunk ``j+1`` cover the same voxels, so the padded region is tiled by *cells* that are
each covered by the same pieces of either one chunk (weight 1) or two (blended by a ramp and
its mirror, summing to 1). A band at the outer edge of the region has no neighbour and keeps
weight 1. In 3D a piece is labelled by one of A/B/C per dim; a cell is covered by 1, 2, 4 or 8
pieces. Reductions work cell by cell, which keeps them exact and lets interior cells be plain
copies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import attrs
import numpy as np

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex

Int3 = tuple[int, int, int]

LABEL_A, LABEL_B, LABEL_C = 0, 1, 2


class Box(NamedTuple):
    """A box of whole voxels ``[start, stop)`` at some resolution."""

    start: Int3
    stop: Int3

    @classmethod
    def of(cls, start: Sequence[int], stop: Sequence[int]) -> Box:
        return cls(
            (int(start[0]), int(start[1]), int(start[2])),
            (int(stop[0]), int(stop[1]), int(stop[2])),
        )

    @classmethod
    def from_index(cls, idx: VolumetricIndex) -> Box:
        return cls.of(idx.start, idx.stop)

    @property
    def shape(self) -> Int3:
        s, e = self.start, self.stop
        return (e[0] - s[0], e[1] - s[1], e[2] - s[2])

    def size(self) -> int:
        x, y, z = self.shape
        return max(x, 0) * max(y, 0) * max(z, 0)

    def is_empty(self) -> bool:
        return any(e <= s for s, e in zip(self.start, self.stop, strict=True))

    def intersection(self, other: Box) -> Box:
        start = tuple(max(a, b) for a, b in zip(self.start, other.start, strict=True))
        stop = tuple(
            max(lo, min(a, b)) for lo, a, b in zip(start, self.stop, other.stop, strict=True)
        )
        return Box.of(start, stop)

    def contains(self, other: Box) -> bool:
        return all(
            a <= b and d <= c
            for a, b, c, d in zip(self.start, other.start, self.stop, other.stop, strict=True)
        )

    def padded(self, pad: Sequence[int]) -> Box:
        return Box.of(
            [s - p for s, p in zip(self.start, pad, strict=True)],
            [e + p for e, p in zip(self.stop, pad, strict=True)],
        )

    def slices_in(self, outer: Box) -> tuple[slice, slice, slice, slice]:
        """Indices of this box inside a CXYZ tensor covering ``outer``."""
        o = outer.start
        return (
            slice(None),
            slice(self.start[0] - o[0], self.stop[0] - o[0]),
            slice(self.start[1] - o[1], self.stop[1] - o[1]),
            slice(self.start[2] - o[2], self.stop[2] - o[2]),
        )

    def to_index(self, resolution: Vec3D[float]) -> VolumetricIndex:
        return VolumetricIndex(
            resolution=resolution, bbox=BBox3D.from_coords(self.start, self.stop, resolution)
        )

    def pformat(self) -> str:
        return f"{self.start} - {self.stop}"


def box_from_bbox(bbox: BBox3D, resolution: Vec3D[float], what: str) -> Box:
    """``bbox`` in whole voxels at ``resolution``; an error naming ``what`` if it is not."""
    start = bbox.start / resolution
    stop = bbox.end / resolution
    if not (start.is_integral() and stop.is_integral()):
        raise ValueError(
            f"{what} {bbox.pformat(resolution)} (in voxels at {tuple(resolution)}) is not a whole "
            "number of voxels; set expand_bbox_resolution=True to snap it outward"
        )
    return Box.of(start.round(), stop.round())


@attrs.frozen
class AxisGrid:
    """The chunks of one level along one dim (see the module docstring)."""

    origin: int
    chunk: int
    blend: int
    count: int
    gap: int = 0

    @property
    def stride(self) -> int:
        return self.chunk + self.gap

    def core(self, j: int) -> tuple[int, int]:
        lo = self.origin + j * self.stride
        return lo, lo + self.chunk

    def padded(self, j: int) -> tuple[int, int]:
        lo, hi = self.core(j)
        return lo - self.blend, hi + self.blend

    @property
    def labels(self) -> tuple[int, ...]:
        if self.blend == 0:
            return (LABEL_B,)
        if self.chunk == 2 * self.blend:
            return (LABEL_A, LABEL_C)
        return (LABEL_A, LABEL_B, LABEL_C)

    def tile_size(self, label: int) -> int:
        """Length of a piece with this label."""
        if self.blend == 0:
            return self.chunk
        return self.chunk - 2 * self.blend if label == LABEL_B else 2 * self.blend

    def offset_in_padded(self, label: int) -> int:
        """Where a piece with this label starts inside the chunk's padded output."""
        if label == LABEL_A or self.blend == 0:
            return 0
        return 2 * self.blend if label == LABEL_B else self.chunk

    def piece(self, j: int, label: int) -> tuple[int, int]:
        lo = self.padded(j)[0] + self.offset_in_padded(label)
        return lo, lo + self.tile_size(label)

    def shared(self, j: int, label: int) -> bool:
        """Whether the piece overlaps a neighbour's (a blended band, not a region edge)."""
        if self.blend == 0 or label == LABEL_B:
            return False
        return j > 0 if label == LABEL_A else j < self.count - 1

    def chunks_overlapping(self, lo: int, hi: int) -> range:
        """The chunks whose padded box intersects ``[lo, hi)``."""
        js = [
            j for j in self._candidates(lo, hi) if self.padded(j)[0] < hi and lo < self.padded(j)[1]
        ]
        return range(js[0], js[-1] + 1) if js else range(0)

    def _candidates(self, lo: int, hi: int) -> range:
        first = (lo - self.origin - self.chunk - self.blend) // self.stride
        last = (hi - self.origin + self.blend) // self.stride + 1
        return range(max(0, first), min(self.count, last + 1))

    def gaps_intersect(self, lo: int, hi: int) -> bool:
        """Whether ``[lo, hi)`` contains voxels of the gaps between chunks."""
        if self.gap == 0:
            return False
        for j in self._candidates(lo, hi):
            if j + 1 >= self.count:
                continue
            g0 = self.core(j)[1]
            g1 = g0 + self.gap
            if g0 < hi and lo < g1:
                return True
        return False


@attrs.frozen
class ChunkGrid:
    """The chunks of one level in 3D: one ``AxisGrid`` per dim."""

    axes: tuple[AxisGrid, AxisGrid, AxisGrid]

    @classmethod
    def over(
        cls,
        region: Box,
        chunk: Sequence[int],
        blend: Sequence[int],
        gap: Sequence[int] = (0, 0, 0),
    ) -> ChunkGrid:
        """Chunks tiling ``region`` (whose shape must be ``n*chunk + (n-1)*gap`` per dim)."""
        axes = []
        for d in range(3):
            size = region.stop[d] - region.start[d]
            stride = chunk[d] + gap[d]
            count, rem = divmod(size + gap[d], stride)
            if rem != 0 or count < 1:
                raise ValueError(
                    f"internal: region {region.pformat()} does not split into chunks of "
                    f"{tuple(chunk)} with gap {tuple(gap)}"
                )
            axes.append(AxisGrid(region.start[d], chunk[d], blend[d], count, gap[d]))
        return cls((axes[0], axes[1], axes[2]))

    @property
    def counts(self) -> Int3:
        return (self.axes[0].count, self.axes[1].count, self.axes[2].count)

    @property
    def num_chunks(self) -> int:
        x, y, z = self.counts
        return x * y * z

    def keys(self) -> Iterator[Int3]:
        """Chunk keys ``(jx, jy, jz)``, x fastest."""
        cx, cy, cz = self.counts
        for jz in range(cz):
            for jy in range(cy):
                for jx in range(cx):
                    yield (jx, jy, jz)

    def core(self, key: Int3) -> Box:
        lo_hi = [ax.core(j) for ax, j in zip(self.axes, key, strict=True)]
        return Box.of([a for a, _ in lo_hi], [b for _, b in lo_hi])

    def padded(self, key: Int3) -> Box:
        lo_hi = [ax.padded(j) for ax, j in zip(self.axes, key, strict=True)]
        return Box.of([a for a, _ in lo_hi], [b for _, b in lo_hi])

    @property
    def labels(self) -> list[Int3]:
        return [
            (a, b, c)
            for c in self.axes[2].labels
            for b in self.axes[1].labels
            for a in self.axes[0].labels
        ]

    def tile_shape(self, label: Int3) -> Int3:
        return (
            self.axes[0].tile_size(label[0]),
            self.axes[1].tile_size(label[1]),
            self.axes[2].tile_size(label[2]),
        )

    def keys_overlapping(self, box: Box) -> Iterator[Int3]:
        """Keys of the chunks whose padded box intersects ``box``, x fastest."""
        ranges = [
            ax.chunks_overlapping(box.start[d], box.stop[d]) for d, ax in enumerate(self.axes)
        ]
        for jz, jy, jx in itertools.product(ranges[2], ranges[1], ranges[0]):
            yield (jx, jy, jz)

    def gaps_intersect(self, box: Box) -> bool:
        return any(ax.gaps_intersect(box.start[d], box.stop[d]) for d, ax in enumerate(self.axes))


class RampCache:
    """Per-dim blend weights of pieces, computed once per (pad, mode)."""

    def __init__(self, mode: str):
        self.mode = mode
        self._ramps: dict[tuple[int, bool], np.ndarray] = {}

    def ramp(self, pad: int, falling: bool = False) -> np.ndarray:
        """The rising (or falling) ramp of half-width ``pad``, float64 (not to be changed)."""
        ramp = self._ramps.get((pad, falling))
        if ramp is None:
            from zetta_utils.tensor_ops import blend_ramp_array

            ramp = blend_ramp_array(pad, self.mode)  # type: ignore[arg-type]
            if falling:
                ramp = ramp[::-1].copy()
            ramp.flags.writeable = False
            self._ramps[(pad, falling)] = ramp
        return ramp


def merge_spans(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-empty ``[a, b)`` spans with touching or overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(s for s in spans if s[0] < s[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def core_spans(ax: AxisGrid, lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi)`` that the chunk cores of ``ax`` cover (all of it but the gaps
    between chunks and what lies outside the grid), merged."""
    return merge_spans(
        [(max(ax.core(j)[0], lo), min(ax.core(j)[1], hi)) for j in ax._candidates(lo, hi)]
    )


def grid_spans(
    spans: Sequence[tuple[int, int]], offset: int, chunk: int, lo: int, hi: int
) -> list[tuple[int, int]]:
    """The cells of the grid ``offset + k*chunk`` (clipped to ``[lo, hi)``, a dataset's bounds)
    that intersect any of ``spans``, in order."""
    cells: list[tuple[int, int]] = []
    for a, b in spans:
        k = (a - offset) // chunk
        while offset + k * chunk < b:
            cell = (max(offset + k * chunk, lo), min(offset + (k + 1) * chunk, hi))
            if cell[0] < cell[1] and (not cells or cells[-1][0] < cell[0]):
                cells.append(cell)
            k += 1
    return cells
