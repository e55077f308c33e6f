"""TSBackend reads local sharded raw scales (identity hash, raw chunk data) by byte range from the
shard files: every region must read exactly what TensorStore's array interface reads, on shards
written by TensorStore and by CloudVolume, missing shards and chunks as zeros, and a rewritten
shard must be read again, not served from the shard indexes kept in memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend
from zetta_utils.layer.volumetric.tensorstore import shards as shards_mod

from .helpers import random_data, small_info, stored_array
from .test_ts_raw_chunk_reads import FULL, REGIONS, RES, SHAPE, expected_region, plain_tensorstore


def sharded_info(
    data_type: str = "uint8",
    num_channels: int = 1,
    chunk: tuple[int, int, int] = (32, 32, 2),
    **sharding: Any,
) -> dict[str, Any]:
    info = small_info(data_type=data_type, num_channels=num_channels, chunk=chunk)
    info["scales"][0]["sharding"] = {
        "@type": "neuroglancer_uint64_sharded_v1",
        "preshift_bits": 0,
        "hash": "identity",
        "minishard_bits": 1,
        "shard_bits": 2,
        "minishard_index_encoding": "gzip",
        "data_encoding": "raw",
        **sharding,
    }
    return info


def check_reads(path: str, data_type: str) -> None:
    """Every region of :data:`REGIONS`, read and read into a strided buffer, equals TensorStore's
    read of the same voxels; the reads went to the shard files."""
    whole = plain_tensorstore(path)
    assert not (whole == 0).all()
    backend = TSBackend(path)
    assert backend.reads_chunk_files(RES)
    for start, stop in REGIONS:
        idx = VolumetricIndex.from_coords(start, stop, RES)
        expected = expected_region(whole, start, stop)
        got = stored_array(backend.read(idx), data_type).transpose(3, 0, 1, 2)
        np.testing.assert_array_equal(got, expected, err_msg=f"read {start}-{stop}")
        out = np.full(expected.shape[::-1], 7, dtype=expected.dtype).transpose(3, 2, 1, 0)
        backend.read_into(idx, out)
        np.testing.assert_array_equal(out, expected, err_msg=f"read_into {start}-{stop}")


@pytest.mark.parametrize(
    ("data_type", "num_channels", "chunk", "sharding"),
    [
        ("uint8", 1, (32, 32, 2), {}),
        ("uint16", 2, (32, 16, 2), {"minishard_index_encoding": "raw", "preshift_bits": 1}),
        ("uint64", 1, (16, 32, 4), {"minishard_bits": 0, "shard_bits": 0}),
        ("float32", 3, (32, 32, 1), {"minishard_bits": 3, "shard_bits": 1, "preshift_bits": 2}),
    ],
)
def test_sharded_reads_equal_tensorstore_reads(
    tmp_path: Path,
    data_type: str,
    num_channels: int,
    chunk: tuple[int, int, int],
    sharding: dict[str, Any],
) -> None:
    path = str(tmp_path / "v")
    write_info(path, sharded_info(data_type, num_channels, chunk, **sharding))
    # written by TensorStore (the array interface: the backend writes sharded scales through it),
    # leaving a chunk of the first shard and a z range out (missing chunks and shards: zeros)
    data = random_data(data_type, (num_channels, *SHAPE), seed=3)
    writer = TSBackend(path)
    z_stop = (SHAPE[2] - 1) // chunk[2] * chunk[2]  # without the last z chunk
    writer.write(
        VolumetricIndex.from_coords((10 + chunk[0], 20, 3), (106, 100, 3 + z_stop), RES),
        data[:, chunk[0] :, :, :z_stop],
    )
    writer.write(
        VolumetricIndex.from_coords((10, 20 + chunk[1], 3), (10 + chunk[0], 100, 9), RES),
        data[:, : chunk[0], chunk[1] :, :],
    )
    check_reads(path, data_type)


def test_sharded_reads_of_shards_written_by_cloudvolume(tmp_path: Path) -> None:
    from cloudvolume import CloudVolume

    path = str(tmp_path / "v")
    # CloudVolume writes a region of one shard only: one shard (shard_bits 0), 4 minishards
    info = sharded_info("uint16", 1, (32, 32, 2), shard_bits=0, minishard_bits=2, preshift_bits=1)
    write_info(path, info)
    data = random_data("uint16", (1, *SHAPE), seed=4)
    cv = CloudVolume(f"file://{path}", compress=False, progress=False, fill_missing=True)
    cv[10:106, 20:100, 3:9] = stored_array(data, "uint16")
    assert os.listdir(os.path.join(path, "8_8_40")) == ["0.shard"]
    check_reads(path, "uint16")


def test_sharded_reads_see_a_rewritten_shard(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, sharded_info(shard_bits=0))  # one shard file
    reader = TSBackend(path)
    writer = TSBackend(path)
    # first the chunks at even z, then all: the shards' indexes change, not only their data
    first = random_data("uint8", (1, *SHAPE), seed=1)
    first[:, :, :, 2:4] = 0
    for z in (3, 7):
        part = VolumetricIndex.from_coords((10, 20, z), (106, 100, z + 2), RES)
        writer.write(part, first[:, :, :, z - 3 : z - 1])
    assert (reader.read(FULL) == first).all()
    data = random_data("uint8", (1, *SHAPE), seed=2)
    writer.write(FULL, data)
    assert (reader.read(FULL) == data).all()
    # and a shard deleted since reads as zeros
    for name in os.listdir(os.path.join(path, "8_8_40")):
        os.unlink(os.path.join(path, "8_8_40", name))
    assert (reader.read(FULL) == 0).all()


def test_a_truncated_shard_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, sharded_info(shard_bits=0, minishard_bits=0))
    backend = TSBackend(path)
    backend.write(FULL, random_data("uint8", (1, *SHAPE)))
    shards_mod.clear()
    with open(os.path.join(path, "8_8_40", "0.shard"), "r+b") as f:
        f.truncate(100)
    with pytest.raises((OSError, ValueError), match=r"0\.shard"):
        backend.read(FULL)


@pytest.mark.parametrize(
    "sharding",
    [{"hash": "murmurhash3_x86_128"}, {"data_encoding": "gzip"}],
)
def test_other_shardings_read_through_tensorstore(tmp_path: Path, sharding: dict[str, Any]) -> None:
    path = str(tmp_path / "v")
    write_info(path, sharded_info(**sharding))
    data = random_data("uint8", (1, *SHAPE), seed=6)
    TSBackend(path).write(FULL, data)
    backend = TSBackend(path)
    assert not backend.reads_chunk_files(RES)
    assert (backend.read(FULL) == data).all()


def test_shard_layout_locates_chunks_like_the_format() -> None:
    # grid 3 x 5 x 2 chunks: 2, 3 and 1 bits, interleaved x, y, z while each axis has bits left
    scale = sharded_info(minishard_bits=2, shard_bits=3, preshift_bits=1)["scales"][0]
    scale["size"] = [3 * 32, 5 * 32, 2 * 2]
    layout = shards_mod.ShardLayout.of(scale)
    assert layout is not None
    assert layout.grid_bits == (2, 3, 1)
    # x=3 (11), y=5 (101), z=1 (1): bits x0 y0 z0 x1 y1 y2 -> 1 1 1 1 0 1 (lowest first)
    assert layout.chunk_id((3, 5, 1)) == 0b101111
    # preshift 1: 0b10111; minishard: its 2 lowest bits (0b11), shard: the next 3 (0b101)
    assert layout.locate((3, 5, 1)) == ("5.shard", 3, 0b101111)


def test_a_pickled_backend_reads_shards_again(tmp_path: Path) -> None:
    # what a backend works out per process (handles, shard layouts) stays behind: a worker's
    # copy finds it again and reads the same
    import pickle

    path = str(tmp_path / "v")
    write_info(path, sharded_info())
    data = random_data("uint8", (1, *SHAPE), seed=8)
    backend = TSBackend(path)
    backend.write(FULL, data)
    assert (backend.read(FULL) == data).all()
    state = backend.__getstate__()
    assert not {"_stores", "_raw_readable", "_plain_raw", "_shard_layouts"} & set(state)
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.reads_chunk_files(RES)
    assert (copy.read(FULL) == data).all()
