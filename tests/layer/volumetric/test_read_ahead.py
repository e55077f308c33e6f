"""Reading the next task's input ahead (:mod:`zetta_utils.layer.volumetric.read_ahead`), on real
volumes on a moto S3 server on 127.0.0.1: the same bytes, never data older than a write of this
process, a failed read failing the task that reads, at most one task ahead; flow (a)'s chunk
reads and flow (c)'s top-level prefetches (in section tasks, chunk after chunk too). Nothing is
timed."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
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
from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow as vaf
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # (flow (c)'s function, in workers)

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


def volume(path: str, size: tuple[int, int, int] = SIZE) -> VolumetricLayer:
    return build_ts_layer(
        path,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=list(CHUNK),
        info_dataset_size=list(size),
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


def test_a_tasks_steps_are_held_apart_from_the_next_tasks_reads(s3: Any) -> None:
    layer = volume("s3://read-ahead/steps")
    filled(layer, 9)
    a, b, c, d, e = [
        index((16 * i, 16 * j, 0), (16 * i + 16, 16 * j + 16, 1))
        for j, i in ((0, 0), (0, 1), (0, 2), (0, 3), (1, 0))
    ]
    read_ahead.start([(layer, a)])  # the next task's
    read_ahead.start_in_task([(layer, b)])  # the running task's steps: the running one's
    read_ahead.start_in_task([(layer, c)])  # and the next one's
    assert [i for _, i in read_ahead.held()] == [a, b, c]
    read_ahead.start_in_task([(layer, d)])  # b not taken: dropped, a kept
    assert [i for _, i in read_ahead.held()] == [a, c, d]
    read_ahead.start([(layer, e)])  # the task after: the steps of the task before go
    assert [i for _, i in read_ahead.held()] == [a, e]
    for step in (b, c, d):  # steps=3: the running step's and the next two
        read_ahead.start_in_task([(layer, step)], steps=3)
    read_ahead.start_in_task([(layer, a)], steps=3)
    assert [i for _, i in read_ahead.held()] == [a, e, c, d, a]


# --- flow (c): the top-level chunk's padded input, read once into memory, read ahead ----------

FLOW_C: dict[str, Any] = {  # flow (c)'s shape (as tests/mazepa_layer_processing/helpers.py)
    "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
    "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
    "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    "processing_blend_modes": ["linear", "quadratic"],
    "max_reduction_chunk_sizes": [32, 32, 1],
}
SIZE_C = (64, 64, 4)  # four z sections: four section tasks (waves) of 4 x 4 top-level chunks
TOP_CHUNKS_C = 4 * 4 * 4


def volume_c(path: str) -> VolumetricLayer:
    return volume(path, SIZE_C)


def source_c(name: str, seed: int) -> VolumetricLayer:
    src = volume_c(f"s3://read-ahead/{name}")
    data = np.random.default_rng(seed).integers(0, 256, (1, *SIZE_C), dtype=np.uint8)
    src[index((0, 0, 0), SIZE_C)] = torch.from_numpy(data)
    return src


def blur(src: torch.Tensor) -> torch.Tensor:
    """Mixes neighbouring voxels: an input read from the wrong place shows in the output."""
    x = src.float()
    return ((x + x.roll(1, 1) + x.roll(-1, 2)) / 3).round().to(src.dtype)


def run_flow_c(
    src: VolumetricLayer, name: str, mode: str, **execute: Any
) -> tuple[np.ndarray, int]:
    """The dst of flow (c) run with ``$ZETTA_READ_AHEAD`` ``mode``, and the reads ahead taken in
    this process."""
    read_ahead.set_mode(mode)
    dst = volume_c(f"s3://read-ahead/{name}-dst")
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE_C, RES),
        fn=blur,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"s3://read-ahead/{name}-tmp"] * 2,
        verbose=False,
        **FLOW_C,
    )
    taken = read_ahead.TAKEN[0]
    mazepa.execute(flow, show_progress=False, worker_start_cost_s=0, **execute)
    return dst[index((0, 0, 0), SIZE_C)].numpy(), read_ahead.TAKEN[0] - taken


def test_flow_c_on_s3_reads_each_tasks_input_ahead_the_same_bytes(s3: Any) -> None:
    src = source_c("c-src", 8)
    off, taken = run_flow_c(src, "c-off", "off")
    assert taken == 0
    # one process: a task per top-level chunk (and reductions); every chunk's input but the
    # first two's read ahead (the first task submitted runs alone, as in flow (a))
    on, taken = run_flow_c(src, "c-on", "remote")
    np.testing.assert_array_equal(on, off)
    assert taken == TOP_CHUNKS_C - 2
    # section tasks (any executor; here in this process): each task reads its next chunks while
    # one is computed, and its first chunk while the task before it runs (or, for the first two
    # tasks, as the first of its own steps): every chunk's input read ahead
    on, taken = run_flow_c(src, "c-sections", "remote", executor=SerialExecutor())
    np.testing.assert_array_equal(on, off)
    assert taken == TOP_CHUNKS_C
    # section tasks in two worker processes (their counts are theirs)
    on, _ = run_flow_c(src, "c-2p", "remote", num_procs=2)
    np.testing.assert_array_equal(on, off)


def _prefetch_args(layer: VolumetricLayer) -> tuple[Any, ...]:
    # a padded chunk's input (not on the storage chunk grid: through the scoped chunk cache)
    return (layer, Vec3D(*RES), Box((9, 9, 1), (39, 39, 2)), Box((-7, 9, 1), (71, 39, 2)), "s")


def test_a_prefetch_read_ahead_is_taken_once_and_never_after_a_write(s3: Any) -> None:
    from zetta_utils.mazepa_layer_processing.common import layer_wrappers as lw

    src = source_c("c-stale", 10)
    args = _prefetch_args(src)
    expected = src[index((9, 9, 1), (39, 39, 2))].numpy()
    read_ahead.start([lw.prefetch_ahead(*args)])
    assert read_ahead.start_in_task([lw.prefetch_ahead(*args)]) == 0  # (held already: once)
    taken = read_ahead.TAKEN[0]
    got = lw.prefetch_layer_voxels(*args).backend.data
    assert read_ahead.TAKEN[0] == taken + 1 and read_ahead.held() == []
    np.testing.assert_array_equal(got.numpy(), expected)
    # only for the same layer object, box and scope
    read_ahead.start([lw.prefetch_ahead(*args)])
    lw.prefetch_layer_voxels(*args[:-1], "another scope")
    lw.prefetch_layer_voxels(volume_c("s3://read-ahead/c-stale"), *args[1:])
    assert read_ahead.TAKEN[0] == taken + 1 and len(read_ahead.held()) == 1
    # read ahead (and into the scoped cache), then written by this process: read again
    read_ahead.settle()
    new = np.full((1, 16, 16, 1), 5, dtype=np.uint8)
    src[index((16, 16, 1), (32, 32, 2))] = torch.from_numpy(new)
    expected[:, 7:23, 7:23] = new
    got = lw.prefetch_layer_voxels(*args).backend.data
    assert read_ahead.TAKEN[0] == taken + 1 and read_ahead.held() == []
    np.testing.assert_array_equal(got.numpy(), expected)
    # prefetch_layer's (a BBox3D: where the input resolution is not dst's) alike
    bbox, reuse = index((9, 9, 1), (39, 39, 2)).bbox, index((-7, 9, 1), (71, 39, 2)).bbox
    read_ahead.start([lw.prefetch_ahead(src, Vec3D(*RES), bbox, reuse, "s")])
    got = lw.prefetch_layer(src, Vec3D(*RES), bbox, reuse, "s").backend.data
    assert read_ahead.TAKEN[0] == taken + 2 and read_ahead.held() == []
    np.testing.assert_array_equal(got.numpy(), expected)


def test_a_prefetch_read_ahead_with_a_write_pending_is_read_after_it(s3: Any) -> None:
    from zetta_utils.mazepa_layer_processing.common import layer_wrappers as lw

    src = source_c("c-pending", 11)
    args = _prefetch_args(src)
    read_ahead.start([lw.prefetch_ahead(*args)])
    read_ahead.settle()
    release = threading.Event()
    new = np.full((1, 16, 16, 1), 6, dtype=np.uint8)

    def late_write() -> None:
        release.wait()
        volume_c("s3://read-ahead/c-pending")[index((16, 16, 1), (32, 32, 2))] = torch.from_numpy(
            new
        )

    with write_behind.task_scope(True) as scope:
        write_behind.defer(src.backend.path, late_write)  # pending; it notifies once it runs
    threading.Timer(0.2, release.set).start()  # (the prefetch waits for it as every read does)
    got = lw.prefetch_layer_voxels(*args).backend.data
    scope.wait()
    np.testing.assert_array_equal(got.numpy()[:, 7:23, 7:23], new)


def test_a_failed_prefetch_read_ahead_fails_the_task_that_takes_it(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zetta_utils.mazepa_layer_processing.common import layer_wrappers as lw

    src = source_c("c-errors", 12)
    read = lw._read_prefetch

    def failing(backend: Any, fetch: Any) -> Any:
        # the input of top-level chunk (2, 1, 1) (core (32, 16, 1) - (48, 32, 2)) fails to read,
        # ahead only (a task reading it itself succeeds)
        ahead = threading.current_thread().name.startswith("zetta-read-ahead")
        if ahead and fetch.box.start == (25, 9, 1):
            raise OSError(f"injected: cannot read {fetch.box.start}")
        return read(backend, fetch)

    monkeypatch.setattr(lw, "_read_prefetch", failing)
    run_flow_c(src, "c-errors-off", "off")  # (nothing read ahead: no error)
    with pytest.raises(mazepa.ExecutionError) as failed:
        run_flow_c(src, "c-errors", "remote")
    message = str(failed.value)
    assert "injected: cannot read (25, 9, 1)" in message
    assert "1 task(s)" in message and "voxels (32, 16, 1) - (48, 32, 2)" in message


def test_local_volumes_prefetch_ahead_only_when_asked(tmp_path: Path) -> None:
    from zetta_utils.mazepa_layer_processing.common import layer_wrappers as lw

    args = _prefetch_args(volume_c(f"file://{tmp_path}/local-c"))
    assert lw.prefetch_ahead(*args) is None
    assert lw.prefetch_ahead(*args[:-1], None) is None  # (no scope: not a volume only read)
    read_ahead.set_mode("all")
    assert lw.prefetch_ahead(*args) is not None
    assert lw.prefetch_ahead(*args[:-1], None) is None


def test_flow_c_reading_cloudvolume_ahead_fetches_each_storage_chunk_once(
    s3: Any, moto_process: tuple[str, Path]
) -> None:
    # CloudVolume's cache does not merge concurrent reads of a storage chunk: the reads ahead
    # of neighbouring chunks (sharing storage chunks) go one after another, the second served
    # by the cache, rather than each fetching (and decoding) the chunks they share
    from zetta_utils.layer.volumetric.cloudvol import build_cv_layer

    src = build_cv_layer(
        "s3://read-ahead/c-cv-src",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=list(CHUNK),
        info_dataset_size=list(SIZE_C),
        info_encoding="raw",
        info_overwrite=True,
        cv_kwargs={"compress": "gzip"},
    )
    data = np.random.default_rng(13).integers(0, 256, (1, *SIZE_C), dtype=np.uint8)
    src[index((0, 0, 0), SIZE_C)] = torch.from_numpy(data)
    log = moto_process[1]

    def src_gets() -> list[str]:
        time.sleep(0.2)  # (a request is logged once answered)
        lines = log.read_text().splitlines()
        chunk = "GET /read-ahead/c-cv-src/4_4_40/"
        return [ln.split(chunk)[1].split()[0] for ln in lines if chunk in ln]

    before = len(src_gets())
    off, _ = run_flow_c(src, "c-cv-off", "off", executor=SerialExecutor())
    gets_off = src_gets()[before:]
    on, taken = run_flow_c(src, "c-cv-on", "remote", executor=SerialExecutor())
    gets_on = src_gets()[before + len(gets_off) :]
    np.testing.assert_array_equal(on, off)
    assert taken == TOP_CHUNKS_C
    assert len(gets_off) == len(set(gets_off)) == 4 * 4 * 4  # (each storage chunk read once)
    assert len(gets_on) == len(set(gets_on)) == 4 * 4 * 4  # and so read ahead


def test_a_section_task_reads_the_first_chunk_of_the_next_one_ahead(s3: Any) -> None:
    from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan

    src = volume_c("s3://read-ahead/c-next")
    plan, _ = make_subchunkable_plan(
        dst=volume_c("s3://read-ahead/c-next-dst"),
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE_C, RES),
        fn=blur,
        op_kwargs={"src": src},
        level_intermediaries_dirs=["s3://read-ahead/c-next-tmp"] * 2,
        **FLOW_C,
    )
    task = vaf.ProcessSection(vaf.with_read_scope(plan)).make_task(2, ())
    task.start_reads()  # (what an executor does while the task before it runs)
    # top-level chunk (0, 0, 2): its core (0, 0) - (16, 16), padded by the blend pad (2) and
    # the input context (crop pads 2 and 1, blend pad 2 below)
    assert [(layer, key.box) for layer, key in read_ahead.held()] == [
        (src, Box((-7, -7, 2), (23, 23, 3)))
    ]


def test_the_plans_memory_estimate_counts_the_inputs_read_ahead(s3: Any) -> None:
    from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan
    from zetta_utils.mazepa_layer_processing.common.summary import estimate

    src = volume_c("s3://read-ahead/c-estimate")
    plan, _ = make_subchunkable_plan(
        dst=volume_c("s3://read-ahead/c-estimate-dst"),
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE_C, RES),
        fn=blur,
        op_kwargs={"src": src},
        level_intermediaries_dirs=["s3://read-ahead/c-estimate-tmp"] * 2,
        **FLOW_C,
    )
    read_ahead.set_mode("off")
    without = estimate(plan)["memory"]
    assert vaf.with_read_scope(plan).read_ahead_steps == 0
    read_ahead.set_mode("remote")
    # section tasks: the next 3 chunks' inputs and the next task's first one, uint8
    # (16 + 2 * 7)^2; and one more padded top-level output (20 x 20) kept for the reductions,
    # twice where rows stay in memory (volumetric_apply_flow.kept_rows_bytes)
    assert vaf.with_read_scope(plan).read_ahead_steps == vaf.READ_AHEAD_STEPS == 3
    assert estimate(plan)["memory"] - without == (3 + 1) * 30 * 30 + 2 * 20 * 20


def test_section_tasks_read_fewer_chunks_ahead_where_inputs_are_large_or_reads_not_merged(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
    from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan

    def steps(src: VolumetricLayer) -> int:
        plan, _ = make_subchunkable_plan(
            dst=volume_c("s3://read-ahead/c-steps-dst"),
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE_C, RES),
            fn=blur,
            op_kwargs={"src": src},
            level_intermediaries_dirs=["s3://read-ahead/c-steps-tmp"] * 2,
            **FLOW_C,
        )
        return int(vaf.with_read_scope(plan).read_ahead_steps)

    src = volume_c("s3://read-ahead/c-steps")
    assert steps(src) == 3
    monkeypatch.setattr(vaf, "READ_AHEAD_STEPS_BYTES", 2 * 30 * 30)  # two chunks' inputs
    assert steps(src) == 2
    monkeypatch.setattr(vaf, "READ_AHEAD_STEPS_BYTES", 30 * 30 - 1)  # (at least one)
    assert steps(src) == 1
    monkeypatch.undo()
    # CloudVolume: reads sharing storage chunks go one after another, more ahead would wait
    assert steps(build_cv_layer("s3://read-ahead/c-steps", cv_kwargs={"compress": "gzip"})) == 1


def test_a_forked_child_reads_ahead_on_threads_of_its_own(s3: Any) -> None:
    import os
    import signal
    import warnings

    layer = volume("s3://read-ahead/fork")
    filled(layer, 14)
    read_ahead.start([(layer, CHUNK_IDX)])
    read_ahead.settle()  # (the pool's threads started in this process)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (fork with threads: ours only)
        pid = os.fork()
    if pid == 0:  # the child: the parent's reads are not its own, its reads run
        code = 1
        try:
            # (a read that is not TensorStore's, which does not survive a fork itself)
            call = read_ahead.Call(layer, "key", layer.backend, lambda: 42)
            if read_ahead.held() == [] and read_ahead.start([call]) == 1:
                code = 0 if read_ahead.take_call(layer, "key") == 42 else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child's read ahead never ran (the parent's pool threads)")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(read_ahead.held()) == 1  # (the parent's still held)


def test_a_call_waiting_its_turn_can_be_dropped(tmp_path: Path) -> None:
    # a call with ``after`` not started yet, dropped (here by clear; also by a write or a newer
    # task's reads): its cancellation runs its bookkeeping at once, under read_ahead's lock.
    # In a child process, which a deadlock cannot take down with the test session
    import subprocess

    code = f"""
import threading
from zetta_utils.layer.volumetric import read_ahead
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
layer = build_ts_layer(
    "file://{tmp_path}/turn", info_type="image", info_data_type="uint8", info_num_channels=1,
    info_scales=[[4, 4, 40]], info_chunk_size=[16, 16, 1], info_dataset_size=[64, 64, 2],
    info_encoding="raw",
)
read_ahead.set_mode("all")
release = threading.Event()
busy = [read_ahead.Call(layer, i, layer.backend, lambda: release.wait(10)) for i in range(4)]
waiting = read_ahead.Call(layer, "last", layer.backend, lambda: 1, after=lambda other: True)
read_ahead.start([*busy, waiting])  # (every thread busy: the last one queued)
dropped = threading.Thread(target=read_ahead.clear, daemon=True)
dropped.start()
dropped.join(10)
release.set()
assert not dropped.is_alive(), "dropping a call waiting its turn deadlocked"
assert read_ahead.held() == []
print("ok")
"""
    assert read_ahead.THREADS == 4
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
