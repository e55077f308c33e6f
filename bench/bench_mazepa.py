"""Scheduling overhead of mazepa: N no-op tasks, serially and in worker processes.

    python bench/bench_mazepa.py [--n 10000] [--procs 2] [--repeat 3]

Baselines, measured in the same run:
- serial: a plain Python loop calling the same no-op function N times;
- processes: ``concurrent.futures.ProcessPoolExecutor`` (same start method) running the N calls,
  one future per call, and ``map`` with chunks of 64.

Reported: tasks/s, ms per task, the per-task overhead over the baseline, and the ratio to it.
The mazepa figures include making the tasks (id hashing), walking the flow, progress counters
and, for processes, serialization and the pool's start-up (reported separately too).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time
from collections.abc import Callable, Iterator
from typing import Any

from zetta_utils import mazepa
from zetta_utils.mazepa.local_pool import default_start_method


def noop(i: int) -> int:
    return i


noop_op = mazepa.taskable_operation(noop, operation_name="noop")


@mazepa.flow_schema
def noop_flow(n: int) -> Iterator[Any]:
    for i in range(n):
        yield noop_op.make_task(i)


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(label: str, n: int, secs: float, baseline: float | None = None) -> None:
    line = f"{label:<46} {n / secs:>11,.0f} tasks/s  {1e3 * secs / n:8.4f} ms/task"
    if baseline is not None:
        line += (
            f"  overhead {1e3 * (secs - baseline) / n:7.4f} ms/task  ratio {secs / baseline:7.1f}x"
        )
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, procs, repeat = args.n, args.procs, args.repeat
    method = default_start_method()
    print(f"{n} no-op tasks, best of {repeat}; start method {method}\n")

    loop = best_of(repeat, lambda: [noop(i) for i in range(n)])
    report("baseline: plain loop", n, loop)
    make = best_of(repeat, lambda: [noop_op.make_task(i) for i in range(n)])
    report("mazepa: make_task only (ids)", n, make, loop)
    serial = best_of(repeat, lambda: mazepa.execute(noop_flow(n), show_progress=False))
    report("mazepa serial: execute(flow)", n, serial, loop)
    with_progress = best_of(
        repeat,
        lambda: mazepa.execute(noop_flow(n), show_progress=True, progress_log_interval_sec=3600),
    )
    report("mazepa serial, progress on", n, with_progress, loop)
    print()

    ctx = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(procs, mp_context=ctx) as pool:
        list(pool.map(noop, range(procs * 4)))  # start the workers
        per_call = best_of(
            repeat, lambda: [f.result() for f in [pool.submit(noop, i) for i in range(n)]]
        )
        chunked = best_of(repeat, lambda: list(pool.map(noop, range(n), chunksize=64)))
    report(f"baseline: ProcessPoolExecutor({procs}), per call", n, per_call)
    report(f"baseline: ProcessPoolExecutor({procs}), chunks of 64", n, chunked)

    mazepa.execute(
        [noop_op.make_task(-1)], num_procs=procs, show_progress=False, worker_start_cost_s=0
    )  # fork server up
    startup = best_of(
        repeat,
        lambda: mazepa.execute(
            [noop_op.make_task(-2)], num_procs=procs, show_progress=False, worker_start_cost_s=0
        ),
    )
    parallel = best_of(
        repeat,
        lambda: mazepa.execute(
            noop_flow(n), num_procs=procs, show_progress=False, worker_start_cost_s=0
        ),
    )
    report(f"mazepa {procs} procs: execute(flow), incl. start-up", n, parallel, chunked)
    report(f"mazepa {procs} procs: minus pool start-up", n, parallel - startup, chunked)
    print(f"{'':<46} pool start-up + shutdown: {1e3 * startup:.0f} ms")
    print(
        f"\nserial per-task time {1e3 * serial / n:.4f} ms (goal < 0.5 ms): "
        f"{'met' if serial / n < 0.5e-3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
