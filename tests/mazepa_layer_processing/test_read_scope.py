"""A subchunkable run reads the inputs it does not write through caches of its own execution
(``zetta_utils.layer.volumetric.read_cache``); inputs it writes are read as before."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D
from zetta_utils.layer.volumetric import read_cache
from zetta_utils.layer.volumetric.cloudvol import CVBackend, build_cv_layer
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

from .conftest import MakeVolume
from .helpers import RES, random_array, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (64, 64, 2)


def identity(src: torch.Tensor) -> torch.Tensor:
    return src


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    read_cache.clear()
    yield
    read_cache.clear()


def _flow(src: Any, dst: Any, tmp: Path) -> Any:
    # the top level's padded regions (its chunks read their input once) over 16-voxel storage
    # chunks: neighbouring regions share storage chunks, so prefetches go through a cache
    return build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=identity,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        processing_crop_pads=[[3, 3, 0], [2, 2, 0]],
        processing_blend_pads=[[1, 1, 0], [2, 2, 0]],
        level_intermediaries_dirs=[f"file://{tmp}"] * 2,
        verbose=False,
    )


def _cv_readers() -> list[Any]:
    return [r for r in read_cache.readers() if isinstance(r, CVBackend)]


def test_an_input_the_run_only_reads_goes_through_a_cache_of_the_run(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    make_volume("src", size=SIZE, chunk=(16, 16, 1))
    src = build_cv_layer(f"file://{tmp_path}/src")  # CloudVolume: cached only within a run
    data = random_array((1, *SIZE), "uint8", seed=5)
    write_array(src, data)
    dst = make_volume("dst", size=SIZE, chunk=(16, 16, 1))
    mazepa.execute(_flow(src, dst, tmp_path / "tmp"), show_progress=False)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)
    first = _cv_readers()
    assert len(first) == 1 and first[0].cache_bytes_limit > 0
    # the source changes between runs (here through this process: its cache is dropped; another
    # process's write is covered by the next run's new scope): the next run reads the new data
    data2 = random_array((1, *SIZE), "uint8", seed=6)
    write_array(src, data2)
    mazepa.execute(_flow(src, dst, tmp_path / "tmp"), show_progress=False)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data2)
    second = _cv_readers()
    assert len(second) == 1 and second[0] is not first[0]


def test_an_input_the_run_writes_is_never_read_through_a_scoped_cache(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    make_volume("vol", size=SIZE, chunk=(16, 16, 1))
    vol = build_cv_layer(f"file://{tmp_path}/vol")
    data = random_array((1, *SIZE), "uint8", seed=7)
    write_array(vol, data)
    # in place: src is dst
    mazepa.execute(_flow(vol, vol, tmp_path / "tmp"), show_progress=False)
    assert np.array_equal(read_array(vol, (0, 0, 0), SIZE), data)
    assert not _cv_readers()
