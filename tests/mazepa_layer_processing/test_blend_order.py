"""float32 blends are byte-identical to the original zetta_utils'.

Floating-point sums depend on their order. The original reduces each level's overlapping chunk
outputs with a weighted sum, in float32, from zero: ``res = res + value * weight``, adding the
chunks phase by phase of its checkerboard (phases ``(px, py, pz)`` in {0, 1}^3, x most
significant: a chunk ``(jx, jy, jz)`` is in phase ``(jx % 2, jy % 2, jz % 2)``), each chunk's
weight a float32 template of ones multiplied by the x ramp, then the y ramp, then the z ramp
(ramps of float32 values computed in double from the guide's formulas), where the chunk's side
does not lie on the edge of the level's region. ``OriginalOrder`` below computes exactly that
with plain NumPy, independently of the flow's code; the flow must equal it bit for bit, with the
compiled loops and with their NumPy fallback. Summing in chunk order (x fastest) instead, as
this project did before, gives other bits where four or eight chunks overlap: the reference with
that order differs, so the comparison can tell the two apart.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common import reduction

from .helpers import RES, make_volume_at, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

VOLUME = (48, 40, 8)
OFFSET = (2, 3, 0)

Box = tuple[tuple[int, ...], tuple[int, ...]]


def chunk_dependent(src: torch.Tensor) -> torch.Tensor:
    # outputs of overlapping chunks differ: each depends on the first voxel its chunk reads
    return src * 0.5 + src[:, :1, :1, :1]


def with_negative_zeros(src: torch.Tensor) -> torch.Tensor:
    # -0.0 wherever the input's integer part is even
    return torch.where(torch.floor(src) % 2 == 0, -0.0, chunk_dependent(src))


def chunk_dependent_np(read: np.ndarray) -> np.ndarray:
    return read * np.float32(0.5) + read[:, :1, :1, :1]


def with_negative_zeros_np(read: np.ndarray) -> np.ndarray:
    return np.where(np.floor(read) % 2 == 0, np.float32(-0.0), chunk_dependent_np(read)).astype(
        np.float32
    )


FUNCTIONS = {
    "chunk_dependent": (chunk_dependent, chunk_dependent_np),
    "with_negative_zeros": (with_negative_zeros, with_negative_zeros_np),
}


def original_ramp(pad: int, mode: str) -> np.ndarray:
    """The original's ramp: Python floats, then float32."""
    if mode == "linear":
        values = [k / (2 * pad + 1) for k in range(1, 2 * pad + 1)]
    else:
        values = [
            ((k / (pad + 0.5)) ** 2) / 2 if k <= pad else 1 - ((2 - (k / (pad + 0.5))) ** 2) / 2
            for k in range(1, 2 * pad + 1)
        ]
    return np.array(values, dtype=np.float32)


class OriginalOrder:
    """The original's blends at every level, in float32, summed in ``order``: ``"phase"`` (the
    original's) or ``"chunk"`` (x fastest, this project's old order)."""

    def __init__(self, cfg: dict[str, Any], source: np.ndarray, fn: Any, order: str = "phase"):
        self.chunks = cfg["processing_chunk_sizes"]
        self.crops = cfg["processing_crop_pads"]
        self.blends = cfg["processing_blend_pads"]
        self.modes = cfg["processing_blend_modes"]
        self.source = source.astype(np.float32)
        self.order = order
        self.fn = fn

    def read(self, box: Box) -> np.ndarray:
        out = np.zeros((1, *(b - a for a, b in zip(*box))), dtype=np.float32)
        lo = [max(a, o) for a, o in zip(box[0], OFFSET)]
        hi = [min(b, o + s) for b, o, s in zip(box[1], OFFSET, VOLUME)]
        if all(h > low for low, h in zip(lo, hi)):
            out[(slice(None), *(slice(a - s, b - s) for a, b, s in zip(lo, hi, box[0])))] = (
                self.source[
                    (slice(None), *(slice(a - o, b - o) for a, b, o in zip(lo, hi, OFFSET)))
                ]
            )
        return out

    def template(self, level: int, key: tuple[int, ...], counts: list[int]) -> np.ndarray:
        """The original's weight template of a chunk: ones, times the x, y, z ramps in turn
        on the sides that are not on the region's edge."""
        chunk, pad = self.chunks[level], self.blends[level]
        weight = np.ones([c + 2 * p for c, p in zip(chunk, pad)], dtype=np.float32)
        for d in range(3):
            if not pad[d]:
                continue
            ramp = original_ramp(pad[d], self.modes[level])
            shape = [1, 1, 1]
            shape[d] = 2 * pad[d]
            if key[d] > 0:
                index = [slice(None)] * 3
                index[d] = slice(0, 2 * pad[d])
                weight[tuple(index)] *= ramp.reshape(shape)
            if key[d] < counts[d] - 1:
                index = [slice(None)] * 3
                index[d] = slice(weight.shape[d] - 2 * pad[d], None)
                weight[tuple(index)] *= ramp[::-1].reshape(shape)
        return weight

    def blend(self, level: int, region: Box, out_box: Box) -> np.ndarray:
        """The chunks of ``level`` tiling ``region``, reduced over ``out_box``."""
        chunk, pad = self.chunks[level], self.blends[level]
        counts = [(region[1][d] - region[0][d]) // chunk[d] for d in range(3)]
        keys = list(itertools.product(*(range(n) for n in counts)))
        if self.order == "phase":
            keys.sort(key=lambda k: (k[0] % 2, k[1] % 2, k[2] % 2))
        else:
            keys.sort(key=lambda k: (k[2], k[1], k[0]))
        res = np.zeros((1, *(b - a for a, b in zip(*out_box))), dtype=np.float32)
        for key in keys:
            lo = tuple(region[0][d] + key[d] * chunk[d] - pad[d] for d in range(3))
            hi = tuple(lo[d] + chunk[d] + 2 * pad[d] for d in range(3))
            inter_lo = [max(lo[d], out_box[0][d]) for d in range(3)]
            inter_hi = [min(hi[d], out_box[1][d]) for d in range(3)]
            if any(h <= low for low, h in zip(inter_lo, inter_hi)):
                continue
            value = self.output(level, (lo, hi))
            src = tuple(slice(inter_lo[d] - lo[d], inter_hi[d] - lo[d]) for d in range(3))
            dst = (
                slice(None),
                *(
                    slice(inter_lo[d] - out_box[0][d], inter_hi[d] - out_box[0][d])
                    for d in range(3)
                ),
            )
            if any(pad):
                res[dst] = (
                    res[dst] + value[(slice(None), *src)] * self.template(level, key, counts)[src]
                )
            else:
                res[dst] = value[(slice(None), *src)]
        return res

    def output(self, level: int, box: Box) -> np.ndarray:
        crop = self.crops[level]
        grown = (
            tuple(a - c for a, c in zip(box[0], crop)),
            tuple(b + c for b, c in zip(box[1], crop)),
        )
        if level == len(self.chunks) - 1:
            read = self.read(grown)
            result = self.fn(read)
            return result[(slice(None), *(slice(c, n - c) for c, n in zip(crop, result.shape[1:])))]
        return self.blend(level + 1, grown, box)


CONFIGS = {
    "2 levels, xy": (
        {
            "processing_chunk_sizes": [[12, 12, 1], [8, 8, 1]],
            "processing_crop_pads": [[1, 0, 0], [1, 2, 0]],
            "processing_blend_pads": [[1, 2, 0], [2, 3, 0]],
            "processing_blend_modes": ["quadratic", "linear"],
        },
        (5, 4, 1),
        (3, 3, 2),
        "chunk_dependent",
    ),
    "3 levels, xyz": (
        {
            "processing_chunk_sizes": [[8, 8, 4], [6, 6, 2], [4, 4, 2]],
            "processing_crop_pads": [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
            "processing_blend_pads": [[2, 1, 1], [1, 1, 1], [1, 2, 1]],
            "processing_blend_modes": ["linear", "quadratic", "quadratic"],
        },
        (4, 5, 2),
        (4, 3, 1),
        "chunk_dependent",
    ),
    # where a level blends, the original sums every voxel from zero, turning -0.0 into 0.0 (here
    # the lower level only: the top level's chunks do not overlap)
    "2 levels, negative zeros": (
        {
            "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
            "processing_crop_pads": [[0, 0, 0], [1, 2, 0]],
            "processing_blend_pads": [[0, 0, 0], [2, 3, 0]],
            "processing_blend_modes": ["quadratic", "linear"],
        },
        (5, 4, 1),
        (2, 2, 2),
        "with_negative_zeros",
    ),
}


def run_flow(
    tmp_path: Path, cfg: dict[str, Any], start: tuple[int, ...], counts: tuple[int, ...], fn: Any
) -> tuple[np.ndarray, np.ndarray, Box]:
    top = cfg["processing_chunk_sizes"][0]
    stop = tuple(s + n * c for s, n, c in zip(start, counts, top))
    grid = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in VOLUME), indexing="ij")
    source = ((1 + grid[0] + 64 * grid[1] + 4096 * grid[2]) / 7)[None].astype(np.float32)
    src = make_volume_at(
        str(tmp_path / "src"), size=VOLUME, dtype="float32", chunk=(8, 8, 1), offset=OFFSET
    )
    dst = make_volume_at(
        str(tmp_path / "dst"), size=VOLUME, dtype="float32", chunk=(4, 4, 1), offset=OFFSET
    )
    write_array(src, source, OFFSET)
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords(start, stop, RES),
        fn=fn,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * len(cfg["processing_chunk_sizes"]),
        verbose=False,
        **cfg,
    )
    mazepa.execute(flow, show_progress=False)
    return read_array(dst, start, stop), source, (start, stop)


@pytest.mark.parametrize("loops", ["compiled loops", "NumPy"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_blends_sum_in_the_original_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, loops: str
) -> None:
    if loops == "NumPy":
        monkeypatch.setattr(reduction, "KERNELS", None)
    elif reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    cfg, start, counts, fn_name = CONFIGS[name]
    fn, fn_np = FUNCTIONS[fn_name]
    out, source, region = run_flow(tmp_path, cfg, start, counts, fn)
    expected = OriginalOrder(cfg, source, fn_np).blend(0, region, region)
    assert out.dtype == expected.dtype == np.float32
    differ = out.view(np.uint32) != expected.view(np.uint32)
    assert not differ.any(), (
        f"{differ.sum()} of {differ.size} voxels differ, e.g. at {np.argwhere(differ)[:3].tolist()}"
    )
    # the test tells the orders apart: summed chunk by chunk, many voxels get other bits
    old = OriginalOrder(cfg, source, fn_np, order="chunk").blend(0, region, region)
    changed = (old.view(np.uint32) != expected.view(np.uint32)).sum()
    assert changed > 0.001 * expected.size
    np.testing.assert_allclose(old, expected, rtol=1e-6)
