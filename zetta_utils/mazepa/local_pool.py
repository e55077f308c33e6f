"""A pool of long-lived local worker processes (``num_procs`` > 1).

Each worker has its own pipe pair; the parent hands small batches to whichever worker has room, so
work spreads over the workers as they free up. Batch sizes adapt to the measured task duration:
tiny tasks travel in batches of up to ``max_batch_size`` (with one batch prefetched per worker; a
busy worker is topped up a whole batch at a time), tasks of 50 ms or more one at a time, with one
more prefetched while there is enough unsent work for every busy worker to get one (so a worker
does not wait for the parent between tasks, and at the end of the work no task waits behind a
slow one while another worker idles). A task that returned and whose writes are still pending
(write-behind: it finishes behind the next task, and its outcome comes after that one returned)
takes no room: each worker's messages say whether it holds one.

Which worker gets which task: contiguous spans of the flows' order, about a second of work each,
with stealing (:class:`.lanes.TaskLanes`), so that neighbouring chunks, whose padded reads share
storage chunks, are read by the same worker and its read cache. A task that names the tasks whose
outputs it reads (``Task.reads_from``: a reduction, the top-level tasks that wrote its pieces) goes
to the worker that ran most of them, which may still hold those outputs in memory, unless another
worker would otherwise idle.

Each worker's libraries get their share of the cores (:mod:`.worker_threads`: TensorStore's
``data_copy_concurrency`` is ``cores // num_procs``, ``$ZETTA_TS_DATA_COPY_CONCURRENCY`` overrides
it), not all of them each. ``$ZETTA_WRITE_BEHIND=remote``: writes to local storage finish inside
their tasks rather than behind them (:func:`.worker_threads.local_write_behind`).

Workers start with "forkserver" where available ("spawn" elsewhere): never plain fork, which is
unsafe once torch has started its threads. A worker that dies (segfault, ``os._exit``, OOM kill)
is replaced; the task it was running fails with a retryable ``WorkerCrashedError`` and the other
tasks it held go back to the queue.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import select
import signal
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from zetta_utils import write_behind

from .executors import DurationOf, ExecutorBackend, SerialExecutor, TaskDurations, measured_duration
from .interrupts import interruptible
from .lanes import TaskLanes
from .serialization import SentOperations, deserialize_outcomes, serialize_task_batch
from .task_outcome import TaskOutcome
from .tasks import Task
from .transient_errors import WorkerCrashedError
from .worker_threads import local_write_behind, worker_entry, worker_environment

__all__ = [
    "LocalProcessExecutor",
    "SerialUnlessWorthIt",
    "default_start_method",
    "estimated_start_cost_s",
    "start_fork_server",
]

logger = logging.getLogger(__name__)

_LONG_TASK_SEC = 0.05  # tasks this long go one at a time, one prefetched
_SPAN_SEC = 1.0  # work a worker's lane holds beyond what it was sent
_MAX_SPAN = 512  # tasks
_MAX_UNATTRIBUTED_DEATHS = 5
_RAN_ON_MAX = 1 << 16  # task ids whose worker is remembered, for ``reads_from`` hints
# What every worker imports before its first task: the worker loop, and the parts of
# multiprocessing that unpickle its pipes, shared counter and semaphores (3-4 ms per worker).
_PRELOAD = [
    "zetta_utils.mazepa.worker_process",
    "multiprocessing.heap",
    "multiprocessing.popen_fork",
    "multiprocessing.popen_forkserver",
    "multiprocessing.sharedctypes",
    "multiprocessing.synchronize",
]
# Heavy modules the forkserver imports once, so that each worker does not (2-4 s per worker for
# torch + tensorstore + zetta_utils; tens of ms even for zetta_utils' own modules, paid when the
# first task is unpickled). Within a run, only those the parent has already imported (mazepa
# itself never pulls torch in), plus every zetta_utils module it has loaded.
_PRELOAD_IF_LOADED = (
    "numpy",
    "torch",
    "tensorstore",
    "cloudvolume",
    "zetta_utils.layer.volumetric",
    "zetta_utils.layer.volumetric.tensorstore",
    "zetta_utils.layer.volumetric.cloudvol",
    "zetta_utils.mazepa_layer_processing",
)


def _preload_modules() -> list[str]:
    names = _PRELOAD + [name for name in _PRELOAD_IF_LOADED if name in sys.modules]
    own = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("zetta_utils.") and module is not None and name not in names
    )
    return names + own


def start_fork_server(preload: Sequence[str] = _PRELOAD_IF_LOADED) -> None:
    """Start the fork server now, importing ``preload`` (default: the heavy modules workers of
    chunkwise runs need) once in it, so that the imports run while this process does other work
    (``zetta run -p N`` calls it before reading the spec). Workers started later fork from it.
    Nothing happens where workers are spawned instead, or when the server already runs (its
    preload is fixed then)."""
    if default_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD + [name for name in preload if name not in _PRELOAD])
    forkserver.ensure_running()


# What starting workers costs a run, as measured on a busy 2-core machine
# (bench/bench_short_runs.py, "workers forced" against "serial"): starting 2 workers from a running
# fork server, opening the layers again in each and stopping them, 0.05-0.4 s; starting the fork
# server itself (torch, TensorStore, zetta_utils imported in it) 2.5-4 s.
_WORKER_START_SEC = 0.3
_FORK_SERVER_START_SEC = 3.0


def _fork_server_running() -> bool:
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", None) is not None


def estimated_start_cost_s() -> float:
    """Seconds that starting local workers is estimated to cost a run (more while the fork
    server has not started yet); ``$ZETTA_WORKER_START_COST_S`` overrides the estimate (0:
    always start the workers, as the test suite does to test them with short runs)."""
    import os

    given = os.environ.get("ZETTA_WORKER_START_COST_S")
    if given:
        try:
            return float(given)
        except ValueError:
            raise ValueError(
                f"$ZETTA_WORKER_START_COST_S must be a number of seconds, got {given!r}"
            ) from None
    if default_start_method() == "forkserver" and _fork_server_running():
        return _WORKER_START_SEC
    return _WORKER_START_SEC + _FORK_SERVER_START_SEC


def default_start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class _Worker:
    __slots__ = (
        "behind",
        "index",
        "outstanding",
        "process",
        "readable",
        "result_conn",
        "sent",
        "seq",
        "task_conn",
    )

    def __init__(self, index: int, process: Any, task_conn: Any, result_conn: Any, seq: Any):
        self.index = index
        self.process = process
        self.task_conn = task_conn
        self.result_conn = result_conn
        self.readable = select.poll()  # whether a message (or the pipe's end) waits
        self.readable.register(result_conn.fileno(), select.POLLIN)
        self.seq = seq
        self.sent = SentOperations()  # the operations this worker holds
        # (seq, task) sent to the worker and not yet reported, in order.
        self.outstanding: deque[tuple[int, Task[Any]]] = deque()
        # 1 while the worker said (in its last message) that the oldest of them returned and only
        # its writes are pending (write-behind): it runs the next one meanwhile
        self.behind = 0

    @property
    def running(self) -> int:
        """Tasks sent and not returned yet (running or waiting in the worker)."""
        return len(self.outstanding) - self.behind


def _stop_processes(processes: list[Any], grace_sec: float) -> None:
    """terminate -> join -> kill -> join."""
    deadline = time.monotonic() + grace_sec
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(1.0)


class LocalProcessExecutor:
    """Runs tasks in ``num_procs`` worker processes on this machine.

    :param duration_of: reads a finished task's duration for batch sizing (default: measured);
        tests pass their own so that batches do not depend on the machine's speed.
    :param exit_grace_s: after a finished run, how long workers told to exit may take before
        they are terminated.
    """

    def __init__(
        self,
        num_procs: int,
        *,
        semaphores: dict[str, Any] | None = None,
        max_batch_size: int = 32,
        start_method: str | None = None,
        duration_of: DurationOf = measured_duration,
        exit_grace_s: float = 5.0,
    ):
        if isinstance(num_procs, bool) or not isinstance(num_procs, int) or num_procs < 1:
            raise ValueError(f"`num_procs` must be a positive integer, got {num_procs!r}")
        if (
            isinstance(max_batch_size, bool)
            or not isinstance(max_batch_size, int)
            or max_batch_size < 1
        ):
            raise ValueError(f"`batch_size` must be a positive integer, got {max_batch_size!r}")
        method = start_method or default_start_method()
        if method == "fork":
            raise ValueError(
                "start_method 'fork' is unsafe with threaded libraries (torch); use 'forkserver' "
                "or 'spawn'"
            )
        # (checked before any worker starts: a bad $ZETTA_TS_DATA_COPY_CONCURRENCY is an error)
        self._worker_settings = worker_environment(num_procs)
        # read once for the run (the workers' own environment is the fork server's)
        self._write_behind_on = write_behind.enabled()
        self._local_write_behind = local_write_behind(num_procs)
        self.ctx: Any = multiprocessing.get_context(method)
        if method == "forkserver":
            self.ctx.set_forkserver_preload(_preload_modules())
        self.num_procs = num_procs
        self.max_batch_size = max_batch_size
        self.semaphores = semaphores
        self.exit_grace_s = exit_grace_s
        self._unsent: TaskLanes[Task[Any]] = TaskLanes(num_procs)
        # task id -> the worker (index) that reported its outcome, the latest last
        self._ran_on: OrderedDict[str, int] = OrderedDict()
        self._local_outcomes: list[TaskOutcome[Any]] = []
        self._num_outstanding = 0
        self._next_seq = 0
        self._durations = TaskDurations(duration_of)
        self._look_ahead = 0
        """1 once a task whose operation reads ahead (``Task.start_reads``) was submitted: each
        worker holds one message more, so that the next one is waiting when a task starts and
        its first task's reads go out while that task runs (:mod:`.worker_process`)."""
        self._unattributed_deaths = 0
        self._closed = False
        self._workers: list[_Worker] = []
        # one poll set of every worker's result pipe and sentinel, kept from call to call
        # (multiprocessing's wait() builds a selector per call: most of the parent's time per
        # message)
        self._poller = select.poll()
        self._polled: dict[int, tuple[_Worker, bool]] = {}
        self._processes: list[Any] = []  # every process started, for the finalizer
        self._finalizer = weakref.finalize(self, _stop_processes, self._processes, 1.0)
        try:
            for i in range(num_procs):
                self._workers.append(self._start_worker(i))
                self._watch(self._workers[-1])
        except BaseException:
            self.shutdown(cancel=True)
            raise

    # ---- the ExecutorBackend protocol ---------------------------------------------------------

    def free_slots(self) -> int:
        batch, cap = self._batch_and_cap()
        in_system = len(self._unsent) + self._num_outstanding
        return max(0, self.num_procs * (cap + self._span()) + batch - in_system)

    def submit(self, tasks: Sequence[Task[Any]]) -> None:
        self._check_open()
        self._unsent.add(tasks)
        if not self._look_ahead and tasks and getattr(tasks[0].fn, "read_ahead", None):
            self._look_ahead = 1
        self._dispatch()

    def submit_first(self, tasks: Sequence[Task[Any]]) -> None:
        """Tasks to send before those already submitted (retries, work that consumes finished
        results), to whichever worker has room next; a task with ``reads_from`` to the worker
        that ran most of those tasks (see :meth:`preferred_worker`)."""
        self._check_open()
        by_lane: dict[int | None, list[Task[Any]]] = {}
        for task in tasks:
            by_lane.setdefault(self.preferred_worker(task), []).append(task)
        for lane, group in by_lane.items():
            self._unsent.add_first(group, lane)
        self._dispatch()

    def preferred_worker(self, task: Task[Any]) -> int | None:
        """The index of the worker that ran most of the tasks ``task`` reads from (those whose
        outcomes it reported), or None: no hint, none of them known, a tie, or one worker."""
        if not task.reads_from or self.num_procs == 1:
            return None
        counts = [0] * self.num_procs
        ran_on = self._ran_on
        for task_id in task.reads_from:
            index = ran_on.get(task_id)
            if index is not None:
                counts[index] += 1
        most = max(counts)
        if most == 0 or counts.count(most) > 1:
            return None
        return counts.index(most)

    def poll_outcomes(self, timeout: float) -> list[TaskOutcome[Any]]:
        self._check_open()
        self._dispatch()
        if self._local_outcomes:
            timeout = 0.0
        with interruptible():
            ready = self._poller.poll(max(0, math.ceil(timeout * 1000)))
        outcomes, self._local_outcomes = self._local_outcomes, []
        dead: list[_Worker] = []
        for fd, _ in ready:
            polled = self._polled.get(fd)
            if polled is None:  # (a replaced worker's, in the same poll)
                continue
            w, is_sentinel = polled
            if is_sentinel:
                if w not in dead:
                    dead.append(w)
            elif not self._drain(w, outcomes) and w not in dead:
                dead.append(w)
        for w in dead:
            self._replace_dead_worker(w, outcomes)
        if outcomes:
            self._durations.learn_outcomes(outcomes)
            self._dispatch()
        return outcomes

    def collect_finished(self) -> list[TaskOutcome[Any]]:
        """Outcomes already sent by workers, without waiting or dispatching more work."""
        if self._closed:
            return []
        outcomes, self._local_outcomes = self._local_outcomes, []
        for w in self._workers:
            self._drain(w, outcomes)
        return outcomes

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the workers. Without ``cancel`` (every task has reported) they are told to exit
        and this returns at once: they are reaped in the background (terminated if they take longer
        than ``exit_grace_s``), so that a run does not wait while they free their memory (tens of
        ms each).
        With ``cancel`` they are terminated, and awaited."""
        if self._closed:
            return
        self._closed = True
        conns = [conn for w in self._workers for conn in (w.task_conn, w.result_conn)]
        processes = list(self._processes)
        self._unsent.clear()
        self._finalizer.detach()
        if cancel:
            _stop_processes(processes, grace_sec=2.0)
            _close_all(conns, processes)
            return
        for w in self._workers:
            try:
                w.task_conn.send_bytes(b"")
            except OSError:
                pass
        # The reaper holds the semaphores too: a worker still starting reads them when it unpickles
        # its arguments, and once the parent's last reference goes their names are unlinked.
        # It is not a daemon thread: the interpreter waits for it before its exit handlers run.
        # A daemon reaper could close a process object while multiprocessing's exit handler was
        # joining it ("Exception ignored in atexit callback ... process object is closed"), and
        # an exiting parent took the fork server down with it, whose SIGTERM (the workers' parent
        # death signal) cut the workers' own exit short.
        threading.Thread(
            target=_reap,
            args=(processes, conns, self.semaphores, self.exit_grace_s),
            name="mazepa-reaper",
            daemon=False,
        ).start()

    # ---- introspection (tests, progress) ------------------------------------------------------

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def __enter__(self) -> LocalProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel=exc[0] is not None)

    # ---- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LocalProcessExecutor: used after shutdown()")

    def _start_worker(self, index: int) -> _Worker:
        task_r, task_w = self.ctx.Pipe(duplex=False)
        result_r, result_w = self.ctx.Pipe(duplex=False)
        seq = self.ctx.RawValue("q", -1)
        process = self.ctx.Process(
            target=worker_entry,
            args=(
                self.num_procs,
                self._worker_settings,
                task_r,
                result_w,
                seq,
                self.semaphores,
                self._write_behind_on,
                self._local_write_behind,
            ),
            name=f"mazepa-worker-{index}",
        )
        # Workers must not take the terminal's Ctrl-C before the parent asks for confirmation;
        # they also ignore SIGINT themselves, this covers the moments before that.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _in_main_thread() else None
        try:
            process.start()
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        self._processes.append(process)
        task_r.close()
        result_w.close()
        return _Worker(index, process, task_w, result_conn=result_r, seq=seq)

    def _batch_and_cap(self) -> tuple[int, int]:
        """Tasks per message, and most tasks a worker holds (running and prefetched)."""
        mean = self._durations.mean_secs
        if mean is None:
            return 1, 1
        if mean >= _LONG_TASK_SEC:
            return 1, 2 + self._look_ahead
        batch = self._durations.batch(self.max_batch_size)
        return batch, 2 * batch + self._look_ahead

    def _span(self) -> int:
        """Tasks a worker's lane is to hold beyond those sent to it: about ``_SPAN_SEC`` of work
        (0 while no task has finished)."""
        mean = self._durations.mean_secs
        if mean is None:
            return 0
        return max(1, min(_MAX_SPAN, round(_SPAN_SEC / max(mean, 1e-6))))

    def _dispatch(self) -> None:
        unsent = self._unsent
        if not len(unsent):
            return
        batch, cap = self._batch_and_cap()
        for w in self._workers:  # (w.running, inline: every poll asks)
            if len(w.outstanding) - w.behind < cap:
                break
        else:
            return  # (most calls: every worker holds all it may)
        # Tasks meant for a worker (``reads_from``) go to it whenever it has room.
        for w in self._workers:
            room = min(cap - w.running, unsent.num_preferred(w.index))
            if room > 0:
                self._send(w, room, batch, preferred=True)
        if not len(unsent):
            return
        # Idle workers first: work queued behind a running task waits for it, however long it
        # takes, so busy workers only get a prefetch of what idle ones could not take. A busy
        # worker gets whole batches: topping it up task by task as each one finishes would cost
        # a message, and a wake-up on both sides, per task.
        idle = [w for w in self._workers if not w.running]
        busy = sorted((w for w in self._workers if w.running), key=lambda w: w.running)
        for group in (idle, busy):
            if not group:
                continue
            left = len(unsent)
            share = max(1, math.ceil(left / len(group)))
            if group is busy and batch == 1 and left < len(busy):
                # Long tasks near the end of the work: the few left go to whichever worker
                # frees up first, rather than wait behind a running one.
                return
            for w in group:
                if group is busy and cap - w.running < min(batch, left):
                    continue  # topped up with a whole batch once it has room for one
                self._send(w, min(cap - w.running, share), batch)
                left = len(unsent)
                if not left:
                    return

    def _send(self, w: _Worker, room: int, batch: int, preferred: bool = False) -> None:
        """Up to ``room`` tasks from ``w``'s lane to ``w`` (only those meant for it: with
        ``preferred``), in messages of up to ``batch``."""
        take = self._unsent.take_preferred if preferred else self._unsent.take
        while room > 0:
            tasks = take(w.index, min(batch, room))
            if not tasks:
                return
            items = []
            for task in tasks:
                items.append((self._next_seq, task))
                self._next_seq += 1
            room -= len(items)
            data = self._serialize(items, w.sent)
            if data is None:
                continue
            try:
                w.task_conn.send_bytes(data)
            except OSError:
                # The worker is gone; its death is handled by the next poll.
                self._unsent.put_back(w.index, [task for _, task in items])
                return
            w.outstanding.extend(items)
            self._num_outstanding += len(items)

    def _serialize(self, items: list[tuple[int, Task[Any]]], sent: SentOperations) -> bytes | None:
        """The batch as bytes for the worker holding ``sent``; tasks that cannot be serialized
        are failed (and dropped from ``items``). None if nothing is left."""
        try:
            return serialize_task_batch(items, sent)
        except Exception:
            pass
        good: list[tuple[int, Task[Any]]] = []
        for item in items:
            try:
                serialize_task_batch([item])
            except Exception as e:
                task = item[1]
                self._local_outcomes.append(
                    TaskOutcome.from_exception(
                        task.id,
                        TypeError(
                            f"task {task.operation_name} cannot be serialized for a worker "
                            f"process: {type(e).__name__}: {e}"
                        ),
                        retryable=False,
                    )
                )
            else:
                good.append(item)
        items[:] = good
        return serialize_task_batch(good, sent) if good else None

    def _watch(self, w: _Worker) -> None:
        for fd, is_sentinel in ((w.result_conn.fileno(), False), (w.process.sentinel, True)):
            self._poller.register(fd, select.POLLIN)
            self._polled[fd] = (w, is_sentinel)

    def _unwatch(self, w: _Worker) -> None:
        for fd, (owner, _) in list(self._polled.items()):
            if owner is w:
                self._poller.unregister(fd)
                del self._polled[fd]

    def _drain(self, w: _Worker, outcomes: list[TaskOutcome[Any]]) -> bool:
        """Read every message waiting from ``w``; False if its pipe is closed."""
        conn = w.result_conn
        try:
            while w.readable.poll(0):
                data = conn.recv_bytes()
                # (a byte first: whether a task is finishing behind, see worker_process._Outbox)
                received = deserialize_outcomes(memoryview(data)[1:])
                for outcome in received:
                    self._take_outstanding(w, outcome.task_id)
                    self._note_ran_on(outcome.task_id, w.index)
                w.behind = 1 if data[0] and w.outstanding else 0
                outcomes.extend(received)
        except (EOFError, OSError):
            return False
        except Exception:  # a garbled message: treat the worker as broken and replace it
            w.process.kill()
            return False
        return True

    def _note_ran_on(self, task_id: str, index: int) -> None:
        ran_on = self._ran_on
        ran_on[task_id] = index
        if len(ran_on) > _RAN_ON_MAX:
            ran_on.popitem(last=False)

    def _take_outstanding(self, w: _Worker, task_id: str) -> None:
        out = w.outstanding
        if out and out[0][1].id == task_id:
            out.popleft()
            self._num_outstanding -= 1
            return
        for i, item in enumerate(out):  # out of order: should not happen, but stay consistent
            if item[1].id == task_id:
                del out[i]
                self._num_outstanding -= 1
                return

    def _replace_dead_worker(self, w: _Worker, outcomes: list[TaskOutcome[Any]]) -> None:
        self._drain(w, outcomes)
        w.process.join(1.0)
        exitcode = w.process.exitcode
        running = w.seq.value
        culprit: str | None = None
        requeue: list[Task[Any]] = []
        for seq, task in w.outstanding:
            if seq == running and culprit is None:
                culprit = task.id
            else:
                requeue.append(task)
        self._num_outstanding -= len(w.outstanding)
        w.outstanding.clear()
        self._unsent.put_back(w.index, requeue)
        if culprit is not None:
            self._unattributed_deaths = 0
            outcomes.append(
                TaskOutcome.from_exception(
                    culprit,
                    WorkerCrashedError(
                        f"worker process {w.process.pid} {_describe_exit(exitcode)} while running "
                        "this task"
                    ),
                    retryable=True,
                    traceback_text="",
                ).without_exception()
            )
        else:
            self._unattributed_deaths += 1
            if self._unattributed_deaths > _MAX_UNATTRIBUTED_DEATHS:
                raise RuntimeError(
                    "mazepa worker processes keep dying outside of tasks (last: "
                    f"{_describe_exit(exitcode)}); see their output above"
                )
        self._unwatch(w)
        for conn in (w.task_conn, w.result_conn):
            try:
                conn.close()
            except OSError:
                pass
        # what it held in memory died with it
        self._ran_on = OrderedDict((k, i) for k, i in self._ran_on.items() if i != w.index)
        replacement = self._start_worker(w.index)
        self._workers[self._workers.index(w)] = replacement
        self._watch(replacement)


class SerialUnlessWorthIt:
    """The backend of ``execute(num_procs=N)``: runs the first task in this process, then starts
    the ``N`` workers only if they save more time than starting them costs, by the run's own plan:
    the tasks its flows declared and that are left (``tasks_left()``) times the first task's
    duration, spread over ``N`` processes, against ``start_cost_s``. A run that would be
    slower with workers stays serial (and says so in the log). When ``tasks_left()`` is None
    (a flow yields tasks it did not declare) the workers start after the first task.

    :param make_pool: starts the workers (a :class:`LocalProcessExecutor`).
    :param duration_of: reads a finished task's duration (tests pass their own).
    """

    def __init__(
        self,
        num_procs: int,
        *,
        make_pool: Callable[[], ExecutorBackend],
        tasks_left: Callable[[], int | None],
        start_cost_s: float,
        serial_batch_size: int = 64,
        duration_of: DurationOf = measured_duration,
    ):
        self.num_procs = num_procs
        self.start_cost_s = start_cost_s
        self._make_pool = make_pool
        self._tasks_left = tasks_left
        self._serial = SerialExecutor(serial_batch_size, duration_of=duration_of)
        self._duration_of = duration_of
        self.pool: ExecutorBackend | None = None
        self.decided = False
        """True once the first task has run and the run is either serial for good or has workers."""

    @property
    def _current(self) -> ExecutorBackend:
        return self.pool if self.pool is not None else self._serial

    def free_slots(self) -> int:
        if not self.decided:
            return 0 if self._serial.num_queued else 1
        return self._current.free_slots()

    def submit(self, tasks: Sequence[Task[Any]]) -> None:
        self._current.submit(tasks)

    def submit_first(self, tasks: Sequence[Task[Any]]) -> None:
        submit_first = getattr(self._current, "submit_first", None)
        (submit_first or self._current.submit)(tasks)

    def poll_outcomes(self, timeout: float) -> list[TaskOutcome[Any]]:
        outcomes = self._current.poll_outcomes(timeout)
        if not self.decided and outcomes:
            self._decide(outcomes)
            if self.pool is not None:
                # the serial part's last task, its writes waited for (write-behind)
                outcomes += self._serial.collect_finished()
        return outcomes

    def collect_finished(self) -> list[TaskOutcome[Any]]:
        outcomes = self._serial.collect_finished()
        collect = getattr(self.pool, "collect_finished", None)
        if collect is not None:
            outcomes.extend(collect())
        return outcomes

    def shutdown(self, cancel: bool = False) -> None:
        self._serial.shutdown(cancel)
        if self.pool is not None:
            self.pool.shutdown(cancel)

    def _decide(self, outcomes: Sequence[TaskOutcome[Any]]) -> None:
        self.decided = True
        left = self._tasks_left()
        if left is not None:
            left = max(0, left - len(outcomes))  # the scheduler has not counted these yet
            mean = sum(self._duration_of(o) for o in outcomes) / len(outcomes)
            work = left * mean
            saved = work * (1 - 1 / self.num_procs)
            if saved <= self.start_cost_s:
                logger.info(
                    "running serially, not in %d processes: the %d task(s) left take about %.2f s "
                    "(%.3f s each), and %d processes would save %.2f s of it, less than the "
                    "%.2f s starting them costs",
                    self.num_procs,
                    left,
                    work,
                    mean,
                    self.num_procs,
                    saved,
                    self.start_cost_s,
                )
                return
        self.pool = self._make_pool()
        queued = self._serial.take_queued()
        if queued:
            self.pool.submit(queued)


def _reap(
    processes: list[Any], conns: list[Any], keep_alive: object, grace_sec: float = 5.0
) -> None:
    """Wait for workers told to exit (terminating those that do not within ``grace_sec``), then
    close their pipes and process handles. ``keep_alive`` (what the workers were started with) is
    only held until then."""
    deadline = time.monotonic() + grace_sec
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    _stop_processes(processes, grace_sec=0.0)
    _close_all(conns, processes)


def _close_all(conns: list[Any], processes: list[Any]) -> None:
    for conn in conns:
        try:
            conn.close()
        except OSError:
            pass
    for p in processes:
        try:
            p.close()
        except ValueError:  # still running: nothing more we can do
            pass


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped responding"
    if exitcode < 0:
        try:
            return f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
