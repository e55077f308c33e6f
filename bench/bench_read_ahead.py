"""A/B of reading the next task's input ahead (``$ZETTA_READ_AHEAD`` off / on), alternated in one
process (issue 24): flow (a) (and (c) with ``--flows a,c``) of ``bench_matrix.py`` on the S3
kinds (its moto server, ``--s3-latency-ms`` late) or local ones, with 1 and 2 processes.

Rounds alternate the order (off, on, then on, off, ...), so that both see the same drift of a
machine others use. The mode is handed to the workers by the run's process
(``mazepa.worker_threads``) and read again in this process for each run. Printed per kind,
process count and flow: the median wall seconds of each mode and the median and range of the
per-pair ratio off / on (above 1: reading ahead is faster), and CPU ms per 4096 x 4096 section
summed over every process (``bench_procs_cpu.py``: this process, the fork server's workers, the
S3 server), median of each mode. ``on`` is the default mode, ``remote`` (``--on all`` reads
local volumes ahead too).

Usage:
  .venv/bin/python bench/bench_read_ahead.py [--kinds s3-raw] [--procs 1,2] [--flows a]
      [--z 8] [--rounds 3] [--s3-latency-ms 20] [--on remote]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_procs_cpu as bp
import bench_subchunkable as bs

SIZE = 4096


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="s3-raw")
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--flows", default="a", help="a, c, comma-separated")
    parser.add_argument("--z", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3-latency-ms", type=float, default=20.0)
    parser.add_argument("--on", default="remote", choices=("remote", "all"))
    args = parser.parse_args(argv)
    from zetta_utils.layer.volumetric import read_ahead
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    bm.S3_LATENCY_MS[0] = args.s3_latency_ms
    kinds = [bm.kind_of(k.strip()) for k in args.kinds.split(",") if k.strip()]
    procs = [int(p) for p in args.procs.split(",")]
    by_letter = {name[1]: name for name in bm.FLOWS}
    flows = [by_letter[f.strip()] for f in args.flows.split(",") if f.strip()]
    root = tempfile.mkdtemp(prefix="bench_read_ahead_")
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs", flush=True)
    with contextlib.ExitStack() as stack:
        if any(k.s3 for k in kinds):
            stack.enter_context(bm.s3_server())
            print(f"S3 server: each request {args.s3_latency_ms:g} ms late", flush=True)
        if 2 in procs:
            bs.fork_server_start(2)
        for kind in kinds:
            storage = bm.Storage(kind, root)
            src = bm.make_source(storage, SIZE, args.z)
            for n in procs:
                for flow in flows:
                    walls: dict[str, list[float]] = {"off": [], args.on: []}
                    cpus: dict[str, list[float]] = {"off": [], args.on: []}
                    for r in range(args.rounds):
                        order = ("off", args.on) if r % 2 == 0 else (args.on, "off")
                        for mode in order:
                            os.environ[read_ahead.ENV] = mode
                            read_ahead.set_mode(None)
                            bp.wait_workers_reaped()
                            start = bp.run_cpu_seconds()
                            walls[mode].append(
                                bm.run_flow(storage, src, SIZE, args.z, bm.FLOWS[flow], n)
                            )
                            bp.wait_workers_reaped()
                            cpus[mode].append((bp.run_cpu_seconds() - start) / args.z * 1000)
                    ratios = sorted(
                        a / b for a, b in zip(walls["off"], walls[args.on], strict=True)
                    )
                    print(
                        f"{kind.name} {n}p {flow}: wall off {statistics.median(walls['off']):.2f}"
                        f" s, {args.on} {statistics.median(walls[args.on]):.2f} s; off/on "
                        f"median {statistics.median(ratios):.2f} ({ratios[0]:.2f}-"
                        f"{ratios[-1]:.2f}); CPU ms/section off "
                        f"{statistics.median(cpus['off']):.0f}, {args.on} "
                        f"{statistics.median(cpus[args.on]):.0f}",
                        flush=True,
                    )
                    print(f"  output {bm.check_output(kind, src, storage.url('dst'))}", flush=True)
    os.environ.pop(read_ahead.ENV, None)
    print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
