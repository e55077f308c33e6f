"""Task ids computed with an operation's encoding remembered (issue 24: the tasks of one operation
differ only in their arguments) are the ids computed from scratch, for every kind of operation,
and an operation whose encoding changes gets new ids."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa import id_generation


def reference_id(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], prefix: str) -> str:
    """The id as computed without any remembered state."""
    h = hashlib.blake2b(digest_size=16)
    feeder = id_generation._Feeder(h.update)
    feeder.feed(fn)
    feeder.feed(tuple(args))
    feeder.feed_mapping(kwargs)
    return f"{id_generation.sanitize_prefix(prefix)}-{h.hexdigest()}"


@mazepa.taskable_operation
def module_op(keys: Any, scale: float = 1.0) -> None:
    pass


class Components:
    """An operation identified by ``mazepa_id_components`` (as the flows' task operations)."""

    def __init__(self, *components: Any) -> None:
        self.components = components

    def mazepa_id_components(self) -> Any:
        return self.components if len(self.components) != 1 else self.components[0]

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        pass


def _free_function(x: int) -> int:
    return x


def make_closure(state: list[int]) -> Any:
    def inner(x: int) -> int:
        return x + state[0]

    return inner


ARGS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (([(0, 0, 0)],), {}),
    (([(1, 2, 3), (4, 5, 6)],), {}),
    (([(2**63, -(2**63) - 1, 7)],), {}),  # ints past 64 bits: their own encoding
    (([(True, 1, 1.0)],), {}),
    ((), {"keys": [(0, 1, 2)], "scale": 2.0}),
    (("a", None, b"x", [1.5, (2, "b")]), {"z": {"k": 1}}),
]


@pytest.mark.parametrize(
    "fn",
    [
        module_op,
        module_op.fn,
        Components("ProcessTopChunks", "plan-1"),
        Components("plan-only"),
        Components(_free_function, "name"),
        Components(Components, "a class"),
        Components(1, "numbers are not remembered"),
        Components(["a list"]),
        lambda x: x,
        make_closure([1]),
    ],
)
def test_ids_equal_those_computed_from_scratch(fn: Any) -> None:
    for _ in range(2):  # the second time from what the first remembered
        for args, kwargs in ARGS:
            expected = reference_id(fn, args, kwargs, "op")
            assert id_generation.generate_invocation_id(fn, args, kwargs, prefix="op") == expected


def test_an_operation_whose_encoding_changes_gets_new_ids() -> None:
    op = Components("ProcessTopChunks", "plan-1")
    first = id_generation.generate_invocation_id(op, ([(0, 0, 0)],), {}, prefix="op")
    op.components = ("ProcessTopChunks", "plan-2")
    second = id_generation.generate_invocation_id(op, ([(0, 0, 0)],), {}, prefix="op")
    assert second != first
    assert second == reference_id(op, ([(0, 0, 0)],), {}, "op")
    # equal numbers of different types encode differently: never served from one another
    ids = set()
    for value in (1, 1.0, True):
        op.components = ("name", value)
        got = id_generation.generate_invocation_id(op, (), {}, prefix="op")
        assert got == reference_id(op, (), {}, "op")
        ids.add(got)
    assert len(ids) == 3
    # a closure's state is part of its tasks' ids
    state = [1]
    closure = make_closure(state)
    before = id_generation.generate_invocation_id(closure, (0,), {}, prefix="op")
    state[0] = 2
    after = id_generation.generate_invocation_id(closure, (0,), {}, prefix="op")
    assert before != after == reference_id(closure, (0,), {}, "op")


def test_the_remembered_encodings_are_bounded() -> None:
    for i in range(id_generation._PREFIX_CACHE_SIZE + 10):
        id_generation.generate_invocation_id(Components("op", str(i)), (), {}, prefix="op")
    assert len(id_generation._PREFIXES) <= id_generation._PREFIX_CACHE_SIZE
    op = Components("op", "0")
    assert id_generation.generate_invocation_id(op, (), {}, prefix="op") == reference_id(
        op, (), {}, "op"
    )


def test_invocation_ids_do_not_change() -> None:
    """Pinned: computed by the module before it remembered anything (a change here makes every
    checkpoint of a run made before it unusable)."""
    fn = id_generation.sanitize_prefix  # a module-level function: hashed by its name
    for _ in range(2):
        assert (
            id_generation.generate_invocation_id(fn, ([(1, 2, 3), (4, 5, 6)],), {}, prefix="op")
            == "op-6b89afa95410347ffea81f9d04d00255"
        )
        assert (
            id_generation.generate_invocation_id(fn, ((7, 2**63),), {"k": [1, 2.5]}, prefix="op")
            == "op-4c2f95292a5449073f6b12ae2024d144"
        )
