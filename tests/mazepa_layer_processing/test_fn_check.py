"""``fn`` / ``op`` against ``op_kwargs``: checked when the flow is built, not in its first task."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import pytest

from zetta_utils import builder
from zetta_utils.builder import BuilderError
from zetta_utils.builder.building import ArgumentError
from zetta_utils.mazepa_layer_processing.common.fn_check import check_fn_arguments
from zetta_utils.mazepa_layer_processing.common.volumetric_callable_operation import (
    VolumetricCallableOperation,
)

from .conftest import MakeVolume
from .helpers import RES

KW = {"src": object(), "mask": object()}


def takes_src_mask(src: Any, mask: Any) -> Any:
    return src


def takes_src_with_default(src: Any, mask: Any = None, scale: float = 1.0) -> Any:
    return src


def takes_anything(*args: Any, **kwargs: Any) -> Any:
    return None


def takes_src_only(src: Any) -> Any:
    return src


def takes_by_position(src: Any, /, mask: Any) -> Any:
    return src


@builder.register("tests_fn_check.scaled")
def scaled(src: Any, factor: float, offset: float = 0.0) -> Any:
    return src


class GoodOp:
    def __call__(self, idx: Any, dst: Any, src: Any, mask: Any = None) -> None: ...


class OpWithoutDst:
    def __call__(self, idx: Any, src: Any, mask: Any) -> None: ...


class StackableOp:
    def __call__(self, idx: Any, dst: Any, **kwargs: Any) -> None: ...

    def read(self, idx: Any, src: Any, mask: Any, use_semaphore: bool = True) -> dict[str, Any]:
        return {}

    def processing_fn(self, **kwargs: Any) -> Any: ...

    def write(
        self, idx: Any, dst: Any, data: Any, src: Any, use_semaphore: bool = True
    ) -> None: ...


@pytest.mark.parametrize(
    "fn",
    [
        takes_src_mask,
        takes_src_with_default,
        takes_anything,
        lambda src, mask, extra=3: src,
        functools.partial(takes_src_with_default, scale=2.0),
        max,  # a callable whose signature cannot be read is not checked
    ],
)
def test_matching_functions_pass(fn: Any) -> None:
    check_fn_arguments(fn, None, KW)


def test_an_extra_name_is_blamed_on_its_key() -> None:
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(takes_src_only, None, KW)
    assert info.value.argument == "op_kwargs.mask"
    assert str(info.value).startswith("`fn` '")
    assert str(info.value).endswith(
        "test_fn_check.takes_src_only' cannot be called as "
        "fn(**op_kwargs): op_kwargs gives 'mask', which it does not take; its parameters: src"
    )
    assert isinstance(info.value, TypeError)


def test_missing_and_extra_names_with_a_suggestion() -> None:
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(takes_src_mask, None, {"src": 1, "msk": 2})
    assert info.value.argument == "op_kwargs"
    assert str(info.value).endswith(
        "cannot be called as fn(**op_kwargs): op_kwargs gives 'msk', which it does not take "
        "(did you mean 'mask'?); it needs 'mask', which op_kwargs does not give; its parameters: "
        "src, mask"
    )


def test_positional_only_parameters_cannot_come_from_op_kwargs() -> None:
    with pytest.raises(ArgumentError, match="it takes 'src' only by position, never by name"):
        check_fn_arguments(takes_by_position, None, KW)


def test_a_partial_spec_is_checked_without_what_its_spec_gives() -> None:
    partial = builder.build({"@type": "tests_fn_check.scaled", "@mode": "partial", "factor": 2})
    assert (
        str(inspect.signature(partial))
        == "(src: 'Any', *, factor: 'float' = '<from the spec>', offset: 'float' = 0.0) -> 'Any'"
    )
    check_fn_arguments(partial, None, {"src": 1})
    check_fn_arguments(partial, None, {"src": 1, "factor": 3})  # call-time arguments override
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(partial, None, {"img": 1})
    assert str(info.value) == (
        "`fn` 'tests_fn_check.scaled' (partial) cannot be called as fn(**op_kwargs): op_kwargs "
        "gives 'img', which it does not take (did you mean 'src'?); it needs 'src', which "
        "op_kwargs does not give; its parameters: src, factor, offset"
    )


def test_ops_are_called_with_idx_and_dst_first() -> None:
    check_fn_arguments(None, GoodOp(), {"src": 1})
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(None, OpWithoutDst(), KW)
    assert str(info.value) == (
        "`op` a OpWithoutDst object cannot be called as op(idx, dst, **op_kwargs): "
        "'src' is already its positional argument; op_kwargs gives it again; its parameters: idx, "
        "src, mask"
    )


def test_a_callable_operation_given_as_op_has_its_fn_checked() -> None:
    check_fn_arguments(None, VolumetricCallableOperation(takes_src_mask), KW)
    with pytest.raises(ArgumentError, match=r"`fn` '.*takes_src_only' cannot be called"):
        check_fn_arguments(None, VolumetricCallableOperation(takes_src_only), KW)


def test_stacked_ops_have_read_and_write_checked() -> None:
    check_fn_arguments(None, StackableOp(), KW)  # one chunk a call: only __call__
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(None, StackableOp(), KW, stacked=True)
    assert "StackableOp.write' cannot be called as op.write(idx, dst, data, **op_kwargs)" in str(
        info.value
    )
    assert "op_kwargs gives 'mask', which it does not take" in str(info.value)


def _spec(tmp_path: Path, lambda_str: str, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "bbox": {
            "@type": "BBox3D.from_coords",
            "start_coord": [0, 0, 0],
            "end_coord": [32, 32, 2],
            "resolution": list(RES),
        },
        "dst_resolution": list(RES),
        "processing_chunk_sizes": [[16, 16, 1]],
        "skip_intermediaries": True,
        "fn": {"@type": "lambda", "lambda_str": lambda_str},
        "op_kwargs": {"src": {"@type": "build_ts_layer", "path": str(tmp_path / "src")}},
        "dst": {"@type": "build_ts_layer", "path": str(tmp_path / "dst")},
    }
    spec.update(changes)
    return spec


def test_builder_refuses_a_mismatched_lambda_before_anything_runs(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    make_volume("src", size=(32, 32, 2), chunk=(16, 16, 1))
    make_volume("dst", size=(32, 32, 2), chunk=(16, 16, 1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    builder.build(_spec(tmp_path, "lambda src: src"))  # the matching one builds
    with pytest.raises(BuilderError) as info:
        builder.build({"target": _spec(tmp_path, "lambda img: img")})
    assert isinstance(info.value, TypeError)
    assert str(info.value) == (
        "at `target.op_kwargs`: `fn` 'lambda img: img' cannot be called as fn(**op_kwargs): "
        "op_kwargs gives 'src', which it does not take (did you mean 'img'?); it needs 'img', "
        "which op_kwargs does not give; its parameters: img"
    )
    with pytest.raises(BuilderError) as info:
        builder.build(_spec(tmp_path, "lambda src: src", op_kwargs={
            "src": {"@type": "build_ts_layer", "path": str(tmp_path / "src")}, "scale": 2}))
    assert info.value.spec_path == "op_kwargs.scale"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


class ReadWithoutSemaphore(StackableOp):
    def read(self, idx: Any, src: Any, mask: Any) -> dict[str, Any]:  # type: ignore[override]
        return {}

    def write(self, idx: Any, dst: Any, data: Any, **kwargs: Any) -> None: ...  # type: ignore[override]


def test_what_the_flow_itself_passes_is_named_as_such() -> None:
    with pytest.raises(ArgumentError) as info:
        check_fn_arguments(None, ReadWithoutSemaphore(), KW, stacked=True)
    assert str(info.value).endswith(
        "ReadWithoutSemaphore.read' cannot be called as op.read(idx, **op_kwargs): the flow passes "
        "'use_semaphore', which it does not take; its parameters: idx, src, mask"
    )
