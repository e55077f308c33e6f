"""A run with ``num_procs`` > 1 keeps to this process when its declared work left after the first
task is smaller than what starting the workers costs (issue 24 part 3). The costs are injected
(``worker_start_cost_s``, ``duration_of``): nothing here depends on the machine's speed."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa.local_pool import LocalProcessExecutor, SerialUnlessWorthIt
from zetta_utils.mazepa.task_outcome import TaskOutcome

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def report_pid(i: int) -> int:
    return os.getpid()


@mazepa.flow_schema
def undeclared_flow(n: int) -> Iterator[Any]:
    yield [report_pid.make_task(i) for i in range(n)]


def _pids(tasks: list[mazepa.Task[Any]]) -> set[int]:
    return {t.outcome.return_value for t in tasks if t.outcome is not None}  # type: ignore[misc]


def test_a_run_smaller_than_the_start_cost_stays_serial(caplog: pytest.LogCaptureFixture) -> None:
    tasks = [report_pid.make_task(i) for i in range(32)]
    with caplog.at_level(logging.INFO, logger="zetta_utils.mazepa.local_pool"):
        summary = mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=1e6)
    assert summary.tasks_done == 32
    assert _pids(tasks) == {os.getpid()}
    assert "running serially, not in 2 processes: the 31 task(s) left" in caplog.text


def test_a_run_worth_the_start_cost_starts_the_workers(caplog: pytest.LogCaptureFixture) -> None:
    tasks = [report_pid.make_task(i) for i in range(32)]
    with caplog.at_level(logging.INFO, logger="zetta_utils.mazepa.local_pool"):
        summary = mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=1e-12)
    assert summary.tasks_done == 32
    assert tasks[0].outcome is not None and tasks[0].outcome.return_value == os.getpid()
    assert _pids(tasks[1:]) - {os.getpid()}, "no task ran in a worker"
    assert "running serially" not in caplog.text


def test_undeclared_work_starts_the_workers() -> None:
    """A flow that does not declare its tasks gives no estimate: the workers start."""
    flow = undeclared_flow(8)
    seen: list[mazepa.Task[Any]] = []
    original = report_pid.make_task

    def recording(*args: Any, **kwargs: Any) -> mazepa.Task[Any]:
        task = original(*args, **kwargs)
        seen.append(task)
        return task

    report_pid.make_task = recording  # type: ignore[method-assign]
    try:
        mazepa.execute(flow, num_procs=2, show_progress=False, worker_start_cost_s=1e6)
    finally:
        report_pid.make_task = original  # type: ignore[method-assign]
    assert len(seen) == 8
    assert _pids(seen) - {os.getpid()}


@pytest.mark.parametrize(
    ("task_secs", "tasks_left", "start_cost_s", "workers"),
    [
        (
            0.03,
            32,
            0.5,
            False,
        ),  # 31 tasks, 0.93 s of work left, 2 processes save 0.47 s: not worth 0.5 s
        (0.04, 32, 0.5, True),  # 1.24 s left, 0.62 s saved
        (10.0, 1, 0.1, False),  # nothing left after the first
        (0.001, None, 100.0, True),  # unknown: start them
    ],
)
def test_the_choice_follows_the_injected_costs(
    task_secs: float, tasks_left: int | None, start_cost_s: float, workers: bool
) -> None:
    pools: list[LocalProcessExecutor] = []

    def make_pool() -> LocalProcessExecutor:
        pools.append(LocalProcessExecutor(2, duration_of=lambda o: task_secs))
        return pools[-1]

    def duration_of(outcome: TaskOutcome[Any]) -> float:
        return task_secs

    backend = SerialUnlessWorthIt(
        2,
        make_pool=make_pool,
        tasks_left=lambda: tasks_left,
        start_cost_s=start_cost_s,
        duration_of=duration_of,
    )
    try:
        assert backend.free_slots() == 1  # one task first, in this process
        first = report_pid.make_task(0)
        backend.submit([first])
        assert backend.free_slots() == 0
        outcomes = backend.poll_outcomes(0.0)
        assert [o.return_value for o in outcomes] == [os.getpid()]
        assert backend.decided
        assert (backend.pool is not None) == workers == bool(pools)
        rest = [report_pid.make_task(i) for i in range(1, 5)]
        backend.submit(rest)
        got: list[TaskOutcome[Any]] = []
        while len(got) < len(rest):
            got.extend(backend.poll_outcomes(1.0))
        pids = {o.return_value for o in got}
        assert (pids != {os.getpid()}) == workers
    finally:
        backend.shutdown()
