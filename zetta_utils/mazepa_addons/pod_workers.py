"""Several queue workers in one pod: a worker group's ``num_procs``.

``python -m zetta_utils.mazepa_addons.pod_workers --procs N [--semaphores JSON] -- ARGS`` runs N
``zetta worker ARGS`` processes side by side and looks after them, as the original's
``num_procs`` did: they share the ``mazepa.semaphore`` limits of ``--semaphores`` (default:
``cuda`` 1, so that tasks of the N processes take turns on the GPU while the others read and
write). SIGTERM (a pod being stopped) is passed on to every worker, which releases its running
task at once; a worker that dies is started again after a growing delay (its task is handed out
again when its lease runs out, and the delivery counts, as for a pod that dies); the supervisor
exits when every worker has exited by itself (the run deleted its queues).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import multiprocessing.connection
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from zetta_utils.mazepa.semaphores import create_semaphores

__all__ = ["main", "pod_worker_command", "run_pod_workers"]

logger = logging.getLogger(__name__)


def pod_worker_command(
    num_procs: int, worker_args: Sequence[str], semaphores_spec: Mapping[str, int] | None = None
) -> list[str]:
    """The container command running ``num_procs`` workers with ``zetta worker`` ``worker_args``."""
    command = ["python", "-m", "zetta_utils.mazepa_addons.pod_workers", "--procs", str(num_procs)]
    if semaphores_spec:
        command += ["--semaphores", json.dumps(dict(semaphores_spec), sort_keys=True)]
    return [*command, "--", *worker_args]


def run_pod_workers(
    num_procs: int,
    worker_args: Sequence[str],
    semaphores_spec: Mapping[str, int] | None = None,
    *,
    grace_s: float = 30.0,
    restart_backoff_s: float = 1.0,
    max_restart_backoff_s: float = 30.0,
    target: Callable[[list[str], dict[str, Any]], None],
) -> int:
    """Run ``num_procs`` workers until they all exit by themselves (0) or SIGTERM/SIGINT stops
    them (0 as well: the pod was asked to stop). Returns the exit status."""
    if isinstance(num_procs, bool) or not isinstance(num_procs, int) or num_procs < 1:
        raise ValueError(f"`num_procs` must be a positive integer, got {num_procs!r}")
    ctx = multiprocessing.get_context("spawn")
    semaphores = create_semaphores(semaphores_spec, num_procs, ctx)
    args = list(worker_args)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    procs: list[Any] = [None] * num_procs
    restart_at = [0.0] * num_procs
    streak = [0] * num_procs
    finished = [False] * num_procs
    try:
        while not stopping and not all(finished):
            now = time.monotonic()
            for i in range(num_procs):
                if finished[i] or procs[i] is not None or now < restart_at[i]:
                    continue
                procs[i] = ctx.Process(target=target, args=(args, semaphores), name=f"worker-{i}")
                procs[i].start()
            running = [p.sentinel for p in procs if p is not None]
            multiprocessing.connection.wait(running, timeout=0.5) if running else time.sleep(0.5)
            for i, p in enumerate(procs):
                if p is None or p.is_alive():
                    continue
                procs[i] = None
                if p.exitcode == 0:
                    finished[i] = True
                    continue
                streak[i] += 1
                delay = min(restart_backoff_s * 2 ** (streak[i] - 1), max_restart_backoff_s)
                logger.warning(
                    "worker %d (pid %d) exited with %s; starting it again in %.1f s",
                    i,
                    p.pid,
                    p.exitcode,
                    delay,
                )
                restart_at[i] = time.monotonic() + delay
        return 0
    finally:
        alive = [p for p in procs if p is not None and p.is_alive()]
        for p in alive:
            p.terminate()  # SIGTERM: the worker releases its running task at once
        deadline = time.monotonic() + grace_s
        for p in alive:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(
    argv: Sequence[str] | None = None, *, target: Callable[[list[str], dict[str, Any]], None]
) -> int:
    """The supervisor program; ``target(worker_args, semaphores)`` is what each worker process
    runs (``zetta worker``: :func:`zetta_utils.cli.remote.pod_worker_main`, passed in by the
    ``__main__`` block, since this package is below the CLI and never imports it)."""
    parser = argparse.ArgumentParser(
        prog="python -m zetta_utils.mazepa_addons.pod_workers",
        description=(
            "Run several `zetta worker` processes sharing semaphore limits "
            "(a worker group's num_procs)."
        ),
    )
    parser.add_argument("--procs", type=int, required=True, help="number of worker processes")
    parser.add_argument(
        "--semaphores", default=None, help='semaphore limits as JSON, e.g. {"cuda": 1}'
    )
    parser.add_argument(
        "worker_args", nargs=argparse.REMAINDER, help="-- then the `zetta worker` options"
    )
    ns = parser.parse_args(argv)
    worker_args = ns.worker_args[1:] if ns.worker_args[:1] == ["--"] else ns.worker_args
    semaphores = json.loads(ns.semaphores) if ns.semaphores else None
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run_pod_workers(ns.procs, worker_args, semaphores, target=target)


if __name__ == "__main__":  # pragma: no cover
    # A program entry point, run as `python -m`, never on import: it may use the CLI above.
    from zetta_utils.cli.remote import pod_worker_main

    sys.exit(main(target=pod_worker_main))
