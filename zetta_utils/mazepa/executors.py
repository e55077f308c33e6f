"""Executor backends: where tasks run. The scheduler does not care which.

A backend takes batches of tasks (``submit``) and reports outcomes (``poll_outcomes``); it says how
many more tasks it wants buffered (``free_slots``), and releases its resources in ``shutdown``.
Anything with these four methods works, e.g. a backend that puts serialized tasks on a message
queue and reads outcomes from another.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from zetta_utils import write_behind

from . import interrupts
from .record_holds import RUNNING_TASK
from .task_outcome import TaskOutcome
from .task_runs import RanTask, run_task
from .tasks import Task

__all__ = ["ExecutorBackend", "SerialExecutor"]


@runtime_checkable
class ExecutorBackend(Protocol):
    """What ``execute`` needs from a place that runs tasks."""

    def free_slots(self) -> int:
        """How many more tasks to ``submit`` now to keep every worker busy (0: none)."""
        ...

    def submit(self, tasks: Sequence[Task[Any]]) -> None:
        """Accept tasks to run, in any order. Must not block for long."""
        ...

    def poll_outcomes(self, timeout: float) -> list[TaskOutcome[Any]]:
        """Outcomes of submitted tasks finished since the last call; waits up to ``timeout``
        seconds when there are none yet. Every submitted task gets exactly one outcome (a task
        that killed its worker gets a failed, retryable one) unless the backend is shut down."""
        ...

    def shutdown(self, cancel: bool = False) -> None:
        """Release workers, queues and other resources. ``cancel``: stop running tasks now rather
        than let them finish."""
        ...


# Optional, where a backend can: ``collect_finished() -> list[TaskOutcome]`` returns outcomes that
# are already available without waiting or starting anything; ``execute`` calls it when a run
# stops early, so that finished work still reaches the checkpoint. ``submit_first(tasks)`` takes
# tasks to run before those already submitted and not started (``execute`` gives it the
# scheduler's urgent work: retries, and flows that resumed after their dependencies).


DurationOf = Callable[[TaskOutcome[Any]], float]
"""How long a finished task took, in seconds (by default its measured ``execution_secs``)."""


def measured_duration(outcome: TaskOutcome[Any]) -> float:
    return outcome.execution_secs


class TaskDurations:
    """A running mean of task durations (recent ones weigh more), to size batches of work.

    :param duration_of: reads a finished task's duration; tests pass their own, so that batch
        sizes do not depend on how fast the machine runs.
    """

    TARGET_BATCH_SEC = 0.02

    def __init__(self, duration_of: DurationOf = measured_duration) -> None:
        self.mean_secs: float | None = None
        self.duration_of = duration_of

    def learn(self, secs: float) -> None:
        mean = self.mean_secs
        self.mean_secs = secs if mean is None else 0.7 * mean + 0.3 * secs

    def learn_outcomes(self, outcomes: Sequence[TaskOutcome[Any]]) -> None:
        """Learn the mean duration of ``outcomes`` (finished together) as one sample."""
        if outcomes:
            self.learn(sum(self.duration_of(o) for o in outcomes) / len(outcomes))

    def batch(self, most: int) -> int:
        """How many tasks run in about :attr:`TARGET_BATCH_SEC` (1 while unknown, at most
        ``most``)."""
        mean = self.mean_secs
        return (
            1 if mean is None else max(1, min(most, int(self.TARGET_BATCH_SEC / max(mean, 1e-7))))
        )


class SerialExecutor:
    """Runs tasks one after another in this process (``num_procs=1``).

    It takes as many tasks at a time as run in about 20 ms (from the mean duration so far; at most
    ``batch_size``, one until the first has run): tiny tasks go in batches, while work that the
    scheduler unblocks (a reduction of chunks just computed) waits behind little queued work.

    Write-behind (:mod:`zetta_utils.write_behind`): a task's deferred writes finish while the next
    task runs; its outcome is returned once they did (after the next task, or when no task is
    queued). Whether write-behind is on (``$ZETTA_WRITE_BEHIND``) is read once per run: at the
    first ``poll_outcomes``, and again after ``shutdown``."""

    def __init__(self, batch_size: int = 64, *, duration_of: DurationOf = measured_duration):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self._queue: deque[Task[Any]] = deque()
        self._finished: list[TaskOutcome[Any]] = []
        self._behind: RanTask | None = None
        """The task that ran last, its writes possibly pending, its outcome not returned yet."""
        self._durations = TaskDurations(duration_of)
        self._write_behind_on: bool | None = None
        """``write_behind.enabled()`` as read at this run's first poll (None: not yet)."""
        self._look_ahead = 0
        """1 once a task whose operation reads ahead (``Task.start_reads``) was submitted: one
        task more is queued than a poll runs, so that the next task's reads are always in
        flight while one runs."""

    def free_slots(self) -> int:
        return self._durations.batch(self.batch_size) + self._look_ahead - len(self._queue)

    def submit(self, tasks: Sequence[Task[Any]]) -> None:
        self._queue.extend(tasks)
        if not self._look_ahead and tasks and getattr(tasks[0].fn, "read_ahead", None):
            self._look_ahead = 1

    def poll_outcomes(self, timeout: float) -> list[TaskOutcome[Any]]:
        """Runs the queued tasks; returns early after the first failure, so that a run that stops
        on failures does not run the rest of the batch. The last task's outcome waits for the
        next call (its writes finish meanwhile), unless nothing is queued then."""
        queue = self._queue
        # Outcomes live on the executor until returned, so a Ctrl-C between tasks loses none.
        if self._finished:
            outcomes, self._finished = self._finished, []
            return outcomes
        outcomes = self._finished
        if not queue:
            self._finish_behind(outcomes)
            self._finished = []
            return outcomes
        on = self._write_behind_on
        if on is None:
            on = self._write_behind_on = write_behind.enabled()
        durations = self._durations
        # with a task looked ahead at: a batch's worth, the next one left queued
        most = durations.batch(self.batch_size) if self._look_ahead else len(queue)
        while queue and most > 0:
            most -= 1
            task = queue[0]
            if len(queue) > 1:  # the next task's reads in flight while this one runs
                queue[1].start_reads()
            # If Ctrl-C interrupts the task, it stays queued (and runs again if the run goes on).
            guard = interrupts.current_guard()
            token = RUNNING_TASK.set(task.id)  # the task that mazepa.hold_record() holds
            try:
                if guard is None:
                    ran = run_task(task, on)
                else:
                    guard.check()
                    guard.active = True
                    try:
                        ran = run_task(task, on)
                    finally:
                        guard.active = False
            finally:
                RUNNING_TASK.reset(token)
            queue.popleft()
            if self._behind is not None:
                self._finish_behind(outcomes)
            self._behind = ran
            outcome = ran.outcome
            durations.learn(durations.duration_of(outcome))
            failed = outcome.exception_type is not None  # (not outcome.succeeded)
            if failed or ran.scope.done():  # (nothing left to wait for)
                self._finish_behind(outcomes)
                failed = outcomes[-1].exception_type is not None
            elif outcomes:
                failed = outcomes[-1].exception_type is not None
            if failed:
                break
        self._finished = []
        return outcomes

    def _finish_behind(self, outcomes: list[TaskOutcome[Any]]) -> None:
        behind, self._behind = self._behind, None
        if behind is not None:
            outcomes.append(behind.finish())

    @property
    def num_queued(self) -> int:
        """Tasks submitted and not run yet."""
        return len(self._queue)

    def take_queued(self) -> list[Task[Any]]:
        """Remove and return the tasks submitted and not run yet."""
        queued = list(self._queue)
        self._queue.clear()
        return queued

    def collect_finished(self) -> list[TaskOutcome[Any]]:
        """Outcomes already produced and not yet returned (the last task's once its writes
        finished: waits for them); runs nothing."""
        outcomes, self._finished = self._finished, []
        self._finish_behind(outcomes)
        return outcomes

    def shutdown(self, cancel: bool = False) -> None:
        self._write_behind_on = None  # (read again by the next run)
        self._look_ahead = 0
        self._queue.clear()
        self._finished = []
        behind, self._behind = self._behind, None
        if behind is not None:
            behind.finish()
        # nothing this run wrote is left in flight after it (a task cut short by Ctrl-C, too)
        write_behind.wait_all()
