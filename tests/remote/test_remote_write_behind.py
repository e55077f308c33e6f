"""Write-behind in the queue worker (``zetta worker``), on real queues (moto): a task's deferred
write that fails fails that task, not the one that ran after it; outcomes are sent once the
writes finished."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle

from zetta_utils import mazepa, write_behind
from zetta_utils.mazepa_addons import QueueExecutor, run_worker
from zetta_utils.message_queues import MessageSigner
from zetta_utils.message_queues.signing import new_run_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def write_then_return(folder: str, name: str, fail: bool) -> str:
    """Defers a write of ``name`` (one that raises with ``fail``) that waits for the next task."""

    def job() -> None:
        deadline = time.monotonic() + 60  # (a guard against hanging, not a timing assumption)
        while not Path(folder, "released").exists():  # (polls a file the next task creates)
            assert time.monotonic() < deadline, "the next task did not run"
            time.sleep(0.01)
        if fail:
            raise OSError(f"writing {name} failed")
        Path(folder, name).write_text("")

    write_behind.defer(folder, job)
    return name


@mazepa.taskable_operation
def release(folder: str) -> str:
    """Runs while the task before is still writing, then lets its write go on."""
    Path(folder, "released").write_text("")
    return "released"


def test_a_failed_deferred_write_fails_its_own_task_on_a_queue_worker(
    run_queues: Any, tmp_path: Path
) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    executor = QueueExecutor(work, outcomes, signer)
    tasks = [
        write_then_return.make_task(str(tmp_path), "a", True),
        release.make_task(str(tmp_path)),
        write_then_return.make_task(str(tmp_path), "b", False),
    ]
    executor.submit(tasks)
    stats = run_worker(
        work,
        outcomes,
        signer,
        visibility_timeout_s=10,
        wait_s=1,
        prefetch=10,
        max_tasks=3,
        handle_signals=False,
    )
    assert stats.tasks_run == 3 and stats.tasks_failed == 1
    got: dict[str, Any] = {}
    for _ in range(10):
        for outcome in executor.poll_outcomes(1.0):
            got[outcome.task_id] = outcome
        if len(got) == 3:
            break
    first, second, third = (got[t.id] for t in tasks)
    assert not first.succeeded and "writing a failed" in (first.error_message or "")
    assert second.succeeded and second.return_value == "released"
    assert third.succeeded and (tmp_path / "b").exists()
    executor.shutdown()
