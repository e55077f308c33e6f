"""Where the cores sit idle in a run (issue 24): wall x cores against the CPU of every process.

For each case of ``bench_matrix.py`` (the plain library copy, flow (a), flow (c)) and process
count, per run:

- ``wall``: seconds of the run (as ``bench_matrix`` times it);
- ``cpu``: CPU seconds of this process's threads and of mazepa's workers' (children of the fork
  server), all threads, from ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds) sampled every
  ``--interval`` seconds (what a thread spends after its last sample is missed), over the timed
  part of the run (interpolated between samples);
- ``idle``: ``wall x cores - cpu``, the core-seconds our run left unused (or others used);
- ``sys idle``: the machine's idle (and iowait) core-seconds over the run from ``/proc/stat``:
  cores nobody used; ``idle - sys idle`` is what other programs took;
- ``runq``: seconds our threads waited runnable for a core (schedstat's second field): > 0 where
  there are more runnable threads than cores;
- a timeline of the run in ``--bins`` equal parts: the machine's busy cores in each (from
  ``/proc/stat``, 0-9 for 0-100 % of the cores) and ours (``cpu`` in that part, same scale), so
  that idle at the head (workers starting), in the middle or at the tail shows;
- ``--states S``: every S seconds, how many threads of each worker process are running or
  runnable (``/proc/<pid>/task/*/stat`` state R); printed per worker: the share of samples in
  the timed part of the run with 0, 1, 2, 3 or more (0: the worker left its core idle, waiting
  for the driver, storage or a lock; more than its share of the cores: its threads wait for each
  other);
- ``--trace``: the workers' ``$ZETTA_WORKER_TRACE`` (when each started and ran its first and
  last task; its main thread's time in tasks and waits);
- ``--threads``: by role (parent, worker) and thread name, ``CPU+WAITq/SLICES``: CPU seconds,
  seconds waiting runnable, and the times its threads were put on a core per section
  (schedstat's third field: every wake-up and preemption counts).

Usage:
  .venv/bin/python bench/bench_idle.py [--kinds jpeg] [--procs 2] [--flows base,a,c] [--z 58]
      [--rounds 2] [--threads] [--trace] [--states 0.005] [--ab NAME=VALUE]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_procs_cpu as bp
import bench_subchunkable as bs

SIZE = 4096
_TICK = os.sysconf("SC_CLK_TCK")


def _system_idle() -> float:
    """Idle + iowait seconds of all cores since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return (int(fields[4]) + int(fields[5])) / _TICK


class Sampler:
    """Per thread: (role, name) and the latest (cpu ns, run-queue ns); the timeline of our CPU
    and of the machine's idle time."""

    def __init__(self, interval: float, states_every: float = 0.0) -> None:
        self.interval = interval
        self.states_every = states_every
        self.states: list[tuple[float, int, int]] = []  # (t, worker pid, threads runnable)
        self._workers: list[int] = []
        self._workers_at = 0.0
        self.threads: dict[tuple[int, int], list[Any]] = {}
        self.timeline: list[tuple[float, float, float]] = []  # (t, our cpu s, system idle s)
        self._stop = threading.Event()
        self._tid = -1
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        processes = [(os.getpid(), "parent")]
        server = bp.fork_server_pid()
        if server is not None:
            processes += [(pid, "worker") for pid in bp.children_of(server)]
        for pid, role in processes:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            for tid in tids:
                if tid == self._tid:
                    continue
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                        cpu_ns, wait_ns, slices = (int(x) for x in f.read().split()[:3])
                    with open(f"/proc/{pid}/task/{tid}/comm") as f:
                        name = f.read().strip()
                except (OSError, ValueError):
                    continue
                name = "main" if tid == pid else name
                entry = self.threads.get((pid, tid))
                if entry is None:
                    # a thread first seen: its CPU before the run counts as its start (0 for
                    # threads born during the run, which the first sample catches)
                    self.threads[(pid, tid)] = [
                        role,
                        name,
                        cpu_ns,
                        wait_ns,
                        cpu_ns,
                        wait_ns,
                        slices,
                        slices,
                    ]
                else:
                    entry[1], entry[4], entry[5], entry[7] = name, cpu_ns, wait_ns, slices
        ours = sum(e[4] - e[2] for e in self.threads.values()) / 1e9
        self.timeline.append((time.perf_counter(), ours, _system_idle()))

    def _run(self) -> None:
        self._tid = threading.get_native_id()
        next_sample = time.perf_counter() + self.interval
        while not self._stop.is_set():
            if self.states_every:
                self._sample_states()
                time.sleep(self.states_every)
            else:
                self._stop.wait(self.interval)
            if time.perf_counter() >= next_sample:
                self._sample()
                next_sample = time.perf_counter() + self.interval

    def _sample_states(self) -> None:
        """Per worker: whether any of its threads is running or runnable (state R)."""
        server = bp.fork_server_pid()
        if server is None:
            return
        now = time.perf_counter()
        for pid in self.workers(server):
            runnable = 0
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        if f.read().rpartition(")")[2].split()[0] == "R":
                            runnable += 1
            except OSError:
                continue
            self.states.append((now, pid, runnable))

    def workers(self, server: int) -> list[int]:
        """The fork server's children (looked up again every 0.2 s)."""
        now = time.perf_counter()
        if now - self._workers_at > 0.2:
            self._workers = bp.children_of(server)
            self._workers_at = now
        return self._workers

    def start(self) -> None:
        self._sample()
        # threads that existed before the run count from here (first sample = their start)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _new_thread_start(sampler: Sampler, known: set[tuple[int, int]]) -> None:
    """Threads born after the first sample: their CPU counts from 0."""
    for key, entry in sampler.threads.items():
        if key not in known:
            entry[2] = entry[3] = entry[6] = 0


def _read_traces(folder: str, t0: float, t1: float) -> str:
    """Per worker of the run just ended (``$ZETTA_WORKER_TRACE`` files, removed once read): when
    its first task started and its last ended (from the run's start and to its end), and the
    seconds its main thread spent running tasks, waiting for work with nothing behind, waiting
    for work with a task's writes behind, and waiting for those writes before reporting."""
    bp.wait_workers_reaped()
    lines = []
    for path in sorted(glob.glob(os.path.join(folder, "trace-*.json"))):
        with open(path) as f:
            events = json.load(f)
        os.remove(path)
        tasks = [e for e in events if e[0] == "task"]
        if not tasks:
            continue
        sums: dict[str, float] = collections.defaultdict(float)
        count: dict[str, int] = collections.defaultdict(int)
        for what, a, b in events:
            if tasks[0][1] <= a and b <= tasks[-1][2]:
                sums[what] += b - a
                count[what] += 1
        lines.append(
            f"worker: start {events[0][1] - t0:+.2f} s, first task {tasks[0][1] - t0:.2f} s, "
            f"last ends {t1 - tasks[-1][2]:.2f} s before the end; "
            + ", ".join(f"{what} {sums[what]:.2f} s ({count[what]})" for what in sorted(sums))
        )
    return "\n      ".join(lines)


def measure(
    kind: bm.Kind,
    storage: bm.Storage,
    src: str,
    z: int,
    case: dict[str, Any] | None,
    procs: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    bp.wait_workers_reaped()
    sampler = Sampler(args.interval, args.states)
    sampler.start()
    known = set(sampler.threads)
    if case is None:
        wall = bm.baseline_copy(storage, src, SIZE, z, procs)
    else:
        wall = bm.run_flow(storage, src, SIZE, z, case, procs)
    # the run's own clock starts after its untimed preparation (a fresh dst, os.sync()): the
    # figures here are those of [end - wall, end]
    t1, mono1 = time.perf_counter(), time.monotonic()
    t0, mono0 = t1 - wall, mono1 - wall
    sampler.stop()
    _new_thread_start(sampler, known)
    cores = os.cpu_count() or 1
    points = sampler.timeline

    def at(t: float, which: int) -> float:
        for i in range(1, len(points)):
            if points[i][0] >= t:
                a, b = points[i - 1], points[i]
                span = b[0] - a[0]
                frac = 0.0 if span <= 0 else (t - a[0]) / span
                return a[which] + frac * (b[which] - a[which])
        return points[-1][which]

    cpu = at(t1, 1) - at(t0, 1)
    sys_idle = at(t1, 2) - at(t0, 2)
    # (run-queue waits and threads: over the whole sampled time, preparation included)
    runq = sum(e[5] - e[3] for e in sampler.threads.values()) / 1e9
    by_thread: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for role, name, c0, w0, c1, w1, s0, s1 in sampler.threads.values():
        by_thread[(role, name)][0] += (c1 - c0) / 1e9
        by_thread[(role, name)][1] += (w1 - w0) / 1e9
        by_thread[(role, name)][2] += s1 - s0
    # timeline: bins of equal time; our cpu and the machine's busy cores per bin
    bins = args.bins
    line_ours, line_sys = [], []
    edges = [t0 + wall * i / bins for i in range(bins + 1)]
    for i in range(bins):
        dt = edges[i + 1] - edges[i]
        ours = (at(edges[i + 1], 1) - at(edges[i], 1)) / (dt * cores)
        idle = (at(edges[i + 1], 2) - at(edges[i], 2)) / (dt * cores)
        line_ours.append(str(min(9, max(0, round(ours * 9)))))
        line_sys.append(str(min(9, max(0, round((1 - idle) * 9)))))
    states = ""
    if args.states:
        by_pid: dict[int, list[int]] = collections.defaultdict(list)
        for t, pid, runnable in sampler.states:
            if t0 <= t <= t1:
                by_pid[pid].append(runnable)
        states = "; ".join(
            "/".join(f"{sum(min(r, 3) == n for r in v) / len(v):.0%}" for n in range(4))
            + f" of {len(v)}"
            for v in by_pid.values()
        )
    traces = _read_traces(args.trace, mono0, mono1) if args.trace else ""
    return {
        "traces": traces,
        "states": states,
        "wall": wall,
        "cpu": cpu,
        "idle": wall * cores - cpu,
        "sys_idle": sys_idle,
        "runq": runq,
        "threads": by_thread,
        "ours": "".join(line_ours),
        "sys": "".join(line_sys),
    }


@contextlib.contextmanager
def _environment(setting: str | None) -> Iterator[None]:
    """``NAME=VALUE`` set in this process's environment for the block (None: nothing)."""
    if setting is None:
        yield
        return
    name, _, value = setting.partition("=")
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="jpeg")
    parser.add_argument("--procs", default="2")
    parser.add_argument("--flows", default="base,a,c", help="base, a, c (comma-separated)")
    parser.add_argument("--z", type=int, default=58, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period (s)")
    parser.add_argument("--bins", type=int, default=40, help="timeline parts")
    parser.add_argument("--threads", action="store_true", help="CPU and waits per thread name")
    parser.add_argument(
        "--ab",
        default=None,
        help="NAME=VALUE: every run twice, without then with this environment setting (A/B)",
    )
    parser.add_argument(
        "--states",
        type=float,
        default=0.0,
        help="every this many seconds, whether each worker has a runnable thread (0: not)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="the workers' $ZETTA_WORKER_TRACE, summed per run"
    )
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    kinds = [bm.kind_of(k.strip()) for k in args.kinds.split(",") if k.strip()]
    procs_list = [int(p) for p in args.procs.split(",")]
    flows = [f.strip() for f in args.flows.split(",") if f.strip()]
    if not set(flows) <= {"base", "a", "c"}:
        parser.error(f"--flows: expected some of base, a, c; got {args.flows!r}")
    cases: list[tuple[str, dict[str, Any] | None]] = []
    for flow in flows:
        if flow == "base":
            cases.append(("baseline", None))
        else:
            cases += [(name, case) for name, case in bm.FLOWS.items() if name[1] == flow]
    settings: list[str | None] = [None]
    if args.ab:
        if "=" not in args.ab:
            parser.error(f"--ab: expected NAME=VALUE, got {args.ab!r}")
        settings.append(args.ab)
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_idle_", dir=args.dir)
    if args.trace:  # (before the fork server starts: the workers get its environment)
        args.trace = os.path.join(root, "traces")
        os.makedirs(args.trace)
        os.environ["ZETTA_WORKER_TRACE"] = args.trace
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    try:
        if max(procs_list) > 1:
            print(f"fork server start (once): {bs.fork_server_start(2):.2f} s", flush=True)
        for kind in kinds:
            storage = bm.Storage(kind, root)
            src = bm.make_source(storage, SIZE, args.z)
            print(f"\n{kind.name}: {SIZE} x {SIZE} x {args.z}", flush=True)
            for _ in range(args.rounds):
                for procs in procs_list:
                    for (name, case), setting in itertools.product(cases, settings):
                        with _environment(setting):
                            r = measure(kind, storage, src, args.z, case, procs, args)
                        label = f"{name} {setting}" if setting else name
                        print(
                            f"  {procs}p {label:18s} wall {r['wall']:5.2f} s  cpu {r['cpu']:5.2f} s"
                            f" ({r['cpu'] / args.z * 1000:5.1f} ms/section)  idle "
                            f"{r['idle']:5.2f} s  sys idle {r['sys_idle']:5.2f} s  runq "
                            f"{r['runq']:5.2f} s",
                            flush=True,
                        )
                        print(f"      ours {r['ours']}\n      all  {r['sys']}", flush=True)
                        if r["states"]:
                            print("      runnable threads 0/1/2/3+: " + r["states"], flush=True)
                        if r["traces"]:
                            print("      " + r["traces"], flush=True)
                        if args.threads:
                            ranked = sorted(r["threads"].items(), key=lambda kv: -kv[1][0])
                            parts = [
                                f"{role}/{thread} {c:.2f}+{w:.2f}q/{n / args.z:.0f}"
                                for (role, thread), (c, w, n) in ranked
                                if c + w >= 0.01
                            ]
                            print("      threads: " + ", ".join(parts), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
