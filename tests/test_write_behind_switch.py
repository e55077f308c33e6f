"""``$ZETTA_WRITE_BEHIND`` in serial runs: read once per run, before its first task.

Each task says whether its writes would be deferred (a deferring scope is current while it runs).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from zetta_utils import mazepa, write_behind


@mazepa.taskable_operation
def defers(i: int) -> bool:
    return write_behind.current_scope() is not None


@mazepa.taskable_operation
def defers_then_switches_off(i: int) -> bool:
    """Says whether it defers, then turns write-behind off for what follows."""
    deferring = write_behind.current_scope() is not None
    os.environ[write_behind.ENV] = "0"
    return deferring


def _values(tasks: list[mazepa.Task[Any]]) -> list[Any]:
    return [t.outcome.return_value if t.outcome is not None else None for t in tasks]


@pytest.mark.parametrize("value", ["0", "false", "OFF"])
def test_off_when_set_before_a_run(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(write_behind.ENV, value)
    tasks = [defers.make_task(i) for i in range(3)]
    mazepa.execute(tasks, show_progress=False)
    assert _values(tasks) == [False] * 3


def test_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(write_behind.ENV, raising=False)
    tasks = [defers.make_task(i) for i in range(3)]
    mazepa.execute(tasks, show_progress=False)
    assert _values(tasks) == [True] * 3


def test_read_once_per_run_and_again_by_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(write_behind.ENV, "1")  # (restored after the test: the task changes it)
    executor = mazepa.SerialExecutor(batch_size=1)
    tasks = [defers_then_switches_off.make_task(0)] + [defers.make_task(i) for i in range(1, 3)]
    try:
        mazepa.execute(tasks, executor=executor, show_progress=False)
        # the switch changed during the run: the run keeps what it read at its start
        assert _values(tasks) == [True] * 3
        executor.shutdown()  # the end of the run that the executor served
        later = [defers.make_task(i) for i in range(3, 5)]
        mazepa.execute(later, executor=executor, show_progress=False)
        assert _values(later) == [False] * 2
    finally:
        executor.shutdown()
