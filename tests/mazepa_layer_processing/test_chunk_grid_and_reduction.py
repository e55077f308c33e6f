"""The piece geometry of a level and the combination of pieces, against plain NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zetta_utils.mazepa_layer_processing.common.chunk_grid import (
    AxisGrid,
    Box,
    ChunkGrid,
    RampCache,
)
from zetta_utils.mazepa_layer_processing.common.reduction import (
    BlendAccumulator,
    CellCombiner,
    LevelSchedule,
    to_output_dtype,
)


def reference_ramp(pad: int, mode: str) -> np.ndarray:
    """The weights of the guide/REFERENCE, written out independently."""
    k = np.arange(1, 2 * pad + 1, dtype=np.float64)
    if mode == "linear":
        return k / (2 * pad + 1)
    u = k / (pad + 0.5)
    return np.where(u <= 1, u * u / 2, 1 - (2 - u) ** 2 / 2)


@st.composite
def axes(draw: st.DrawFn) -> AxisGrid:
    chunk = draw(st.integers(1, 12))
    blend = draw(st.integers(0, chunk // 2))
    count = draw(st.integers(1, 5))
    gap = 0 if blend else 2 * draw(st.integers(0, 2))
    return AxisGrid(origin=draw(st.integers(-5, 5)), chunk=chunk, blend=blend, count=count, gap=gap)


@given(axes())
def test_pieces_tile_each_padded_chunk_and_bands_are_shared(ax: AxisGrid) -> None:
    for j in range(ax.count):
        lo, hi = ax.padded(j)
        covered: list[int] = []
        for label in ax.labels:
            a, b = ax.piece(j, label)
            assert b - a == ax.tile_size(label) > 0
            assert ax.offset_in_padded(label) == a - lo
            covered.extend(range(a, b))
        assert covered == list(range(lo, hi))
    for j in range(ax.count - 1):
        if ax.blend:
            assert ax.piece(j, 2) == ax.piece(j + 1, 0)  # C of j is A of j + 1
            assert ax.shared(j, 2) and ax.shared(j + 1, 0)
    assert not ax.shared(0, 0) and not ax.shared(ax.count - 1, 2)


@settings(max_examples=40)
@given(axes(), st.sampled_from(["linear", "quadratic"]))
def test_weights_sum_to_one_over_the_region(ax: AxisGrid, mode: str) -> None:
    grid = ChunkGrid((ax, AxisGrid(0, 1, 0, 1), AxisGrid(0, 1, 0, 1)))
    ramps = RampCache(mode)
    lo = ax.padded(0)[0]
    hi = ax.padded(ax.count - 1)[1]
    total = np.zeros(hi - lo)
    hits = np.zeros(hi - lo, dtype=int)
    for key in grid.keys():
        for piece in grid.pieces(key):
            w = ramps.weights(grid, piece)[0]
            a, b = piece.box.start[0], piece.box.stop[0]
            total[a - lo : b - lo] += np.ones(b - a) if w is None else w.numpy()
            hits[a - lo : b - lo] += 1
            if w is not None:
                expected = reference_ramp(ax.blend, mode)
                assert np.allclose(w.numpy(), expected if piece.label[0] == 0 else expected[::-1])
    covered = hits > 0
    # gaps are covered by nothing; everything else sums to exactly one (up to rounding)
    assert np.allclose(total[covered], 1.0, atol=1e-12)
    if ax.gap == 0:
        assert covered.all()


def test_accumulator_reproduces_agreeing_integers_exactly() -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (12, 12, 1)), (4, 4, 1), (2, 2, 0))
    ramps = RampCache("quadratic")
    for dtype, value in (
        (np.uint8, 255),
        (np.int32, 2**31 - 7),
        (np.int64, 2**62 + 12345),
        (np.float32, 0.1),
    ):
        region = Box((0, 0, 0), (12, 12, 1))
        acc = BlendAccumulator(region, 1, dtype, "quadratic")
        for key in grid.keys():
            padded = grid.padded(key)
            data = np.full((1, *padded.shape), value, dtype=dtype)
            for piece in grid.pieces(key):
                s, e = piece.local.start, piece.local.stop
                acc.add(piece.box, data[:, s[0] : e[0], s[1] : e[1], s[2] : e[2]], ramps.weights(grid, piece), piece.coverage)
        out = acc.result()
        if np.dtype(dtype).kind == "f":
            assert np.allclose(out, value, rtol=1e-6)
        else:
            assert (out == value).all(), dtype


def test_max_mode_takes_the_maximum_of_overlapping_pieces() -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (8, 1, 1)), (4, 1, 1), (1, 0, 0))
    acc = BlendAccumulator(Box((0, 0, 0), (8, 1, 1)), 1, np.uint8, "max")
    values = {(0, 0, 0): 3, (1, 0, 0): 9}
    for key in grid.keys():
        data = np.full((1, 6, 1, 1), values[key], dtype=np.uint8)
        for piece in grid.pieces(key):
            s, e = piece.local.start, piece.local.stop
            acc.add(piece.box, data[:, s[0] : e[0], s[1] : e[1], s[2] : e[2]], (None, None, None), piece.coverage)
    assert acc.result()[0, :, 0, 0].tolist() == [3, 3, 3, 9, 9, 9, 9, 9]


def test_float_outputs_must_fit_an_integer_destination() -> None:
    assert to_output_dtype(np.array([1.4, 2.6, -0.5]), np.uint8, "fn").tolist() == [1, 3, 0]
    with pytest.raises(ValueError, match=r"fn: values span \[-3.0, 2.0\], outside the range"):
        to_output_dtype(np.array([-3.0, 2.0]), np.uint8, "fn")
    with pytest.raises(ValueError, match="outside the range of the output type uint16"):
        to_output_dtype(np.array([70000], dtype=np.int32), np.uint16, "x")


def test_combiner_refuses_an_unfinished_cell() -> None:
    combiner = CellCombiner(np.float32, "linear", "test")
    out = np.zeros((1, 2, 1, 1), dtype=np.float32)
    combiner.add("cell", out, np.ones((1, 2, 1, 1), dtype=np.float32), None, 2)
    with pytest.raises(RuntimeError, match="received only 1 of its pieces"):
        combiner.check_done()


@settings(max_examples=40)
@given(
    chunk=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
    blend_frac=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 1)),
    crop=st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 1)),
    counts=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2)),
    mode=st.sampled_from(["linear", "quadratic", "max"]),
)
def test_level_schedule_agrees_with_piece_by_piece_accumulation(
    chunk: tuple[int, int, int],
    blend_frac: tuple[int, int, int],
    crop: tuple[int, int, int],
    counts: tuple[int, int, int],
    mode: str,
) -> None:
    blend = (min(blend_frac[0], chunk[0] // 2), min(blend_frac[1], chunk[1] // 2), min(blend_frac[2], chunk[2] // 2))
    region = (counts[0] * chunk[0], counts[1] * chunk[1], counts[2] * chunk[2])
    out_shape = (region[0] - 2 * crop[0], region[1] - 2 * crop[1], region[2] - 2 * crop[2])
    if min(out_shape) <= 0:
        return
    schedule = LevelSchedule(out_shape, crop, chunk, blend, mode, np.float32)
    grid = ChunkGrid.over(Box((0, 0, 0), region), chunk, blend)
    out_box = Box(crop, (crop[0] + out_shape[0], crop[1] + out_shape[1], crop[2] + out_shape[2]))
    acc = BlendAccumulator(out_box, 2, np.float32, mode)
    ramps = RampCache(mode)
    rng = np.random.default_rng(sum(chunk) + 7 * sum(counts))
    outputs = {}
    for key in grid.keys():
        padded = grid.padded(key)
        data = rng.normal(size=(2, *padded.shape)).astype(np.float32)
        outputs[tuple(p - c for p, c in zip(padded.start, crop))] = data
        for piece in grid.pieces(key):
            if piece.box.intersection(out_box).is_empty():
                continue
            s_, e_ = piece.local.start, piece.local.stop
            part = data[:, s_[0] : e_[0], s_[1] : e_[1], s_[2] : e_[2]]
            acc.add(piece.box, part, ramps.weights(grid, piece), piece.coverage)
    out = np.zeros((2, *out_shape), dtype=np.float32)
    combiner = CellCombiner(np.float32, mode, "test")
    for start, ops in zip(schedule.starts, schedule.ops):
        for cell, out_slices, data_slices, weight, coverage in ops:
            combiner.add(cell, out[out_slices], outputs[start][data_slices], weight, coverage)
    combiner.check_done()
    expected = acc.result()
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-5)
    streamed = np.zeros((2, *out_shape), dtype=np.float32)
    schedule.run(streamed, (outputs[start] for start in schedule.starts), "test")
    assert np.allclose(streamed, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype, value", [(np.uint8, 201), (np.int32, 2**31 - 3), (np.float32, 0.3)])
def test_level_schedule_reproduces_agreeing_values(dtype: Any, value: Any) -> None:
    schedule = LevelSchedule((24, 14, 4), (3, 1, 1), (5, 4, 2), (2, 1, 1), "quadratic", dtype)
    out = np.zeros((1, 24, 14, 4), dtype=dtype)
    chunk = np.full((1, *schedule.padded), value, dtype=dtype)
    schedule.run(out, (chunk for _ in schedule.starts), "test")
    assert np.allclose(out, value, rtol=1e-6, atol=0) if np.dtype(dtype).kind == "f" else (out == value).all()
