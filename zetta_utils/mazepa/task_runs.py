"""Running a task with write-behind (:mod:`zetta_utils.write_behind`), as every executor does.

:func:`run_task` runs the task inside a task scope and returns at once with its writes possibly
still pending; :meth:`RanTask.finish` waits for them and gives the task's outcome: a deferred
write that failed fails the task (retryable if the error is transient, as any task error).
Executors report an outcome only after ``finish``, and keep at most one task finishing behind the
one running.
"""

from __future__ import annotations

import traceback
from typing import Any

import attrs

from zetta_utils import write_behind

from .task_outcome import TaskOutcome
from .tasks import Task

__all__ = ["RanTask", "run_task"]


@attrs.define
class RanTask:
    """A task that returned, and whose deferred writes may still be pending."""

    task: Task[Any]
    outcome: TaskOutcome[Any]
    scope: write_behind.TaskScope

    def done(self) -> bool:
        """Whether its deferred writes finished (``finish`` will not block)."""
        return self.scope.done()

    def finish(self) -> TaskOutcome[Any]:
        """Wait for the task's deferred writes; its outcome (failed if one of them failed)."""
        try:
            self.scope.wait()
        except Exception as e:
            if self.outcome.succeeded:
                self.outcome = TaskOutcome.from_exception(
                    self.task.id,
                    e,
                    execution_secs=self.outcome.execution_secs,
                    traceback_text="a write of this task, finishing after the task returned, "
                    "failed:\n" + "".join(traceback.format_exception(e)),
                )
                self.task.outcome = self.outcome
        return self.outcome


def run_task(task: Task[Any], write_behind_on: bool | None = None) -> RanTask:
    """Run ``task`` in a write-behind scope; its outcome is final only after ``finish()``.
    ``write_behind_on`` None: ``$ZETTA_WRITE_BEHIND`` decides (executors read it once per run
    and pass it)."""
    scope, outcome = write_behind.call_in_scope(task, write_behind_on)
    return RanTask(task, outcome, scope)
