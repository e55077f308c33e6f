"""The flow-walking scheduler: which tasks are ready, and what their outcomes unlock.

It knows nothing about how tasks run. A driver asks it for batches of ready tasks
(``next_batch``), hands them to any executor backend, and feeds back the outcomes
(``handle_outcome``). The scheduler honours ``Dependency`` barriers, retries transient failures,
skips work a checkpoint recorded, keeps the progress counters, and pulls from flow generators
lazily: at most ``max_pending`` tasks are materialised and unfinished at any time, so a flow of
millions of tasks runs in bounded memory.

Walk order is depth first: a sub-flow runs as soon as it is yielded, and its parent continues
(concurrently) once the sub-flow blocks on a dependency, finishes, or the look-ahead is full; a
sub-flow whose named dependencies have finished resumes before its ancestors yield more, and its
tasks go before those already waiting: work that consumes earlier results (a reduction of chunks
just computed) does not wait behind the look-ahead of producers, so what it frees (intermediary
files) is freed early.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .exceptions import FlowFailure, TaskFailure
from .flows import Dependency, Flow
from .progress import OperationCounts, ProgressCounters
from .regions import describe_task_region
from .task_outcome import TaskOutcome
from .tasks import Task

__all__ = ["Scheduler"]

# Walker states.
_RUNNABLE = 0
_BLOCKED_ALL = 1  # Dependency(): wait for everything yielded so far
_BLOCKED_NAMED = 2  # Dependency(x, y): wait for those
_EXHAUSTED = 3  # generator finished; waiting for its work to finish
_DONE = 4
_FAILED = 5

_STATE_NAMES = {
    _RUNNABLE: "runnable",
    _BLOCKED_ALL: "waiting for everything yielded before a Dependency()",
    _BLOCKED_NAMED: "waiting for named dependencies",
    _EXHAUSTED: "waiting for its work to finish",
    _DONE: "done",
    _FAILED: "failed",
}


class _Walker:
    """The walk state of one flow (or of the synthetic root around the execution target)."""

    __slots__ = (
        "flow",
        "iterator",
        "n_children",
        "n_held",
        "n_outstanding",
        "parent",
        "queued",
        "record_pending",
        "state",
        "urgent",
        "wait_count",
        "waiting_on",
    )

    def __init__(
        self, flow: Flow | None, parent: _Walker | None, iterator: Iterator[Any] | None = None
    ):
        self.flow = flow
        self.parent = parent
        self.iterator = iterator
        self.n_outstanding = 0  # this flow's own tasks, not finished
        self.n_children = 0  # this flow's sub-flows, not finished
        self.n_held = 0  # finished tasks under it (its own and its sub-flows') whose record waits
        self.record_pending = False  # finished, its record waiting for n_held to drop to 0
        self.state = _RUNNABLE
        self.queued = False
        self.urgent = False  # resumed after named dependencies: its tasks go first
        self.wait_count = 0
        self.waiting_on: list[str] = []

    @property
    def name(self) -> str:
        return self.flow.name if self.flow is not None else "<execution target>"


class _Live:
    """A task that was yielded and has not finished: ready, in flight, or failed for good."""

    __slots__ = ("attempts", "counts", "failed", "in_flight", "owner", "task")

    def __init__(self, task: Task[Any], owner: _Walker, counts: OperationCounts):
        self.task = task
        self.owner = owner
        self.counts = counts
        self.attempts = 0
        self.in_flight = False
        self.failed = False


def _format_exception(exc: BaseException) -> tuple[str, str, str]:
    klass = type(exc)
    name = (
        klass.__qualname__
        if klass.__module__ == "builtins"
        else f"{klass.__module__}.{klass.__qualname__}"
    )
    return name, str(exc), "".join(traceback.format_exception(exc))


class Scheduler:
    """Walks ``target`` (a task, a flow, or a list of them) and tracks its tasks to completion.

    ``done_ids``: task and flow ids finished in an earlier run (from a checkpoint); those are
    skipped. ``record_completed``: collect finished ids for ``drain_completed_ids``.

    Held records (:mod:`.record_holds`): a task held with :meth:`hold` is collected only once
    :meth:`release` d, and every flow containing it (directly or in a sub-flow) only after that.
    """

    def __init__(
        self,
        target: Any,
        *,
        max_retry: int = 3,
        max_retry_non_transient: int = 0,
        done_ids: set[str] | None = None,
        max_pending: int = 10_000,
        counters: ProgressCounters | None = None,
        record_completed: bool = False,
    ):
        _check_target(target)
        for name, value in (
            ("max_retry", max_retry),
            ("max_retry_non_transient", max_retry_non_transient),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"`max_pending` must be a positive integer, got {max_pending!r}")
        self.max_retry = max_retry
        self.max_retry_non_transient = max_retry_non_transient
        self.max_pending = max_pending
        self.counters = counters if counters is not None else ProgressCounters()
        self.task_failures: list[TaskFailure] = []
        self.flow_failures: list[FlowFailure] = []
        self.finished = False

        self._done_ids: set[str] = done_ids or set()
        self._record = record_completed
        self._completed_ids: list[str] = []
        self._held: set[str] = set()  # held tasks not finished yet
        self._held_done: dict[str, _Walker] = {}  # held tasks finished -> their flow
        self._live: dict[str, _Live] = {}
        self._live_flows: dict[str, _Walker] = {}
        self._ready: deque[_Live] = deque()
        self._urgent: deque[_Live] = deque()  # served before _ready (retries, resumed flows)
        self._runnable: deque[_Walker] = deque()
        self._waiters: dict[str, list[_Walker]] = {}
        self._num_in_flight = 0
        self.num_urgent_in_batch = 0
        """How many tasks at the start of the last ``next_batch`` are urgent: retries, and the
        work of flows that resumed after named dependencies (e.g. a reduction of chunks just
        computed); an executor that queues work should run them before what it holds."""
        self._root = _Walker(None, None, iter([target]))
        self._make_runnable(self._root)

    # ---- what drivers use ---------------------------------------------------------------------

    @property
    def num_in_flight(self) -> int:
        return self._num_in_flight

    @property
    def num_ready(self) -> int:
        return len(self._urgent) + len(self._ready)

    @property
    def num_live(self) -> int:
        """Tasks materialised and not finished (ready, in flight, or failed for good)."""
        return len(self._live)

    @property
    def has_failures(self) -> bool:
        return bool(self.task_failures or self.flow_failures)

    def next_batch(self, max_tasks: int) -> list[Task[Any]]:
        """Up to ``max_tasks`` tasks that may run now; they count as in flight until their
        outcomes are handled."""
        self.num_urgent_in_batch = 0
        if max_tasks <= 0:
            return []
        self._pump(max_tasks)
        batch: list[Task[Any]] = []
        for queue in (self._urgent, self._ready):
            n = min(max_tasks - len(batch), len(queue))
            for _ in range(n):
                live = queue.popleft()
                live.in_flight = True
                batch.append(live.task)
            if queue is self._urgent:
                self.num_urgent_in_batch = len(batch)
        self._num_in_flight += len(batch)
        return batch

    def handle_outcome(self, outcome: TaskOutcome[Any]) -> None:
        """Account for the outcome of a task returned by ``next_batch``."""
        live = self._live.get(outcome.task_id)
        if live is None or not live.in_flight:
            return  # not ours, or a duplicate report
        live.in_flight = False
        self._num_in_flight -= 1
        live.attempts += 1
        task = live.task
        if outcome.exception_type is None:
            task.outcome = outcome
            live.counts.done += 1
            self._task_finished(live)
            return
        if outcome.retryable:
            limit = task.max_retry if task.max_retry is not None else self.max_retry
        else:
            limit = self.max_retry_non_transient
        if live.attempts <= limit:
            live.counts.retries += 1
            self._urgent.appendleft(live)
            return
        task.outcome = outcome
        live.failed = True
        live.counts.failed += 1
        self.task_failures.append(
            TaskFailure(
                task_id=task.id,
                operation_name=task.operation_name,
                args_summary=_safe_summary(task),
                exception_type=outcome.exception_type,
                error_message=outcome.error_message or "",
                traceback=outcome.traceback or "",
                attempts=live.attempts,
                region=describe_task_region(task),
            )
        )

    def return_tasks(self, task_ids: Iterable[str]) -> None:
        """Take back in-flight tasks that were not run (e.g. an executor gave up on them); they
        become ready again without counting an attempt."""
        for tid in task_ids:
            live = self._live.get(tid)
            if live is not None and live.in_flight:
                live.in_flight = False
                self._num_in_flight -= 1
                self._urgent.appendleft(live)

    def hold(self, task_id: str) -> None:
        """Collect the id of task ``task_id`` (running now) only once :meth:`release` d."""
        if self._record and task_id in self._live:
            self._held.add(task_id)

    def release(self, task_id: str) -> None:
        """Collect the id of held task ``task_id`` now (when it finishes, if it has not yet),
        then those of the finished flows around it that wait for no other held task."""
        self._held.discard(task_id)
        w: _Walker | None = self._held_done.pop(task_id, None)
        if w is None:
            return
        self._completed_ids.append(task_id)
        while w is not None:
            w.n_held -= 1
            if w.n_held == 0 and w.record_pending:
                assert w.flow is not None
                w.record_pending = False
                self._completed_ids.append(w.flow.id)
            w = w.parent

    def drain_completed_ids(self) -> list[str]:
        """Ids of tasks and flows finished since the last call (with ``record_completed``)."""
        ids = self._completed_ids
        self._completed_ids = []
        return ids

    @property
    def stalled(self) -> bool:
        """Not finished, yet nothing can make progress (failures, or a dependency cycle)."""
        if self.finished or self._num_in_flight or self._ready or self._urgent:
            return False
        return not any(w.state == _RUNNABLE for w in self._runnable)

    def describe_stall(self) -> str:
        waiting = [
            f"{w.name} ({_STATE_NAMES[w.state]}"
            + (f": {', '.join(w.waiting_on)}" if w.waiting_on else "")
            + ")"
            for w in self._live_flows.values()
            if w.state in (_BLOCKED_ALL, _BLOCKED_NAMED, _EXHAUSTED)
        ]
        return "no task can run; waiting flows: " + ("; ".join(waiting[:10]) or "none")

    # ---- walking ------------------------------------------------------------------------------

    def _make_runnable(self, w: _Walker, first: bool = False) -> None:
        w.state = _RUNNABLE
        if first:
            # to the front even if still queued further back (blocked walkers stay queued until
            # they reach the front): the stale entry is skipped or advances it again, harmlessly
            w.queued = True
            self._runnable.appendleft(w)
        elif not w.queued:
            w.queued = True
            self._runnable.append(w)

    def _queued_ahead(self, w: _Walker) -> int:
        """Ready tasks that ``w``'s next tasks would wait behind."""
        return len(self._urgent) if w.urgent else len(self._urgent) + len(self._ready)

    def _pump(self, want: int) -> None:
        runnable = self._runnable
        live = self._live
        max_pending = self.max_pending
        while runnable and len(live) < max_pending:
            w = runnable[0]
            if w.state != _RUNNABLE:
                runnable.popleft()
                w.queued = False
                continue
            if self._queued_ahead(w) >= want:
                return
            self._advance(w, want)

    def _advance(self, w: _Walker, want: int) -> None:
        """Pull items from ``w`` until it blocks, ends, starts a sub-flow or enough is ready."""
        live = self._live
        if w.iterator is None:
            assert w.flow is not None
            try:
                w.iterator = w.flow.iter_items()
            except Exception as e:
                self._fail_flow(w, e)
                return
        iterator = w.iterator
        while self._queued_ahead(w) < want and len(live) < self.max_pending:
            try:
                item = next(iterator)
            except StopIteration:
                w.state = _EXHAUSTED
                self._check_walker(w)
                return
            except Exception as e:
                self._fail_flow(w, e)
                return
            if isinstance(item, Task):
                self._add_task(w, item)
                continue
            try:
                started_flows = self._add_item(w, item)
            except _BadItem as e:
                self._fail_flow(w, e.error)
                return
            if w.state != _RUNNABLE or started_flows:
                return

    def _add_item(self, w: _Walker, item: Any) -> bool:
        """Handle a non-task item; True if sub-flows were started (they go first)."""
        if isinstance(item, Dependency):
            self._block(w, item)
            return False
        if isinstance(item, Flow):
            child = self._add_flow(w, item)
            if child is not None:
                self._runnable.appendleft(child)
                child.queued = True
                return True
            return False
        if isinstance(item, (list, tuple)):
            children: list[_Walker] = []
            self._add_many(w, item, children)
            for child in reversed(children):
                self._runnable.appendleft(child)
                child.queued = True
            return bool(children)
        raise _BadItem(
            TypeError(
                f"flow {w.name!r} yielded {type(item).__name__} ({item!r:.100}); a flow may yield "
                "Task, Flow, Dependency, or a list of tasks and flows"
            )
        )

    def _add_many(
        self, w: _Walker, items: list[Any] | tuple[Any, ...], children: list[_Walker]
    ) -> None:
        for item in items:
            if isinstance(item, Task):
                self._add_task(w, item)
            elif isinstance(item, Flow):
                child = self._add_flow(w, item)
                if child is not None:
                    children.append(child)
            elif isinstance(item, (list, tuple)):
                self._add_many(w, item, children)
            else:
                raise _BadItem(
                    TypeError(
                        f"flow {w.name!r} yielded a list containing {type(item).__name__} "
                        f"({item!r:.100}); lists may hold tasks, flows and lists of them (yield a "
                        "Dependency on its own)"
                    )
                )

    def _add_task(self, w: _Walker, task: Task[Any]) -> None:
        tid = task.id
        counts = self.counters.get(task.operation_name)
        if tid in self._done_ids:
            counts.yielded += 1
            counts.skipped += 1
            task.outcome = TaskOutcome(task_id=tid, skipped=True)
            return
        existing = self._live.get(tid)
        if existing is not None:
            # The same work yielded again while the first is unfinished: a separate occurrence.
            if existing.task is task:
                task = attrs.evolve(task, outcome=None)
            n = 2
            while f"{tid}~{n}" in self._live:
                n += 1
            tid = f"{tid}~{n}"
            task.id = tid
        live = _Live(task, w, counts)
        self._live[tid] = live
        w.n_outstanding += 1
        counts.yielded += 1
        (self._urgent if w.urgent else self._ready).append(live)

    def _add_flow(self, parent: _Walker, flow: Flow) -> _Walker | None:
        try:
            fid = flow.id
        except Exception as e:
            raise _BadItem(e) from e
        if fid in self._done_ids:
            return None
        if fid in self._live_flows:
            n = 2
            while f"{fid}~{n}" in self._live_flows:
                n += 1
            flow = Flow(flow.fn, flow.args, flow.kwargs, name=flow.name, flow_id=f"{fid}~{n}")
            fid = flow.id
        child = _Walker(flow, parent)
        child.urgent = parent.urgent
        self._live_flows[fid] = child
        parent.n_children += 1
        return child

    def _block(self, w: _Walker, dep: Dependency) -> None:
        if dep.is_barrier:
            if w.n_outstanding or w.n_children:
                w.state = _BLOCKED_ALL
            return
        waiting = [i for i in dep.target_ids() if i in self._live or i in self._live_flows]
        if not waiting:
            return
        w.state = _BLOCKED_NAMED
        w.wait_count = len(waiting)
        w.waiting_on = waiting
        for i in waiting:
            self._waiters.setdefault(i, []).append(w)

    # ---- completion ---------------------------------------------------------------------------

    def _task_finished(self, live: _Live) -> None:
        tid = live.task.id
        del self._live[tid]
        if self._record:
            if tid in self._held:
                self._held.discard(tid)
                self._held_done[tid] = live.owner
                w: _Walker | None = live.owner
                while w is not None:
                    w.n_held += 1
                    w = w.parent
            else:
                self._completed_ids.append(tid)
        if self._waiters:
            self._notify(tid)
        w = live.owner
        w.n_outstanding -= 1
        if not w.n_outstanding and not w.n_children:
            self._check_walker(w)

    def _notify(self, finished_id: str) -> None:
        for w in self._waiters.pop(finished_id, ()):
            w.wait_count -= 1
            if w.wait_count == 0 and w.state == _BLOCKED_NAMED:
                w.waiting_on = []
                # depth first: a flow whose dependencies are done goes before its ancestors'
                # later items (e.g. a reduction waiting for some chunks, while its parent
                # still yields the next chunks)
                w.urgent = True
                self._make_runnable(w, first=True)

    def _check_walker(self, w: _Walker) -> None:
        while True:
            if w.n_outstanding or w.n_children:
                return
            if w.state == _BLOCKED_ALL:
                self._make_runnable(w)
                return
            if w.state != _EXHAUSTED:
                return
            w.state = _DONE
            w.iterator = None
            parent = w.parent
            if parent is None:
                self.finished = True
                return
            assert w.flow is not None
            fid = w.flow.id
            del self._live_flows[fid]
            if self._record:
                if w.n_held:  # recorded once the tasks held under it are released
                    w.record_pending = True
                else:
                    self._completed_ids.append(fid)
            if self._waiters:
                self._notify(fid)
            parent.n_children -= 1
            w = parent

    def _fail_flow(self, w: _Walker, exc: BaseException) -> None:
        w.state = _FAILED
        w.iterator = None
        name, message, tb = _format_exception(exc)
        self.flow_failures.append(
            FlowFailure(
                flow_id=w.flow.id if w.flow is not None else "<execution target>",
                flow_name=w.name,
                exception_type=name,
                error_message=message,
                traceback=tb,
            )
        )


class _BadItem(Exception):
    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _safe_summary(task: Task[Any]) -> str:
    try:
        return task.args_summary()
    except Exception as e:
        return f"{task.operation_name}(<arguments not printable: {type(e).__name__}>)"


def _check_target(target: Any, path: str = "target") -> None:
    if isinstance(target, (Task, Flow)):
        return
    if isinstance(target, (list, tuple)):
        for i, item in enumerate(target):
            _check_target(item, f"{path}[{i}]")
        return
    raise TypeError(
        f"mazepa.execute: `{path}` must be a Task, a Flow, or a list of them, got "
        f"{type(target).__name__}: {target!r:.200}"
    )
