"""Throughput of tensor_ops.interpolate against straightforward torch baselines, same run.

Run by hand: ``python tests/tensor_ops/bench_interpolation.py [--threads N]``. Prints input MB/s
for ours and the baseline and ratio = baseline time / our time (> 1: ours is faster). Not a test:
pytest does not collect it. (Meant for bench/; it lives here because this helper owns only
tests/tensor_ops.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from zetta_utils.tensor_ops import interpolate


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")

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
        t_ours = timed(ours, args.repeats)
        t_base = timed(baseline, args.repeats)
        print(
            f"{name:56s} ours {megabytes / t_ours:7.0f} MB/s  "
            f"baseline {megabytes / t_base:7.0f} MB/s  ratio {t_base / t_ours:5.2f}"
        )


if __name__ == "__main__":
    main()
