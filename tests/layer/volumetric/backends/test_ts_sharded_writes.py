"""Writes to a sharded scale from several processes at once: a shard file holds many chunks, and
a write of some of them is a read-modify-write of the whole file (TensorStore's, conditional on
the shard not having changed since it was read). Two real processes writing different chunks of
the same shard, chunk by chunk, must lose none of them, with writes finished at once and with
write-behind (a task's writes committed while it goes on)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import small_info

RES = Vec3D(8, 8, 40)
CHUNK = (8, 8, 1)
GRID = (4, 4, 2)
"""32 chunks, all in one shard file (``shard_bits`` 0)."""


def one_shard_info(data_encoding: str) -> dict[str, Any]:
    size = (CHUNK[0] * GRID[0], CHUNK[1] * GRID[1], CHUNK[2] * GRID[2])
    info = small_info(size=size, chunk=CHUNK, offset=(0, 0, 0))
    info["scales"][0]["sharding"] = {
        "@type": "neuroglancer_uint64_sharded_v1",
        "preshift_bits": 0,
        "hash": "identity",
        "minishard_bits": 2,
        "shard_bits": 0,
        "minishard_index_encoding": "gzip",
        "data_encoding": data_encoding,
    }
    return info


def chunk_value(i: int) -> int:
    """What chunk ``i`` (x fastest) is filled with: every chunk differs, none is 0 (missing)."""
    return i % 255 + 1


def chunk_index(i: int) -> VolumetricIndex:
    gx, gy, gz = i % GRID[0], i // GRID[0] % GRID[1], i // (GRID[0] * GRID[1])
    start = (gx * CHUNK[0], gy * CHUNK[1], gz * CHUNK[2])
    stop = tuple(s + c for s, c in zip(start, CHUNK, strict=True))
    return VolumetricIndex.from_coords(start, stop, RES)


CASES = [(encoding, behind) for encoding in ("raw", "gzip") for behind in (False, True)]
"""(chunk data encoding, write-behind): one volume each."""


def write_chunks(root: str, part: int, parts: int, barrier: Any) -> None:
    """In a process of its own, for each volume of :data:`CASES`: write every ``parts``-th chunk
    (from ``part``), one at a time, once the other writer is ready too."""
    from zetta_utils import write_behind

    for n, (_, behind) in enumerate(CASES):
        backend = TSBackend(f"{root}/v{n}")
        mine = range(part, GRID[0] * GRID[1] * GRID[2], parts)
        backend.read(chunk_index(mine[0]))  # opened before the start: the writes overlap
        barrier.wait(timeout=120)
        for i in mine:
            data = torch.full((1, *CHUNK), chunk_value(i), dtype=torch.uint8)
            with write_behind.task_scope(behind) as scope:
                backend.write(chunk_index(i), data)
            scope.wait()


@pytest.mark.slow
def test_two_processes_writing_chunks_of_one_shard_lose_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorstore as ts

    for n, (encoding, _) in enumerate(CASES):
        write_info(str(tmp_path / f"v{n}"), one_shard_info(encoding))
    ctx = multiprocessing.get_context("spawn")  # (TensorStore's threads do not survive a fork)
    # the children import this module (as ``backends.<name>``) to find ``write_chunks``
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=write_chunks, args=(str(tmp_path), part, 2, barrier)) for part in (0, 1)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    expected = np.zeros([c * g for c, g in zip(CHUNK, GRID, strict=True)] + [1], dtype=np.uint8)
    for i in range(GRID[0] * GRID[1] * GRID[2]):
        (x0, y0, z0) = (int(v) for v in chunk_index(i).start)
        expected[x0 : x0 + CHUNK[0], y0 : y0 + CHUNK[1], z0 : z0 + CHUNK[2]] = chunk_value(i)
    for n, case in enumerate(CASES):
        path = str(tmp_path / f"v{n}")
        assert [name.endswith(".shard") for name in os.listdir(f"{path}/8_8_40")] == [True]
        # every chunk there, as this backend and as TensorStore itself read the shard file
        backend = TSBackend(path)
        lost = [
            i
            for i in range(GRID[0] * GRID[1] * GRID[2])
            if not (backend.read(chunk_index(i)).numpy() == chunk_value(i)).all()
        ]
        assert not lost, f"{case}: chunks lost or wrong: {lost}"
        spec = {"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}
        assert np.array_equal(ts.open(spec).result().read().result(), expected), case


# --- the region a write replaces shards of whole ---------------------------------------------


@pytest.mark.parametrize(
    ("sharding", "expected"),
    [
        # grid 4 x 4 x 8 chunks of 8 x 8 x 1: Morton bits x0 y0 z0 x1 y1 z1 z2 (lowest first)
        ({"minishard_bits": 2}, (16, 16, 1)),  # x0 y0 pick the chunk in a shard
        ({"preshift_bits": 1, "minishard_bits": 2}, (16, 16, 2)),  # x0 y0 z0
        ({"minishard_bits": 4}, (32, 16, 2)),  # x0 y0 z0 x1
        ({"minishard_bits": 2, "shard_bits": 1}, (32, 32, 8)),  # 2 shards of 8 boxes each
        ({"minishard_bits": 2, "hash": "murmurhash3_x86_128"}, (32, 32, 8)),  # scattered
    ],
)
def test_shard_size(
    tmp_path: Path, sharding: dict[str, Any], expected: tuple[int, int, int]
) -> None:
    path = str(tmp_path / "v")
    info = small_info(size=(32, 32, 8), chunk=CHUNK, offset=(8, 16, 2))
    info["scales"][0]["sharding"] = {
        "@type": "neuroglancer_uint64_sharded_v1",
        "preshift_bits": 0,
        "hash": "identity",
        "shard_bits": 10,
        "minishard_index_encoding": "gzip",
        "data_encoding": "raw",
        **sharding,
    }
    write_info(path, info)
    backend = TSBackend(path)
    assert backend.get_shard_size(RES) == Vec3D(*expected)
    if expected == (32, 32, 8):
        return
    # each aligned region of that size is the chunks of one shard file, and a write of it
    # creates that file alone
    from zetta_utils.layer.volumetric.tensorstore.shards import ShardLayout

    layout = ShardLayout.of(info["scales"][0])
    assert layout is not None
    names = set()
    for x0 in range(0, 32, expected[0]):
        for y0 in range(0, 32, expected[1]):
            for z0 in range(0, 8, expected[2]):
                files = {
                    layout.locate((x0 // 8 + gx, y0 // 8 + gy, z0 + gz))[0]
                    for gx in range(expected[0] // 8)
                    for gy in range(expected[1] // 8)
                    for gz in range(expected[2])
                }
                assert len(files) == 1
                names |= files
    assert len(names) == (32 * 32 * 8) // (expected[0] * expected[1] * expected[2])
    # the last region along each axis (the chunk grid starts at the voxel offset)
    grid = ((32 - expected[0]) // 8, (32 - expected[1]) // 8, 8 - expected[2])
    start = (8 + grid[0] * 8, 16 + grid[1] * 8, 2 + grid[2])
    region = VolumetricIndex.from_coords(
        start, tuple(a + n for a, n in zip(start, expected, strict=True)), RES
    )
    backend.write(region, torch.ones((1, *expected), dtype=torch.uint8))
    assert os.listdir(f"{path}/8_8_40") == [layout.locate(grid)[0]]


def test_unsharded_scales_have_no_shard_size(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    assert TSBackend(path).get_shard_size(RES) is None
