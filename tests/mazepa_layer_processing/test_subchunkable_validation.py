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
        r"processing_chunk_sizes\[1\] = \(24, 24, 1\) must evenly divide "
        r".*processing_chunk_sizes\[0\] \(64, 64, 1\) "
        r"\+ 2 \* processing_crop_pads\[0\] \(8, 8, 0\) \+ 2 \* processing_blend_pads\[0\] \(0, "
        r"0, 0\) = \(80, 80, 1\)\. "
        r"Sizes that would work: processing_chunk_sizes\[1\] = \(20, 20, 1\), or "
        r"processing_chunk_sizes\[0\] = \(56, 56, 1\)",
    ),
    (
        "blend over half the chunk",
        {"processing_chunk_sizes": [[16, 16, 1]], "processing_blend_pads": [[9, 2, 0]]},
        r"processing_blend_pads\[0\] = \(9, 2, 0\) must be at most half of "
        r"processing_chunk_sizes\[0\] = \(16, 16, 1\) \(in x: 9 > 16 / 2\)",
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
    (
        "unknown mode",
        {"processing_blend_modes": "cubic"},
        r"processing_blend_modes\[0\]` must be one of linear, quadratic, bump, max, defer, got "
        r"'cubic'",
    ),
    (
        "defer below the top",
        {
            "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
            "processing_blend_modes": ["linear", "defer"],
        },
        r'`processing_blend_modes\[1\]` is "defer", which only the top level',
    ),
    (
        "no intermediaries",
        {"level_intermediaries_dirs": None},
        r"`level_intermediaries_dirs` is required",
    ),
    (
        "dirs length",
        {"level_intermediaries_dirs": ["file:///tmp/a", "file:///tmp/b"]},
        r"`level_intermediaries_dirs` has 2 entries but there are 1 levels",
    ),
    (
        "read-only dir",
        {"level_intermediaries_dirs": ["https://example.com/x"]},
        r"`level_intermediaries_dirs\[0\]` must be writable",
    ),
    (
        "skip with blend",
        {
            "skip_intermediaries": True,
            "level_intermediaries_dirs": None,
            "processing_blend_pads": [[2, 2, 0]],
        },
        r"skip_intermediaries=True writes results straight into dst, so nothing can be blended: "
        r"processing_blend_pads\[0\] = \(2, 2, 0\)",
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
        {
            "skip_intermediaries": True,
            "level_intermediaries_dirs": None,
            "processing_chunk_sizes": [[12, 12, 1]],
        },
        r"chunks must be aligned to dst's backend chunks; in x, chunks of "
        r"processing_chunk_sizes\[0\] = \(12, 12, 1\) .* dst chunks of 8",
    ),
    ("fn and op", {"op": object()}, r"give exactly one of `fn` .* and `op`"),
    ("bad semaphore", {"fn_semaphores": ["gpu"]}, r"fn_semaphores: unknown semaphore 'gpu'"),
    (
        "gap odd",
        {"processing_gap": [3, 0, 0]},
        r"`processing_gap` must be even in every dim, got \(3, 0, 0\)",
    ),
    (
        "gap with top blend",
        {"processing_gap": [2, 0, 0], "processing_blend_pads": [[2, 2, 0]]},
        r"processing_blend_pads\[0\] = \(2, 2, 0\) must be \(0, 0, 0\)",
    ),
    (
        "region not whole voxels",
        {"bbox": BBox3D.from_coords((0.5, 0, 0), (8, 8, 1), RES)},
        r"is not a whole number of voxels; set expand_bbox_resolution=True",
    ),
    (
        "two regions",
        {"start_coord": [0, 0, 0], "end_coord": [8, 8, 1], "coord_resolution": RES},
        r"give the region exactly one way",
    ),
    (
        "region outside dst",
        {"bbox": BBox3D.from_coords((0, 0, 0), (80, 8, 1), RES)},
        r"is not inside the bounds of `dst`",
    ),
    (
        "not tiled without expansion",
        {"bbox": BBox3D.from_coords((0, 0, 0), (20, 16, 1), RES), "expand_bbox_processing": False},
        r"top-level chunks of \(16, 16, 1\) .* do not tile in x; set expand_bbox_processing=True",
    ),
    (
        "shrink and expand",
        {"shrink_processing_chunk": True},
        r"shrink_processing_chunk=True and expand_bbox_processing=True exclude each other",
    ),
    (
        "auto_divisibility with backend",
        {"auto_divisibility": True, "expand_bbox_backend": True},
        r"auto_divisibility cannot be used with expand_bbox_backend",
    ),
    (
        "reduction chunk too small",
        {"max_reduction_chunk_size": [8, 8, 1]},
        r"`max_reduction_chunk_size` \(8, 8, 1\) must be at least the top-level chunk \(16, 16, "
        r"1\)",
    ),
    (
        "cache level",
        {"allow_cache_up_to_level": "top"},
        r"`allow_cache_up_to_level` must be a level number from 0 \(the smallest\) to 0",
    ),
    ("stack size", {"task_stack_size": 0}, r"`task_stack_size` must be an integer >= 1, got 0"),
    (
        "ng link without summary",
        {"verbose": False, "generate_ng_link": True},
        r"`generate_ng_link` puts the link in the summary",
    ),
    (
        "verbose disagrees",
        {"verbose": True, "print_summary": False},
        r"`verbose` and its old name `print_summary` disagree",
    ),
    (
        "chunk sizes",
        {"processing_chunk_sizes": [[16, 0, 1]]},
        r"`processing_chunk_sizes\[0\]` must be three integers >= 1, got \(16, 0, 1\)",
    ),
    (
        "crop without op support",
        {"fn": None, "op": lambda idx, dst: None, "processing_crop_pads": [[1, 1, 0]]},
        r"needs an `op` with with_added_crop_pad",
    ),
    ("dst None", {"dst": None}, r"`dst` may be None only with skip_intermediaries=True"),
    # the original's refusals of processing_gap: each of these moves where the gaps fall
    *(
        (
            f"gap with {name}",
            {
                "processing_gap": [2, 0, 0],
                "processing_chunk_sizes": [[14, 16, 1]],
                name: True,
                **extra,
            },
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
    (
        "top dir None",
        {"level_intermediaries_dirs": [None]},
        r"`level_intermediaries_dirs\[0\]` must be a directory path",
    ),
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


def test_messages_name_the_level_in_a_three_level_setup(
    make_volume: MakeVolume, tmp_path: Path
) -> None:
    dst = make_volume("dst", size=(32, 32, 2), chunk=(8, 8, 1))
    with pytest.raises(
        ValueError, match=re.escape("processing_chunk_sizes[2] = (5, 5, 1) must evenly divide")
    ):
        build_subchunkable_apply_flow(
            dst=dst,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), (32, 32, 2), RES),
            fn=identity,
            processing_chunk_sizes=[[32, 32, 1], [16, 16, 1], [5, 5, 1]],
            level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 3,
            verbose=False,
        )


SKIP: dict[str, Any] = {"skip_intermediaries": True, "level_intermediaries_dirs": None}
NO_DST: dict[str, Any] = {"dst": None, **SKIP}
TWO_LEVELS: dict[str, Any] = {
    "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
    "level_intermediaries_dirs": ["/tmp/unused-a", "/tmp/unused-b"],
}
# The original's own refusals (its tests/integration/subchunkable/specs/exc/), each a ValueError
# reaching the caller of builder.build, as its tests expect.
ORIGINAL_REFUSALS: dict[str, dict[str, Any]] = {
    "no_bbox_or_coords": {"bbox": None},
    "both_bbox_and_coords": {
        "start_coord": [0, 0, 0],
        "end_coord": [32, 32, 2],
        "coord_resolution": list(RES),
    },
    "both_bbox_and_auto_bbox": {"auto_bbox": True},
    "both_coords_and_auto_bbox": {
        "bbox": None,
        "auto_bbox": True,
        "start_coord": [0, 0, 0],
        "end_coord": [32, 32, 2],
        "coord_resolution": list(RES),
    },
    "no_fn_or_op": {"fn": None},
    "both_fn_and_op": {"op": {"@type": "VolumetricCallableOperation", "fn": identity}},
    "both_fn_semaphores_and_op": {
        "fn": None,
        "op": {"@type": "VolumetricCallableOperation", "fn": identity},
        "fn_semaphores": ["read"],
    },
    "seq_of_seq_not_equal": {**TWO_LEVELS, "processing_crop_pads": [[0, 0, 0]] * 3},
    "generate_ng_link_but_not_print_summary": {
        "generate_ng_link": True,
        "print_summary": False,
        "verbose": None,
    },
    "generate_ng_link_but_not_verbose": {"generate_ng_link": True},
    "level_intermediaries_dirs_not_equal": {
        **TWO_LEVELS,
        "level_intermediaries_dirs": ["/tmp/unused-a"],
    },
    "skip_intermediaries_but_level_intermediaries_dirs": {"skip_intermediaries": True},
    "skip_intermediaries_but_blend_pad": {**SKIP, "processing_blend_pads": [2, 2, 0]},
    "skip_intermediaries_but_crop_pad": {
        **TWO_LEVELS,
        **SKIP,
        "processing_crop_pads": [[2, 2, 0], [0, 0, 0]],
    },
    "skip_intermediaries_but_defer": {**SKIP, "processing_blend_modes": "defer"},
    "skip_intermediaries_but_reduction_worker_type": {**SKIP, "reduction_worker_type": "cpu"},
    "not_skip_intermediaries_but_no_level_intermediaries_dirs": {"level_intermediaries_dirs": None},
    "shrink_processing_chunk_and_expand_bbox_processing": {"shrink_processing_chunk": True},
    "bbox_non_integral_without_expand_bbox_resolution": {
        "bbox": BBox3D.from_coords((0, 0, 0), (31.5, 32, 2), RES)
    },
    "bbox_non_integral_without_expand_bbox_resolution_but_shrink_processing_chunk": {
        "bbox": BBox3D.from_coords((0, 0, 0), (31.5, 32, 2), RES),
        "shrink_processing_chunk": True,
        "expand_bbox_processing": False,
    },
    "auto_divisibility_and_shrink_processing_chunk": {
        "auto_divisibility": True,
        "shrink_processing_chunk": True,
        "expand_bbox_processing": False,
    },
    "auto_divisibility_but_no_expand_bbox_processing": {
        "auto_divisibility": True,
        "expand_bbox_processing": False,
    },
    "auto_divisibility_and_expand_bbox_backend": {
        "auto_divisibility": True,
        "expand_bbox_backend": True,
    },
    "blend_too_large": {"processing_blend_pads": [9, 9, 0]},
    "nondivisible_but_recommendable": {
        **TWO_LEVELS,
        "processing_chunk_sizes": [[16, 16, 1], [6, 6, 1]],
    },
    "nondivisible_and_not_recommendable": {
        **TWO_LEVELS,
        "processing_chunk_sizes": [[16, 16, 1], [7, 7, 1]],
        "processing_crop_pads": [[1, 1, 0], [0, 0, 0]],
    },
    "defer_on_not_toplevel": {**TWO_LEVELS, "processing_blend_modes": ["linear", "defer"]},
    "dst_tighten_bounds": {"dst_tighten_bounds": True},
    "max_reduction_chunk_size_too_small_for_backend_chunk": {
        "processing_chunk_sizes": [[4, 4, 1]],
        "max_reduction_chunk_size": [4, 4, 1],
    },
    "max_reduction_chunk_size_too_small_for_processing_chunk": {
        "max_reduction_chunk_size": [8, 8, 1]
    },
    "no_dst_but_defer": {**NO_DST, "processing_blend_modes": "defer"},
    "no_dst_but_expand_bbox_backend": {**NO_DST, "expand_bbox_backend": True},
    "no_dst_but_max_reduction_chunk_size": {**NO_DST, "max_reduction_chunk_size": [16, 16, 1]},
    "no_dst_but_not_skip_intermediaries": {"dst": None},
    "processing_gap_but_auto_divisibility": {
        "processing_gap": [2, 2, 0],
        "auto_divisibility": True,
    },
    "processing_gap_but_blend_pad_toplevel": {
        "processing_gap": [2, 2, 0],
        "processing_blend_pads": [2, 2, 0],
    },
    "processing_gap_but_expand_bbox_backend": {
        "processing_gap": [2, 2, 0],
        "expand_bbox_backend": True,
    },
    "processing_gap_but_expand_bbox_resolution": {
        "processing_gap": [2, 2, 0],
        "expand_bbox_resolution": True,
    },
    "processing_gap_but_shrink_processing_chunk": {
        "processing_gap": [2, 2, 0],
        "shrink_processing_chunk": True,
        "expand_bbox_processing": False,
    },
    "processing_gap_but_uneven": {"processing_gap": [3, 2, 0]},
}


@pytest.mark.parametrize("name", list(ORIGINAL_REFUSALS))
def test_the_originals_refusals_are_value_errors_through_the_builder(
    tmp_path: Path, make_volume: MakeVolume, name: str
) -> None:
    from zetta_utils import builder

    src = make_volume("src", size=(32, 32, 2), chunk=(8, 8, 1))
    dst = make_volume("dst", size=(32, 32, 2), chunk=(8, 8, 1))
    spec: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "dst": dst,
        "dst_resolution": list(RES),
        "bbox": BBox3D.from_coords((0, 0, 0), (32, 32, 2), RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "processing_chunk_sizes": [[16, 16, 1]],
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
        "verbose": False,
    }
    spec.update(ORIGINAL_REFUSALS[name])
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError):
        builder.build(spec)
    assert sorted(tmp_path.rglob("*")) == before
