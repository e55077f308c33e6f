"""The summary printed before a subchunkable run: which rows it shows for which plan, what they
say, how each level reads its input, and the footer (the numbers are tested with the estimates)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import torch
from rich.console import Console

from zetta_utils.geometry import BBox3D
from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan
from zetta_utils.mazepa_layer_processing.common.summary import print_plan_summary

from .conftest import MakeVolume
from .helpers import RES

SIZE = (32, 32, 2)
TWO_LEVELS: dict[str, Any] = {
    "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
    "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
    "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    "processing_blend_modes": ["linear", "quadratic"],
}
COST_ROWS = ["to read", "to write"]
PIECES = "top-level outputs via intermediaries, then reduction"
TMP = "/nonexistent/tmp"  # building a plan writes nothing


def identity(src: torch.Tensor) -> torch.Tensor:
    return src


def summary(
    make_volume: MakeVolume, generate_ng_link: bool, **kwargs: Any
) -> tuple[list[tuple[str, str]], list[str], str]:
    """The summary's info rows (label, value), its levels' "reads inputs" column, and its
    footer, printed wide enough that nothing wraps."""
    src = make_volume("src", size=SIZE)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    arguments: dict[str, Any] = {
        "dst": dst,
        "dst_resolution": RES,
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "level_intermediaries_dirs": [f"file://{TMP}"] * 2,
        **kwargs,
    }
    plan, facts = make_subchunkable_plan(**arguments)
    out = io.StringIO()
    console = Console(file=out, width=400)
    print_plan_summary(plan, facts, generate_ng_link=generate_ng_link, console=console)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    levels_at = next(i for i, line in enumerate(lines) if "levels (largest first)" in line)
    rows = [tuple(re.split(r"\s{2,}", line.strip(), maxsplit=1)) for line in lines[1:levels_at]]
    reads = [line.split("│")[-2].strip() for line in lines if line.startswith("│")]
    footer = lines[-2] if not lines[-2].startswith("└") else ""
    return [(r[0], r[1]) for r in rows], reads, footer


@pytest.mark.parametrize(
    "kwargs, labels, values, reads, footer",
    [
        (
            {**TWO_LEVELS, "roi_crop_pad": [2, 2, 0]},
            ["requested region", "region", "roi_crop_pad", "dst", "output", "intermediaries"]
            + ["reduction", *COST_ROWS, "intermediaries size", "worker memory", "neuroglancer"],
            {"roi_crop_pad": "(2, 2, 0)", "output": PIECES},
            ["once per chunk (cached)", "from cache"],
            "intermediary files per top-level chunk: 1  allow_cache_up_to_level: 1",
        ),
        (
            {
                "processing_chunk_sizes": [[8, 8, 1]],
                "processing_gap": [2, 2, 0],
                "level_intermediaries_dirs": [f"file://{TMP}"],
            },
            ["requested region", "region", "processing_gap", "dst", "output", "intermediaries"]
            + ["reduction", *COST_ROWS, "intermediaries size", "worker memory", "neuroglancer"],
            {
                "processing_gap": "(2, 2, 0)",
                "reduction": "32 tasks of up to (8, 8, 1) voxels (whole dst chunks of (8, 8, 1))",
            },
            ["per chunk"],
            "intermediary files per top-level chunk: 1  allow_cache_up_to_level: 0",
        ),
        (
            {**TWO_LEVELS, "processing_blend_modes": ["defer", "linear"]},
            ["region", "dst", "output", "intermediaries", *COST_ROWS]
            + ["intermediaries size", "worker memory", "neuroglancer"],
            {"output": "top-level outputs left in the intermediaries (defer): no reduction"},
            ["once per chunk (cached)", "from cache"],
            "intermediary files per top-level chunk: 1  allow_cache_up_to_level: 1",
        ),
        (
            {
                "processing_chunk_sizes": [[16, 16, 1]],
                "dst": None,
                "skip_intermediaries": True,
                "level_intermediaries_dirs": None,
            },
            ["region", "dst", "output", *COST_ROWS, "worker memory"],  # no link without dst
            {
                "dst": "None (the op writes by itself)",
                "output": "bottom-level chunks written straight to dst (skip_intermediaries)",
                "to write": "0 B to dst (0 chunk files)",
            },
            ["per chunk"],
            "allow_cache_up_to_level: 0",
        ),
        (
            {"processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]], "allow_cache_up_to_level": 0},
            ["region", "dst", "output", *COST_ROWS, "worker memory", "neuroglancer"],
            {"output": "top-level chunks written straight to dst (aligned, no overlap)"},
            ["", "per chunk"],
            "allow_cache_up_to_level: 0",
        ),
    ],
    ids=["roi_crop_pad", "processing_gap", "defer", "no dst", "direct"],
)
def test_summary_rows_reads_and_footer(
    make_volume: MakeVolume,
    kwargs: dict[str, Any],
    labels: list[str],
    values: dict[str, str],
    reads: list[str],
    footer: str,
) -> None:
    rows, got_reads, got_footer = summary(make_volume, True, **kwargs)
    assert [label for label, _ in rows] == labels
    assert {label: value for label, value in rows if label in values} == values
    assert got_reads == reads
    assert got_footer == footer


def test_without_a_link_the_rows_end_with_the_workers_memory(make_volume: MakeVolume) -> None:
    rows, _, _ = summary(make_volume, False, **TWO_LEVELS)
    assert rows[-1][0] == "worker memory"
    assert rows[-1][1].startswith("about ") and ", at most " in rows[-1][1]
