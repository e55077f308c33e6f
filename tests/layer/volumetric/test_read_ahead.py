"""Reading the next task's input ahead (:mod:`zetta_utils.layer.volumetric.read_ahead`), on real
volumes on a moto S3 server on 127.0.0.1: the same bytes, never data older than a write of this
process, a failed read failing the task that reads, at most one task ahead. Nothing is timed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import mazepa, write_behind
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex, read_ahead
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa.executors import SerialExecutor
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

RES = (4, 4, 40)
SIZE = (64, 64, 2)
CHUNK = (16, 16, 1)


@pytest.fixture(scope="module")
def s3(
    moto_process: tuple[str, Path], s3_env: Callable[[pytest.MonkeyPatch, str], None]
) -> Iterator[Any]:
    import boto3

    endpoint, _ = moto_process
    with pytest.MonkeyPatch.context() as mp:
        s3_env(mp, endpoint)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="read-ahead")
        yield client


@pytest.fixture(autouse=True)
def fresh_read_ahead() -> Iterator[None]:
    read_ahead.set_mode("remote")
    yield
    read_ahead.set_mode(None)


def volume(path: str) -> VolumetricLayer:
    return build_ts_layer(
        path,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=list(CHUNK),
        info_dataset_size=list(SIZE),
        info_encoding="raw",
        info_overwrite=True,
    )


def index(start: tuple[int, int, int], stop: tuple[int, int, int]) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, Vec3D(*RES))


def filled(layer: VolumetricLayer, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).integers(0, 256, (1, *SIZE), dtype=np.uint8)
    layer[index((0, 0, 0), SIZE)] = torch.from_numpy(data)
    return data


CHUNK_IDX = index((16, 16, 0), (32, 32, 1))


def test_a_read_ahead_is_taken_once_with_the_bytes_of_the_volume(s3: Any) -> None:
    layer = volume("s3://read-ahead/same")
    data = filled(layer, 1)
    assert read_ahead.start([(layer, CHUNK_IDX)]) == 1
    taken = read_ahead.TAKEN[0]
    got = layer[CHUNK_IDX]
    assert read_ahead.TAKEN[0] == taken + 1  # served by the read ahead
    np.testing.assert_array_equal(got.numpy(), data[:, 16:32, 16:32, 0:1])
    assert read_ahead.held() == []
    # another layer object, or another index, is not served by it
    other = volume("s3://read-ahead/same")
    read_ahead.start([(layer, CHUNK_IDX)])
    other[CHUNK_IDX]
    layer[index((0, 0, 0), (16, 16, 1))]
    assert read_ahead.TAKEN[0] == taken + 1
    assert len(read_ahead.held()) == 1


def test_a_write_to_the_volume_drops_what_was_read_ahead(s3: Any) -> None:
    layer = volume("s3://read-ahead/stale")
    filled(layer, 2)
    read_ahead.start([(layer, CHUNK_IDX)])
    read_ahead.settle()  # read ahead, before the write
    new = np.full((1, 16, 16, 1), 7, dtype=np.uint8)
    layer[CHUNK_IDX] = torch.from_numpy(new)
    taken = read_ahead.TAKEN[0]
    np.testing.assert_array_equal(layer[CHUNK_IDX].numpy(), new)
    assert read_ahead.TAKEN[0] == taken and read_ahead.held() == []


def test_a_write_pending_on_the_volume_when_taken_is_read_after(s3: Any) -> None:
    layer = volume("s3://read-ahead/pending")
    data = filled(layer, 3)
    read_ahead.start([(layer, CHUNK_IDX)])
    read_ahead.settle()  # read ahead, before the write below
    release = threading.Event()
    new = np.full((1, 16, 16, 1), 9, dtype=np.uint8)

    def late_write() -> None:
        release.wait()
        volume("s3://read-ahead/pending")[CHUNK_IDX] = torch.from_numpy(new)

    with write_behind.task_scope(True) as scope:
        # a write of this process on the volume, pending (as one behind would be); it does not
        # notify before it runs
        write_behind.defer(layer.backend.path, late_write)
    try:
        assert read_ahead.take(layer, CHUNK_IDX) is None  # (taken: dropped for the pending write)
        assert not scope.done()
    finally:
        release.set()
    np.testing.assert_array_equal(layer[CHUNK_IDX].numpy(), new)
    scope.wait()
    assert not np.array_equal(new, data[:, 16:32, 16:32, 0:1])


def test_at_most_the_running_task_and_the_next_one_are_held(s3: Any) -> None:
    layer = volume("s3://read-ahead/held")
    filled(layer, 4)
    a, b, c = (index((16 * i, 0, 0), (16 * i + 16, 16, 1)) for i in range(3))
    read_ahead.start([(layer, a)])
    read_ahead.start([(layer, b)])
    assert [i for _, i in read_ahead.held()] == [a, b]
    read_ahead.start([(layer, c)])
    assert [i for _, i in read_ahead.held()] == [b, c]
    taken = read_ahead.TAKEN[0]
    layer[a]  # read again, not served
    assert read_ahead.TAKEN[0] == taken


def test_local_volumes_are_read_ahead_only_when_asked(tmp_path: Path) -> None:
    layer = volume(f"file://{tmp_path}/local")
    filled(layer, 5)
    assert read_ahead.start([(layer, CHUNK_IDX)]) == 0
    read_ahead.set_mode("all")
    assert read_ahead.start([(layer, CHUNK_IDX)]) == 1
    read_ahead.set_mode("off")
    assert read_ahead.start([(layer, CHUNK_IDX)]) == 0


@mazepa.taskable_operation_cls
class ReadSum(mazepa.OperationBase):
    def __init__(self, layer: VolumetricLayer):
        self.layer = layer

    def read_ahead(self, idx: VolumetricIndex) -> None:
        read_ahead.start([(self.layer, idx)])

    def __call__(self, idx: VolumetricIndex) -> int:
        return int(self.layer[idx].sum())


def test_a_failed_read_ahead_fails_the_task_that_reads_it(s3: Any) -> None:
    layer = volume("s3://read-ahead/errors")
    data = filled(layer, 6)
    op = ReadSum(layer)
    unstored = VolumetricIndex(resolution=Vec3D(8, 8, 40), bbox=CHUNK_IDX.bbox)
    tasks = [op.make_task(CHUNK_IDX), op.make_task(unstored), op.make_task(CHUNK_IDX)]
    executor = SerialExecutor()
    executor.submit(tasks)
    taken = read_ahead.TAKEN[0]
    outcomes: list[Any] = []
    while executor.num_queued and not any(not o.succeeded for o in outcomes):
        outcomes += executor.poll_outcomes(0)
    outcomes += executor.collect_finished()
    executor.shutdown()
    assert read_ahead.TAKEN[0] == taken + 1  # the second task's read was ahead (the first's not)
    assert outcomes[0].succeeded
    assert outcomes[0].return_value == int(data[:, 16:32, 16:32, 0:1].sum())
    assert not outcomes[1].succeeded and "cannot read" in (outcomes[1].error_message or "")
    assert len(outcomes) == 2  # a failure stops the run here


@pytest.mark.parametrize("procs", [1, 2])
def test_flow_a_on_s3_reads_ahead_the_same_bytes(s3: Any, procs: int) -> None:
    src = volume(f"s3://read-ahead/flow-src-{procs}")
    data = filled(src, 7)
    dst = volume(f"s3://read-ahead/flow-dst-{procs}")
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=lambda src: src,
        op_kwargs={"src": src},
        processing_chunk_sizes=[list(CHUNK)],
        skip_intermediaries=True,
        verbose=False,
    )
    taken = read_ahead.TAKEN[0]
    mazepa.execute(flow, num_procs=procs, show_progress=False, worker_start_cost_s=0)
    if procs == 1:  # (the workers' counts are theirs)
        # every task but the first two found its input read ahead: one task is kept queued
        # once the executor saw a task reading ahead (the first one submitted, run alone)
        assert read_ahead.TAKEN[0] - taken == 4 * 4 * 2 - 2
    np.testing.assert_array_equal(dst[index((0, 0, 0), SIZE)].numpy(), data)
