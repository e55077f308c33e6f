"""Write-behind in real runs: real volumes, real executors, real worker processes.

* A flow writes the same bytes with write-behind on and off, serially and in 2 processes, on the
  four write paths that defer (TensorStore's raw chunk files and its commits, CloudVolume's raw
  chunk files and its puts).
* A deferred write that fails fails its own task; the run reports it; a rerun with the
  checkpoint redoes exactly the tasks not recorded, whose writes all landed.
* The next task's read of a volume waits for the previous task's pending write to it.
* A cancelled run waits for the pending writes of the task that finished before it.

No test depends on speed: writes are held back with events, never with sleeps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

from zetta_utils import mazepa, write_behind
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa.checkpoint import CheckpointStore
from zetta_utils.mazepa.local_pool import LocalProcessExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # (tasks unpickled in workers)

RES = (4, 4, 40)
SIZE = (128, 128, 4)


def _make_src(root: Path) -> None:
    src = build_ts_layer(
        f"file://{root}/src",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=[32, 32, 1],
        info_dataset_size=list(SIZE),
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(1, *SIZE), dtype=np.uint8)
    src[VolumetricIndex.from_coords((0, 0, 0), SIZE, RES)] = torch.from_numpy(data)


_FLOW_SCRIPT = """
import sys
from zetta_utils import mazepa
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa_layer_processing.common import build_subchunkable_apply_flow

root, out, procs = sys.argv[1], sys.argv[2], int(sys.argv[3])
src = build_ts_layer(f"file://{root}/src")
for name, build, encoding in (
    ("ts-raw", build_ts_layer, "raw"),
    ("ts-jpeg", build_ts_layer, "jpeg"),
    ("cv-raw", build_cv_layer, "raw"),
    ("cv-jpeg", build_cv_layer, "jpeg"),
):
    dst = build(
        f"file://{out}/{name}", info_reference_path=f"file://{root}/src", info_encoding=encoding
    )
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=[4, 4, 40],
        start_coord=[0, 0, 0],
        end_coord=[128, 128, 4],
        coord_resolution=[4, 4, 40],
        fn=lambda src: src,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[64, 64, 1]],
        processing_blend_pads=[[8, 8, 0]],
        level_intermediaries_dirs=[f"file://{out}/tmp-{name}"],
        verbose=False,
    )
    mazepa.execute(flow, num_procs=procs, worker_start_cost_s=0, show_progress=False)
"""


def _volume_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not str(p.relative_to(folder)).startswith("tmp-")
    }


@pytest.mark.slow
@pytest.mark.parametrize("num_procs", [1, 2], ids=["serial", "2procs"])
def test_a_flow_writes_the_same_bytes_with_write_behind_on_and_off(
    tmp_path: Path, num_procs: int
) -> None:
    _make_src(tmp_path)
    outputs = {}
    for mode in ("1", "0"):
        out = tmp_path / f"out{mode}"
        # a process of its own per setting: worker processes take it from their environment
        env = {**os.environ, write_behind.ENV: mode, "ZETTA_WORKER_START_COST_S": "0"}
        result = subprocess.run(
            [sys.executable, "-c", _FLOW_SCRIPT, str(tmp_path), str(out), str(num_procs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[mode] = _volume_files(out)
    on, off = outputs["1"], outputs["0"]
    assert on.keys() == off.keys()
    for name in ("ts-raw", "ts-jpeg", "cv-raw", "cv-jpeg"):
        assert any(k.startswith(f"{name}/4_4_40/") for k in on), name
    assert [k for k in on if on[k] != off[k]] == []
    # the raw copies are the source
    source = (tmp_path / "src" / "4_4_40" / "0-32_0-32_0-1").read_bytes()
    assert on["ts-raw/4_4_40/0-32_0-32_0-1"] == source
    assert on["cv-raw/4_4_40/0-32_0-32_0-1"] == source


# --- in-process runs ----------------------------------------------------------------------------

GATE = threading.Event()
"""Holds back the writer thread (a deferred job waiting on it) until a test opens it."""
REACHED = threading.Event()


@pytest.fixture(autouse=True)
def _gates() -> Iterator[None]:
    GATE.clear()
    REACHED.clear()
    yield
    GATE.set()
    write_behind.wait_all()


def _layer(path: Path) -> Any:
    return build_ts_layer(
        f"file://{path}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=[16, 16, 1],
        info_dataset_size=[16 * 8, 16, 1],
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )


def _chunk(i: int) -> VolumetricIndex:
    return VolumetricIndex.from_coords((16 * i, 0, 0), (16 * i + 16, 16, 1), RES)


@mazepa.taskable_operation
def write_chunk(path: str, i: int, value: int, hold: bool = False) -> None:
    """Writes chunk ``i`` of the volume at ``path`` full of ``value``; with ``hold``, the write
    is queued behind a job that waits for ``GATE``."""
    if hold:
        write_behind.defer("gate", lambda: GATE.wait(30))
    _layer(Path(path))[_chunk(i)] = torch.full((1, 16, 16, 1), value, dtype=torch.uint8)


@mazepa.taskable_operation
def read_chunk(path: str, i: int) -> int:
    """Opens ``GATE`` once the pending write is seen not to have landed yet, then reads."""
    layer = _layer(Path(path))
    chunk_file = Path(path, "4_4_40", f"{16 * i}-{16 * i + 16}_0-16_0-1")
    if not GATE.is_set():
        assert not chunk_file.exists() or chunk_file.read_bytes()[0] != 7  # still pending
        GATE.set()
    return int(layer[_chunk(i)].numpy()[0, 0, 0, 0])


def test_the_next_tasks_read_waits_for_the_pending_write(tmp_path: Path) -> None:
    vol = str(tmp_path / "vol")
    _layer(tmp_path / "vol")
    reader = read_chunk.make_task(vol, 0)
    # one task at a time: the read runs while the write's task is behind it
    mazepa.execute(
        [_then(write_chunk.make_task(vol, 0, 7, hold=True), reader)],
        show_progress=False,
        batch_size=1,
    )
    assert reader.outcome is not None and reader.outcome.return_value == 7


@mazepa.taskable_operation
def write_and_count(path: str, i: int) -> int:
    """Writes chunk ``i`` full of ``i + 1`` and counts its runs."""
    _layer(Path(path))[_chunk(i)] = torch.full((1, 16, 16, 1), i + 1, dtype=torch.uint8)
    runs = Path(path, f"runs{i}")
    runs.write_text(str(int(runs.read_text()) + 1 if runs.exists() else 1))
    return i


def test_a_failed_deferred_write_fails_its_task_and_a_rerun_redoes_what_did_not_land(
    tmp_path: Path,
) -> None:
    vol = tmp_path / "vol"
    _layer(vol)
    # chunk 3's file cannot replace the folder in its place: its write fails, once deferred
    # (the task itself returns)
    blocker = vol / "4_4_40" / "48-64_0-16_0-1"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("")
    checkpoint = tmp_path / "run.ckpt"
    tasks = [write_and_count.make_task(str(vol), i) for i in range(8)]
    with pytest.raises(mazepa.ExecutionError) as failure:
        mazepa.execute(tasks, show_progress=False, checkpoint=checkpoint, max_retry=0, batch_size=1)
    assert tasks[3].id in str(failure.value)
    assert tasks[3].outcome is not None and not tasks[3].outcome.succeeded
    assert "finishing after the task returned" in (tasks[3].outcome.traceback or "")
    recorded = CheckpointStore(checkpoint).load()
    assert tasks[3].id not in recorded and tasks[0].id in recorded
    for i, task in enumerate(tasks):
        if task.id in recorded:  # every task on record has its data on storage
            assert _layer(vol)[_chunk(i)].numpy()[0, 0, 0, 0] == i + 1
    ran_first = {i for i in range(8) if (vol / f"runs{i}").exists()}

    shutil.rmtree(blocker)
    mazepa.execute(tasks, show_progress=False, checkpoint=checkpoint, max_retry=0)
    for i, task in enumerate(tasks):
        runs = int((vol / f"runs{i}").read_text())
        expected = 1 if task.id in recorded or i not in ran_first else 2
        assert runs == expected, (i, runs, expected)
        assert _layer(vol)[_chunk(i)].numpy()[0, 0, 0, 0] == i + 1


@mazepa.taskable_operation
def interrupt(path: str) -> None:
    """Cancels the run (as Ctrl-C does) while the task before is still writing."""
    assert not Path(path, "4_4_40", "0-16_0-16_0-1").exists()  # still pending
    threading.Thread(target=GATE.set).start()
    raise KeyboardInterrupt


def test_a_cancelled_run_waits_for_pending_writes_and_records_their_task(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    _layer(vol)
    checkpoint = tmp_path / "run.ckpt"
    writer = write_chunk.make_task(str(vol), 0, 7, hold=True)
    flow = _then(writer, interrupt.make_task(str(vol)))
    with pytest.raises(KeyboardInterrupt):
        mazepa.execute([flow], show_progress=False, checkpoint=checkpoint, batch_size=1)
    # the write had finished when the run ended, and its task is on record
    assert write_behind.pending_bytes() == 0
    assert (vol / "4_4_40" / "0-16_0-16_0-1").read_bytes()[0] == 7
    assert writer.id in CheckpointStore(checkpoint).load()


@mazepa.flow_schema
def _then(first: mazepa.Task[Any], second: mazepa.Task[Any]) -> Iterator[Any]:
    yield first
    yield second


@mazepa.taskable_operation
def held_write(folder: str) -> str:
    """Returns at once; its deferred write finishes once the file ``open`` exists."""

    def job() -> None:
        while not Path(folder, "open").exists():  # (polls a file another process creates)
            time.sleep(0.01)
        Path(folder, "written").write_text("")

    write_behind.defer(folder, job)
    Path(folder, "returned").write_text("")
    return "ok"


def _poll_until(pool: LocalProcessExecutor, done: Any, seen: list[Any]) -> None:
    deadline = time.monotonic() + 120  # (a guard against hanging, not a timing assumption)
    while not done():
        seen += pool.poll_outcomes(0.05)
        assert time.monotonic() < deadline


def test_a_worker_process_reports_a_task_only_once_its_writes_finished(tmp_path: Path) -> None:
    seen: list[Any] = []
    with LocalProcessExecutor(1) as pool:
        pool.submit([held_write.make_task(str(tmp_path))])
        _poll_until(pool, (tmp_path / "returned").exists, seen)
        seen += pool.poll_outcomes(0.3)
        assert seen == [] and not (tmp_path / "written").exists()
        (tmp_path / "open").write_text("")
        _poll_until(pool, lambda: bool(seen), seen)
    assert seen[0].succeeded and seen[0].return_value == "ok"
    assert (tmp_path / "written").exists()
