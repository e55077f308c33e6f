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
    try:
        for _ in range(args.repeat):
            if args.drop_caches:
                drop_caches()
            rounds.append(measure(root, data))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = {name: min(r[name] for r in rounds) for name in rounds[0]}
    base = best["memcpy"]
    print(f"1 MB files x {FILES}, in {args.dir or tempfile.gettempdir()}, best of {args.repeat}")
    for name, secs in best.items():
        print(
            f"  {name:26s} {secs * 1e3:7.3f} ms/MB  {MB / secs / 1e9:6.2f} GB/s  {secs / base:6.1f} x memcpy"
        )


if __name__ == "__main__":
    main()
