"""Reductions cut into strips (``PieceStore.reduce_strips``, ``Reducer._strips``) and writes
that hand their data over (``raw_chunks.handing_over``): the same bytes as a reduction of the
whole box, and chunk files written from the strips as they are."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zetta_utils import write_behind
from zetta_utils.layer.volumetric import VolumetricIndex, raw_chunks
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa_layer_processing.common import reduction, volumetric_apply_flow
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box, ChunkGrid

from .helpers import example_dir
from .test_chunk_grid_and_reduction import small_grids, stored_pieces


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grid=small_grids(),
    mode=st.sampled_from(["linear", "quadratic", "max"]),
    dtype=st.sampled_from(["uint8", "float32", "int16"]),
    data=st.data(),
)
def test_strips_hold_the_bytes_of_the_whole_box(
    tmp_path: Path, loops: str, grid: ChunkGrid, mode: str, dtype: str, data: st.DataObject
) -> None:
    """Any box, cut at any x positions (through bands, interiors and gaps), reduces to the
    same bytes strip by strip as whole."""
    rng = np.random.default_rng(sum(grid.counts) + len(dtype))
    outputs = {
        key: (rng.random(size=(2, *grid.padded(key).shape)) * 100).astype(dtype)
        for key in grid.keys()
    }
    store = stored_pieces(example_dir(tmp_path), grid, outputs, dtype)
    lo = [ax.padded(0)[0] for ax in grid.axes]
    hi = [ax.padded(ax.count - 1)[1] for ax in grid.axes]
    start = [data.draw(st.integers(lo[d], hi[d] - 1)) for d in range(3)]
    stop = [data.draw(st.integers(start[d] + 1, hi[d] + 2)) for d in range(3)]
    box = Box.of(start, stop)
    inner = list(range(start[0] + 1, stop[0]))
    cuts = sorted(data.draw(st.sets(st.sampled_from(inner), max_size=3))) if inner else []
    whole = store.reduce_box(box, np.dtype(dtype), mode)
    strips = store.reduce_strips(box, cuts, np.dtype(dtype), mode)
    edges = [start[0], *cuts, stop[0]]
    assert len(strips) == len(edges) - 1
    for (a, b), strip in zip(itertools.pairwise(edges), strips, strict=True):
        assert strip.shape == (2, b - a, *box.shape[1:])
        assert strip.strides[1] == strip.itemsize  # x fastest
        assert strip.tobytes() == whole[:, a - start[0] : b - start[0]].tobytes()


def _flow(tmp_path: Path, dst: Any, src: Any) -> Any:
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    return build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=(4, 4, 40),
        start_coord=(0, 0, 0),
        end_coord=(96, 64, 2),
        coord_resolution=(4, 4, 40),
        fn=lambda src: src,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[32, 32, 1], [16, 16, 1]],
        processing_crop_pads=[[4, 4, 0], [2, 2, 0]],
        processing_blend_pads=[[4, 4, 0], [2, 2, 0]],
        processing_blend_modes=["linear", "quadratic"],
        max_reduction_chunk_sizes=[64, 64, 1],
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        verbose=False,
    )


def _volumes(tmp_path: Path, name: str) -> tuple[Any, Any]:
    src = build_ts_layer(
        f"file://{tmp_path}/src",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[[4, 4, 40]],
        info_chunk_size=[16, 16, 1],
        info_dataset_size=[96, 64, 2],
        info_encoding="raw",
        info_overwrite=True,
    )
    dst = build_ts_layer(
        f"file://{tmp_path}/{name}",
        info_reference_path=f"file://{tmp_path}/src",
    )
    return src, dst


def test_a_flow_reduces_into_chunk_files_in_strips_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flow (c)'s reductions into local raw chunk files go in strips one chunk wide (counted),
    writing what the reductions of whole boxes write (and the source: an identity
    function)."""
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore

    src, _ = _volumes(tmp_path, "unused")
    idx = VolumetricIndex.from_coords((0, 0, 0), (96, 64, 2), (4, 4, 40))
    values = np.random.default_rng(3).integers(0, 256, (1, 96, 64, 2), dtype=np.uint8)
    src[idx] = torch.from_numpy(values)
    calls: list[int] = []
    real = PieceStore.reduce_strips

    def counted(self: PieceStore, box: Box, cuts: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(cuts))
        return real(self, box, cuts, *args, **kwargs)

    monkeypatch.setattr(PieceStore, "reduce_strips", counted)
    results = {}
    for strips in (True, False):
        monkeypatch.setattr(volumetric_apply_flow, "_STRIPS", [strips])
        _, dst = _volumes(tmp_path, f"dst_{strips}")
        calls.clear()
        mazepa.execute(_flow(tmp_path, dst, src), show_progress=False)
        results[strips] = np.asarray(dst[idx])
        # reduction chunks 64 and 32 voxels wide (the region is 96) over 16-voxel dst chunks:
        # 3 cuts and 1, in strips
        assert sorted(set(calls)) == ([1, 3] if strips else [0]), calls
    assert results[True].tobytes() == results[False].tobytes() == values.tobytes()


def test_a_deferred_write_keeps_handed_over_chunks_without_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside ``handing_over``, a deferred write of chunks that are blocks of the written data
    keeps those blocks (no copy); outside it, copies (the caller may reuse its buffers). The
    files hold the data either way."""
    import functools

    _, dst = _volumes(tmp_path, "dst")
    idx = VolumetricIndex.from_coords((0, 0, 0), (16, 32, 1), (4, 4, 40))
    kept: list[np.ndarray] = []
    real_defer = write_behind.defer

    def defer(key: str, fn: Any, nbytes: int = 0) -> None:
        assert isinstance(fn, functools.partial)
        kept.append(fn.args[2])  # write_chunk_file(directory, name, chunk, sync)
        real_defer(key, fn, nbytes)

    monkeypatch.setattr(write_behind, "defer", defer)
    for handed in (False, True):
        # x fastest, rows one chunk long: each 16 x 16 chunk is one block of it
        data = np.arange(512, dtype=np.uint16).astype(np.uint8).reshape(1, 1, 32, 16)
        data = data.transpose(0, 3, 2, 1)
        kept.clear()
        with write_behind.task_scope(True) as scope:
            if handed:
                with raw_chunks.handing_over():
                    dst[idx] = torch.from_numpy(data)
            else:
                dst[idx] = torch.from_numpy(data)
        scope.wait()
        assert len(kept) == 2
        assert all(np.shares_memory(chunk, data) == handed for chunk in kept)
        assert np.asarray(dst[idx]).tobytes() == data.tobytes()
    assert not raw_chunks.handed_over()


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_the_fused_cell_combination_matches_the_accumulating_loops(dtype: str) -> None:
    """``_blend.combine`` (a cell's pieces summed row by row, then stored) gives the bytes of a
    zeroed accumulator, ``accumulate`` per piece and ``store``: odd shapes, strided views,
    pieces of other types and layouts, weights with and without each dim's ramp."""
    kernels = reduction.KERNELS
    if kernels is None or not hasattr(kernels, "combine"):
        pytest.skip("the compiled loops are not built")
    rng = np.random.default_rng(len(dtype))
    acc_dtype = reduction.accumulator_dtype(np.dtype(dtype))
    for shape in [(1, 1, 1, 1), (2, 7, 5, 3), (1, 33, 4, 1), (3, 1, 9, 2)]:
        for count in (1, 2, 3, 4):
            subs = []
            for i in range(count):
                kind = dtype if i % 2 == 0 else "float32"
                big = rng.random((shape[0], shape[1] + 3, shape[2] + 2, shape[3])) * 200 - 50
                if np.dtype(kind).kind == "u":
                    big = np.abs(big)
                arr = big.astype(kind)
                sub = arr[:, 1 : 1 + shape[1], 2:, :]
                if i == 2:  # another layout: z, then y fastest
                    sub = np.ascontiguousarray(sub)
                subs.append(sub)
            weights = []
            for i in range(count):
                per_dim = [
                    None if (i + d) % 3 == 0 else rng.random(shape[d + 1]).astype(acc_dtype)
                    for d in range(3)
                ]
                weights.append(
                    None if i == 1 else reduction.Weights(per_dim[0], per_dim[1], per_dim[2])
                )
            is_int = np.dtype(dtype).kind in "iu"
            outer = np.zeros((shape[0], shape[1] + 1, shape[2], shape[3] + 1), dtype=dtype)
            fused = outer[:, 1:, :, 1:]
            kernels.combine(
                fused,
                subs,
                [None if w is None else (w.x, w.y, w.z) for w in weights],
                acc_dtype == np.float64,
                is_int,
            )
            acc = reduction.empty_xfast(shape[0], shape[1:], acc_dtype, zero=True)
            for sub, weight in zip(subs, weights, strict=True):
                reduction.accumulate(acc, sub, weight)
            expected = np.zeros(shape, dtype=dtype)
            reduction.store_accumulated(expected, acc, round_values=is_int)
            assert fused.tobytes() == expected.tobytes(), (shape, count)
            assert not outer[:, :1].any() and not outer[..., :1].any()  # nothing outside


def test_the_fused_cell_combination_checks_its_arguments() -> None:
    kernels = reduction.KERNELS
    if kernels is None or not hasattr(kernels, "combine"):
        pytest.skip("the compiled loops are not built")
    dst = np.zeros((1, 4, 4, 1), dtype=np.uint8)
    sub = np.ones((1, 4, 4, 1), dtype=np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        kernels.combine(dst, [np.ones((1, 4, 3, 1), np.uint8)], [None], False, True)
    with pytest.raises(ValueError, match="as many weights"):
        kernels.combine(dst, [sub, sub], [None], False, True)
    with pytest.raises(ValueError, match="weight y"):
        kernels.combine(dst, [sub], [(None, np.ones(3, np.float32), None)], False, True)
    with pytest.raises(ValueError, match="weight x"):
        kernels.combine(dst, [sub], [(np.ones(4, np.float64), None, None)], False, True)
    assert not dst.any()
