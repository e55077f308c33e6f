"""``execute_with_queues`` on real queues (moto): its argument checks, and the warning when
someone other than the run wrote to the run's queues."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa.serialization import serialize_outcomes
from zetta_utils.mazepa_addons import execute_with_queues, run_worker
from zetta_utils.mazepa_addons.wire import KIND_OUTCOMES
from zetta_utils.message_queues import MessageSigner, SQSQueue
from zetta_utils.message_queues.signing import new_run_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def add_one(x: int) -> int:
    return x + 1


def test_arguments_are_checked_in_order_before_anything_is_sent(
    run_queues: tuple[str, SQSQueue, SQSQueue],
) -> None:
    run_id, work, _outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    task = add_one.make_task(1)
    bad: list[tuple[tuple[Any, Any, Any], str]] = [
        (("q", "q", "key"), "`signer` must be a MessageSigner, got str"),
        (
            (None, 3, signer),
            "`work_queue` must be a MessageQueue (e.g. SQSQueue), got NoneType",
        ),
        ((work, 3, signer), "`outcome_queue` must be a MessageQueue (e.g. SQSQueue), got int"),
    ]
    for (work_queue, outcome_queue, run_signer), message in bad:
        with pytest.raises(TypeError) as info:
            execute_with_queues([task], work_queue, outcome_queue, run_signer, show_progress=False)
        assert str(info.value) == message
    assert work.approximate_counts() == (0, 0)


def test_a_forged_outcome_is_refused_and_reported_once_the_run_ends(
    run_queues: tuple[str, SQSQueue, SQSQueue], caplog: pytest.LogCaptureFixture
) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    task = add_one.make_task(41)
    forged = mazepa.TaskOutcome(task_id=task.id, return_value=-1)
    outcomes.send(
        [
            MessageSigner(new_run_key(), run_id).seal(
                KIND_OUTCOMES, serialize_outcomes([forged]), {"attempts": {task.id: 1}}
            )
        ]
    )
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def start_worker_once_the_forgery_is_read() -> None:
        # the worker starts only after the producer has taken the forged message off the queue,
        # so the genuine outcome cannot overtake it
        if workers or outcomes.approximate_counts() != (0, 0):
            return
        kwargs = {"wait_s": 1, "stop_event": stop, "handle_signals": False}
        workers.append(
            threading.Thread(target=run_worker, args=(work, outcomes, signer), kwargs=kwargs)
        )
        workers[0].start()

    try:
        with caplog.at_level(logging.WARNING, logger="zetta_utils.mazepa_addons.execution"):
            summary = execute_with_queues(
                [task],
                work,
                outcomes,
                signer,
                show_progress=False,
                tick=start_worker_once_the_forgery_is_read,
            )
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert summary.queue_stats is not None and summary.queue_stats.forged_outcomes == 1
    assert summary.run_id == run_id
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "zetta_utils.mazepa_addons.execution"
    ]
    assert warnings == [
        f"run {run_id}: workers refused 0 message(s) and this producer 1; someone other than "
        "this run wrote to its queues"
    ]
