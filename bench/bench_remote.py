"""Remote execution overhead: tasks through SQS queues to 2 workers, against the local 2-process
executor measured in the same run.

Run by hand: ``.venv/bin/python bench/bench_remote.py [--tasks 1000] [--workers 2]
[--endpoint URL]``. Without ``--endpoint`` it starts moto's SQS server on loopback.

Two measurements:
1. per-task overhead: ``--tasks`` no-op tasks;
2. the copies of bench/bench_subchunkable.py (``build_subchunkable_apply_flow``, identity fn) on
   a smaller volume, Mvox/s.

Each prints the local 2-process executor's figure, the queue's, and ratio = local time / queue
time (< 1: the queue is slower). moto is an emulator written in Python and gets slower as queues
grow: its figures bound the overhead of our code plus an emulator, and say nothing about
Amazon SQS's throughput. Point ``--endpoint`` at a real service for that.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from zetta_utils import mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs


@mazepa.taskable_operation
def noop(i: int) -> int:
    return i


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def report(
    name: str, local_s: float, queue_s: float, unit: str, amount: float, extra: str = ""
) -> None:
    print(
        f"{name}: local 2-proc {amount / local_s:10.1f} {unit} ({local_s:6.2f} s) | "
        f"queue {amount / queue_s:10.1f} {unit} ({queue_s:6.2f} s) | ratio "
        f"{local_s / queue_s:5.3f} {extra}"
    )


def bench_noop(n: int, workers: int, prefetch: int, max_outstanding: int | None) -> None:
    local_s, _ = timed(
        lambda: mazepa.execute(
            [noop.make_task(i) for i in range(n)],
            num_procs=workers,
            show_progress=False,
            worker_start_cost_s=0,
        )
    )
    queue_s, summary = timed(
        lambda: execute_on_gcp_with_sqs(
            [noop.make_task(i) for i in range(n)],
            worker_replicas=workers,
            local_test=True,
            worker_prefetch=prefetch,
            max_outstanding_tasks=max_outstanding,
            show_progress=False,
        )
    )
    assert summary.tasks_done == n
    report(
        f"{n} no-op tasks, prefetch {prefetch:2d}, look-ahead {max_outstanding or 'default'}",
        local_s,
        queue_s,
        "tasks/s",
        n,
        f"| queue per task {1e3 * queue_s / n:.2f} ms wall incl. setup; "
        f"{1e3 * summary.elapsed_secs / n:.2f} ms in the run loop",
    )


COPY_CASES: dict[str, dict[str, Any]] = {
    # The cases of bench/bench_subchunkable.py.
    "(a) 1 level, skip_intermediaries": {
        "processing_chunk_sizes": [[1024, 1024, 1]],
        "skip_intermediaries": True,
    },
    "(b) 1024 -> 256, intermediaries": {"processing_chunk_sizes": [[1024, 1024, 1], [256, 256, 1]]},
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


def bench_copy(workers: int, size: int, depth: int) -> None:
    import numpy as np
    import torch

    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    res = (16, 16, 40)
    tmp = Path(tempfile.mkdtemp(prefix="bench_remote_"))
    try:
        src_path = f"file://{tmp / 'src'}"
        src = build_ts_layer(
            src_path,
            info_type="image",
            info_data_type="uint8",
            info_num_channels=1,
            info_scales=[list(res)],
            info_chunk_size=[1024, 1024, 1],
            info_dataset_size=[size, size, depth],
            info_encoding="raw",
        )
        rng = np.random.default_rng(0)
        for z in range(depth):
            plane = rng.integers(0, 256, (1, size, size, 1), dtype=np.uint8)
            src[VolumetricIndex.from_coords((0, 0, z), (size, size, z + 1), res)] = (
                torch.from_numpy(plane)
            )
        mvox = size * size * depth / 1e6
        print(
            f"copy: {size} x {size} x {depth} uint8 ({mvox:.0f} Mvox), 1024 x 1024 x 1 chunks, "
            "raw, local disk"
        )

        def make(name: str, case: dict[str, Any]) -> Any:
            shutil.rmtree(tmp / name, ignore_errors=True)
            shutil.rmtree(tmp / f"{name}_tmp", ignore_errors=True)
            dst = build_ts_layer(f"file://{tmp / name}", info_reference_path=src_path)
            kwargs = dict(case)
            if not kwargs.get("skip_intermediaries"):
                kwargs["level_intermediaries_dirs"] = [f"file://{tmp / name}_tmp"] * len(
                    kwargs["processing_chunk_sizes"]
                )
            return build_subchunkable_apply_flow(
                dst=dst,
                dst_resolution=res,
                start_coord=(0, 0, 0),
                end_coord=(size, size, depth),
                coord_resolution=res,
                fn=identity,
                op_kwargs={"src": src},
                verbose=False,
                **kwargs,
            )

        for case_name, case in COPY_CASES.items():
            local_flow, queue_flow = make("local", case), make("queue", case)
            local_s, _ = timed(
                lambda f=local_flow: mazepa.execute(
                    f, num_procs=workers, show_progress=False, worker_start_cost_s=0
                )
            )
            queue_s, summary = timed(
                lambda f=queue_flow: execute_on_gcp_with_sqs(
                    f, worker_replicas=workers, local_test=True, show_progress=False
                )
            )
            same = _same_files(tmp / "local", tmp / "queue") and _same_files(
                tmp / "src", tmp / "queue", chunks_only=True
            )
            report(
                f"  {case_name:34s} {summary.tasks_done:3d} tasks",
                local_s,
                queue_s,
                "Mvox/s",
                mvox,
                f"| output == source == local: {same}",
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _same_files(a: Path, b: Path, chunks_only: bool = False) -> bool:
    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and not (chunks_only and p.name == "info")
        }

    return files(a) == files(b)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--max-outstanding",
        type=int,
        nargs="*",
        default=[20, 0],
        help="look-ahead(s) on the queue to try (0: the default); moto slows down as queues grow",
    )
    parser.add_argument(
        "--endpoint", default=None, help="SQS endpoint (default: start moto on loopback)"
    )
    parser.add_argument(
        "--size", type=int, default=2048, help="copy benchmark: x and y size of the volume"
    )
    parser.add_argument("--depth", type=int, default=8, help="copy benchmark: z size of the volume")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp_records = tempfile.mkdtemp(prefix="bench_remote_runs_")
    os.environ["ZETTA_RUN_RECORDS"] = tmp_records
    moto = None
    if args.endpoint is None:
        moto, endpoint = start_moto()
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        print(f"SQS: moto server at {endpoint} (an emulator: not a measure of Amazon SQS)")
    else:
        endpoint = args.endpoint
        print(f"SQS: {endpoint}")
    os.environ["ZETTA_SQS_ENDPOINT"] = endpoint
    try:
        for prefetch in (1, 10):
            for look_ahead in args.max_outstanding:
                bench_noop(args.tasks, args.workers, prefetch, look_ahead or None)
        bench_copy(args.workers, args.size, args.depth)
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(10)
        shutil.rmtree(tmp_records, ignore_errors=True)


if __name__ == "__main__":
    main()
