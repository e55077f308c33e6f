"""The piece geometry of a level and the combination of pieces, against plain NumPy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zetta_utils.geometry import Vec3D
from zetta_utils.mazepa_layer_processing.common import reduction
from zetta_utils.mazepa_layer_processing.common.chunk_grid import (
    AxisGrid,
    Box,
    ChunkGrid,
    RampCache,
)
from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore
from zetta_utils.mazepa_layer_processing.common.reduction import (
    CellCombiner,
    LevelSchedule,
    to_output_dtype,
)

from .helpers import example_dir


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
    ramps = RampCache(mode)
    lo = ax.padded(0)[0]
    hi = ax.padded(ax.count - 1)[1]
    total = np.zeros(hi - lo)
    hits = np.zeros(hi - lo, dtype=int)
    for j in range(ax.count):
        for label in ax.labels:
            a, b = ax.piece(j, label)
            # a band shared with a neighbour ramps (up on its A side, down on its C side)
            w = ramps.ramp(ax.blend, falling=label == 2) if ax.shared(j, label) else np.ones(b - a)
            total[a - lo : b - lo] += w
            hits[a - lo : b - lo] += 1
            if ax.shared(j, label):
                expected = reference_ramp(ax.blend, mode)
                assert np.allclose(w, expected if label == 0 else expected[::-1])
    covered = hits > 0
    # gaps are covered by nothing; everything else sums to exactly one (up to rounding)
    assert np.allclose(total[covered], 1.0, atol=1e-12)
    if ax.gap == 0:
        assert covered.all()


def reference_blend(
    grid: ChunkGrid, outputs: dict[Any, np.ndarray], mode: str
) -> tuple[Box, np.ndarray]:
    """The combination of padded chunk outputs over the whole padded region, in plain NumPy:
    each output times the product of per-dim weights (the reference ramp on a side shared with a
    neighbour, ones elsewhere), summed; or the maximum for ``max``."""
    lo = [ax.padded(0)[0] for ax in grid.axes]
    hi = [ax.padded(ax.count - 1)[1] for ax in grid.axes]
    channels = next(iter(outputs.values())).shape[0]
    total = np.full(
        (channels, *[h - lo_ for lo_, h in zip(lo, hi)]), -np.inf if mode == "max" else 0.0
    )
    for key, data in outputs.items():
        weight = np.ones(data.shape[1:])
        for d, ax in enumerate(grid.axes):
            w = np.ones(ax.chunk + 2 * ax.blend)
            if ax.blend and mode != "max":
                ramp = reference_ramp(ax.blend, mode)
                if key[d] > 0:
                    w[: 2 * ax.blend] = ramp
                if key[d] < ax.count - 1:
                    w[-2 * ax.blend :] = ramp[::-1]
            shape = [1, 1, 1]
            shape[d] = w.size
            weight = weight * w.reshape(shape)
        p = grid.padded(key)
        sl = (slice(None), *[slice(p.start[d] - lo[d], p.stop[d] - lo[d]) for d in range(3)])
        if mode == "max":
            total[sl] = np.maximum(total[sl], data)
        else:
            total[sl] += data.astype(np.float64) * weight
    return Box.of(lo, hi), total


@st.composite
def small_grids(draw: st.DrawFn) -> ChunkGrid:
    axes_ = []
    for d in range(3):
        chunk = draw(st.integers(1, 6 if d < 2 else 2))
        blend = draw(st.integers(0, chunk // 2))
        axes_.append(
            AxisGrid(
                origin=draw(st.integers(-3, 3)),
                chunk=chunk,
                blend=blend,
                count=draw(st.integers(1, 3)),
            )
        )
    return ChunkGrid((axes_[0], axes_[1], axes_[2]))


def stored_pieces(
    path: Path, grid: ChunkGrid, outputs: dict[Any, np.ndarray], data_type: str
) -> PieceStore:
    channels = next(iter(outputs.values())).shape[0]
    store = PieceStore(f"file://{path}", Vec3D(4, 4, 40), grid, data_type, channels)
    store.create()
    for key, data in outputs.items():
        store.write_chunk(key, data)
    return store


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grid=small_grids(), mode=st.sampled_from(["linear", "quadratic", "max"]), data=st.data())
def test_stored_pieces_reduce_over_any_box_like_a_numpy_blend(
    tmp_path: Path, loops: str, grid: ChunkGrid, mode: str, data: st.DataObject
) -> None:
    rng = np.random.default_rng(sum(grid.counts))
    outputs = {
        key: rng.normal(size=(2, *grid.padded(key).shape)).astype(np.float32) for key in grid.keys()
    }
    store = stored_pieces(example_dir(tmp_path), grid, outputs, "float32")
    region, expected = reference_blend(grid, outputs, mode)
    lo = [data.draw(st.integers(region.start[d], region.stop[d] - 1)) for d in range(3)]
    hi = [data.draw(st.integers(lo[d] + 1, region.stop[d])) for d in range(3)]
    box = Box.of(lo, hi)
    out = store.reduce_box(box, np.float32, mode)
    assert out.shape == (2, *box.shape)
    assert np.allclose(
        out, expected[(slice(None), *box.slices_in(region)[1:])], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "dtype, value",
    [(np.uint8, 255), (np.int32, 2**31 - 7), (np.uint64, 2**62 + 12345), (np.float32, 0.1)],
)
def test_reduction_reproduces_agreeing_values_exactly(
    tmp_path: Path, loops: str, dtype: Any, value: Any
) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (12, 12, 2)), (4, 4, 1), (2, 2, 0))
    outputs = {
        key: np.full((1, *grid.padded(key).shape), value, dtype=dtype) for key in grid.keys()
    }
    store = stored_pieces(tmp_path, grid, outputs, np.dtype(dtype).name)
    out = store.reduce_box(Box((-2, -2, 0), (14, 14, 2)), dtype, "quadratic")
    if np.dtype(dtype).kind == "f":
        assert np.allclose(out, value, rtol=1e-6)
    else:
        assert (out == value).all(), dtype  # 2**62 + 12345 is not a float64: no float sum here


def test_max_mode_takes_the_maximum_of_overlapping_pieces(tmp_path: Path) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (8, 1, 1)), (4, 1, 1), (1, 0, 0))
    values = {(0, 0, 0): 3, (1, 0, 0): 9}
    outputs = {key: np.full((1, 6, 1, 1), values[key], dtype=np.uint8) for key in grid.keys()}
    store = stored_pieces(tmp_path, grid, outputs, "uint8")
    assert store.reduce_box(Box((0, 0, 0), (8, 1, 1)), np.uint8, "max")[0, :, 0, 0].tolist() == [
        3,
        3,
        3,
        9,
        9,
        9,
        9,
        9,
    ]


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


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    chunk=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
    blend_frac=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 1)),
    crop=st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 1)),
    counts=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2)),
    mode=st.sampled_from(["linear", "quadratic", "max"]),
)
def test_level_schedule_agrees_with_piece_by_piece_accumulation(
    loops: str,
    chunk: tuple[int, int, int],
    blend_frac: tuple[int, int, int],
    crop: tuple[int, int, int],
    counts: tuple[int, int, int],
    mode: str,
) -> None:
    blend = (
        min(blend_frac[0], chunk[0] // 2),
        min(blend_frac[1], chunk[1] // 2),
        min(blend_frac[2], chunk[2] // 2),
    )
    region = (counts[0] * chunk[0], counts[1] * chunk[1], counts[2] * chunk[2])
    out_shape = (region[0] - 2 * crop[0], region[1] - 2 * crop[1], region[2] - 2 * crop[2])
    if min(out_shape) <= 0:
        return
    schedule = LevelSchedule(out_shape, crop, chunk, blend, mode, np.float32)
    grid = ChunkGrid.over(Box((0, 0, 0), region), chunk, blend)
    out_box = Box(crop, (crop[0] + out_shape[0], crop[1] + out_shape[1], crop[2] + out_shape[2]))
    rng = np.random.default_rng(sum(chunk) + 7 * sum(counts))
    by_key = {
        key: rng.normal(size=(2, *grid.padded(key).shape)).astype(np.float32) for key in grid.keys()
    }
    outputs = {
        tuple(p - c for p, c in zip(grid.padded(key).start, crop)): v for key, v in by_key.items()
    }
    whole, blended = reference_blend(grid, by_key, mode)
    expected = blended[(slice(None), *out_box.slices_in(whole)[1:])]
    out = np.zeros((2, *out_shape), dtype=np.float32)
    combiner = CellCombiner(np.float32, mode, "test")
    for start, ops in zip(schedule.starts, schedule.ops):
        for cell, out_slices, data_slices, weight, coverage in ops:
            combiner.add(cell, out[out_slices], outputs[start][data_slices], weight, coverage)
    combiner.check_done()
    assert np.allclose(out, expected, rtol=1e-5, atol=1e-5)
    streamed = np.zeros((2, *out_shape), dtype=np.float32)
    schedule.run(streamed, (outputs[start] for start in schedule.starts), "test")
    assert np.allclose(streamed, expected, rtol=1e-5, atol=1e-5)
    # the band regions (one compact buffer each) are disjoint and cover exactly the blended voxels
    in_regions = np.zeros(out_shape, dtype=np.int32)
    for slices, shape in schedule.regions:
        in_regions[slices[1:]] += 1
        assert in_regions[slices[1:]].shape == shape
    blended_voxels = np.zeros(out_shape, dtype=bool)
    for ops in schedule.ops:
        for _cell, out_slices, _data_slices, _weight, coverage in ops:
            if coverage > 1:
                blended_voxels[out_slices[1:]] = True
    assert in_regions.max(initial=0) <= 1
    assert ((in_regions == 1) == blended_voxels).all()


@pytest.mark.parametrize(
    "dtype, value", [(np.uint8, 201), (np.int32, 2**31 - 3), (np.float32, 0.3)]
)
def test_level_schedule_reproduces_agreeing_values(loops: str, dtype: Any, value: Any) -> None:
    schedule = LevelSchedule((24, 14, 4), (3, 1, 1), (5, 4, 2), (2, 1, 1), "quadratic", dtype)
    out = np.zeros((1, 24, 14, 4), dtype=dtype)
    chunk = np.full((1, *schedule.padded), value, dtype=dtype)
    schedule.run(out, (chunk for _ in schedule.starts), "test")
    assert (
        np.allclose(out, value, rtol=1e-6, atol=0)
        if np.dtype(dtype).kind == "f"
        else (out == value).all()
    )


KERNEL_TYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float32,
    np.float64,
]


@pytest.mark.parametrize("dtype", KERNEL_TYPES, ids=lambda t: np.dtype(t).name)
def test_compiled_loops_agree_with_numpy(dtype: Any) -> None:
    if reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    np_type = np.dtype(dtype)
    acc_type = reduction.accumulator_dtype(np_type)
    rng = np.random.default_rng(np_type.num)
    # strided views (z fastest, a slice in y) as well as x-fastest arrays
    acc = rng.normal(scale=50, size=(2, 9, 8, 3)).astype(acc_type)[:, :, 1:7]
    src = (
        rng.integers(0, 2, acc.shape) if np_type.kind == "b" else rng.integers(0, 100, acc.shape)
    ).astype(np_type)
    weights = reduction.Weights.of(
        [rng.random(9), None, rng.random(3)], (0, 0, 0), acc.shape[1:], acc_type
    )
    for w in (weights, None):
        compiled, plain = acc.copy(), acc.copy()
        reduction.accumulate(compiled, src, w)
        product = 1.0 if w is None else w.product()
        plain += src.astype(acc_type) * product
        assert np.allclose(compiled, plain, rtol=1e-6, atol=1e-4)
    # storing rounds half to even like np.rint, and casts
    values = acc.copy()
    values[0, :4, 0, 0] = [0.5, 1.5, 2.5, -0.5]
    if np_type.kind in "iub":
        info = np.iinfo(np.int64) if np_type.kind == "b" else np.iinfo(np_type)
        values = np.clip(values, max(info.min, -(2**52)), min(info.max, 2**52))
    if np_type.kind == "u":
        values = np.abs(values)
    round_values = np_type.kind in "iub"
    out = reduction.empty_xfast(2, values.shape[1:], np_type)
    reduction.store_accumulated(out, values, round_values)
    expected = np.empty(values.shape, np_type)
    np.copyto(expected, np.rint(values) if round_values else values, casting="unsafe")
    assert np.array_equal(out, expected)


def test_compiled_apply_checks_its_plan_before_writing() -> None:
    if reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    out = np.zeros((1, 8, 8, 1), np.uint8)
    data = np.ones((1, 4, 4, 1), np.uint8)
    buffer = np.zeros((1, 4, 8, 1), np.float32)
    weights = np.ones(4, np.float32)
    good = [-1, 0, 0, 0, 0, 0, 0, 4, 4, 1, -1, -1, -1]
    outside = [-1, 6, 0, 0, 0, 0, 0, 4, 4, 1, -1, -1, -1]  # x 6..10 of an output of 8

    def plan(*rows: list[int]) -> Any:
        return np.array(rows, np.int64)

    with pytest.raises(ValueError, match="a piece lies outside its arrays"):
        reduction.KERNELS.apply(out, data, [buffer], plan(good, outside), weights)
    assert not out.any()  # the good piece before it was not written either
    with pytest.raises(TypeError, match="data must have the output's type"):
        reduction.KERNELS.apply(out, data.astype(np.int16), [buffer], plan(good), weights)
    with pytest.raises(ValueError, match="names a buffer that is not given"):
        reduction.KERNELS.apply(out, data, [buffer], plan([1, *good[1:]]), weights)
    with pytest.raises(ValueError, match="weights missing, short"):
        reduction.KERNELS.apply(
            out, data, [buffer], plan([0, 0, 0, 0, 0, 0, 0, 4, 4, 1, 1, -1, -1]), weights
        )
    with pytest.raises(ValueError, match="int64 rows of 13"):
        reduction.KERNELS.apply(out, data, [buffer], np.zeros(12, np.int64), weights)
    reduction.KERNELS.apply(
        out, data, [buffer], plan(good, [0, 0, 2, 0, 0, 0, 0, 4, 4, 1, 0, -1, -1]), weights * 0.5
    )
    assert out[:, :4, :4].all() and not out[:, 4:].any() and not out[:, :, 4:].any()
    assert (
        (buffer[:, :, 2:6] == 0.5).all()
        and not buffer[:, :, :2].any()
        and not buffer[:, :, 6:].any()
    )


def test_compiled_store_all_rounds_clears_and_checks_its_boxes_first() -> None:
    if reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    out = np.zeros((2, 8, 6, 1), np.uint8).transpose(0, 1, 2, 3)
    bands = [np.full((2, 8, 2, 1), 2.5, np.float32), np.full((2, 3, 4, 1), 7.4, np.float64)]
    starts = np.array([[0, 0, 0], [5, 2, 0]], np.int64)
    with pytest.raises(ValueError, match="a buffer lies outside out"):
        reduction.KERNELS.store_all(out, bands, np.array([[0, 0, 0], [6, 2, 0]], np.int64), True)
    with pytest.raises(ValueError, match="one start per buffer"):
        reduction.KERNELS.store_all(out, bands, starts[:1], True)
    assert not out.any() and (bands[0] == 2.5).all()  # nothing written or cleared
    reduction.KERNELS.store_all(out, bands, starts, True)
    expected = np.zeros_like(out)
    expected[:, :, 0:2] = 2  # rint: half to even
    expected[:, 5:8, 2:6] = 7
    assert np.array_equal(out, expected)
    assert not bands[0].any() and not bands[1].any()  # cleared for the next chunk


@pytest.mark.parametrize("io", ["files", "kvstore"])
def test_intermediaries_are_a_precomputed_volume_tensorstore_reads(tmp_path: Path, io: str) -> None:
    import tensorstore as ts

    # written as files directly, or through TensorStore's key-value store as remote ones are
    grid = ChunkGrid.over(Box((0, 0, 0), (12, 8, 2)), (4, 4, 1), (1, 1, 0))
    rng = np.random.default_rng(5)
    outputs = {
        key: rng.integers(0, 60000, (2, *grid.padded(key).shape)).astype(np.uint16)
        for key in grid.keys()
    }
    store = PieceStore(f"file://{tmp_path}", Vec3D(4, 4, 40), grid, "uint16", 2)
    if io == "kvstore":
        store._is_local = False
    store.create()
    for key, data in outputs.items():
        store.write_chunk(key, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "pieces"]
    pieces = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{tmp_path}/pieces"}).result()
    assert (
        store.interior is not None and next(iter(store.offsets)) == store.interior
    )  # the interior first
    for key, data in outputs.items():
        k = store._linear(key)
        row = pieces[:, 0:1, k : k + 1].read().result()  # (P, 1, 1, C)
        for label in store.offsets:
            piece = store._unpack(row[:, 0, 0, :].T, 0, label)
            lo = [ax.offset_in_padded(lab) for ax, lab in zip(grid.axes, label)]
            n = grid.tile_shape(label)
            assert np.array_equal(
                piece, data[:, lo[0] : lo[0] + n[0], lo[1] : lo[1] + n[1], lo[2] : lo[2] + n[2]]
            )
    # and reductions read them back by byte range, whichever way
    region, expected = reference_blend(
        grid, {k: v.astype(np.float32) for k, v in outputs.items()}, "linear"
    )
    out = store.reduce_box(region, np.uint16, "linear")
    assert (
        np.abs(out.astype(np.int64) - np.rint(expected)).max() <= 1
    )  # float32 sums vs the reference


@pytest.mark.parametrize("io", ["files", "kvstore"])
def test_a_missing_intermediary_chunk_is_a_clear_error(tmp_path: Path, io: str) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (8, 4, 1)), (4, 4, 1), (1, 0, 0))
    outputs = {key: np.ones((1, *grid.padded(key).shape), np.uint8) for key in grid.keys()}
    store = stored_pieces(tmp_path, grid, outputs, "uint8")
    if io == "kvstore":
        store._is_local = False
    Path(store._local_file((1, 0, 0))).unlink()
    with pytest.raises(
        FileNotFoundError, match=r"intermediary chunk .*pieces/4_4_40/0-\d+_0-1_1-2 is missing"
    ):
        store.reduce_box(Box((0, 0, 0), (8, 4, 1)), np.uint8, "linear")


def test_intermediaries_of_another_layout_are_refused(tmp_path: Path) -> None:
    import json

    grid = ChunkGrid.over(Box((0, 0, 0), (8, 4, 1)), (4, 4, 1), (1, 0, 0))
    store = stored_pieces(
        tmp_path,
        grid,
        {key: np.ones((1, *grid.padded(key).shape), np.uint8) for key in grid.keys()},
        "uint8",
    )
    assert PieceStore.from_manifest(store.path).row_size == store.row_size
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["layout"]  # as written before the layout had a version: two volumes
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match="have layout 1, this version of zetta_utils reads layout 2"
    ):
        PieceStore.from_manifest(store.path)


def test_a_truncated_intermediary_chunk_is_a_clear_error(tmp_path: Path) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (8, 4, 1)), (4, 4, 1), (1, 0, 0))
    store = stored_pieces(
        tmp_path,
        grid,
        {key: np.ones((1, *grid.padded(key).shape), np.uint8) for key in grid.keys()},
        "uint8",
    )
    path = Path(store._local_file((1, 0, 0)))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(
        ValueError,
        match=(
            rf"intermediary chunk .*0-\d+_0-1_1-2 holds {store.row_size - 3} bytes, "
            rf"expected {store.row_size}"
        ),
    ):
        store.reduce_box(Box((0, 0, 0), (8, 4, 1)), np.uint8, "linear")


def _rows(store: PieceStore, keys: list[Any]) -> list[np.ndarray]:
    return store._read_rows([(key, 0, store.row_size) for key in keys])


def test_released_rows_leave_their_files_to_later_rows(tmp_path: Path) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (12, 8, 1)), (4, 4, 1), (1, 1, 0))
    keys = list(grid.keys())
    rng = np.random.default_rng(7)
    outputs = {
        key: rng.integers(0, 250, (2, *grid.padded(key).shape)).astype(np.uint8) for key in keys
    }
    store = stored_pieces(tmp_path, grid, {key: outputs[key] for key in keys[:4]}, "uint8")
    expected = {key: row for key, row in zip(keys[:4], _rows(store, keys[:4]), strict=True)}
    released = keys[:2]
    inodes = {os.stat(store._local_file(key)).st_ino for key in released}
    store.delete_pieces(released)
    store.delete_pieces(released)  # again: nothing left to release
    pool = Path(store._pool_dir)
    assert len(list(pool.iterdir())) == 2
    for key in released:
        with pytest.raises(FileNotFoundError, match="is missing"):
            _rows(store, [key])
    for key in keys[4:]:
        store.write_chunk(key, outputs[key])
    assert not list(pool.iterdir())  # both pooled files were taken ...
    assert {
        os.stat(store._local_file(key)).st_ino for key in keys[4:]
    } == inodes  # ... by the new rows
    # which read back right, as do the rows kept
    fresh = stored_pieces(
        tmp_path / "fresh", grid, {key: outputs[key] for key in keys[4:]}, "uint8"
    )
    for key, row in zip(keys[4:], _rows(store, keys[4:]), strict=True):
        assert np.array_equal(row, _rows(fresh, [key])[0])
    for key, row in zip(keys[2:4], _rows(store, keys[2:4]), strict=True):
        assert np.array_equal(row, expected[key])


def test_a_pooled_file_longer_than_a_row_is_cut_to_it(tmp_path: Path) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (8, 4, 1)), (4, 4, 1), (1, 0, 0))
    data = {key: np.full((1, *grid.padded(key).shape), 3, np.uint8) for key in grid.keys()}
    store = stored_pieces(tmp_path, grid, {(0, 0, 0): data[(0, 0, 0)]}, "uint8")
    pool = Path(store._pool_dir)
    pool.mkdir()
    (pool / "old").write_bytes(b"\x07" * (10 * store.row_size))
    store.write_chunk((1, 0, 0), data[(1, 0, 0)])
    assert not (pool / "old").exists()
    assert os.path.getsize(store._local_file((1, 0, 0))) == store.row_size
    assert (_rows(store, [(1, 0, 0)])[0] == 3).all()


def test_a_row_takes_a_file_released_after_the_pool_was_listed(tmp_path: Path) -> None:
    # The pool is listed once per batch of rows; names another writer took since are skipped,
    # and files released since are found by listing again.
    grid = ChunkGrid.over(Box((0, 0, 0), (24, 4, 1)), (4, 4, 1), (1, 0, 0))
    keys = list(grid.keys())
    outputs = {
        key: np.full((1, *grid.padded(key).shape), k + 1, np.uint8) for k, key in enumerate(keys)
    }
    store = stored_pieces(tmp_path, grid, {key: outputs[key] for key in keys[:3]}, "uint8")
    pool = Path(store._pool_dir)
    store.delete_pieces(keys[:2])
    store.write_chunk(keys[3], outputs[keys[3]])  # lists both pooled files, takes one
    (taken_by_another,) = list(pool.iterdir())
    taken_by_another.unlink()
    released = os.stat(store._local_file(keys[2])).st_ino
    store.delete_pieces([keys[2]])
    store.write_chunk(keys[4], outputs[keys[4]])
    assert os.stat(store._local_file(keys[4])).st_ino == released
    assert not list(pool.iterdir())
    store.write_chunk(keys[5], outputs[keys[5]])  # the pool is empty: a new file
    for key, row in zip(keys[3:], _rows(store, keys[3:]), strict=True):
        assert (row == outputs[key].flat[0]).all()


def test_concurrent_writers_each_take_their_own_pooled_file(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    grid = ChunkGrid.over(Box((0, 0, 0), (64, 8, 1)), (4, 4, 1), (1, 1, 0))
    keys = list(grid.keys())
    outputs = {
        key: np.full((1, *grid.padded(key).shape), k % 251, np.uint8) for k, key in enumerate(keys)
    }
    half = len(keys) // 2
    store = stored_pieces(tmp_path, grid, {key: outputs[key] for key in keys[:half]}, "uint8")
    store.delete_pieces(keys[: half - 4])
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.write_chunk(key, outputs[key]), keys[half:]))
    assert (
        len({os.stat(store._local_file(key)).st_ino for key in keys[half - 4 :]})
        == len(keys) - half + 4
    )
    for key, row in zip(keys[half:], _rows(store, keys[half:]), strict=True):
        assert (row == outputs[key].flat[0]).all()
