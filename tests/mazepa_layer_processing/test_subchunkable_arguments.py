"""The arguments of the original's ``build_subchunkable_apply_flow`` and
``build_postpad_subchunkable_apply_flow`` are accepted here by the same names, with the same
meanings; the deprecated ones are refused with the original's reason."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.mazepa_layer_processing import (
    build_postpad_subchunkable_apply_flow,
    build_subchunkable_apply_flow,
)
from zetta_utils.mazepa_layer_processing.common import SubchunkablePlan, make_subchunkable_plan

from .conftest import MakeVolume
from .helpers import RES, random_array, read_array, write_array

# The original's signatures (zetta_utils/mazepa_layer_processing/common/subchunkable_apply_flow.py
# of github ZettaAI/zetta_utils), argument by argument with their defaults: the union of two
# versions, the newer adding ``exact_bbox_output``, ``task_stack_size`` and ``verbose`` (the new
# name of ``print_summary``).
ORIGINAL_ARGS: dict[str, dict[str, Any]] = {
    "build_subchunkable_apply_flow": {
        "dst": inspect.Parameter.empty,
        "dst_resolution": inspect.Parameter.empty,
        "processing_chunk_sizes": inspect.Parameter.empty,
        "processing_gap": (0, 0, 0),
        "processing_crop_pads": (0, 0, 0),
        "processing_blend_pads": (0, 0, 0),
        "processing_blend_modes": "quadratic",
        "level_intermediaries_dirs": None,
        "skip_intermediaries": False,
        "max_reduction_chunk_size": None,
        "expand_bbox_resolution": False,
        "expand_bbox_backend": False,
        "expand_bbox_processing": True,
        "exact_bbox_output": False,
        "shrink_processing_chunk": False,
        "auto_divisibility": False,
        "allow_cache_up_to_level": None,
        "op_worker_type": None,
        "reduction_worker_type": None,
        "task_stack_size": None,
        "print_summary": True,
        "verbose": True,
        "generate_ng_link": False,
        "fn": None,
        "fn_semaphores": None,
        "op": None,
        "op_args": (),
        "op_kwargs": None,
        "bbox": None,
        "start_coord": None,
        "end_coord": None,
        "coord_resolution": None,
        "auto_bbox": False,
        "dst_tighten_bounds": False,
    },
    "build_postpad_subchunkable_apply_flow": {
        "dst": inspect.Parameter.empty,
        "dst_resolution": inspect.Parameter.empty,
        "processing_input_sizes": inspect.Parameter.empty,
        "processing_crop": (0, 0, 0),
        "processing_blend": (0, 0, 0),
        "processing_blend_mode": "quadratic",
        "level_intermediaries_dirs": None,
        "max_reduction_chunk_size": None,
        "expand_bbox_processing": True,
        "expand_bbox_resolution": False,
        "allow_cache_up_to_level": None,
        "print_summary": True,
        "verbose": True,
        "generate_ng_link": False,
        "op_worker_type": None,
        "reduction_worker_type": None,
        "task_stack_size": None,
        "fn": None,
        "fn_semaphores": None,
        "op": None,
        "op_args": (),
        "op_kwargs": None,
        "bbox": None,
        "start_coord": None,
        "end_coord": None,
        "coord_resolution": None,
        "auto_bbox": False,
        "dst_tighten_bounds": False,
    },
}
# Defaults that differ in spelling only: ``verbose`` and ``print_summary`` default to None here,
# meaning True unless the other one says otherwise.
SAME_MEANING_DEFAULTS = {"print_summary": None, "verbose": None}

SIZE = (32, 32, 2)


def identity(src: Any) -> Any:
    return src


@pytest.mark.parametrize("name", sorted(ORIGINAL_ARGS))
def test_every_argument_of_the_original_is_registered_with_its_default(name: str) -> None:
    entries = builder.REGISTRY[name]
    assert len(entries) == 1
    params = inspect.signature(entries[0].fn).parameters
    assert not [p for p in params.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    for arg, default in ORIGINAL_ARGS[name].items():
        assert arg in params, f"{name} lacks {arg}"
        assert params[arg].default == SAME_MEANING_DEFAULTS.get(arg, default), arg


def _sources(make_volume: MakeVolume) -> tuple[Any, Any, np.ndarray]:
    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    data = random_array((1, *SIZE), "uint8", seed=5)
    write_array(src, data)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    return src, dst, data


def test_a_spec_naming_every_argument_of_the_original_builds_and_runs(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    """Every argument by name through the builder (as a user's spec gives them), each at a value
    that works, the region given as coordinates."""
    _sources(make_volume)
    layer = {"@type": "build_ts_layer"}
    target: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "dst": {**layer, "path": f"file://{tmp_path}/dst"},
        "dst_resolution": list(RES),
        "processing_chunk_sizes": [[16, 16, 1], [10, 10, 1]],
        "processing_gap": [0, 0, 0],
        "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
        "processing_blend_pads": [[2, 2, 0], [1, 1, 0]],
        "processing_blend_modes": ["linear", "quadratic"],
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp", None],
        "skip_intermediaries": False,
        "max_reduction_chunk_size": [32, 32, 1],
        "expand_bbox_resolution": True,
        "expand_bbox_backend": False,
        "expand_bbox_processing": True,
        "exact_bbox_output": False,
        "shrink_processing_chunk": False,
        "auto_divisibility": False,
        "allow_cache_up_to_level": 1,
        "op_worker_type": None,
        "reduction_worker_type": None,
        "task_stack_size": 1,
        "print_summary": False,
        "verbose": False,
        "generate_ng_link": False,
        "fn": {"@type": "lambda", "lambda_str": "lambda src: src"},
        "fn_semaphores": ["read", "cpu"],
        "op": None,
        "op_args": [],
        "op_kwargs": {"src": {**layer, "path": f"file://{tmp_path}/src"}},
        "bbox": None,
        "start_coord": [0, 0, 0],
        "end_coord": list(SIZE),
        "coord_resolution": list(RES),
        "auto_bbox": False,
        "dst_tighten_bounds": False,
    }
    assert set(target) - {"@type"} == set(ORIGINAL_ARGS["build_subchunkable_apply_flow"])
    spec = {"@type": "mazepa.execute", "show_progress": False, "target": target}
    builder.build(json.loads(json.dumps(spec)))
    src = builder.build({**layer, "path": f"file://{tmp_path}/src"})
    dst = builder.build({**layer, "path": f"file://{tmp_path}/dst"})
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), read_array(src, (0, 0, 0), SIZE))


@pytest.mark.parametrize("name", sorted(ORIGINAL_ARGS))
def test_dst_tighten_bounds_is_refused_with_what_replaces_it(
    tmp_path: Path, make_volume: MakeVolume, name: str
) -> None:
    src, dst, _ = _sources(make_volume)
    sizes = (
        {"processing_chunk_sizes": [[16, 16, 1]]}
        if name == "build_subchunkable_apply_flow"
        else {"processing_input_sizes": [[16, 16, 1]]}
    )
    spec = {
        "@type": name,
        "dst": dst,
        "dst_resolution": list(RES),
        **sizes,
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
        "dst_tighten_bounds": True,
    }
    with pytest.raises(
        ValueError, match=r"`dst_tighten_bounds` is no longer supported.*`info_bbox: #BBOX`"
    ):
        builder.build(spec)
    spec["dst_tighten_bounds"] = False
    builder.build(spec)  # False is accepted, as in the original


@pytest.mark.parametrize("cache_level, prefetch_level", [(-1, None), (0, None), (1, 0), (5, 0)])
def test_allow_cache_up_to_level_past_either_end_means_the_nearest_level(
    tmp_path: Path, make_volume: MakeVolume, cache_level: int, prefetch_level: int | None
) -> None:
    src, dst, _ = _sources(make_volume)
    plan, facts = make_subchunkable_plan(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=identity,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        allow_cache_up_to_level=cache_level,
    )
    assert plan.prefetch_level == prefetch_level
    assert facts["allow_cache_up_to_level"] == min(max(cache_level, 0), 1)


def _plans(
    tmp_path: Path, src: Any, dst: Any, shared: dict[str, Any]
) -> tuple[SubchunkablePlan, SubchunkablePlan]:
    postpad = build_postpad_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        processing_input_sizes=[[28, 28, 1], [12, 12, 1]],
        processing_crop=[1, 1, 0],
        processing_blend=[2, 2, 0],
        processing_blend_mode="linear",
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp", None],
        print_summary=False,
        **shared,
    )
    # the same run spelled out: chunk = input - 2 * blend (- 2 * crop at the bottom); the top
    # chunk, 24, becomes 20 so that its padded 24 holds whole bottom chunks of 6
    direct = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        processing_chunk_sizes=[[24, 24, 1], [6, 6, 1]],
        processing_crop_pads=[[0, 0, 0], [1, 1, 0]],
        processing_blend_pads=[2, 2, 0],
        processing_blend_modes="linear",
        auto_divisibility=True,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp", None],
        print_summary=False,
        **shared,
    )
    assert postpad.id == direct.id
    return postpad.args[0], direct.args[0]


@pytest.mark.parametrize(
    "shared",
    [
        {"bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES), "fn": identity},
        {
            "start_coord": [2.5, 0, 0],
            "end_coord": [30, 32, 2],
            "coord_resolution": RES,
            "expand_bbox_resolution": True,
            "max_reduction_chunk_size": [32, 32, 1],
            "allow_cache_up_to_level": 0,
            "op_worker_type": "gpu",
            "reduction_worker_type": "cpu",
            "fn": identity,
            "fn_semaphores": ["cuda"],
        },
        {"auto_bbox": True, "expand_bbox_processing": True, "fn": identity},
    ],
    ids=["bbox", "coords-and-options", "auto_bbox"],
)
def test_postpad_passes_each_of_its_arguments_on_with_its_meaning(
    tmp_path: Path, make_volume: MakeVolume, shared: dict[str, Any]
) -> None:
    src, dst, _ = _sources(make_volume)
    postpad, direct = _plans(tmp_path, src, dst, shared)
    for field in attrs.fields(SubchunkablePlan):
        a, b = getattr(postpad, field.name), getattr(direct, field.name)
        if field.name == "store":
            a, b = a.path, b.path
        assert a == b, field.name
    if "op_worker_type" in shared:
        assert (postpad.op_worker_type, postpad.reduction_worker_type) == ("gpu", "cpu")
        assert postpad.op.fn_semaphores == ("cuda",)


def test_postpad_runs_with_an_op(tmp_path: Path, make_volume: MakeVolume) -> None:
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing import VolumetricCallableOperation

    src, dst, data = _sources(make_volume)
    flow = build_postpad_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        processing_input_sizes=[[20, 20, 1], [10, 10, 1]],
        processing_crop=[1, 1, 0],
        processing_blend=[1, 1, 0],
        op=VolumetricCallableOperation(identity),
        op_kwargs={"src": src},
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        print_summary=False,
    )
    mazepa.execute(flow, show_progress=False)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"skip_intermediaries": True}, r"skip_intermediaries"),
        ({"processing_gap": [2, 2, 0]}, r"processing_gap"),
        ({"processing_chunk_sizes": [[16, 16, 1]]}, r"processing_chunk_sizes"),
        (
            {"processing_blend_mode": ["linear", "linear"]},
            r"`processing_blend_mode` must be one blend mode for all levels",
        ),
        (
            {"processing_input_sizes": [[24, 24, 1], [8, 8, 1]], "expand_bbox_processing": False},
            r"build_postpad_subchunkable_apply_flow rounds the upper `processing_input_sizes` "
            r"down .* needs expand_bbox_processing=True",
        ),
    ],
    ids=[
        "skip_intermediaries",
        "processing_gap",
        "processing_chunk_sizes",
        "mode list",
        "no expansion",
    ],
)
def test_postpad_refuses_what_it_sets_itself(
    tmp_path: Path, make_volume: MakeVolume, changes: dict[str, Any], message: str
) -> None:
    src, dst, _ = _sources(make_volume)
    spec: dict[str, Any] = {
        "@type": "build_postpad_subchunkable_apply_flow",
        "dst": dst,
        "dst_resolution": list(RES),
        "processing_input_sizes": [[16, 16, 1]],
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
        "print_summary": False,
        **changes,
    }
    with pytest.raises((ValueError, TypeError), match=message):
        builder.build(spec)


# --- VolumetricCallableOperation's res_change_mult -----------------------------------------------


@pytest.mark.parametrize(
    "sizes",
    [
        {"processing_chunk_sizes": [[8, 8, 1]], "skip_intermediaries": True},
        {
            "processing_chunk_sizes": [[8, 8, 1], [4, 4, 1]],
            "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
            "processing_blend_pads": [[2, 2, 0], [1, 1, 0]],
        },
    ],
    ids=["straight to dst", "cropped and blended"],
)
def test_res_change_mult_reads_inputs_at_dst_resolution_over_it(
    tmp_path: Path, make_volume: MakeVolume, sizes: dict[str, Any]
) -> None:
    """An op ``{"@type": "VolumetricCallableOperation", res_change_mult: [2, 2, 1]}``: ``fn``
    gets ``src`` at (4, 4, 40) over each chunk (and its crop) of a (8, 8, 40) ``dst``."""
    from zetta_utils import mazepa
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    data = random_array((1, *SIZE), "uint8", seed=6)
    write_array(src, data)
    coarse = tuple(r * m for r, m in zip(RES, (2, 2, 1), strict=True))
    dst = build_ts_layer(
        f"file://{tmp_path}/dst",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(coarse)],
        info_chunk_size=[4, 4, 1],
        info_dataset_size=[16, 16, 2],
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    spec: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "dst": dst,
        "dst_resolution": list(coarse),
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "op": {
            "@type": "VolumetricCallableOperation",
            "fn": lambda src: src[:, ::2, ::2, :],
            "res_change_mult": [2, 2, 1],
        },
        "op_kwargs": {"src": src},
        "print_summary": False,
        **sizes,
    }
    if not sizes.get("skip_intermediaries"):
        spec["level_intermediaries_dirs"] = [f"file://{tmp_path}/tmp"] * len(
            sizes["processing_chunk_sizes"]
        )
    mazepa.execute(builder.build(spec), show_progress=False)
    out = dst[VolumetricIndex.from_coords((0, 0, 0), (16, 16, 2), coarse)].numpy()
    assert np.array_equal(out, data[:, ::2, ::2, :])


def test_res_change_mult_must_keep_the_crop_whole() -> None:
    from zetta_utils.mazepa_layer_processing import VolumetricCallableOperation

    with pytest.raises(ValueError, match=r"res_change_mult: expected three positive numbers"):
        builder.build(
            {"@type": "VolumetricCallableOperation", "fn": identity, "res_change_mult": [0, 1, 1]}
        )
    op = builder.build(
        {"@type": "VolumetricCallableOperation", "fn": identity, "res_change_mult": [0.5, 0.5, 1]}
    )
    assert isinstance(op, VolumetricCallableOperation)
    with pytest.raises(
        ValueError,
        match=(
            r"crop_pad \(1, 1, 0\) with res_change_mult \(0.5, 0.5, 1\) is \(0.5, 0.5, 0\) "
            r"voxels of input"
        ),
    ):
        op.with_added_crop_pad([1, 1, 0])


# --- exact_bbox_output ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, region",
    [
        ({"processing_chunk_sizes": [[16, 16, 1]]}, ((5, 3, 0), (13, 11, 1))),
        (
            {
                "processing_chunk_sizes": [[16, 16, 1], [4, 4, 1]],
                "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
            },
            ((5, 3, 0), (13, 11, 2)),
        ),
        (
            {"processing_chunk_sizes": [[16, 16, 1]]},
            ((0, 0, 0), (12, 12, 1)),
        ),  # chunk starts on dst's grid, the end not
    ],
    ids=["one level", "two levels, cropped", "aligned start"],
)
def test_exact_bbox_output_writes_only_the_region(
    tmp_path: Path,
    make_volume: MakeVolume,
    sizes: dict[str, Any],
    region: tuple[tuple[int, ...], tuple[int, ...]],
) -> None:
    """The region is processed grown to whole chunks, but only the region is written: dst keeps
    what it held around it, within the dst chunks on the region's edge too; without
    exact_bbox_output the grown region is written."""
    from zetta_utils import mazepa

    src, dst, data = _sources(make_volume)
    outputs = {}
    for exact in (True, False):
        dst = make_volume(f"dst_{exact}", size=SIZE, chunk=(8, 8, 1))
        write_array(dst, np.full((1, *SIZE), 9, dtype=np.uint8))
        flow = builder.build(
            {
                "@type": "build_subchunkable_apply_flow",
                "dst": dst,
                "dst_resolution": list(RES),
                "bbox": BBox3D.from_coords(region[0], region[1], RES),
                "fn": identity,
                "op_kwargs": {"src": src},
                "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"]
                * len(sizes["processing_chunk_sizes"]),
                "exact_bbox_output": exact,
                "verbose": False,
                **sizes,
            }
        )
        mazepa.execute(flow, show_progress=False)
        outputs[exact] = read_array(dst, (0, 0, 0), SIZE)
    inside = (slice(None), *(slice(a, b) for a, b in zip(region[0], region[1], strict=True)))
    expected = np.full_like(data, 9)
    expected[inside] = data[inside]
    assert np.array_equal(outputs[True], expected)
    assert not np.array_equal(outputs[False], expected)  # the grown region was written


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"processing_blend_pads": [2, 2, 0]},
            r"`exact_bbox_output` is not supported with blending .* processing_blend_pads\[0\] = "
            r"\(2, 2, 0\)",
        ),
        (
            {"skip_intermediaries": True, "level_intermediaries_dirs": None},
            r"`exact_bbox_output` .* cannot be used with skip_intermediaries=True",
        ),
        (
            {"dst": None, "skip_intermediaries": True, "level_intermediaries_dirs": None},
            r"`exact_bbox_output`",
        ),
    ],
    ids=["blend", "skip_intermediaries", "no dst"],
)
def test_exact_bbox_output_is_refused_where_the_original_refuses_it(
    tmp_path: Path, make_volume: MakeVolume, changes: dict[str, Any], message: str
) -> None:
    src, dst, _ = _sources(make_volume)
    spec: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "dst": dst,
        "dst_resolution": list(RES),
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "processing_chunk_sizes": [[16, 16, 1]],
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
        "exact_bbox_output": True,
        "verbose": False,
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        builder.build(spec)


# --- task_stack_size: stacked bottom-level chunks ------------------------------------------------


def chunk_dependent(src: torch.Tensor) -> torch.Tensor:
    """Each chunk's output depends on its own first voxel; works on one chunk (C, X, Y, Z) and on
    a stack of them (N, C, X, Y, Z) alike."""
    return src * 0.5 + src[..., :1, :1, :1]


STACK_CONFIGS: dict[str, dict[str, Any]] = {
    "one level, blended": {
        "processing_chunk_sizes": [[16, 16, 1]],
        "processing_blend_pads": [2, 2, 0],
    },
    "one level, straight to dst": {"processing_chunk_sizes": [[16, 16, 1]]},
    "one level, skip_intermediaries": {
        "processing_chunk_sizes": [[16, 16, 1]],
        "skip_intermediaries": True,
    },
    "two levels, cropped and blended": {
        "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
        "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
        "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    },
    "two levels, skip_intermediaries": {
        "processing_chunk_sizes": [[16, 16, 2], [8, 8, 1]],
        "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
        "skip_intermediaries": True,
    },
}


@pytest.mark.parametrize("config", list(STACK_CONFIGS))
def test_task_stack_size_runs_fn_on_stacked_bottom_chunks(
    tmp_path: Path, make_volume: MakeVolume, config: str
) -> None:
    """As the original's stacked operations: fn gets N chunks' inputs stacked (N, C, X, Y, Z) and
    returns their outputs likewise; the output is the same bytes as one chunk at a time."""
    from zetta_utils import mazepa

    src = make_volume("src", size=SIZE, chunk=(8, 8, 1), dtype="float32")
    write_array(src, random_array((1, *SIZE), "float32", seed=7))
    kwargs = dict(STACK_CONFIGS[config])
    levels = len(kwargs["processing_chunk_sizes"])
    if not kwargs.get("skip_intermediaries"):
        kwargs["level_intermediaries_dirs"] = [f"file://{tmp_path}/tmp"] * levels
    shapes: list[tuple[int, ...]] = []

    def fn(src: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(src.shape))
        return chunk_dependent(src)

    outputs = {}
    for stack in (1, 3):
        shapes.clear()
        dst = make_volume(f"dst{stack}", size=SIZE, chunk=(8, 8, 1), dtype="float32")
        flow = build_subchunkable_apply_flow(
            dst=dst,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            fn=fn,
            op_kwargs={"src": src},
            task_stack_size=stack,
            verbose=False,
            **kwargs,
        )
        tasks = [
            t
            for item in flow.iter_items()
            if isinstance(item, list)
            for t in item
            if t.operation_name == "fn"
        ]
        mazepa.execute(flow, show_progress=False)
        outputs[stack] = read_array(dst, (0, 0, 0), SIZE)
        if stack == 1:
            assert {len(s) for s in shapes} == {4}
            chunks = len(shapes)
        else:
            assert {len(s) for s in shapes} == {5}
            assert sum(s[0] for s in shapes) == chunks  # every bottom chunk once
            top = kwargs["processing_chunk_sizes"][0]
            per_parent = (
                chunks // math.prod(n // c for n, c in zip(SIZE, top, strict=True))
                if levels == 2
                else chunks
            )
            full, rest = divmod(per_parent, 3)
            assert sorted(s[0] for s in shapes) == sorted(
                ([3] * full + ([rest] if rest else [])) * (chunks // per_parent)
            )
            # one level: a task holds 3 chunks; two: one top-level chunk, as in the original
            assert [len(t.args[0]) for t in tasks][:2] == ([3, 3] if levels == 1 else [1, 1])
    assert outputs[1].tobytes() == outputs[3].tobytes()


def test_task_stack_size_with_dst_none(
    tmp_path: Path, make_volume: MakeVolume, capsys: pytest.CaptureFixture[str]
) -> None:
    from zetta_utils import mazepa

    src, _, _ = _sources(make_volume)
    flow = build_subchunkable_apply_flow(
        dst=None,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=lambda src: print(tuple(src.shape)),
        op_kwargs={"src": src},
        processing_chunk_sizes=[[32, 32, 1], [8, 8, 1]],
        skip_intermediaries=True,
        task_stack_size=16,
        verbose=False,
    )
    mazepa.execute(flow, show_progress=False)
    assert capsys.readouterr().out.splitlines() == ["(16, 1, 8, 8, 1)"] * 2


@attrs.frozen
class StackableAddOne:
    """An op with the original's stackable methods (read, processing_fn, write)."""

    crop_pad: tuple[int, int, int] = (0, 0, 0)

    def with_added_crop_pad(self, crop_pad: Any) -> StackableAddOne:
        return StackableAddOne(
            tuple(a + int(b) for a, b in zip(self.crop_pad, crop_pad, strict=True))
        )  # type: ignore[arg-type]

    def read(
        self, idx: VolumetricIndex, src: Any, use_semaphore: bool = True
    ) -> dict[str, torch.Tensor]:
        return {"src": src[idx.padded(self.crop_pad)]}

    def processing_fn(self, src: torch.Tensor) -> torch.Tensor:
        return src + 1

    def write(
        self,
        idx: VolumetricIndex,
        dst: Any,
        tensor: torch.Tensor,
        src: Any,
        use_semaphore: bool = True,
    ) -> None:
        cx, cy, cz = self.crop_pad
        dst[idx] = tensor[
            :, cx : tensor.shape[1] - cx, cy : tensor.shape[2] - cy, cz : tensor.shape[3] - cz
        ]

    def __call__(self, idx: VolumetricIndex, dst: Any, src: Any) -> None:
        self.write(idx, dst, self.processing_fn(**self.read(idx, src)), src)


@pytest.mark.parametrize(
    "skip", [False, True], ids=["through intermediaries", "skip_intermediaries"]
)
def test_task_stack_size_with_a_stackable_op(
    tmp_path: Path, make_volume: MakeVolume, skip: bool
) -> None:
    from zetta_utils import mazepa

    src, dst, data = _sources(make_volume)
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        op=StackableAddOne(),
        op_kwargs={"src": src},
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        processing_crop_pads=[[0, 0, 0], [1, 1, 0]],
        task_stack_size=4,
        verbose=False,
        **(
            {"skip_intermediaries": True}
            if skip
            else {"level_intermediaries_dirs": [f"file://{tmp_path}/tmp"] * 2}
        ),
    )
    mazepa.execute(flow, show_progress=False)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data + 1)


def test_task_stack_size_needs_a_stackable_op(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, dst, _ = _sources(make_volume)
    with pytest.raises(
        TypeError,
        match=r"`task_stack_size` = 2 runs .* has no read\(\), processing_fn\(\), write\(\)",
    ):
        build_subchunkable_apply_flow(
            dst=dst,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            op=lambda idx, dst, src: None,
            op_kwargs={"src": src},
            processing_chunk_sizes=[[16, 16, 1]],
            skip_intermediaries=True,
            task_stack_size=2,
            verbose=False,
        )
