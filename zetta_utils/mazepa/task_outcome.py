"""What running a task produced: a value, or an error described well enough to act on."""

from __future__ import annotations

import traceback as traceback_module
from typing import Any, Generic, TypeVar

import attrs

from .transient_errors import is_transient_error

__all__ = ["TaskOutcome"]

R = TypeVar("R")


@attrs.frozen(slots=True)
class TaskOutcome(Generic[R]):
    """The result of one execution of a task.

    ``exception`` is the live exception object where the task ran in this process; outcomes that
    crossed a process boundary carry only ``exception_type``, ``error_message`` and ``traceback``
    (exceptions do not all survive pickling). ``retryable`` says whether the error is transient.
    ``skipped`` marks a task a checkpoint recorded as done, so it was not run (no return value).
    """

    task_id: str
    return_value: R | None = None
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    exception_type: str | None = None
    error_message: str | None = None
    traceback: str | None = attrs.field(default=None, repr=False)
    retryable: bool = False
    execution_secs: float = 0.0
    skipped: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exception_type is None

    @classmethod
    def from_exception(
        cls,
        task_id: str,
        exc: BaseException,
        execution_secs: float = 0.0,
        retryable: bool | None = None,
        traceback_text: str | None = None,
    ) -> TaskOutcome[Any]:
        if traceback_text is None:
            traceback_text = "".join(traceback_module.format_exception(exc))
        klass = type(exc)
        module = klass.__module__
        name = klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"
        return TaskOutcome(
            task_id=task_id,
            exception=exc,
            exception_type=name,
            error_message=str(exc),
            traceback=traceback_text,
            retryable=is_transient_error(exc) if retryable is None else retryable,
            execution_secs=execution_secs,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Positional and without the exception object: smaller, faster, and never fails on an
        # exception class that does not unpickle (type, message and traceback travel as text).
        return (
            TaskOutcome,
            (
                self.task_id,
                self.return_value,
                None,
                self.exception_type,
                self.error_message,
                self.traceback,
                self.retryable,
                self.execution_secs,
                self.skipped,
            ),
        )

    def without_exception(self) -> TaskOutcome[R]:
        """This outcome minus the exception object (for sending to another process)."""
        if self.exception is None:
            return self
        return attrs.evolve(self, exception=None)
