"""The inputs a function gets for the bottom level's chunks when they are sliced from the data
prefetched for the chunk above (``SubchunkablePlan.sliced_run_op``): each chunk's own copy, the
arguments that are not layers passed as they are, in the order of ``op_kwargs``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import torch

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

from .conftest import MakeVolume
from .helpers import RES, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (40, 40, 2)
# two levels, both cropped and blended: the bottom chunks' inputs overlap
LEVELS: dict[str, Any] = {
    "processing_chunk_sizes": [[20, 20, 1], [8, 8, 1]],
    "processing_crop_pads": [[4, 4, 0], [2, 2, 0]],
    "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    "processing_blend_modes": ["linear", "quadratic"],
}


def add_one_in_place(src: torch.Tensor) -> torch.Tensor:
    return src.add_(1)


def scaled(src: torch.Tensor, factor: int, mask: torch.Tensor) -> torch.Tensor:
    return src * factor * mask


def keyword_order(**kwargs: Any) -> torch.Tensor:
    names = list(kwargs)
    assert names == ["src", "offset", "mask"], names
    return kwargs["src"] + kwargs["offset"]


def run_flow(tmp_path: Path, dst: Any, fn: Any, op_kwargs: dict[str, Any]) -> None:
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=fn,
        op_kwargs=op_kwargs,
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        verbose=False,
        **LEVELS,
    )
    mazepa.execute(flow, show_progress=False)


def volume_of(make_volume: MakeVolume, name: str, data: np.ndarray) -> Any:
    layer = make_volume(name, size=SIZE, chunk=(16, 16, 1))
    write_array(layer, data)
    return layer


def test_a_function_changing_its_input_in_place_changes_no_other_chunk(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    data = np.random.default_rng(5).integers(0, 200, (1, *SIZE), dtype=np.uint8)
    src = volume_of(make_volume, "src", data)
    dst = make_volume("dst", size=SIZE, chunk=(16, 16, 1))
    run_flow(tmp_path, dst, add_one_in_place, {"src": src})
    # a chunk reading the input a neighbour changed would add 2 in the overlap
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data + 1)
    assert np.array_equal(read_array(src, (0, 0, 0), SIZE), data)


def test_arguments_that_are_not_layers_pass_as_they_are(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    rng = np.random.default_rng(6)
    data = rng.integers(0, 100, (1, *SIZE), dtype=np.uint8)
    mask = rng.integers(0, 2, (1, *SIZE), dtype=np.uint8)
    src = volume_of(make_volume, "src", data)
    mask_layer = volume_of(make_volume, "mask", mask)
    dst = make_volume("dst", size=SIZE, chunk=(16, 16, 1))
    run_flow(tmp_path, dst, scaled, {"src": src, "factor": 2, "mask": mask_layer})
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data * 2 * mask)


def test_the_function_gets_its_keyword_arguments_in_the_order_of_op_kwargs(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    data = np.random.default_rng(7).integers(0, 200, (1, *SIZE), dtype=np.uint8)
    src = volume_of(make_volume, "src", data)
    mask = volume_of(make_volume, "mask", np.ones((1, *SIZE), dtype=np.uint8))
    dst = make_volume("dst", size=SIZE, chunk=(16, 16, 1))
    run_flow(tmp_path, dst, keyword_order, {"src": src, "offset": 3, "mask": mask})
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data + 3)
