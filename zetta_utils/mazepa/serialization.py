"""Tasks and outcomes as bytes, for worker processes and message queues.

Tasks go through cloudpickle, because operations built from specs (``lambda_str``, partials,
classes defined in a script) cannot be pickled by reference. Outcomes go through pickle, falling
back to cloudpickle for exotic return values; exception objects stay behind (not all of them
survive pickling) while their type, message and traceback travel as text.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import attrs
import cloudpickle

from .task_outcome import TaskOutcome
from .tasks import Task

__all__ = [
    "deserialize_outcome",
    "deserialize_outcomes",
    "deserialize_task",
    "deserialize_task_batch",
    "serialize_outcome",
    "serialize_outcomes",
    "serialize_task",
    "serialize_task_batch",
]

_PROTOCOL = 5


def serialize_task(task: Task[Any]) -> bytes:
    """``task`` as bytes (without its outcome)."""
    if not isinstance(task, Task):
        raise TypeError(f"serialize_task: expected a Task, got {type(task).__name__}")
    if task.outcome is not None:
        task = attrs.evolve(task, outcome=None)
    return cloudpickle.dumps(task, protocol=_PROTOCOL)


def deserialize_task(data: bytes) -> Task[Any]:
    """The task ``serialize_task`` turned into ``data``."""
    task = pickle.loads(data)
    if not isinstance(task, Task):
        raise TypeError(f"deserialize_task: the bytes hold a {type(task).__name__}, not a Task")
    return task


def serialize_task_batch(items: Sequence[tuple[int, Task[Any]]]) -> bytes:
    """``(seq, task)`` pairs as one message. Pickling them together pickles what they share (the
    operation, often a lambda from a spec) once."""
    ids = [(seq, task.id) for seq, task in items]
    tasks = [task if task.outcome is None else attrs.evolve(task, outcome=None) for _, task in items]
    return pickle.dumps((ids, cloudpickle.dumps(tasks, protocol=_PROTOCOL)), protocol=_PROTOCOL)


def deserialize_task_batch(data: bytes) -> tuple[list[tuple[int, str]], bytes]:
    """The ``(seq, task_id)`` list and the still pickled task list of a batch message (unpickle
    the latter with ``pickle.loads``; it may fail where the tasks' code cannot be imported)."""
    ids, blob = pickle.loads(data)
    return ids, blob


def _dump_outcome(outcome: TaskOutcome[Any]) -> bytes:
    outcome = outcome.without_exception()
    try:
        return pickle.dumps(outcome, protocol=_PROTOCOL)
    except Exception:
        pass
    try:
        return cloudpickle.dumps(outcome, protocol=_PROTOCOL)
    except Exception as e:
        failed = TaskOutcome.from_exception(
            outcome.task_id,
            TypeError(
                f"the task's return value ({type(outcome.return_value).__name__}) cannot be pickled "
                f"to send it back from the worker: {type(e).__name__}: {e}"
            ),
            execution_secs=outcome.execution_secs,
            retryable=False,
        )
        return pickle.dumps(failed.without_exception(), protocol=_PROTOCOL)


def serialize_outcome(outcome: TaskOutcome[Any]) -> bytes:
    """One outcome as bytes (without the exception object; see the module doc)."""
    return _dump_outcome(outcome)


def deserialize_outcome(data: bytes) -> TaskOutcome[Any]:
    """The outcome ``serialize_outcome`` turned into ``data``."""
    outcome = pickle.loads(data)
    if not isinstance(outcome, TaskOutcome):
        raise TypeError(f"deserialize_outcome: the bytes hold a {type(outcome).__name__}, not a TaskOutcome")
    return outcome


def serialize_outcomes(outcomes: Sequence[TaskOutcome[Any]]) -> bytes:
    """A batch of outcomes as bytes. Each one is pickled on its own, so one that cannot be read on
    the other side spoils only itself."""
    return pickle.dumps([(o.task_id, _dump_outcome(o)) for o in outcomes], protocol=_PROTOCOL)


def deserialize_outcomes(data: bytes) -> list[TaskOutcome[Any]]:
    """The outcomes ``serialize_outcomes`` turned into ``data``."""
    result: list[TaskOutcome[Any]] = []
    for task_id, blob in pickle.loads(data):
        try:
            outcome = pickle.loads(blob)
        except Exception as e:
            outcome = TaskOutcome.from_exception(
                task_id,
                TypeError(f"the task's outcome could not be unpickled: {type(e).__name__}: {e}"),
                retryable=False,
            ).without_exception()
        result.append(outcome)
    return result
