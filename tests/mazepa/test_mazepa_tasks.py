"""Tasks, taskable operations and their serialization."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

from zetta_utils import builder, mazepa
from zetta_utils.mazepa import serialization


@mazepa.taskable_operation
def multiply(a: int, b: int) -> int:
    return a * b


@mazepa.taskable_operation(operation_name="fail-op", worker_type="gpu", resources={"gpu": 1})
def fail_with(exc: Exception) -> None:
    raise exc


@mazepa.taskable_operation_cls
@attrs.frozen
class Scale:
    factor: int

    def __call__(self, x: int) -> int:
        return self.factor * x


@attrs.frozen
class Offset(mazepa.OperationBase):
    offset: int

    def __call__(self, x: int) -> int:
        return x + self.offset

    def get_operation_name(self) -> str:
        return f"Offset{self.offset}"


def test_direct_call_runs_the_function() -> None:
    assert multiply(3, 4) == 12
    assert multiply.__name__ == "multiply"


def test_make_task_and_run() -> None:
    task = multiply.make_task(3, b=5)
    assert isinstance(task, mazepa.Task)
    assert task.operation_name == "multiply"
    assert task.worker_type is None
    assert task.run() == 15
    outcome = task()
    assert outcome.succeeded and outcome.return_value == 15
    assert outcome.task_id == task.id
    assert outcome.execution_secs >= 0
    assert task.outcome is outcome


def test_failed_task_outcome_describes_the_error() -> None:
    task = fail_with.make_task(ValueError("bad value 42"))
    assert task.operation_name == "fail-op"
    assert task.worker_type == "gpu"
    assert task.resources == {"gpu": 1}
    outcome = task()
    assert not outcome.succeeded
    assert outcome.exception_type == "ValueError"
    assert outcome.error_message == "bad value 42"
    assert "bad value 42" in (outcome.traceback or "") and "fail_with" in (outcome.traceback or "")
    assert outcome.retryable is False
    assert isinstance(outcome.exception, ValueError)


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (ValueError("x"), False),
        (TypeError("x"), False),
        (KeyError("x"), False),
        (AssertionError("x"), False),
        (FileNotFoundError("x"), False),
        (PermissionError("x"), False),
        (OSError(5, "I/O error"), True),
        (ConnectionResetError("x"), True),
        (TimeoutError("x"), True),
        (MemoryError(), True),
        (mazepa.TransientError("try later"), True),
    ],
)
def test_transient_classification(exc: Exception, retryable: bool) -> None:
    assert fail_with.make_task(exc)().retryable is retryable


def test_register_transient_error_by_class_and_name() -> None:
    class FlakyServiceError(Exception):
        pass

    assert not mazepa.is_transient_error(FlakyServiceError())
    mazepa.register_transient_error(FlakyServiceError)
    assert mazepa.is_transient_error(FlakyServiceError())
    mazepa.register_transient_error(f"{__name__}.NamedFlaky")
    assert mazepa.is_transient_error(NamedFlaky())
    with pytest.raises(ValueError, match=r"module\.QualName"):
        mazepa.register_transient_error("NoModule")


class NamedFlaky(Exception):
    pass


def test_operation_class_decorator() -> None:
    op = Scale(3)
    assert op(2) == 6
    task = op.make_task(5)  # type: ignore[attr-defined]
    assert task.operation_name == "Scale"
    assert task.run() == 15
    assert Scale(3).make_task(5).id == task.id  # type: ignore[attr-defined]
    assert Scale(4).make_task(5).id != task.id  # type: ignore[attr-defined]


def test_operation_base_class() -> None:
    task = Offset(10).make_task(5)
    assert task.operation_name == "Offset10"
    assert task.id.startswith("Offset10-")
    assert task.run() == 15


def test_operation_class_options() -> None:
    @mazepa.taskable_operation_cls(operation_name="gpu-infer", worker_type="gpu")
    class Infer:
        def __call__(self, x: int) -> int:
            return x

    task = Infer().make_task(1)  # type: ignore[attr-defined]
    assert task.operation_name == "gpu-infer"
    assert task.worker_type == "gpu"


def test_operation_class_needs_call() -> None:
    with pytest.raises(TypeError, match="must define __call__"):

        @mazepa.taskable_operation_cls
        class NoCall:
            pass


def test_with_options_and_explicit_id() -> None:
    task = multiply.make_task(2, 3)
    other = task.with_options(task_id="my-id", worker_type="cpu-big", max_retry=7)
    assert other.id == "my-id"
    assert other.worker_type == "cpu-big"
    assert other.max_retry == 7
    assert task.id != "my-id"  # a copy
    with pytest.raises(TypeError, match="task_id"):
        task.with_options(task_id="")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"operation_name": ""}, "operation_name"),
        ({"worker_type": 3}, "worker_type"),
        ({"resources": {"gpu": -1}}, "resources"),
        ({"resources": ["gpu"]}, "resources"),
        ({"max_retry": -1}, "max_retry"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        mazepa.taskable_operation(**kwargs)(lambda: None)  # type: ignore[call-overload]


def test_args_summary_is_short() -> None:
    task = multiply.make_task(list(range(1000)), b="x" * 1000)  # type: ignore[arg-type]
    summary = task.args_summary()
    assert summary.startswith("multiply([0, 1, 2")
    assert "b='xxx" in summary
    assert len(summary) <= 400


def test_serialize_round_trip_of_module_function() -> None:
    task = multiply.make_task(6, 7)
    data = mazepa.serialize_task(task)
    back = mazepa.deserialize_task(data)
    assert back.id == task.id and back.operation_name == "multiply"
    assert back.fn is multiply  # pickled by reference, not by value
    assert back.run() == 42


def test_serialize_round_trip_of_spec_lambda() -> None:
    fn = builder.build({"@type": "lambda", "lambda_str": "lambda x: x * 10"})
    op = mazepa.taskable_operation(fn)
    task = op.make_task(4)
    back = mazepa.deserialize_task(mazepa.serialize_task(task))
    assert back.run() == 40
    assert back.id == task.id


def test_serialize_drops_outcome_and_checks_types() -> None:
    task = multiply.make_task(1, 2)
    task()
    assert mazepa.deserialize_task(mazepa.serialize_task(task)).outcome is None
    with pytest.raises(TypeError, match="expected a Task"):
        mazepa.serialize_task("not a task")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a Task"):
        mazepa.deserialize_task(pickle.dumps([1, 2]))


def test_outcomes_round_trip_and_unpicklable_values() -> None:
    ok = multiply.make_task(2, 2)()
    bad = fail_with.make_task(ValueError("boom"))()
    weird = mazepa.TaskOutcome(
        task_id="t", return_value=(x for x in range(3))
    )  # generators don't pickle
    back = serialization.deserialize_outcomes(serialization.serialize_outcomes([ok, bad, weird]))
    assert back[0].return_value == 4 and back[0].succeeded
    assert (
        back[1].exception is None
        and back[1].exception_type == "ValueError"
        and back[1].error_message == "boom"
    )
    assert not back[2].succeeded and "cannot be pickled" in (back[2].error_message or "")


class _UnpicklesBadly:
    """An operation that pickles but fails to unpickle (as one whose module is missing on the
    worker would)."""

    def __call__(self, x: int) -> int:
        return x

    def __reduce__(self) -> Any:
        return (_refuse, ())


def _refuse() -> None:
    raise ModuleNotFoundError("No module named 'only_on_the_parent'")


def _batch(tasks: list[mazepa.Task[Any]], start: int = 0) -> list[tuple[int, mazepa.Task[Any]]]:
    return [(start + i, t) for i, t in enumerate(tasks)]


@mazepa.taskable_operation_cls
@attrs.frozen
class Lookup:
    """An operation that carries data (as a chunkwise flow's carries its layers and settings)."""

    table: tuple[int, ...]

    def __call__(self, x: int) -> int:
        return self.table[x]


def test_a_worker_receives_each_operation_once() -> None:
    sent, received = serialization.SentOperations(), serialization.ReceivedOperations()
    double, triple = Lookup(tuple(range(0, 2000, 2))), Lookup(tuple(range(0, 3000, 3)))
    first = serialization.serialize_task_batch(
        _batch([double.make_task(1), double.make_task(2)]), sent
    )
    second = serialization.serialize_task_batch(
        _batch([double.make_task(5), triple.make_task(5)], 2), sent
    )
    third = serialization.serialize_task_batch(_batch([double.make_task(7)], 4), sent)
    ids, load = serialization.deserialize_task_batch(first, received)
    batch1 = load()
    assert [i for i, _ in ids] == [0, 1] and [t.run() for t in batch1] == [2, 4]
    assert batch1[0].fn is batch1[1].fn  # one object for the batch ...
    batch2 = serialization.deserialize_task_batch(second, received)[1]()
    batch3 = serialization.deserialize_task_batch(third, received)[1]()
    assert [t.run() for t in batch2 + batch3] == [10, 15, 14]
    assert batch2[0].fn is batch1[0].fn and batch3[0].fn is batch1[0].fn  # ... and for later ones
    assert len(sent) == len(received) == 2
    # what travels: the operation once, then only the tasks
    assert len(third) < 1000 < len(first) / 2
    assert len(serialization.serialize_task_batch(_batch([double.make_task(7)]))) > 2000  # without


def test_workers_forget_operations_with_the_parent() -> None:
    sent, received = serialization.SentOperations(capacity=2), serialization.ReceivedOperations()
    ops = [Scale(k) for k in range(1, 6)]
    results = []
    for round_ in range(3):
        for k, op in enumerate(ops):
            data = serialization.serialize_task_batch(
                _batch([op.make_task(10)], 5 * round_ + k), sent
            )
            results += [t.run() for t in serialization.deserialize_task_batch(data, received)[1]()]
            # the worker drops what the parent forgot (told with the next batch)
            assert len(sent) == min(2, 5 * round_ + k + 1) and len(received) <= 3
    assert results == [10 * k for k in range(1, 6)] * 3


def test_operation_that_cannot_be_unpickled_fails_each_batch_that_needs_it() -> None:
    sent, received = serialization.SentOperations(), serialization.ReceivedOperations()
    bad = mazepa.taskable_operation(_UnpicklesBadly(), operation_name="bad")
    messages = [
        serialization.serialize_task_batch(_batch([bad.make_task(i)], i), sent) for i in range(2)
    ]
    for data in messages:
        _, load = serialization.deserialize_task_batch(data, received)
        with pytest.raises(
            RuntimeError,
            match=(
                "could not be unpickled: ModuleNotFoundError: No module named 'only_on_the_parent'"
            ),
        ):
            load()
    good = serialization.serialize_task_batch(_batch([Scale(4).make_task(2)], 2), sent)
    assert serialization.deserialize_task_batch(good, received)[1]()[0].run() == 8


@pytest.mark.filterwarnings("ignore:mazepa ids")
def test_a_batch_that_cannot_be_pickled_leaves_the_record_of_sent_operations_alone() -> None:
    import threading

    sent = serialization.SentOperations()
    op = Scale(3)
    with pytest.raises(TypeError):
        serialization.serialize_task_batch(
            _batch([op.make_task(1), op.make_task(threading.Lock())]), sent
        )
    assert len(sent) == 0
    data = serialization.serialize_task_batch(_batch([op.make_task(2)]), sent)
    tasks = serialization.deserialize_task_batch(data, serialization.ReceivedOperations())[1]()
    assert tasks[0].run() == 6  # the operation came along: the failed batch did not count as sent


def test_plain_successes_travel_as_their_duration() -> None:
    # A success without a value (a chunkwise task's) is sent as (id, duration): no pickle of its
    # own on either side; anything else about an outcome keeps it on the full path.
    plain = mazepa.TaskOutcome(task_id="a", execution_secs=0.25)
    others = [
        mazepa.TaskOutcome(task_id="b", return_value=0, execution_secs=0.5),
        mazepa.TaskOutcome(task_id="c", skipped=True),
        mazepa.TaskOutcome(task_id="d", retryable=True, execution_secs=1.0),
        mazepa.TaskOutcome(task_id="e", execution_secs=1),  # (an int: kept as it is)
        multiply.make_task(2, 3)(),
        fail_with.make_task(ValueError("boom"))(),
    ]
    outcomes = [plain, *others]
    data = serialization.serialize_outcomes(outcomes)
    assert [type(blob) for _, blob in pickle.loads(data)] == [float] + [bytes] * len(others)
    back = serialization.deserialize_outcomes(data)
    assert back[:-1] == outcomes[:-1]  # (attrs equality: every field but the exception)
    assert [type(o.execution_secs) for o in back] == [type(o.execution_secs) for o in outcomes]
    assert back[-1].exception_type == "ValueError" and back[-1].exception is None
