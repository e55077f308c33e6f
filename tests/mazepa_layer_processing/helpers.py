"""Helpers for the apply-flow tests: small arrays in and out of layers."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer

RES = (4, 4, 40)
BLEND_TWO_LEVELS: dict[str, Any] = {
    "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
    "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
    "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    "processing_blend_modes": ["linear", "quadratic"],
    "max_reduction_chunk_sizes": [32, 32, 1],
}
"""Crop and blend on two levels, reductions of 32 x 32 x 1: the flow (c)-shaped arguments that the
intermediaries tests run on a 64 x 64 x 2 volume."""


def example_dir(tmp_path: Path) -> Path:
    """An empty folder for one Hypothesis example; the previous example's volumes are deleted.

    A test's ``tmp_path`` is shared by all its examples, so without this a property test keeps
    every example's volumes on disk (hundreds of MB per run).
    """
    root = tmp_path / "example"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    return root


def write_array(
    layer: VolumetricLayer, array: np.ndarray, offset: Sequence[int] = (0, 0, 0)
) -> None:
    """Write CXYZ ``array`` with its first voxel at ``offset`` (voxels at RES)."""
    stop = [o + s for o, s in zip(offset, array.shape[1:], strict=True)]
    layer[VolumetricIndex.from_coords(offset, stop, RES)] = torch.from_numpy(
        np.ascontiguousarray(array)
    )


def read_array(layer: VolumetricLayer, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
    return layer[VolumetricIndex.from_coords(start, stop, RES)].numpy().copy()


def random_array(shape: Sequence[int], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=tuple(shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=tuple(shape), dtype=dtype)


def make_volume_at(
    path: str,
    size: Sequence[int] = (64, 64, 4),
    dtype: str = "uint8",
    chunk: Sequence[int] = (16, 16, 1),
    offset: Sequence[int] = (0, 0, 0),
    channels: int = 1,
    **kwargs: object,
) -> VolumetricLayer:
    """A fresh raw precomputed volume at ``path`` (a local directory), through TensorStore."""
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    return build_ts_layer(
        f"file://{path}",
        info_type="image",
        info_data_type=dtype,
        info_num_channels=channels,
        info_scales=[list(RES)],
        info_chunk_size=list(chunk),
        info_dataset_size=list(size),
        info_voxel_offset=list(offset),
        info_encoding="raw",
        **kwargs,  # type: ignore[arg-type]
    )
