"""Small volumes and infos for the backend tests."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch


def fafb_like_info() -> dict[str, Any]:
    """An info shaped like the quick start guide's FAFB v15 ``img_norm`` (float32, 1024x1024x1
    chunks, scales 4 nm to 64 nm), plus extra keys that only ``info_inherit_all_params`` keeps."""
    scales = []
    for factor in (1, 2, 4, 8, 16):
        res = [4 * factor, 4 * factor, 40]
        scales.append(
            {
                "key": f"{res[0]}_{res[1]}_40",
                "resolution": res,
                "voxel_offset": [0, 0, 0],
                "size": [262144 // factor, 131072 // factor, 7064],
                "chunk_sizes": [[1024, 1024, 1]],
                "encoding": "raw",
                "extra_param": "kept",
            }
        )
    return {
        "@type": "neuroglancer_multiscale_volume",
        "type": "image",
        "data_type": "float32",
        "num_channels": 1,
        "scales": scales,
        "mesh": "mesh_dir",
    }


def write_info_file(directory: str, info: dict[str, Any]) -> str:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "info"), "w") as f:
        json.dump(info, f)
    return directory


def small_info(
    data_type: str = "uint8",
    encoding: str = "raw",
    num_channels: int = 1,
    size: tuple[int, int, int] = (96, 80, 6),
    chunk: tuple[int, int, int] = (32, 32, 2),
    offset: tuple[int, int, int] = (10, 20, 3),
    resolutions: tuple[tuple[float, float, float], ...] = ((8, 8, 40),),
    layer_type: str = "image",
) -> dict[str, Any]:
    scales = []
    for res in resolutions:
        scale: dict[str, Any] = {
            "key": "_".join(str(r) for r in res),
            "resolution": list(res),
            "voxel_offset": list(offset),
            "size": list(size),
            "chunk_sizes": [list(chunk)],
            "encoding": encoding,
        }
        if encoding == "compressed_segmentation":
            scale["compressed_segmentation_block_size"] = [8, 8, 8]
        scales.append(scale)
    return {
        "@type": "neuroglancer_multiscale_volume",
        "type": layer_type,
        "data_type": data_type,
        "num_channels": num_channels,
        "scales": scales,
    }


def random_data(data_type: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if data_type == "float32":
        array = rng.standard_normal(shape).astype(np.float32)
    else:
        info = np.iinfo(data_type)
        array = rng.integers(
            max(info.min, -(2**62)), min(info.max, 2**62), size=shape, dtype=np.int64, endpoint=True
        )
        array = array.astype(data_type)
    if data_type in ("uint16", "uint32"):
        array = array.astype(np.int64)
    if data_type == "uint64":
        array = array.view(np.int64)
    return torch.from_numpy(array)


DTYPE_RULE = {
    "uint8": torch.uint8,
    "int8": torch.int8,
    "uint16": torch.int32,
    "int16": torch.int16,
    "uint32": torch.int64,
    "int32": torch.int32,
    "uint64": torch.int64,
    "float32": torch.float32,
}


def stored_array(data: torch.Tensor, data_type: str) -> np.ndarray:
    """CXYZ tensor ``data`` as the XYZC array of ``data_type`` that storage holds."""
    array = data.numpy()
    array = array.view(np.uint64) if data_type == "uint64" else array.astype(data_type)
    return array.transpose(1, 2, 3, 0)


def expected_region(
    whole: np.ndarray,
    start: tuple[int, ...],
    stop: tuple[int, ...],
    lo: tuple[int, int, int] = (10, 20, 3),
    shape: tuple[int, int, int] = (96, 80, 6),
) -> np.ndarray:
    """CXYZ of ``[start, stop)`` cut from ``whole`` (XYZC over the dataset of ``shape`` voxels at
    ``lo``, by default :func:`small_info`'s), zeros outside."""
    out = np.zeros((whole.shape[3], *(b - a for a, b in zip(start, stop))), dtype=whole.dtype)
    a = [max(s, o) for s, o in zip(start, lo)]
    b = [min(e, o + n) for e, o, n in zip(stop, lo, shape)]
    if all(x < y for x, y in zip(a, b)):
        part = whole[
            a[0] - lo[0] : b[0] - lo[0], a[1] - lo[1] : b[1] - lo[1], a[2] - lo[2] : b[2] - lo[2]
        ]
        out[
            :,
            a[0] - start[0] : b[0] - start[0],
            a[1] - start[1] : b[1] - start[1],
            a[2] - start[2] : b[2] - start[2],
        ] = part.transpose(3, 0, 1, 2)
    return out
