"""Writing a *sharded* destination (issue 24): flow (a) from a local raw source to a local sharded
raw dst, with tasks of one chunk and with tasks of one shard, against TensorStore copying chunk
by chunk and shard by shard into the same layout.

The dst has ``bench_matrix.py``'s sharding: a shard file holds 2 x 2 chunks of 1024 x 1024 x 1 of
one section. A write of less than a shard is a read-modify-write of the shard file (TensorStore
reads it, merges the chunk, rewrites it whole, conditional on it not having changed), so writing
a shard's ``n`` chunks one at a time writes ``(n + 1) / 2`` times its bytes; tasks on the shard
grid (``TSBackend.get_shard_size``, here 2048 x 2048 x 1) write each shard once. With several
processes, chunk tasks of one shard also land on different workers, whose conditional writes
retry on each other's.

Printed per case and process count: median CPU ms per 4096 x 4096 section over all processes
(``bench_procs_cpu.run_cpu_seconds``), MB written per section through system calls (``wchar`` of
this process, its live children and the fork server's workers), median wall time, and whether the
output equals the source. Cases alternate within each round.

Usage: .venv/bin/python bench/bench_sharded_dst.py [--z 32] [--rounds 2] [--procs 1,2]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_procs_cpu as bp
import bench_subchunkable as bs

SIZE = 4096
SHARD = 2048
CASES = (
    "TensorStore by chunk",
    "TensorStore by shard",
    "flow (a) chunk tasks",
    "flow (a) shard tasks",
)


def written_bytes() -> int:
    """``wchar`` of this process, its live children and the fork server's children."""
    pids = [os.getpid(), *bp.children_of(os.getpid())]
    server = bp.fork_server_pid()
    if server is not None:
        pids += bp.children_of(server)
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                fields = dict(line.split(": ") for line in f.read().splitlines())
        except OSError:
            continue
        total += int(fields["wchar"])
    return total


def ts_copy_part(src: str, dst: str, z: int, step: int, part: int, parts: int) -> None:
    s, d = bm.ts_open(src), bm.ts_open(dst)
    k = 0
    for zi in range(z):
        for y in range(0, SIZE, step):
            for x in range(0, SIZE, step):
                if k % parts == part:
                    data = s[x : x + step, y : y + step, zi : zi + 1].read(order="F").result()
                    d[x : x + step, y : y + step, zi : zi + 1].write(data).result()
                k += 1


def run_case(case: str, src: str, dst: str, z: int, procs: int) -> None:
    if case.startswith("TensorStore"):
        step = bm.CHUNK if case.endswith("chunk") else SHARD
        args = [(src, dst, z, step, i, procs) for i in range(procs)]
        if procs == 1:
            ts_copy_part(*args[0])
            return
        with multiprocessing.get_context("forkserver").Pool(procs) as pool:
            pool.starmap(ts_copy_part, args)
        return
    from zetta_utils import mazepa
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    kwargs = dict(bm.FLOWS["(a) one level"])
    if case.endswith("shard tasks"):
        kwargs["processing_chunk_sizes"] = [[SHARD, SHARD, 1]]
    flow = build_subchunkable_apply_flow(
        dst=build_ts_layer(dst),
        dst_resolution=bm.RES,
        start_coord=(0, 0, 0),
        end_coord=(SIZE, SIZE, z),
        coord_resolution=bm.RES,
        fn=bs.identity,
        op_kwargs={"src": build_ts_layer(src)},
        verbose=False,
        **kwargs,
    )
    mazepa.execute(flow, num_procs=procs, show_progress=False, worker_start_cost_s=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--z", type=int, default=32, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--procs", default="1,2", help="process counts, comma-separated")
    parser.add_argument("--dir", default=None, help="scratch directory")
    args = parser.parse_args(argv)
    try:
        procs_list = [int(p) for p in args.procs.split(",")]
    except ValueError:
        parser.error(f"--procs must be comma-separated integers, got {args.procs!r}")
    if args.z < 1 or args.rounds < 1:
        parser.error("--z and --rounds must be positive")
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_sharded_dst_", dir=args.dir)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    try:
        storage = bm.Storage(bm.kind_of("raw"), root)
        src = bm.make_source(storage, SIZE, args.z)
        if max(procs_list) > 1:
            print(f"fork server start (once): {bs.fork_server_start(2):.2f} s", flush=True)
        results: dict[tuple[int, str], list[tuple[float, float, float, bool]]] = (
            collections.defaultdict(list)
        )
        for _ in range(args.rounds):
            for procs in procs_list:
                for case in CASES:
                    dst = storage.fresh("dst", SIZE, args.z, sharded=True)
                    storage.settle()
                    bp.wait_workers_reaped()
                    cpu, wrote, start = bp.run_cpu_seconds(), written_bytes(), time.perf_counter()
                    run_case(case, src, dst, args.z, procs)
                    wall = time.perf_counter() - start
                    bp.wait_workers_reaped()
                    cpu = (bp.run_cpu_seconds() - cpu) / args.z * 1000
                    wrote = (written_bytes() - wrote) / args.z / 1e6
                    same = np.array_equal(
                        bm.ts_open(src).read().result(), bm.ts_open(dst).read().result()
                    )
                    results[(procs, case)].append((cpu, wrote, wall, same))
        print(f"\n{SIZE} x {SIZE} x {args.z} uint8, shards of {SHARD} x {SHARD} x 1")
        for (procs, case), runs in sorted(results.items()):
            print(
                f"  {procs}p {case:22s} CPU {statistics.median(r[0] for r in runs):6.1f} ms/section"
                f"  written {statistics.median(r[1] for r in runs):5.1f} MB/section"
                f"  wall {statistics.median(r[2] for r in runs):5.2f} s"
                f"  output {'== source' if all(r[3] for r in runs) else 'DIFFERS from source'}",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
