"""What the parent of local workers spends per task it hands out: tasks pickled without a Python
call per object they hold, and their fields, options and operation intact on the other side."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import attrs

from zetta_utils import mazepa
from zetta_utils.mazepa import serialization


@mazepa.taskable_operation_cls
@attrs.frozen
class Offset:
    """An operation that carries data (as a chunkwise flow's carries its layers and settings)."""

    by: tuple[int, ...]

    def __call__(self, keys: tuple[tuple[int, int, int], ...], scale: float = 1.0) -> float:
        return scale * sum(sum(k) for k in keys) + self.by[0]


def python_calls(fn: Callable[[], Any]) -> int:
    """Python functions called while ``fn`` runs (C functions not counted): a measure of
    interpreter work that does not depend on the machine's speed."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_a_batch_is_pickled_without_a_python_call_per_object_it_holds() -> None:
    op: Any = Offset(tuple(range(100)))  # (make_task is added by the decorator)
    sent = serialization.SentOperations()
    serialization.serialize_task_batch([(0, op.make_task(((0, 0, 0),)))], sent)  # sends the op
    n = 32
    tasks = [
        op.make_task(((i, 0, 1), (i + 1, 0, 1)), scale=0.5).with_options(max_retry=3)
        for i in range(n)
    ]
    items = list(enumerate(tasks, start=1))
    data: list[bytes] = []
    calls = python_calls(lambda: data.append(serialization.serialize_task_batch(items, sent)))
    # (a pickling hook called for every object, each task's 20-odd tuples, ints and strings,
    # as before: 1269)
    assert calls <= 4 * n, calls
    # on the worker's side (which holds the op from the first batch)
    received = serialization.ReceivedOperations()
    serialization.deserialize_task_batch(
        serialization.serialize_task_batch([(0, op.make_task(((0, 0, 0),)))]), received
    )[1]()
    ids, load = serialization.deserialize_task_batch(data[0], received)
    assert ids == [(i, t.id) for i, t in items]
    for got, task in zip(load(), tasks, strict=True):
        assert got.run() == task.run()
        fields = ("id", "args", "kwargs", "operation_name", "worker_type", "resources", "max_retry")
        assert [getattr(got, f) for f in fields] == [getattr(task, f) for f in fields]
        assert got.outcome is None and got.max_retry == 3


def test_a_task_id_costs_few_python_calls() -> None:
    # A chunkwise flow's task: an operation and its chunk keys, a tuple of tuples of ints. Its
    # id is hashed without a call per container to ask for mazepa_id_components (plain tuples
    # and lists have none): 35 Python calls a task here (with the generator's), 39 before.
    op: Any = Offset(tuple(range(100)))
    op.make_task(((0, 0, 0),))  # (the operation's part of the hash is computed once)
    n = 64
    tasks: list[Any] = []
    calls = python_calls(lambda: tasks.extend(op.make_task(((i, 0, 1),)) for i in range(n)))
    assert calls <= 36 * n, calls / n
    assert len({t.id for t in tasks}) == n
