"""Task and flow ids: deterministic digests of what is computed."""

from __future__ import annotations

import collections
import dataclasses
import enum
import fractions
import functools
import json
import math
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any, TypeVar

import attrs
import numpy as np
import pytest
import torch

from zetta_utils import builder, mazepa
from zetta_utils.mazepa import id_generation


@mazepa.taskable_operation
def add(a: int, b: int = 0) -> int:
    return a + b


@attrs.frozen
class Box:
    start: tuple[int, ...]
    end: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Params:
    name: str
    scale: float


class Plain:
    def __init__(self, path: str, cache: dict[str, int]):
        self.path = path
        self.cache = cache


def test_same_call_same_id_and_kwarg_order_does_not_matter() -> None:
    assert add.make_task(1, b=2).id == add.make_task(1, b=2).id
    t1 = id_generation.generate_invocation_id(add, (), {"a": 1, "b": 2})
    t2 = id_generation.generate_invocation_id(add, (), {"b": 2, "a": 1})
    assert t1 == t2


def test_different_arguments_different_ids() -> None:
    ids = {
        add.make_task(1, b=2).id,
        add.make_task(2, b=1).id,
        add.make_task(1, 2).id,  # positional vs keyword is a different call
        add.make_task(1.0, b=2).id,  # type: ignore[arg-type] # 1.0 is not 1
        add.make_task("1", b=2).id,  # type: ignore[arg-type]
        add.make_task(True, b=2).id,
    }
    assert len(ids) == 6


def test_id_has_operation_name_prefix() -> None:
    task = add.make_task(1)
    assert task.id.startswith("add-")
    assert task.operation_name == "add"
    named = add.with_options(operation_name="adder step").make_task(1)
    assert named.id.startswith("adder_step-")
    assert named.operation_name == "adder step"


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"x": 1, "y": [1, 2]}, {"y": [1, 2], "x": 1}, True),
        ({1: "a", "b": 2}, {"b": 2, 1: "a"}, True),
        ({1, 2, 3}, {3, 2, 1}, True),
        ([1, 2], (1, 2), False),
        (Box((0, 0), (1, 1)), Box((0, 0), (1, 1)), True),
        (Box((0, 0), (1, 1)), Box((0, 0), (1, 2)), False),
        (Params("a", 1.5), Params("a", 1.5), True),
        (Params("a", 1.5), Params("a", 2.5), False),
        (Plain("p", {"k": 1}), Plain("p", {"k": 1}), True),
        (Plain("p", {"k": 1}), Plain("q", {"k": 1}), False),
        (np.arange(6).reshape(2, 3), np.arange(6).reshape(2, 3), True),
        (np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2), False),
        (np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int64), False),
        (functools.partial(add, 1), functools.partial(add, 1), True),
        (functools.partial(add, 1), functools.partial(add, 2), False),
        (lambda x: x + 1, lambda x: x + 1, True),
        (lambda x: x + 1, lambda x: x + 2, False),
    ],
)
def test_structural_hash(a: object, b: object, equal: bool) -> None:
    assert (id_generation.hash_object(a) == id_generation.hash_object(b)) is equal


def test_lambdas_from_specs_hash_by_code() -> None:
    f1 = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 2"})
    f2 = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 2"})
    f3 = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 3"})
    assert f1 is not f2
    assert id_generation.hash_object(f1) == id_generation.hash_object(f2)
    assert id_generation.hash_object(f1) != id_generation.hash_object(f3)


def test_closures_hash_their_contents() -> None:
    def make(k: int):  # type: ignore[no-untyped-def]
        return lambda x: x * k

    assert id_generation.hash_object(make(2)) == id_generation.hash_object(make(2))
    assert id_generation.hash_object(make(2)) != id_generation.hash_object(make(3))


def test_cycles_are_hashed() -> None:
    a: list[object] = [1]
    a.append(a)
    b: list[object] = [1]
    b.append(b)
    assert id_generation.hash_object(a) == id_generation.hash_object(b)


def test_custom_id_components() -> None:
    class Layer:
        def __init__(self, path: str, handle: object):
            self.path = path
            self.handle = handle  # e.g. an open connection: not part of identity

        def mazepa_id_components(self) -> str:
            return self.path

    assert id_generation.hash_object(Layer("a", object())) == id_generation.hash_object(
        Layer("a", object())
    )
    assert id_generation.hash_object(Layer("a", object())) != id_generation.hash_object(
        Layer("b", object())
    )


def test_flow_ids_are_deterministic() -> None:
    @mazepa.flow_schema
    def my_flow(n: int):  # type: ignore[no-untyped-def]
        yield add.make_task(n)

    assert my_flow(3).id == my_flow(3).id
    assert my_flow(3).id != my_flow(4).id
    assert my_flow(3).id.startswith("flow-my_flow-")


def test_unique_ids_differ() -> None:
    assert id_generation.get_unique_id("run") != id_generation.get_unique_id("run")
    assert id_generation.get_unique_id("run").startswith("run-")


_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from zetta_utils import builder, mazepa
    from zetta_utils.mazepa import id_generation
    sys.path.insert(0, sys.argv[1])
    fn = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 2"})
    values = [
        {"b": {3, 1, 2}, "a": "text", "c": (1.5, None, True)},
        fn,
        np.arange(12, dtype=np.uint8).reshape(3, 4),
        frozenset({"x", "y", "z"}),
    ]
    print(json.dumps([id_generation.hash_object(v) for v in values]))
    """
)


def test_ids_are_the_same_in_another_process(tmp_path: object) -> None:
    fn = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 2"})
    values = [
        {"b": {3, 1, 2}, "a": "text", "c": (1.5, None, True)},
        fn,
        np.arange(12, dtype=np.uint8).reshape(3, 4),
        frozenset({"x", "y", "z"}),
    ]
    here = [id_generation.hash_object(v) for v in values]
    # A different hash seed changes set and dict iteration order in the child.
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == here


# ---- digests pinned: a checkpoint made by one version is recognised by the next ---------------
# The classes name a fixed module, so that the digests do not depend on how pytest imports this
# file.

_T = TypeVar("_T", bound=type)


def _pinned(cls: _T) -> _T:
    cls.__module__ = "pins"
    return cls


@_pinned
class _Color(enum.Enum):
    RED = 1


@_pinned
@attrs.frozen
class _Pair:
    x: int
    y: object = None


@_pinned
@dataclasses.dataclass(frozen=True)
class _Named:
    name: str
    scale: float


@_pinned
class _WithState:
    def __init__(self) -> None:
        self.v = 3

    def __getstate__(self) -> dict[str, int]:
        return {"other": self.v}


@_pinned
class _Slotted:
    __slots__ = ("p", "q")

    def __init__(self) -> None:
        self.p, self.q = 1, "z"


@_pinned
class _Components:
    def mazepa_id_components(self) -> tuple[str, int]:
        return ("components", 3)


@_pinned
class _Frozen(collections.abc.Mapping[Any, Any]):
    def __init__(self) -> None:
        self._d: dict[Any, Any] = {"a": 1, 2: "b"}

    def __getitem__(self, k: Any) -> Any:
        return self._d[k]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


_Point = collections.namedtuple("_Point", "x y", module="pins")


def _cycle() -> list[Any]:
    c: list[Any] = [1]
    c.append(c)
    return c


_PINNED: dict[str, tuple[Any, str]] = {
    "leaves": (
        (0, -1, 2**70, 1.5, "s", "\udc80", None, True, b"b"),
        "d85ba22ba720cca287eb6258d8e92db0",
    ),
    "containers": (
        ([1, (2, 3)], {"b": [2], "a": 1}, {1: "a", "b": 2}, {3, "x"}, frozenset({4})),
        "06ec35fef3089c97e555fe8f8ba36a73",
    ),
    "enum and class": ((_Color.RED, _Color, int), "ddd963d003d35e2ab6375f60660144ae"),
    "callables": (
        (
            math.floor,
            len,
            [].append,
            functools.partial(max, 1, key=abs),
            math,
            fractions.Fraction(1, 3).limit_denominator,
        ),
        "14c5bcc9054512bb033317146808291b",
    ),
    "subclasses": (
        (_Point(1, 2), _Frozen(), collections.OrderedDict(b=1, a=2)),
        "dddfab1e0adc5df104c4aa445642ab3c",
    ),
    "arrays": (
        (
            np.arange(6, dtype=np.int16).reshape(2, 3),
            np.array([1, "a"], dtype=object),
            np.float64(2.5),
        ),
        "cbe7adb4e10f0acc745b25ec5f9bd6ee",
    ),
    "tensors": (
        (torch.arange(5), torch.ones(2, dtype=torch.bfloat16)),
        "47c08dbc2950e33c200adcb9bdaa92c9",
    ),
    "attrs and dataclasses": (
        (_Pair(1, [_Pair(2)]), _Named("n", 0.5)),
        "5bea78629dab66089ad4e561cbc961ee",
    ),
    "objects": (
        (_WithState(), _Slotted(), fractions.Fraction(1, 3), types.SimpleNamespace(a=1)),
        "f3f230261cf5a6ad31e1910873f1dfaf",
    ),
    "custom components": (_Components(), "640f1773a2e45daeca8563a8fa3034fc"),
    "cycle": (_cycle(), "0f2458941d5fc27b0be79a16dd6afb82"),
}


@pytest.mark.parametrize("kind", list(_PINNED))
def test_digests_do_not_change(kind: str) -> None:
    """Each kind of value (one branch of the hashing rules) keeps the digest it had: a change
    here makes every checkpoint of a run made before it unusable."""
    value, digest = _PINNED[kind]
    assert id_generation.hash_object(value) == digest
