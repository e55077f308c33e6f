"""The ``chunk_id`` of each chunk's ``VolumetricIndex``, numbered as the original numbers them.

An operation sees the id in the index it is called with (``idx.chunk_id``); users use it to name
per-chunk outputs, seed random numbers and the like, so it must not depend on how or where the
chunks run. The numbering counts bottom-level chunks: every chunk of a level gets the id of the
first bottom-level chunk it holds, so the bottom-level chunks of a run get ``0 .. N-1``, each once.

Within the chunk of the level above, the chunks of a level are ranked

* x fastest, then y, then z, when the level neither blends nor crops the level above's output
  (its chunks do not overlap);
* otherwise by checkerboard phase first: the phases (the parities of the chunk's position in x,
  y and z) in the order (0, 0, 0), (0, 0, 1), (0, 1, 0), ... (x slowest, z fastest), and x fastest
  within a phase.

and a chunk's id is the id of the chunk above plus its rank times the number of bottom-level
chunks in a chunk of its level. The counts include chunks that lie entirely in the crop of the
level above: the numbering is the original's even where this project does not compute those
chunks (their output would be cropped away).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from .chunk_grid import Int3

_PHASES: tuple[Int3, ...] = tuple((x, y, z) for x in range(2) for y in range(2) for z in range(2))


def _parity_count(n: int, parity: int) -> int:
    """How many of ``0 .. n-1`` have this parity."""
    return (n + 1 - parity) // 2


@attrs.frozen
class ChunkNumbering:
    """Chunk ids of a subchunkable run (see the module docstring); levels top-down, 0 the top.

    :param counts: per level, its chunks per chunk of the level above (for the top level: in the
        whole region) in x, y, z.
    :param checkerboard: per level, whether its chunks are ranked phase by phase.
    """

    counts: tuple[Int3, ...]
    checkerboard: tuple[bool, ...]
    bottom_per_chunk: tuple[int, ...] = attrs.field(init=False)
    _sub_offsets: dict[int, tuple[int, ...]] = attrs.field(
        init=False, factory=dict, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        per = [1]
        for counts in reversed(self.counts[1:]):
            per.append(per[-1] * math.prod(counts))
        object.__setattr__(self, "bottom_per_chunk", tuple(reversed(per)))

    @classmethod
    def of(
        cls,
        top_counts: Int3,
        chunks: Sequence[Int3],
        crops: Sequence[Int3],
        blends: Sequence[Int3],
        roi_crop_pad: Int3 = (0, 0, 0),
    ) -> ChunkNumbering:
        """The numbering of a run whose top level has ``top_counts`` chunks; the lower levels'
        counts follow from the sizes (each level's chunks tile the crop- and blend-padded chunk
        of the level above)."""
        counts = [top_counts]
        checkerboard = [any(blends[0]) or any(roi_crop_pad)]
        for i in range(1, len(chunks)):
            region = [
                chunks[i - 1][d] + 2 * crops[i - 1][d] + 2 * blends[i - 1][d] for d in range(3)
            ]
            counts.append(
                (region[0] // chunks[i][0], region[1] // chunks[i][1], region[2] // chunks[i][2])
            )
            checkerboard.append(any(blends[i]) or any(crops[i - 1]))
        return cls(tuple(counts), tuple(checkerboard))

    @property
    def num_chunks(self) -> int:
        """Bottom-level chunks in the run: the ids are ``0 .. num_chunks - 1``."""
        return self.bottom_per_chunk[0] * math.prod(self.counts[0])

    def rank(self, level: int, key: Sequence[int]) -> int:
        """The rank of the chunk ``key`` (its position ``(jx, jy, jz)``) among the chunks of
        ``level`` in the chunk above."""
        n = self.counts[level]
        if not self.checkerboard[level]:
            return key[0] + n[0] * (key[1] + n[1] * key[2])
        phase = (key[0] & 1, key[1] & 1, key[2] & 1)
        before = 0
        for other in _PHASES:
            if other == phase:
                break
            before += math.prod(_parity_count(n[d], other[d]) for d in range(3))
        cx, cy = _parity_count(n[0], phase[0]), _parity_count(n[1], phase[1])
        return before + key[0] // 2 + cx * (key[1] // 2 + cy * (key[2] // 2))

    def chunk_id(self, level: int, key: Sequence[int], parent_id: int = 0) -> int:
        """The id of chunk ``key`` of ``level`` inside the chunk ``parent_id`` of the level
        above."""
        return parent_id + self.bottom_per_chunk[level] * self.rank(level, key)

    def sub_offsets(
        self, level: int, starts: Sequence[Int3], crop_above: Int3, chunk: Int3, blend: Int3
    ) -> tuple[int, ...]:
        """Id offsets (from the parent's id) of the chunks of ``level`` (>= 1) whose padded boxes
        start at ``starts`` relative to the parent's output box, which the level above crops by
        ``crop_above``; worked out once per level (every parent chunk of a level has the same
        shape)."""
        offsets = self._sub_offsets.get(level)
        if offsets is None or len(offsets) != len(starts):
            offsets = tuple(
                self.chunk_id(
                    level, [(s[d] + crop_above[d] + blend[d]) // chunk[d] for d in range(3)]
                )
                for s in starts
            )
            self._sub_offsets[level] = offsets
        return offsets
