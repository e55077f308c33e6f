"""Every argument is checked when the flow is built, before anything runs or is written, with a
message that names the argument, the level and the numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from zetta_utils.geometry import BBox3D
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

from .conftest import MakeVolume
from .helpers import RES


def identity(src: Any) -> Any:
    return src


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "divisibility",
        {
            "processing_chunk_sizes": [[64, 64, 1], [24, 24, 1]],
            "processing_crop_pads": [[8, 8, 0], [0, 0, 0]],
            "level_intermediaries_dirs": ["file:///tmp/unused-a", "file:///tmp/unused-b"],
        },
        r"processing_chunk_sizes\[1\] = \(24, 24, 1\) must evenly divide .*processing_chunk_sizes\[0\] \(64, 64, 1\) "
        r"\+ 2 \* processing_crop_pads\[0\] \(8, 8, 0\) \+ 2 \* processing_blend_pads\[0\] \(0, 0, 0\) = \(80, 80, 1\)\. "
        r"Sizes that would work: processing_chunk_sizes\[1\] = \(20, 20, 1\), or processing_chunk_sizes\[0\] = \(56, 56, 1\)",
    ),
    (
        "blend over half the chunk",
        {"processing_chunk_sizes": [[16, 16, 1]], "processing_blend_pads": [[9, 2, 0]]},
        r"processing_blend_pads\[0\] = \(9, 2, 0\) must be at most half of processing_chunk_sizes\[0\] = \(16, 16, 1\) \(in x: 9 > 16 / 2\)",
    ),
    (
        "list length",
        {"processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]], "processing_crop_pads": [[0, 0, 0]]},
        r"`processing_crop_pads` has 1 entries but there are 2 levels",
    ),
    (
        "modes length",
        {"processing_chunk_sizes": [[16, 16, 1]], "processing_blend_modes": ["linear", "linear"]},
        r"`processing_blend_modes` has 2 entries but there are 1 levels",
    ),
    ("unknown mode", {"processing_blend_modes": "cubic"}, r"processing_blend_modes\[0\]` must be one of linear, quadratic, bump, max, defer, got 'cubic'"),
    (
        "defer below the top",
        {"processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]], "processing_blend_modes": ["linear", "defer"]},
        r'`processing_blend_modes\[1\]` is "defer", which only the top level',
    ),
    ("no intermediaries", {"level_intermediaries_dirs": None}, r"`level_intermediaries_dirs` is required"),
    ("dirs length", {"level_intermediaries_dirs": ["file:///tmp/a", "file:///tmp/b"]}, r"`level_intermediaries_dirs` has 2 entries but there are 1 levels"),
    ("read-only dir", {"level_intermediaries_dirs": ["https://example.com/x"]}, r"`level_intermediaries_dirs\[0\]` must be writable"),
    (
        "skip with blend",
        {"skip_intermediaries": True, "level_intermediaries_dirs": None, "processing_blend_pads": [[2, 2, 0]]},
        r"skip_intermediaries=True writes results straight into dst, so nothing can be blended: processing_blend_pads\[0\] = \(2, 2, 0\)",
    ),
    (
        "skip with an upper crop",
        {
            "skip_intermediaries": True,
            "level_intermediaries_dirs": None,
            "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
            "processing_crop_pads": [[4, 4, 0], [0, 0, 0]],
        },
        r"allows a crop only at the bottom level: processing_crop_pads\[0\] = \(4, 4, 0\)",
    ),
    (
        "skip with roi_crop_pad",
        {"skip_intermediaries": True, "level_intermediaries_dirs": None, "roi_crop_pad": [1, 0, 0]},
        r"roi_crop_pad = \(1, 0, 0\) must be \(0, 0, 0\)",
    ),
    (
        "skip unaligned",
        {"skip_intermediaries": True, "level_intermediaries_dirs": None, "processing_chunk_sizes": [[12, 12, 1]]},
        r"chunks must be aligned to dst's backend chunks; in x, chunks of processing_chunk_sizes\[0\] = \(12, 12, 1\) .* dst chunks of 8",
    ),
    ("fn and op", {"op": object()}, r"give exactly one of `fn` .* and `op`"),
    ("bad semaphore", {"fn_semaphores": ["gpu"]}, r"fn_semaphores: unknown semaphore 'gpu'"),
    ("gap odd", {"processing_gap": [3, 0, 0]}, r"`processing_gap` must be even in every dim, got \(3, 0, 0\)"),
    (
        "gap with top blend",
        {"processing_gap": [2, 0, 0], "processing_blend_pads": [[2, 2, 0]]},
        r"processing_blend_pads\[0\] = \(2, 2, 0\) must be \(0, 0, 0\)",
    ),
    ("region not whole voxels", {"bbox": BBox3D.from_coords((0.5, 0, 0), (8, 8, 1), RES)}, r"is not a whole number of voxels; set expand_bbox_resolution=True"),
    ("two regions", {"start_coord": [0, 0, 0], "end_coord": [8, 8, 1], "coord_resolution": RES}, r"give the region exactly one way"),
    ("region outside dst", {"bbox": BBox3D.from_coords((0, 0, 0), (80, 8, 1), RES)}, r"is not inside the bounds of `dst`"),
    (
        "not tiled without expansion",
        {"bbox": BBox3D.from_coords((0, 0, 0), (20, 16, 1), RES), "expand_bbox_processing": False},
        r"top-level chunks of \(16, 16, 1\) .* do not tile in x; set expand_bbox_processing=True",
    ),
    ("shrink and expand", {"shrink_processing_chunk": True}, r"shrink_processing_chunk=True and expand_bbox_processing=True exclude each other"),
    ("auto_divisibility with backend", {"auto_divisibility": True, "expand_bbox_backend": True}, r"auto_divisibility cannot be used with expand_bbox_backend"),
    ("reduction chunk too small", {"max_reduction_chunk_size": [8, 8, 1]}, r"`max_reduction_chunk_size` \(8, 8, 1\) must be at least the top-level chunk \(16, 16, 1\)"),
    ("cache level", {"allow_cache_up_to_level": "top"}, r"`allow_cache_up_to_level` must be a level number from 0 \(the smallest\) to 0"),
    ("stack size", {"task_stack_size": 0}, r"`task_stack_size` must be an integer >= 1, got 0"),
    ("ng link without summary", {"verbose": False, "generate_ng_link": True}, r"`generate_ng_link` puts the link in the summary"),
    ("verbose disagrees", {"verbose": True, "print_summary": False}, r"`verbose` and its old name `print_summary` disagree"),
    ("chunk sizes", {"processing_chunk_sizes": [[16, 0, 1]]}, r"`processing_chunk_sizes\[0\]` must be three integers >= 1, got \(16, 0, 1\)"),
    ("crop without op support", {"fn": None, "op": lambda idx, dst: None, "processing_crop_pads": [[1, 1, 0]]}, r"needs an `op` with with_added_crop_pad"),
    ("dst None", {"dst": None}, r"`dst` may be None only with skip_intermediaries=True"),
    # the original's refusals of processing_gap: each of these moves where the gaps fall
    *(
        (
            f"gap with {name}",
            {"processing_gap": [2, 0, 0], "processing_chunk_sizes": [[14, 16, 1]], name: True, **extra},
            rf"a nonzero `processing_gap` \(2, 0, 0\) cannot be used with `{name}`=True",
        )
        for name, extra in (
            ("auto_divisibility", {}),
            ("expand_bbox_backend", {}),
            ("expand_bbox_resolution", {}),
            ("shrink_processing_chunk", {"expand_bbox_processing": False}),
        )
    ),
    (
        "dst_tighten_bounds",
        {"dst_tighten_bounds": True},
        r"`dst_tighten_bounds` is no longer supported .* `info_bbox: #BBOX`",
    ),
    ("op_args", {"op_args": [1]}, r"`op_args` must be empty .* by name in `op_kwargs`"),
    ("top dir None", {"level_intermediaries_dirs": [None]}, r"`level_intermediaries_dirs\[0\]` must be a directory path"),
]


@pytest.mark.parametrize("name, changes, message", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, make_volume: MakeVolume, name: str, changes: dict[str, Any], message: str
) -> None:
    src = make_volume("src", size=(32, 32, 2), chunk=(8, 8, 1))
    dst = make_volume("dst", size=(32, 32, 2), chunk=(8, 8, 1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args: dict[str, Any] = {
        "dst": dst,
        "dst_resolution": RES,
        "bbox": BBox3D.from_coords((0, 0, 0), (32, 32, 2), RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "processing_chunk_sizes": [[16, 16, 1]],
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
        "verbose": False,
    }
    args.update(changes)  # start_coord & co. come on top of the bbox: two ways at once
    with pytest.raises((ValueError, TypeError), match=message):
        build_subchunkable_apply_flow(**args)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_messages_name_the_level_in_a_three_level_setup(make_volume: MakeVolume, tmp_path: Path) -> None:
    dst = make_volume("dst", size=(32, 32, 2), chunk=(8, 8, 1))
    with pytest.raises(ValueError, match=re.escape("processing_chunk_sizes[2] = (5, 5, 1) must evenly divide")):
        build_subchunkable_apply_flow(
            dst=dst,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), (32, 32, 2), RES),
            fn=identity,
            processing_chunk_sizes=[[32, 32, 1], [16, 16, 1], [5, 5, 1]],
            level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 3,
            verbose=False,
        )
