"""The subchunkable builders' arguments are declared once (``subchunkable_args``): the public
signatures, the builder's type hints and the per-argument checks all come from that declaration,
and the plan is made in short named stages (``subchunkable_plan``)."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest

from zetta_utils import builder, mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.mazepa_layer_processing import (
    build_postpad_subchunkable_apply_flow,
    build_subchunkable_apply_flow,
)
from zetta_utils.mazepa_layer_processing.common import (
    make_subchunkable_plan,
    subchunkable_args,
    subchunkable_plan,
)
from zetta_utils.mazepa_layer_processing.common.subchunkable_args import (
    PostpadArgs,
    SubchunkableArgs,
)

from .conftest import MakeVolume
from .helpers import RES


def identity(src: Any) -> Any:
    return src


def _declared(cls: Any) -> list[tuple[str, Any, Any]]:
    return [(a.name, a.default, a.type) for a in attrs.fields(cls) if a.init]


def _signature(fn: Any) -> list[tuple[str, Any, Any]]:
    empty = inspect.Parameter.empty
    return [
        (p.name, attrs.NOTHING if p.default is empty else p.default, p.annotation)
        for p in inspect.signature(fn).parameters.values()
    ]


@pytest.mark.parametrize(
    "fn, declaration",
    [
        (build_subchunkable_apply_flow, SubchunkableArgs),
        (make_subchunkable_plan, SubchunkableArgs),
        (build_postpad_subchunkable_apply_flow, PostpadArgs),
    ],
)
def test_signatures_are_the_declarations(fn: Any, declaration: Any) -> None:
    assert _signature(fn) == _declared(declaration)
    kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
    assert kinds == {inspect.Parameter.POSITIONAL_OR_KEYWORD}
    if fn.__name__.startswith("build_"):
        (entry,) = builder.REGISTRY[fn.__name__]
        assert entry.fn is fn


def test_the_postpad_builder_shares_the_declarations_of_the_arguments_it_shares() -> None:
    own = {"dst", "processing_input_sizes", "processing_crop", "processing_blend"}
    own |= {"processing_blend_mode"}
    main = {a.name: a for a in attrs.fields(SubchunkableArgs)}
    for a in attrs.fields(PostpadArgs):
        if a.name in own or not a.init:
            continue
        assert (a.default, a.type, a.validator) == (
            main[a.name].default,
            main[a.name].type,
            main[a.name].validator,
        ), a.name


def test_the_builder_sees_resolved_type_hints() -> None:
    """The builder coerces spec values by the type hints (``[x, y, z]`` to ``Vec3D`` for
    ``start_coord``): they resolve, and are those declared."""
    hints = typing.get_type_hints(build_subchunkable_apply_flow)
    declared = typing.get_type_hints(SubchunkableArgs)
    assert hints["return"] is mazepa.Flow
    assert {k: v for k, v in hints.items() if k != "return"} == {
        a.name: declared[a.name] for a in attrs.fields(SubchunkableArgs) if a.init
    }
    assert Vec3D[int] in typing.get_args(hints["start_coord"])
    postpad = typing.get_type_hints(build_postpad_subchunkable_apply_flow)
    assert postpad["end_coord"] == hints["end_coord"]


def test_rules_normalise_per_level_arguments() -> None:
    args = SubchunkableArgs(
        dst=None,
        dst_resolution=[4, 4, 40],
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        processing_crop_pads=1,
        processing_blend_pads=[[2, 2, 0], [1, 1, 0]],
        processing_blend_modes="linear",
        task_stack_size=None,
    )
    assert args.levels == 2
    assert args.checked["dst_resolution"] == Vec3D(4, 4, 40)
    assert args.checked["processing_chunk_sizes"] == ((16, 16, 1), (8, 8, 1))
    assert args.checked["processing_crop_pads"] == ((1, 1, 1), (1, 1, 1))
    assert args.checked["processing_blend_pads"] == ((2, 2, 0), (1, 1, 0))
    assert args.checked["processing_blend_modes"] == ("linear", "linear")
    assert args.checked["task_stack_size"] == 1
    assert args.checked["allow_cache_up_to_level"] == 1
    single = SubchunkableArgs(None, [4, 4, 40], [8, 8, 1])
    assert single.levels == 1 and single.checked["processing_chunk_sizes"] == ((8, 8, 1),)


def test_rules_run_in_the_order_declared() -> None:
    """Two bad arguments: the one declared first is reported."""
    with pytest.raises(ValueError, match=r"`processing_gap` must be three integers"):
        SubchunkableArgs(
            None, [4, 4, 40], [[8, 8, 1]], processing_gap=[1], roi_crop_pad=[1]
        )
    with pytest.raises(ValueError, match=r"`roi_crop_pad` must be three integers"):
        SubchunkableArgs(None, [4, 4, 40], [[8, 8, 1]], roi_crop_pad=[1])


def test_arguments_may_be_given_by_position_as_declared(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src = make_volume("src", size=(32, 32, 2), chunk=(8, 8, 1))
    dst = make_volume("dst", size=(32, 32, 2), chunk=(8, 8, 1))
    kwargs: dict[str, Any] = {
        "bbox": BBox3D.from_coords((0, 0, 0), (32, 32, 2), RES),
        "fn": identity,
        "op_kwargs": {"src": src},
        "level_intermediaries_dirs": [f"file://{tmp_path}/tmp"],
    }
    positional, _ = make_subchunkable_plan(dst, RES, [[16, 16, 1]], **kwargs)
    named, _ = make_subchunkable_plan(
        dst=dst, dst_resolution=RES, processing_chunk_sizes=[[16, 16, 1]], **kwargs
    )
    assert positional.plan_id == named.plan_id
    flow = build_subchunkable_apply_flow(dst, RES, [[16, 16, 1]], verbose=False, **kwargs)
    assert flow.id == f"subchunkable-{named.plan_id}"


@pytest.mark.parametrize("module", [subchunkable_plan, subchunkable_args])
def test_the_plan_is_made_of_short_named_stages(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text())
    lengths = {
        node.name: node.end_lineno - node.lineno + 1  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }
    assert {name: n for name, n in lengths.items() if n > 65} == {}
