"""CPU seconds per 4096 x 4096 section, summed over every process of a run, with 1 and 2
processes: does a run in 2 processes spend more CPU on the same work than in 1 (issue 24)?

Wall time on a shared 2-core machine depends on what else runs; CPU time far less. With one
process ``bench_matrix.py`` prints the CPU time of this process; with several, the work is in
mazepa's worker processes, which are children of the fork server, not of this process. Here a
run's CPU time is that of every process involved:

- this process (``RUSAGE_SELF``) and the children it reaped (``RUSAGE_CHILDREN``);
- every live child of this process (the fork server, the S3 server): its own CPU time and that of
  the children *it* reaped (``/proc/<pid>/stat`` utime, stime, cutime, cstime). The fork server
  reaps the workers (mazepa's and the baseline's pool), so their CPU time, all threads, lands in
  its cutime/cstime once they exited: after each run this waits until the fork server has no
  child left.

Cases (from ``bench_matrix.py``, same volumes, same baseline): the plain library copy, flow (a)
and flow (c), per storage kind, with each process count; rounds alternate the process counts and
cases (1p baseline, 1p (a), 1p (c), 2p baseline, ...), so that all see the same drift of the
machine. Printed per case: median and range of CPU ms per section, median wall seconds, and the
2p / 1p CPU ratio of the medians. Fixed costs (starting workers, opening layers) are part of each
run: ``--z`` at two values tells them from the per-section cost (the slope).

``--threads``: CPU per thread, summed by process role (parent: this process; worker: a child of
the fork server) and thread name (``main``, TensorStore's ``ts_pool_worker``, mazepa's
``zetta-writer``, ...), sampled from ``/proc/*/task/*/stat`` every 50 ms (the sampler's own
thread is left out; what a worker spends in its last 50 ms is missed, so the sum is a little below
the total); and the bytes per section read and written through system calls by each role
(``/proc/<pid>/io`` rchar, wchar: files, pipes, sockets, page cache hits included) and those that
went to or came from the disk (read_bytes: page cache misses; write_bytes: pages dirtied, counted
when written to the page cache, even where the file is deleted before its writeback), and the
read and write system calls (syscr, syscw: ``calls`` per section).

Usage:
  .venv/bin/python bench/bench_procs_cpu.py [--kinds raw,jpeg] [--procs 1,2] [--flows a,c]
      [--z 32] [--rounds 3] [--no-baseline] [--threads] [--s3-latency-ms 0]

``--s3-latency-ms N``: the S3 server answers each request N ms late (``bench_matrix.py``'s
option, same server).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_subchunkable as bs

SIZE = 4096
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> tuple[str, int, list[int]]:
    """(name, parent pid, [utime, stime, cutime, cstime] in ticks) of /proc/.../stat."""
    with open(path) as f:
        text = f.read()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rpartition(")")[2].split()
    return name, int(fields[1]), [int(x) for x in fields[11:15]]


def children_of(ppid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _stat(f"/proc/{entry}/stat")[1] == ppid:
                    pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def run_cpu_seconds() -> float:
    """CPU seconds so far of this process, its reaped children, and its live children with the
    children they reaped (the fork server's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    for pid in children_of(os.getpid()):
        try:
            total += sum(_stat(f"/proc/{pid}/stat")[2]) / _TICK
        except (OSError, ValueError, IndexError):
            continue
    return total


def fork_server_pid() -> int | None:
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", None)


def wait_workers_reaped(timeout: float = 30.0) -> None:
    """Until the fork server has no child (workers exit in the background after a run)."""
    server = fork_server_pid()
    deadline = time.monotonic() + timeout
    while server is not None and children_of(server) and time.monotonic() < deadline:
        time.sleep(0.02)


class ThreadSampler:
    """CPU seconds per (role, thread name, user/system) of this process's and the workers'
    threads while the block runs."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, int, str], tuple[str, str, float]] = {}
        self.base: dict[tuple[int, int, str], tuple[str, str, float]] = {}
        self.totals: dict[tuple[str, str], float] = collections.defaultdict(float)
        self._stop = threading.Event()
        self._tid = -1
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        processes = [(os.getpid(), "parent")]
        server = fork_server_pid()
        if server is not None:
            processes += [(pid, "worker") for pid in children_of(server)]
        for pid, role in processes:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
                with open(f"/proc/{pid}/io") as f:
                    io = dict(line.split(": ") for line in f.read().splitlines())
            except (OSError, ValueError):
                continue
            for field in ("rchar", "wchar", "read_bytes", "write_bytes"):
                # (bytes, counted as "seconds" / 1000 so that the same table holds them)
                self.last[(pid, -1, field)] = (role, f"MB {field}", int(io[field]) / 1e9)
            for field in ("syscr", "syscw"):  # (calls, as "seconds" / 1000 too)
                self.last[(pid, -1, field)] = (role, f"calls {field}", int(io[field]) / 1e3)
            for tid in tids:
                if tid == self._tid:
                    continue
                try:
                    name, _, ticks = _stat(f"/proc/{pid}/task/{tid}/stat")
                except (OSError, ValueError, IndexError):
                    continue
                name = "main" if tid == pid else name
                self.last[(pid, tid, "user")] = (role, name + " user", ticks[0] / _TICK)
                self.last[(pid, tid, "sys")] = (role, name + " sys", ticks[1] / _TICK)

    def _run(self) -> None:
        self._tid = threading.get_native_id()
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> ThreadSampler:
        self._sample()
        self.base = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for key, (role, name, secs) in self.last.items():
            start = self.base.get(key, (role, name, 0.0))[2]
            self.totals[(role, name)] += secs - start


def _cases(flows: list[str], baseline: bool) -> list[tuple[str, dict[str, Any] | None]]:
    chosen: list[tuple[str, dict[str, Any] | None]] = [("baseline", None)] if baseline else []
    for name, case in bm.FLOWS.items():
        if name[1] in flows:
            chosen.append((name, case))
    return chosen


def measure_kind(kind: bm.Kind, root: str, args: argparse.Namespace) -> None:
    storage = bm.Storage(kind, root)
    z = args.z
    src = bm.make_source(storage, SIZE, z)
    cases = _cases(args.flows, not args.no_baseline)
    cpu: dict[tuple[int, str], list[float]] = collections.defaultdict(list)
    wall: dict[tuple[int, str], list[float]] = collections.defaultdict(list)
    threads: dict[tuple[int, str], dict[tuple[str, str], float]] = {}
    for _ in range(args.rounds):
        for procs in args.procs:
            for name, case in cases:
                wait_workers_reaped()
                sampler: Any = ThreadSampler() if args.threads else contextlib.nullcontext()
                start = run_cpu_seconds()
                with sampler:
                    if case is None:
                        elapsed = bm.baseline_copy(storage, src, SIZE, z, procs)
                    else:
                        elapsed = bm.run_flow(storage, src, SIZE, z, case, procs)
                    wait_workers_reaped()
                cpu[(procs, name)].append((run_cpu_seconds() - start) / z * 1000)
                wall[(procs, name)].append(elapsed)
                if args.threads:
                    split = threads.setdefault((procs, name), collections.defaultdict(float))
                    for key, secs in sampler.totals.items():
                        split[key] += secs / z * 1000 / args.rounds
    print(f"\n{kind.name}: {SIZE} x {SIZE} x {z}, CPU ms per section (all processes)", flush=True)
    for name, _ in cases:
        for procs in args.procs:
            values = cpu[(procs, name)]
            line = (
                f"  {procs}p {name:18s} {statistics.median(values):7.1f} "
                f"[{min(values):.1f}-{max(values):.1f}]  "
                f"wall {statistics.median(wall[(procs, name)]):.2f} s"
            )
            if procs != args.procs[0]:
                first = statistics.median(cpu[(args.procs[0], name)])
                line += f"  CPU {statistics.median(values) / first:.2f}x of {args.procs[0]}p"
            print(line, flush=True)
    for (procs, name), split in sorted(threads.items()):
        ranked = sorted(split.items(), key=lambda item: -item[1])
        parts = [f"{role}/{thread} {ms:.1f}" for (role, thread), ms in ranked if ms >= 0.2]
        print(f"  threads {procs}p {name}: " + ", ".join(parts), flush=True)


@contextlib.contextmanager
def _servers(kinds: list[bm.Kind]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if any(kind.s3 for kind in kinds):
            print(f"moto S3 server at {stack.enter_context(bm.s3_server())}", flush=True)
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="raw,jpeg", help="storage kinds, comma-separated")
    parser.add_argument("--procs", default="1,2", help="process counts, comma-separated")
    parser.add_argument("--flows", default="a,c", help="flows: a, c or a,c")
    parser.add_argument("--z", type=int, default=32, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="flows only")
    parser.add_argument("--threads", action="store_true", help="CPU per thread too")
    parser.add_argument("--dir", default=None, help="scratch directory")
    parser.add_argument(
        "--s3-latency-ms", type=float, default=0.0, help="as bench_matrix.py's (s3 kinds)"
    )
    args = parser.parse_args(argv)
    if args.s3_latency_ms < 0:
        parser.error(f"--s3-latency-ms must be >= 0, got {args.s3_latency_ms}")
    bm.S3_LATENCY_MS[0] = args.s3_latency_ms
    kinds = [bm.kind_of(k.strip()) for k in args.kinds.split(",") if k.strip()]
    try:
        args.procs = [int(p) for p in args.procs.split(",")]
    except ValueError:
        parser.error(f"--procs must be comma-separated integers, got {args.procs!r}")
    args.flows = [f.strip() for f in args.flows.split(",") if f.strip()]
    if not set(args.flows) <= {"a", "c"}:
        parser.error(f"--flows must name a and/or c, got {','.join(args.flows)!r}")
    if args.z < 1 or args.rounds < 1:
        parser.error("--z and --rounds must be positive")
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_procs_cpu_", dir=args.dir)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    try:
        with _servers(kinds):
            if max(args.procs) > 1:
                print(f"fork server start (once): {bs.fork_server_start(2):.2f} s", flush=True)
            for kind in kinds:
                measure_kind(kind, root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
