"""A/B of flow (a) between two commits of this repository, on a shared machine (issue 24).

Each commit is extracted with ``git archive`` into a scratch folder and run in a subprocess whose
``PYTHONPATH`` points at it (its fork server and workers inherit it). The versions alternate,
round by round (before, after, then after, before, ...), so that both see the same drift of a
machine other people use. In each subprocess: one warm-up run of each (imports, caches), then
``--runs`` pairs of flow (a) of ``bench_matrix.py`` and its baseline (the plain library copy
with the same process count), alternated too. CPU is summed over every process of a run
(``bench_procs_cpu.py``), per 4096 x 4096 section.

Printed per version: the median flow wall and CPU per section, the median baseline wall and CPU,
and the median and range of the per-pair ratio baseline wall / flow wall (above 1: the flow is
faster than its baseline). Wall figures mean little while others benchmark: look at the ratios'
spread, and run more rounds.

Usage:
  .venv/bin/python bench/bench_code_versions.py --before REV --after REV [--kind jpeg]
      [--procs 2] [--z 24] [--rounds 6] [--runs 2]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(kind_name: str, procs: int, z: int, runs: int, root: str) -> None:
    """Runs in the subprocess: the version's own bench modules and zetta_utils; prints one JSON
    line per run."""
    code = os.environ["PYTHONPATH"]
    sys.path.insert(0, os.path.join(code, "bench"))
    import bench_matrix as bm
    import bench_procs_cpu as bp
    import bench_subchunkable as bs

    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    kind = bm.kind_of(kind_name)
    with contextlib.ExitStack() as stack:
        if kind.s3:
            stack.enter_context(bm.s3_server())
        storage = bm.Storage(kind, root)
        made = os.path.join(root, f"src-{kind.name}-{z}")
        if kind.s3 or not os.path.exists(made):  # (a local source is kept for the next ones)
            src = bm.make_source(storage, 4096, z)
            open(made, "w").close()
        else:
            src = storage.url("src")
        bs.fork_server_start(procs)
        case = bm.FLOWS["(a) one level"]
        # warm-up (the same volume: a process keeps the stores it opened, with their size)
        bm.run_flow(storage, src, 4096, z, case, procs)
        bm.baseline_copy(storage, src, 4096, z, procs)
        for r in range(runs):
            for name in ("flow", "base") if r % 2 == 0 else ("base", "flow"):
                bp.wait_workers_reaped()
                start = bp.run_cpu_seconds()
                if name == "flow":
                    wall = bm.run_flow(storage, src, 4096, z, case, procs)
                else:
                    wall = bm.baseline_copy(storage, src, 4096, z, procs)
                bp.wait_workers_reaped()
                cpu = (bp.run_cpu_seconds() - start) / z * 1000
                print(json.dumps({"name": name, "wall": wall, "cpu": cpu}), flush=True)


def extract(rev: str, into: str) -> None:
    os.makedirs(into)
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="a commit (anything git archive takes)")
    parser.add_argument("--after", required=True)
    parser.add_argument("--kind", default="jpeg", help="a storage kind of bench_matrix.py")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--z", type=int, default=24, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=2, help="flow/baseline pairs per round")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "UNUSED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.kind, args.procs, args.z, args.runs, args.child[0])
        return
    scratch = tempfile.mkdtemp(prefix="bench_code_versions_")
    results: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    versions = {"before": args.before, "after": args.after}
    try:
        for name, rev in versions.items():
            extract(rev, os.path.join(scratch, name))
        data = os.path.join(scratch, "data")
        os.makedirs(data)
        for r in range(args.rounds):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                code = os.path.join(scratch, name)
                # (this script, which older commits lack, with the version's bench modules)
                command = [sys.executable, os.path.abspath(__file__), "--before", "-"]
                command += ["--after", "-", "--kind", args.kind, "--procs", str(args.procs)]
                command += ["--z", str(args.z), "--runs", str(args.runs), "--child", data, "-"]
                out = subprocess.run(
                    command,
                    env=dict(os.environ, PYTHONPATH=code),
                    capture_output=True,
                    text=True,
                    cwd=scratch,
                )
                got = [json.loads(line) for line in out.stdout.splitlines() if line[:1] == "{"]
                if out.returncode or not got:
                    sys.exit(f"{name} ({versions[name]}) failed:\n{out.stderr[-3000:]}")
                results[name] += got
                shown = ", ".join(f"{d['name']} {d['wall']:.2f} s {d['cpu']:.0f} ms" for d in got)
                print(f"round {r} {name}: {shown}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.kind}, {args.procs} process(es), {args.z} sections, load {os.getloadavg()}")
    for name, rev in versions.items():
        flows = [d for d in results[name] if d["name"] == "flow"]
        bases = [d for d in results[name] if d["name"] == "base"]
        ratios = sorted(b["wall"] / f["wall"] for f, b in zip(flows, bases, strict=True))
        print(
            f"  {name} ({rev}): flow wall {statistics.median(d['wall'] for d in flows):.2f} s, "
            f"CPU {statistics.median(d['cpu'] for d in flows):.1f} ms/section; baseline wall "
            f"{statistics.median(d['wall'] for d in bases):.2f} s, CPU "
            f"{statistics.median(d['cpu'] for d in bases):.1f}; baseline/flow wall median "
            f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}] "
            f"({len(ratios)} pairs)"
        )


if __name__ == "__main__":
    main()
