"""Queue workers as local processes (``local_test: true``): the Kubernetes Deployment in small.

Like a Deployment, the pool restarts a worker that dies, with a growing delay between restarts of
the same worker (``restart_backoff_s``). A worker that dies while running a task (``os._exit``, a
segfault, an abort, the OOM killer) tells nothing itself, but it keeps a small *in-flight file*
naming the message it is working on; the pool reads it, logs which task killed the worker and how,
and releases that message at once, so the task is handed out again (and its delivery counted)
without waiting for the visibility timeout. Every delivery counts: after ``max_task_deliveries``
the next worker refuses the task and reports it dead-lettered, and the run goes on without it.
A worker that keeps dying with no task in hand (a broken environment) stops the run with the end
of its log instead of being restarted forever.

Workers run in their own session, so a Ctrl-C in the terminal reaches only the producer (which
asks for confirmation, then stops them), and they exit with the producer if it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "IN_FLIGHT_FILE_ENV",
    "PARENT_PID_ENV",
    "InFlightFile",
    "LocalWorkerPool",
    "WorkerDeath",
    "describe_exit",
    "die_with_parent",
]

logger = logging.getLogger(__name__)

PARENT_PID_ENV = "ZETTA_WORKER_PARENT_PID"
IN_FLIGHT_FILE_ENV = "ZETTA_WORKER_IN_FLIGHT_FILE"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a local worker: get SIGTERM when the producer that started it dies (Linux)."""
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != expected:  # the producer died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class InFlightFile:
    """The messages a worker holds, as a small JSON file its pool reads if the worker dies.

    Written (to a temporary name, then renamed) before a task runs and removed after; a worker
    that dies mid-task leaves it naming the task (the entry with ``running: true``) and the
    messages it took and has not run yet. ``InFlightFile.from_env()`` is None outside a
    local pool (Kubernetes workers have no such reader).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")

    @classmethod
    def from_env(cls) -> InFlightFile | None:
        path = os.environ.get(IN_FLIGHT_FILE_ENV)
        return cls(path) if path else None

    def write(self, entries: Sequence[Mapping[str, Any]]) -> None:
        self._tmp.write_text(json.dumps(list(entries)))
        os.replace(self._tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def read(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        if not isinstance(entries, list):
            return []
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("handle"), str)]


def describe_exit(returncode: int | None) -> str:
    """``exited with code 3``, ``was killed by signal SIGSEGV``, ..."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class WorkerDeath:
    """One death of a local worker, as the pool saw it."""

    __slots__ = ("how", "lived_s", "pid", "slot", "tasks")

    def __init__(self, slot: int, pid: int, how: str, lived_s: float, tasks: list[dict[str, Any]]):
        self.slot = slot
        self.pid = pid
        self.how = how
        self.lived_s = lived_s
        self.tasks = tasks
        """The in-flight entries the worker left: ``task_id``, ``attempt``, ``delivery``, ..."""

    def __repr__(self) -> str:
        tasks = [t.get("task_id") for t in self.tasks]
        return f"WorkerDeath(slot={self.slot}, pid={self.pid}, how={self.how!r}, tasks={tasks})"


class _Slot:
    __slots__ = (
        "deaths",
        "in_flight",
        "index",
        "log",
        "log_path",
        "process",
        "quick_deaths",
        "restart_at",
        "started",
        "streak",
    )

    def __init__(self, index: int, in_flight: InFlightFile):
        self.index = index
        self.in_flight = in_flight
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.log_path: Path | None = None
        self.started = 0.0
        self.deaths = 0
        self.quick_deaths = 0  # consecutive deaths soon after start with no task in hand
        self.streak = 0  # consecutive deaths, for the restart delay
        self.restart_at: float | None = None


class LocalWorkerPool:
    """``num_workers`` processes running ``zetta worker`` on the given queues.

    :param env: extra environment of the workers (the run key goes here).
    :param log_dir: each worker's output goes to ``log_dir/worker-<i>[.<restart>].log``; the
        in-flight files are kept there too.
    :param release: called with the receipt handles a dead worker held, to make them visible at
        once (default: ``change_visibility(0)`` on the work queue, reached like the workers reach
        it: ``ZETTA_SQS_ENDPOINT`` and ``AWS_DEFAULT_REGION`` from ``env``).
    :param max_quick_deaths: consecutive deaths with no task in hand, each within
        ``quick_death_s`` of start, before the pool gives up (deaths while running a task never
        make it give up: they count against the task).
    :param restart_backoff_s: delay before restarting a worker after its first death in a row;
        doubled for each further death in a row, at most ``max_restart_backoff_s``. A worker that
        lived ``quick_death_s`` or longer starts a new row.
    :param clock: the time source (monotonic seconds); tests pass their own.
    """

    def __init__(
        self,
        num_workers: int,
        *,
        work_queue: str,
        outcome_queue: str,
        run_id: str,
        env: Mapping[str, str],
        log_dir: str | os.PathLike[str],
        worker_args: Sequence[str] = (),
        respawn: bool = True,
        release: Callable[[list[str]], None] | None = None,
        max_quick_deaths: int = 3,
        quick_death_s: float = 10.0,
        restart_backoff_s: float = 0.5,
        max_restart_backoff_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(
                "`worker_replicas` must be a positive integer for local workers, got "
                f"{num_workers!r}"
            )
        for name, value in (
            ("quick_death_s", quick_death_s),
            ("restart_backoff_s", restart_backoff_s),
            ("max_restart_backoff_s", max_restart_backoff_s),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a number of seconds >= 0, got {value!r}")
        self.work_queue = work_queue
        self.command = [
            sys.executable,
            "-m",
            "zetta_utils.cli.remote",
            "worker",
            "--queue",
            work_queue,
            "--outcome-queue",
            outcome_queue,
            "--run-id",
            run_id,
            *worker_args,
        ]
        self.env = {**os.environ, **env, PARENT_PID_ENV: str(os.getpid())}
        self.log_dir = Path(log_dir).expanduser()
        self.respawn = respawn
        self.max_quick_deaths = max_quick_deaths
        self.quick_death_s = float(quick_death_s)
        self.restart_backoff_s = float(restart_backoff_s)
        self.max_restart_backoff_s = float(max_restart_backoff_s)
        self.clock = clock
        self._release = release
        self._slots = [
            _Slot(i, InFlightFile(self.log_dir / f"worker-{i}.in-flight.json"))
            for i in range(num_workers)
        ]
        self._stopped = False
        self.deaths: list[WorkerDeath] = []
        """Every worker death seen, in order."""

    @property
    def pids(self) -> list[int]:
        return [
            s.process.pid for s in self._slots if s.process is not None and s.process.poll() is None
        ]

    @property
    def restarts(self) -> int:
        return sum(s.deaths for s in self._slots)

    def _spawn(self, slot: _Slot) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        suffix = f".{slot.deaths}" if slot.deaths else ""
        slot.log_path = self.log_dir / f"worker-{slot.index}{suffix}.log"
        if slot.log is not None:
            slot.log.close()
        slot.in_flight.clear()
        slot.log = open(slot.log_path, "ab")
        slot.process = subprocess.Popen(
            self.command,
            env={**self.env, IN_FLIGHT_FILE_ENV: str(slot.in_flight.path)},
            stdin=subprocess.DEVNULL,
            stdout=slot.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        slot.started = self.clock()
        slot.restart_at = None

    def start(self) -> LocalWorkerPool:
        for slot in self._slots:
            self._spawn(slot)
        logger.info("started %d local worker(s); logs in %s", len(self._slots), self.log_dir)
        return self

    def check(self) -> None:
        """Notice dead workers (release their messages, restart them after their delay); raise if
        workers keep dying with no task in hand."""
        if self._stopped:
            return
        now = self.clock()
        for slot in self._slots:
            p = slot.process
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    self._spawn(slot)
                continue
            if p is None or p.poll() is None:
                continue
            self._handle_death(slot, p, now)

    def _handle_death(self, slot: _Slot, p: subprocess.Popen[bytes], now: float) -> None:
        lived = now - slot.started
        how = describe_exit(p.returncode)
        held = slot.in_flight.read()
        slot.in_flight.clear()
        tasks = [e for e in held if e.get("running")]
        death = WorkerDeath(slot.index, p.pid, how, lived, tasks)
        self.deaths.append(death)
        slot.deaths += 1
        slot.streak = slot.streak + 1 if lived < self.quick_death_s else 1
        if held:
            self._release_messages(held)
        if tasks:
            slot.quick_deaths = 0
            for t in tasks:
                logger.warning(
                    "local worker %d (pid %d) %s after %.1f s while running task %s (delivery %s "
                    "of at most %s); handing it out again",
                    slot.index,
                    p.pid,
                    how,
                    lived,
                    t.get("task_id"),
                    t.get("delivery"),
                    t.get("max_deliveries"),
                )
        else:
            # An outside SIGKILL (a test, the OOM killer between tasks) says nothing about the
            # environment; other quick deaths with no task in hand do.
            quick = lived < self.quick_death_s and p.returncode != -signal.SIGKILL
            slot.quick_deaths = slot.quick_deaths + 1 if quick else 0
            logger.warning(
                "local worker %d (pid %d) %s after %.1f s (no task in hand)",
                slot.index,
                p.pid,
                how,
                lived,
            )
            if slot.quick_deaths >= self.max_quick_deaths:
                raise RuntimeError(
                    f"local worker {slot.index} died {slot.quick_deaths} times in a row within "
                    f"{self.quick_death_s:g} s of starting, before taking any task (last: {how}); "
                    f"last log ({slot.log_path}):\n{_tail(slot.log_path)}"
                )
        if not self.respawn:
            slot.process = None
            return
        delay = min(self.restart_backoff_s * 2 ** (slot.streak - 1), self.max_restart_backoff_s)
        slot.restart_at = now + delay
        if delay <= 0:
            self._spawn(slot)

    def _release_messages(self, tasks: list[dict[str, Any]]) -> None:
        handles = [str(t["handle"]) for t in tasks]
        try:
            if self._release is None:
                self._release = _queue_releaser(self.work_queue, self.env)
            self._release(handles)
        except Exception as e:  # the visibility timeout releases them anyway
            logger.warning(
                "could not release the messages of a dead worker (%s: %s)", type(e).__name__, e
            )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM every worker (a running task is released to the queue), then SIGKILL."""
        self._stopped = True
        procs = [s.process for s in self._slots if s.process is not None]
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for s in self._slots:
            if s.log is not None:
                s.log.close()
                s.log = None
            s.in_flight.clear()

    def __enter__(self) -> LocalWorkerPool:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _queue_releaser(work_queue: str, env: Mapping[str, str]) -> Callable[[list[str]], None]:
    from zetta_utils.message_queues.base import ReceivedMessage
    from zetta_utils.message_queues.sqs import SQSQueue

    queue = SQSQueue(
        work_queue,
        region_name=env.get("AWS_DEFAULT_REGION"),
        endpoint_url=env.get("ZETTA_SQS_ENDPOINT"),
    )

    def release(handles: list[str]) -> None:
        for handle in handles:
            queue.change_visibility(ReceivedMessage(body="", handle=handle, message_id=""), 0)

    return release


def _tail(path: Path | None, n_chars: int = 3000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace")
    return text[-n_chars:]
