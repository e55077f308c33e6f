"""The main loop of a local worker process (started by :class:`.local_pool.LocalProcessExecutor`).

Messages from the parent are batches of ``(seq, task)`` (see ``serialize_task_batch``); an empty message
means "exit". The worker runs the tasks in order and sends back pickled outcome lists, at the end of
each batch or every 0.1 s during a long one. Before running a task it writes the task's sequence
number into shared memory, so that if the task kills the process, the parent knows which one did.

Kept free of heavy imports: it is preloaded into the fork server.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import pickle
import queue
import signal
import sys
import threading
import time
from typing import Any

from .execute import mark_worker_process
from .semaphores import install_semaphores
from .serialization import deserialize_task_batch, serialize_outcomes
from .task_outcome import TaskOutcome
from .tasks import Task

__all__ = ["worker_main"]

_SEND_INTERVAL_SEC = 0.1
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent (the fork server, or the run's process) dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # libc is already loaded into the process
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _limit_torch_threads(state: dict[str, bool]) -> None:
    # Only if the task brought torch in: importing it here would cost seconds per worker.
    if not state["torch"] and "torch" in sys.modules:
        state["torch"] = True
        try:
            sys.modules["torch"].set_num_threads(1)
        except Exception:
            pass


def _reader(conn: Any, inbox: queue.SimpleQueue[bytes | None]) -> None:
    # Drains the parent's pipe at all times, so the parent never blocks on a full pipe while
    # this worker is busy sending outcomes.
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            inbox.put(None)
            return
        inbox.put(data)
        if not data:
            return


def worker_main(task_conn: Any, result_conn: Any, current_seq: Any, semaphores: dict[str, Any] | None) -> None:
    """Run tasks from ``task_conn`` until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    install_semaphores(semaphores)
    mark_worker_process()
    inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_reader, args=(task_conn, inbox), daemon=True, name="mazepa-reader").start()
    parent = multiprocessing.parent_process()
    torch_state = {"torch": False}
    while True:
        try:
            data = inbox.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return
            continue
        if not data:
            return
        ids, blob = deserialize_task_batch(data)
        outcomes: list[TaskOutcome[Any]] = []
        last_send = time.monotonic()
        if ids:
            current_seq.value = ids[0][0]
        try:
            tasks: list[Task[Any]] = pickle.loads(blob)
        except Exception as e:
            error = RuntimeError(f"the tasks could not be unpickled on the worker: {type(e).__name__}: {e}")
            current_seq.value = -1
            result_conn.send_bytes(
                serialize_outcomes([TaskOutcome.from_exception(tid, error, retryable=False) for _, tid in ids])
            )
            continue
        for (seq, _), task in zip(ids, tasks, strict=True):
            current_seq.value = seq
            _limit_torch_threads(torch_state)
            outcome = task()
            _limit_torch_threads(torch_state)
            current_seq.value = -1
            outcomes.append(outcome)
            now = time.monotonic()
            if now - last_send >= _SEND_INTERVAL_SEC:
                result_conn.send_bytes(serialize_outcomes(outcomes))
                outcomes = []
                last_send = now
        if outcomes:
            result_conn.send_bytes(serialize_outcomes(outcomes))
