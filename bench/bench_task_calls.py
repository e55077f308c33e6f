"""Python calls per task of flow (a) (issue 24): what the run's process and its local workers'
main threads call for each task, by where the calls are. Unlike CPU time, the counts do not
depend on the machine's load, except those of the run's process's waiting loop (polls and
messages per task vary with timing).

One warm-up run of ``bench_matrix.py``'s flow (a) (starts the fork server), then a run with the
run's process profiled by ``cProfile`` and its workers by ``$ZETTA_WORKER_CPROFILE``. Printed:
calls per task of each process kind (calls made from C, e.g. by pickle, count; a C function's
calls are given to the category of the Python function calling it), by category: task creation,
pickling, scheduling, outcome messages, the worker's task loop, write-behind bookkeeping,
index/geometry arithmetic, the flow's task body, the layer frontend and the backend. What a run
does once (starting workers, opening volumes) is spread over its tasks: use enough of them.
``--top N`` also lists the N functions called most per task in each.

Usage:
  .venv/bin/python bench/bench_task_calls.py [--kind jpeg] [--procs 2] [--z 32] [--top 0]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import glob
import os
import pstats
import shutil
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm
import bench_subchunkable as bs

SIZE = 4096

CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "task creation (ids, Task objects)",
        (
            *("id_generation", "tasks.py:make_task", "tasks.py:_operation", "Task>"),
            *("_top_task", "_batched", "chunk_grid.py:keys", "tasks.py:with_options"),
        ),
    ),
    (
        "pickling tasks",
        (
            *("serialization.py:serialize_task", "serialization.py:_encode", "_commit"),
            *("_dumps", "cloudpickle", "deserialize_task", "serialization.py:load"),
            *("serialization.py:<list", "serialization.py:get", "serialization.py:update"),
        ),
    ),
    (
        "outcome messages",
        (
            *("serialize_outcomes", "deserialize_outcomes", "_dump_outcome", "task_outcome"),
            *("TaskOutcome", "connection.py", "_drain", "_take_outstanding", "_note_ran_on"),
            *("_Outbox", "worker_process.py:send", "RanTask>"),
        ),
    ),
    (
        "scheduling / dispatch",
        (
            *("scheduler.py", "execute.py", "lanes.py", "local_pool.py", "executors.py"),
            *("interrupts.py", "contextlib", "checkpoint"),
        ),
    ),
    ("progress", ("progress.py",)),
    ("worker task loop", ("worker_process.py", "task_runs.py", "tasks.py:__call__", "queue")),
    ("write-behind bookkeeping", ("write_behind.py",)),
    ("index / geometry arithmetic", ("index.py", "bbox.py", "vec.py", "VolumetricIndex")),
    (
        "flow's task body (apply flow, operation, chunk grid)",
        (
            *("volumetric_apply_flow", "volumetric_callable_operation", "chunk_grid"),
            *("chunk_numbering", "layer_wrappers", "bench_subchunkable", "<string>"),
        ),
    ),
    ("layer frontend (layer.py, frontend.py)", ("volumetric/layer.py", "frontend.py")),
    ("backend read/write", ("precomputed.py", "tensorstore/backend.py", "raw_chunks")),
]


def category(where: str) -> str:
    for name, keys in CATEGORIES:
        if any(k in where for k in keys):
            return name
    return "other (once per run, or elsewhere)"


def _count(callers: dict[Any, Any], key: Any) -> float:
    value = callers[key]
    return float(value[1] if isinstance(value, tuple) else value)


def per_task(stats: pstats.Stats, tasks: int) -> tuple[dict[str, float], dict[str, float]]:
    """Calls per task by category, and by function."""
    by_cat: dict[str, float] = collections.defaultdict(float)
    by_fn: dict[str, float] = collections.defaultdict(float)
    for (file, _line, fn), (_, calls, _, _, callers) in stats.stats.items():  # type: ignore
        name = f"{file.split('/')[-1]}:{fn}"
        by_fn[name] += calls / tasks
        if file == "~":  # a C function: each of its callers' categories
            for key in callers:
                by_cat[category(f"{key[0]}:{key[2]}")] += _count(callers, key) / tasks
        else:
            by_cat[category(f"{file}:{fn}")] += calls / tasks
    return by_cat, by_fn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="jpeg", help="a storage kind of bench_matrix (local)")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--z", type=int, default=32, help="4096^2 sections (16 tasks each)")
    parser.add_argument("--size", type=int, default=SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args(argv)
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    kind = bm.kind_of(args.kind)
    if kind.s3:
        parser.error("--kind: a local storage kind (raw, gzip, jpeg, sharded)")
    root = tempfile.mkdtemp(prefix="bench_task_calls_")
    try:
        storage = bm.Storage(kind, root)
        src = bm.make_source(storage, args.size, args.z)
        case = bs.CASES["(a) 1 level, skip_intermediaries"]
        tasks = args.z * (-(-args.size // 1024)) ** 2
        bm.run_flow(storage, src, args.size, args.z, case, args.procs)  # warm-up
        profiles = os.path.join(root, "profiles")
        os.makedirs(profiles)
        os.environ["ZETTA_WORKER_CPROFILE"] = profiles
        profiler = cProfile.Profile()
        try:
            profiler.enable()
            bm.run_flow(storage, src, args.size, args.z, case, args.procs)
            profiler.disable()
        finally:
            del os.environ["ZETTA_WORKER_CPROFILE"]
        print(f"{args.kind}, {args.procs} process(es), {args.z} sections, {tasks} tasks")
        print(f"output: {bm.check_output(kind, src, storage.url('dst'))}")
        files = glob.glob(os.path.join(profiles, "worker-*.prof"))
        kinds = [("run's process", pstats.Stats(profiler))]
        if files:
            kinds.append((f"workers' main threads ({len(files)})", pstats.Stats(*files)))
        for who, stats in kinds:
            by_cat, by_fn = per_task(stats, tasks)
            print(f"\n{who}: {sum(by_cat.values()):.1f} Python and C calls per task")
            for name, n in sorted(by_cat.items(), key=lambda kv: -kv[1]):
                if n >= 0.05:
                    print(f"  {n:7.1f}  {name}")
            for name, n in sorted(by_fn.items(), key=lambda kv: -kv[1])[: args.top]:
                print(f"      {n:7.2f}  {name}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
