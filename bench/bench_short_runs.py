"""Short runs with 2 processes against serial (issue 24 part 3): 32 chunks of 1024 x 1024 x 1
(a 4096 x 4096 x 2 uint8 local raw volume) through flows (a) and (c) of
``bench_subchunkable.py``, serially, with ``num_procs=2`` as ``mazepa.execute`` decides by
default (the first task here, workers only where the plan's work is worth their start), and with
``num_procs=2`` forcing the workers (``worker_start_cost_s=0``, the behaviour before).

The fork server is started first, once, as ``zetta run -p 2`` does while it reads the spec; its
start is printed. Printed per case: the median and range of --repeat runs, in seconds.

Usage: .venv/bin/python bench/bench_short_runs.py [--repeat 5] [--z 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_subchunkable as bs

SIZE = 4096


def timed_run(
    root: str, src: str, case: dict[str, Any], z: int, procs: int, start_cost: float | None
) -> float:
    from zetta_utils import mazepa
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    shutil.rmtree(os.path.join(root, "dst"), ignore_errors=True)
    kwargs = dict(case)
    if not kwargs.get("skip_intermediaries"):
        kwargs["level_intermediaries_dirs"] = ["file://" + os.path.join(root, "tmp")] * 2
    flow = build_subchunkable_apply_flow(
        dst=build_ts_layer(
            "file://" + os.path.join(root, "dst"), info_reference_path="file://" + src
        ),
        dst_resolution=bs.RES,
        start_coord=(0, 0, 0),
        end_coord=(SIZE, SIZE, z),
        coord_resolution=bs.RES,
        fn=bs.identity,
        op_kwargs={"src": build_ts_layer("file://" + src)},
        verbose=False,
        **kwargs,
    )
    start = time.perf_counter()
    mazepa.execute(flow, num_procs=procs, show_progress=False, worker_start_cost_s=start_cost)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--z", type=int, default=2, help="z sections (16 chunks each)")
    args = parser.parse_args()
    os.environ.pop("ZETTA_WORKER_START_COST_S", None)
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_short_runs_")
    try:
        saved, bs.SIZE_Z = bs.SIZE_Z, args.z
        src = bs.make_source(root, SIZE)
        bs.SIZE_Z = saved
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {16 * args.z} chunks")
        print(f"fork server start (once): {bs.fork_server_start(2):.2f} s")
        setups = {
            "serial": (1, None),
            "2 processes (default)": (2, None),
            "2 processes, workers forced": (2, 0.0),
        }
        for name in ("(a) 1 level, skip_intermediaries", "(c) crop + blend on both levels"):
            times: dict[str, list[float]] = {s: [] for s in setups}
            for _ in range(args.repeat):  # rounds, so that all setups see the same drift
                for setup, (procs, cost) in setups.items():
                    times[setup].append(timed_run(root, src, bs.CASES[name], args.z, procs, cost))
            print(name)
            for setup, ts in times.items():
                print(
                    f"  {setup:28s} median {statistics.median(ts):.3f} s "
                    f"({min(ts):.3f}-{max(ts):.3f})"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
