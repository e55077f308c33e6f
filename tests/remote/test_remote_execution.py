"""Remote runs end to end: local queue workers against a real SQS-compatible server (moto).

Every run here creates real queues, starts real worker processes (``zetta worker``), and must
leave no queue and no run record behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs, execute_with_queues
from zetta_utils.mazepa_addons.execution import queue_names
from zetta_utils.mazepa_addons.worker import LEASE_RENEWAL_ENV
from zetta_utils.message_queues import MessageSigner, create_sqs_queue
from zetta_utils.message_queues.signing import new_run_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow

ListQueues = Callable[[str], list[str]]


# ---- operations and flows (pickled by value: the workers cannot import this test module) ------


@mazepa.taskable_operation
def write_square(folder: str, i: int) -> int:
    Path(folder, f"sq{i}").write_text(str(i * i))
    return i * i


@mazepa.taskable_operation
def write_total(folder: str, n: int) -> int:
    total = sum(int(Path(folder, f"sq{i}").read_text()) for i in range(n))
    Path(folder, "total").write_text(str(total))
    return total


@mazepa.flow_schema
def squares_then_total(folder: str, n: int) -> Iterator[Any]:
    yield [write_square.make_task(folder, i) for i in range(n)]
    yield mazepa.Dependency()
    yield write_total.make_task(folder, n)


@mazepa.taskable_operation
def slow_square(folder: str, marker_dir: str, i: int, sleep_s: float) -> int:
    Path(marker_dir, f"{i}.{os.getpid()}.{time.time_ns()}").touch()
    time.sleep(sleep_s)
    Path(folder, f"sq{i}").write_text(str(i * i))
    return i * i


@mazepa.taskable_operation
def square_slow_first_time(folder: str, marker_dir: str, i: int) -> int:
    """The first run takes long (it is meant to be killed); a rerun is quick."""
    first = not any(Path(marker_dir).glob(f"{i}.*"))
    Path(marker_dir, f"{i}.{os.getpid()}.{time.time_ns()}").touch()
    time.sleep(60 if first else 0.1)
    Path(folder, f"sq{i}").write_text(str(i * i))
    return i * i


@mazepa.taskable_operation
def always_fails(i: int) -> None:
    raise mazepa.TransientError(f"storage unavailable for chunk {i}")


@mazepa.taskable_operation
def kills_its_worker(marker_dir: str) -> None:
    Path(marker_dir, f"{os.getpid()}.{time.time_ns()}").touch()
    os.kill(os.getpid(), signal.SIGKILL)


@mazepa.taskable_operation
def echo(data: bytes) -> bytes:
    return data[::-1]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(target: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "worker_replicas": 2,
        "local_test": True,
        "visibility_timeout_s": 4,
        "show_progress": False,
    }
    options.update(kwargs)
    return execute_on_gcp_with_sqs(target, **options)


def _assert_cleaned_up(run_id: str, list_queues: ListQueues) -> None:
    assert list_queues(f"zetta-{run_id}") == []
    records = Path(os.environ["ZETTA_RUN_RECORDS"])
    assert not (records / f"{run_id}.json").exists()


# ---- same results as local execution ----------------------------------------------------------


def test_flow_with_dependencies_gives_the_serial_results(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    serial, remote = tmp_path / "serial", tmp_path / "remote"
    serial.mkdir()
    remote.mkdir()
    n = 30
    mazepa.execute(squares_then_total(str(serial), n), show_progress=False)
    summary = _run(squares_then_total(str(remote), n))
    assert summary.tasks_done == n + 1 and summary.completed
    assert _files(remote) == _files(serial)
    assert Path(remote, "total").read_text() == str(sum(i * i for i in range(n)))
    assert summary.queue_stats.tasks_sent == n + 1 and not summary.queue_stats.rejections
    _assert_cleaned_up(summary.run_id, list_queues)
    # Each worker wrote a log; both took part.
    logs = list(
        (Path(os.environ["ZETTA_RUN_RECORDS"]) / "logs" / summary.run_id).glob("worker-*.log")
    )
    assert len(logs) == 2


@mazepa.taskable_operation
def _transform_chunk(src: Any, dst: Any, idx: Any) -> None:
    dst[idx] = src[idx] * 3 + 1


@mazepa.flow_schema
def _chunked_transform(src: Any, dst: Any, idxs: list[Any]) -> Iterator[Any]:
    yield [_transform_chunk.make_task(src, dst, idx) for idx in idxs]


def test_volume_flow_writes_the_same_bytes_as_serial(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    torch = pytest.importorskip("torch")
    from zetta_utils.geometry import Vec3D
    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    info: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": "float32",
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
        "info_chunk_size": (16, 16, 1),
        "info_scales": [(8, 8, 40)],
        "info_dataset_size": (64, 64, 2),
    }
    src = build_ts_layer(f"file://{tmp_path / 'src'}", **info)
    gen = torch.Generator().manual_seed(0)
    full = VolumetricIndex.from_coords(Vec3D(0, 0, 0), Vec3D(64, 64, 2), Vec3D(8, 8, 40))
    src[full] = torch.rand((1, 64, 64, 2), generator=gen)
    idxs = [
        VolumetricIndex.from_coords(Vec3D(x, y, z), Vec3D(x + 32, y + 32, z + 1), Vec3D(8, 8, 40))
        for x in (0, 32)
        for y in (0, 32)
        for z in (0, 1)
    ]
    outputs = {}
    for name in ("serial", "remote"):
        dst = build_ts_layer(f"file://{tmp_path / name}", **info)
        flow = _chunked_transform(src, dst, idxs)
        if name == "serial":
            mazepa.execute(flow, show_progress=False)
        else:
            summary = _run(flow)
            assert summary.tasks_done == len(idxs)
            _assert_cleaned_up(summary.run_id, list_queues)
        outputs[name] = _files(tmp_path / name)
    assert len(outputs["remote"]) == 1 + 4 * 4 * 2  # info + every chunk
    assert outputs["remote"] == outputs["serial"]


def test_subchunkable_flow_gives_the_serial_bytes(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    try:
        from zetta_utils.mazepa_layer_processing import (
            build_subchunkable_apply_flow,
        )
    except ImportError:
        pytest.skip(
            "zetta_utils.mazepa_layer_processing.build_subchunkable_apply_flow does not exist yet "
            "(another part of the project); the volume flow test above covers remote volume writes"
        )
    torch = pytest.importorskip("torch")
    from zetta_utils.geometry import BBox3D, Vec3D
    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    info: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": "float32",
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
        "info_chunk_size": (16, 16, 1),
        "info_scales": [(8, 8, 40)],
        "info_dataset_size": (64, 64, 2),
    }
    src = build_ts_layer(f"file://{tmp_path / 'src'}", **info)
    full = VolumetricIndex.from_coords(Vec3D(0, 0, 0), Vec3D(64, 64, 2), Vec3D(8, 8, 40))
    src[full] = torch.rand((1, 64, 64, 2), generator=torch.Generator().manual_seed(1))
    outputs = {}
    for name in ("serial", "remote"):
        dst = build_ts_layer(f"file://{tmp_path / name}", **info)
        flow = build_subchunkable_apply_flow(
            bbox=BBox3D.from_coords(Vec3D(0, 0, 0), Vec3D(64, 64, 2), Vec3D(8, 8, 40)),
            dst_resolution=Vec3D(8, 8, 40),
            processing_chunk_sizes=[[32, 32, 1], [16, 16, 1]],
            processing_crop_pads=[[0, 0, 0], [4, 4, 0]],
            processing_blend_pads=[[8, 8, 0], [0, 0, 0]],
            level_intermediaries_dirs=[
                f"file://{tmp_path / name}_tmp0",
                f"file://{tmp_path / name}_tmp1",
            ],
            fn=lambda src: src * 2,
            op_kwargs={"src": src},
            dst=dst,
            verbose=False,
        )
        if name == "serial":
            mazepa.execute(flow, show_progress=False)
        else:
            summary = _run(flow)
            _assert_cleaned_up(summary.run_id, list_queues)
        outputs[name] = _files(tmp_path / name)
    assert len(outputs["remote"]) > 1
    assert outputs["remote"] == outputs["serial"]


# ---- faults -----------------------------------------------------------------------------------


def test_worker_killed_mid_task_its_task_is_done_by_another(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir()
    markers.mkdir()
    victim_task = 3
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            for marker in markers.glob(f"{victim_task}.*"):
                pid = int(marker.name.split(".")[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        tasks = [
            slow_square.make_task(str(out), str(markers), i, 0.5)
            for i in range(8)
            if i != victim_task
        ]
        tasks.insert(
            victim_task, square_slow_first_time.make_task(str(out), str(markers), victim_task)
        )
        summary = _run(tasks)
    finally:
        stop.set()
        thread.join()
    assert len(killed) == 1
    # Killed once, then done again by another worker process (the pool released its message at
    # once, having seen its worker die).
    runner_pids = [int(m.name.split(".")[1]) for m in markers.glob(f"{victim_task}.*")]
    assert len(runner_pids) == 2 and killed[0] in runner_pids and len(set(runner_pids)) == 2
    assert summary.tasks_done == 8 and summary.tasks_failed == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        f"sq{i}": str(i * i) for i in range(8)
    }
    _assert_cleaned_up(summary.run_id, list_queues)


def test_long_task_keeps_its_lease(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One task runs for twice the visibility timeout while a second worker waits idle: without
    # the lease being extended, the idle worker would receive the task and run it again. The
    # lease is renewed every 0.2 s (not every third of the timeout): only a 3.8 s stall of the
    # renewing thread would let it run out, however busy the machine.
    monkeypatch.setenv(LEASE_RENEWAL_ENV, "0.2")
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir()
    markers.mkdir()
    summary = _run([slow_square.make_task(str(out), str(markers), 7, 8.0)], visibility_timeout_s=4)
    assert summary.tasks_done == 1
    assert len(list(markers.iterdir())) == 1
    assert summary.queue_stats.duplicate_outcomes == 0
    _assert_cleaned_up(summary.run_id, list_queues)


def test_failing_task_is_retried_then_dead_lettered(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    run_id = "failing-run-0001"
    with pytest.raises(mazepa.ExecutionError) as info:
        _run([always_fails.make_task(5)], max_retry=2, run_id=run_id)
    (failure,) = info.value.task_failures
    assert failure.attempts == 3  # the first try and two retries
    assert "storage unavailable for chunk 5" in failure.error_message
    assert "Traceback" in failure.traceback and "always_fails" in failure.traceback
    report = Path(os.environ["ZETTA_RUN_RECORDS"]) / "dead_letters" / f"{run_id}.json"
    assert any(str(report) in note for note in info.value.__notes__)
    (entry,) = json.loads(report.read_text())
    assert entry["task_id"] == failure.task_id and "storage unavailable" in entry["traceback"]
    _assert_cleaned_up(run_id, list_queues)


def test_task_that_kills_every_worker_is_given_up(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with pytest.raises(mazepa.ExecutionError, match="handed out 3 times") as info:
        _run(
            [kills_its_worker.make_task(str(markers))],
            worker_replicas=1,
            visibility_timeout_s=2,
            max_task_deliveries=2,
        )
    assert info.value.task_failures[0].exception_type.endswith("WorkerCrashedError")
    assert len(list(markers.iterdir())) == 2  # two workers died; the third delivery was refused


FAILING_SCRIPT = """
import sys
from zetta_utils import mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs

@mazepa.taskable_operation
def broken(i):
    raise ValueError(f"permanently broken input {i}")

execute_on_gcp_with_sqs([broken.make_task(1)], worker_replicas=1, local_test=True,
                        show_progress=False, run_id=sys.argv[1])
"""


def test_failed_run_exits_non_zero_with_the_traceback(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), "failing-run-0002"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "permanently broken input 1" in result.stderr
    assert "Traceback" in result.stderr and "in broken" in result.stderr
    assert "dead-letter report" in result.stderr
    _assert_cleaned_up("failing-run-0002", list_queues)


CANCEL_SCRIPT = """
import os, sys, time
from pathlib import Path
from zetta_utils import mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs

@mazepa.taskable_operation
def slow(marker_dir, i):
    Path(marker_dir, f"{i}.{os.getpid()}").touch()
    time.sleep(60)

execute_on_gcp_with_sqs([slow.make_task(sys.argv[2], i) for i in range(4)], worker_replicas=2,
                        local_test=True, show_progress=False, run_id=sys.argv[1])
"""


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_stopped_run_leaves_nothing_behind(
    how: str,
    sqs_env: str,
    tmp_path: Path,
    list_queues: ListQueues,
    default_sigint: Callable[[list[str]], list[str]],
) -> None:
    """Ctrl-C (non-interactive: cancels without asking) and SIGTERM clean up at once; a run
    killed outright leaves its record, and ``zetta gc`` deletes what it left."""
    from zetta_utils.cloud_management import collect_garbage

    run_id = f"stopped-{how.lower()}-0001"
    markers = tmp_path / "markers"
    markers.mkdir()
    script = tmp_path / "cancel.py"
    script.write_text(CANCEL_SCRIPT)
    record = Path(os.environ["ZETTA_RUN_RECORDS"]) / f"{run_id}.json"
    proc = subprocess.Popen(
        default_sigint([sys.executable, str(script), run_id, str(markers)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while (
            len(list(markers.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None
        ):
            time.sleep(0.05)
        assert len(list(markers.iterdir())) == 2, "both workers should be running a task"
        assert list_queues(f"zetta-{run_id}") == sorted(queue_names(run_id))
        assert record.exists()
        proc.send_signal(getattr(signal, how))
        proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    worker_pids = {int(m.name.split(".")[1]) for m in markers.iterdir()}
    deadline = time.monotonic() + 120  # orphaned workers get SIGTERM when their producer dies
    while time.monotonic() < deadline and any(_alive(pid) for pid in worker_pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in worker_pids)
    if how == "SIGKILL":
        assert record.exists() and len(list_queues(f"zetta-{run_id}")) == 2
        report = collect_garbage(max_age_s=0)
        assert report.collected == [run_id] and report.errors == []
        assert json.loads(record.read_text())["status"] == "collected"
        assert list_queues(f"zetta-{run_id}") == []
    else:
        _assert_cleaned_up(run_id, list_queues)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a dead parent's reaper) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---- messages ---------------------------------------------------------------------------------


def test_large_payloads_travel_through_the_payload_store(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    data = os.urandom(400_000)  # well over the 256 KiB message limit, both ways
    task = echo.make_task(data)
    summary = _run([task])
    assert task.outcome is not None and task.outcome.return_value == data[::-1]
    payloads = Path(os.environ["ZETTA_RUN_RECORDS"]) / "payloads" / summary.run_id
    assert not payloads.exists() or not any(p.is_file() for p in payloads.rglob("*"))
    _assert_cleaned_up(summary.run_id, list_queues)


def test_large_payload_without_a_store_is_a_clear_error(sqs_env: str) -> None:
    run_id = "no-store-0001"
    work_name, outcome_name = queue_names(run_id)
    work, outcomes = create_sqs_queue(work_name), create_sqs_queue(outcome_name)
    try:
        with pytest.raises(mazepa.ExecutionError, match="large_payload_location"):
            execute_with_queues(
                [echo.make_task(os.urandom(300_000))],
                work,
                outcomes,
                MessageSigner(new_run_key(), run_id),
                show_progress=False,
            )
    finally:
        work.delete_queue()
        outcomes.delete_queue()
