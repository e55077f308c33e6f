"""The read half of flow (c) per storage kind, against the read half of the matrix's baseline.

Flow (c) of ``bench_matrix.py`` reads, for each 1024 x 1024 top chunk, its padded region of
1360 x 1360 voxels (crossing 9 storage chunks of 1024 x 1024 x 1) through
``prefetch_layer_voxels``, exactly as ``volumetric_apply_flow`` does (same boxes, same row to
size the cache of shared storage chunks, one scope). The baseline reads every storage chunk once,
chunk-aligned, with plain TensorStore (``order='F'``, no cache), as ``bench_matrix``'s copy does.
Printed per kind: CPU milliseconds per 4096 x 4096 section of each (all threads of this process,
median and range of ``--repeat`` rounds) and their ratio. Which path the flow's reads take is
printed too: chunk files (or chunks' byte ranges in shard files) read directly (local raw, sharded
or not), or TensorStore through the cached reader (jpeg, and raw or sharded with
``ZETTA_RAW_CHUNK_READS=0``, shown as ``raw-ts`` and ``sharded-ts``).

This isolates what the storage layer costs in flow (c); the rest of the flow (blending,
intermediaries, writes) is the same for every local kind.

Usage:
  .venv/bin/python bench/bench_prefetch_reads.py [--kinds raw,raw-ts,sharded,sharded-ts,jpeg]
      [--z 16] [--repeat 3] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm

SIZE = 4096
PAD = 168  # flow (c)'s top-level read context: 96 crop + 32 blend + 16 + 24 of the level below
CHUNK = bm.CHUNK
KINDS = ("raw", "raw-ts", "sharded", "sharded-ts", "jpeg")


def flow_reads(url: str, z: int, scope: str) -> None:
    """The top-level prefetches of flow (c) over ``z`` sections, as the flow makes them."""
    from zetta_utils.geometry import Vec3D
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import prefetch_layer_voxels

    layer = build_ts_layer(url)
    res = Vec3D(*bm.RES)
    for zi in range(z):
        for y in range(0, SIZE, CHUNK):
            row = Box.of((-PAD, y - PAD, zi), (SIZE + PAD, y + CHUNK + PAD, zi + 1))
            for x in range(0, SIZE, CHUNK):
                box = Box.of((x - PAD, y - PAD, zi), (x + CHUNK + PAD, y + CHUNK + PAD, zi + 1))
                prefetch_layer_voxels(layer, res, box, row, scope)


def baseline_reads(url: str, z: int) -> None:
    """Every storage chunk read once by plain TensorStore, as the matrix's baseline copy does."""
    store = bm.ts_open(url)
    for zi in range(z):
        for y in range(0, SIZE, CHUNK):
            for x in range(0, SIZE, CHUNK):
                store[x : x + CHUNK, y : y + CHUNK, zi : zi + 1].read(order="F").result()


def cpu_ms_per_section(fn: Callable[[], None], z: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / z * 1e3


def file_reads() -> int:
    """Files (or byte ranges of files) TensorStore has read so far in this process: with a cache
    of decoded chunks, the number of chunks decoded, plus a sharded volume's index reads."""
    import tensorstore as ts

    total = 0
    for metric in ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/read"):
        total += sum(int(v.get("value", 0)) for v in metric.get("values", []))
    return total


def read_path(url: str) -> str:
    from zetta_utils.geometry import Vec3D
    from zetta_utils.layer.volumetric.tensorstore import TSBackend

    backend = TSBackend(url)
    if backend.reads_chunk_files(Vec3D(*bm.RES)):
        return "chunk files or shards' byte ranges, only the rows each region covers"
    return "TensorStore through the cached reader"


def run_kind(name: str, root: str, z: int, repeat: int) -> str:
    from zetta_utils.layer.volumetric import read_cache

    through_ts = name.endswith("-ts")
    storage = bm.Storage(bm.kind_of(name.removesuffix("-ts")), root)
    url = storage.url("src")
    if not os.path.exists(os.path.join(url[len("file://") :], "info")):
        bm.make_source(storage, SIZE, z)
    if through_ts:
        os.environ["ZETTA_RAW_CHUNK_READS"] = "0"
    try:
        path = read_path(url)
        flow: list[float] = []
        base: list[float] = []
        files: list[float] = []
        for i in range(repeat):
            read_cache.clear()
            scope = f"round{i}"
            base.append(cpu_ms_per_section(lambda: baseline_reads(url, z), z))
            before = file_reads()
            flow.append(cpu_ms_per_section(lambda: flow_reads(url, z, scope), z))  # noqa: B023
            files.append((file_reads() - before) / (z * (SIZE // CHUNK) ** 2))
    finally:
        os.environ.pop("ZETTA_RAW_CHUNK_READS", None)
    ratios = [b / f for b, f in zip(base, flow, strict=True)]
    return (
        f"{name:10s} flow (c) reads {statistics.median(flow):6.1f} ms CPU/section "
        f"({min(flow):.1f}-{max(flow):.1f}); baseline reads {statistics.median(base):6.1f} "
        f"({min(base):.1f}-{max(base):.1f}); ratio median {statistics.median(ratios):.2f}; "
        f"TensorStore file reads per storage chunk {statistics.median(files):.2f}  [{path}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--z", type=int, default=16, help="sections of 4096 x 4096")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", default=None, help="keep the volumes here (reused if present)")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            parser.error(f"--kinds: unknown kind {k!r}; expected some of {', '.join(KINDS)}")
    if args.z < 1 or args.repeat < 1:
        parser.error("--z and --repeat: expected positive integers")
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()  # as in a worker
    root = args.root or tempfile.mkdtemp(prefix="bench_prefetch_reads_")
    try:
        print(f"{args.z} sections of {SIZE} x {SIZE} uint8, {args.repeat} rounds", flush=True)
        for k in kinds:
            print(run_kind(k, root, args.z, args.repeat), flush=True)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
