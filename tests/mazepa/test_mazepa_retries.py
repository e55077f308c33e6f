"""Failures, retries and the errors a failed run raises, serially and in worker processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa

# Worker processes receive this module's functions by value: they need not import it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

_ERRORS: dict[str, type[Exception]] = {
    "OSError": OSError,
    "TransientError": mazepa.TransientError,
    "TypeError": TypeError,
    "ValueError": ValueError,
}


def _bump(path: str) -> int:
    """Count a call in a file (works across processes; tasks here run one at a time per file)."""
    count = int(Path(path).read_text()) + 1 if os.path.exists(path) else 1
    Path(path).write_text(str(count))
    return count


@mazepa.taskable_operation
def flaky(counter: str, fail_times: int, error: str) -> str:
    attempt = _bump(counter)
    if attempt <= fail_times:
        raise _ERRORS[error](f"attempt {attempt} failed on purpose")
    return f"ok after {attempt}"


@mazepa.taskable_operation
def touch(path: str) -> None:
    Path(path).write_text("done")


@mazepa.taskable_operation
def crash_first(counter: str, times: int) -> int:
    attempt = _bump(counter)
    if attempt <= times:
        os._exit(3)  # the worker process dies
    return os.getpid()


def count(path: Path) -> int:
    return int(path.read_text()) if path.exists() else 0


def run(target: Any, **kwargs: Any) -> mazepa.ExecutionSummary:
    return mazepa.execute(target, show_progress=False, **kwargs)


PROCS = pytest.mark.parametrize("num_procs", [1, 2], ids=["serial", "2procs"])


@PROCS
def test_transient_failures_are_retried(tmp_path: Path, num_procs: int) -> None:
    task = flaky.make_task(str(tmp_path / "c"), 2, "OSError")
    summary = run(task, num_procs=num_procs, max_retry=3)
    assert count(tmp_path / "c") == 3
    assert summary.retries == 2 and summary.tasks_done == 1
    assert task.outcome is not None and task.outcome.return_value == "ok after 3"


@PROCS
def test_retries_run_out(tmp_path: Path, num_procs: int) -> None:
    task = flaky.make_task(str(tmp_path / "c"), 100, "TransientError")
    with pytest.raises(mazepa.ExecutionError) as info:
        run(task, num_procs=num_procs, max_retry=2)
    assert count(tmp_path / "c") == 3  # 1 try + 2 retries
    (failure,) = info.value.task_failures
    assert failure.attempts == 3
    assert failure.operation_name == "flaky"
    assert failure.exception_type == "zetta_utils.mazepa.transient_errors.TransientError"
    message = str(info.value)
    assert "flaky(" in message and "TransientError" in message  # the arguments summary
    assert "attempt 3 failed on purpose" in message
    assert ", in flaky" in failure.traceback  # the traceback from where the task ran


@PROCS
def test_bugs_stop_the_run_at_once(tmp_path: Path, num_procs: int) -> None:
    @mazepa.flow_schema
    def flow() -> Iterator[Any]:
        yield flaky.make_task(str(tmp_path / "c"), 100, "TypeError")
        yield mazepa.Dependency()
        yield touch.make_task(str(tmp_path / "after"))

    with pytest.raises(mazepa.ExecutionError, match="TypeError: attempt 1 failed on purpose"):
        run(flow(), num_procs=num_procs, max_retry=5)
    assert count(tmp_path / "c") == 1  # not retried
    assert not (tmp_path / "after").exists()


def test_non_transient_retries_can_be_allowed(tmp_path: Path) -> None:
    task = flaky.make_task(str(tmp_path / "c"), 1, "ValueError")
    run(task, max_retry_non_transient=1)
    assert count(tmp_path / "c") == 2


def test_per_task_max_retry_overrides_the_run(tmp_path: Path) -> None:
    task = flaky.make_task(str(tmp_path / "c"), 100, "OSError").with_options(max_retry=1)
    with pytest.raises(mazepa.ExecutionError):
        run(task, max_retry=5)
    assert count(tmp_path / "c") == 2


def test_keep_going_runs_independent_work(tmp_path: Path) -> None:
    @mazepa.flow_schema
    def branch(name: str, fail: bool) -> Iterator[Any]:
        if fail:
            yield flaky.make_task(str(tmp_path / f"{name}-c"), 100, "ValueError")
        else:
            yield touch.make_task(str(tmp_path / f"{name}-first"))
        yield mazepa.Dependency()
        yield touch.make_task(str(tmp_path / f"{name}-second"))

    summary = run([branch("bad", True), branch("good", False)], raise_on_failure=False)
    assert (tmp_path / "good-first").exists() and (tmp_path / "good-second").exists()
    assert not (tmp_path / "bad-second").exists()
    assert summary.tasks_failed == 1 and not summary.completed
    assert summary.task_failures[0].exception_type == "ValueError"


def test_a_task_that_kills_its_worker_is_retried(tmp_path: Path) -> None:
    task = crash_first.make_task(str(tmp_path / "c"), 1)
    summary = run(
        [task, *[touch.make_task(str(tmp_path / f"t{i}")) for i in range(10)]], num_procs=2
    )
    assert count(tmp_path / "c") == 2
    assert summary.retries == 1 and summary.tasks_done == 11
    assert all((tmp_path / f"t{i}").exists() for i in range(10))


def test_a_task_that_always_kills_its_worker_fails_the_run(tmp_path: Path) -> None:
    task = crash_first.make_task(str(tmp_path / "c"), 100)
    with pytest.raises(mazepa.ExecutionError) as info:
        run(task, num_procs=2, max_retry=2)
    assert count(tmp_path / "c") == 3
    (failure,) = info.value.task_failures
    assert failure.exception_type.endswith("WorkerCrashedError")
    assert "exited with code 3" in failure.error_message


class _StaysHome:
    """Hashable for ids, but refuses to be pickled (like an open connection)."""

    def mazepa_id_components(self) -> str:
        return "stays-home"

    def __reduce__(self) -> Any:
        raise TypeError("not picklable on purpose")


@mazepa.taskable_operation
def uses(obj: Any) -> None:
    pass


def test_unserializable_tasks_fail_clearly() -> None:
    with pytest.raises(
        mazepa.ExecutionError, match="cannot be serialized for a worker process"
    ) as info:
        run([uses.make_task(_StaysHome()), uses.make_task(1)], num_procs=2)
    assert "not picklable on purpose" in str(info.value)
