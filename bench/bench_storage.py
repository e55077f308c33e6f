"""What moving 1 MB costs on this machine's local disk (page cache), by the way it is moved.

The subchunkable flow's throughput against plain TensorStore (``bench_subchunkable.py``) is set
by how many bytes each case writes to new files, reads back and copies in memory. This prints the
cost of each kind of move, per MB of 1 MB files (256 files per measurement), next to a copy in
memory of the same bytes measured in the same run:

* memcpy: one 1 MB array copied to another (the baseline);
* new-file write: a 1 MB file created, written, renamed into place (as intermediaries are);
* overwrite: the same files written again in place (their pages are already in the cache);
* read: the files read back from the page cache into a reused buffer;
* unlink: the files deleted (intermediaries are, after the run);
* TensorStore chunk write / read: 1024 x 1024 x 1 uint8 raw chunks of a precomputed volume
  (what the plain-TensorStore baseline of ``bench_subchunkable.py`` does per chunk).

Then the reads of a subchunked flow: 256 regions of 1280 x 1280 x 1 (a 1024 x 1024 chunk and
128 voxels around it, as in the third case of ``bench_subchunkable.py``) from a 4096 x 4096 x 16
uint8 volume of 1024 x 1024 x 1 raw chunks, each through ``TSBackend.read_voxels_into``: by
TensorStore's array interface with a chunk cache (each storage chunk read once, then copied out
of the cache), without one (every region reads its 4 to 9 chunks whole), and by the backend's
reads of the chunk files (only the rows each region covers). Wall and CPU time per region (the
array interface works in TensorStore's own threads).

With ``--drop-caches`` (root), the page cache is dropped before each round, as
``bench_subchunkable.py --drop-caches`` does.

Usage: .venv/bin/python bench/bench_storage.py [--dir DIR] [--repeat N] [--drop-caches]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MB = 1 << 20
FILES = 256


def _ts_volume(path: str, create: bool) -> Any:
    import tensorstore as ts

    spec: dict[str, Any] = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": path},
    }
    if create:
        spec["multiscale_metadata"] = {"data_type": "uint8", "num_channels": 1, "type": "image"}
        spec["scale_metadata"] = {
            "resolution": [16, 16, 40],
            "encoding": "raw",
            "chunk_size": [1024, 1024, 1],
            "size": [1024, 1024, FILES],
        }
    context = ts.Context({"file_io_sync": False})
    return ts.open(spec, context=context, create=create, open=not create).result()


def measure(root: str, data: np.ndarray) -> dict[str, float]:
    """Seconds per MB of each kind of move, in one round."""
    files = [os.path.join(root, f"f{i}") for i in range(FILES)]
    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        fn()
        times[name] = (time.perf_counter() - start) / FILES

    copies = [np.empty_like(data) for _ in range(8)]  # 8 MB: out of the 1 MB L2 of a core

    def memcpy() -> None:
        for i in range(FILES):
            np.copyto(copies[i % 8], data)

    def new_files() -> None:
        for path in files:
            with open(path + ".tmp", "wb") as f:
                data.tofile(f)
            os.replace(path + ".tmp", path)

    def overwrite() -> None:
        for path in files:
            with open(path, "r+b") as f:
                data.tofile(f)

    def read() -> None:
        buf = np.empty_like(data)
        for path in files:
            with open(path, "rb", buffering=0) as f:
                f.readinto(memoryview(buf).cast("B"))

    def unlink() -> None:
        for path in files:
            os.remove(path)

    timed("memcpy", memcpy)
    timed("new-file write", new_files)
    timed("overwrite", overwrite)
    timed("read", read)
    timed("unlink", unlink)

    vol_path = os.path.join(root, "vol")
    vol = _ts_volume(vol_path, create=True)
    plane = data.reshape(1024, 1024, 1, 1, order="F")

    def ts_write() -> None:
        for z in range(FILES):
            vol[:, :, z : z + 1].write(plane).result()

    def ts_read() -> None:
        for z in range(FILES):
            vol[:, :, z : z + 1].read(order="F").result()

    timed("TensorStore chunk write", ts_write)
    vol = _ts_volume(vol_path, create=False)
    timed("TensorStore chunk read", ts_read)
    shutil.rmtree(vol_path)
    return times


def region_reads(root: str) -> dict[str, tuple[float, float]]:
    """Seconds per region (wall, CPU) of each way of reading a flow's padded regions."""
    from bench_subchunkable import CHUNK, RES, SIZE_Z, make_source

    from zetta_utils.layer.volumetric.tensorstore import TSBackend

    size, chunk, pad, planes, res = 4096, CHUNK, 128, SIZE_Z, RES
    path = make_source(os.path.join(root, "regions"), size)  # the volume bench_subchunkable copies
    starts = [
        (x - pad, y - pad, z)
        for z in range(planes)
        for y in range(0, size, chunk)
        for x in range(0, size, chunk)
    ]
    side = chunk + 2 * pad
    out = np.empty((1, 1, side, side), dtype=np.uint8).transpose(0, 3, 2, 1)  # CXYZ, x fastest
    ways = {
        "array interface, cached": ("0", 64 << 20),
        "array interface, no cache": ("0", 0),
        "chunk files": ("1", 0),
    }
    previous = os.environ.get("ZETTA_RAW_CHUNK_READS")
    times = {}
    try:
        for name, (mode, cache) in ways.items():
            os.environ["ZETTA_RAW_CHUNK_READS"] = mode
            backend = TSBackend(path, cache_bytes_limit=cache)
            wall, cpu = time.perf_counter(), time.process_time()
            for x, y, z in starts:
                backend.read_voxels_into(res, (x, y, z), (x + side, y + side, z + 1), out)
            times[name] = (
                (time.perf_counter() - wall) / len(starts),
                (time.process_time() - cpu) / len(starts),
            )
            backend.clear_cache()
    finally:
        if previous is None:
            os.environ.pop("ZETTA_RAW_CHUNK_READS", None)
        else:
            os.environ["ZETTA_RAW_CHUNK_READS"] = previous
        shutil.rmtree(os.path.dirname(path))
    return times


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=None, help="scratch directory on local disk")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is reported")
    parser.add_argument(
        "--drop-caches", action="store_true", help="drop the page cache before each round (root)"
    )
    args = parser.parse_args()
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()  # as `zetta` commands and mazepa's workers do
    data = np.random.default_rng(0).integers(0, 256, MB, dtype=np.uint8)
    root = tempfile.mkdtemp(prefix="bench_storage_", dir=args.dir)
    rounds: list[dict[str, float]] = []
    region_rounds: list[dict[str, tuple[float, float]]] = []
    try:
        for _ in range(args.repeat):
            if args.drop_caches:
                drop_caches()
            rounds.append(measure(root, data))
            region_rounds.append(region_reads(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = {name: min(r[name] for r in rounds) for name in rounds[0]}
    base = best["memcpy"]
    print(f"1 MB files x {FILES}, in {args.dir or tempfile.gettempdir()}, best of {args.repeat}")
    for name, secs in best.items():
        print(
            f"  {name:26s} {secs * 1e3:7.3f} ms/MB  {MB / secs / 1e9:6.2f} GB/s  "
            f"{secs / base:6.1f} x memcpy"
        )
    print(f"1280 x 1280 regions of 1024 x 1024 raw chunks, x 256, best of {args.repeat}")
    cached_cpu = min(r["array interface, cached"][1] for r in region_rounds)
    for name in region_rounds[0]:
        wall = min(r[name][0] for r in region_rounds)
        cpu = min(r[name][1] for r in region_rounds)
        print(
            f"  {name:26s} {wall * 1e3:7.3f} ms wall  {cpu * 1e3:7.3f} ms CPU  "
            f"{cpu / cached_cpu:5.2f} x the CPU of the cached"
        )


if __name__ == "__main__":
    main()
