"""Blending the lower level of the guide's third example in memory (``LevelSchedule.run``).

One top-level chunk of (c) in ``bench_subchunkable.py``: a 1088 x 1088 x 1 uint8 padded output
combined from 25 sub-chunk outputs of 288 x 288 x 1 (chunks of 256, crop 96 above, blend 16,
quadratic). The baseline, in the same run, is copying the same 25 outputs' 256 x 256 cores into
an output of that size: the data movement without any blending.

Usage: .venv/bin/python bench/bench_blend.py [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from zetta_utils.mazepa_layer_processing.common import reduction


def best_ms(fn: Callable[[], object], repeat: int, number: int = 40) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timings per measurement; the best is reported"
    )
    args = parser.parse_args()
    schedule = reduction.level_schedule(
        (1088, 1088, 1), (96, 96, 0), (256, 256, 1), (16, 16, 0), "quadratic", np.dtype(np.uint8)
    )
    rng = np.random.default_rng(0)
    outputs = [
        reduction.copy_xfast(rng.integers(0, 256, (1, 288, 288, 1), dtype=np.uint8))
        for _ in schedule.starts
    ]
    out = reduction.empty_xfast(1, (1088, 1088, 1), np.uint8)
    cores = [
        (
            tuple(slice(max(s, 0), max(s, 0) + 256) for s in (x - 80, y - 80)),
            o[:, 16:272, 16:272, :],
        )
        for (x, y, _), o in zip(schedule.starts, outputs, strict=True)
    ]

    def copy_cores() -> None:
        for (sx, sy), core in cores:
            target = out[:, sx, sy, :]
            np.copyto(target, core[:, : target.shape[1], : target.shape[2], :])

    base = best_ms(copy_cores, args.repeat)
    loops = "compiled" if reduction.KERNELS is not None else "NumPy"
    blend = best_ms(lambda: schedule.run(out, iter(outputs), "bench"), args.repeat)
    print(
        f"{len(outputs)} sub-chunk outputs -> {out.shape[1]} x {out.shape[2]} uint8, "
        f"{len(schedule.regions)} band regions, {loops} loops"
    )
    print(f"  copying the cores (baseline)  {base:6.3f} ms")
    print(
        f"  blending (LevelSchedule.run)  {blend:6.3f} ms   ratio to baseline {blend / base:5.2f}"
    )


if __name__ == "__main__":
    main()
