"""Queue workers as local processes (``local_test: true``): the Kubernetes Deployment in small.

Like a Deployment, the pool restarts a worker that dies, so a test can kill one mid-task and the
run still has its workers. A worker that keeps dying at start (a broken environment) stops the run
with the end of its log instead of being restarted forever.

Workers run in their own session, so a Ctrl-C in the terminal reaches only the producer (which
asks for confirmation, then stops them), and they exit with the producer if it is killed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["PARENT_PID_ENV", "LocalWorkerPool", "die_with_parent"]

logger = logging.getLogger(__name__)

PARENT_PID_ENV = "ZETTA_WORKER_PARENT_PID"
_QUICK_DEATH_S = 10.0
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


class _Slot:
    __slots__ = ("deaths", "index", "log", "log_path", "process", "quick_deaths", "started")

    def __init__(self, index: int):
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.log_path: Path | None = None
        self.started = 0.0
        self.deaths = 0
        self.quick_deaths = 0


class LocalWorkerPool:
    """``num_workers`` processes running ``zetta worker`` on the given queues.

    :param env: extra environment of the workers (the run key goes here).
    :param log_dir: each worker's output goes to ``log_dir/worker-<i>[.<restart>].log``.
    :param max_quick_deaths: consecutive deaths within 10 s of start before the pool gives up.
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
        max_quick_deaths: int = 3,
    ):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"`worker_replicas` must be a positive integer for local workers, got {num_workers!r}")
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
        self._slots = [_Slot(i) for i in range(num_workers)]
        self._stopped = False

    @property
    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process is not None and s.process.poll() is None]

    @property
    def restarts(self) -> int:
        return sum(s.deaths for s in self._slots)

    def _spawn(self, slot: _Slot) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        suffix = f".{slot.deaths}" if slot.deaths else ""
        slot.log_path = self.log_dir / f"worker-{slot.index}{suffix}.log"
        if slot.log is not None:
            slot.log.close()
        slot.log = open(slot.log_path, "ab")
        slot.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=slot.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        slot.started = time.monotonic()

    def start(self) -> LocalWorkerPool:
        for slot in self._slots:
            self._spawn(slot)
        logger.info("started %d local worker(s); logs in %s", len(self._slots), self.log_dir)
        return self

    def check(self) -> None:
        """Restart dead workers; raise if they keep dying at start."""
        if self._stopped:
            return
        for slot in self._slots:
            p = slot.process
            if p is None or p.poll() is None:
                continue
            lived = time.monotonic() - slot.started
            slot.deaths += 1
            slot.quick_deaths = slot.quick_deaths + 1 if lived < _QUICK_DEATH_S and p.returncode != -signal.SIGKILL else 0
            logger.warning(
                "local worker %d (pid %d) exited with code %s after %.1f s", slot.index, p.pid, p.returncode, lived
            )
            if slot.quick_deaths >= self.max_quick_deaths:
                raise RuntimeError(
                    f"local worker {slot.index} died {slot.quick_deaths} times within {_QUICK_DEATH_S:.0f} s of "
                    f"starting; last log ({slot.log_path}):\n{_tail(slot.log_path)}"
                )
            if self.respawn:
                self._spawn(slot)

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

    def __enter__(self) -> LocalWorkerPool:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _tail(path: Path | None, n_chars: int = 3000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace")
    return text[-n_chars:]
