"""$ZETTA_WORKER_TRACE and $ZETTA_WORKER_CPROFILE, set in the run's process, reach its local
workers (whose own environment is the fork server's), and the trace holds what each worker's main
thread did. Real worker processes; nothing timed (the waits below only bound a broken run)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa import worker_threads
from zetta_utils.mazepa.local_pool import start_fork_server

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def write_marker(folder: str, i: int) -> int:
    Path(folder, f"marker{i}").write_text(str(i))
    return i


def _files(folder: Path, pattern: str, count: int) -> list[Path]:
    """The files matching ``pattern`` once ``count`` of them exist (workers write theirs as they
    exit, after the run returned)."""
    deadline = time.monotonic() + 60  # (only if a worker never exits)
    while len(found := sorted(folder.glob(pattern))) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_measuring_switches_are_handed_to_workers_only_when_set() -> None:
    environ = {"ZETTA_WORKER_TRACE": "/t", "ZETTA_WORKER_CPROFILE": "", "OTHER": "x"}
    settings = worker_threads.worker_environment(2, cpu_count=2, environ=environ)
    share = worker_threads.TS_DATA_COPY_CONCURRENCY_ENV
    assert settings == {share: "1", "ZETTA_WORKER_TRACE": "/t"}


def test_workers_trace_their_tasks_and_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = tmp_path / "traces"
    profiles = tmp_path / "profiles"
    traces.mkdir()
    profiles.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    # the fork server (where workers get their environment) runs before the switches are set
    monkeypatch.delenv("ZETTA_WORKER_TRACE", raising=False)
    monkeypatch.delenv("ZETTA_WORKER_CPROFILE", raising=False)
    start_fork_server()
    monkeypatch.setenv("ZETTA_WORKER_TRACE", str(traces))
    monkeypatch.setenv("ZETTA_WORKER_CPROFILE", str(profiles))
    tasks = [write_marker.make_task(str(out), i) for i in range(20)]
    mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=0)
    returned = [t.outcome.return_value for t in tasks if t.outcome is not None]
    assert sorted(int(r) for r in returned if r is not None) == list(range(20))
    found = _files(traces, "trace-*.json", 2)
    assert len(found) == 2
    assert len(_files(profiles, "worker-*.prof", 2)) == 2
    ran = 0
    for path in found:
        events = json.loads(path.read_text())
        assert events[0][0] == "start" and events[-1][0] == "end"
        kinds = {what for what, _, _ in events}
        assert kinds <= {"start", "end", "task", "wait", "wait-behind", "finish"}, kinds
        previous_end = events[0][2]
        for what, start, end in events[1:]:
            # one thread's events, in order, none overlapping the one before
            assert previous_end <= start <= end, (what, start, end)
            previous_end = end
        ran += sum(what == "task" for what, _, _ in events)
    assert ran == 20


def test_without_the_switch_workers_write_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZETTA_WORKER_TRACE", raising=False)
    monkeypatch.delenv("ZETTA_WORKER_CPROFILE", raising=False)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    tasks = [write_marker.make_task(str(out), i) for i in range(4)]
    mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=0)
    assert len(list(out.iterdir())) == 4
    assert not list(tmp_path.rglob("trace-*.json"))
