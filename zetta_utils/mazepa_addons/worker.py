"""The queue worker: take a task, run it, report its outcome, repeat (``zetta worker``).

A worker holds a *lease* on each message it took: the queue hides the message for the visibility
timeout, and a background thread extends it every third of that while the task runs, so a long
task is not handed to a second worker. If the worker dies (kill -9, OOM, a lost node) the lease
runs out and the queue hands the task to another worker. The outcome is sent before the task
message is deleted: a worker dying between the two makes the task run twice, never zero times.

Tasks run in the worker's main thread, so they may use torch, CUDA and signals as in a script.
Write-behind (:mod:`zetta_utils.write_behind`): a task's deferred writes finish while the worker
takes and runs the next message already queued; its outcome is sent (and its message deleted)
only once they did, and before the worker waits for new work or exits.
Every message is checked against the run's key before anything in it is unpickled; a message
that fails the check is deleted, logged and reported to the producer as ``rejected``.

SIGTERM (what Kubernetes sends when it scales a Deployment down) and SIGINT stop the worker: a
running task is interrupted and its message released at once for another worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import attrs

from zetta_utils.mazepa import TaskOutcome, WorkerCrashedError, deserialize_task
from zetta_utils.mazepa.serialization import serialize_outcomes
from zetta_utils.mazepa.task_runs import RanTask, run_task
from zetta_utils.message_queues.base import MessageQueue, QueueNotFoundError, ReceivedMessage
from zetta_utils.message_queues.signing import MessageSigner, SignatureError

from .local_workers import InFlightFile
from .replay import ReplayGuard, message_digest
from .wire import (
    KIND_OUTCOMES,
    KIND_REJECTED,
    KIND_TASK,
    PayloadTooLargeError,
    load_payload,
    seal_payload,
)

__all__ = ["LEASE_RENEWAL_ENV", "WorkerStats", "run_worker"]

logger = logging.getLogger(__name__)

_FLUSH_INTERVAL_S = 0.2
LEASE_RENEWAL_ENV = "ZETTA_LEASE_RENEWAL_S"
_ERROR_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class WorkerStopping(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT while a task runs."""


@attrs.define
class WorkerStats:
    messages_received: int = 0
    tasks_run: int = 0
    tasks_failed: int = 0
    rejected: int = 0
    refused_redelivered: int = 0
    refused_replayed: int = 0
    exit_reason: str = ""


class _LeaseKeeper:
    """Extends the visibility of the messages being worked on, from a daemon thread."""

    def __init__(
        self, queue: MessageQueue, visibility_timeout_s: int, interval_s: float | None = None
    ):
        self.queue = queue
        self.visibility_timeout_s = visibility_timeout_s
        self.interval_s = (
            interval_s if interval_s is not None else max(0.5, visibility_timeout_s / 3)
        )
        self._held: dict[str, ReceivedMessage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
        self._thread.start()

    def hold(self, messages: Sequence[ReceivedMessage]) -> None:
        with self._lock:
            for m in messages:
                self._held[m.handle] = m

    def release(self, messages: Sequence[ReceivedMessage]) -> None:
        with self._lock:
            for m in messages:
                self._held.pop(m.handle, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                held = list(self._held.values())
            for m in held:
                try:
                    self.queue.change_visibility(m, self.visibility_timeout_s)
                except Exception as e:
                    with self._lock:
                        still_held = m.handle in self._held
                    if still_held:  # (not just finished and deleted meanwhile)
                        logger.warning(
                            "could not extend the lease of message %s: %s", m.message_id, e
                        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Worker:
    def __init__(
        self,
        work_queue: MessageQueue,
        outcome_queue: MessageQueue,
        signer: MessageSigner,
        worker_id: str,
        visibility_timeout_s: int,
        lease_renewal_s: float | None = None,
    ):
        self.work_queue = work_queue
        self.outcome_queue = outcome_queue
        self.signer = signer
        self.worker_id = worker_id
        self.visibility_timeout_s = visibility_timeout_s
        self.stats = WorkerStats()
        self.leases = _LeaseKeeper(work_queue, visibility_timeout_s, lease_renewal_s)
        # Finished and not yet reported: (message, outcome or None for "just delete", attempt)
        self.pending: list[tuple[ReceivedMessage, TaskOutcome[Any] | None, int, str | None]] = []
        self.last_flush = time.monotonic()
        self.replays = ReplayGuard(signer.run_id)
        self.in_flight = InFlightFile.from_env()
        self.unfinished: list[ReceivedMessage] = []
        """Messages taken and not yet handled, the one being handled first."""
        self.behind: tuple[ReceivedMessage, RanTask, int, str | None] | None = None
        """The task that ran last while its writes finish (write-behind): reported after them."""

    def _note_running(
        self, message: ReceivedMessage, task_id: str, attempt: int, max_deliveries: Any
    ) -> None:
        # For the local pool: if this process dies now, the task it was running is named.
        if self.in_flight is None:
            return
        running = {
            "running": True,
            "handle": message.handle,
            "message_id": message.message_id,
            "task_id": task_id,
            "attempt": attempt,
            "delivery": message.receive_count,
            "max_deliveries": max_deliveries,
        }
        rest = [
            {"handle": m.handle, "message_id": m.message_id}
            for m in self.unfinished
            if m.handle != message.handle
        ]
        self.in_flight.write([running, *rest])

    def _note_finished(self) -> None:
        if self.in_flight is not None:
            self.in_flight.clear()

    # ---- reporting ----------------------------------------------------------------------------

    def reject(self, message: ReceivedMessage, reason: str) -> None:
        self.stats.rejected += 1
        logger.warning(
            "worker %s refused message %s: %s", self.worker_id, message.message_id, reason
        )
        body = self.signer.seal(
            KIND_REJECTED,
            b"",
            {"reason": reason, "message_id": message.message_id, "worker": self.worker_id},
        )
        self.outcome_queue.send([body])
        self.work_queue.delete([message])
        self.leases.release([message])

    def flush(self) -> None:
        """Send the pending outcomes, then delete their task messages."""
        if not self.pending:
            return
        with_outcome = [(m, o, a, loc) for m, o, a, loc in self.pending if o is not None]
        bodies = self._outcome_bodies(with_outcome)
        if bodies:
            self.outcome_queue.send(bodies)
        for m, _, _, loc in with_outcome:  # answered: a replay of the message must not run again
            self.replays.mark(message_digest(m.body), loc)
        messages = [m for m, _, _, _ in self.pending]
        self.work_queue.delete(messages)
        self.leases.release(messages)
        self.pending = []
        self.last_flush = time.monotonic()

    def _outcome_bodies(
        self, items: list[tuple[ReceivedMessage, Any, int, str | None]]
    ) -> list[str]:
        if not items:
            return []
        limit = self.outcome_queue.max_message_bytes
        together = self._seal_outcomes(items, limit)
        if together is not None:
            return [together]
        bodies = []
        for item in items:
            body = self._seal_outcomes([item], limit)
            if body is None:
                _, outcome, attempt, loc = item
                error = TypeError(
                    f"the return value of task {outcome.task_id} is too large for the outcome "
                    "queue and the run has no payload store: return less, or pass "
                    "`large_payload_location`"
                )
                failed = TaskOutcome.from_exception(outcome.task_id, error, retryable=False)
                body = self._seal_outcomes([(item[0], failed, attempt, loc)], limit)
                assert body is not None
            bodies.append(body)
        return bodies

    def _seal_outcomes(
        self, items: list[tuple[ReceivedMessage, Any, int, str | None]], limit: int
    ) -> str | None:
        payload = serialize_outcomes([o for _, o, _, _ in items])
        meta = {"attempts": {o.task_id: a for _, o, a, _ in items}, "worker": self.worker_id}
        # Only a single outcome may go to the payload store; a batch is split first.
        location = items[0][3] if len(items) == 1 else None
        try:
            return seal_payload(
                self.signer, KIND_OUTCOMES, payload, meta, limit, location, what="outcome"
            )
        except PayloadTooLargeError:
            return None

    # ---- running ------------------------------------------------------------------------------

    def handle(self, message: ReceivedMessage) -> None:
        try:
            opened = self.signer.open(message.body)
        except SignatureError as e:
            self.reject(message, str(e))
            return
        if opened.kind != KIND_TASK:
            self.reject(message, f"unexpected message kind {opened.kind!r} on the work queue")
            return
        meta = opened.meta
        task_id = meta.get("task_id")
        attempt = meta.get("attempt")
        max_deliveries = meta.get("max_deliveries")
        location = meta.get("payloads")
        if not isinstance(task_id, str) or not isinstance(attempt, int):
            self.reject(message, "task message without task_id/attempt")
            return
        if not isinstance(location, str):
            location = None
        if self.replays.finished(message_digest(message.body), location):
            self.stats.refused_replayed += 1
            logger.warning(
                "worker %s: message %s (task %s) already ran; not running it again",
                self.worker_id,
                message.message_id,
                task_id,
            )
            self.pending.append((message, None, attempt, location))  # just delete it
            return
        if isinstance(max_deliveries, int) and message.receive_count > max_deliveries:
            self.stats.refused_redelivered += 1
            crash = WorkerCrashedError(
                f"task {task_id} was handed out {message.receive_count} times and no worker "
                "finished it (each one died or lost its lease while running it); not running it "
                f"again (limit {max_deliveries}, `max_task_deliveries`)"
            )
            logger.error("%s", crash)
            self.pending.append(
                (
                    message,
                    TaskOutcome.from_exception(task_id, crash, retryable=False),
                    attempt,
                    location,
                )
            )
            return
        self._note_running(message, task_id, attempt, max_deliveries)
        try:
            self._run(message, opened, task_id, attempt, location)
        finally:
            self._note_finished()

    def _run(
        self,
        message: ReceivedMessage,
        opened: Any,
        task_id: str,
        attempt: int,
        location: str | None,
    ) -> None:
        try:
            task = deserialize_task(load_payload(opened))
        except SignatureError as e:
            self.reject(message, str(e))
            return
        except Exception as e:
            error = RuntimeError(
                f"task {task_id} could not be loaded on the worker: {type(e).__name__}: {e}"
            )
            outcome: TaskOutcome[Any] = TaskOutcome.from_exception(task_id, error, retryable=False)
            self.pending.append((message, outcome, attempt, location))
            return
        if task.id != task_id:
            self.reject(message, f"task id {task.id!r} does not match the sealed id {task_id!r}")
            return
        logger.debug("worker %s: running %s (attempt %d)", self.worker_id, task_id, attempt)
        ran = run_task(task)
        self.stats.tasks_run += 1
        self.finish_behind()
        self.behind = (message, ran, attempt, location)
        if ran.done():  # nothing left to wait for
            self.finish_behind()

    def finish_behind(self) -> None:
        """Wait for the writes of the task finishing behind (if any), and queue its outcome."""
        if self.behind is None:
            return
        message, ran, attempt, location = self.behind
        self.behind = None
        outcome = ran.finish()
        if outcome.exception_type is not None:
            self.stats.tasks_failed += 1
            logger.warning(
                "task %s failed: %s: %s",
                outcome.task_id,
                outcome.exception_type,
                outcome.error_message,
            )
        self.pending.append((message, outcome.without_exception(), attempt, location))


def run_worker(
    work_queue: MessageQueue,
    outcome_queue: MessageQueue,
    signer: MessageSigner,
    *,
    visibility_timeout_s: int = 60,
    wait_s: float = 20.0,
    prefetch: int = 1,
    max_idle_s: float | None = None,
    max_tasks: int | None = None,
    worker_id: str | None = None,
    stop_event: threading.Event | None = None,
    handle_signals: bool = True,
    lease_renewal_s: float | None = None,
) -> WorkerStats:
    """Work on ``work_queue`` until stopped, idle for ``max_idle_s``, done ``max_tasks`` messages,
    or the queue is deleted (the run ended).

    :param visibility_timeout_s: the lease on a message; extended every third of it while its
        task runs. Shorter leases hand a dead worker's task out sooner.
    :param wait_s: long-poll wait per receive (at most 20).
    :param prefetch: messages taken at once (1-10); more saves requests for tiny tasks, but a
        taken message waits behind the ones before it.
    :param lease_renewal_s: how often the lease is extended (default: a third of the visibility
        timeout, or ``$ZETTA_LEASE_RENEWAL_S``; tests make it short, so that a lease never runs
        out on a busy machine).
    """
    lease_renewal_s = _check_worker_arguments(visibility_timeout_s, prefetch, lease_renewal_s)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    w = _Worker(work_queue, outcome_queue, signer, worker_id, visibility_timeout_s, lease_renewal_s)
    flags = _StopFlags()
    previous = _stop_on_signals(flags) if handle_signals else {}
    logger.info(
        "worker %s: working on %s, reporting to %s", worker_id, work_queue.name, outcome_queue.name
    )
    limits = _Limits(wait_s, prefetch, max_idle_s, max_tasks, stop_event, visibility_timeout_s)
    taken = _Taken()
    try:
        w.stats.exit_reason = _work(w, work_queue, limits, flags, taken)
    except WorkerStopping as e:
        w.stats.exit_reason = f"stopped by {e}"
    except QueueNotFoundError:
        w.stats.exit_reason = "queue deleted"
    finally:
        flags.busy = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _wind_down(w, work_queue, taken)
    logger.info(
        "worker %s: exiting (%s); ran %d task(s), %d failed, %d message(s) refused",
        worker_id,
        w.stats.exit_reason,
        w.stats.tasks_run,
        w.stats.tasks_failed,
        w.stats.rejected,
    )
    return w.stats


def _check_worker_arguments(
    visibility_timeout_s: Any, prefetch: Any, lease_renewal_s: float | None
) -> float | None:
    """Refuse bad arguments; returns the lease renewal interval (from the environment if unset)."""
    if (
        isinstance(visibility_timeout_s, bool)
        or not isinstance(visibility_timeout_s, int)
        or visibility_timeout_s < 2
    ):
        raise ValueError(
            "`visibility_timeout_s` must be an integer of at least 2 seconds, "
            f"got {visibility_timeout_s!r}"
        )
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or not 1 <= prefetch <= 10:
        raise ValueError(f"`prefetch` must be an integer from 1 to 10, got {prefetch!r}")
    if lease_renewal_s is None and os.environ.get(LEASE_RENEWAL_ENV):
        lease_renewal_s = float(os.environ[LEASE_RENEWAL_ENV])
    if lease_renewal_s is not None and not 0 < lease_renewal_s < visibility_timeout_s:
        raise ValueError(
            f"`lease_renewal_s` must be positive and shorter than the visibility timeout "
            f"({visibility_timeout_s} s), got {lease_renewal_s!r}"
        )
    return lease_renewal_s


class _StopFlags:
    """Set by SIGTERM/SIGINT; a signal while ``busy`` (running a task, or in a long poll) also
    interrupts the main thread with :class:`WorkerStopping`."""

    def __init__(self) -> None:
        self.busy = False
        self.stop = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True
        if self.busy:
            self.busy = False
            raise WorkerStopping(signal.Signals(signum).name)


def _stop_on_signals(flags: _StopFlags) -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT set ``flags`` (main thread only); returns the handlers replaced."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, flags.on_signal)
    return previous


@attrs.frozen
class _Limits:
    """How the worker polls, and when it stops on its own."""

    wait_s: float
    prefetch: int
    max_idle_s: float | None
    max_tasks: int | None
    stop_event: threading.Event | None
    visibility_timeout_s: int


@attrs.define
class _Taken:
    """The messages of the last receive, and which of them were handled."""

    held: list[ReceivedMessage] = attrs.field(factory=list)
    handled: set[str] = attrs.field(factory=set)

    def unhandled(self) -> list[ReceivedMessage]:
        return [m for m in self.held if m.handle not in self.handled]


def _work(
    w: _Worker, work_queue: MessageQueue, limits: _Limits, flags: _StopFlags, taken: _Taken
) -> str:
    """Receive messages and handle them until there is a reason to stop; returns the reason."""
    idle_since = time.monotonic()
    errors = 0
    while True:
        reason = _stop_reason(w.stats, limits, flags)
        if reason is not None:
            return reason
        poll = _poll_wait(limits, idle_since)
        if poll is None:
            w.finish_behind()
            return "idle"
        if w.behind is not None:
            poll = 0.0  # a task's outcome waits for its writes: take only work already queued
        want = limits.prefetch
        if limits.max_tasks is not None:
            want = max(1, min(limits.prefetch, limits.max_tasks - w.stats.messages_received))
        try:
            flags.busy = True  # a signal during a long poll ends it at once
            taken.held = work_queue.receive(
                want, wait_s=poll, visibility_timeout_s=limits.visibility_timeout_s
            )
            flags.busy = False
            errors = 0
        except QueueNotFoundError:
            return "queue deleted"
        except WorkerStopping:
            raise
        except Exception as e:
            flags.busy = False
            delay = _ERROR_BACKOFF_S[min(errors, len(_ERROR_BACKOFF_S) - 1)]
            errors += 1
            logger.warning(
                "receive failed (%s: %s); retrying in %.1f s", type(e).__name__, e, delay
            )
            time.sleep(delay)
            continue
        if not taken.held:
            if w.behind is not None:  # no work queued: report the last task once written
                w.finish_behind()
                w.flush()
            continue
        idle_since = time.monotonic()
        _handle_taken(w, taken, flags)


def _stop_reason(stats: WorkerStats, limits: _Limits, flags: _StopFlags) -> str | None:
    """Why the worker stops before its next receive (a signal, ``stop_event``, ``max_tasks``)."""
    if flags.stop or (limits.stop_event is not None and limits.stop_event.is_set()):
        return "stopped"
    if limits.max_tasks is not None and stats.messages_received >= limits.max_tasks:
        return "max_tasks"
    return None


def _poll_wait(limits: _Limits, idle_since: float) -> float | None:
    """How long the next receive may wait; None once the worker was idle for ``max_idle_s``."""
    poll = limits.wait_s
    if limits.max_idle_s is not None:
        left = limits.max_idle_s - (time.monotonic() - idle_since)
        if left <= 0:
            return None
        poll = min(poll, max(1.0, left))
    if limits.stop_event is not None:
        poll = min(poll, 1.0)
    return poll


def _handle_taken(w: _Worker, taken: _Taken, flags: _StopFlags) -> None:
    """Handle the messages received, in order, reporting outcomes at least every
    ``_FLUSH_INTERVAL_S`` and after the last; a stop leaves the rest in ``taken.held``."""
    held = taken.held
    w.stats.messages_received += len(held)
    w.leases.hold(held)
    taken.handled.clear()
    for i, message in enumerate(held):
        if flags.stop:
            break
        w.unfinished = held[i:]
        flags.busy = True
        w.handle(message)
        flags.busy = False
        taken.handled.add(message.handle)
        if i == len(held) - 1 or time.monotonic() - w.last_flush >= _FLUSH_INTERVAL_S:
            w.flush()
    taken.held = taken.unhandled()


def _wind_down(w: _Worker, work_queue: MessageQueue, taken: _Taken) -> None:
    """Report the last outcomes, stop renewing leases, and give back what was taken and not
    handled at once (rather than when its lease runs out)."""
    try:
        w.finish_behind()
        w.flush()
    except Exception as e:
        logger.warning("could not report the last outcomes: %s", e)
    w.leases.stop()
    for m in taken.unhandled():
        try:
            work_queue.change_visibility(m, 0)
        except Exception:
            pass
