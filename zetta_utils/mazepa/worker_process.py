"""The main loop of a local worker process (started by :class:`.local_pool.LocalProcessExecutor`).

Messages from the parent are batches of ``(seq, task)`` (see ``serialize_task_batch``; operations
the worker already holds are not sent again); an empty message means "exit". The worker runs the
tasks in order and sends back pickled outcome lists (after a byte that says whether a task is
still finishing behind), at the end of each batch or every 0.1 s during a long one; a task's
outcome is sent once its deferred writes finished (:mod:`zetta_utils.write_behind`), which they do
while the next task runs. Before running a task
it writes the task's sequence number into shared memory, so that if the task kills the process,
the parent knows which one did.

Measuring (``$ZETTA_WORKER_CPROFILE`` and ``$ZETTA_WORKER_TRACE`` as the run's process has them,
handed to its workers by :mod:`.worker_threads`):

* profiling: with ``$ZETTA_WORKER_CPROFILE`` set to a folder, each worker profiles its main
  thread with ``cProfile`` and writes ``worker-<pid>.prof`` there when it exits;
* tracing: with ``$ZETTA_WORKER_TRACE`` set to a folder, each worker notes when its main thread
  waits for work (``wait``: nothing behind; ``wait-behind``: a task's writes pending), runs a task
  (``task``), and waits for the writes of the task finishing behind before reporting it
  (``finish``), and writes them there when it exits as ``trace-<pid>.json``: a list of
  ``[what, start, end]`` in ``time.monotonic()`` seconds (the system's clock, comparable across
  processes), from ``start`` (the worker loop began) to ``end``. ``bench/bench_idle.py --trace``
  sums them per run.

Kept free of heavy imports: it is preloaded into the fork server.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from typing import Any

from zetta_utils import write_behind

from .nesting import mark_worker_process
from .semaphores import install_semaphores
from .serialization import ReceivedOperations, deserialize_task_batch, serialize_outcomes
from .task_outcome import TaskOutcome
from .task_runs import RanTask, run_task
from .tasks import Task

__all__ = ["tune_malloc", "worker_main"]

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


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MALLOC_MMAP_THRESHOLD = 32 * 2**20
MALLOC_TRIM_THRESHOLD = 256 * 2**20


def tune_malloc() -> bool:
    """glibc: keep freed memory in the process for the next chunk instead of giving it back.

    Chunkwise work allocates and frees the same large buffers (chunk inputs and outputs, a few
    MB each) for every task. By default glibc serves blocks of this size with fresh ``mmap``s, or
    trims them from the heap once freed, so every task pays a page fault and a page clearing for
    every 4 KB it touches: a tenth of a worker's CPU time in the subchunkable benchmark, more
    with several workers. Here blocks of up to 32 MB come from the heap and up to 256 MB of free
    heap is kept (a worker's memory stays near its peak). All threads share one heap (glibc
    otherwise gives threads heaps of their own): a buffer freed by one of TensorStore's I/O
    threads is reused by the next, where separate heaps each grow to the peak of their own
    threads (half a worker's page faults in that benchmark). Called by ``zetta`` commands and
    local workers; ``ZETTA_MALLOC_TUNING=0`` turns it off. Returns whether it applied."""
    if os.environ.get("ZETTA_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's (absent from musl)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD),
        (_M_ARENA_MAX, 1),
    )
    return all([bool(mallopt(option, value)) for option, value in settings])


def _limit_torch_threads(state: dict[str, bool]) -> None:
    # Only if the task brought torch in: importing it here would cost seconds per worker.
    if not state["torch"] and "torch" in sys.modules:
        state["torch"] = True
        try:
            sys.modules["torch"].set_num_threads(1)
        except Exception:
            pass


def _wait_for_message(
    inbox: queue.SimpleQueue[bytes | str | None],
    trace: list[tuple[str, float, float]] | None,
    holds_behind: bool,
) -> bytes | str | None:
    """The next message (queue.Empty after a second without one)."""
    if trace is None:
        return inbox.get(timeout=1.0)
    start = time.monotonic()
    try:
        return inbox.get(timeout=1.0)
    finally:
        trace.append(("wait-behind" if holds_behind else "wait", start, time.monotonic()))


def _reader(conn: Any, inbox: queue.SimpleQueue[bytes | str | None]) -> None:
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


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _no_tqdm_process_lock() -> None:
    """tqdm's first progress bar in a process creates a process-shared lock: a named semaphore
    registered with the run's resource tracker. A worker has no bars to share with anyone, and
    a worker that ends without running its exit handlers (killed, crashed) would leave that name
    behind: "resource_tracker: There appear to be N leaked semaphore objects" at the end of the
    run. (CloudVolume makes such a bar, disabled, for every read.)"""
    std = sys.modules.get("tqdm.std")
    lock_class = getattr(std, "TqdmDefaultWriteLock", None)
    if lock_class is not None and not hasattr(lock_class, "mp_lock"):
        lock_class.mp_lock = None  # tqdm's own fallback where multiprocessing locks are missing


_HOLDS_BEHIND = b"\x01"
_NONE_BEHIND = b"\x00"

_WAKE = "wake"
"""Put in the inbox when the writes of the task finishing behind have finished."""


class _Outbox:
    """Outcomes to send to the parent: at the end of each batch, every 0.1 s during a long one,
    and whenever the task finishing behind finished while the worker waits for work.

    Each message starts with one byte: 1 if the worker holds a task finishing behind (returned,
    its writes pending, its outcome not sent yet) once the message is sent, else 0. The parent
    counts that task as done running when it decides whether the worker has room for more
    (:class:`.local_pool.LocalProcessExecutor`): the worker runs the next task meanwhile."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.outcomes: list[TaskOutcome[Any]] = []
        self.last_send = time.monotonic()

    def send(self, holds_behind: bool) -> None:
        if self.outcomes:
            flag = _HOLDS_BEHIND if holds_behind else _NONE_BEHIND
            try:
                self.conn.send_bytes(flag + serialize_outcomes(self.outcomes))
            except (BrokenPipeError, ConnectionResetError) as e:
                raise _ParentGone() from e
            self.outcomes = []
        self.last_send = time.monotonic()

    def send_if_due(self, holds_behind: bool) -> None:
        if time.monotonic() - self.last_send >= _SEND_INTERVAL_SEC:
            self.send(holds_behind)


class _ParentGone(Exception):
    """The run's process closed its end of the outcomes' pipe (it died, e.g. killed): nobody is
    left to tell, and the worker ends quietly (no traceback on the run's terminal)."""


def worker_main(
    task_conn: Any,
    result_conn: Any,
    current_seq: Any,
    semaphores: dict[str, Any] | None,
    write_behind_on: bool | None = None,
    local_write_behind: bool = True,
) -> None:
    """Run tasks from ``task_conn`` until told to stop or the parent goes away.

    ``write_behind_on``: whether tasks defer their writes, as the run's process read
    ``$ZETTA_WRITE_BEHIND`` once for the run (None: this process's environment, read once here).
    ``local_write_behind``: whether their writes to local storage go behind too
    (:func:`.worker_threads.local_write_behind`, decided by the run's process).

    Write-behind: a task's deferred writes finish while the next task runs; its outcome is sent
    only once they have (so the parent never counts a task done whose writes are pending). At
    most one task finishes behind the running one; before the worker exits, pending writes are
    waited for."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # SIGTERM (a cancelled run, a parent that died) ends the worker through SystemExit, so that
    # multiprocessing's exit handlers still run: they unlink what the worker's libraries created.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _die_with_parent()
    _no_tqdm_process_lock()
    tune_malloc()
    install_semaphores(semaphores)
    mark_worker_process()
    write_behind.configure(local=local_write_behind)
    inbox: queue.SimpleQueue[bytes | str | None] = queue.SimpleQueue()
    threading.Thread(
        target=_reader, args=(task_conn, inbox), daemon=True, name="mazepa-reader"
    ).start()
    trace_dir = os.environ.get("ZETTA_WORKER_TRACE")
    if trace_dir:
        _TRACE[0] = [("start", time.monotonic(), time.monotonic())]
    profile_dir = os.environ.get("ZETTA_WORKER_CPROFILE")
    profiler = None
    if profile_dir:  # (for measuring, see the module's docstring)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        if write_behind_on is None:
            write_behind_on = write_behind.enabled()
        _work(inbox, result_conn, current_seq, write_behind_on)
    except _ParentGone:
        pass
    finally:
        write_behind.wait_all()
        if trace_dir and _TRACE[0] is not None:
            import json

            _TRACE[0].append(("end", time.monotonic(), time.monotonic()))
            with open(os.path.join(trace_dir, f"trace-{os.getpid()}.json"), "w") as f:
                json.dump(_TRACE[0], f)
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"worker-{os.getpid()}.prof"))


_TRACE: list[list[tuple[str, float, float]] | None] = [None]
"""With ``$ZETTA_WORKER_TRACE``: (what, start, end) of the main thread's waits and tasks."""


class _Batch:
    """A batch message taken from the inbox ahead, its tasks unpickled (or the error)."""

    __slots__ = ("error", "ids", "tasks")

    def __init__(
        self, ids: list[tuple[int, str]], tasks: list[Task[Any]], error: Exception | None
    ) -> None:
        self.ids = ids
        self.tasks = tasks
        self.error = error


def _load(data: bytes, received: ReceivedOperations, current_seq: Any = None) -> _Batch:
    """``data``'s tasks; ``current_seq``: set to the first task's while they are unpickled (the
    worker's parent blames it if that kills the worker)."""
    ids, load = deserialize_task_batch(data, received)
    if ids and current_seq is not None:
        current_seq.value = ids[0][0]
    try:
        tasks: list[Task[Any]] = load()
        _no_tqdm_process_lock()  # (unpickling may have imported it)
    except Exception as e:
        error = RuntimeError(
            f"the tasks could not be unpickled on the worker: {type(e).__name__}: {e}"
        )
        return _Batch(ids, [], error)
    return _Batch(ids, tasks, None)


def _next_batch_ahead(
    inbox: queue.SimpleQueue[bytes | str | None], received: ReceivedOperations
) -> _Batch | bytes | None:
    """The next message if one is waiting already (a batch: unpickled, its first task's reads
    started, so that they are in flight while the last task of this batch runs); else None.
    A wake-up is dropped (the loop checks the task behind anyway); "exit" (``b""``) is kept."""
    try:
        data = inbox.get_nowait()
    except queue.Empty:
        return None
    if data is None or data == b"":
        return b""
    if not isinstance(data, bytes):  # (_WAKE)
        return None
    batch = _load(data, received)
    if batch.tasks:
        batch.tasks[0].start_reads()
    return batch


def _work(
    inbox: queue.SimpleQueue[bytes | str | None],
    result_conn: Any,
    current_seq: Any,
    write_behind_on: bool,
) -> None:
    parent = multiprocessing.parent_process()
    torch_state = {"torch": False}
    received = ReceivedOperations()
    outbox = _Outbox(result_conn)
    behind: RanTask | None = None
    armed: RanTask | None = None  # the task behind whose writes wake the inbox when finished
    trace = _TRACE[0]
    ahead: _Batch | bytes | None = None  # the next message, taken from the inbox ahead

    def wake() -> None:
        inbox.put(_WAKE)

    while True:
        if behind is not None and behind.scope.done():
            outbox.outcomes.append(behind.finish())
            behind = None
            outbox.send(False)
        data: _Batch | bytes | str | None
        if ahead is not None:
            data, ahead = ahead, None
        else:
            try:
                if behind is not None and armed is not behind:
                    # about to wait with a task behind: its writes wake the inbox when they
                    # finish (armed only now: while tasks keep coming, the loop polls its writes
                    # between them, and none of its futures calls back into Python on
                    # TensorStore's threads)
                    try:
                        data = inbox.get_nowait()
                    except queue.Empty:
                        armed = behind
                        behind.scope.add_done_callback(wake)
                        data = _wait_for_message(inbox, trace, True)
                else:
                    data = _wait_for_message(inbox, trace, behind is not None)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return
                continue
        if data == _WAKE:
            continue
        if not data:
            if behind is not None:
                outbox.outcomes.append(behind.finish())
                outbox.send(False)
            return
        if isinstance(data, _Batch):
            batch = data
        else:
            assert isinstance(data, bytes)
            batch = _load(data, received, current_seq)
        ids, tasks = batch.ids, batch.tasks
        if batch.error is not None:
            current_seq.value = -1
            outbox.outcomes.extend(
                TaskOutcome.from_exception(tid, batch.error, retryable=False) for _, tid in ids
            )
            outbox.send(behind is not None)
            continue
        last = len(tasks) - 1
        for i, ((seq, _), task) in enumerate(zip(ids, tasks, strict=True)):
            # the next task's reads in flight while this one runs (the next message's first
            # task's, when it is waiting already)
            if getattr(task.fn, "read_ahead", None) is not None:
                if i < last:
                    tasks[i + 1].start_reads()
                elif ahead is None:
                    ahead = _next_batch_ahead(inbox, received)
            current_seq.value = seq
            if not torch_state["torch"]:
                _limit_torch_threads(torch_state)
            if trace is not None:
                start = time.monotonic()
            ran = run_task(task, write_behind_on)
            if trace is not None:
                trace.append(("task", start, time.monotonic()))
            if not torch_state["torch"]:
                _limit_torch_threads(torch_state)
            current_seq.value = -1
            if behind is not None:
                if trace is not None and not behind.scope.done():
                    start = time.monotonic()
                    try:
                        behind.scope.wait()
                    except Exception:
                        pass  # (raised by finish below)
                    trace.append(("finish", start, time.monotonic()))
                outbox.outcomes.append(behind.finish())
            if ran.scope.done():  # nothing left to wait for
                outbox.outcomes.append(ran.finish())
                behind = None
            else:
                behind = ran
            outbox.send_if_due(behind is not None)
        outbox.send(behind is not None)
