"""``mazepa.execute_locally`` and ``mazepa.execute`` as specs name them: the original's
arguments for a run.

Specs written for the original run flows with ``{"@type": "mazepa.execute_locally", ...}``. Here
it is a thin adapter over :func:`~.execute.execute`: the arguments that mean the same thing are
passed on; those that tuned the original's queue-based local machinery (file queues, batch
sleeps, dry-run estimation, progress summaries) have no counterpart, because local runs here
use an in-process scheduler and a process pool, and are accepted without effect; those asking
for a different execution state or queues are refused with what replaces them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from zetta_utils import builder

from .execute import ExecutionSummary, execute

__all__ = ["execute_from_spec", "execute_locally"]

logger = logging.getLogger(__name__)


@builder.register("mazepa.execute_locally")
def execute_locally(
    target: Any,
    max_batch_len: int = 1000,
    batch_gap_sleep_sec: float = 0.5,
    state_constructor: Callable[..., Any] | None = None,
    execution_id: str | None = None,
    raise_on_failed_task: bool = True,
    do_dryrun_estimation: bool = True,
    show_progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    queues_dir: str | None = None,
    checkpoint_interval_sec: float | None = 150,
    raise_on_failed_checkpoint: bool = True,
    num_procs: int | None = None,
    semaphores_spec: Mapping[str, int] | None = None,
    debug: bool = False,
    write_progress_summary: bool = False,
    require_interrupt_confirm: bool = True,
    suppress_worker_logs: bool = True,
    resource_monitor_interval: float | None = 1.0,
) -> ExecutionSummary:
    """Run ``target`` (a flow, a task, or a list of them) on this machine.

    :param num_procs: worker processes (default 1, or ``zetta run -p N``); ``debug=True`` runs
        everything in this process instead, as the original's debug mode does.
    :param raise_on_failed_task: stop and raise at the first task that fails for good (default);
        False goes on with the work that does not depend on it.
    :param show_progress: live progress display (default on at the outermost run).
    :param checkpoint: a file recording finished task and flow ids; a rerun skips them.
    :param checkpoint_interval_sec: how often that file is written (also at the end).
    :param semaphores_spec: limits of ``mazepa.semaphore`` types, e.g. ``{"cuda": 1}``.
    :param state_constructor: not supported: execution state is internal here (resume runs with
        ``checkpoint``); only None is accepted.

    ``max_batch_len``, ``batch_gap_sleep_sec``, ``execution_id``, ``do_dryrun_estimation``,
    ``queues_dir``, ``raise_on_failed_checkpoint``, ``write_progress_summary``,
    ``require_interrupt_confirm``, ``suppress_worker_logs`` and ``resource_monitor_interval``
    tuned the original's queue-based local run; they are accepted and have no effect (batches
    are sized from measured task durations, task counts are shown as flows produce them, and
    Ctrl-C asks for confirmation only on an interactive terminal).
    """
    if state_constructor is not None:
        raise ValueError(
            "`state_constructor`: custom execution states are not supported; the run's state is "
            "internal (use `checkpoint` to resume a run)"
        )
    if debug:
        if num_procs not in (None, 1):
            raise ValueError(
                f"`debug` runs in this process: `num_procs` must be 1 or unset, got {num_procs!r}"
            )
        num_procs = 1
    ignored = {
        "max_batch_len": (max_batch_len, 1000),
        "batch_gap_sleep_sec": (batch_gap_sleep_sec, 0.5),
        "execution_id": (execution_id, None),
        "do_dryrun_estimation": (do_dryrun_estimation, True),
        "queues_dir": (queues_dir, None),
        "raise_on_failed_checkpoint": (raise_on_failed_checkpoint, True),
        "write_progress_summary": (write_progress_summary, False),
        "require_interrupt_confirm": (require_interrupt_confirm, True),
        "suppress_worker_logs": (suppress_worker_logs, True),
        "resource_monitor_interval": (resource_monitor_interval, 1.0),
    }
    _log_ignored(ignored, "mazepa.execute_locally")
    return execute(
        target,
        num_procs=num_procs,
        show_progress=show_progress,
        checkpoint=checkpoint,
        # None: no periodic writes (the record is still written at the end)
        checkpoint_interval_sec=math.inf
        if checkpoint_interval_sec is None
        else checkpoint_interval_sec,
        semaphores_spec=semaphores_spec,
        raise_on_failure=raise_on_failed_task,
    )


_QUEUES_REPLACED = (
    "queue objects are not accepted here: for remote workers use mazepa.execute_on_gcp_with_sqs, "
    "for local processes `num_procs`"
)


def execute_from_spec(
    target: Any,
    *,
    task_queue: Any = None,
    outcome_queue: Any = None,
    max_batch_len: int = 1000,
    batch_gap_sleep_sec: float = 0.5,
    state_constructor: Callable[..., Any] | None = None,
    execution_id: str | None = None,
    raise_on_failed_task: bool | None = None,
    do_dryrun_estimation: bool = True,
    show_progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_interval_sec: float | None = 30.0,
    raise_on_failed_checkpoint: bool = True,
    write_progress_summary: bool = False,
    require_interrupt_confirm: bool = True,
    **execute_kwargs: Any,
) -> ExecutionSummary:
    """``{"@type": "mazepa.execute"}``: :func:`~.execute.execute` taking the original's
    arguments as well (``raise_on_failed_task`` is ``raise_on_failure``; the queue-tuning ones
    are accepted without effect, as in ``mazepa.execute_locally``; ``task_queue``,
    ``outcome_queue`` and ``state_constructor`` are refused). Other arguments go to ``execute``."""
    if task_queue is not None or outcome_queue is not None:
        raise ValueError(f"`task_queue`/`outcome_queue`: {_QUEUES_REPLACED}")
    if state_constructor is not None:
        raise ValueError(
            "`state_constructor`: custom execution states are not supported; the run's state is "
            "internal (use `checkpoint` to resume a run)"
        )
    if raise_on_failed_task is not None:
        if "raise_on_failure" in execute_kwargs:
            raise TypeError("give one of `raise_on_failed_task` and `raise_on_failure`")
        execute_kwargs["raise_on_failure"] = raise_on_failed_task
    _log_ignored(
        {
            "max_batch_len": (max_batch_len, 1000),
            "batch_gap_sleep_sec": (batch_gap_sleep_sec, 0.5),
            "execution_id": (execution_id, None),
            "do_dryrun_estimation": (do_dryrun_estimation, True),
            "raise_on_failed_checkpoint": (raise_on_failed_checkpoint, True),
            "write_progress_summary": (write_progress_summary, False),
            "require_interrupt_confirm": (require_interrupt_confirm, True),
        },
        "mazepa.execute",
    )
    return execute(
        target,
        show_progress=show_progress,
        checkpoint=checkpoint,
        checkpoint_interval_sec=math.inf
        if checkpoint_interval_sec is None
        else checkpoint_interval_sec,
        **execute_kwargs,
    )


def _log_ignored(values: dict[str, tuple[Any, Any]], where: str) -> None:
    changed = sorted(name for name, (value, default) in values.items() if value != default)
    if changed:
        logger.info("%s: %s have no effect in local runs here", where, ", ".join(changed))


# Specs reach ``execute`` through this adapter (the Python function keeps its own signature).
builder.unregister("mazepa.execute", execute)
builder.register("mazepa.execute")(execute_from_spec)
