"""Resampling reads against tinybrain, same run; then tensor_ops.interpolate against plain torch.

Run by hand: ``python bench/bench_interpolation.py [--threads N] [--rounds R] [--all]``.

First table (issue 24's goal): downsampling as a layer read at a coarser resolution calls it,
``interpolate(raw, scale_factor=tuple(src / desired), mode="img")`` with ``raw`` a CXYZ tensor
view of a Fortran-ordered XYZC array (what the backends read), tensor in and tensor out, against
``tinybrain.downsample_with_averaging`` on that same array (NumPy in and out), for uint8 and
float32, 2x2x1 and 2x2x2, on 1024x1024 sections. Ours and tinybrain alternate within each round;
printed: each side's best round (ms per input section, input MB/s), ratio = tinybrain time / our
time (>= 1: at least as fast) of the bests and per round (median, min-max: the spread shows how
noisy the machine was), and, for reference, our own torch averaging (what interpolate ran before
these factors went to tinybrain). Times are this process's CPU time (``--threads 1``: one
thread each side), which a busy shared machine disturbs far less than wall-clock time.

``--all`` adds the older table: other modes and factors against straightforward torch baselines
(ratio = baseline time / our time). Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
import tinybrain
import torch
import torch.nn.functional as F

from zetta_utils.tensor_ops import interpolate
from zetta_utils.tensor_ops.interpolation import _interpolate_img


def timed(
    fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    fn()
    start = clock()
    for _ in range(repeats):
        fn()
    return (clock() - start) / repeats


def f_order(c: int, x: int, y: int, z: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """CXYZ view with x fastest, the layout TensorStore reads arrive in."""
    return torch.rand(z, y, x, c).to(dtype).permute(3, 2, 1, 0)


def sort_mode_baseline(data: torch.Tensor, k: tuple[int, int, int]) -> torch.Tensor:
    c, x, y, z = data.shape
    kx, ky, kz = k
    blocks = data.reshape(c, x // kx, kx, y // ky, ky, z // kz, kz).permute(0, 1, 3, 5, 2, 4, 6)
    values = torch.sort(blocks.reshape(c, x // kx, y // ky, z // kz, -1), dim=-1).values
    n = values.shape[-1]
    pos = torch.arange(n)
    starts = torch.ones(values.shape, dtype=torch.bool)
    starts[..., 1:] = values[..., 1:] != values[..., :-1]
    run = pos - torch.where(starts, pos, 0).cummax(-1).values
    return values.gather(-1, run.argmax(-1, keepdim=True)).squeeze(-1)


# This process's CPU time: both sides run on one thread (tinybrain always, torch with
# --threads 1), and on a shared machine CPU time leaves out the time other processes hold the core.
CPU = time.process_time


def backend_read(dtype: np.dtype, x: int, y: int, z: int) -> tuple[np.ndarray, torch.Tensor]:
    """A Fortran-ordered XYZC array as a backend reads it, and the CXYZ tensor view of it."""
    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        xyzc = np.asfortranarray(rng.integers(0, 256, size=(x, y, z, 1), dtype=np.uint8))
    else:
        xyzc = np.asfortranarray(rng.random(size=(x, y, z, 1), dtype=np.float32))
    return xyzc, torch.from_numpy(xyzc.T).permute(0, 3, 2, 1)


def tinybrain_table(rounds: int, budget_s: float) -> None:
    print(
        "best of rounds per side (ms per section, input MB/s); ratio = tinybrain / ours, of the "
        "bests and per round (median, min-max); torch path: our own averaging"
    )
    print(
        f"{'resampling read (1024x1024 sections)':36s} {'ours':>17s} {'tinybrain':>17s} "
        f"{'best':>5s} {'rounds':>17s} {'torch path':>11s}"
    )
    cases = [
        (np.uint8, (2, 2, 1), 1),
        (np.uint8, (2, 2, 1), 16),
        (np.uint8, (2, 2, 2), 2),
        (np.uint8, (2, 2, 2), 16),
        (np.float32, (2, 2, 1), 1),
        (np.float32, (2, 2, 1), 16),
        (np.float32, (2, 2, 2), 2),
        (np.float32, (2, 2, 2), 16),
    ]
    for dtype, factor, sections in cases:
        xyzc, raw = backend_read(np.dtype(dtype), 1024, 1024, sections)
        src, desired = (4.0, 4.0, 40.0), (4.0 * factor[0], 4.0 * factor[1], 40.0 * factor[2])
        scale = tuple(s / d for s, d in zip(src, desired))
        in_shape = (1024, 1024, sections)
        out_shape = (512, 512, sections // factor[2])

        ours = functools.partial(interpolate, raw, scale_factor=scale, mode="img")
        theirs = functools.partial(tinybrain.downsample_with_averaging, xyzc, factor)
        torch_path = functools.partial(_interpolate_img, raw, in_shape, out_shape, None)
        same = np.array_equal(ours().numpy(), np.moveaxis(theirs()[0], -1, 0))
        assert same, "ours and tinybrain differ"
        # enough calls per round for ~budget_s / rounds of work on each side
        single = timed(theirs, 1, CPU)
        repeats = max(1, int(budget_s / rounds / 2 / max(single, 1e-6)))
        ratios, t_ours, t_theirs = [], [], []
        for r in range(rounds):
            order = [(ours, t_ours), (theirs, t_theirs)]
            for fn, sink in order if r % 2 == 0 else order[::-1]:
                sink.append(timed(fn, repeats, CPU))
            ratios.append(t_theirs[-1] / t_ours[-1])
        t_torch = timed(torch_path, max(1, repeats // 4), CPU)
        a, b = min(t_ours), min(t_theirs)
        megabytes = xyzc.nbytes / 1e6
        name = f"{np.dtype(dtype).name} {factor[0]}x{factor[1]}x{factor[2]}, {sections} sections"
        print(
            f"{name:36s} {a / sections * 1e3:6.3f} ms {megabytes / a:5.0f} MB/s "
            f"{b / sections * 1e3:6.3f} ms {megabytes / b:5.0f} MB/s {b / a:5.2f} "
            f"{statistics.median(ratios):5.2f} ({min(ratios):4.2f}-{max(ratios):4.2f}) "
            f"{t_torch / sections * 1e3:8.3f} ms"
        )


def torch_table(repeats: int) -> None:
    img_c = torch.rand(1, 2048, 2048, 1)
    img_f = f_order(1, 1024, 1024, 16)
    img_z = torch.rand(1, 512, 512, 32)
    u8 = torch.randint(0, 256, (1, 2048, 2048, 1), dtype=torch.uint8)
    small = torch.rand(1, 1024, 1024, 1)
    mask = (torch.rand(1, 2048, 2048, 1) > 0.99).to(torch.uint8)
    seg = torch.randint(0, 2**40, (1, 1024, 1024, 1)) * 1000
    seg3 = torch.randint(0, 50, (1, 512, 512, 16))

    cases: list[tuple[str, torch.Tensor, Callable[[], object], Callable[[], object]]] = [
        (
            "img f32 C 2048^2x1 down (2,2,1) vs avg_pool3d",
            img_c,
            lambda: interpolate(img_c, [0.5, 0.5, 1], "img"),
            lambda: F.avg_pool3d(img_c, (2, 2, 1)),
        ),
        (
            "img f32 F 1024^2x16 down (2,2,1) vs avg_pool3d",
            img_f,
            lambda: interpolate(img_f, [0.5, 0.5, 1], "img"),
            lambda: F.avg_pool3d(img_f, (2, 2, 1)),
        ),
        (
            "img f32 C 512^2x32 down (2,2,2) vs avg_pool3d",
            img_z,
            lambda: interpolate(img_z, 0.5, "img"),
            lambda: F.avg_pool3d(img_z, (2, 2, 2)),
        ),
        (
            "img u8 2048^2x1 down (2,2,1) vs float avg_pool3d+round",
            u8,
            lambda: interpolate(u8, [0.5, 0.5, 1], "img"),
            lambda: F.avg_pool3d(u8.float(), (2, 2, 1)).round_().to(torch.uint8),
        ),
        (
            "img f32 1024^2x1 up (2,2,1) vs trilinear",
            small,
            lambda: interpolate(small, [2, 2, 1], "img"),
            lambda: F.interpolate(small[None], scale_factor=(2, 2, 1), mode="trilinear")[0],
        ),
        (
            "mask u8 2048^2x1 down (2,2,1) vs max_pool3d(float)",
            mask,
            lambda: interpolate(mask, [0.5, 0.5, 1], "mask"),
            lambda: (F.max_pool3d(mask.float(), (2, 2, 1)) > 0).to(torch.uint8),
        ),
        (
            "seg i64 1024^2x1 down (2,2,1) mode vs sort-mode",
            seg,
            lambda: interpolate(seg, [0.5, 0.5, 1], "segmentation"),
            lambda: sort_mode_baseline(seg, (2, 2, 1)),
        ),
        (
            "seg i64 512^2x16 down (2,2,2) mode vs sort-mode",
            seg3,
            lambda: interpolate(seg3, 0.5, "segmentation"),
            lambda: sort_mode_baseline(seg3, (2, 2, 2)),
        ),
        (
            "seg i64 1024^2x1 up (2,2,1) vs repeat_interleave",
            seg,
            lambda: interpolate(seg, [2, 2, 1], "segmentation"),
            lambda: seg.repeat_interleave(2, 1).repeat_interleave(2, 2),
        ),
    ]
    for name, data, ours, baseline in cases:
        megabytes = data.numel() * data.element_size() / 1e6
        t_ours = timed(ours, repeats)
        t_base = timed(baseline, repeats)
        print(
            f"{name:56s} ours {megabytes / t_ours:7.0f} MB/s  "
            f"baseline {megabytes / t_base:7.0f} MB/s  ratio {t_base / t_ours:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per case, both sides")
    parser.add_argument("--repeats", type=int, default=5, help="calls per case in --all")
    parser.add_argument("--all", action="store_true", help="also the torch-baseline table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, tinybrain {tinybrain_version()}, threads {args.threads}")
    tinybrain_table(args.rounds, args.seconds)
    if args.all:
        print()
        torch_table(args.repeats)


def tinybrain_version() -> str:
    from importlib.metadata import version

    return version("tinybrain")


if __name__ == "__main__":
    main()
