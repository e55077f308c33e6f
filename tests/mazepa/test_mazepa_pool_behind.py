"""Local workers and write-behind: a task that returned and whose writes are still pending
(finishing behind the next task) does not take up a worker's room for work, so a worker never
waits for the parent between tasks because one of its tasks is still writing; the workers of a
run take its ``$ZETTA_WRITE_BEHIND`` as the run's process read it at the start.

Real worker processes; batch sizes come from declared task durations (``duration_of``), and
deferred writes are held back with files the test creates: nothing depends on speed (the
deadlines only stop a broken executor from hanging the test)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa, write_behind
from zetta_utils.mazepa.local_pool import LocalProcessExecutor
from zetta_utils.mazepa.task_outcome import TaskOutcome

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # (tasks unpickled in workers)

_GUARD_SEC = 60.0


@mazepa.taskable_operation
def held_write(folder: str, i: int) -> int:
    """Returns at once (leaving ``returned<i>``); its deferred write finishes once the file
    ``open<i>`` exists."""

    def job() -> None:
        while not Path(folder, f"open{i}").exists():  # (a file the test creates)
            time.sleep(0.005)

    write_behind.defer(f"{folder}/{i}", job)
    Path(folder, f"returned{i}").write_text("")
    return i


@mazepa.taskable_operation
def plain(i: int) -> int:
    return i


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _GUARD_SEC
    while not condition():
        assert time.monotonic() < deadline, "the worker never got there"
        time.sleep(0.005)


def _poll_until(pool: LocalProcessExecutor, done: Callable[[], bool], seen: list[Any]) -> None:
    deadline = time.monotonic() + _GUARD_SEC
    while not done():
        seen += pool.poll_outcomes(0.05)
        assert time.monotonic() < deadline, "the outcomes never came"


def test_a_task_finishing_behind_leaves_room_for_the_next_one(tmp_path: Path) -> None:
    folder = str(tmp_path)
    seen: list[TaskOutcome[Any]] = []
    # tasks declared to take 60 ms: sent one at a time, one more prefetched (2 per worker)
    with LocalProcessExecutor(1, duration_of=lambda outcome: 0.06) as pool:
        pool.submit([plain.make_task(-1)])  # (teaches the pool the tasks' duration)
        _poll_until(pool, lambda: len(seen) == 1, seen)
        tasks = [held_write.make_task(folder, i) for i in range(1, 5)]
        pool.submit(tasks)  # the worker gets tasks 1 and 2
        _wait(lambda: (tmp_path / "returned2").exists())
        (tmp_path / "open1").write_text("")
        # Task 1's outcome comes once task 2 returned and is finishing behind: the worker is
        # running nothing then, so it gets two more tasks (3 to run, 4 prefetched), not one.
        _poll_until(pool, lambda: len(seen) == 2, seen)
        (tmp_path / "open2").write_text("")
        (tmp_path / "open3").write_text("")
        # The pool is not asked for anything now: task 4 must already be in the worker.
        _wait(lambda: (tmp_path / "returned4").exists())
        (tmp_path / "open4").write_text("")
        _poll_until(pool, lambda: len(seen) == 5, seen)
    assert [o.return_value for o in seen] == [-1, 1, 2, 3, 4]
    assert all(o.succeeded for o in seen)


@mazepa.taskable_operation
def defers(i: int) -> bool:
    return write_behind.current_scope() is not None


@mazepa.taskable_operation
def defers_then_switches_off(i: int) -> bool:
    """Says whether it defers, then turns write-behind off in its worker's environment."""
    deferring = write_behind.current_scope() is not None
    os.environ[write_behind.ENV] = "0"
    return deferring


def _run_in_workers(tasks: list[mazepa.Task[Any]]) -> list[Any]:
    mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=0)
    return [t.outcome.return_value if t.outcome is not None else None for t in tasks]


def test_workers_take_the_runs_write_behind_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers fork from a fork server that may have started before the switch was set: each
    # run reads it in its own process, once, and hands it to its workers.
    monkeypatch.setenv(write_behind.ENV, "1")
    switching = [defers_then_switches_off.make_task(i) for i in range(2)]
    tasks = switching + [defers.make_task(i) for i in range(2, 12)]
    assert _run_in_workers(tasks) == [True] * 12  # (a task switching it off changes nothing)
    monkeypatch.setenv(write_behind.ENV, "0")
    assert _run_in_workers([defers.make_task(i) for i in range(12, 16)]) == [False] * 4
    monkeypatch.setenv(write_behind.ENV, "1")
    assert _run_in_workers([defers.make_task(i) for i in range(16, 20)]) == [True] * 4


class _PolledFuture:
    """A future watched the way TensorStore's are (it has ``done``): pending until ``complete``;
    notes whether anyone asked it to call back."""

    def __init__(self) -> None:
        self.finished = False
        self.called_back = False
        self._callbacks: list[Callable[[Any], None]] = []

    def done(self) -> bool:
        return self.finished

    def result(self) -> None:
        assert self.finished, "waited for a future nobody completes"

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        self.called_back = True
        if self.finished:
            fn(self)
        else:
            self._callbacks.append(fn)

    def complete(self) -> None:
        self.finished = True
        for fn in self._callbacks:
            fn(self)


_PENDING: list[_PolledFuture] = []  # (in the worker) the future of the task before


@mazepa.taskable_operation
def tracked_write(i: int, last: bool) -> bool:
    """Completes the write of the task before and says whether its future was asked to call
    back; leaves a write of its own pending (completed at once if ``last``)."""
    called_back = False
    if _PENDING:
        before = _PENDING.pop()
        called_back = before.called_back
        before.complete()
    future = _PolledFuture()
    write_behind.track(f"polled/{i}", future)
    if last:
        future.complete()
    else:
        _PENDING.append(future)
    return called_back


def test_writes_are_polled_while_tasks_keep_coming() -> None:
    # Tasks of one batch run back to back: the writes of the task finishing behind are polled
    # between them, never asked to call back (a Python call on TensorStore's threads per write);
    # only a worker about to wait for work with a task behind asks (which the first test needs:
    # its last outcome comes while the worker waits).
    seen: list[TaskOutcome[Any]] = []
    with LocalProcessExecutor(1, duration_of=lambda outcome: 0.001) as pool:
        pool.submit([plain.make_task(-1)])  # (teaches the pool the tasks' duration: batches)
        _poll_until(pool, lambda: len(seen) == 1, seen)
        n = 6
        pool.submit([tracked_write.make_task(i, i == n - 1) for i in range(n)])
        _poll_until(pool, lambda: len(seen) == 1 + n, seen)
    assert all(o.succeeded for o in seen)
    assert [o.return_value for o in seen[1:]] == [False] * n
