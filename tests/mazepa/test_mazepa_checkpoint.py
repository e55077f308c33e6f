"""Resumable runs: a checkpoint records finished work and a rerun skips it."""

from __future__ import annotations

import os
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
def count_run(folder: str, i: int) -> int:
    """Counts its own runs in a file; task 12 fails while the file `fail` exists."""
    path = Path(folder, f"count{i}")
    runs = int(path.read_text()) + 1 if path.exists() else 1
    # atomically: a failed run stops its workers, possibly in the middle of this write
    tmp = Path(folder, f".count{i}.{os.getpid()}")
    tmp.write_text(str(runs))
    os.replace(tmp, path)
    if i == 12 and Path(folder, "fail").exists():
        raise ValueError("task 12 fails on purpose")
    return runs


@mazepa.flow_schema
def stage(folder: str, lo: int, hi: int) -> Iterator[Any]:
    Path(folder, f"stage{lo}-started").write_text("")  # to see whether a rerun walks it again
    yield [count_run.make_task(folder, i) for i in range(lo, hi)]


@mazepa.flow_schema
def two_stages(folder: str) -> Iterator[Any]:
    yield stage(folder, 0, 10)
    yield mazepa.Dependency()
    yield stage(folder, 10, 20)


def counts(folder: Path) -> dict[int, int]:
    return {
        i: int(Path(folder, f"count{i}").read_text())
        for i in range(20)
        if Path(folder, f"count{i}").exists()
    }


@pytest.mark.parametrize("num_procs", [1, 2], ids=["serial", "2procs"])
def test_rerun_skips_finished_tasks_and_flows(tmp_path: Path, num_procs: int) -> None:
    work = tmp_path / "work"
    work.mkdir()
    checkpoint = tmp_path / "run.ckpt"
    (work / "fail").write_text("")
    with pytest.raises(mazepa.ExecutionError, match="task 12 fails on purpose"):
        mazepa.execute(
            two_stages(str(work)), num_procs=num_procs, checkpoint=checkpoint, show_progress=False
        )
    first = counts(work)
    recorded = CheckpointStore(checkpoint).load()
    assert all(first[i] == 1 for i in range(10))
    assert 12 in first
    done_ids = {count_run.make_task(str(work), i).id for i in range(20)} & recorded
    assert len(done_ids) >= 10
    assert stage(str(work), 0, 10).id in recorded  # the finished sub-flow too
    assert count_run.make_task(str(work), 12).id not in recorded

    (work / "fail").unlink()
    (work / "stage0-started").unlink()
    summary = mazepa.execute(
        two_stages(str(work)), num_procs=num_procs, checkpoint=checkpoint, show_progress=False
    )
    second = counts(work)
    assert sorted(second) == list(range(20))
    for i in range(20):
        if count_run.make_task(str(work), i).id in done_ids:
            assert second[i] == 1, f"task {i} ran again"  # recorded as done: not rerun
    assert second[12] == 2  # the failed one ran again
    assert not (work / "stage0-started").exists()  # a finished flow is not even walked
    assert summary.tasks_done == 20 - len(done_ids)
    if num_procs == 1:
        # Serially, nothing ran that was not recorded: every task ran exactly once overall.
        assert all(second[i] == 1 for i in range(20) if i != 12)

    # A third run finds everything done.
    third = mazepa.execute(two_stages(str(work)), checkpoint=checkpoint, show_progress=False)
    assert third.tasks_done == 0 and counts(work) == second


def test_ids_are_written_during_the_run(tmp_path: Path) -> None:
    seen: list[set[str]] = []
    checkpoint = tmp_path / "live.ckpt"

    @mazepa.flow_schema
    def flow() -> Iterator[Any]:
        tasks = [count_run.make_task(str(tmp_path), i) for i in range(5)]
        yield tasks
        yield mazepa.Dependency()
        yield count_run.make_task(str(tmp_path), 6)
        yield mazepa.Dependency()
        seen.append(CheckpointStore(checkpoint).load())

    mazepa.execute(flow(), checkpoint=checkpoint, checkpoint_interval_sec=0, show_progress=False)
    assert {count_run.make_task(str(tmp_path), i).id for i in range(5)} <= seen[0]


@pytest.mark.parametrize("num_procs", [1, 2], ids=["serial", "2procs"])
def test_a_local_checkpoint_holds_finished_work_before_the_flows_go_on(
    tmp_path: Path, num_procs: int
) -> None:
    """Whatever a flow does after a dependency (e.g. delete the intermediaries its finished tasks
    read) happens with those tasks on record, whatever the flush interval: a run killed right
    after must not redo them without their inputs."""
    seen: list[set[str]] = []
    checkpoint = tmp_path / "before.ckpt"

    @mazepa.flow_schema
    def flow() -> Iterator[Any]:
        yield [count_run.make_task(str(tmp_path), i) for i in range(5)]
        yield mazepa.Dependency()
        seen.append(CheckpointStore(checkpoint).load())
        yield count_run.make_task(str(tmp_path), 6)

    mazepa.execute(
        flow(),
        num_procs=num_procs,
        checkpoint=checkpoint,
        checkpoint_interval_sec=3600,
        show_progress=False,
    )
    assert {count_run.make_task(str(tmp_path), i).id for i in range(5)} <= seen[0]


@mazepa.taskable_operation
def run_nested(folder: str) -> int:
    """Runs a flow of its own: a nested run."""
    return mazepa.execute(stage(folder, 100, 103), show_progress=False).tasks_done


def test_a_default_checkpoint_is_the_outermost_runs_only(tmp_path: Path) -> None:
    """``zetta run``'s resume checkpoint comes as a default: a run nested in a task must neither
    skip what an earlier run recorded nor record its own tasks."""
    checkpoint = tmp_path / "outer.ckpt"
    nested_ids = {count_run.make_task(str(tmp_path), i).id for i in range(100, 103)} | {
        stage(str(tmp_path), 100, 103).id
    }
    checkpoint.write_text("".join(f"{i}\n" for i in nested_ids))
    outer = run_nested.make_task(str(tmp_path))
    with mazepa.execution_defaults(checkpoint=str(checkpoint)):
        summary = mazepa.execute(outer, show_progress=False)
    assert summary.tasks_done == 1
    assert outer.outcome is not None and outer.outcome.return_value == 3  # nothing skipped inside
    assert counts_from(tmp_path, range(100, 103)) == {100: 1, 101: 1, 102: 1}
    assert CheckpointStore(checkpoint).load() == nested_ids | {outer.id}


def counts_from(folder: Path, ids: range) -> dict[int, int]:
    return {
        i: int(Path(folder, f"count{i}").read_text())
        for i in ids
        if Path(folder, f"count{i}").exists()
    }


def test_file_urls_and_fsspec_urls(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/url.ckpt"
    mazepa.execute([count_run.make_task(str(tmp_path), 1)], checkpoint=url, show_progress=False)
    assert (tmp_path / "url.ckpt").read_text().strip() == count_run.make_task(str(tmp_path), 1).id

    fsspec = pytest.importorskip("fsspec")  # comes with torch; optional for mazepa itself
    memory_url = "memory://mazepa-test/ckpt"
    fs = fsspec.filesystem("memory")
    if fs.exists("/mazepa-test"):
        fs.rm("/mazepa-test", recursive=True)
    tasks = [count_run.make_task(str(tmp_path), i) for i in range(3)]
    mazepa.execute(tasks, checkpoint=memory_url, show_progress=False)
    assert CheckpointStore(memory_url).load() == {t.id for t in tasks}
    summary = mazepa.execute(tasks, checkpoint=memory_url, show_progress=False)
    assert summary.tasks_skipped == 3 and summary.tasks_done == 0
    assert all(t.outcome is not None and t.outcome.skipped for t in tasks)


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cut.ckpt"
    path.write_text("task-a\ntask-b\ntask-")
    assert CheckpointStore(path).load() == {"task-a", "task-b"}


def test_bad_checkpoints_are_reported(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`checkpoint` must be a path"):
        mazepa.execute([], checkpoint=123, show_progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is a directory"):
        mazepa.execute([], checkpoint=str(tmp_path), show_progress=False)
    with pytest.raises(ValueError, match="cannot open this URL"):
        mazepa.execute([], checkpoint="nosuchscheme://bucket/ckpt", show_progress=False)
    with pytest.raises(ValueError, match="checkpoint_interval_sec"):
        mazepa.execute(
            [], checkpoint=str(tmp_path / "x"), checkpoint_interval_sec=-1, show_progress=False
        )
    assert not os.path.exists(tmp_path / "x")
