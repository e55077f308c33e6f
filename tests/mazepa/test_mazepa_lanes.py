"""Which local worker runs which task: contiguous spans of the flows' order, stealing, urgent work
first, and a prefetched task behind a long one."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa.lanes import TaskLanes
from zetta_utils.mazepa.local_pool import LocalProcessExecutor
from zetta_utils.mazepa.task_outcome import TaskOutcome

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_each_lane_claims_a_contiguous_span() -> None:
    lanes: TaskLanes[int] = TaskLanes(2)
    lanes.add(range(32))
    # the first lane to ask takes half of what nobody claimed, the second the rest
    assert lanes.take(0, 4) == [0, 1, 2, 3]
    assert lanes.take(1, 4) == [16, 17, 18, 19]
    assert lanes.take(0, 4) == [4, 5, 6, 7]
    assert lanes.lane_sizes() == [8, 12]
    # what arrives while both lanes hold work goes to the first lane that runs dry, whole
    lanes.add(range(32, 40))
    assert lanes.take(0, 8) == [8, 9, 10, 11, 12, 13, 14, 15]
    assert lanes.take(0, 8) == list(range(32, 40))
    assert lanes.lane_sizes() == [0, 12]
    assert len(lanes) == 12


def test_a_dry_lane_steals_the_far_half_of_the_fullest() -> None:
    lanes: TaskLanes[int] = TaskLanes(3)
    lanes.add(range(12))
    assert lanes.take(0, 1) == [0]  # claims 0-3
    assert lanes.take(1, 1) == [4]  # claims 4-7
    assert lanes.take(2, 1) == [8]  # claims the rest, 8-11
    assert lanes.take(2, 3) == [9, 10, 11]
    # lane 2 is dry and nothing is unclaimed: the far end of lane 0 (1, 2, 3), not its next task
    assert lanes.take(2, 2) == [2, 3]
    assert lanes.lane_sizes() == [1, 3, 0]
    assert lanes.take(0, 3) == [1, 6, 7]  # then lane 0 steals from lane 1
    assert lanes.take(1, 5) == [5]
    assert lanes.take(1, 5) == []
    assert len(lanes) == 0


def test_first_tasks_go_before_every_lane_and_put_back_tasks_to_their_lane() -> None:
    lanes: TaskLanes[str] = TaskLanes(2)
    lanes.add(["a", "b", "c", "d"])
    assert lanes.take(0, 1) == ["a"]  # lane 0: b
    lanes.add_first(["r1", "r2"])
    lanes.add_first(["retry"])
    assert lanes.take(1, 2) == ["retry", "r1"]
    # lane 0 runs dry: it claims its share of c, d (lane 1 is empty too)
    assert lanes.take(0, 3) == ["r2", "b", "c"]
    lanes.put_back(0, ["x", "y"])
    assert lanes.take(0, 9) == ["x", "y", "d"]
    with pytest.raises(ValueError, match="num_lanes"):
        TaskLanes(0)


def test_the_urgent_tasks_of_a_batch_are_counted() -> None:
    @mazepa.taskable_operation
    def op(name: str) -> str:
        return name

    first = op.make_task("chunk 0")

    @mazepa.flow_schema
    def after() -> Iterator[Any]:
        yield mazepa.Dependency(first)
        yield op.make_task("reduce 0")

    @mazepa.flow_schema
    def parent() -> Iterator[Any]:
        yield first
        yield after()
        for i in range(1, 10):
            yield op.make_task(f"chunk {i}")

    scheduler = mazepa.Scheduler(parent())
    batch = scheduler.next_batch(2)
    assert [t().return_value for t in batch] == ["chunk 0", "chunk 1"]
    assert scheduler.num_urgent_in_batch == 0
    scheduler.handle_outcome(first())
    batch = scheduler.next_batch(3)
    assert [t().return_value for t in batch] == ["reduce 0", "chunk 2", "chunk 3"]
    assert scheduler.num_urgent_in_batch == 1


@mazepa.taskable_operation
def report_pid(i: int) -> tuple[int, int]:
    return i, os.getpid()


def _declared_100ms(outcome: TaskOutcome[Any]) -> float:
    return 0.1


def _run_on_pool(pool: LocalProcessExecutor, tasks: list[mazepa.Task[Any]]) -> list[int]:
    """Submitted at once; the pid that ran each task, in the tasks' order."""
    pool.submit(tasks)
    outcomes: list[TaskOutcome[Any]] = []
    while len(outcomes) < len(tasks):
        outcomes.extend(pool.poll_outcomes(1.0))
    returns = sorted(cast(tuple[int, int], o.return_value) for o in outcomes)
    assert [i for i, _ in returns] == list(range(len(tasks)))
    return [pid for _, pid in returns]


def test_workers_run_contiguous_spans_of_the_flow() -> None:
    # Dealt out in turn, neighbours would run on different workers about every other task (64
    # switches here); in spans, the workers meet where the two halves touch and where one
    # steals from the other (each steal takes half of what the other has left: a few).
    n = 128
    with LocalProcessExecutor(2, duration_of=_declared_100ms) as pool:
        pids = _run_on_pool(pool, [report_pid.make_task(i) for i in range(n)])
    switches = sum(a != b for a, b in itertools.pairwise(pids))
    assert switches <= n // 8, pids


def test_a_worker_running_a_long_task_has_its_next_one_already(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Long tasks (100 ms, declared) go one per message; a busy worker holds one more, so it does
    # not wait for the parent between tasks.
    held: list[int] = []
    send = LocalProcessExecutor._send

    def counting(self: LocalProcessExecutor, w: Any, room: int, batch: int) -> None:
        send(self, w, room, batch)
        held.append(len(w.outstanding))

    monkeypatch.setattr(LocalProcessExecutor, "_send", counting)
    tasks = [report_pid.make_task(i) for i in range(40)]
    with LocalProcessExecutor(2, duration_of=_declared_100ms) as pool:
        mazepa.execute(tasks, executor=pool, show_progress=False)
    returns = [t.outcome.return_value if t.outcome is not None else None for t in tasks]
    assert [r[0] if r is not None else None for r in returns] == list(range(len(tasks)))
    assert max(held) == 2


@mazepa.taskable_operation
def wait_for_file(path: str) -> int:
    deadline = time.monotonic() + 60  # (only if the test is broken)
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


def test_a_long_task_is_prefetched_only_when_every_busy_worker_can_get_one(
    tmp_path: Path,
) -> None:
    # At the end of the work, a task sent behind a running long one would wait for it while
    # another worker frees up and idles: the last few wait in the parent for the first free one.
    go = str(tmp_path / "go")
    with LocalProcessExecutor(2, duration_of=_declared_100ms) as pool:
        _run_on_pool(pool, [report_pid.make_task(i) for i in range(2)])  # durations learnt
        pool.submit([wait_for_file.make_task(go), wait_for_file.make_task(go + "-too")])
        assert sorted(len(w.outstanding) for w in pool._workers) == [1, 1]
        pool.submit([report_pid.make_task(0)])
        assert len(pool._unsent) == 1  # two busy workers, one task: kept back
        assert sorted(len(w.outstanding) for w in pool._workers) == [1, 1]
        pool.submit([report_pid.make_task(1)])
        assert len(pool._unsent) == 0  # one for each
        assert sorted(len(w.outstanding) for w in pool._workers) == [2, 2]
        Path(go).touch()
        Path(go + "-too").touch()
        outcomes: list[TaskOutcome[Any]] = []
        while len(outcomes) < 4:
            outcomes.extend(pool.poll_outcomes(1.0))
        assert all(o.exception_type is None for o in outcomes)


def test_first_tasks_given_a_lane_go_to_its_worker_and_elsewhere_only_rather_than_idle() -> None:
    lanes: TaskLanes[str] = TaskLanes(2)
    lanes.add(["a", "b", "c", "d"])
    lanes.add_first(["for 1"], lane=1)
    lanes.add_first(["retry"])
    assert len(lanes) == 6
    assert lanes.take(0, 2) == ["retry", "a"]  # not lane 1's; lane 0 claims a, b
    assert lanes.num_preferred(1) == 1
    assert lanes.take(1, 2) == ["for 1", "c"]  # its own first, then it claims c, d
    lanes.add_first(["r0", "r1"], lane=0)
    assert lanes.take_preferred(1, 5) == []
    # lane 1: its own lane, a stolen span of lane 0's, and only then what waits for lane 0
    # (the last given: the first is the likeliest to find its inputs still in memory there)
    assert lanes.take(1, 3) == ["d", "b", "r1"]
    assert lanes.take(0, 5) == ["r0"]
    assert len(lanes) == 0


def _one_task_on(pool: LocalProcessExecutor, task: mazepa.Task[Any]) -> int:
    """Submitted first (as work released by finished tasks is) to idle workers: the pid that ran
    it."""
    pool.submit_first([task])
    outcomes: list[TaskOutcome[Any]] = []
    while not outcomes:
        outcomes.extend(pool.poll_outcomes(1.0))
    assert outcomes[0].exception_type is None, outcomes[0].traceback
    return cast(tuple[int, int], outcomes[0].return_value)[1]


def test_a_task_runs_on_the_worker_that_ran_most_of_the_tasks_it_reads_from() -> None:
    # A reduction reads what the top-level tasks it names (``reads_from``) wrote; the worker that
    # ran them may still hold it in memory. Without the hint, work for idle workers goes to the
    # first of them, whoever ran what.
    with LocalProcessExecutor(2, duration_of=_declared_100ms) as pool:
        producers = [report_pid.make_task(i) for i in range(8)]
        pids = _run_on_pool(pool, producers)
        ran: dict[int, list[str]] = {}
        for task, pid in zip(producers, pids, strict=True):
            ran.setdefault(pid, []).append(task.id)
        assert len(ran) == 2  # each worker claimed a span
        (a, ids_a), (b, ids_b) = sorted(ran.items())
        for i, (pid, reads) in enumerate(
            [
                (a, ids_a[:1]),
                (b, ids_b[:1]),
                (a, ids_a[:2] + ids_b[:1]),  # most of them
                (b, ids_a[:1] + ids_b[:2] + ["an unknown task"]),
                (b, ids_b),
                (a, ids_a),
            ]
        ):
            consumer = report_pid.make_task(100 + i).with_options(reads_from=reads)
            assert pool.preferred_worker(consumer) is not None
            assert _one_task_on(pool, consumer) == pid, (i, pid)
        # no hint, a tie, or no task it names known: any worker
        assert pool.preferred_worker(report_pid.make_task(200)) is None
        tie = report_pid.make_task(201).with_options(reads_from=ids_a[:1] + ids_b[:1])
        assert pool.preferred_worker(tie) is None
        unknown = report_pid.make_task(202).with_options(reads_from=["an unknown task"])
        assert pool.preferred_worker(unknown) is None
    with pytest.raises(TypeError, match="reads_from"):
        report_pid.make_task(0).with_options(reads_from="one id")


def test_the_reads_from_hint_stays_with_the_sender() -> None:
    from zetta_utils.mazepa.serialization import (
        deserialize_task,
        deserialize_task_batch,
        serialize_task,
        serialize_task_batch,
    )

    task = report_pid.make_task(1).with_options(reads_from=["x" * 40] * 100)
    assert task.reads_from == ("x" * 40,) * 100
    plain = report_pid.make_task(1)
    assert deserialize_task(serialize_task(task)).reads_from == ()
    assert len(serialize_task(task)) == len(serialize_task(plain))
    _, load = deserialize_task_batch(serialize_task_batch([(0, task)]))
    assert load()[0].reads_from == ()
