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
    import torch

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
