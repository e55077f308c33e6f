"""Remote execution: ``execute_with_queues`` (any queues) and ``execute_on_gcp_with_sqs``.

``execute_with_queues`` is ``mazepa.execute`` with a :class:`~.queue_executor.QueueExecutor`:
same scheduler, retries, dependencies, checkpoints and progress display; the tasks run on
whatever workers read the queues.

``execute_on_gcp_with_sqs`` owns a whole run: it names the run (``adjective-animal-NNNN``), creates
its SQS work and outcome queues, writes a run record with a heartbeat, starts workers (local
processes with ``local_test``, otherwise a Kubernetes Deployment), runs the flow, and deletes all
of it at the end, on error and after a confirmed Ctrl-C. Failed tasks end in a dead-letter report
(with tracebacks) next to the run records, and the run raises ``ExecutionError``. With
``worker_groups`` there is a work queue and a Deployment (or local pool) per group, and each task
is sent to the group its ``worker_type`` names (see :mod:`.worker_groups`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import attrs

from zetta_utils import builder
from zetta_utils.cloud_management.kubernetes_workers import (
    WorkerDeploymentSpec,
    check_labels,
    create_worker_deployments,
    delete_worker_deployment,
    gke_context_name,
    write_group_manifests,
    write_manifests,
)
from zetta_utils.cloud_management.run_records import (
    DeploymentRef,
    QueueRef,
    RunHeartbeat,
    RunRecord,
    RunRecordStore,
)
from zetta_utils.mazepa import ExecutionError, ExecutionSummary, execute
from zetta_utils.mazepa.exceptions import TaskFailure
from zetta_utils.mazepa.interrupts import mark_raised_while_running
from zetta_utils.message_queues.base import MessageQueue
from zetta_utils.message_queues.signing import RUN_KEY_ENV, MessageSigner, encode_key, new_run_key
from zetta_utils.message_queues.sqs import (
    SQSQueue,
    create_sqs_queue,
    resolve_endpoint,
    resolve_region,
)

from .join import JoinInfo, default_join_path, worker_command, write_join_file
from .local_workers import LocalWorkerPool
from .pod_workers import pod_worker_command
from .queue_executor import QueueExecutor, QueueExecutorStats
from .run_ids import check_run_id, generate_run_id
from .worker_groups import (
    WorkerGroup,
    check_semaphores_spec,
    parse_worker_groups,
    worker_type_router,
)

__all__ = [
    "RemoteExecutionSummary",
    "execute_on_gcp_with_sqs",
    "execute_with_queues",
    "queue_names",
]

logger = logging.getLogger(__name__)

_AWS_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@attrs.frozen
class RemoteExecutionSummary(ExecutionSummary):
    """An :class:`~zetta_utils.mazepa.ExecutionSummary` plus what the queues saw."""

    run_id: str = ""
    queue_stats: QueueExecutorStats | None = None


def queue_names(run_id: str) -> tuple[str, str]:
    """The work and outcome queue names of a run."""
    return f"zetta-{run_id}-work", f"zetta-{run_id}-outcome"


def execute_with_queues(
    target: Any,
    work_queue: MessageQueue,
    outcome_queue: MessageQueue,
    signer: MessageSigner,
    *,
    max_retry: int | None = None,
    max_retry_non_transient: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_interval_sec: float = 30.0,
    show_progress: bool | None = None,
    raise_on_failure: bool = True,
    max_pending_tasks: int = 10_000,
    max_outstanding_tasks: int = 1000,
    max_task_deliveries: int = 5,
    large_payload_location: str | None = None,
    tick: Callable[[], None] | None = None,
    progress_console: Any = None,
    route: Callable[[Any], MessageQueue] | None = None,
) -> RemoteExecutionSummary:
    """Run ``target`` on the workers serving ``work_queue``; outcomes come back on
    ``outcome_queue``. Queue-agnostic: any :class:`~zetta_utils.message_queues.MessageQueue`.

    :param signer: the run's id and key; workers must hold the same key.
    :param max_outstanding_tasks: most tasks sent and not yet answered.
    :param max_task_deliveries: a task handed out more often than this (its workers kept dying)
        fails instead of being handed out again.
    :param large_payload_location: a folder or bucket URL (readable by the workers) for tasks and
        outcomes too large for a queue message; None makes such tasks fail with a clear error.
    :param tick: called on every poll for outcomes (e.g. ``LocalWorkerPool.check``).
    :param route: the work queue of each task (worker groups; see ``QueueExecutor``); default:
        ``work_queue`` for all.
    Other arguments: as ``mazepa.execute``. Raises ``ExecutionError`` on permanent failures.
    """
    _check_queue_arguments(work_queue, outcome_queue, signer)
    backend = QueueExecutor(
        work_queue,
        outcome_queue,
        signer,
        max_outstanding=max_outstanding_tasks,
        max_deliveries=max_task_deliveries,
        payload_location=large_payload_location,
        tick=tick,
        route=route,
    )
    try:
        summary = execute(
            target,
            max_retry=max_retry,
            max_retry_non_transient=max_retry_non_transient,
            checkpoint=checkpoint,
            checkpoint_interval_sec=checkpoint_interval_sec,
            show_progress=show_progress,
            raise_on_failure=raise_on_failure,
            max_pending_tasks=max_pending_tasks,
            executor=backend,
            progress_console=progress_console,
        )
    finally:
        backend.shutdown()
        _warn_of_foreign_messages(signer.run_id, backend.stats)
    return RemoteExecutionSummary(
        **attrs.asdict(summary, recurse=False), run_id=signer.run_id, queue_stats=backend.stats
    )


def _check_queue_arguments(
    work_queue: MessageQueue, outcome_queue: MessageQueue, signer: MessageSigner
) -> None:
    if not isinstance(signer, MessageSigner):
        raise TypeError(f"`signer` must be a MessageSigner, got {type(signer).__name__}")
    for name, q in (("work_queue", work_queue), ("outcome_queue", outcome_queue)):
        if not isinstance(q, MessageQueue):
            raise TypeError(
                f"`{name}` must be a MessageQueue (e.g. SQSQueue), got {type(q).__name__}"
            )


def _warn_of_foreign_messages(run_id: str, stats: QueueExecutorStats) -> None:
    """Messages refused for their signature: someone other than the run wrote to its queues."""
    if stats.rejections or stats.forged_outcomes:
        logger.warning(
            "run %s: workers refused %d message(s) and this producer %d; someone other than "
            "this run wrote to its queues",
            run_id,
            len(stats.rejections),
            stats.forged_outcomes,
        )


@contextlib.contextmanager
def _signal_handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM within the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _deferring_cleanup(run_id: str) -> contextlib.AbstractContextManager[None]:
    """During cleanup, Ctrl-C and SIGTERM must not leave resources behind: they only say to wait."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        print(
            f"\nDeleting the queues and workers of run {run_id}; please wait.",
            file=sys.stderr,
            flush=True,
        )

    return _signal_handlers(_handler)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM (``kill``, a stopping container) ends the run like a confirmed Ctrl-C: cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dead_letter_report(failures: list[TaskFailure]) -> str:
    return json.dumps([attrs.asdict(f) for f in failures], indent=1)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be true or false, got {value!r}")
    return value


_NO_EFFECT_DEFAULTS: dict[str, Any] = {
    "max_batch_len": 10000,
    "batch_gap_sleep_sec": 0.5,
    "do_dryrun_estimation": True,
    "raise_on_failed_checkpoint": True,
    "write_progress_summary": False,
    "require_interrupt_confirm": True,
    "suppress_worker_logs": True,
    "resource_monitor_interval": None,
    "local_test_queues_dir": None,
    "sqs_based_scaling": True,
    "idle_worker_timeout": 300,
}
"""The original's arguments that tuned machinery this design does differently; accepted, and
without effect (see ``execute_on_gcp_with_sqs``)."""

_PER_GROUP = {
    "worker_replicas": "replicas",
    "worker_resources": "resource_limits",
    "worker_resource_requests": "resource_requests",
    "worker_labels": "labels",
    "provisioning_model": "provisioning_model",
}


@attrs.frozen
class _GroupPlan:
    group: WorkerGroup
    queue_name: str
    deployment_name: str
    spec: WorkerDeploymentSpec | None = None


@attrs.frozen
class _Execution:
    """The arguments that go on to ``mazepa.execute`` (through ``execute_with_queues``)."""

    max_retry: int | None
    max_retry_non_transient: int
    checkpoint: str | None
    checkpoint_interval_sec: float
    show_progress: bool | None
    raise_on_failure: bool
    max_pending_tasks: int
    max_task_deliveries: int
    max_outstanding_tasks: int | None


@attrs.frozen
class _QueueRun:
    """The arguments of a run on queues and workers; checked when made."""

    groups: tuple[WorkerGroup, ...]
    grouped: bool
    """The run has ``worker_groups`` (rather than the one group of the ``worker_*`` arguments)."""
    worker_image: str | None
    worker_cluster_name: str | None
    worker_cluster_region: str | None
    worker_cluster_project: str | None
    local_test: bool
    local_workers: int | None
    sqs_region: str | None
    sqs_endpoint: str | None
    worker_namespace: str
    worker_env: Mapping[str, str] | None
    worker_aws_credentials: bool
    worker_prefetch: int
    kube_context: str | None
    kube_config_path: str | None
    dry_run_manifest_dir: str | None
    visibility_timeout_s: int
    run_id: str | None
    records_location: str | None
    heartbeat_interval_s: float
    large_payload_location: str | None
    local_worker_log_dir: str | None
    start_workers: bool
    worker_join_file: str | None

    def __attrs_post_init__(self) -> None:
        _check_queue_run(self)

    @property
    def cluster_workers(self) -> bool:
        """The workers are a Kubernetes Deployment this run creates."""
        return self.start_workers and not self.local_test

    @property
    def needs_cluster_spec(self) -> bool:
        """The Deployments are described (to create them, or for a dry run's manifests)."""
        return self.cluster_workers or self.dry_run_manifest_dir is not None


@attrs.frozen
class _Run:
    """What a run on queues is called and what it gives its workers: all decided before anything
    is created."""

    run_id: str
    plans: tuple[_GroupPlan, ...]
    region: str
    endpoint: str | None
    outcome_name: str
    key: bytes = attrs.field(repr=False)
    signer: MessageSigner = attrs.field(repr=False)
    context: str | None
    """The kubeconfig context of the cluster (None without one)."""
    secret_name: str
    worker_args: tuple[str, ...]
    plain_env: dict[str, str]
    secret_env: dict[str, str] = attrs.field(repr=False)
    """The workers' environment that goes into the run's Secret."""

    @property
    def specs(self) -> list[WorkerDeploymentSpec]:
        return [p.spec for p in self.plans if p.spec is not None]


@attrs.define
class _Made:
    """What the run has created so far: what its end deletes."""

    queues: list[QueueRef] = attrs.field(factory=list)
    join_paths: list[Path] = attrs.field(factory=list)
    pools: list[LocalWorkerPool] = attrs.field(factory=list)
    created: list[str] = attrs.field(factory=list)
    """The Secret and Deployments created so far."""


@attrs.frozen
class _Queues:
    work: dict[str, SQSQueue]
    """Each group's work queue, by group key."""
    outcome: SQSQueue


_A = TypeVar("_A", bound=attrs.AttrsInstance)


def _from_arguments(cls: type[_A], arguments: Mapping[str, Any], **given: Any) -> _A:
    """An attrs class whose fields are named as arguments of ``execute_on_gcp_with_sqs``, from
    their values (``arguments``: its ``locals()``), except the fields ``given``."""
    taken = {f.name: arguments[f.name] for f in attrs.fields(cls) if f.name not in given}
    return cls(**taken, **given)


@builder.register("mazepa.execute_on_gcp_with_sqs")
def execute_on_gcp_with_sqs(
    target: Any,
    worker_image: str | None = None,
    worker_cluster_name: str | None = None,
    worker_cluster_region: str | None = None,
    worker_cluster_project: str | None = None,
    worker_resources: Mapping[str, Any] | None = None,
    worker_replicas: int | None = None,
    local_test: bool = False,
    *,
    worker_groups: Mapping[str, Mapping[str, Any]] | None = None,
    worker_cluster: Any = None,
    worker_lease_sec: int | None = None,
    worker_labels: Mapping[str, str] | None = None,
    worker_resource_requests: Mapping[str, Any] | None = None,
    provisioning_model: str | None = None,
    num_procs: int | None = None,
    semaphores_spec: Mapping[str, int] | None = None,
    extra_ctx_managers: Iterable[contextlib.AbstractContextManager[Any]] = (),
    debug: bool = False,
    max_batch_len: int = 10000,
    batch_gap_sleep_sec: float = 0.5,
    do_dryrun_estimation: bool = True,
    raise_on_failed_checkpoint: bool = True,
    write_progress_summary: bool = False,
    require_interrupt_confirm: bool = True,
    suppress_worker_logs: bool = True,
    resource_monitor_interval: float | None = None,
    local_test_queues_dir: str | None = None,
    sqs_based_scaling: bool = True,
    idle_worker_timeout: int = 300,
    sqs_region: str | None = None,
    sqs_endpoint: str | None = None,
    worker_namespace: str = "default",
    worker_env: Mapping[str, str] | None = None,
    worker_aws_credentials: bool = True,
    worker_prefetch: int = 1,
    kube_context: str | None = None,
    kube_config_path: str | None = None,
    dry_run_manifest_dir: str | None = None,
    visibility_timeout_s: int = 60,
    max_retry: int | None = None,
    max_retry_non_transient: int = 0,
    max_task_deliveries: int = 5,
    max_outstanding_tasks: int | None = None,
    checkpoint: str | None = None,
    checkpoint_interval_sec: float = 30.0,
    show_progress: bool | None = None,
    raise_on_failure: bool = True,
    max_pending_tasks: int = 10_000,
    run_id: str | None = None,
    records_location: str | None = None,
    heartbeat_interval_s: float = 30.0,
    large_payload_location: str | None = None,
    local_worker_log_dir: str | None = None,
    local_workers: int | None = None,
    start_workers: bool = True,
    worker_join_file: str | None = None,
) -> ExecutionSummary | None:
    """Run ``target`` on workers fed through SQS queues: Kubernetes Deployments on GKE, or
    local processes with ``local_test``.

    Workers come in one of two forms, as in the original's two releases of this function:

    - ``worker_replicas`` (with ``worker_resources``, ``worker_resource_requests``,
      ``worker_labels``, ``provisioning_model``): one group of workers, which runs every task.
    - ``worker_groups``: several groups, ``{name: {replicas, resource_limits, resource_requests,
      labels, provisioning_model, gpu_accelerator_type, required_zones, preferred_zones,
      termination_grace_seconds, ...}}``, each with its own work queue and Deployment. A task goes
      to the group its ``worker_type`` names (``op_worker_type`` / ``reduction_worker_type`` of
      the flows; ``_`` and ``-`` are the same), a task without one to the first group; a task whose
      worker type no group serves fails with an error naming the groups.

    :param worker_image: the workers' container image (its entry point must provide ``zetta``).
    :param worker_cluster_name, worker_cluster_region, worker_cluster_project: the GKE cluster;
        they select the kubeconfig context ``gke_PROJECT_REGION_NAME`` (created by ``gcloud
        container clusters get-credentials``) unless ``kube_context`` names another.
    :param worker_cluster: the cluster as one value (the original's early releases): a mapping
        or object with ``name``, ``region`` and ``project``, instead of the three arguments above.
    :param worker_resources: limits (and requests, unless ``worker_resource_requests`` says
        otherwise) of each worker, e.g. ``{"memory": "18560Mi", "nvidia.com/gpu": "1"}``.
    :param worker_replicas: number of workers (local processes with ``local_test``; default 1).
    :param worker_labels: extra labels of the worker Deployment and its pods.
    :param provisioning_model: ``"spot"`` (GKE Spot VMs), ``"standard"`` (no Spot VMs), or unset
        (any node; the original's default was ``"spot"``).
    :param local_test: run the workers as local processes instead of on the cluster (one pool
        per worker group, on real queues, so that routing is tested too).
    :param num_procs: with ``worker_replicas``: worker processes in each pod (sharing the
        ``semaphores_spec`` limits; a worker group sets its own ``num_procs`` and
        ``semaphores_spec``). With ``local_test``: the number of local workers (per group) unless
        ``local_workers`` is given.
    :param semaphores_spec: limits of ``mazepa.semaphore`` types shared by the processes of a pod
        (default ``cuda`` 1), and by the tasks of a ``debug`` run.
    :param extra_ctx_managers: context managers entered around the whole run.
    :param debug: with ``local_test`` only: run every task in this process (no queues, no
        workers), so breakpoints work.
    :param sqs_region, sqs_endpoint: where the queues live (default: ``$AWS_DEFAULT_REGION`` and
        ``$ZETTA_SQS_ENDPOINT``/``$AWS_ENDPOINT_URL_SQS``/``$AWS_ENDPOINT_URL``, else AWS).
    :param worker_env: extra environment variables of the workers.
    :param worker_aws_credentials: copy ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
        ``AWS_SESSION_TOKEN`` from this environment into the workers' Secret.
    :param dry_run_manifest_dir: write the Deployments and the Secret as YAML here (secret values
        redacted). Without ``local_test`` nothing else happens (no queues, nothing runs; returns
        None); with it, the run goes on with local workers.
    :param visibility_timeout_s: a worker's lease on a task message; renewed while the task runs.
        A dead worker's task is handed out again this long after the worker died.
        ``worker_lease_sec`` (the original's first name for it) is accepted instead.
    :param max_task_deliveries: a task that killed this many workers fails for good.
    :param max_outstanding_tasks: most tasks in the queues at once (default 10 per worker and
        at least 100).
    :param run_id: the run's id (default: a fresh memorable one).
    :param records_location: where run records go (default ``$ZETTA_RUN_RECORDS`` or
        ``~/.zetta_utils/runs``); ``zetta gc`` reads them.
    :param heartbeat_interval_s: how often the run record's heartbeat is refreshed.
    :param large_payload_location: folder/bucket for tasks and outcomes too large for a message
        (default with ``local_test``: a folder next to the run records; otherwise none).
    :param local_worker_log_dir: where local workers write their logs (default: next to the run
        records, ``<records>/logs/<run_id>``; a subfolder per worker group).
    :param local_workers: local worker processes (per group) with ``local_test`` (default:
        ``num_procs`` if given, else the replicas but at most the number of CPUs, so a spec
        written for 10 remote workers can be tried on a laptop).
    :param start_workers: false: start no workers at all (neither local nor on a cluster); the
        run creates its queues and waits for workers started elsewhere with
        ``zetta worker --join FILE`` (see ``worker_join_file``).
    :param worker_join_file: where the run writes its join file once the queues exist (default
        ``$ZETTA_JOIN_DIR/<run_id>.json``, else ``~/.zetta_utils/join/<run_id>.json``; with worker
        groups one file per group, ``<run_id>.<group>.json``; readable by the owner only, deleted
        when the run ends): the queues, the run id and the run's message key, all that
        ``zetta worker --join FILE`` needs to serve the run from any machine that reaches the
        queues. It holds a secret: hand it over privately.

    ``max_batch_len``, ``batch_gap_sleep_sec``, ``do_dryrun_estimation``,
    ``raise_on_failed_checkpoint``, ``write_progress_summary``, ``require_interrupt_confirm``,
    ``suppress_worker_logs``, ``resource_monitor_interval``, ``local_test_queues_dir``,
    ``sqs_based_scaling`` and ``idle_worker_timeout`` (and the groups' ``sqs_based_scaling``,
    ``idle_worker_timeout``, ``nudge_node_pools``) tuned the original's batching, file queues,
    autoscaler and monitoring; they are accepted and have no effect:
    tasks are sent as the scheduler readies them (at most ``max_outstanding_tasks`` in flight),
    local tests use the SQS-compatible server, a group is a fixed Deployment of ``replicas``
    workers, and a failing checkpoint always stops the run.
    Other arguments: as ``mazepa.execute``.
    """
    _check_flags(
        local_test=local_test,
        worker_aws_credentials=worker_aws_credentials,
        start_workers=start_workers,
        debug=debug,
    )
    if worker_cluster is not None:
        worker_cluster_name, worker_cluster_region, worker_cluster_project = _cluster_fields(
            worker_cluster, worker_cluster_name, worker_cluster_region, worker_cluster_project
        )
    visibility_timeout_s = _lease_seconds(worker_lease_sec, visibility_timeout_s)
    semaphores = check_semaphores_spec(semaphores_spec)
    groups = _worker_groups(
        worker_groups,
        worker_replicas,
        worker_resources,
        worker_resource_requests,
        worker_labels,
        provisioning_model,
    )
    groups = _with_num_procs(groups, num_procs, semaphores, grouped=worker_groups is not None)
    contexts = _check_context_managers(extra_ctx_managers)
    arguments = locals()
    _log_no_effect(arguments)
    execution = _from_arguments(_Execution, arguments)
    queue_run = None
    if not debug:
        queue_run = _from_arguments(
            _QueueRun,
            arguments,
            groups=tuple(groups),
            grouped=worker_groups is not None,
            local_workers=local_workers
            if local_workers is not None
            else (num_procs if local_test else None),
        )
    with contextlib.ExitStack() as stack:
        for manager in contexts:
            stack.enter_context(manager)
        if queue_run is None:
            return _execute_in_this_process(target, num_procs, semaphores, execution)
        return _execute_on_queues(target, queue_run, execution)


def _check_flags(
    *, local_test: Any, worker_aws_credentials: Any, start_workers: Any, debug: Any
) -> None:
    for name, flag in (
        ("local_test", local_test),
        ("worker_aws_credentials", worker_aws_credentials),
        ("start_workers", start_workers),
        ("debug", debug),
    ):
        _check_bool(name, flag)
    if debug and not local_test:
        raise ValueError("`debug` can only be set to `True` when `local_test` is also `True`.")


def _lease_seconds(worker_lease_sec: int | None, visibility_timeout_s: int) -> int:
    """``visibility_timeout_s``, or ``worker_lease_sec`` (its original name) if given."""
    if worker_lease_sec is None:
        return visibility_timeout_s
    if visibility_timeout_s != 60:
        raise ValueError(
            "`worker_lease_sec` and `visibility_timeout_s` are the same setting: give one of them"
        )
    return worker_lease_sec


def _with_num_procs(
    groups: list[WorkerGroup],
    num_procs: int | None,
    semaphores: Mapping[str, int] | None,
    *,
    grouped: bool,
) -> list[WorkerGroup]:
    """The single group of a run without ``worker_groups`` takes ``num_procs`` processes per pod
    and the run's ``semaphores_spec`` (worker groups set their own)."""
    if num_procs is not None and (
        isinstance(num_procs, bool) or not isinstance(num_procs, int) or num_procs < 1
    ):
        raise ValueError(f"`num_procs` must be a positive integer, got {num_procs!r}")
    if not grouped and num_procs is not None:
        return [attrs.evolve(groups[0], num_procs=num_procs, semaphores_spec=semaphores)]
    return groups


def _execute_in_this_process(
    target: Any,
    num_procs: int | None,
    semaphores: Mapping[str, int] | None,
    execution: _Execution,
) -> ExecutionSummary:
    """A ``debug`` run: every task in this process, so that breakpoints work."""
    if num_procs not in (None, 1):
        raise ValueError(
            f"`debug` runs in this process: `num_procs` must be 1 or unset, got {num_procs!r}"
        )
    return execute(
        target,
        num_procs=1,
        max_retry=execution.max_retry,
        max_retry_non_transient=execution.max_retry_non_transient,
        checkpoint=execution.checkpoint,
        checkpoint_interval_sec=execution.checkpoint_interval_sec,
        show_progress=execution.show_progress,
        semaphores_spec=semaphores,
        raise_on_failure=execution.raise_on_failure,
        max_pending_tasks=execution.max_pending_tasks,
    )


def _worker_groups(
    worker_groups: Any,
    worker_replicas: Any,
    worker_resources: Any,
    worker_resource_requests: Any,
    worker_labels: Any,
    provisioning_model: Any,
) -> list[WorkerGroup]:
    """The run's worker groups: those of ``worker_groups``, or the one group the ``worker_*``
    arguments describe (with the empty key: the run's original queue and Deployment names)."""
    if worker_groups is not None:
        given = {
            "worker_replicas": worker_replicas,
            "worker_resources": worker_resources,
            "worker_resource_requests": worker_resource_requests,
            "worker_labels": worker_labels,
            "provisioning_model": provisioning_model,
        }
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise ValueError(
                f"{', '.join('`' + c + '`' for c in clash)} cannot be combined with "
                "`worker_groups`: give each group its own "
                f"{', '.join('`' + _PER_GROUP[c] + '`' for c in clash)} instead"
            )
        return parse_worker_groups(worker_groups)
    replicas = 1 if worker_replicas is None else worker_replicas
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"`worker_replicas` must be a positive integer, got {worker_replicas!r}")
    for name, value in (
        ("worker_resource_requests", worker_resource_requests),
        ("worker_labels", worker_labels),
    ):
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"`{name}` must be a mapping, got {value!r}")
    return [
        WorkerGroup(
            name="",
            key="",
            replicas=replicas,
            resource_limits=worker_resources,
            resource_requests=worker_resource_requests,
            labels=dict(worker_labels or {}),
            provisioning_model=provisioning_model,
        )
    ]


def _cluster_fields(cluster: Any, name: Any, region: Any, project: Any) -> tuple[str, str, str]:
    """``worker_cluster`` (``{name, region, project}`` or an object with those attributes) as the
    three ``worker_cluster_*`` arguments."""
    if name is not None or region is not None or project is not None:
        raise ValueError(
            "give either `worker_cluster` or `worker_cluster_name`/`_region`/`_project`, not both"
        )
    fields = []
    for field in ("name", "region", "project"):
        value = (
            cluster.get(field) if isinstance(cluster, Mapping) else getattr(cluster, field, None)
        )
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"`worker_cluster` must have a non-empty `{field}` (with `name`, `region`, "
                f"`project`), got {cluster!r}"
            )
        fields.append(value)
    return fields[0], fields[1], fields[2]


def _check_context_managers(managers: Any) -> list[contextlib.AbstractContextManager[Any]]:
    if isinstance(managers, (str, bytes, Mapping)) or not isinstance(managers, Iterable):
        raise TypeError(
            f"`extra_ctx_managers` must be a list of context managers, got {managers!r}"
        )
    managers = list(managers)
    for m in managers:
        if not (hasattr(m, "__enter__") and hasattr(m, "__exit__")):
            raise TypeError(
                f"`extra_ctx_managers`: {m!r} is not a context manager (no __enter__/__exit__)"
            )
    return managers


def _log_no_effect(arguments: Mapping[str, Any]) -> None:
    changed = sorted(
        name for name, default in _NO_EFFECT_DEFAULTS.items() if arguments[name] != default
    )
    if changed:
        logger.info("execute_on_gcp_with_sqs: %s have no effect here", ", ".join(changed))


def _check_queue_run(q: _QueueRun) -> None:
    join_file = q.worker_join_file
    if join_file is not None and (not isinstance(join_file, str) or not join_file):
        raise ValueError(f"`worker_join_file` must be a file path, got {join_file!r}")
    lease = q.visibility_timeout_s
    if isinstance(lease, bool) or not isinstance(lease, int) or not 2 <= lease <= 43_200:
        raise ValueError(
            f"`visibility_timeout_s` must be an integer from 2 to 43200, got {lease!r}"
        )
    prefetch = q.worker_prefetch
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or not 1 <= prefetch <= 10:
        raise ValueError(f"`worker_prefetch` must be an integer from 1 to 10, got {prefetch!r}")
    n = q.local_workers
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"`local_workers` must be a positive integer, got {n!r}")
    if not q.heartbeat_interval_s > 0:
        raise ValueError(f"`heartbeat_interval_s` must be positive, got {q.heartbeat_interval_s!r}")
    env = q.worker_env
    if env is not None and (
        not isinstance(env, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise TypeError(f"`worker_env` must map names to strings, got {env!r}")
    if q.needs_cluster_spec:
        _check_cluster_arguments(q)


def _check_cluster_arguments(q: _QueueRun) -> None:
    """Kubernetes workers need an image and a cluster (or a kubeconfig context)."""
    required = [("worker_image", q.worker_image)]
    if q.kube_context is None:
        required += [
            ("worker_cluster_name", q.worker_cluster_name),
            ("worker_cluster_region", q.worker_cluster_region),
            ("worker_cluster_project", q.worker_cluster_project),
        ]
    missing = [name for name, value in required if not isinstance(value, str) or not value]
    if missing:
        raise ValueError(
            f"execute_on_gcp_with_sqs: {', '.join('`' + m + '`' for m in missing)} must be "
            "non-empty strings to run workers on Kubernetes (or set `local_test: true`, or "
            "`start_workers: false` for workers started elsewhere)"
        )


def _execute_on_queues(
    target: Any, q: _QueueRun, execution: _Execution
) -> RemoteExecutionSummary | None:
    """Name the run and plan its workers, create its queues and workers, run ``target`` on them,
    and delete all of it at the end (on error and after a confirmed Ctrl-C too)."""
    run = _resolve_run(q)
    if q.dry_run_manifest_dir is not None:
        _write_dry_run_manifests(run, q.dry_run_manifest_dir, q.grouped)
        if not q.local_test:
            return None
    _check_sqs_credentials(run.endpoint)
    records = RunRecordStore(q.records_location)
    payloads = q.large_payload_location
    if payloads is None and q.local_test and q.start_workers:
        payloads = _sibling(records, f"payloads/{run.run_id}")
    heartbeat = _start_run_record(run, q, records, payloads)
    made = _Made()
    summary: RemoteExecutionSummary | None = None
    with _sigterm_exits():
        try:
            queues = _create_queues(run, q, made, heartbeat)
            _write_join_files(run, q, made)
            tick = _start_workers(run, q, records, queues, made)
            summary = _run_on_queues(target, run, q, execution, queues, tick, records, payloads)
            return summary
        except Exception as e:
            mark_raised_while_running(e)  # (the queues or workers failed: not a spec error)
            raise
        finally:
            with _deferring_cleanup(run.run_id):
                _release(run, q, records, heartbeat, made, summary)


def _resolve_run(q: _QueueRun) -> _Run:
    """The run's id, queue names, region, key, cluster context and its workers' environment;
    with Kubernetes workers (or a dry run), each group's Deployment."""
    run_id = check_run_id(q.run_id) if q.run_id is not None else generate_run_id()
    plans = _plan_groups(run_id, q.groups)
    region = resolve_region(q.sqs_region)
    endpoint = resolve_endpoint(q.sqs_endpoint)
    _, outcome_name = queue_names(run_id)
    key = new_run_key()
    context = q.kube_context or (
        gke_context_name(
            str(q.worker_cluster_project), str(q.worker_cluster_region), str(q.worker_cluster_name)
        )
        if q.worker_cluster_name
        else None
    )
    plain_env = {
        "ZETTA_RUN_ID": run_id,
        "ZETTA_OUTCOME_QUEUE": outcome_name,
        "AWS_DEFAULT_REGION": region,
        **({"ZETTA_SQS_ENDPOINT": endpoint} if endpoint else {}),
        **dict(q.worker_env or {}),
    }
    secret_env = {RUN_KEY_ENV: encode_key(key)}
    if q.worker_aws_credentials:
        secret_env.update({v: os.environ[v] for v in _AWS_CREDENTIAL_VARS if os.environ.get(v)})
    run = _Run(
        run_id=run_id,
        plans=tuple(plans),
        region=region,
        endpoint=endpoint,
        outcome_name=outcome_name,
        key=key,
        signer=MessageSigner(key, run_id),
        context=context,
        secret_name=f"zetta-{run_id}-key",
        worker_args=(
            "--visibility-timeout",
            str(q.visibility_timeout_s),
            "--prefetch",
            str(q.worker_prefetch),
        ),
        plain_env=plain_env,
        secret_env=secret_env,
    )
    if not q.needs_cluster_spec:
        return run
    pod_env = _pod_env(
        plain_env, run_id, refuse=q.cluster_workers and q.dry_run_manifest_dir is None
    )
    specs = [attrs.evolve(p, spec=_deployment_spec(p, run, q, pod_env)) for p in run.plans]
    return attrs.evolve(run, plans=tuple(specs))


def _plan_groups(run_id: str, groups: Sequence[WorkerGroup]) -> list[_GroupPlan]:
    plans = []
    for g in groups:
        infix = f"-{g.key}" if g.key else ""
        queue, deployment = f"zetta-{run_id}{infix}-work", f"zetta-{run_id}{infix}-workers"
        if len(deployment) > 63 or len(queue) > 80:
            raise ValueError(
                f"`worker_groups`: group name {g.name!r} is too long for run {run_id}: its "
                f"Deployment name {deployment!r} must have at most 63 characters; use a shorter "
                "group name (or run id)"
            )
        plans.append(_GroupPlan(g, queue, deployment))
    return plans


def _deployment_spec(
    plan: _GroupPlan, run: _Run, q: _QueueRun, env: dict[str, str]
) -> WorkerDeploymentSpec:
    g = plan.group
    where = f"worker_groups[{g.name!r}]" if g.key else "worker"
    if g.resource_limits is None:
        raise ValueError(
            f"`{where + '.resource_limits' if g.key else 'worker_resources'}` is required for "
            'Kubernetes workers, e.g. {memory: "18560Mi"}'
        )
    group_labels = {"worker_group": g.key} if g.key else {}
    options = [
        *("--queue", plan.queue_name),
        *("--outcome-queue", run.outcome_name),
        *("--run-id", run.run_id),
        *run.worker_args,
    ]
    command = (
        pod_worker_command(g.num_procs, options, g.semaphores_spec)
        if g.num_procs > 1
        else ["zetta", "worker", *options]
    )
    return WorkerDeploymentSpec(
        name=plan.deployment_name,
        image=str(q.worker_image),
        replicas=g.replicas,
        command=tuple(command),
        env={**env, **_group_env(plan)},
        secret_env=run.secret_env,
        resources=dict(g.resource_limits),
        resource_requests=(dict(g.resource_requests) if g.resource_requests is not None else None),
        namespace=q.worker_namespace,
        labels={
            **check_labels(g.labels, f"{where}.labels" if g.key else "worker_labels"),
            **group_labels,
            "zetta-run-id": run.run_id,
            "app.kubernetes.io/managed-by": "zetta-utils",
        },
        secret_name=run.secret_name,
        provisioning_model=g.provisioning_model,
        gpu_accelerator_type=g.gpu_accelerator_type,
        required_zones=g.required_zones,
        preferred_zones=g.preferred_zones,
        **(
            {"termination_grace_s": g.termination_grace_seconds}
            if g.termination_grace_seconds is not None
            else {}
        ),
    )


def _write_dry_run_manifests(run: _Run, directory: str, grouped: bool) -> None:
    specs = run.specs
    paths = (
        write_group_manifests(specs, directory)
        if grouped
        else [write_manifests(specs[0], directory)]
    )
    logger.info(
        "run %s: worker manifests written to %s (dry run: nothing created in a cluster)",
        run.run_id,
        ", ".join(map(str, paths)),
    )


def _start_run_record(
    run: _Run, q: _QueueRun, records: RunRecordStore, payloads: str | None
) -> RunHeartbeat:
    """The run's record (what ``zetta gc`` deletes if the run cannot), kept fresh by a
    heartbeat."""
    now = time.time()
    specs = run.specs
    deployments = tuple(
        DeploymentRef(
            s.name,
            q.worker_namespace,
            run.context,
            run.secret_name if i == len(specs) - 1 else None,
        )
        for i, s in enumerate(specs)
    )
    queue_names_ = (*(p.queue_name for p in run.plans), run.outcome_name)
    record = RunRecord(
        run_id=run.run_id,
        created=now,
        heartbeat=now,
        queues=tuple(QueueRef(n, None, run.region, run.endpoint) for n in queue_names_),
        deployments=deployments if q.cluster_workers else (),
        payload_location=payloads,
    )
    workers = (
        "no workers of its own"
        if not q.start_workers
        else "local test workers"
        if q.local_test
        else f"cluster context {run.context}"
    )
    groups = f"; worker groups {', '.join(p.group.key for p in run.plans)}" if q.grouped else ""
    logger.info("run %s: starting (%s%s)", run.run_id, workers, groups)
    return RunHeartbeat(records, record, q.heartbeat_interval_s).start()


def _create_queues(run: _Run, q: _QueueRun, made: _Made, heartbeat: RunHeartbeat) -> _Queues:
    """Each group's work queue and the outcome queue, added to the run record as they exist."""
    tags = {"zetta-run-id": run.run_id}
    work_queues: dict[str, SQSQueue] = {}
    for p in run.plans:
        queue = create_sqs_queue(
            p.queue_name,
            visibility_timeout_s=q.visibility_timeout_s,
            region_name=run.region,
            endpoint_url=run.endpoint,
            tags=tags,
        )
        made.queues.append(QueueRef(p.queue_name, queue.url, run.region, run.endpoint))
        work_queues[p.group.key] = queue
    outcome_queue = create_sqs_queue(
        run.outcome_name,
        visibility_timeout_s=60,
        region_name=run.region,
        endpoint_url=run.endpoint,
        tags=tags,
    )
    made.queues.append(QueueRef(run.outcome_name, outcome_queue.url, run.region, run.endpoint))
    heartbeat.update(queues=tuple(made.queues))
    return _Queues(work_queues, outcome_queue)


def _write_join_files(run: _Run, q: _QueueRun, made: _Made) -> None:
    """Each group's join file (``zetta worker --join FILE``), and the command in the log."""
    for p in run.plans:
        join_path = write_join_file(
            JoinInfo(
                run_id=run.run_id,
                work_queue=p.queue_name,
                outcome_queue=run.outcome_name,
                region=run.region,
                endpoint=run.endpoint,
                key=encode_key(run.key),
                visibility_timeout_s=q.visibility_timeout_s,
                prefetch=q.worker_prefetch,
            ),
            _join_path(q.worker_join_file, run.run_id, p.group.key),
        )
        made.join_paths.append(join_path)
        logger.log(
            logging.INFO if q.start_workers else logging.WARNING,
            "run %s: %s workers%s join it from any machine that reaches the queues with: %s   "
            "(%s holds the run's key: hand it over privately)",
            run.run_id,
            "more" if q.start_workers else "waiting for workers (start_workers: false):",
            f" of group {p.group.key}" if p.group.key else "",
            worker_command(join_path),
            join_path,
        )


def _start_workers(
    run: _Run, q: _QueueRun, records: RunRecordStore, queues: _Queues, made: _Made
) -> Callable[[], None] | None:
    """Local worker pools (``local_test``) or the Deployments on the cluster, unless the run
    starts no workers; returns what checks on local workers while the run waits."""
    if q.start_workers and q.local_test:
        return _start_local_workers(run, q, records, queues, made)
    if q.cluster_workers:
        create_worker_deployments(
            run.specs,
            kube_context=run.context,
            kube_config_path=q.kube_config_path,
            created=made.created,
        )
    return None


def _start_local_workers(
    run: _Run, q: _QueueRun, records: RunRecordStore, queues: _Queues, made: _Made
) -> Callable[[], None]:
    log_dir = Path(q.local_worker_log_dir or _sibling(records, f"logs/{run.run_id}"))
    for p in run.plans:
        n_local = q.local_workers or min(p.group.replicas, os.cpu_count() or 1)
        if n_local != p.group.replicas:
            logger.info(
                "run %s: %d local worker(s) stand in for %d replicas%s",
                run.run_id,
                n_local,
                p.group.replicas,
                f" of group {p.group.key}" if p.group.key else "",
            )
        pool = LocalWorkerPool(
            n_local,
            work_queue=queues.work[p.group.key].url,
            outcome_queue=queues.outcome.url,
            run_id=run.run_id,
            env={**run.plain_env, **_group_env(p), **run.secret_env},
            log_dir=log_dir / p.group.key if p.group.key else log_dir,
            worker_args=list(run.worker_args),
        )
        made.pools.append(pool)
        pool.start()
    return _all_ticks(made.pools)


def _run_on_queues(
    target: Any,
    run: _Run,
    q: _QueueRun,
    execution: _Execution,
    queues: _Queues,
    tick: Callable[[], None] | None,
    records: RunRecordStore,
    payloads: str | None,
) -> RemoteExecutionSummary:
    """``execute_with_queues`` on the run's queues; tasks that failed for good go to a
    dead-letter report, named in the error."""
    total_replicas = sum(g.replicas for g in q.groups)
    max_outstanding = execution.max_outstanding_tasks or max(
        100, 10 * total_replicas * q.worker_prefetch
    )
    try:
        return execute_with_queues(
            target,
            queues.work[run.plans[0].group.key],
            queues.outcome,
            run.signer,
            max_retry=execution.max_retry,
            max_retry_non_transient=execution.max_retry_non_transient,
            checkpoint=execution.checkpoint,
            checkpoint_interval_sec=execution.checkpoint_interval_sec,
            show_progress=execution.show_progress,
            raise_on_failure=execution.raise_on_failure,
            max_pending_tasks=execution.max_pending_tasks,
            max_outstanding_tasks=max_outstanding,
            max_task_deliveries=execution.max_task_deliveries,
            large_payload_location=payloads,
            tick=tick,
            route=worker_type_router(queues.work) if q.grouped else None,
        )
    except ExecutionError as e:
        failures = list(e.task_failures)
        if failures:
            e.add_note(f"dead-letter report: {_write_dead_letters(records, run.run_id, failures)}")
        raise


def _release(
    run: _Run,
    q: _QueueRun,
    records: RunRecordStore,
    heartbeat: RunHeartbeat,
    made: _Made,
    summary: RemoteExecutionSummary | None,
) -> None:
    """The end of a run, however it ended: join files deleted, the dead-letter report of a run
    that finished with failures written, and everything the run created deleted."""
    for path in made.join_paths:
        path.unlink(missing_ok=True)
    if summary is not None and summary.task_failures:
        _write_dead_letters(records, run.run_id, list(summary.task_failures))
    _cleanup(run, records, heartbeat, made, q.kube_config_path)


def _group_env(plan: _GroupPlan) -> dict[str, str]:
    """The environment naming a worker's queue (and group, ``$ZETTA_WORKER_GROUP``, if any)."""
    return {
        "ZETTA_WORK_QUEUE": plan.queue_name,
        **({"ZETTA_WORKER_GROUP": plan.group.key} if plan.group.key else {}),
    }


def _join_path(worker_join_file: str | None, run_id: str, group: str) -> Path | None:
    """Where a group's join file goes: the given or default path, with ``.<group>`` before the
    suffix when the run has worker groups."""
    if not group:
        return Path(worker_join_file) if worker_join_file is not None else None
    base = (
        Path(worker_join_file).expanduser()
        if worker_join_file is not None
        else default_join_path(run_id)
    )
    return base.with_name(f"{base.stem}.{group}{base.suffix}")


def _all_ticks(pools: list[LocalWorkerPool]) -> Callable[[], None]:
    def tick() -> None:
        for pool in pools:
            pool.check()

    return tick


_ENDPOINT_VARS = ("ZETTA_SQS_ENDPOINT", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL")


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else f"//{url}").hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _pod_env(env: dict[str, str], run_id: str, refuse: bool) -> dict[str, str]:
    """``env`` for the worker pods, without an SQS endpoint on loopback (this machine's
    127.0.0.1 is not the pods'): refused for a Deployment about to be created, left out of a dry
    run's manifest with a warning."""
    loopback = {k: v for k, v in env.items() if k in _ENDPOINT_VARS and _is_loopback(v)}
    if not loopback:
        return env
    where = ", ".join(f"{k}={v}" for k, v in loopback.items())
    if refuse:
        raise ValueError(
            f"run {run_id}: the SQS endpoint ({where}) is on loopback, which the cluster's worker "
            "pods cannot reach: set `sqs_endpoint` (or $ZETTA_SQS_ENDPOINT) to an address the "
            "pods can reach, or use `local_test: true`"
        )
    logger.warning(
        "run %s: the SQS endpoint (%s) is on loopback, which worker pods cannot reach; it is left "
        "out of the manifests (the pods would use AWS SQS): set `sqs_endpoint` to an address the "
        "pods can reach",
        run_id,
        where,
    )
    return {k: v for k, v in env.items() if k not in loopback}


def _check_sqs_credentials(endpoint: str | None) -> None:
    import boto3

    if boto3.session.Session().get_credentials() is None:
        where = f"the SQS-compatible server at {endpoint}" if endpoint else "Amazon SQS"
        raise ValueError(
            f"no AWS credentials to reach {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or configure ~/.aws). To try a spec without AWS, run an SQS-compatible server such "
            "as `moto_server -p 5000` and set ZETTA_SQS_ENDPOINT=http://127.0.0.1:5000 with any "
            "dummy keys."
        )


def _sibling(records: RunRecordStore, key: str) -> str:
    """A location next to the run records (a subfolder or key prefix)."""
    return f"{records.store.location.rstrip('/')}/{key}"


def _write_dead_letters(records: RunRecordStore, run_id: str, failures: list[TaskFailure]) -> str:
    where = records.write_extra(
        f"dead_letters/{run_id}.json", _dead_letter_report(failures).encode()
    )
    logger.error(
        "run %s: %d task(s) failed for good (dead-letter report with tracebacks: %s):\n%s",
        run_id,
        len(failures),
        where,
        "\n".join(
            f"  {f.operation_name} {f.task_id}: {f.exception_type}: {f.error_message}"
            for f in failures[:20]
        ),
    )
    return where


def _cleanup(
    run: _Run,
    records: RunRecordStore,
    heartbeat: RunHeartbeat,
    made: _Made,
    kube_config_path: str | None,
) -> None:
    """Delete everything the run created; keep the record (for ``zetta gc``) if anything failed."""
    from zetta_utils.cloud_management.gc import delete_run_resources

    errors: list[str] = []
    for pool in made.pools:
        try:
            pool.stop()
        except Exception as e:
            errors.append(f"stopping local workers: {e}")
    errors.extend(_delete_deployments(run, made, kube_config_path))
    heartbeat.stop()
    # The deployment is handled above; a queue that was never created needs no deleting. (A queue
    # whose creation request failed midway may exist: the record keeps its name for gc.)
    record = attrs.evolve(heartbeat.record, deployments=(), queues=tuple(made.queues))
    actions, failed = delete_run_resources(record)
    errors.extend(failed)
    for line in actions:
        logger.info("run %s: %s", run.run_id, line)
    if errors:
        logger.error(
            "run %s: cleanup incomplete; its record stays for `zetta gc`:\n  %s",
            run.run_id,
            "\n  ".join(errors),
        )
        return
    records.delete(run.run_id)
    for pool in made.pools:
        if pool.restarts:
            logger.info("run %s: %d local worker restart(s)", run.run_id, pool.restarts)
        logger.info("run %s: local worker logs kept in %s", run.run_id, pool.log_dir)


def _delete_deployments(run: _Run, made: _Made, kube_config_path: str | None) -> list[str]:
    """Delete the Deployments (and the Secret, with the last) the run created; returns what
    could not be deleted."""
    errors: list[str] = []
    specs = run.specs
    doomed = [s for s in specs if s.name in made.created]
    secret_name = specs[0].effective_secret_name if specs else None
    secret = secret_name if secret_name in made.created else None
    if secret and not doomed:  # the Secret alone was created (a missing Deployment is no error)
        doomed = specs[:1]
    for i, spec in enumerate(doomed):
        last = i == len(doomed) - 1
        try:
            delete_worker_deployment(
                spec.name, spec.namespace, secret if last else None, run.context, kube_config_path
            )
        except Exception as e:
            errors.append(f"deleting deployment {spec.name}: {e}")
    return errors
