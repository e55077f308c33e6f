"""mazepa.single_process() and held checkpoint records (mazepa.hold_record / release_record)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa.checkpoint import CheckpointStore

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def is_single(i: int) -> bool:
    return mazepa.single_process()


@mazepa.taskable_operation
def nested_is_single(num_procs: int) -> list[bool]:
    tasks = [is_single.make_task(i) for i in range(2)]
    mazepa.execute(tasks, num_procs=num_procs, show_progress=False)
    return [mazepa.single_process()] + [bool(t.outcome and t.outcome.return_value) for t in tasks]


def _values(tasks: list[mazepa.Task[Any]]) -> list[Any]:
    return [t.outcome.return_value if t.outcome is not None else None for t in tasks]


def test_single_process_serial_runs_and_their_nested_serial_runs() -> None:
    assert not mazepa.single_process()
    seen: list[bool] = []

    @mazepa.flow_schema
    def flow(tasks: list[mazepa.Task[Any]]) -> Iterator[Any]:
        seen.append(mazepa.single_process())
        yield tasks

    tasks = [is_single.make_task(i) for i in range(3)]
    mazepa.execute(flow(tasks), show_progress=False)
    assert seen == [True] and _values(tasks) == [True] * 3
    nested = [nested_is_single.make_task(1), nested_is_single.make_task(2)]
    mazepa.execute(nested, show_progress=False, worker_start_cost_s=0)
    # a serial run nested in a serial one; a 2-process run nested in one (its first task too)
    assert _values(nested) == [[True, True, True], [True, False, False]]
    assert not mazepa.single_process()


@pytest.mark.parametrize("start_cost", [None, 0.0], ids=["first-task-in-driver", "workers"])
def test_not_single_process_with_several_processes(start_cost: float | None) -> None:
    tasks = [is_single.make_task(i) for i in range(4)]
    nested = nested_is_single.make_task(1)
    mazepa.execute(
        tasks + [nested], num_procs=2, show_progress=False, worker_start_cost_s=start_cost
    )
    assert _values(tasks) == [False] * 4
    assert _values([nested]) == [[False, False, False]]  # also in a serial run nested there


def test_not_single_process_with_an_executor_given() -> None:
    tasks = [is_single.make_task(i) for i in range(2)]
    mazepa.execute(tasks, executor=mazepa.SerialExecutor(), show_progress=False)
    assert _values(tasks) == [False, False]


@mazepa.taskable_operation
def held(folder: str, i: int) -> str | None:
    """Holds its own record; counts its runs."""
    path = Path(folder, f"held{i}")
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))
    return mazepa.hold_record()


@mazepa.taskable_operation
def release(task_id: str) -> None:
    mazepa.release_record(task_id)


@mazepa.taskable_operation
def plain(i: int) -> int:
    return i


@mazepa.flow_schema
def holding_stage(folder: str) -> Iterator[Any]:
    yield [held.make_task(folder, i) for i in range(3)]


@mazepa.flow_schema
def holds_flow(folder: str, checkpoint: str, seen: list[list[str]]) -> Iterator[Any]:
    ids = [held.make_task(folder, i).id for i in range(3)]
    stage = holding_stage(folder)
    yield stage
    yield plain.make_task(1)
    yield mazepa.Dependency()
    seen.append(Path(checkpoint).read_text().split())
    yield release.make_task(ids[0])  # from a task
    yield mazepa.Dependency()
    seen.append(Path(checkpoint).read_text().split())
    mazepa.release_record(ids[1])  # from the flow
    yield plain.make_task(2)
    yield mazepa.Dependency()
    seen.append(Path(checkpoint).read_text().split())
    if Path(folder, "release-all").exists():
        mazepa.release_record(ids[2])


def test_held_records_wait_for_their_release(tmp_path: Path) -> None:
    checkpoint = str(tmp_path / "run.ckpt")
    folder = str(tmp_path)
    ids = [held.make_task(folder, i).id for i in range(3)]
    stage_id = holding_stage(folder).id
    seen: list[list[str]] = []
    mazepa.execute(holds_flow(folder, checkpoint, seen), checkpoint=checkpoint, show_progress=False)
    one, two = plain.make_task(1).id, plain.make_task(2).id
    rel0 = release.make_task(ids[0]).id
    # finished and held: neither the tasks nor their (finished) sub-flow are recorded
    assert seen[0] == [one]
    # released from a task: recorded then (before the releasing task, which finished after)
    assert seen[1] == [one, ids[0], rel0]
    # released from the flow: recorded before what finished after the release
    assert seen[2] == [one, ids[0], rel0, ids[1], two]
    final = Path(checkpoint).read_text().split()
    assert ids[2] not in final and stage_id not in final  # never released: never recorded
    assert holds_flow(folder, checkpoint, []).id not in final
    assert all((tmp_path / f"held{i}").read_text() == "1" for i in range(3))

    # resumed: the held task never released runs again, the others are skipped
    (tmp_path / "release-all").write_text("")
    summary = mazepa.execute(
        holds_flow(folder, checkpoint, []), checkpoint=checkpoint, show_progress=False
    )
    assert [(tmp_path / f"held{i}").read_text() for i in range(3)] == ["1", "1", "2"]
    assert summary.tasks_skipped == 5  # held 0 and 1, plain 1 and 2, the release task
    final = Path(checkpoint).read_text().split()
    assert ids[2] in final and stage_id in final
    assert final.index(stage_id) > final.index(ids[2])  # the flow after the task it held
    assert holds_flow(folder, checkpoint, []).id == final[-1]
    # everything recorded: nothing runs
    again = mazepa.execute(
        holds_flow(folder, checkpoint, []), checkpoint=checkpoint, show_progress=False
    )
    assert again.tasks_done == 0


def test_held_records_are_not_written_when_a_run_fails(tmp_path: Path) -> None:
    @mazepa.taskable_operation
    def fails() -> None:
        raise ValueError("fails on purpose")

    @mazepa.flow_schema
    def flow() -> Iterator[Any]:
        yield [held.make_task(str(tmp_path), i) for i in range(2)]
        yield mazepa.Dependency()
        yield fails.make_task()

    checkpoint = tmp_path / "fail.ckpt"
    with pytest.raises(mazepa.ExecutionError, match="fails on purpose"):
        mazepa.execute(flow(), checkpoint=checkpoint, show_progress=False)
    assert CheckpointStore(checkpoint).load() == set()


def test_holds_do_nothing_with_several_processes(tmp_path: Path) -> None:
    tasks = [held.make_task(str(tmp_path), i) for i in range(3)]
    checkpoint = tmp_path / "procs.ckpt"
    mazepa.execute(tasks, num_procs=2, checkpoint=checkpoint, show_progress=False)
    assert _values(tasks) == [None] * 3
    assert CheckpointStore(checkpoint).load() == {t.id for t in tasks}
