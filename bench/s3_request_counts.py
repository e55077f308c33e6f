"""Requests per kind that a flow of ``bench_matrix.py`` makes to its S3 server (issue 24).

Starts ``moto_server`` on 127.0.0.1 with its request log in a file, writes the matrix's source
volume (``--size`` x ``--size`` x ``--z``), runs one flow once (serially, or in ``--procs`` worker
processes), and counts the lines of the server's log that the flow caused (building its layers
included), per HTTP method, split into the intermediaries (under the run's ``tmp`` prefix) and the
rest (the volumes' infos and chunks). The counting is here, around the server, not in the package.

Usage:
  .venv/bin/python bench/s3_request_counts.py [--kind s3-raw|s3-gzip] [--flow a|c]
      [--size 4096] [--z 4] [--procs 1]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_subchunkable as bs

REQUEST = re.compile(r'"([A-Z]+) (/[^ ]*) HTTP/[0-9.]+" (\d+)')
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the server colours the lines of some statuses


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (all threads) and of the S3 server."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(f"/proc/{bm._SERVER[0].pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return usage.ru_utime + usage.ru_stime, server


def requests_since(log_path: str, offset: int) -> list[tuple[str, str, str]]:
    """(method, path, status) of each request logged after byte ``offset`` of the log."""
    with open(log_path, "rb") as f:
        f.seek(offset)
        text = ANSI.sub("", f.read().decode(errors="replace"))
    return [m.groups() for m in REQUEST.finditer(text)]  # type: ignore[misc]


def count(requests: list[tuple[str, str, str]], tmp_prefix: str) -> dict[tuple[str, str], int]:
    """Requests per (part, method): part ``intermediaries`` (under ``tmp_prefix``) or ``rest``."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for method, path, _ in requests:
        # the flow's only bulk deletes (POST /bucket/?delete) are of intermediaries
        ours = path.split("?")[0].startswith(tmp_prefix) or path.endswith("?delete")
        part = "intermediaries" if ours else "rest"
        counts[part, method] += 1
    return dict(counts)


def run(kind_name: str, flow: str, size: int, z: int, procs: int = 1) -> dict[tuple[str, str], int]:
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    kind = bm.kind_of(kind_name)
    case = dict(bm.FLOWS["(a) one level" if flow == "a" else "(c) crop + blend"])
    root = tempfile.mkdtemp(prefix="s3_counts_")
    log_path = os.path.join(root, "moto.log")
    try:
        with bm.s3_server(log_path):
            storage = bm.Storage(kind, root)
            src_url = bm.make_source(storage, size, z)
            if procs > 1:  # after the server: workers get the environment that reaches it
                bs.fork_server_start(procs)
            dst_url = storage.fresh("dst", size, z)
            if not case.get("skip_intermediaries"):
                case["level_intermediaries_dirs"] = [storage.url("tmp")] * len(
                    case["processing_chunk_sizes"]
                )
            offset = os.path.getsize(log_path)
            cpu = cpu_seconds()
            built = build_subchunkable_apply_flow(
                dst=bm.build_layer(kind, dst_url),
                dst_resolution=bm.RES,
                start_coord=(0, 0, 0),
                end_coord=(size, size, z),
                coord_resolution=bm.RES,
                fn=bs.identity,
                op_kwargs={"src": bm.build_layer(kind, src_url)},
                verbose=False,
                **case,
            )
            # worker_start_cost_s=0: with --procs 2, the workers' requests, never a serial run's
            mazepa.execute(built, num_procs=procs, show_progress=False, worker_start_cost_s=0)
            cpu_after = cpu_seconds()
            print(
                f"CPU time: this process {cpu_after[0] - cpu[0]:.2f} s"
                f"{' (not its workers)' if procs > 1 else ''}, the S3 server "
                f"{cpu_after[1] - cpu[1]:.2f} s"
            )
            time.sleep(0.5)  # the server logs a request after answering it
            requests = requests_since(log_path, offset)
            print(f"{bm.check_output(kind, src_url, dst_url)}")
        return count(requests, f"/bench/{kind.name}/tmp/")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="s3-raw", choices=["s3-raw", "s3-gzip"])
    parser.add_argument("--flow", default="c", choices=["a", "c"])
    parser.add_argument("--size", type=int, default=4096, help="x and y (a multiple of 2048)")
    parser.add_argument("--z", type=int, default=4, help="z sections")
    parser.add_argument("--procs", type=int, default=1, help="worker processes (1: serially)")
    args = parser.parse_args(argv)
    counts = run(args.kind, args.flow, args.size, args.z, args.procs)
    chunks = (args.size // bm.CHUNK) ** 2 * args.z
    print(
        f"{args.kind} flow ({args.flow}), {chunks} chunks of {bm.CHUNK} x {bm.CHUNK} x 1, "
        f"{args.procs} process(es):"
    )
    methods = sorted({m for _, m in counts})
    for part in ("intermediaries", "rest"):
        cells = ", ".join(f"{m} {counts.get((part, m), 0)}" for m in methods)
        print(f"  {part:15s} {cells}; total {sum(v for (p, _), v in counts.items() if p == part)}")
    total = ", ".join(f"{m} {sum(v for (_, mm), v in counts.items() if mm == m)}" for m in methods)
    print(f"  {'all':15s} {total}; total {sum(counts.values())}")


if __name__ == "__main__":
    main()
