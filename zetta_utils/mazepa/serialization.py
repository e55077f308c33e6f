"""Tasks and outcomes as bytes, for worker processes and message queues.

Tasks go through cloudpickle, because operations built from specs (``lambda_str``, partials,
classes defined in a script) cannot be pickled by reference. A local worker receives each
operation once (:class:`SentOperations`). Outcomes go through pickle, falling
back to cloudpickle for exotic return values; exception objects stay behind (not all of them
survive pickling) while their type, message and traceback travel as text.
"""

from __future__ import annotations

import io
import operator
import pickle
import types
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import cloudpickle

from .task_outcome import TaskOutcome
from .tasks import Task

__all__ = [
    "ReceivedOperations",
    "SentOperations",
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


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, except that a spec's lambda (``lambda_str``) travels as its text and is
    compiled again where it lands: cloudpickle would name its file ``<dynamic-code>``, and a
    worker's traceback would neither say which lambda failed nor show its line."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType):
            text = obj.__dict__.get("__zetta_lambda_str__")
            if isinstance(text, str):
                return (_lambda_from_text, (text, obj.__name__))
        return super().reducer_override(obj)


def _lambda_from_text(text: str, name: str) -> Any:
    from zetta_utils.builder.built_in import efficient_parse_lambda_str

    return efficient_parse_lambda_str(text, None if name == "<lambda>" else name)


def _dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=_PROTOCOL).dump(obj)
    return buffer.getvalue()


def serialize_task(task: Task[Any]) -> bytes:
    """``task`` as bytes (without its outcome and its ``reads_from`` hint)."""
    if not isinstance(task, Task):
        raise TypeError(f"serialize_task: expected a Task, got {type(task).__name__}")
    return _dumps(_to_send(task))


def _to_send(task: Task[Any]) -> Task[Any]:
    """``task`` without what stays with the sender: its outcome, and the ``reads_from`` hint
    (for the sender's dispatch only)."""
    if task.outcome is None and not task.reads_from:
        return task
    return attrs.evolve(task, outcome=None, reads_from=())


def deserialize_task(data: bytes) -> Task[Any]:
    """The task ``serialize_task`` turned into ``data``."""
    task = pickle.loads(data)
    if not isinstance(task, Task):
        raise TypeError(f"deserialize_task: the bytes hold a {type(task).__name__}, not a Task")
    return task


class SentOperations:
    """What one worker process already holds: the operations (``task.fn``) sent to it before.

    Consecutive tasks of a run usually share their operation (a chunkwise flow's operation carries
    its layers and settings: kilobytes to pickle, a fraction of a millisecond to pickle and again to
    unpickle, per task). :func:`serialize_task_batch` sends each operation to a worker once, in the
    first batch that needs it, and later batches refer to it by number; the worker keeps the
    unpickled object (:class:`ReceivedOperations`). At most ``capacity`` are kept per worker, the
    least recently used are forgotten on both sides. An operation must therefore not change once
    its first task is handed to a worker (tasks are pickled when handed out anyway).
    """

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        # id(operation) -> (number, operation); the reference keeps the id from being reused
        self._held: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self._next = 0
        self._forget: list[int] = []

    def __len__(self) -> int:
        return len(self._held)

    def _encode(
        self, tasks: Sequence[Task[Any]]
    ) -> tuple[list[tuple[int, bytes]], list[int], dict[int, int]]:
        """The operations to send (``(number, pickled)``), the numbers to forget, and the refs
        (``id(operation) -> number``) of all the batch's operations. Updates nothing."""
        new: list[tuple[int, bytes]] = []
        refs: dict[int, int] = {}
        number = self._next
        for task in tasks:
            key = id(task.fn)
            if key in refs:
                continue
            held = self._held.get(key)
            if held is not None and held[1] is task.fn:
                refs[key] = held[0]
                continue
            new.append((number, _dumps(task.fn)))
            refs[key] = number
            number += 1
        return new, list(self._forget), refs

    def _commit(
        self, tasks: Sequence[Task[Any]], new: list[tuple[int, bytes]], refs: dict[int, int]
    ) -> None:
        self._next += len(new)
        self._forget = []
        for task in tasks:
            key = id(task.fn)
            self._held[key] = (refs[key], task.fn)
            self._held.move_to_end(key)
        while len(self._held) > self.capacity:
            _, (number, _) = self._held.popitem(last=False)
            self._forget.append(number)


class ReceivedOperations:
    """A worker's side of :class:`SentOperations`: number -> operation (or the error that
    unpickling it raised, reported for each task that uses it)."""

    def __init__(self) -> None:
        self._ops: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._ops)

    def update(self, new: list[tuple[int, bytes]], forget: list[int]) -> None:
        for number in forget:
            self._ops.pop(number, None)
        for number, blob in new:
            try:
                self._ops[number] = pickle.loads(blob)
            except Exception as e:
                self._ops[number] = _Unloadable(f"{type(e).__name__}: {e}")

    def get(self, number: int) -> Any:
        if number not in self._ops:
            raise RuntimeError(f"internal: the worker does not hold operation #{number}")
        op = self._ops[number]
        if isinstance(op, _Unloadable):
            raise RuntimeError(f"its operation could not be unpickled: {op.error}")
        return op


@attrs.frozen
class _Unloadable:
    error: str


_SENT_FIELDS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(Task) if field.name not in ("fn", "outcome", "reads_from")
)
"""The fields of a task that travel in a batch besides its operation (which is sent once)."""
_sent_values = operator.attrgetter(*_SENT_FIELDS)
"""A task's values of ``_SENT_FIELDS``, as a tuple, in one call."""


def serialize_task_batch(
    items: Sequence[tuple[int, Task[Any]]], sent: SentOperations | None = None
) -> bytes:
    """``(seq, task)`` pairs as one message. Each task travels as the number of its operation
    and the values of its other fields (not as a ``Task``, nor through a pickling hook called for
    every object it holds: a tenth of a millisecond per task in the parent): its operation, often
    a lambda from a spec, is pickled once per message, and, with ``sent`` (the receiving
    worker's), not at all when that worker already holds it. ``sent`` is updated only when the
    whole batch could be pickled."""
    ids = [(seq, task.id) for seq, task in items]
    tasks = [task for _, task in items]
    holder = sent if sent is not None else SentOperations()
    new, forget, refs = holder._encode(tasks)
    rows = [(refs[id(task.fn)], _sent_values(task)) for task in tasks]
    data = pickle.dumps((ids, new, forget, _dumps(rows)), protocol=_PROTOCOL)
    holder._commit(tasks, new, refs)
    return data


def deserialize_task_batch(
    data: bytes, received: ReceivedOperations | None = None
) -> tuple[list[tuple[int, str]], Callable[[], list[Task[Any]]]]:
    """The ``(seq, task_id)`` list of a batch message, and a function that unpickles its tasks
    (call it where a failure can be reported: it raises where the tasks' code cannot be imported).
    ``received``: the worker's operations, updated with those the message brings."""
    ids, new, forget, blob = pickle.loads(data)
    ops = received if received is not None else ReceivedOperations()
    ops.update(new, forget)

    def load() -> list[Task[Any]]:
        rows = pickle.loads(blob)
        return [
            Task(fn=ops.get(number), **dict(zip(_SENT_FIELDS, values, strict=True)))
            for number, values in rows
        ]

    return ids, load


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
                f"the task's return value ({type(outcome.return_value).__name__}) cannot be "
                f"pickled to send it back from the worker: {type(e).__name__}: {e}"
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
        raise TypeError(
            f"deserialize_outcome: the bytes hold a {type(outcome).__name__}, not a TaskOutcome"
        )
    return outcome


def serialize_outcomes(outcomes: Sequence[TaskOutcome[Any]]) -> bytes:
    """A batch of outcomes as bytes. Each one is pickled on its own, so one that cannot be read on
    the other side spoils only itself; a plain success (no return value, the most common outcome
    of chunkwise tasks) travels as its duration alone."""
    rows: list[tuple[str, bytes | float]] = []
    for o in outcomes:
        secs = o.execution_secs
        if (
            o.return_value is None
            and o.exception_type is None
            and o.exception is None
            and o.error_message is None
            and o.traceback is None
            and not o.retryable
            and not o.skipped
            and type(secs) is float
        ):
            rows.append((o.task_id, secs))
        else:
            rows.append((o.task_id, _dump_outcome(o)))
    return pickle.dumps(rows, protocol=_PROTOCOL)


def deserialize_outcomes(data: bytes | memoryview) -> list[TaskOutcome[Any]]:
    """The outcomes ``serialize_outcomes`` turned into ``data``."""
    result: list[TaskOutcome[Any]] = []
    for task_id, blob in pickle.loads(data):
        if type(blob) is float:  # a plain success (see serialize_outcomes)
            result.append(TaskOutcome(task_id, execution_secs=blob))
            continue
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
