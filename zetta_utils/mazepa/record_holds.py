"""Runs that stay in one process, and checkpoint records that wait.

:func:`single_process` is True while code runs inside a run (one of its flows, or a task it runs)
that ``mazepa.execute`` carries out wholly in this process: ``num_procs=1`` with no ``executor``
given, and, inside such a run, a nested run that is serial too. Every task of that run then runs
in this process, one after another, so what a task leaves in memory is there for the tasks after
it. It is False everywhere else: outside any run; in a run with ``num_procs`` > 1, its first task
too (which runs in the driver before the workers may start); in local worker processes and in
runs nested there; in tasks run by queue workers or any other ``executor``.

A task of such a run may keep its result in memory only, for later tasks of the run, rather than
write it to storage. Its checkpoint record must then wait: a resumed run skips recorded tasks, and
a skipped task's result would be gone. :func:`hold_record`, called inside the task, holds its
record: the task finishes as usual (what depends on it goes on), but its id is not recorded, and
the flows around it are not recorded either (a recorded flow skips all its tasks), until
:func:`release_record` ``(task_id)`` (from a later task or a flow of the run, e.g. once the result
is written to storage, or once everything that reads it has finished and is recorded: the release
records the id after the ids recorded before it). A record still held when the run ends (done,
failed, or cancelled) is never written: a resumed run runs the task again.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

__all__ = ["current_run", "hold_record", "release_record", "run_is_active", "single_process"]


class RecordHolds(Protocol):
    """What the scheduler of a single-process run does with holds (see the module docstring)."""

    def hold(self, task_id: str) -> None: ...

    def release(self, task_id: str) -> None: ...


class Run:
    """A single-process run, as :func:`current_run` gives it."""

    __slots__ = ("active", "holds")

    def __init__(self, holds: RecordHolds):
        self.holds: RecordHolds | None = holds
        self.active = True
        """False once the run has ended (done, failed or cancelled)."""


_RUN: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "mazepa_single_process_run", default=None
)
_TASK: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mazepa_running_task", default=None
)
RUNNING_TASK = _TASK
"""The id of the task the serial executor runs now (it sets this variable itself: cheaper per
task than entering :func:`running_task`)."""
_HOLDERS: dict[str, RecordHolds] = {}
"""Held task id -> the scheduler holding it, so that a release finds it from any context."""


def single_process() -> bool:
    """Whether every task of the current run runs in this process (see the module docstring)."""
    return _RUN.get() is not None


def current_run() -> Run | None:
    """The single-process run the caller runs in (None outside one): e.g. what a task keeps in
    memory for later tasks belongs to it, and is of no use once it ended
    (:func:`run_is_active`)."""
    return _RUN.get()


def run_is_active(run: Run | None) -> bool:
    """Whether ``run`` (from :func:`current_run`) has not ended yet; True for None (outside any
    run: the caller's own lifetime)."""
    return run is None or run.active


def hold_record() -> str | None:
    """Hold the checkpoint record of the task running now (see the module docstring); its id,
    to pass to :func:`release_record`. None (nothing held: the task is recorded as usual) outside
    a task of a single-process run."""
    run, task_id = _RUN.get(), _TASK.get()
    if run is None or run.holds is None or task_id is None:
        return None
    run.holds.hold(task_id)
    _HOLDERS[task_id] = run.holds
    return task_id


def release_record(task_id: str) -> None:
    """Let the held record of task ``task_id`` be written (at once if the task has finished,
    else when it does); nothing if it is not held."""
    run = _HOLDERS.pop(task_id, None)
    if run is not None:
        run.release(task_id)


@contextlib.contextmanager
def run_scope(holds: RecordHolds | None) -> Iterator[None]:
    """Used by ``execute`` around a run: ``holds`` (its scheduler) for a single-process run,
    None for any other. Holds left when it ends are dropped, never written."""
    run = Run(holds) if holds is not None else None
    token = _RUN.set(run)
    try:
        yield
    finally:
        _RUN.reset(token)
        if run is not None:
            run.active, run.holds = False, None
            for task_id in [t for t, held in _HOLDERS.items() if held is holds]:
                del _HOLDERS[task_id]


@contextlib.contextmanager
def running_task(task_id: str) -> Iterator[None]:
    """Used by the serial executor around each task it runs: the task :func:`hold_record`
    holds."""
    token = _TASK.set(task_id)
    try:
        yield
    finally:
        _TASK.reset(token)
