"""TSBackend reads local raw, unsharded scales from the chunk files directly: every region must
read exactly what TensorStore's array interface reads (missing chunks as zeros), and a chunk file
of the wrong size is an error, not data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import expected_region, random_data, small_info, stored_array

RES = Vec3D(8, 8, 40)
# dataset (10, 20, 3) - (106, 100, 9) with chunks of (32, 32, 2): the last chunks in y are clipped
FULL = VolumetricIndex.from_coords((10, 20, 3), (106, 100, 9), RES)
SHAPE = (96, 80, 6)
REGIONS = [
    ((10, 20, 3), (106, 100, 9)),  # everything
    ((42, 52, 5), (74, 84, 7)),  # one whole chunk
    ((30, 40, 4), (90, 99, 8)),  # parts of many chunks, partial rows, planes and x ranges
    ((11, 21, 3), (12, 22, 4)),  # one voxel
    ((70, 90, 8), (106, 100, 9)),  # up to the dataset end, in a clipped chunk
    ((0, 0, 0), (120, 110, 12)),  # past the bounds on every side (zeros there)
]


def plain_tensorstore(path: str) -> np.ndarray:
    """The whole dataset as TensorStore's array interface reads it (missing chunks: zeros)."""
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": f"file://{path}/",
        "fill_missing_data_reads": True,
    }
    return np.asarray(ts.open(spec).result().read().result())


@pytest.mark.parametrize(
    ("data_type", "num_channels", "chunk"),
    [
        ("uint8", 1, (32, 32, 2)),
        ("int16", 1, (32, 32, 2)),
        ("uint64", 1, (16, 32, 4)),
        ("float32", 3, (32, 16, 2)),
        ("float32", 2, (32, 32, 1)),
    ],
)
def test_raw_chunk_reads_equal_tensorstore_array_reads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_type: str,
    num_channels: int,
    chunk: tuple[int, int, int],
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type=data_type, num_channels=num_channels, chunk=chunk))
    monkeypatch.setenv(
        "ZETTA_RAW_CHUNK_WRITES", "0"
    )  # files written by TensorStore's array interface
    TSBackend(path).write(FULL, random_data(data_type, (num_channels, *SHAPE), seed=5))
    # one chunk never written: it reads as zeros either way
    first = os.path.join(path, "8_8_40", sorted(os.listdir(os.path.join(path, "8_8_40")))[0])
    os.unlink(first)
    whole = plain_tensorstore(path)
    assert not (whole == 0).all()
    for mode in ("1", "0"):
        monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", mode)
        backend = TSBackend(path)
        assert backend._reads_raw_chunks(backend._scale(RES)) is (mode == "1")
        for start, stop in REGIONS:
            idx = VolumetricIndex.from_coords(start, stop, RES)
            expected = expected_region(whole, start, stop)
            got = stored_array(backend.read(idx), data_type).transpose(3, 0, 1, 2)
            np.testing.assert_array_equal(
                got, expected, err_msg=f"read {start}-{stop}, raw reads {mode}"
            )
            # into a buffer with other strides (x slowest), as the flows' prefetch does
            out = np.full(expected.shape[::-1], 7, dtype=expected.dtype).transpose(3, 2, 1, 0)
            backend.read_into(idx, out)
            np.testing.assert_array_equal(
                out, expected, err_msg=f"read_into {start}-{stop}, raw reads {mode}"
            )


def test_raw_chunk_reads_see_every_write(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    reader = TSBackend(path, cache_bytes_limit=2**24)
    writer = TSBackend(path)
    for seed in (1, 2):
        data = random_data("uint8", (1, *SHAPE), seed=seed)
        writer.write(FULL, data)
        assert (reader.read(FULL) == data).all()


def test_a_raw_chunk_file_of_the_wrong_size_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    backend = TSBackend(path)
    backend.write(FULL, random_data("uint8", (1, *SHAPE)))
    name = os.path.join(path, "8_8_40", "42-74_52-84_5-7")
    with open(name, "r+b") as f:
        f.truncate(100)
    with pytest.raises(
        ValueError,
        match=r"raw chunk file .*42-74_52-84_5-7 holds 100 bytes; a chunk of 32 x 32 x 2 voxels "
        r"and 1 channel\(s\) of uint8 holds 2048",
    ):
        backend.read(VolumetricIndex.from_coords((40, 50, 5), (50, 60, 6), RES))
    # a region that does not touch it still reads
    assert backend.read(VolumetricIndex.from_coords((10, 20, 3), (42, 52, 5), RES)).shape == (
        1,
        32,
        32,
        2,
    )
