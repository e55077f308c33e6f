"""The generic Layer: processor order on reads and writes, joint processors, readonly, derived
layers. Uses a tiny real backend over a dict (indices are ints, data are lists of numbers)."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

from zetta_utils.layer import (
    DataProcessor,
    IndexProcessor,
    JointIndexDataProcessor,
    Layer,
)


@attrs.frozen
class DictBackend:
    store: dict[int, list[float]] = attrs.field(factory=dict)
    log: list[tuple[str, Any]] = attrs.field(factory=list)

    @property
    def name(self) -> str:
        return "dict://test"

    def read(self, idx: int) -> list[float]:
        self.log.append(("backend.read", idx))
        return list(self.store.get(idx, []))

    def write(self, idx: int, data: list[float]) -> None:
        self.log.append(("backend.write", idx))
        self.store[idx] = list(data)


class IdentityFrontend:
    def convert_idx(self, idx_user: Any) -> int:
        return int(idx_user)

    def convert_write(self, idx_user: Any, data_user: Any) -> tuple[int, list[float]]:
        return int(idx_user), list(data_user)


class Shift:
    """Index processor: idx + offset."""

    def __init__(self, offset: int, log: list[tuple[str, Any]], tag: str):
        self.offset, self.log, self.tag = offset, log, tag

    def __call__(self, idx: int) -> int:
        self.log.append((self.tag, idx))
        return idx + self.offset


class Scale:
    """Data processor: multiplies every element."""

    def __init__(self, factor: float, log: list[tuple[str, Any]], tag: str):
        self.factor, self.log, self.tag = factor, log, tag

    def __call__(self, data: list[float]) -> list[float]:
        self.log.append((self.tag, list(data)))
        return [d * self.factor for d in data]


class Joint:
    """Joint processor: moves the index by ``offset`` and appends a marker to the data,
    recording the mode it was called with."""

    def __init__(self, offset: int, marker: float, log: list[tuple[str, Any]], tag: str):
        self.offset, self.marker, self.log, self.tag = offset, marker, log, tag

    def process_index(self, idx: int, mode: str) -> int:
        self.log.append((f"{self.tag}.index.{mode}", idx))
        return idx + self.offset

    def process_data(self, data: list[float], mode: str) -> list[float]:
        self.log.append((f"{self.tag}.data.{mode}", list(data)))
        return [*data, self.marker]


class ThresholdProcessor:
    """The guide's example, verbatim in spirit: a plain class with __call__(self, data)."""

    def __init__(self, threshold: float = 0):
        self.threshold = threshold

    def __call__(self, data: Any) -> Any:
        data[data < self.threshold] = self.threshold
        return data


def make_layer(**kwargs: Any) -> Layer[int, list[float]]:
    return Layer(backend=DictBackend(), frontend=IdentityFrontend(), **kwargs)


def test_protocols_are_runtime_checkable() -> None:
    log: list[tuple[str, Any]] = []
    assert isinstance(Scale(1, log, "s"), DataProcessor)
    assert isinstance(Shift(1, log, "i"), IndexProcessor)
    assert isinstance(Joint(0, 0, log, "j"), JointIndexDataProcessor)
    assert not isinstance(Scale(1, log, "s"), JointIndexDataProcessor)
    assert isinstance(ThresholdProcessor(0), DataProcessor)


def test_plain_read_and_write() -> None:
    layer = make_layer()
    layer[3] = [1.0, 2.0]
    assert layer[3] == [1.0, 2.0]
    assert layer.backend.store == {3: [1.0, 2.0]}
    assert layer.name == "dict://test"


def test_read_order_index_procs_then_joint_index_reversed_then_data_forward() -> None:
    backend = DictBackend(store={111: [1.0]})
    log = backend.log
    layer = Layer(
        backend=backend,
        frontend=IdentityFrontend(),
        index_procs=[Shift(1, log, "i1"), Shift(10, log, "i2")],
        read_procs=[
            Joint(100, 7.0, log, "jA"),
            Scale(2, log, "s"),
            Joint(0, 9.0, log, "jB"),
        ],
    )
    # 0 -> i1 -> 1 -> i2 -> 11 -> jB (0) -> 11 -> jA (+100) -> 111
    assert layer[0] == [2.0, 7.0 * 2, 9.0]
    assert log == [
        ("i1", 0),
        ("i2", 1),
        ("jB.index.read", 11),
        ("jA.index.read", 11),
        ("backend.read", 111),
        ("jA.data.read", [1.0]),
        ("s", [1.0, 7.0]),
        ("jB.data.read", [2.0, 14.0]),
    ]


def test_write_order_forward_with_joint_index_then_data() -> None:
    backend = DictBackend()
    log = backend.log
    layer = Layer(
        backend=backend,
        frontend=IdentityFrontend(),
        index_procs=[Shift(1, log, "i1")],
        write_procs=[
            Joint(100, 7.0, log, "jA"),
            Scale(2, log, "s"),
            Joint(1000, 9.0, log, "jB"),
        ],
    )
    layer[0] = [1.0]
    assert log == [
        ("i1", 0),
        ("jA.index.write", 1),
        ("jA.data.write", [1.0]),
        ("s", [1.0, 7.0]),
        ("jB.index.write", 101),
        ("jB.data.write", [2.0, 14.0]),
        ("backend.write", 1101),
    ]
    assert backend.store == {1101: [2.0, 14.0, 9.0]}


def test_one_list_serves_reads_and_writes() -> None:
    """A joint processor list used for both: what is written at idx reads back at idx."""

    class Offset:
        def process_index(self, idx: int, mode: str) -> int:
            return idx + 5

        def process_data(self, data: list[float], mode: str) -> list[float]:
            return [d + 1 for d in data] if mode == "write" else [d - 1 for d in data]

    procs = [Offset(), Offset()]
    layer = make_layer(read_procs=procs, write_procs=procs)
    layer[0] = [1.0, 2.0]
    assert layer.backend.store == {10: [3.0, 4.0]}
    assert layer[0] == [1.0, 2.0]


def test_readonly_refuses_writes_naming_the_layer() -> None:
    layer = make_layer(readonly=True)
    with pytest.raises(PermissionError, match=r"dict://test.*read-only"):
        layer[0] = [1.0]
    with pytest.raises(PermissionError, match="read-only"):
        layer.write_with_procs(0, [1.0])
    assert layer.backend.store == {}
    assert layer[0] == []


def test_procs_are_validated() -> None:
    with pytest.raises(TypeError, match=r"read_procs\[1\]"):
        make_layer(read_procs=[ThresholdProcessor(), 5])
    with pytest.raises(TypeError, match=r"index_procs\[0\].*callable"):
        make_layer(index_procs=[Joint(0, 0, [], "j")])
    with pytest.raises(TypeError, match="write_procs"):
        make_layer(write_procs="abc")


def test_with_procs_and_with_changes() -> None:
    log: list[tuple[str, Any]] = []
    layer = make_layer(read_procs=[Scale(2, log, "s")])
    layer.backend.store[0] = [1.0]
    doubled = layer[0]
    plain = layer.with_procs(read_procs=[])
    assert doubled == [2.0] and plain[0] == [1.0]
    assert layer.read_procs and not plain.read_procs
    assert plain.with_procs() == plain
    ro = layer.with_changes(readonly=True)
    assert ro.readonly and not layer.readonly
    with pytest.raises(TypeError, match=r"unknown argument.*nonsense"):
        layer.with_changes(nonsense=1)
    # procs are stored as tuples: layers stay hashable value objects
    assert isinstance(layer.read_procs, tuple)


def test_layer_is_picklable() -> None:
    layer = make_layer(read_procs=[ThresholdProcessor(3)])
    layer.backend.store[1] = [5.0]
    copy = pickle.loads(pickle.dumps(layer))
    assert copy.backend.store == {1: [5.0]}
    assert type(copy.read_procs[0]) is ThresholdProcessor
