"""Errors that end a run."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .tracebacks import shorten_traceback

__all__ = ["ExecutionError", "FlowFailure", "TaskFailure"]


@attrs.frozen
class TaskFailure:
    """A task that failed for good: after its retries, or at once for a non-transient error.
    ``region``: where in the volume it worked, in words (see ``mazepa.regions``), when known."""

    task_id: str
    operation_name: str
    args_summary: str
    exception_type: str
    error_message: str
    traceback: str
    attempts: int
    region: str | None = None

    def describe(self, full: bool = False) -> str:
        """What failed, where, and the user's own frames of the traceback (``full``: the whole
        traceback instead)."""
        lines = [
            f"task {self.operation_name} (id {self.task_id}) failed after {self.attempts} "
            f"attempt(s) with {self.exception_type}: {self.error_message}"
        ]
        if self.region and self.region not in self.error_message:
            lines.append(f"  on {self.region}")
        if not self.region:
            lines.append(f"  arguments: {self.args_summary}")
        return "\n".join(lines) + "\n" + _traceback_text(self.traceback, full)


@attrs.frozen
class FlowFailure:
    """A flow whose generator raised, or yielded something that is not work."""

    flow_id: str
    flow_name: str
    exception_type: str
    error_message: str
    traceback: str

    def describe(self, full: bool = False) -> str:
        return (
            f"flow {self.flow_name} (id {self.flow_id}) failed with {self.exception_type}: "
            f"{self.error_message}\n" + _traceback_text(self.traceback, full)
        )


_MAX_TRACEBACK_LINES = 60


def _traceback_text(text: str, full: bool) -> str:
    if full:
        return _indent(text)
    short = shorten_traceback(text).render("  ")
    return short + "\n" if short else ""


def _indent(text: str) -> str:
    """The traceback indented; the middle of a very long one (deep recursion) is cut out."""
    if not text:
        return ""
    lines = text.rstrip("\n").split("\n")
    if len(lines) > _MAX_TRACEBACK_LINES:
        half = _MAX_TRACEBACK_LINES // 2
        lines = [*lines[:half], f"... ({len(lines) - 2 * half} lines cut) ...", *lines[-half:]]
    return "".join(f"    {line}\n" for line in lines)


class ExecutionError(RuntimeError):
    """The run stopped because tasks or flows failed permanently.

    ``task_failures`` and ``flow_failures`` say which, with arguments and tracebacks.
    """

    def __init__(
        self,
        task_failures: Sequence[TaskFailure] = (),
        flow_failures: Sequence[FlowFailure] = (),
        note: str = "",
    ):
        self.task_failures: list[TaskFailure] = list(task_failures)
        self.flow_failures: list[FlowFailure] = list(flow_failures)
        self.note = note
        super().__init__(self._message())

    @property
    def failures(self) -> list[TaskFailure | FlowFailure]:
        return [*self.task_failures, *self.flow_failures]

    def _message(self) -> str:
        return self.describe()

    def describe(self, full: bool = False, limit: int = 5) -> str:
        """The failures (the first ``limit``), each with the user's frames of its traceback
        (``full``: whole tracebacks)."""
        n_tasks, n_flows = len(self.task_failures), len(self.flow_failures)
        head = "mazepa run failed:"
        if n_tasks:
            head += f" {n_tasks} task(s)"
        if n_flows:
            head += f"{',' if n_tasks else ''} {n_flows} flow(s)"
        if self.note:
            head += f" ({self.note})"
        shown = [f.describe(full) for f in self.failures[:limit]]
        more = len(self.failures) - len(shown)
        tail = f"... and {more} more failure(s)\n" if more > 0 else ""
        return head + "\n" + "\n".join(shown) + tail

    def __reduce__(self) -> tuple[object, ...]:
        return (ExecutionError, (self.task_failures, self.flow_failures, self.note))
