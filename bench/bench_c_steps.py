"""Flow (c)'s CPU per 4096 x 4096 section by step, one process (issue 24, O1).

Runs ``bench_matrix.py``'s flow (c) (the guide's crop + blend on two levels, identity function)
in this process and times, with the CPU clock of the calling thread (``time.thread_time``), the
steps of its main thread: the top-level tasks (the src read into the prefetch buffer, the bottom
level: input copies, the function and blending, the top-level output packed into its row) and
the reduction tasks (combining pieces, the dst write's part on the main thread). Also the main
thread as a whole, the process (all threads: write-behind's writer, TensorStore's) and wall
time. CPU time depends far less than wall time on what else a shared machine runs.

``--ab``: rounds alternate the code before and after a change, switched in this process, and
both columns are printed. ``--ab-what``: which change: ``o1`` (default), O1's reduction changes
(``ZETTA_REDUCE_IN_STRIPS=0`` and ``ZETTA_FUSED_COMBINE=0``: whole reduction chunks, cells
accumulated then stored); ``p3``, P3's cache of whole raw chunks for the src reads
(``ZETTA_RAW_CHUNK_CACHE=0``: every padded read reads its rows from the files). Every output is
checked against the source.

Usage:
  .venv/bin/python bench/bench_c_steps.py [--kinds sharded,raw] [--z 16] [--rounds 4] [--ab]
      [--ab-what o1|p3]
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_subchunkable as bs

SIZE = 4096
TIMES: collections.defaultdict[str, float] = collections.defaultdict(float)


def _timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` to add its calling thread's CPU time to ``TIMES[label]``."""
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            TIMES[label] += time.thread_time() - start

    setattr(owner, name, wrapper)


def _instrument() -> None:
    from zetta_utils.layer.volumetric.tensorstore import backend as tsb
    from zetta_utils.mazepa_layer_processing.common import intermediaries as im
    from zetta_utils.mazepa_layer_processing.common import reduction as red
    from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow as vaf

    _timed(vaf.SubchunkablePlan, "prefetched", "top: src read (prefetch)")
    _timed(red.LevelSchedule, "run", "top: bottom level (input copies, fn, blend)")
    _timed(im.PieceStore, "write_chunk", "top: output -> row")
    _timed(vaf.SubchunkablePlan, "process_top_chunk", "top-level tasks, total")
    _timed(im.PieceStore, "reduce_strips", "red: combining pieces")
    _timed(tsb.TSBackend, "write", "red: dst write, main thread")
    _timed(vaf.Reducer, "reduce", "reduction tasks, total")


def _switch(new: bool, what: str = "o1") -> None:
    from zetta_utils.layer.volumetric import raw_chunks
    from zetta_utils.mazepa_layer_processing.common import reduction as red
    from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow as vaf

    if what == "o1":
        vaf._STRIPS[0] = new  # pylint: disable=protected-access
        red._FUSED_COMBINE[0] = new  # pylint: disable=protected-access
    elif what == "p3":
        raw_chunks._CHUNK_CACHE[0] = new  # pylint: disable=protected-access
        raw_chunks.clear_chunk_cache()
    else:
        raise ValueError(f"--ab-what: expected o1 or p3, got {what!r}")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(storage: bm.Storage, src: str, z: int) -> dict[str, float]:
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    kind = storage.kind
    dst = storage.fresh("dst", SIZE, z)
    storage.clear("tmp")
    kwargs = dict(bm.FLOWS["(c) crop + blend"])
    kwargs["level_intermediaries_dirs"] = [storage.url("tmp")] * 2
    flow = build_subchunkable_apply_flow(
        dst=bm.build_layer(kind, dst),
        dst_resolution=bm.RES,
        start_coord=(0, 0, 0),
        end_coord=(SIZE, SIZE, z),
        coord_resolution=bm.RES,
        fn=bs.identity,
        op_kwargs={"src": bm.build_layer(kind, src)},
        verbose=False,
        **kwargs,
    )
    storage.settle()
    TIMES.clear()
    cpu, main, wall = _cpu(), time.thread_time(), time.perf_counter()
    mazepa.execute(flow, num_procs=1, show_progress=False, worker_start_cost_s=0)
    wall, main, cpu = time.perf_counter() - wall, time.thread_time() - main, _cpu() - cpu
    check = bm.check_output(kind, src, dst)
    if check != "== source":
        raise SystemExit(f"{kind.name}: output {check}")
    result = {k: 1000 * v / z for k, v in TIMES.items()}
    result["main thread, all"] = 1000 * main / z
    result["process, all threads"] = 1000 * cpu / z
    result["wall"] = 1000 * wall / z
    return result


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} [{min(values):5.2f}-{max(values):5.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="sharded,raw", help="local kinds of bench_matrix")
    parser.add_argument("--z", type=int, default=16, help="sections of 4096 x 4096")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (after one warm-up)")
    parser.add_argument("--ab", action="store_true", help="alternate before/after (see above)")
    parser.add_argument("--ab-what", default="o1", choices=("o1", "p3"), help="see above")
    parser.add_argument("--dir", default=None, help="scratch directory")
    args = parser.parse_args()
    kinds = [bm.kind_of(k.strip()) for k in args.kinds.split(",") if k.strip()]
    if any(k.s3 or k.library != "ts" for k in kinds):
        parser.error("--kinds: local TensorStore kinds only (raw, jpeg, sharded)")
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    _instrument()
    root = tempfile.mkdtemp(prefix="bench_c_steps_", dir=args.dir)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    try:
        for kind in kinds:
            storage = bm.Storage(kind, root)
            src = bm.make_source(storage, SIZE, args.z)
            variants = [False, True] if args.ab else [True]
            results: dict[bool, dict[str, list[float]]] = {
                v: collections.defaultdict(list) for v in variants
            }
            for r in range(args.rounds + 1):
                for new in variants:
                    _switch(new, args.ab_what)
                    result = _run(storage, src, args.z)
                    if r == 0:
                        continue  # warm-up
                    for k, v in result.items():
                        results[new][k].append(v)
            _switch(True, args.ab_what)
            print(
                f"\n{kind.name}: ms per {SIZE}^2 section, one process, median [range] of "
                f"{args.rounds} rounds{' alternated' if args.ab else ''}"
            )
            head = f"  {'step':46s}" + ("  before (--ab)       " if args.ab else "") + "  now"
            print(head)
            for k in sorted(results[True]):
                cells = [_cell(results[v][k]) for v in variants]
                print(f"  {k:46s}  " + "  ".join(cells))
            shutil.rmtree(os.path.join(root, kind.name), ignore_errors=True)
        print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
