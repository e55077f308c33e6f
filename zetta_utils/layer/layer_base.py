"""``Layer``: a backend behind a frontend, with index, read and write processors.

The frontend turns what the user writes inside ``layer[...]`` into the index type the backend
and the processors work with; the processors run around the backend access as described in
:mod:`zetta_utils.layer.protocols`. Layers are frozen (derive changed ones with
:meth:`Layer.with_changes` / :meth:`Layer.with_procs`) and picklable when their backend and
processors are, so they travel to worker processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar

import attrs

from .protocols import DataProcessor, IndexProcessor, JointIndexDataProcessor

IndexT = TypeVar("IndexT")
DataT = TypeVar("DataT")
IndexT_co = TypeVar("IndexT_co", covariant=True)
IndexT_contra = TypeVar("IndexT_contra", contravariant=True)
DataT_co = TypeVar("DataT_co", covariant=True)

LayerT = TypeVar("LayerT", bound="Layer[Any, Any]")


class LayerBackend(Protocol[IndexT_contra, DataT]):
    """Storage a layer reads from and writes to, addressed by processed indices."""

    @property
    def name(self) -> str: ...

    def read(self, idx: IndexT_contra) -> DataT: ...

    def write(self, idx: IndexT_contra, data: DataT) -> None: ...


class LayerFrontend(Protocol[IndexT_co, DataT_co]):
    """Turns user-facing indices (``layer[...]``) and written values into an index and data."""

    def convert_idx(self, idx_user: Any) -> IndexT_co: ...

    def convert_write(self, idx_user: Any, data_user: Any) -> tuple[IndexT_co, DataT_co]: ...


def _check_procs(value: Iterable[Any], field: str, allow_joint: bool) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"`{field}` must be a list of processors, got {type(value).__name__}: {value!r}"
        )
    procs = tuple(value)
    for i, proc in enumerate(procs):
        if allow_joint and isinstance(proc, JointIndexDataProcessor):
            continue
        if not callable(proc):
            expected = (
                "a callable taking and returning the data, or an object with "
                "process_index(idx, mode) and process_data(data, mode)"
                if allow_joint
                else "a callable taking and returning the index"
            )
            raise TypeError(
                f"`{field}[{i}]` must be {expected}; got {type(proc).__name__}: {proc!r}"
            )
    return procs


def _to_index_procs(value: Iterable[Any]) -> tuple[Any, ...]:
    return _check_procs(value, "index_procs", allow_joint=False)


def _to_read_procs(value: Iterable[Any]) -> tuple[Any, ...]:
    return _check_procs(value, "read_procs", allow_joint=True)


def _to_write_procs(value: Iterable[Any]) -> tuple[Any, ...]:
    return _check_procs(value, "write_procs", allow_joint=True)


@attrs.frozen(kw_only=True)
class Layer(Generic[IndexT, DataT]):
    """Reads ``layer[idx]`` and writes ``layer[idx] = data`` through ``frontend`` and ``backend``.

    ``readonly`` layers refuse writes. ``index_procs`` are ``IndexProcessor`` s; ``read_procs``
    and ``write_procs`` hold ``DataProcessor`` s and ``JointIndexDataProcessor`` s (order of
    application: :mod:`zetta_utils.layer.protocols`).
    """

    backend: LayerBackend[IndexT, DataT]
    frontend: LayerFrontend[IndexT, DataT]
    readonly: bool = False
    index_procs: tuple[IndexProcessor[IndexT], ...] = attrs.field(
        default=(), converter=_to_index_procs
    )
    read_procs: tuple[DataProcessor[DataT] | JointIndexDataProcessor[DataT, IndexT], ...] = (
        attrs.field(default=(), converter=_to_read_procs)
    )
    write_procs: tuple[DataProcessor[DataT] | JointIndexDataProcessor[DataT, IndexT], ...] = (
        attrs.field(default=(), converter=_to_write_procs)
    )

    @property
    def name(self) -> str:
        """The backend's name (the volume path for volumetric layers)."""
        return self.backend.name

    # --- user-facing access --------------------------------------------------------------------
    def __getitem__(self, idx_user: Any) -> DataT:
        return self.read_with_procs(self.frontend.convert_idx(idx_user))

    def __setitem__(self, idx_user: Any, data_user: Any) -> None:
        self._check_writable()
        idx, data = self.frontend.convert_write(idx_user, data_user)
        self.write_with_procs(idx, data)

    # --- processed access (indices already converted by the frontend) ------------------------
    def read_with_procs(self, idx: IndexT) -> DataT:
        """Read ``idx`` (a frontend-converted index) through all processors."""
        if not self.index_procs and not self.read_procs:
            return self._read_backend(idx)
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        read_procs = self.read_procs
        for proc in reversed(read_procs):
            if isinstance(proc, JointIndexDataProcessor):
                idx = proc.process_index(idx, "read")
        data = self._read_backend(idx)
        for proc in read_procs:
            if isinstance(proc, JointIndexDataProcessor):
                data = proc.process_data(data, "read")
            else:
                data = proc(data)
        return data

    def write_with_procs(self, idx: IndexT, data: DataT) -> None:
        """Write ``data`` at ``idx`` (a frontend-converted index) through all processors."""
        if self.readonly:
            self._check_writable()
        if not self.index_procs and not self.write_procs:
            self._write_backend(idx, data)
            return
        for index_proc in self.index_procs:
            idx = index_proc(idx)
        for proc in self.write_procs:
            if isinstance(proc, JointIndexDataProcessor):
                idx = proc.process_index(idx, "write")
                data = proc.process_data(data, "write")
            else:
                data = proc(data)
        self._write_backend(idx, data)

    # --- hooks for subclasses --------------------------------------------------------------------
    def _read_backend(self, idx: IndexT) -> DataT:
        return self.backend.read(idx)

    def _write_backend(self, idx: IndexT, data: DataT) -> None:
        self.backend.write(idx, data)

    def _check_writable(self) -> None:
        if self.readonly:
            raise PermissionError(
                f"cannot write to {self.name}: the layer is read-only (readonly=True)"
            )

    # --- derived layers ---------------------------------------------------------------------------
    def with_procs(
        self: LayerT,
        index_procs: Iterable[Any] | None = None,
        read_procs: Iterable[Any] | None = None,
        write_procs: Iterable[Any] | None = None,
    ) -> LayerT:
        """This layer with the given processor lists replaced (``None`` keeps a list)."""
        changes: dict[str, Any] = {}
        if index_procs is not None:
            changes["index_procs"] = index_procs
        if read_procs is not None:
            changes["read_procs"] = read_procs
        if write_procs is not None:
            changes["write_procs"] = write_procs
        return attrs.evolve(self, **changes)

    def with_changes(self: LayerT, **kwargs: Any) -> LayerT:
        """This layer with the named fields replaced (``readonly``, ``index_procs``, ...)."""
        fields = attrs.fields_dict(type(self))
        unknown = sorted(set(kwargs) - set(fields))
        if unknown:
            raise TypeError(
                f"with_changes: unknown argument(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(fields)}"
            )
        return attrs.evolve(self, **kwargs)
