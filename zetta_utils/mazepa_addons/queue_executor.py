"""``QueueExecutor``: a mazepa executor backend that runs tasks on queue workers.

It plugs into ``mazepa.execute(target, executor=...)`` like the local backends: the scheduler
decides what may run, this backend sends ready tasks to the work queue (10 per request) and reads
outcomes from the outcome queue (long polling, 10 per request).

A task that kills its workers (each death counts one delivery) is refused by the next worker
after ``max_deliveries`` and reported failed with a ``WorkerCrashedError``: it is *dead-lettered*.
Its failure is held back until nothing else is in flight and the run sends nothing new, so the
rest of the run completes first; the failure then names the task's region.

Delivery is at least once: a task whose worker died reappears after the visibility timeout and
may be reported twice, and a retried task may meet a late report of its previous attempt. The
backend keeps the attempt it expects for every task in flight; a success for the task is taken
from any attempt (tasks are idempotent), a failure only from the current attempt, and anything
for a task not in flight is a duplicate and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from zetta_utils.mazepa import TaskOutcome, WorkerCrashedError, serialize_task
from zetta_utils.mazepa.interrupts import interruptible
from zetta_utils.mazepa.serialization import deserialize_outcomes
from zetta_utils.mazepa.tasks import Task
from zetta_utils.message_queues.base import MessageQueue, ReceivedMessage
from zetta_utils.message_queues.signing import MessageSigner, SignatureError

from .regions import describe_task_region
from .wire import (
    KIND_OUTCOMES,
    KIND_REJECTED,
    KIND_TASK,
    PayloadTooLargeError,
    load_payload,
    seal_payload,
)

__all__ = ["QueueExecutor", "QueueExecutorStats", "Rejection"]

logger = logging.getLogger(__name__)

_RECEIVE_BATCH = 10
_MAX_MESSAGES_PER_POLL = 200


@attrs.frozen
class Rejection:
    """A message a worker (or this producer) refused."""

    reason: str
    message_id: str
    worker: str


@attrs.define
class QueueExecutorStats:
    tasks_sent: int = 0
    messages_sent: int = 0
    outcomes_received: int = 0
    duplicate_outcomes: int = 0
    stale_failures: int = 0
    rejections: list[Rejection] = attrs.field(factory=list)
    """Messages workers refused (forged or malformed task messages)."""
    forged_outcomes: int = 0
    """Outcome-queue messages this producer refused."""
    dead_lettered: list[str] = attrs.field(factory=list)
    """Ids of tasks refused after ``max_deliveries`` (their workers kept dying)."""


class QueueExecutor:
    """Sends tasks to ``work_queue`` and collects outcomes from ``outcome_queue``.

    :param signer: seals task messages and checks outcome messages (the run's key and id).
    :param max_outstanding: most tasks sent and unanswered at once (the look-ahead on the queue).
    :param max_deliveries: a worker refuses to start a task the queue has handed out more often
        than this (each earlier worker died running it) and reports it failed, so a task that
        kills its worker is not redelivered forever.
    :param payload_location: where payloads too large for a message go (None: such a task fails
        with a clear error).
    :param poll_wait_s: long-poll wait for outcomes when none are there yet.
    :param tick: called on every poll (e.g. to look after local worker processes).
    :param route: the work queue of a task (worker groups: one queue per group, chosen by the
        task's ``worker_type``); it raises ``ValueError`` for a task no queue serves, which then
        fails without being sent. Default: every task goes to ``work_queue``.
    """

    def __init__(
        self,
        work_queue: MessageQueue,
        outcome_queue: MessageQueue,
        signer: MessageSigner,
        *,
        max_outstanding: int = 1000,
        max_deliveries: int = 5,
        payload_location: str | None = None,
        poll_wait_s: float = 1.0,
        tick: Callable[[], None] | None = None,
        route: Callable[[Task[Any]], MessageQueue] | None = None,
    ):
        for name, value in (
            ("max_outstanding", max_outstanding),
            ("max_deliveries", max_deliveries),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        self.work_queue = work_queue
        self.outcome_queue = outcome_queue
        self.signer = signer
        self.max_outstanding = max_outstanding
        self.max_deliveries = max_deliveries
        self.payload_location = payload_location
        self.poll_wait_s = poll_wait_s
        self.tick = tick
        self.route = route
        self.stats = QueueExecutorStats()
        self._in_flight: dict[str, int] = {}  # task id -> attempt expected
        self._tasks: dict[str, Task[Any]] = {}  # task id -> task, while in flight
        self._held: list[TaskOutcome[Any]] = []  # dead letters, until the rest is done
        self._submitted_since_poll = False
        self._attempts: dict[str, int] = {}  # task id -> attempts sent so far
        self._local_outcomes: list[TaskOutcome[Any]] = []

    @property
    def num_in_flight(self) -> int:
        return len(self._in_flight) + len(self._held)

    def free_slots(self) -> int:
        return max(0, self.max_outstanding - self.num_in_flight)

    def submit(self, tasks: Sequence[Task[Any]]) -> None:
        bodies: dict[int, tuple[MessageQueue, list[str]]] = {}
        for task in tasks:
            attempt = self._attempts.get(task.id, 0) + 1
            self._attempts[task.id] = attempt
            meta = {
                "task_id": task.id,
                "attempt": attempt,
                "op": task.operation_name,
                "max_deliveries": self.max_deliveries,
                "payloads": self.payload_location,
            }
            try:
                queue = self.route(task) if self.route is not None else self.work_queue
            except ValueError as e:
                self._fail_locally(
                    task.id, attempt, TaskOutcome.from_exception(task.id, e, retryable=False)
                )
                continue
            try:
                data = serialize_task(task)
            except Exception as e:
                error = TypeError(
                    f"task {task.id} cannot be serialized for the queue: {type(e).__name__}: {e}"
                )
                self._fail_locally(
                    task.id, attempt, TaskOutcome.from_exception(task.id, error, retryable=False)
                )
                continue
            try:
                body = seal_payload(
                    self.signer,
                    KIND_TASK,
                    data,
                    meta,
                    queue.max_message_bytes,
                    self.payload_location,
                    what=f"task {task.id} ({task.operation_name})",
                )
            except PayloadTooLargeError as e:
                self._fail_locally(
                    task.id, attempt, TaskOutcome.from_exception(task.id, e, retryable=False)
                )
                continue
            except Exception as e:  # the payload store failed: transient or not, as classified
                self._fail_locally(task.id, attempt, TaskOutcome.from_exception(task.id, e))
                continue
            bodies.setdefault(id(queue), (queue, []))[1].append(body)
            self._in_flight[task.id] = attempt
            self._tasks[task.id] = task
        if tasks:
            self._submitted_since_poll = True
        for queue, queue_bodies in bodies.values():
            queue.send(queue_bodies)
            self.stats.tasks_sent += len(queue_bodies)
            self.stats.messages_sent += len(queue_bodies)

    def _fail_locally(self, task_id: str, attempt: int, outcome: TaskOutcome[Any]) -> None:
        # A task that cannot be sent fails like a task that raised, so the run reports it by name.
        self._in_flight[task_id] = attempt
        self._local_outcomes.append(outcome)

    def poll_outcomes(self, timeout: float) -> list[TaskOutcome[Any]]:
        if self.tick is not None:
            self.tick()
        outcomes: list[TaskOutcome[Any]] = []
        if self._local_outcomes:
            for outcome in self._local_outcomes:
                self._in_flight.pop(outcome.task_id, None)
                self._tasks.pop(outcome.task_id, None)
            outcomes, self._local_outcomes = self._local_outcomes, []
            return outcomes
        if self._held and not self._in_flight and not self._submitted_since_poll:
            # Nothing else runs and the run had nothing new to send: what is left waits on these.
            outcomes, self._held = self._held, []
            return outcomes
        self._submitted_since_poll = False
        wait = self.poll_wait_s if timeout > 0 else 0.0
        with interruptible():
            messages = self.outcome_queue.receive(_RECEIVE_BATCH, wait_s=wait)
        received = list(messages)
        while len(messages) == _RECEIVE_BATCH and len(received) < _MAX_MESSAGES_PER_POLL:
            messages = self.outcome_queue.receive(_RECEIVE_BATCH, wait_s=0)
            received.extend(messages)
        for message in received:
            outcomes.extend(self._handle_message(message))
        if received:
            self.outcome_queue.delete(received)
        return outcomes

    def _handle_message(self, message: ReceivedMessage) -> list[TaskOutcome[Any]]:
        try:
            opened = self.signer.open(message.body)
            if opened.kind == KIND_REJECTED:
                rejection = Rejection(
                    reason=str(opened.meta.get("reason", "")),
                    message_id=str(opened.meta.get("message_id", "")),
                    worker=str(opened.meta.get("worker", "")),
                )
                self.stats.rejections.append(rejection)
                logger.warning(
                    "worker %s refused message %s: %s",
                    rejection.worker,
                    rejection.message_id,
                    rejection.reason,
                )
                return []
            if opened.kind != KIND_OUTCOMES:
                raise SignatureError(
                    f"unexpected message kind {opened.kind!r} on the outcome queue"
                )
            attempts = opened.meta.get("attempts")
            if not isinstance(attempts, dict):
                raise SignatureError("outcome message without attempts")
            outcomes = deserialize_outcomes(load_payload(opened))
        except (SignatureError, FileNotFoundError) as e:
            self.stats.forged_outcomes += 1
            logger.warning("refused message %s on the outcome queue: %s", message.message_id, e)
            return []
        accepted = []
        for outcome in outcomes:
            self.stats.outcomes_received += 1
            expected = self._in_flight.get(outcome.task_id)
            if expected is None:
                self.stats.duplicate_outcomes += 1
                continue
            if outcome.exception_type is not None and attempts.get(outcome.task_id) != expected:
                # A late failure of an earlier attempt; the current one is still running.
                self.stats.stale_failures += 1
                continue
            del self._in_flight[outcome.task_id]
            task = self._tasks.pop(outcome.task_id, None)
            if _is_dead_letter(outcome):
                self._hold_dead_letter(outcome, task)
                continue
            accepted.append(outcome)
        return accepted

    def collect_finished(self) -> list[TaskOutcome[Any]]:
        """When the run stops early (another failure, Ctrl-C): the dead letters held back, so that
        they are reported too."""
        held, self._held = self._held, []
        return held

    def _hold_dead_letter(self, outcome: TaskOutcome[Any], task: Task[Any] | None) -> None:
        region = describe_task_region(task) if task is not None else None
        name = task.operation_name if task is not None else "?"
        if region:
            outcome = attrs.evolve(
                outcome, error_message=f"{outcome.error_message}; region: {region}"
            )
        self.stats.dead_lettered.append(outcome.task_id)
        self._held.append(outcome)
        logger.error(
            "task %s (%s)%s keeps killing its workers: dead-lettered; the rest of the run goes on",
            outcome.task_id,
            name,
            f" on {region}" if region else "",
        )

    def shutdown(self, cancel: bool = False) -> None:
        """Forget what is in flight; the queues themselves belong to whoever created them."""
        self._in_flight.clear()
        self._tasks.clear()
        self._held.clear()
        self._local_outcomes.clear()


_CRASH_TYPE = f"{WorkerCrashedError.__module__}.{WorkerCrashedError.__qualname__}"


def _is_dead_letter(outcome: TaskOutcome[Any]) -> bool:
    """A worker refused the task after too many deliveries (see ``worker.py``)."""
    return outcome.exception_type == _CRASH_TYPE and not outcome.retryable
