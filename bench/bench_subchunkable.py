"""Throughput of build_subchunkable_apply_flow against plain TensorStore copying.

Copies a 4096 x 4096 x 16 uint8 volume (1024 x 1024 x 1 backend chunks, raw, local disk) with an
identity function:

(a) one level of 1024 x 1024 x 1, skip_intermediaries;
(b) two levels, 1024 then 256, through intermediaries (no crop, no blend);
(c) the guide's third example: crop (96, 24) and blend (32 linear, 16 quadratic) on both levels,
    reduction chunks of 2048 x 2048 x 1;

serially and with 2 local processes. The baseline, measured in the same run, copies the same
volume chunk by chunk with TensorStore directly (same context: no fsync), in one process and
split over 2 processes. Every flow's output is checked to equal the source.

The layers read and write local raw chunks as plain files (see
``zetta_utils.layer.volumetric.tensorstore.backend``), cheaper per chunk than TensorStore's array
interface here (``bench/bench_storage.py``). So a second baseline, printed for reference, copies
the chunk files one by one (read whole, written to a temporary file and renamed, as the layers
write), and each case's ratio to it is printed too.
``ZETTA_RAW_CHUNK_READS=0 ZETTA_RAW_CHUNK_WRITES=0`` make the layers read and write through the
array interface like the first baseline.

Measurements go in rounds (the baseline, then each case), --repeat rounds per process count.
Printed: the best throughput of each, the ratio of the bests, and the median and range of the
per-round ratios (each flow run against the baseline of its own round).

With 2 processes, each run starts its workers from mazepa's fork server, which imports torch,
TensorStore and zetta_utils once per process (`zetta run -p N` starts it while it reads the
spec). That one-off start is measured first and printed; the runs after it (best of --repeat)
include starting and stopping their workers, as the baseline includes starting its pool.
Every process here (this one, mazepa's workers, the baseline's pool) keeps freed memory for
reuse (``tune_malloc``, which ``zetta`` commands and mazepa's workers apply).

Usage: .venv/bin/python bench/bench_subchunkable.py [--dir DIR] [--repeat N] [--size 4096]
    [--drop-caches]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

import numpy as np

SIZE_Z = 16
CHUNK = 1024
RES = (16, 16, 40)


def _open(path: str) -> Any:
    import tensorstore as ts

    spec = {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": path}}
    return ts.open(spec, context=ts.Context({"file_io_sync": False})).result()


def _ts_copy(src: str, dst: str, size: int, part: int, parts: int, files: bool = False) -> None:
    scale = "_".join(str(r) for r in RES)
    if files:
        os.makedirs(os.path.join(dst, scale), exist_ok=True)
    else:
        s, d = _open(src), _open(dst)
    k = 0
    for z in range(SIZE_Z):
        for y in range(0, size, CHUNK):
            for x in range(0, size, CHUNK):
                if k % parts == part:
                    if files:  # the raw chunk file (the XYZC array in Fortran order) as it is
                        key = f"{scale}/{x}-{x + CHUNK}_{y}-{y + CHUNK}_{z}-{z + 1}"
                        with open(os.path.join(src, key), "rb") as f:
                            value = f.read()
                        tmp = os.path.join(dst, scale, f".{os.getpid()}.tmp")
                        with open(tmp, "wb") as f:
                            f.write(value)
                        os.replace(tmp, os.path.join(dst, key))
                    else:
                        a = s[x : x + CHUNK, y : y + CHUNK, z : z + 1].read(order="F").result()
                        d[x : x + CHUNK, y : y + CHUNK, z : z + 1].write(a).result()
                k += 1


def fresh_page_cache(src: str) -> None:
    """With --drop-caches: drop the page cache (root only) and read the source back into it, so
    that every measurement starts from the same state. Otherwise the kernel's cost of finding
    pages for new files varies from run to run with what earlier runs left behind."""
    if not FRESH_CACHE:
        return
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1")
    for dirpath, _, names in os.walk(src):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 22):
                    pass


FRESH_CACHE = False


def ts_copy(src: str, dst: str, size: int, procs: int, files: bool = False) -> float:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if n != "info"])
    fresh_page_cache(src)
    start = time.perf_counter()
    if procs == 1:
        _ts_copy(src, dst, size, 0, 1, files)
    else:
        ctx = multiprocessing.get_context("forkserver")
        from zetta_utils.mazepa.worker_process import tune_malloc

        with ctx.Pool(procs, initializer=tune_malloc) as pool:
            pool.starmap(_ts_copy, [(src, dst, size, i, procs, files) for i in range(procs)])
    return time.perf_counter() - start


def make_source(root: str, size: int) -> str:
    import torch

    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    path = os.path.join(root, "src")
    src = build_ts_layer(
        "file://" + path,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=[CHUNK, CHUNK, 1],
        info_dataset_size=[size, size, SIZE_Z],
        info_encoding="raw",
    )
    rng = np.random.default_rng(0)
    for z in range(SIZE_Z):
        plane = rng.integers(0, 256, (1, size, size, 1), dtype=np.uint8)
        src[VolumetricIndex.from_coords((0, 0, z), (size, size, z + 1), RES)] = torch.from_numpy(
            plane
        )
    return path


CASES: dict[str, dict[str, Any]] = {
    "(a) 1 level, skip_intermediaries": {
        "processing_chunk_sizes": [[1024, 1024, 1]],
        "skip_intermediaries": True,
    },
    "(b) 1024 -> 256, intermediaries": {
        "processing_chunk_sizes": [[1024, 1024, 1], [256, 256, 1]],
    },
    "(c) crop + blend on both levels": {
        "processing_chunk_sizes": [[1024, 1024, 1], [256, 256, 1]],
        "processing_crop_pads": [[96, 96, 0], [24, 24, 0]],
        "processing_blend_pads": [[32, 32, 0], [16, 16, 0]],
        "processing_blend_modes": ["linear", "quadratic"],
        "max_reduction_chunk_sizes": [2048, 2048, 1],
    },
}


def identity(src: Any) -> Any:
    return src


def run_flow(
    root: str,
    src_path: str,
    size: int,
    case: dict[str, Any],
    procs: int,
    end: tuple[int, int, int] | None = None,
) -> tuple[float, bool]:
    from zetta_utils import mazepa
    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    dst_path = os.path.join(root, "dst")
    shutil.rmtree(dst_path, ignore_errors=True)
    src = build_ts_layer("file://" + src_path)
    dst = build_ts_layer("file://" + dst_path, info_reference_path="file://" + src_path)
    kwargs = dict(case)
    if not kwargs.get("skip_intermediaries"):
        kwargs["level_intermediaries_dirs"] = ["file://" + os.path.join(root, "tmp")] * len(
            kwargs["processing_chunk_sizes"]
        )
    end = end or (size, size, SIZE_Z)
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        start_coord=(0, 0, 0),
        end_coord=end,
        coord_resolution=RES,
        fn=identity,
        op_kwargs={"src": src},
        verbose=False,
        **kwargs,
    )
    fresh_page_cache(src_path)
    start = time.perf_counter()
    # the workers themselves are measured, never a run that mazepa kept serial
    mazepa.execute(flow, num_procs=procs, show_progress=False, worker_start_cost_s=0)
    elapsed = time.perf_counter() - start
    ok = True
    for z in range(end[2]):
        idx = VolumetricIndex.from_coords((0, 0, z), (end[0], end[1], z + 1), RES)
        ok = ok and bool((src[idx] == dst[idx]).all())
    return elapsed, ok


def fork_server_start(procs: int) -> float:
    """Time of a first, empty run with ``procs`` processes: starting mazepa's fork server with
    the imports ``zetta run -p N`` gives it."""
    from zetta_utils import mazepa
    from zetta_utils.mazepa.local_pool import start_fork_server

    @mazepa.flow_schema
    def empty_flow() -> Any:
        yield []

    start = time.perf_counter()
    start_fork_server()
    # an empty run would otherwise start no workers (it has no task to decide on): force them
    mazepa.execute(empty_flow(), num_procs=procs, show_progress=False, worker_start_cost_s=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir", default=None, help="scratch directory on local disk (default: a temp dir)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="rounds (each: the baseline, then every case); the best of each is reported",
    )
    parser.add_argument("--size", type=int, default=4096, help="x and y size of the volume")
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="before each run, drop the page cache (needs root) and read the source back in",
    )
    args = parser.parse_args()
    global FRESH_CACHE
    FRESH_CACHE = args.drop_caches
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()  # as every `zetta` command does (and mazepa's workers, and the baseline's)
    root = tempfile.mkdtemp(prefix="bench_subchunkable_", dir=args.dir)
    try:
        size = args.size
        mvox = size * size * SIZE_Z / 1e6
        print(f"volume {size} x {size} x {SIZE_Z} uint8, chunks {CHUNK} x {CHUNK} x 1, in {root}")
        src_path = make_source(root, size)
        cold = fork_server_start(2)
        print(f"starting the fork server for 2 processes (once per process): {cold:.2f} s")
        for procs in (1, 2):
            # Rounds: the baseline, then every case, so that all of them see the same drift in
            # this machine's speed (shared VMs drift by tens of percent within a minute).
            base_dst = os.path.join(root, "base")
            base_times: list[float] = []
            kv_times: list[float] = []
            times: dict[str, list[float]] = {name: [] for name in CASES}
            all_ok = {name: True for name in CASES}
            for _ in range(args.repeat):
                base_times.append(ts_copy(src_path, base_dst, size, procs))
                kv_times.append(ts_copy(src_path, base_dst, size, procs, files=True))
                if len(kv_times) == 1:  # its chunk files must read back as the source
                    copied = _open(base_dst).read().result()
                    assert (copied == _open(src_path).read().result()).all(), (
                        "chunk file copy differs"
                    )
                for name, case in CASES.items():
                    elapsed, ok = run_flow(root, src_path, size, case, procs)
                    times[name].append(elapsed)
                    all_ok[name] = all_ok[name] and ok
            base = mvox / min(base_times)
            kv_base = mvox / min(kv_times)
            print(
                f"\n{procs} process(es): plain TensorStore chunk copy {base:8.1f} Mvox/s (best of "
                f"{args.repeat}); "
                f"copying chunk files {kv_base:.1f} Mvox/s"
            )
            for name in CASES:
                rate = mvox / min(times[name])
                per_round = sorted(b / t for b, t in zip(base_times, times[name], strict=True))
                line = f"  {name:36s} {rate:8.1f} Mvox/s  ratio {rate / base:5.2f}"
                low, median, high = per_round[0], statistics.median(per_round), per_round[-1]
                line += f"  (per round: median {median:.2f}, {low:.2f}-{high:.2f})"
                line += f"  to the chunk file copy {rate / kv_base:4.2f}"
                print(line + f"  output {'== source' if all_ok[name] else 'DIFFERS from source'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
