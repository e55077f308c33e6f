"""A/B in one process: local workers with their share of TensorStore's decode/encode threads
(``mazepa.worker_threads``: ``cores // num_procs`` each, the default) against every worker with
all the cores (``$ZETTA_TS_DATA_COPY_CONCURRENCY`` set to the core count: the behaviour before),
alternated round by round (new, old, then old, new, ...), flows (a) and (c) of
``bench_matrix.py`` on one storage kind.

Printed per flow and setting: median and range of the CPU time per 4096 x 4096 section summed
over every process (``bench_procs_cpu.py``), of the wall time, and the per-round new/old ratios.
Wall times mean something only when nothing else runs on the machine.

Usage: .venv/bin/python bench/bench_worker_threads.py [--kind jpeg] [--procs 2] [--z 24]
    [--rounds 6]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_procs_cpu as bp
import bench_subchunkable as bs

ENV = "ZETTA_TS_DATA_COPY_CONCURRENCY"
SIZE = 4096


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="jpeg", help=f"one of {', '.join(bm.KINDS)}")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--z", type=int, default=24, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    kind = bm.kind_of(args.kind)
    os.environ.pop(ENV, None)
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_worker_threads_")
    results: dict[tuple[str, str], list[tuple[float, float]]] = collections.defaultdict(list)
    try:
        with contextlib.ExitStack() as stack:
            if kind.s3:
                stack.enter_context(bm.s3_server())
            storage = bm.Storage(kind, root)
            src = bm.make_source(storage, SIZE, args.z)
            bs.fork_server_start(args.procs)
            for r in range(args.rounds):
                for setting in ("new", "old") if r % 2 == 0 else ("old", "new"):
                    if setting == "old":
                        os.environ[ENV] = str(os.cpu_count() or 1)
                    else:
                        os.environ.pop(ENV, None)
                    for name, case in bm.FLOWS.items():
                        bp.wait_workers_reaped()
                        start = bp.run_cpu_seconds()
                        wall = bm.run_flow(storage, src, SIZE, args.z, case, args.procs)
                        bp.wait_workers_reaped()
                        per_section = (bp.run_cpu_seconds() - start) / args.z * 1000
                        results[(name, setting)].append((per_section, wall))
    finally:
        os.environ.pop(ENV, None)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{kind.name}, {args.procs} processes, {args.z} sections, {args.rounds} rounds")
    for name in bm.FLOWS:
        for setting in ("new", "old"):
            cpus = [c for c, _ in results[(name, setting)]]
            walls = [w for _, w in results[(name, setting)]]
            print(
                f"  {name:18s} {setting}: CPU ms/section {statistics.median(cpus):6.1f} "
                f"[{min(cpus):.1f}-{max(cpus):.1f}]  wall {statistics.median(walls):.2f} s "
                f"[{min(walls):.2f}-{max(walls):.2f}]"
            )
        pairs = list(zip(results[(name, "new")], results[(name, "old")], strict=True))
        cpu_ratios = sorted(n[0] / o[0] for n, o in pairs)
        wall_ratios = sorted(n[1] / o[1] for n, o in pairs)
        print(
            f"    per round new/old: CPU {' '.join(f'{x:.2f}' for x in cpu_ratios)}; "
            f"wall {' '.join(f'{x:.2f}' for x in wall_ratios)}"
        )


if __name__ == "__main__":
    main()
