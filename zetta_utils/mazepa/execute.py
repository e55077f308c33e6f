"""``mazepa.execute``: run a flow, a task, or a list of them to completion.

The driver loop joins the :class:`~.scheduler.Scheduler` (what may run) to an executor backend
(where it runs): serial in this process for ``num_procs=1``, a pool of local worker processes
otherwise, or any :class:`~.executors.ExecutorBackend` passed as ``executor``.

Failures: a task failing with a transient error (I/O, network, ``mazepa.TransientError``, a crashed
worker) is retried up to ``max_retry`` times; any other exception is a bug and stops the run at its
first occurrence (``max_retry_non_transient=0``). The run then raises :class:`ExecutionError`
naming the task, its arguments and the traceback. With ``raise_on_failure=False`` the run instead
goes on with everything that does not depend on the failed work, and reports failures in the
returned summary.

Ctrl-C asks "Cancel the run? [y/N]" on an interactive terminal (cancels at once otherwise); a
cancelled run stops its workers and raises ``KeyboardInterrupt`` (the CLI exits with 130).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from zetta_utils import builder

from .checkpoint import CheckpointStore
from .exceptions import ExecutionError, FlowFailure, TaskFailure
from .executors import ExecutorBackend, SerialExecutor
from .interrupts import InterruptGuard, ask_cancel_confirmation
from .nesting import NESTING, mark_worker_process  # noqa: F401  (re-exported)
from .progress import ProgressCounters, collecting, make_progress_display, summary_sentence
from .record_holds import run_scope, single_process
from .scheduler import Scheduler
from .semaphores import active_semaphores, configure_semaphores
from .tasks import Task

__all__ = ["ExecutionSummary", "execute", "execution_defaults"]

logger = logging.getLogger(__name__)

_DEFAULTS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "mazepa_execution_defaults", default=None
)
_DEFAULTABLE = ("num_procs", "show_progress", "checkpoint", "max_retry")

_NESTING = NESTING


@contextlib.contextmanager
def execution_defaults(**defaults: Any) -> Iterator[None]:
    """Defaults for ``execute`` arguments a caller leaves unset (``None``) within the block;
    e.g. ``zetta run -p 4`` runs the spec inside ``execution_defaults(num_procs=4)``. Arguments
    given in the spec win. Accepted: num_procs, show_progress, checkpoint, max_retry."""
    unknown = set(defaults) - set(_DEFAULTABLE)
    if unknown:
        raise TypeError(
            f"execution_defaults: unknown argument(s) {sorted(unknown)}; "
            f"accepted: {', '.join(_DEFAULTABLE)}"
        )
    merged = {**(_DEFAULTS.get() or {}), **defaults}
    token = _DEFAULTS.set(merged)
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


def _default(name: str, value: Any, fallback: Any) -> Any:
    if value is not None:
        return value
    defaults = _DEFAULTS.get() or {}
    got = defaults.get(name)
    return fallback if got is None else got


@attrs.frozen
class ExecutionSummary:
    """What a finished run did."""

    tasks_done: int
    tasks_skipped: int
    retries: int
    tasks_failed: int
    elapsed_secs: float
    task_failures: list[TaskFailure] = attrs.field(factory=list)
    flow_failures: list[FlowFailure] = attrs.field(factory=list)
    completed: bool = True
    """False when failures (with ``raise_on_failure=False``) left work undone."""
    voxels_processed: float = 0.0
    """Voxels this run processed, as the flows declared them (``mazepa.progress.expect_tasks``)."""
    bytes_written: float = 0.0
    """Bytes this run wrote, as the flows declared them."""

    @property
    def tasks_per_sec(self) -> float:
        return self.tasks_done / self.elapsed_secs if self.elapsed_secs > 0 else 0.0

    def sentence(self) -> str:
        """The summary for people: tasks done, skipped and failed, time, throughput."""
        return summary_sentence(
            tasks_done=self.tasks_done,
            tasks_skipped=self.tasks_skipped,
            tasks_failed=self.tasks_failed,
            elapsed_secs=self.elapsed_secs,
            retries=self.retries,
            voxels=self.voxels_processed,
            bytes_written=self.bytes_written,
            completed=self.completed,
        )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return value


@builder.register("mazepa.execute")
def execute(
    target: Any,
    *,
    num_procs: int | None = None,
    max_retry: int | None = None,
    max_retry_non_transient: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_interval_sec: float = 30.0,
    show_progress: bool | None = None,
    semaphores_spec: Mapping[str, int] | None = None,
    batch_size: int | None = None,
    raise_on_failure: bool = True,
    max_pending_tasks: int = 10_000,
    executor: ExecutorBackend | None = None,
    progress_console: Any = None,
    progress_log_interval_sec: float = 5.0,
    worker_start_cost_s: float | None = None,
) -> ExecutionSummary:
    """Run ``target`` (a Flow, a Task, or a list of them) to completion.

    :param num_procs: 1 (default): run in this process (``mazepa.single_process()`` is True in
        its flows and tasks, see :mod:`.record_holds`); N > 1: N local worker processes.
    :param max_retry: retries of a task failing with a transient error (default 3).
    :param max_retry_non_transient: retries for other errors (default 0: a bug stops the run).
    :param checkpoint: a file path or URL recording finished task/flow ids; a rerun with the same
        checkpoint skips them.
    :param checkpoint_interval_sec: how often new ids are written to a remote checkpoint (and
        always at the end); a local checkpoint file is appended to before each step of the flows.
    :param show_progress: live display on a terminal, periodic log lines otherwise (default True).
    :param semaphores_spec: limits of ``mazepa.semaphore`` types, e.g. ``{"cuda": 1, "read": 4}``.
    :param batch_size: most tasks sent to a worker at once (default 32; 64 serially). Both
        executors size their batches to about 20 ms of work from the durations seen so far.
    :param raise_on_failure: raise ``ExecutionError`` at the first permanent failure (default);
        if False, run what does not depend on failed work and report failures in the summary.
    :param max_pending_tasks: look-ahead: most tasks materialised from flows and unfinished.
    :param executor: an executor backend to use instead of the local ones; it is not shut down.
    :param progress_console: the rich ``Console`` to show progress on (default: stdout); when it
        is not a terminal, log lines go to stderr instead.
    :param progress_log_interval_sec: seconds between progress log lines.
    :param worker_start_cost_s: with ``num_procs`` > 1, what starting the workers costs, in
        seconds (default: an estimate, larger while the fork server has not started). The first
        task runs in this process; the workers start only if the tasks the flows declared and
        that are left, at that task's duration, take longer than that split over the workers
        plus the start (else the run stays serial, and logs why). 0: always start them.
    :returns: an :class:`ExecutionSummary`. Each task's outcome is also in ``task.outcome``.
    :raises ExecutionError: tasks or flows failed for good (with ``raise_on_failure``), or the
        flows wait on each other (a dependency deadlock).
    :raises KeyboardInterrupt: the run was cancelled with Ctrl-C.

    Local executors run every task whatever its ``worker_type``. A run started inside a task (a
    nested run) shows no progress by default, uses the enclosing run's semaphores unless given
    ``semaphores_spec``, and leaves Ctrl-C handling to the outermost run. ``num_procs``,
    ``show_progress``, ``checkpoint`` and ``max_retry`` left unset take the values of an
    enclosing ``execution_defaults(...)`` block (``checkpoint`` only in the outermost run).
    """
    settings = _resolve_settings(
        num_procs, max_retry, show_progress, checkpoint, batch_size, executor
    )
    store, done_ids = _open_checkpoint(settings.checkpoint, checkpoint_interval_sec)
    counters = ProgressCounters()
    _expect_listed_tasks(counters, target)
    scheduler = Scheduler(
        target,
        max_retry=settings.max_retry,
        max_retry_non_transient=max_retry_non_transient,
        done_ids=done_ids,
        max_pending=max_pending_tasks,
        counters=counters,
        record_completed=store is not None,
    )
    display = make_progress_display(
        counters,
        settings.show_progress,
        console=progress_console,
        log_interval_sec=progress_log_interval_sec,
    )
    with contextlib.ExitStack() as stack:
        guard = stack.enter_context(InterruptGuard()) if not settings.nesting else None
        stack.callback(_NESTING.reset, _NESTING.set(settings.nesting + 1))
        stack.enter_context(collecting(counters))  # flows declare their task counts into it
        # single_process() here is the enclosing run's (a nested run in one that is not, or in a
        # worker process, is not either)
        single = executor is None and settings.num_procs == 1
        single = single and (settings.nesting == 0 or single_process())
        stack.enter_context(run_scope(scheduler if single else None))
        backend = _choose_backend(
            stack, settings, executor, semaphores_spec, batch_size, counters, worker_start_cost_s
        )
        _run_to_end(
            scheduler,
            backend,
            _RunControl(guard, store, display, owned=executor is None),
            raise_on_failure,
        )
    summary = _summary(counters, scheduler)
    if scheduler.has_failures and raise_on_failure:
        raise ExecutionError(scheduler.task_failures, scheduler.flow_failures)
    return summary


@attrs.frozen
class _Settings:
    """The run's arguments after the defaults of an enclosing ``execution_defaults`` block."""

    nesting: int
    """How many runs enclose this one (0: the outermost run)."""
    num_procs: int
    max_retry: int
    show_progress: bool
    checkpoint: str | os.PathLike[str] | None


def _resolve_settings(
    num_procs: int | None,
    max_retry: int | None,
    show_progress: bool | None,
    checkpoint: str | os.PathLike[str] | None,
    batch_size: int | None,
    executor: Any,
) -> _Settings:
    """The arguments left unset, from ``execution_defaults``; bad ones refused."""
    nesting = _NESTING.get()
    num_procs = _positive_int("num_procs", _default("num_procs", num_procs, 1))
    max_retry = _default("max_retry", max_retry, 3)
    show = bool(_default("show_progress", show_progress, not nesting))
    # A default checkpoint (``zetta run``'s resume file) belongs to the outermost run: a run nested
    # in a task must recompute everything it was asked for, whatever an earlier run recorded.
    checkpoint = checkpoint if nesting else _default("checkpoint", checkpoint, None)
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    if executor is not None and not isinstance(executor, ExecutorBackend):
        raise TypeError(
            "`executor` must have free_slots(), submit(tasks), poll_outcomes(timeout) and "
            f"shutdown(cancel); got {type(executor).__name__}"
        )
    return _Settings(nesting, num_procs, max_retry, show, checkpoint)


def _open_checkpoint(
    checkpoint: str | os.PathLike[str] | None, interval_sec: float
) -> tuple[CheckpointStore | None, set[str]]:
    """The checkpoint store (None without one) and the ids it holds from earlier runs."""
    store = CheckpointStore(checkpoint, interval_sec) if checkpoint is not None else None
    done_ids = store.load() if store is not None else set()
    if done_ids:
        logger.info(
            "resuming: %d task(s) and flow(s) finished earlier are on record in %s and will be "
            "skipped",
            len(done_ids),
            checkpoint,
        )
    return store, done_ids


def _choose_backend(
    stack: contextlib.ExitStack,
    settings: _Settings,
    executor: ExecutorBackend | None,
    semaphores_spec: Mapping[str, int] | None,
    batch_size: int | None,
    counters: ProgressCounters,
    worker_start_cost_s: float | None,
) -> ExecutorBackend:
    """Where the tasks run: the given executor, this process, or local worker processes; the
    semaphores they share are configured in ``stack`` (a nested run keeps its enclosing run's)."""
    num_procs = settings.num_procs
    keep_semaphores = semaphores_spec is None and active_semaphores() is not None
    if executor is not None:
        if not keep_semaphores:
            stack.enter_context(configure_semaphores(semaphores_spec, num_procs))
        return executor
    if num_procs == 1:
        if not keep_semaphores:
            stack.enter_context(configure_semaphores(semaphores_spec, 1))
        return SerialExecutor(batch_size or 64)
    import multiprocessing

    from .local_pool import LocalProcessExecutor, default_start_method

    ctx = multiprocessing.get_context(default_start_method())
    semaphores = stack.enter_context(configure_semaphores(semaphores_spec, num_procs, ctx))

    def make_pool() -> LocalProcessExecutor:
        return LocalProcessExecutor(
            num_procs, semaphores=semaphores, max_batch_size=batch_size or 32
        )

    return _local_backend(num_procs, make_pool, counters, worker_start_cost_s, batch_size)


@attrs.frozen
class _RunControl:
    """What the driver loop reports to and is interrupted by."""

    guard: InterruptGuard | None
    """Asks before cancelling on Ctrl-C (None in a nested run: it stops at once)."""
    store: CheckpointStore | None
    display: Any
    owned: bool
    """The backend was made for this run (and is shut down at its end)."""


def _run_to_end(
    scheduler: Scheduler,
    backend: ExecutorBackend,
    control: _RunControl,
    raise_on_failure: bool,
) -> None:
    """Drive the run; then, however it ended, stop an owned backend, record what finished and
    close the display."""
    control.display.start()
    status = "cancelled"
    try:
        _drive(scheduler, backend, control, raise_on_failure)
        status = "failed" if scheduler.has_failures else "done"
    except Exception:
        status = "failed"
        raise
    finally:
        if control.owned:
            # Anything still running after a failure or Ctrl-C is stopped, not awaited.
            backend.shutdown(cancel=not scheduler.finished)
        if control.store is not None:
            control.store.record(scheduler.drain_completed_ids())
            control.store.flush()
        control.display.stop(status)


def _summary(counters: ProgressCounters, scheduler: Scheduler) -> ExecutionSummary:
    totals = counters.totals()
    voxels, written = counters.work_done()
    return ExecutionSummary(
        tasks_done=totals.done,
        tasks_skipped=totals.skipped,
        retries=totals.retries,
        tasks_failed=totals.failed,
        elapsed_secs=counters.clock() - counters.start_time,
        task_failures=list(scheduler.task_failures),
        flow_failures=list(scheduler.flow_failures),
        completed=scheduler.finished,
        voxels_processed=voxels,
        bytes_written=written,
    )


def _local_backend(
    num_procs: int,
    make_pool: Callable[[], ExecutorBackend],
    counters: ProgressCounters,
    start_cost_s: float | None,
    batch_size: int | None,
) -> ExecutorBackend:
    """Workers at once (``start_cost_s`` 0), else the first task here and workers only if the
    run's declared work left is worth their start."""
    from .local_pool import SerialUnlessWorthIt, estimated_start_cost_s

    if start_cost_s is None:
        start_cost_s = estimated_start_cost_s()
    if start_cost_s < 0:
        raise ValueError(f"`worker_start_cost_s` must be >= 0, got {start_cost_s!r}")
    if start_cost_s == 0:
        return make_pool()
    return SerialUnlessWorthIt(
        num_procs,
        make_pool=make_pool,
        tasks_left=lambda: _declared_tasks_left(counters),
        start_cost_s=start_cost_s,
        serial_batch_size=batch_size or 64,
    )


def _declared_tasks_left(counters: ProgressCounters) -> int | None:
    """Tasks the flows declared and that have not finished yet; None when a kind of task was
    yielded that no flow declared (how much is left is then unknown)."""
    left = 0
    for counts in counters.by_name.values():
        total = counts.total
        if total is None:
            if counts.yielded:
                return None
            continue
        left += max(0, total - counts.finished - counts.failed)
    return left


def _expect_listed_tasks(counters: ProgressCounters, target: Any) -> None:
    """A target that is a task or a list of tasks (no flows) is its whole run: its totals are
    known before it starts."""
    tasks = target if isinstance(target, (list, tuple)) else [target]
    if not all(isinstance(t, Task) for t in tasks):
        return
    for task in tasks:
        counters.expect(task.operation_name, 1)


def _drive(
    scheduler: Scheduler,
    backend: ExecutorBackend,
    control: _RunControl,
    raise_on_failure: bool,
) -> None:
    """Submit what may run while there are free slots, and hand outcomes to the scheduler,
    until the run finishes, stops at a failure, deadlocks or is cancelled."""
    guard, store, display = control.guard, control.store, control.display
    while True:
        try:
            if guard is not None:
                guard.check()
            stop_submitting = raise_on_failure and scheduler.has_failures
            if not stop_submitting:
                free = backend.free_slots()
                if free > 0:
                    if store is not None and store.is_local:
                        # Before the flows advance: a flow's next step may destroy what finished
                        # work needed (e.g. delete intermediaries once read), so that work must be
                        # on record first, or a resumed run would redo it without its inputs.
                        store.flush()
                    batch = scheduler.next_batch(free)
                    if batch:
                        _submit(backend, batch, scheduler.num_urgent_in_batch)
            if scheduler.finished:
                return
            if stop_submitting:
                _collect_finished(scheduler, backend)
                return
            if scheduler.num_in_flight == 0:
                if scheduler.has_failures:
                    return  # what is left depends on failed work
                if scheduler.stalled:
                    raise ExecutionError(note=f"dependency deadlock: {scheduler.describe_stall()}")
                continue
            outcomes = backend.poll_outcomes(0.2)
            for outcome in outcomes:
                scheduler.handle_outcome(outcome)
            if store is not None:
                store.record(scheduler.drain_completed_ids())
                store.maybe_flush()
            display.refresh()
        except KeyboardInterrupt:
            # A nested run stops at once; the outermost run is the one that asks.
            if guard is None or ask_cancel_confirmation(display.pause, display.resume):
                _collect_finished(scheduler, backend)
                raise


def _submit(backend: ExecutorBackend, batch: list[Task[Any]], num_urgent: int) -> None:
    """``batch`` to the backend; its first ``num_urgent`` tasks before what the backend already
    holds, where it can (``submit_first``)."""
    submit_first = getattr(backend, "submit_first", None) if num_urgent else None
    if submit_first is None:
        backend.submit(batch)
        return
    submit_first(batch[:num_urgent])
    if len(batch) > num_urgent:
        backend.submit(batch[num_urgent:])


def _collect_finished(scheduler: Scheduler, backend: ExecutorBackend) -> None:
    """Account for outcomes the backend already has, so that finished work is checkpointed."""
    collect = getattr(backend, "collect_finished", None)
    if collect is None:
        return
    try:
        outcomes = collect()
    except Exception:
        return
    for outcome in outcomes:
        scheduler.handle_outcome(outcome)
