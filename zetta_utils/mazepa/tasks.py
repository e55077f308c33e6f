"""Tasks and taskable operations.

A *task* is one call of an operation with bound arguments, ready to run anywhere: in this process,
in a worker process, or on a remote worker (it pickles with cloudpickle). Its id is a deterministic
digest of the operation and the arguments (see :mod:`.id_generation`).

    @mazepa.taskable_operation
    def add(a: int, b: int) -> int:
        return a + b

    add(1, 2)                    # runs directly: 3
    task = add.make_task(1, 2)   # a Task; mazepa.execute(task) runs it
"""

from __future__ import annotations

import importlib
import reprlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

import attrs
import cloudpickle

from . import id_generation
from .task_outcome import TaskOutcome
from .transient_errors import is_transient_error

__all__ = [
    "OperationBase",
    "Task",
    "TaskableOperation",
    "taskable_operation",
    "taskable_operation_cls",
]

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)

_OPTIONS_ATTR = "__mazepa_operation_options__"

_summary_repr = reprlib.Repr()
_summary_repr.maxstring = 60
_summary_repr.maxother = 100
_summary_repr.maxlist = 6
_summary_repr.maxtuple = 6
_summary_repr.maxdict = 6
_summary_repr.maxlevel = 3


def _validate_options(
    operation_name: str | None,
    worker_type: str | None,
    resources: Mapping[str, float] | None,
    max_retry: int | None,
) -> None:
    if operation_name is not None and (not isinstance(operation_name, str) or not operation_name):
        raise TypeError(f"`operation_name` must be a non-empty string, got {operation_name!r}")
    if worker_type is not None and not isinstance(worker_type, str):
        raise TypeError(f"`worker_type` must be a string or None, got {worker_type!r}")
    if resources is not None:
        if not isinstance(resources, Mapping):
            raise TypeError(
                f"`resources` must be a mapping such as {{'gpu': 1}}, got {resources!r}"
            )
        for key, value in resources.items():
            if (
                not isinstance(key, str)
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value < 0
            ):
                raise ValueError(
                    f"`resources` must map names to non-negative numbers, got {key!r}: {value!r}"
                )
    if max_retry is not None and (
        isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0
    ):
        raise ValueError(f"`max_retry` must be a non-negative integer or None, got {max_retry!r}")


@attrs.define(eq=False, slots=True, kw_only=True)
class Task(Generic[R]):
    """One call of an operation, with its arguments bound.

    ``task()`` runs it and returns a :class:`TaskOutcome` (exceptions are captured, never raised);
    ``task.run()`` runs it and returns the value (exceptions propagate). After a run by
    ``mazepa.execute`` the outcome is in ``task.outcome``, so a flow can read
    ``task.outcome.return_value`` after ``yield Dependency(task)``.

    ``worker_type`` routes the task to a group of workers (``"gpu"``); local executors run every
    task. ``resources`` states needs (``{"gpu": 1}``) for executors that schedule by them.
    ``max_retry`` overrides the run's retry count for this task. ``reads_from``: the ids of
    tasks whose outputs this one reads, a hint for executors whose workers keep what their
    tasks wrote (local workers run it, where they can, on the worker that ran most of them); it
    does not order anything (dependencies do) and is not sent to workers.
    """

    fn: Callable[..., R]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    id: str
    operation_name: str
    worker_type: str | None = None
    resources: dict[str, float] = attrs.field(factory=dict)
    max_retry: int | None = None
    outcome: TaskOutcome[R] | None = None
    reads_from: tuple[str, ...] = ()

    def __call__(self) -> TaskOutcome[R]:
        start = time.perf_counter()
        try:
            value = self.fn(*self.args, **self.kwargs)
        except Exception as e:
            outcome: TaskOutcome[R] = TaskOutcome(
                task_id=self.id,
                exception=e,
                exception_type=_exception_name(e),
                error_message=str(e),
                traceback=traceback.format_exc(),
                retryable=is_transient_error(e),
                execution_secs=time.perf_counter() - start,
            )
        else:
            outcome = TaskOutcome(
                task_id=self.id, return_value=value, execution_secs=time.perf_counter() - start
            )
        self.outcome = outcome
        return outcome

    def start_reads(self) -> None:
        """Start the reads this task will make, for an executor about to run the task before
        it: its operation's ``read_ahead`` method, if it has one, is called with the task's
        arguments (it hands the reads to its storage layer, which keeps them for the task; see
        :mod:`zetta_utils.layer.volumetric.read_ahead`). It must return at once and change
        nothing the task's run depends on; an error in it is ignored (the task reads as it
        would have)."""
        read_ahead = getattr(self.fn, "read_ahead", None)
        if read_ahead is not None:
            try:
                read_ahead(*self.args, **self.kwargs)
            except Exception:  # pylint: disable=broad-except
                pass

    def run(self) -> R:
        """Run the task here and return its value; exceptions propagate."""
        return self.fn(*self.args, **self.kwargs)

    def args_summary(self, max_chars: int = 400) -> str:
        """``operation(arg, ..., key=value)`` with long values abbreviated."""
        parts = [_summary_repr.repr(a) for a in self.args]
        parts += [f"{k}={_summary_repr.repr(v)}" for k, v in self.kwargs.items()]
        text = f"{self.operation_name}({', '.join(parts)})"
        return text if len(text) <= max_chars else text[: max_chars - 3] + "..."

    def with_options(
        self,
        *,
        task_id: str | None = None,
        operation_name: str | None = None,
        worker_type: str | None = None,
        resources: Mapping[str, float] | None = None,
        max_retry: int | None = None,
        reads_from: Sequence[str] | None = None,
    ) -> Task[R]:
        """A copy with the given fields replaced (``None`` keeps the current value)."""
        _validate_options(operation_name, worker_type, resources, max_retry)
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise TypeError(f"`task_id` must be a non-empty string, got {task_id!r}")
        if reads_from is not None and (
            isinstance(reads_from, str) or not all(isinstance(i, str) for i in reads_from)
        ):
            raise TypeError(f"`reads_from` must be a sequence of task ids, got {reads_from!r}")
        return attrs.evolve(
            self,
            id=task_id if task_id is not None else self.id,
            operation_name=operation_name if operation_name is not None else self.operation_name,
            worker_type=worker_type if worker_type is not None else self.worker_type,
            resources=dict(resources) if resources is not None else dict(self.resources),
            max_retry=max_retry if max_retry is not None else self.max_retry,
            outcome=None,
            reads_from=tuple(reads_from) if reads_from is not None else self.reads_from,
        )

    def mazepa_id_components(self) -> str:
        # A task inside another task's or flow's arguments is identified by its own id.
        return self.id

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, operation_name={self.operation_name!r})"


def _exception_name(exc: BaseException) -> str:
    klass = type(exc)
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _import_attr(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class TaskableOperation(Generic[P, R]):
    """A function that can also make tasks: ``op(...)`` calls it, ``op.make_task(...)`` binds the
    arguments into a :class:`Task`. Made by :func:`taskable_operation`."""

    __name__: str
    __qualname__: str

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        operation_name: str | None = None,
        worker_type: str | None = None,
        resources: Mapping[str, float] | None = None,
        max_retry: int | None = None,
    ):
        if not callable(fn):
            raise TypeError(f"taskable_operation needs a callable, got {fn!r}")
        _validate_options(operation_name, worker_type, resources, max_retry)
        self.fn = fn
        self.operation_name: str = (
            operation_name or getattr(fn, "__name__", None) or type(fn).__name__
        )
        self.worker_type = worker_type
        self.resources: dict[str, float] = dict(resources or {})
        self.max_retry = max_retry
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(fn, attr):
                setattr(self, attr, getattr(fn, attr))
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def make_task(self, *args: P.args, **kwargs: P.kwargs) -> Task[R]:
        """A task that calls this operation with these arguments."""
        task_id = id_generation.generate_invocation_id(
            self.fn, args, kwargs, prefix=self.operation_name
        )
        return Task(
            fn=self,
            args=args,
            kwargs=kwargs,
            id=task_id,
            operation_name=self.operation_name,
            worker_type=self.worker_type,
            resources=dict(self.resources),
            max_retry=self.max_retry,
        )

    def with_options(
        self,
        *,
        operation_name: str | None = None,
        worker_type: str | None = None,
        resources: Mapping[str, float] | None = None,
        max_retry: int | None = None,
    ) -> TaskableOperation[P, R]:
        """A copy whose tasks carry the given options (``None`` keeps the current value)."""
        return TaskableOperation(
            self.fn,
            operation_name=operation_name or self.operation_name,
            worker_type=worker_type if worker_type is not None else self.worker_type,
            resources=resources if resources is not None else self.resources,
            max_retry=max_retry if max_retry is not None else self.max_retry,
        )

    def mazepa_id_components(self) -> Any:
        return (self.fn, self.operation_name)

    def __reduce__(self) -> tuple[Any, ...]:
        # A decorated module-level function is the module attribute itself: pickle it by name, so
        # workers import it instead of receiving a copy of its code with every task.
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", None)
        if (
            module
            and qualname
            and module != "__main__"
            and "<" not in qualname
            and module not in cloudpickle.list_registry_pickle_by_value()
        ):
            try:
                if _import_attr(module, qualname) is self:
                    return (_import_attr, (module, qualname))
            except (ImportError, AttributeError):
                pass
        return (
            _rebuild_operation,
            (self.fn, self.operation_name, self.worker_type, self.resources, self.max_retry),
        )

    def __repr__(self) -> str:
        return f"TaskableOperation({self.operation_name})"


def _rebuild_operation(
    fn: Callable[..., Any],
    operation_name: str,
    worker_type: str | None,
    resources: dict[str, float],
    max_retry: int | None,
) -> TaskableOperation[Any, Any]:
    return TaskableOperation(
        fn,
        operation_name=operation_name,
        worker_type=worker_type,
        resources=resources,
        max_retry=max_retry,
    )


@overload
def taskable_operation(
    fn: Callable[P, R],
    *,
    operation_name: str | None = None,
    worker_type: str | None = None,
    resources: Mapping[str, float] | None = None,
    max_retry: int | None = None,
) -> TaskableOperation[P, R]: ...


@overload
def taskable_operation(
    fn: None = None,
    *,
    operation_name: str | None = None,
    worker_type: str | None = None,
    resources: Mapping[str, float] | None = None,
    max_retry: int | None = None,
) -> Callable[[Callable[P, R]], TaskableOperation[P, R]]: ...


def taskable_operation(
    fn: Callable[P, R] | None = None,
    *,
    operation_name: str | None = None,
    worker_type: str | None = None,
    resources: Mapping[str, float] | None = None,
    max_retry: int | None = None,
) -> TaskableOperation[P, R] | Callable[[Callable[P, R]], TaskableOperation[P, R]]:
    """Decorator: make a function a :class:`TaskableOperation`. Use bare or with options:
    ``@taskable_operation(operation_name="copy", worker_type="gpu")``."""

    def wrap(f: Callable[P, R]) -> TaskableOperation[P, R]:
        return TaskableOperation(
            f,
            operation_name=operation_name,
            worker_type=worker_type,
            resources=resources,
            max_retry=max_retry,
        )

    if fn is not None:
        return wrap(fn)
    return wrap


def _operation_options(obj: Any) -> dict[str, Any]:
    options: dict[str, Any] = getattr(type(obj), _OPTIONS_ATTR, None) or {}
    return options


def make_task_for_operation(
    op: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Task[R]:
    """A task that calls the operation object ``op`` (an instance of an operation class)."""
    options = _operation_options(op)
    name_fn = getattr(op, "get_operation_name", None)
    if callable(name_fn):
        name = name_fn()
    else:
        name = options.get("operation_name") or type(op).__name__
    task_id = id_generation.generate_invocation_id(op, args, kwargs, prefix=name)
    return Task(
        fn=op,
        args=args,
        kwargs=kwargs,
        id=task_id,
        operation_name=name,
        worker_type=options.get("worker_type"),
        resources=dict(options.get("resources") or {}),
        max_retry=options.get("max_retry"),
    )


class OperationBase:
    """Base for operation classes (``__call__`` does the work). It gives them ``make_task`` in a
    way static type checkers see; ``@taskable_operation_cls`` gives the same at run time only.

    Define ``get_operation_name(self) -> str`` to name tasks in progress displays (default: the
    class name).
    """

    def make_task(self, *args: Any, **kwargs: Any) -> Task[Any]:
        return make_task_for_operation(self, args, kwargs)  # type: ignore[arg-type]


def _cls_make_task(self: Any, *args: Any, **kwargs: Any) -> Task[Any]:
    return make_task_for_operation(self, args, kwargs)


@overload
def taskable_operation_cls(cls: C) -> C: ...


@overload
def taskable_operation_cls(
    cls: None = None,
    *,
    operation_name: str | None = None,
    worker_type: str | None = None,
    resources: Mapping[str, float] | None = None,
    max_retry: int | None = None,
) -> Callable[[C], C]: ...


def taskable_operation_cls(
    cls: C | None = None,
    *,
    operation_name: str | None = None,
    worker_type: str | None = None,
    resources: Mapping[str, float] | None = None,
    max_retry: int | None = None,
) -> C | Callable[[C], C]:
    """Class decorator: instances of an operation class (one whose ``__call__`` does the work) get
    ``make_task(*args, **kwargs)``. The instance's fields are part of the task id.

    Static type checkers do not see methods added by decorators; inherit :class:`OperationBase` as
    well where that matters.
    """
    _validate_options(operation_name, worker_type, resources, max_retry)

    def wrap(klass: C) -> C:
        if not isinstance(klass, type):
            raise TypeError(f"taskable_operation_cls decorates classes, got {klass!r}")
        if not any("__call__" in k.__dict__ for k in klass.__mro__ if k is not object):
            raise TypeError(f"taskable_operation_cls: {klass.__qualname__} must define __call__")
        setattr(
            klass,
            _OPTIONS_ATTR,
            {
                "operation_name": operation_name,
                "worker_type": worker_type,
                "resources": dict(resources or {}),
                "max_retry": max_retry,
            },
        )
        if "make_task" not in klass.__dict__ and not issubclass(klass, OperationBase):
            klass.make_task = _cls_make_task  # type: ignore[attr-defined]
        return klass

    if cls is not None:
        return wrap(cls)
    return wrap
