"""Writes behind through TensorStore (commits, and PUTs of raw chunks to object storage) are
ordered by region: a write waits for this process's earlier writes in flight to the chunks (the
shards, where sharded) it touches, and for no other.

* Overlapping writes behind land in the order they were made: the last write wins, chunk by
  chunk, on jpeg and sharded scales (TensorStore's commits) in real volumes.
* A write waits for an earlier write in flight to the same chunk (shard) before it is issued, and
  does not wait for one to another chunk; ``ZETTA_TS_COMMIT_ORDER=volume`` makes it wait for
  every earlier write of the volume. The earlier write is held back by a future this test
  completes, observed through the calls the waiting write makes on it: nothing is timed.
"""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import write_behind
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend
from zetta_utils.layer.volumetric.tensorstore import backend as backend_mod

from .helpers import small_info

RES = Vec3D(8, 8, 40)
CHUNK = (16, 16, 1)
SIZE = (64, 64, 2)


def info_of(kind: str) -> dict[str, Any]:
    info = small_info(size=SIZE, chunk=CHUNK, offset=(0, 0, 0))
    scale = info["scales"][0]
    if kind == "jpeg":
        scale["encoding"] = "jpeg"
    elif kind == "sharded":
        # 2 x 2 chunks of a section per shard (the lowest 2 Morton bits pick the minishard)
        scale["sharding"] = {
            "@type": "neuroglancer_uint64_sharded_v1",
            "preshift_bits": 0,
            "hash": "identity",
            "minishard_bits": 2,
            "shard_bits": 3,
            "minishard_index_encoding": "gzip",
            "data_encoding": "raw",
        }
    return info


def index(start: tuple[int, int, int], stop: tuple[int, int, int]) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, RES)


def constant(value: int, start: tuple[int, int, int], stop: tuple[int, int, int]) -> Any:
    shape = tuple(b - a for a, b in zip(start, stop, strict=True))
    return torch.full((1, *shape), value, dtype=torch.uint8)


@pytest.mark.parametrize("kind", ["jpeg", "sharded"])
def test_overlapping_writes_behind_land_in_order(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path / "v")
    write_info(path, info_of(kind))
    backend = TSBackend(path)
    expected = np.zeros(SIZE, dtype=np.uint8)
    # whole sections, single chunks of them and 2 x 2 chunk squares, rewritten many times over,
    # all behind within one task's scope: each write's commit is in flight when the next starts
    boxes = [
        ((0, 0, 0), (64, 64, 1)),
        ((16, 16, 0), (32, 32, 1)),
        ((0, 0, 0), (32, 32, 2)),
        ((32, 0, 1), (64, 32, 2)),
        ((16, 16, 0), (48, 48, 1)),
        ((0, 0, 0), (64, 64, 2)),
    ]
    with write_behind.task_scope(True) as scope:
        for n in range(60):
            start, stop = boxes[n % len(boxes)]
            value = 4 * n + 8  # (jpeg keeps a constant chunk's value)
            backend.write(index(start, stop), constant(value, start, stop))
            expected[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]] = value
    scope.wait()
    got = TSBackend(path).read(index((0, 0, 0), SIZE))[0].numpy()
    if kind == "jpeg":
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    else:
        assert (got == expected).all()


class HeldWrite(concurrent.futures.Future[None]):
    """A write in flight that this test completes: notes when someone waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self.waited.set()
        return super().exception(timeout)


def write_in_thread(backend: TSBackend, start: Any, stop: Any, value: int) -> threading.Thread:
    def run() -> None:
        with write_behind.task_scope(True) as scope:
            backend.write(index(start, stop), constant(value, start, stop))
        scope.wait()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["jpeg", "sharded"])
def test_a_write_waits_for_writes_in_flight_to_its_chunks_only(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(backend_mod.COMMIT_ORDER_ENV, raising=False)
    path = str(tmp_path / "v")
    write_info(path, info_of(kind))
    backend = TSBackend(path)
    backend.write(index((0, 0, 0), SIZE), constant(8, (0, 0, 0), SIZE))
    key = backend._scale(RES)["key"]
    # an earlier write in flight to the first 16 x 16 chunk (with sharding: to its shard, the
    # first 32 x 32 square of section 0)
    held = HeldWrite()
    backend_mod._IN_FLIGHT.add(backend._url, key, ((0, 0, 0), (16, 16, 1)), held)
    try:
        # another chunk (shard), and the same chunk in the other section: not held back
        other = (48, 48, 0) if kind == "sharded" else (16, 0, 0)
        for start in (other, (0, 0, 1)):
            stop = (start[0] + 16, start[1] + 16, start[2] + 1)
            thread = write_in_thread(backend, start, stop, 40)
            thread.join(timeout=30)
            assert not thread.is_alive()
        assert not held.waited.is_set()
        # the same chunk (with sharding: another chunk of its shard) waits, unwritten meanwhile
        start = (16, 16, 0) if kind == "sharded" else (0, 0, 0)
        stop = (start[0] + 16, start[1] + 16, 1)
        thread = write_in_thread(backend, start, stop, 80)
        assert held.waited.wait(timeout=30)
        now = backend.read(index(start, stop))[0].numpy()
        assert (np.abs(now.astype(int) - 8) <= 2).all()
        held.set_result(None)
        thread.join(timeout=30)
        assert not thread.is_alive()
        now = backend.read(index(start, stop))[0].numpy()
        assert (np.abs(now.astype(int) - 80) <= 2).all()
    finally:
        if not held.done():
            held.set_result(None)
        backend_mod._IN_FLIGHT.clear()


def test_order_by_volume_waits_for_every_earlier_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "v")
    write_info(path, info_of("jpeg"))
    backend = TSBackend(path)
    url = backend._url
    key = backend._scale(RES)["key"]
    held = HeldWrite()
    backend_mod._IN_FLIGHT.add(url, key, ((0, 0, 0), (16, 16, 1)), held)
    try:
        far = ((48, 48, 1), (64, 64, 2))
        assert backend_mod._IN_FLIGHT.overlapping(url, key, far) == []
        assert backend_mod._IN_FLIGHT.overlapping(url, key, ((0, 0, 0), (16, 16, 1))) == [held]
        assert backend_mod._IN_FLIGHT.overlapping(url, "other", ((0, 0, 0), (16, 16, 1))) == []
        monkeypatch.setenv(backend_mod.COMMIT_ORDER_ENV, "volume")
        assert backend_mod._IN_FLIGHT.overlapping(url, key, far) == [held]
        thread = write_in_thread(backend, *far, 40)
        assert held.waited.wait(timeout=30)
        held.set_result(None)
        thread.join(timeout=30)
        assert not thread.is_alive()
        # a finished write is forgotten
        assert backend_mod._IN_FLIGHT.overlapping(url, key, far) == []
        assert url not in backend_mod._IN_FLIGHT.by_url
    finally:
        if not held.done():
            held.set_result(None)
        backend_mod._IN_FLIGHT.clear()


def test_write_boxes_are_widened_to_the_write_grid(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    info = info_of("sharded")
    info["scales"][0]["voxel_offset"] = [4, 0, 0]
    write_info(path, info)
    backend = TSBackend(path)
    scale = backend._scale(RES)
    # a shard: 2 x 2 chunks of one section, from the voxel offset
    assert backend._write_box(scale, (20, 16, 1), (36, 32, 2)) == ((4, 0, 1), (36, 32, 2))
    assert backend._write_box(scale, (20, 16, 1), (52, 32, 2)) == ((4, 0, 1), (68, 32, 2))
    path2 = str(tmp_path / "w")
    write_info(path2, info_of("jpeg"))
    plain = TSBackend(path2)
    assert plain._write_box(plain._scale(RES), (16, 0, 0), (32, 16, 1)) == (
        (16, 0, 0),
        (32, 16, 1),
    )
