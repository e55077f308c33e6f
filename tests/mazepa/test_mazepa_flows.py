"""Flows and the scheduler, run serially in this process."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from zetta_utils import builder, mazepa

EVENTS: list[str] = []


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


@mazepa.taskable_operation
def record(label: str) -> str:
    EVENTS.append(label)
    return label


@mazepa.taskable_operation
def square(x: int) -> int:
    return x * x


def run(target: Any, **kwargs: Any) -> mazepa.ExecutionSummary:
    return mazepa.execute(target, show_progress=False, **kwargs)


def test_execute_a_task_a_list_and_a_flow() -> None:
    task = square.make_task(7)
    summary = run(task)
    assert task.outcome is not None and task.outcome.return_value == 49
    assert summary.tasks_done == 1 and summary.completed

    tasks = [square.make_task(i) for i in range(5)]
    run(tasks)
    assert [t.outcome.return_value for t in tasks if t.outcome] == [0, 1, 4, 9, 16]


def test_barrier_waits_for_everything_yielded_before() -> None:
    seen: dict[str, Any] = {}

    @mazepa.flow_schema
    def two_stages(n: int) -> Iterator[Any]:
        first = [record.make_task(f"a{i}") for i in range(n)]
        yield first
        seen["before"] = [t.outcome for t in first]
        yield mazepa.Dependency()
        seen["after"] = [t.outcome.return_value if t.outcome else None for t in first]
        seen["events_at_barrier"] = list(EVENTS)
        yield [record.make_task(f"b{i}") for i in range(n)]

    run(two_stages(5))
    assert seen["before"].count(None) >= 4  # the flow went on while its first tasks were pending
    assert seen["after"] == [f"a{i}" for i in range(5)]
    assert sorted(seen["events_at_barrier"]) == sorted(f"a{i}" for i in range(5))
    assert len(EVENTS) == 10


def test_named_dependency_waits_only_for_its_targets() -> None:
    seen: dict[str, Any] = {}

    @mazepa.flow_schema
    def named() -> Iterator[Any]:
        early = record.make_task("early")
        yield early
        yield mazepa.Dependency(early)
        seen["early_done"] = early.outcome is not None
        late = [record.make_task(f"late{i}") for i in range(3)]
        yield late
        yield mazepa.Dependency(late[0].id)  # ids work too
        seen["late0_done"] = late[0].outcome is not None

    run(named())
    assert seen == {"early_done": True, "late0_done": True}


def test_sub_flows_and_dependency_on_a_flow() -> None:
    seen: dict[str, Any] = {}

    @mazepa.flow_schema
    def child(tag: str, n: int) -> Iterator[Any]:
        yield [record.make_task(f"{tag}-x{i}") for i in range(n)]
        yield mazepa.Dependency()
        yield record.make_task(f"{tag}-final")

    @mazepa.flow_schema
    def parent() -> Iterator[Any]:
        left = child("L", 3)
        yield left
        yield child("R", 2)
        yield mazepa.Dependency(left)
        seen["at_left"] = list(EVENTS)
        yield mazepa.Dependency()
        seen["at_all"] = list(EVENTS)
        yield record.make_task("end")

    run(parent())
    assert "L-final" in seen["at_left"]
    assert {"L-final", "R-final"} <= set(seen["at_all"])
    assert EVENTS[-1] == "end"
    # Inside each child, the final task ran after its stage.
    for tag, n in (("L", 3), ("R", 2)):
        final = EVENTS.index(f"{tag}-final")
        assert all(EVENTS.index(f"{tag}-x{i}") < final for i in range(n))


def test_a_sub_flow_whose_dependencies_finish_goes_before_its_parents_next_items() -> None:
    # The parent keeps yielding chunk tasks one at a time; a sub-flow waiting for the first chunk
    # resumes as soon as that one is done, not after the parent has run out of chunks.
    @mazepa.flow_schema
    def after(first: mazepa.Task[Any]) -> Iterator[Any]:
        yield mazepa.Dependency(first)
        yield record.make_task("reduce 0")

    @mazepa.flow_schema
    def parent(n: int) -> Iterator[Any]:
        first = record.make_task("chunk 0")
        yield first
        yield after(first)
        for i in range(1, n):
            yield record.make_task(f"chunk {i}")

    run(parent(300))
    # (tiny tasks: the serial executor takes up to 64 at a time, the first batch all chunks)
    assert EVENTS.index("reduce 0") <= 64


def test_tasks_of_a_resumed_flow_go_before_tasks_already_waiting() -> None:
    # A reduction unblocked by its chunk runs before chunks the scheduler had already queued, so
    # that what it frees (intermediaries) is freed early.
    @mazepa.flow_schema
    def after(first: mazepa.Task[Any]) -> Iterator[Any]:
        yield mazepa.Dependency(first)
        yield [record.make_task("reduce 0"), record.make_task("reduce 1")]

    @mazepa.flow_schema
    def parent() -> Iterator[Any]:
        first = record.make_task("chunk 0")
        yield first
        yield after(first)
        yield [record.make_task(f"chunk {i}") for i in range(1, 10)]

    scheduler = mazepa.Scheduler(parent())

    def labels(batch: list[mazepa.Task[Any]]) -> list[str]:
        return [t.args[0] for t in batch]

    first = scheduler.next_batch(1)
    assert labels(first) == ["chunk 0"]
    assert labels(scheduler.next_batch(1)) == ["chunk 1"]  # chunks 2-9 now wait in the queue
    assert scheduler.num_ready == 8
    scheduler.handle_outcome(mazepa.TaskOutcome(task_id=first[0].id, return_value="chunk 0"))
    assert labels(scheduler.next_batch(3)) == ["reduce 0", "reduce 1", "chunk 2"]


def test_the_serial_executor_queues_about_20_ms_of_work() -> None:
    # The durations are declared, not measured: batch sizes must not depend on the machine.
    declared: dict[str, float] = {}
    executor = mazepa.SerialExecutor(
        batch_size=64, duration_of=lambda outcome: declared[outcome.task_id]
    )
    assert executor.free_slots() == 1  # durations unknown yet
    first = square.make_task(1)
    declared[first.id] = 0.006
    executor.submit([first])
    assert executor.free_slots() == 0
    assert executor.poll_outcomes(0)[0].succeeded
    assert executor.free_slots() == 3  # 6 ms tasks: int(20 / 6) at a time
    for i in range(20):
        tiny = square.make_task(i + 2)
        declared[tiny.id] = 1e-6
        executor.submit([tiny])
        executor.poll_outcomes(0)
    assert executor.free_slots() == 64  # tiny ones: a whole batch


def test_the_serial_executor_measures_durations_by_default() -> None:
    executor = mazepa.SerialExecutor(batch_size=64)
    executor.submit([square.make_task(3)])
    (outcome,) = executor.poll_outcomes(0)
    assert executor._durations.mean_secs == outcome.execution_secs > 0


def test_flow_schema_classes() -> None:
    @mazepa.flow_schema_cls
    @attrs.frozen
    class Repeat:
        label: str

        def flow(self, n: int) -> Iterator[Any]:
            for i in range(n):
                yield record.make_task(f"{self.label}{i}")
                yield mazepa.Dependency()

    @attrs.frozen
    class Typed(mazepa.FlowSchemaBase):
        label: str

        def flow(self, n: int) -> Iterator[Any]:
            yield [record.make_task(f"{self.label}{i}") for i in range(n)]

    flow = Repeat("r")(3)  # type: ignore[operator]
    assert isinstance(flow, mazepa.Flow) and flow.name == "Repeat"
    assert Repeat("r")(3).id == flow.id != Repeat("s")(3).id  # type: ignore[operator]
    run([flow, Typed("t")(2)])
    assert EVENTS.count("r0") == 1 and sorted(EVENTS) == ["r0", "r1", "r2", "t0", "t1"]
    assert EVENTS.index("r0") < EVENTS.index("r1") < EVENTS.index("r2")

    with pytest.raises(TypeError, match="flow"):

        @mazepa.flow_schema_cls
        class NoFlow:
            pass


@builder.register("test_mazepa.labelled_flow")
def labelled_flow(label: str, n: int) -> mazepa.Flow:
    return _labelled(label, n)


@mazepa.flow_schema
def _labelled(label: str, n: int) -> Iterator[Any]:
    yield [record.make_task(f"{label}{i}") for i in range(n)]


def test_builder_spec_with_seq_and_concurrent_flows() -> None:
    spec = {
        "@type": "mazepa.execute",
        "show_progress": False,
        "target": {
            "@type": "mazepa.seq_flow",
            "flows": [
                {"@type": "test_mazepa.labelled_flow", "label": "a", "n": 3},
                {
                    "@type": "mazepa.concurrent_flow",
                    "flows": [
                        {"@type": "test_mazepa.labelled_flow", "label": "b", "n": 2},
                        {"@type": "test_mazepa.labelled_flow", "label": "c", "n": 2},
                    ],
                },
                {"@type": "test_mazepa.labelled_flow", "label": "d", "n": 1},
            ],
        },
    }
    summary = builder.build(spec)
    assert isinstance(summary, mazepa.ExecutionSummary) and summary.tasks_done == 8
    assert set(EVENTS[:3]) == {"a0", "a1", "a2"}
    assert set(EVENTS[3:7]) == {"b0", "b1", "c0", "c1"}
    assert EVENTS[7] == "d0"


def test_seq_flow_orders_stages_even_when_ahead_reading_would_not() -> None:
    @mazepa.flow_schema
    def stage(tag: str) -> Iterator[Any]:
        yield [record.make_task(f"{tag}{i}") for i in range(3)]

    seen: dict[str, Any] = {}

    @mazepa.flow_schema
    def check() -> Iterator[Any]:
        seen["events"] = list(EVENTS)
        yield record.make_task("check")

    run(mazepa.seq_flow([stage("x"), check(), stage("y")]))
    assert sorted(seen["events"]) == ["x0", "x1", "x2"]
    with pytest.raises(TypeError, match=r"stages\[1\]"):
        mazepa.seq_flow([stage("x"), 3])  # type: ignore[list-item]


def test_duplicate_tasks_all_run() -> None:
    task = record.make_task("same")
    run([task, task, record.make_task("same")])
    assert EVENTS == ["same", "same", "same"]


def test_flow_exceptions_stop_the_run_with_the_flow_name() -> None:
    @mazepa.flow_schema
    def broken() -> Iterator[Any]:
        yield record.make_task("ok")
        yield mazepa.Dependency()
        raise RuntimeError("flow logic went wrong")

    with pytest.raises(mazepa.ExecutionError) as info:
        run(broken())
    err = info.value
    assert len(err.flow_failures) == 1
    failure = err.flow_failures[0]
    assert failure.flow_name == "broken" and failure.exception_type == "RuntimeError"
    assert "flow logic went wrong" in str(err) and "raise RuntimeError" in failure.traceback


def test_flows_yielding_non_work_are_reported() -> None:
    @mazepa.flow_schema
    def bad() -> Iterator[Any]:
        yield 42

    @mazepa.flow_schema
    def bad_list() -> Iterator[Any]:
        yield [record.make_task("a"), mazepa.Dependency()]

    with pytest.raises(mazepa.ExecutionError, match="yielded int"):
        run(bad())
    with pytest.raises(mazepa.ExecutionError, match="list containing Dependency"):
        run(bad_list())


def test_dependency_cycle_is_a_deadlock_error() -> None:
    def waits_for(other: str) -> Iterator[Any]:
        yield record.make_task(f"before waiting for {other}")
        yield mazepa.Dependency(other)
        yield record.make_task(f"after waiting for {other}")

    a = mazepa.Flow(waits_for, ("flow-b",), flow_id="flow-a")
    b = mazepa.Flow(waits_for, ("flow-a",), flow_id="flow-b")
    with pytest.raises(mazepa.ExecutionError, match="deadlock") as info:
        run([a, b])
    assert "waiting for named dependencies: flow-b" in str(info.value)
    assert not any(e.startswith("after") for e in EVENTS)


def test_a_flow_in_its_own_arguments_needs_an_explicit_id() -> None:
    @mazepa.flow_schema
    def holds(box: list[mazepa.Flow]) -> Iterator[Any]:
        yield record.make_task("x")

    box: list[mazepa.Flow] = []
    flow = holds(box)
    box.append(flow)
    with pytest.raises(ValueError, match="contain the flow itself"):
        _ = flow.id


def test_bad_targets_and_arguments_are_named() -> None:
    with pytest.raises(TypeError, match=r"`target\[1\]` must be a Task, a Flow"):
        run([square.make_task(1), "nope"])
    with pytest.raises(ValueError, match="num_procs"):
        run(square.make_task(1), num_procs=0)
    with pytest.raises(ValueError, match="max_retry"):
        run(square.make_task(1), max_retry=-1)
    with pytest.raises(TypeError, match="Dependency: expected"):
        mazepa.Dependency(3)  # type: ignore[arg-type]


class _Gauge:
    """How far the flow generator ran ahead of completed tasks."""

    def __init__(self) -> None:
        self.yielded = 0
        self.done = 0
        self.max_ahead = 0


GAUGE = _Gauge()


@mazepa.taskable_operation
def tick(i: int) -> None:
    GAUGE.done += 1


@mazepa.flow_schema
def counted(n: int) -> Iterator[Any]:
    for i in range(n):
        GAUGE.yielded += 1
        GAUGE.max_ahead = max(GAUGE.max_ahead, GAUGE.yielded - GAUGE.done)
        yield tick.make_task(i)


def _reset_gauge() -> None:
    GAUGE.yielded = GAUGE.done = GAUGE.max_ahead = 0


def test_flows_are_consumed_lazily() -> None:
    _reset_gauge()
    # The executor asks for 1000 tasks at a time; the look-ahead cap still holds.
    run(counted(5_000), max_pending_tasks=100, batch_size=1000)
    assert GAUGE.done == 5_000
    assert GAUGE.max_ahead <= 100


def test_memory_stays_bounded_for_a_long_flow() -> None:
    _reset_gauge()
    tracemalloc.start()
    try:
        run(counted(10_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert GAUGE.done == 10_000
    # Materialising the 10k tasks up front takes about 6 MB here; pulling them lazily, 0.2 MB.
    assert peak < 1.5 * 2**20, peak


@pytest.mark.slow
def test_a_200k_task_flow_runs_with_bounded_look_ahead() -> None:
    _reset_gauge()
    summary = run(counted(200_000))
    assert summary.tasks_done == 200_000 == GAUGE.done
    assert GAUGE.max_ahead <= 10_000
