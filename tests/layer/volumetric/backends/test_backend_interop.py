"""What either backend writes, plain TensorStore and plain CloudVolume read back identically, and
the reverse: volumes written by the plain libraries read identically through both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import torch
from cloudvolume import CloudVolume

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import CVBackend
from zetta_utils.layer.volumetric.precomputed import PrecomputedBackend, write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import random_data, small_info, stored_array

FULL = VolumetricIndex.from_coords((10, 20, 3), (106, 100, 9), Vec3D(8, 8, 40))
SHAPE = (96, 80, 6)

# every combination both libraries read and write correctly
COMBOS = [
    (dt, "raw", 1)
    for dt in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
] + [
    ("float32", "raw", 2),
    ("uint8", "png", 1),
    ("uint8", "jpeg", 1),
    ("uint32", "compressed_segmentation", 1),
    ("uint64", "compressed_segmentation", 1),
]


def plain_ts_read(path: str) -> np.ndarray:
    # a missing chunk is an error here: everything the backends wrote must be there
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": f"file://{path}/",
        "fill_missing_data_reads": False,
    }
    return np.asarray(ts.open(spec).result().read().result())


def plain_cv_read(path: str) -> np.ndarray:
    cv = CloudVolume(f"file://{path}", fill_missing=False, progress=False)
    return np.asarray(cv[:, :, :])


def backends(path: str) -> dict[str, PrecomputedBackend]:
    return {"ts": TSBackend(path), "cv": CVBackend(path)}


def sample_data(data_type: str, encoding: str, num_channels: int) -> torch.Tensor:
    if encoding == "jpeg":  # smooth, so that lossy decoding stays close to the input
        x = torch.linspace(0, 1, SHAPE[0])[:, None, None]
        y = torch.linspace(0, 1, SHAPE[1])[None, :, None]
        return (200 * x * y + 20).expand(*SHAPE)[None].to(torch.uint8).contiguous()
    data = random_data(data_type, (num_channels, *SHAPE))
    data[:, :32, :32, :2] = 0  # an all-zero chunk must be stored too
    return data


@pytest.mark.parametrize("writer", ["ts", "cv"])
@pytest.mark.parametrize(("data_type", "encoding", "num_channels"), COMBOS)
def test_backend_writes_read_everywhere(
    tmp_path: Path, writer: str, data_type: str, encoding: str, num_channels: int
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type=data_type, encoding=encoding, num_channels=num_channels))
    data = sample_data(data_type, encoding, num_channels)
    backends(path)[writer].write(FULL, data)
    expected = stored_array(data, data_type)
    reads = {"plain_ts": plain_ts_read(path), "plain_cv": plain_cv_read(path)}
    for kind, backend in backends(path).items():
        reads[kind] = stored_array(backend.read(FULL), data_type)
    for name, array in reads.items():
        assert array.dtype == np.dtype(data_type), name
        assert array.shape == expected.shape, name
        if encoding == "jpeg":
            np.testing.assert_array_equal(array, reads["plain_ts"], err_msg=name)
        else:
            np.testing.assert_array_equal(array, expected, err_msg=name)
    if encoding == "jpeg":
        assert np.abs(reads["plain_ts"].astype(int) - expected.astype(int)).max() <= 8


@pytest.mark.parametrize("writer", ["plain_ts", "plain_cv"])
@pytest.mark.parametrize(("data_type", "encoding", "num_channels"), COMBOS)
def test_plain_writes_read_through_both_backends(
    tmp_path: Path, writer: str, data_type: str, encoding: str, num_channels: int
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type=data_type, encoding=encoding, num_channels=num_channels))
    data = sample_data(data_type, encoding, num_channels)
    array = stored_array(data, data_type)
    if writer == "plain_ts":
        store = ts.open(
            {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}
        ).result()
        store.write(array).result()
    else:
        cv = CloudVolume(f"file://{path}", compress=False, progress=False)
        cv[10:106, 20:100, 3:9] = array
    reference = plain_ts_read(path) if encoding == "jpeg" else array
    for kind, backend in backends(path).items():
        np.testing.assert_array_equal(
            stored_array(backend.read(FULL), data_type), reference, err_msg=kind
        )
