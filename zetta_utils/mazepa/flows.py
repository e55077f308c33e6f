"""Flows: generators that yield work.

A flow schema is a generator function; calling it gives a :class:`Flow`, which does nothing until
an executor walks it. The generator may yield

- a :class:`~.tasks.Task`, or a list/tuple of tasks and flows (nested lists are flattened),
- a :class:`Flow` (a sub-flow; it runs concurrently with what its parent yields next),
- a :class:`Dependency`: ``Dependency()`` waits until everything this flow yielded so far (its
  tasks, and its sub-flows in full) has finished; ``Dependency(task_or_flow, ...)`` waits only for
  those.

The scheduler pulls items lazily, so a flow may yield millions of tasks::

    @mazepa.flow_schema
    def pipeline(n: int):
        yield [square.make_task(i) for i in range(n)]
        yield mazepa.Dependency()
        yield summarise.make_task(n)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar, overload

from zetta_utils import builder

from . import id_generation
from .tasks import Task

__all__ = [
    "Dependency",
    "Flow",
    "FlowFnReturnType",
    "FlowSchema",
    "FlowSchemaBase",
    "concurrent_flow",
    "flow_schema",
    "flow_schema_cls",
    "seq_flow",
]

P = ParamSpec("P")
C = TypeVar("C", bound=type)

FlowItem: TypeAlias = "Task[Any] | Flow | Dependency | list[Any] | tuple[Any, ...]"
FlowFnReturnType: TypeAlias = Iterator[Any]
"""What a flow schema function returns: a generator of tasks, flows, lists and dependencies."""


class Dependency:
    """A barrier in a flow.

    ``Dependency()`` waits for every task and sub-flow the flow yielded before it.
    ``Dependency(a, b, ...)`` waits for the given tasks / flows / ids only (lists are accepted);
    ones that are not running or waiting to run count as finished.
    """

    __slots__ = ("targets",)

    def __init__(self, *targets: Task[Any] | Flow | str | Iterable[Task[Any] | Flow | str]):
        flat: list[Task[Any] | Flow | str] = []
        for target in targets:
            if isinstance(target, (Task, Flow, str)):
                flat.append(target)
            elif isinstance(target, Iterable):
                for item in target:
                    if not isinstance(item, (Task, Flow, str)):
                        raise TypeError(
                            f"Dependency: expected tasks, flows or ids, got {type(item).__name__}: "
                            f"{item!r}"
                        )
                    flat.append(item)
            else:
                raise TypeError(
                    f"Dependency: expected tasks, flows or ids, got {type(target).__name__}: "
                    f"{target!r}"
                )
        self.targets: tuple[Task[Any] | Flow | str, ...] = tuple(flat)

    @property
    def is_barrier(self) -> bool:
        """True for ``Dependency()``: wait for everything yielded so far."""
        return not self.targets

    def target_ids(self) -> list[str]:
        return [t if isinstance(t, str) else t.id for t in self.targets]

    def __repr__(self) -> str:
        if self.is_barrier:
            return "Dependency()"
        return f"Dependency({', '.join(map(repr, self.target_ids()))})"


_IDS_IN_PROGRESS: set[Flow] = set()


class Flow:
    """A lazily evaluated flow: a generator function with its arguments, plus an id and a name.

    The id is a deterministic digest of the schema and the arguments, so checkpoints can record
    finished flows and a resumed run skips them without walking them again.
    """

    __slots__ = ("_id", "args", "fn", "kwargs", "name")

    def __init__(
        self,
        fn: Callable[..., Iterable[Any]],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        flow_id: str | None = None,
    ):
        if not callable(fn):
            raise TypeError(f"Flow: `fn` must be a generator function, got {fn!r}")
        self.fn = fn
        self.args = args
        self.kwargs = kwargs or {}
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        self._id = flow_id

    @property
    def id(self) -> str:
        if self._id is None:
            if self in _IDS_IN_PROGRESS:
                raise ValueError(
                    f"flow {self.name!r}: its arguments contain the flow itself, so it has no "
                    "content-based id; give it one with Flow(..., flow_id=...)"
                )
            _IDS_IN_PROGRESS.add(self)
            try:
                self._id = id_generation.generate_invocation_id(
                    self.fn, self.args, self.kwargs, prefix=f"flow-{self.name}"
                )
            finally:
                _IDS_IN_PROGRESS.discard(self)
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def iter_items(self) -> Iterator[Any]:
        """Start the generator."""
        items = self.fn(*self.args, **self.kwargs)
        if not isinstance(items, Iterable):
            raise TypeError(
                f"flow {self.name!r}: the schema must be a generator function (or return an "
                f"iterable of tasks/flows), but it returned {type(items).__name__}"
            )
        return iter(items)

    def mazepa_id_components(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, id={self.id!r})"


class FlowSchema(Generic[P]):
    """A generator function that makes :class:`Flow`s when called. Made by :func:`flow_schema`."""

    def __init__(self, fn: Callable[P, Iterable[Any]], name: str | None = None):
        if not callable(fn):
            raise TypeError(f"flow_schema needs a generator function, got {fn!r}")
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(fn, attr):
                setattr(self, attr, getattr(fn, attr))
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Flow:
        return Flow(self.fn, args, kwargs, name=self.name)

    def mazepa_id_components(self) -> Any:
        return (self.fn, self.name)

    def __repr__(self) -> str:
        return f"FlowSchema({self.name})"


@overload
def flow_schema(fn: Callable[P, Iterable[Any]]) -> FlowSchema[P]: ...


@overload
def flow_schema(
    fn: None = None, *, name: str | None = None
) -> Callable[[Callable[P, Iterable[Any]]], FlowSchema[P]]: ...


def flow_schema(
    fn: Callable[P, Iterable[Any]] | None = None, *, name: str | None = None
) -> FlowSchema[P] | Callable[[Callable[P, Iterable[Any]]], FlowSchema[P]]:
    """Decorator: a generator function becomes a :class:`FlowSchema`; calling it makes a Flow."""

    def wrap(f: Callable[P, Iterable[Any]]) -> FlowSchema[P]:
        return FlowSchema(f, name=name)

    if fn is not None:
        return wrap(fn)
    return wrap


def _make_flow_from_instance(self: Any, *args: Any, **kwargs: Any) -> Flow:
    flow_fn = getattr(self, "flow", None)
    if not callable(flow_fn):
        raise TypeError(
            f"{type(self).__qualname__} must define a `flow(self, ...)` generator method"
        )
    name_fn = getattr(self, "get_flow_name", None)
    name = name_fn() if callable(name_fn) else type(self).__name__
    return Flow(flow_fn, args, kwargs, name=name)


class FlowSchemaBase:
    """Base for flow schema classes (a ``flow(self, ...)`` generator method): calling an instance
    makes a :class:`Flow`, in a way static type checkers see (``@flow_schema_cls`` does the same at
    run time only). Define ``get_flow_name(self) -> str`` to name its flows."""

    def __call__(self, *args: Any, **kwargs: Any) -> Flow:
        return _make_flow_from_instance(self, *args, **kwargs)

    def make_flow(self, *args: Any, **kwargs: Any) -> Flow:
        return _make_flow_from_instance(self, *args, **kwargs)


def flow_schema_cls(cls: C) -> C:
    """Class decorator for flow schema classes: the class defines ``flow(self, ...)`` as a
    generator; calling an instance (or ``instance.make_flow(...)``) returns a :class:`Flow`. The
    instance's fields are part of the flow id."""
    if not isinstance(cls, type):
        raise TypeError(f"flow_schema_cls decorates classes, got {cls!r}")
    if not callable(getattr(cls, "flow", None)):
        raise TypeError(
            f"flow_schema_cls: {cls.__qualname__} must define a `flow(self, ...)` generator method"
        )
    if not issubclass(cls, FlowSchemaBase):
        if "__call__" in cls.__dict__:
            raise TypeError(
                f"flow_schema_cls: {cls.__qualname__} defines __call__, which would be replaced; "
                "calling an instance makes its flow"
            )
        cls.__call__ = _make_flow_from_instance  # type: ignore[method-assign]
        cls.make_flow = _make_flow_from_instance  # type: ignore[attr-defined]
    return cls


def _flatten_flow_items(items: Iterable[Any], where: str) -> list[Task[Any] | Flow]:
    flat: list[Task[Any] | Flow] = []
    for item in items:
        if isinstance(item, (Task, Flow)):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            flat.extend(_flatten_flow_items(item, where))
        else:
            raise TypeError(
                f"{where}: expected tasks, flows or lists of them, got {type(item).__name__}: "
                f"{item!r}"
            )
    return flat


def _seq_flow_fn(stages: list[Task[Any] | Flow | list[Any]]) -> Iterator[Any]:
    for stage in stages:
        yield stage
        yield Dependency()


def _concurrent_flow_fn(stages: list[Task[Any] | Flow | list[Any]]) -> Iterator[Any]:
    yield list(stages)


def _stages_argument(
    kind: str, stages: Iterable[Task[Any] | Flow | list[Any]] | None, flows: Iterable[Any] | None
) -> list[Any]:
    # ``stages`` is the original's name; ``flows`` is accepted as its alias.
    if (stages is None) == (flows is None):
        raise TypeError(f"mazepa.{kind}: give `stages` (a list of flows, tasks or lists of them)")
    name, given = ("stages", stages) if stages is not None else ("flows", flows)
    assert given is not None
    result = list(given) if not isinstance(given, (Task, Flow)) else [given]
    for i, stage in enumerate(result):
        _flatten_flow_items([stage], f"mazepa.{kind}: `{name}[{i}]`")
    return result


@builder.register("mazepa.seq_flow")
def seq_flow(
    stages: Iterable[Task[Any] | Flow | list[Any]] | None = None,
    *,
    flows: Iterable[Task[Any] | Flow | list[Any]] | None = None,
) -> Flow:
    """A flow that runs ``stages`` (flows, tasks or lists of them) one after another
    (``flows`` is an alias of ``stages``)."""
    return Flow(_seq_flow_fn, (_stages_argument("seq_flow", stages, flows),), name="seq_flow")


@builder.register("mazepa.concurrent_flow")
def concurrent_flow(
    stages: Iterable[Task[Any] | Flow | list[Any]] | None = None,
    *,
    flows: Iterable[Task[Any] | Flow | list[Any]] | None = None,
) -> Flow:
    """A flow that runs ``stages`` (flows, tasks or lists of them) concurrently (``flows`` is an
    alias of ``stages``)."""
    return Flow(
        _concurrent_flow_fn,
        (_stages_argument("concurrent_flow", stages, flows),),
        name="concurrent_flow",
    )


builder.register("mazepa.sequential_flow")(seq_flow)
