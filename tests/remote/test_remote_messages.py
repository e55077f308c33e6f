"""Message authentication and at-least-once delivery, with a worker and a producer backend on
real queues (moto)."""

from __future__ import annotations

import base64
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa.serialization import serialize_outcomes
from zetta_utils.mazepa_addons import QueueExecutor, run_worker
from zetta_utils.mazepa_addons.execution import queue_names
from zetta_utils.mazepa_addons.wire import KIND_OUTCOMES
from zetta_utils.message_queues import MessageSigner, SQSQueue, create_sqs_queue
from zetta_utils.message_queues.signing import new_run_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _TouchOnUnpickle:
    """A pickle that acts when loaded: what an attacker would put in a task message."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


@mazepa.taskable_operation
def add_one(x: int) -> int:
    return x + 1


def _drain(executor: QueueExecutor, expect: int, tries: int = 5) -> list[Any]:
    """Outcomes accepted by ``executor``: polls until ``expect`` arrived (or ``tries`` polls)."""
    got: list[Any] = []
    for _ in range(tries):
        got += executor.poll_outcomes(1.0)
        if expect and len(got) >= expect:
            break
    return got


def test_forged_task_messages_are_refused_deleted_and_reported(
    run_queues: Any, tmp_path: Path
) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    evil = pickle.dumps(_TouchOnUnpickle(tmp_path / "pwned"))
    pickle.loads(pickle.dumps(_TouchOnUnpickle(tmp_path / "proof")))  # the payload is live
    assert (tmp_path / "proof").exists()

    meta = {"task_id": "x", "attempt": 1, "max_deliveries": 5, "payloads": None}
    unsigned = json.dumps(
        {
            "v": 1,
            "run": run_id,
            "kind": "task",
            "ts": time.time(),
            "meta": meta,
            "payload": base64.b64encode(evil).decode(),
            "sig": "0" * 64,
        }
    )
    wrong_key = MessageSigner(new_run_key(), run_id).seal("task", evil, meta)
    bare_pickle = base64.b64encode(evil).decode()
    good = signer.seal(
        "task",
        mazepa.serialize_task(add_one.make_task(41)),
        {**meta, "task_id": add_one.make_task(41).id},
    )
    work.send([unsigned, wrong_key, bare_pickle, good])

    stats = run_worker(
        work, outcomes, signer, visibility_timeout_s=10, wait_s=1, max_tasks=4, handle_signals=False
    )
    assert not (tmp_path / "pwned").exists()
    assert stats.rejected == 3 and stats.tasks_run == 1
    assert work.approximate_counts() == (0, 0)  # refused messages are deleted, not redelivered

    executor = QueueExecutor(work, outcomes, signer)
    executor._in_flight[add_one.make_task(41).id] = 1  # as if submitted
    results = _drain(executor, 1)
    for _ in range(5):
        if len(executor.stats.rejections) == 3:
            break
        executor.poll_outcomes(1.0)
    assert [o.return_value for o in results] == [42]
    reasons = sorted(r.reason for r in executor.stats.rejections)
    assert len(reasons) == 3
    assert (
        sum("bad signature" in r for r in reasons) == 2
        and sum("not a sealed message" in r for r in reasons) == 1
    )


def test_forged_outcomes_are_refused_by_the_producer(run_queues: Any) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    executor = QueueExecutor(work, outcomes, signer)
    task = add_one.make_task(1)
    executor.submit([task])
    forged = mazepa.TaskOutcome(task_id=task.id, return_value=-1)
    outcomes.send(
        [
            MessageSigner(new_run_key(), run_id).seal(
                KIND_OUTCOMES, serialize_outcomes([forged]), {"attempts": {task.id: 1}}
            )
        ]
    )
    assert _drain(executor, 0, tries=2) == []
    assert executor.stats.forged_outcomes == 1 and executor.num_in_flight == 1


def test_duplicate_and_stale_outcomes_are_dropped(run_queues: Any) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    executor = QueueExecutor(work, outcomes, signer)
    task = add_one.make_task(1)

    def report(outcome: mazepa.TaskOutcome[Any], attempt: int) -> None:
        outcomes.send(
            [
                signer.seal(
                    KIND_OUTCOMES, serialize_outcomes([outcome]), {"attempts": {task.id: attempt}}
                )
            ]
        )

    ok = mazepa.TaskOutcome(task_id=task.id, return_value=2)
    failed = mazepa.TaskOutcome.from_exception(task.id, OSError("flaky"))
    executor.submit([task])  # attempt 1
    report(ok, 1)
    report(ok, 1)  # a redelivered copy finished too
    assert [o.return_value for o in _drain(executor, 0, tries=2)] == [2]
    assert executor.stats.duplicate_outcomes == 1

    executor.submit([task])  # attempt 2 (a retry)
    report(failed, 1)  # late failure of attempt 1: attempt 2 is still running
    assert _drain(executor, 0, tries=2) == [] and executor.stats.stale_failures == 1
    report(failed, 2)
    (got,) = _drain(executor, 1)
    assert got.exception_type == "OSError" and got.retryable


def test_worker_needs_the_run_key(sqs_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from zetta_utils.cli.remote import worker

    monkeypatch.delenv("ZETTA_RUN_KEY", raising=False)
    result = CliRunner().invoke(
        worker, ["--queue", "q", "--outcome-queue", "o", "--run-id", "calm-heron-0001"]
    )
    assert result.exit_code != 0 and "ZETTA_RUN_KEY" in result.output


def test_worker_exits_when_its_queue_is_deleted(sqs_env: str) -> None:
    run_id = "gone-queue-0001"
    work_name, outcome_name = queue_names(run_id)
    work, outcomes = create_sqs_queue(work_name), create_sqs_queue(outcome_name)
    work.delete_queue()
    outcomes.delete_queue()
    stats = run_worker(
        SQSQueue(work_name),
        SQSQueue(outcome_name),
        MessageSigner(new_run_key(), run_id),
        wait_s=1,
        handle_signals=False,
    )
    assert stats.exit_reason == "queue deleted"
