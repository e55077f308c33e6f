"""Peak memory of one worker running flow (c) of ``bench_subchunkable.py`` (crop + blend on two
levels, reduction chunks of 2048 x 2048 x 1), next to the estimate the plan's summary prints
("worker memory ... per task running").

A worker runs one task at a time, so a serial run in a fresh process is one worker: this runs
the flow in a child process set up as mazepa's workers are (``tune_malloc``), after a warm-up
run of one top-level chunk elsewhere in the volume (imports, compiled loops, TensorStore's
thread pools: paid once per process, not per task), then resets the kernel's peak of resident
memory (``/proc/self/clear_refs``: 5) and reports ``VmHWM`` minus the resident memory before the
run: what the tasks held at most on top of the process itself.

It also prints the worker's whole growth over the run as it runs by default (no warm-up, freed
memory kept: one-off costs included), which no per-task estimate describes.

Usage: .venv/bin/python bench/peak_memory.py [--size 2048] [--z 2]  (prints both, in MiB)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_subchunkable as bs

CASE_C = bs.CASES["(c) crop + blend on both levels"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _flow(
    root: str, src_path: str, end: tuple[int, int, int], start: tuple[int, int, int] = (0, 0, 0)
) -> Any:
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    src = build_ts_layer("file://" + src_path)
    dst = build_ts_layer(
        "file://" + os.path.join(root, "dst"), info_reference_path="file://" + src_path
    )
    return build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=bs.RES,
        start_coord=start,
        end_coord=end,
        coord_resolution=bs.RES,
        fn=bs.identity,
        op_kwargs={"src": src},
        level_intermediaries_dirs=["file://" + os.path.join(root, "tmp")] * 2,
        verbose=False,
        **CASE_C,
    )


def child(root: str, src_path: str, size: int, z: int, warm_up: bool) -> dict[str, float]:
    """In the measuring process: warm up, reset the peak, run, report."""
    from zetta_utils import mazepa
    from zetta_utils.mazepa.worker_process import tune_malloc
    from zetta_utils.mazepa_layer_processing.common.summary import estimate

    tune_malloc()
    if warm_up:
        # the warm-up: the last z section's first 2048 x 2048 reduction chunk
        mazepa.execute(_flow(root, src_path, (2048, 2048, z + 1), (0, 0, z)), show_progress=False)
    flow = _flow(root, src_path, (size, size, z))
    plan = flow.args[0]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    mazepa.execute(flow, show_progress=False)
    peak = _status_kib("VmHWM")
    est = estimate(plan)
    return {
        "measured": (peak - before) * 1024.0,
        "estimate": float(est["peak_memory"]),
        "top_task_estimate": float(est["memory"]),
        "reduction_estimate": float(est["reduction_memory"]),
    }


def measure(
    size: int = 2048, z: int = 2, root: str | None = None, per_task: bool = True
) -> dict[str, float]:
    """Measured peak bytes of one worker on flow (c) over a ``size`` x ``size`` x ``z`` uint8
    volume, and the plan's estimate. ``size`` is a multiple of 2048.

    ``per_task``: what the tasks hold at most (after a warm-up, glibc giving freed memory back:
    ``ZETTA_MALLOC_TUNING=0``), which the estimate bounds; else the worker's whole growth over
    the run as it runs by default (one-off costs and freed memory kept for reuse included)."""
    if size % 2048:
        raise ValueError(f"`size` must be a multiple of 2048 (the reduction chunk), got {size}")
    with tempfile.TemporaryDirectory(prefix="peak_memory_", dir=root) as tmp:
        saved = bs.SIZE_Z
        bs.SIZE_Z = z + 1  # one more section for the warm-up
        try:
            src_path = bs.make_source(tmp, size)
        finally:
            bs.SIZE_Z = saved
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import peak_memory as p; "
            "print(json.dumps(p.child(sys.argv[2], sys.argv[3], int(sys.argv[4]), "
            "int(sys.argv[5]), sys.argv[6] == '1')))"
        )
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                here,
                tmp,
                src_path,
                str(size),
                str(z),
                "1" if per_task else "0",
            ],
            env={
                **os.environ,
                "ZETTA_MALLOC_TUNING": "0"
                if per_task
                else os.environ.get("ZETTA_MALLOC_TUNING", "1"),
            },
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", type=int, default=2048, help="x and y size of the volume (multiple of 2048)"
    )
    parser.add_argument("--z", type=int, default=2, help="z sections measured")
    args = parser.parse_args()
    got = measure(args.size, args.z)
    whole = measure(args.size, args.z, per_task=False)
    mib = 1024.0 * 1024.0
    print(
        f"flow (c), {args.size} x {args.size} x {args.z} uint8, one worker: "
        f"peak of its tasks {got['measured'] / mib:.1f} MiB "
        f"measured, {got['estimate'] / mib:.1f} MiB estimated by the plan "
        f"(top-level task {got['top_task_estimate'] / mib:.1f}, "
        f"reduction task {got['reduction_estimate'] / mib:.1f}): "
        f"{'bounded' if got['measured'] <= got['estimate'] else 'NOT bounded'}"
    )
    print(
        "  the worker's whole growth over the run "
        "(no warm-up, freed memory kept for reuse as workers do): "
        f"{whole['measured'] / mib:.1f} MiB"
    )


if __name__ == "__main__":
    main()
