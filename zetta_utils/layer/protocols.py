"""Processor protocols: what a layer accepts in ``index_procs``, ``read_procs`` and ``write_procs``.

Any callable ``data -> data`` is a :class:`DataProcessor` and any callable ``idx -> idx`` an
:class:`IndexProcessor` (a plain class with ``__call__`` is enough; no base class is needed). A
:class:`JointIndexDataProcessor` changes both the index and the data and is told whether the
layer is reading or writing.

How a layer applies them (``Layer.read_with_procs`` / ``Layer.write_with_procs``):

read
    ``index_procs`` in order; then ``process_index(idx, "read")`` of the joint processors in
    ``read_procs`` in *reverse* order; the backend read; then ``read_procs`` in order on the data
    (``process_data(data, "read")`` for joint processors, ``proc(data)`` for the others).
write
    ``index_procs`` in order; then ``write_procs`` in order, each joint processor doing
    ``process_index(idx, "write")`` and then ``process_data(data, "write")``; the backend write.

The reversal on read makes one list usable as both ``read_procs`` and ``write_procs``: the
processor nearest the storage (first in the list) sees the index last on the way in and the data
first on the way out.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypeVar, runtime_checkable

IndexT = TypeVar("IndexT")
DataT = TypeVar("DataT")

ProcessorMode = Literal["read", "write"]


@runtime_checkable
class DataProcessor(Protocol[DataT]):
    """Transforms the data read from or written to a layer."""

    def __call__(self, data: DataT, /) -> DataT: ...


@runtime_checkable
class IndexProcessor(Protocol[IndexT]):
    """Transforms the index of every read and write (e.g. a uniform translation)."""

    def __call__(self, idx: IndexT, /) -> IndexT: ...


@runtime_checkable
class JointIndexDataProcessor(Protocol[DataT, IndexT]):
    """Changes the index and the data together, e.g. reading a larger region, rotating it and
    cropping back. ``mode`` says whether the layer is reading or writing."""

    def process_index(self, idx: IndexT, mode: ProcessorMode) -> IndexT: ...

    def process_data(self, data: DataT, mode: ProcessorMode) -> DataT: ...
