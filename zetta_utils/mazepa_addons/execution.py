"""Remote execution: ``execute_with_queues`` (any queues) and ``execute_on_gcp_with_sqs``.

``execute_with_queues`` is ``mazepa.execute`` with a :class:`~.queue_executor.QueueExecutor`:
same scheduler, retries, dependencies, checkpoints and progress display; the tasks run on
whatever workers read the queues.

``execute_on_gcp_with_sqs`` owns a whole run: it names the run (``adjective-animal-NNNN``), creates
its SQS work and outcome queues, writes a run record with a heartbeat, starts workers (local
processes with ``local_test``, otherwise a Kubernetes Deployment), runs the flow, and deletes all
of it at the end, on error and after a confirmed Ctrl-C. Failed tasks end in a dead-letter report
(with tracebacks) next to the run records, and the run raises ``ExecutionError``.
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import attrs

from zetta_utils import builder
from zetta_utils.cloud_management.kubernetes_workers import (
    WorkerDeploymentSpec,
    create_worker_deployment,
    delete_worker_deployment,
    gke_context_name,
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
from zetta_utils.message_queues.sqs import create_sqs_queue, resolve_endpoint, resolve_region

from .join import JoinInfo, worker_command, write_join_file
from .local_workers import LocalWorkerPool
from .queue_executor import QueueExecutor, QueueExecutorStats
from .run_ids import check_run_id, generate_run_id

__all__ = ["RemoteExecutionSummary", "execute_on_gcp_with_sqs", "execute_with_queues", "queue_names"]

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
    Other arguments: as ``mazepa.execute``. Raises ``ExecutionError`` on permanent failures.
    """
    if not isinstance(signer, MessageSigner):
        raise TypeError(f"`signer` must be a MessageSigner, got {type(signer).__name__}")
    for name, q in (("work_queue", work_queue), ("outcome_queue", outcome_queue)):
        if not isinstance(q, MessageQueue):
            raise TypeError(f"`{name}` must be a MessageQueue (e.g. SQSQueue), got {type(q).__name__}")
    backend = QueueExecutor(
        work_queue,
        outcome_queue,
        signer,
        max_outstanding=max_outstanding_tasks,
        max_deliveries=max_task_deliveries,
        payload_location=large_payload_location,
        tick=tick,
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
        stats = backend.stats
        if stats.rejections or stats.forged_outcomes:
            logger.warning(
                "run %s: workers refused %d message(s) and this producer %d; someone other than this run "
                "wrote to its queues",
                signer.run_id,
                len(stats.rejections),
                stats.forged_outcomes,
            )
    return RemoteExecutionSummary(**attrs.asdict(summary, recurse=False), run_id=signer.run_id, queue_stats=stats)


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
        print(f"\nDeleting the queues and workers of run {run_id}; please wait.", file=sys.stderr, flush=True)

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


@builder.register("mazepa.execute_on_gcp_with_sqs")
def execute_on_gcp_with_sqs(
    target: Any,
    worker_image: str | None = None,
    worker_cluster_name: str | None = None,
    worker_cluster_region: str | None = None,
    worker_cluster_project: str | None = None,
    worker_resources: Mapping[str, Any] | None = None,
    worker_replicas: int = 1,
    local_test: bool = False,
    *,
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
) -> RemoteExecutionSummary | None:
    """Run ``target`` on workers fed through SQS queues: a Kubernetes Deployment on GKE, or
    local processes with ``local_test``.

    :param worker_image: the workers' container image (its entry point must provide ``zetta``).
    :param worker_cluster_name, worker_cluster_region, worker_cluster_project: the GKE cluster;
        they select the kubeconfig context ``gke_PROJECT_REGION_NAME`` (created by ``gcloud
        container clusters get-credentials``) unless ``kube_context`` names another.
    :param worker_resources: requests and limits of each worker, e.g.
        ``{"memory": "18560Mi", "nvidia.com/gpu": "1"}``.
    :param worker_replicas: number of workers (local processes with ``local_test``).
    :param local_test: run the workers as local processes instead of on the cluster.
    :param sqs_region, sqs_endpoint: where the queues live (default: ``$AWS_DEFAULT_REGION`` and
        ``$ZETTA_SQS_ENDPOINT``/``$AWS_ENDPOINT_URL_SQS``/``$AWS_ENDPOINT_URL``, else AWS).
    :param worker_env: extra environment variables of the workers.
    :param worker_aws_credentials: copy ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
        ``AWS_SESSION_TOKEN`` from this environment into the workers' Secret.
    :param dry_run_manifest_dir: write the Deployment and Secret as YAML here (secret values
        redacted). Without ``local_test`` nothing else happens (no queues, nothing runs; returns
        None); with it, the run goes on with local workers.
    :param visibility_timeout_s: a worker's lease on a task message; renewed while the task runs.
        A dead worker's task is handed out again this long after the worker died.
    :param max_task_deliveries: a task that killed this many workers fails for good.
    :param max_outstanding_tasks: most tasks in the queue at once (default 10 per worker and
        at least 100).
    :param run_id: the run's id (default: a fresh memorable one).
    :param records_location: where run records go (default ``$ZETTA_RUN_RECORDS`` or
        ``~/.zetta_utils/runs``); ``zetta gc`` reads them.
    :param heartbeat_interval_s: how often the run record's heartbeat is refreshed.
    :param large_payload_location: folder/bucket for tasks and outcomes too large for a message
        (default with ``local_test``: a folder next to the run records; otherwise none).
    :param local_worker_log_dir: where local workers write their logs (default: next to the run
        records, ``<records>/logs/<run_id>``).
    :param local_workers: local worker processes with ``local_test`` (default: ``worker_replicas``
        but at most the number of CPUs, so a spec written for 10 remote workers can be tried on a
        laptop).
    :param start_workers: false: start no workers at all (neither local nor on a cluster); the
        run creates its queues and waits for workers started elsewhere with
        ``zetta worker --join FILE`` (see ``worker_join_file``).
    :param worker_join_file: where the run writes its join file once the queues exist (default
        ``$ZETTA_JOIN_DIR/<run_id>.json``, else ``~/.zetta_utils/join/<run_id>.json``; readable by
        the owner only, deleted when the run ends): the queues, the run id and the run's message
        key, all that ``zetta worker --join FILE`` needs to serve the run from any machine that
        reaches the queues. It holds a secret: hand it over privately.
    Other arguments: as ``mazepa.execute``.
    """
    _check_bool("local_test", local_test)
    _check_bool("worker_aws_credentials", worker_aws_credentials)
    _check_bool("start_workers", start_workers)
    if worker_join_file is not None and (not isinstance(worker_join_file, str) or not worker_join_file):
        raise ValueError(f"`worker_join_file` must be a file path, got {worker_join_file!r}")
    if isinstance(worker_replicas, bool) or not isinstance(worker_replicas, int) or worker_replicas < 1:
        raise ValueError(f"`worker_replicas` must be a positive integer, got {worker_replicas!r}")
    if isinstance(visibility_timeout_s, bool) or not isinstance(visibility_timeout_s, int) or not 2 <= visibility_timeout_s <= 43_200:
        raise ValueError(f"`visibility_timeout_s` must be an integer from 2 to 43200, got {visibility_timeout_s!r}")
    if isinstance(worker_prefetch, bool) or not isinstance(worker_prefetch, int) or not 1 <= worker_prefetch <= 10:
        raise ValueError(f"`worker_prefetch` must be an integer from 1 to 10, got {worker_prefetch!r}")
    if local_workers is not None and (isinstance(local_workers, bool) or not isinstance(local_workers, int) or local_workers < 1):
        raise ValueError(f"`local_workers` must be a positive integer, got {local_workers!r}")
    if not heartbeat_interval_s > 0:
        raise ValueError(f"`heartbeat_interval_s` must be positive, got {heartbeat_interval_s!r}")
    if worker_env is not None and (
        not isinstance(worker_env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in worker_env.items())
    ):
        raise TypeError(f"`worker_env` must map names to strings, got {worker_env!r}")
    cluster_workers = start_workers and not local_test
    needs_cluster_spec = cluster_workers or dry_run_manifest_dir is not None
    if needs_cluster_spec:
        required = [("worker_image", worker_image)]
        if kube_context is None:
            required += [
                ("worker_cluster_name", worker_cluster_name),
                ("worker_cluster_region", worker_cluster_region),
                ("worker_cluster_project", worker_cluster_project),
            ]
        missing = [name for name, value in required if not isinstance(value, str) or not value]
        if missing:
            raise ValueError(
                f"execute_on_gcp_with_sqs: {', '.join('`' + m + '`' for m in missing)} must be non-empty "
                "strings to run workers on Kubernetes (or set `local_test: true`, or `start_workers: false` "
                "for workers started elsewhere)"
            )
        if worker_resources is None:
            raise ValueError("`worker_resources` is required for Kubernetes workers, e.g. {memory: \"18560Mi\"}")
    run_id = check_run_id(run_id) if run_id is not None else generate_run_id()
    region = resolve_region(sqs_region)
    endpoint = resolve_endpoint(sqs_endpoint)
    work_name, outcome_name = queue_names(run_id)
    key = new_run_key()
    signer = MessageSigner(key, run_id)
    context = kube_context or (
        gke_context_name(str(worker_cluster_project), str(worker_cluster_region), str(worker_cluster_name))
        if worker_cluster_name
        else None
    )
    deployment_name, secret_name = f"zetta-{run_id}-workers", f"zetta-{run_id}-key"

    worker_args = ["--visibility-timeout", str(visibility_timeout_s), "--prefetch", str(worker_prefetch)]
    plain_env = {
        "ZETTA_RUN_ID": run_id,
        "ZETTA_WORK_QUEUE": work_name,
        "ZETTA_OUTCOME_QUEUE": outcome_name,
        "AWS_DEFAULT_REGION": region,
        **({"ZETTA_SQS_ENDPOINT": endpoint} if endpoint else {}),
        **dict(worker_env or {}),
    }
    secret_env = {RUN_KEY_ENV: encode_key(key)}
    if worker_aws_credentials:
        secret_env.update({v: os.environ[v] for v in _AWS_CREDENTIAL_VARS if os.environ.get(v)})

    spec: WorkerDeploymentSpec | None = None
    if needs_cluster_spec:
        pod_env = _pod_env(plain_env, run_id, refuse=cluster_workers and dry_run_manifest_dir is None)
        spec = WorkerDeploymentSpec(
            name=deployment_name,
            image=str(worker_image),
            replicas=worker_replicas,
            command=(
                "zetta", "worker", "--queue", work_name, "--outcome-queue", outcome_name, "--run-id", run_id, *worker_args,
            ),
            env=pod_env,
            secret_env=secret_env,
            resources=dict(worker_resources or {}),
            namespace=worker_namespace,
            labels={"zetta-run-id": run_id, "app.kubernetes.io/managed-by": "zetta-utils"},
            secret_name=secret_name,
        )
    if dry_run_manifest_dir is not None:
        assert spec is not None
        path = write_manifests(spec, dry_run_manifest_dir)
        logger.info("run %s: worker manifests written to %s (dry run: nothing created in a cluster)", run_id, path)
        if not local_test:
            return None

    _check_sqs_credentials(endpoint)
    records = RunRecordStore(records_location)
    if large_payload_location is None and local_test and start_workers:
        large_payload_location = _sibling(records, f"payloads/{run_id}")
    now = time.time()
    record = RunRecord(
        run_id=run_id,
        created=now,
        heartbeat=now,
        queues=(QueueRef(work_name, None, region, endpoint), QueueRef(outcome_name, None, region, endpoint)),
        deployments=(DeploymentRef(deployment_name, worker_namespace, context, secret_name),) if cluster_workers else (),
        payload_location=large_payload_location,
    )
    logger.info(
        "run %s: starting (%s)",
        run_id,
        "no workers of its own" if not start_workers else "local test workers" if local_test else f"cluster context {context}",
    )
    heartbeat = RunHeartbeat(records, record, heartbeat_interval_s).start()
    pool: LocalWorkerPool | None = None
    deployment_created = False
    created_queues: list[QueueRef] = []
    join_path: Path | None = None
    summary: RemoteExecutionSummary | None = None
    failures: list[TaskFailure] = []
    with _sigterm_exits():
        try:
            tags = {"zetta-run-id": run_id}
            work_queue = create_sqs_queue(
                work_name, visibility_timeout_s=visibility_timeout_s, region_name=region, endpoint_url=endpoint, tags=tags
            )
            created_queues.append(QueueRef(work_name, work_queue.url, region, endpoint))
            outcome_queue = create_sqs_queue(
                outcome_name, visibility_timeout_s=60, region_name=region, endpoint_url=endpoint, tags=tags
            )
            created_queues.append(QueueRef(outcome_name, outcome_queue.url, region, endpoint))
            heartbeat.update(queues=tuple(created_queues))
            join_path = write_join_file(
                JoinInfo(
                    run_id=run_id,
                    work_queue=work_name,
                    outcome_queue=outcome_name,
                    region=region,
                    endpoint=endpoint,
                    key=encode_key(key),
                    visibility_timeout_s=visibility_timeout_s,
                    prefetch=worker_prefetch,
                ),
                worker_join_file,
            )
            logger.log(
                logging.INFO if start_workers else logging.WARNING,
                "run %s: %s workers join it from any machine that reaches the queues with: %s   (%s holds "
                "the run's key: hand it over privately)",
                run_id,
                "more" if start_workers else "waiting for workers (start_workers: false):",
                worker_command(join_path),
                join_path,
            )
            tick = None
            if start_workers and local_test:
                log_dir = local_worker_log_dir or _sibling(records, f"logs/{run_id}")
                n_local = local_workers or min(worker_replicas, os.cpu_count() or 1)
                if n_local != worker_replicas:
                    logger.info("run %s: %d local worker(s) stand in for %d replicas", run_id, n_local, worker_replicas)
                pool = LocalWorkerPool(
                    n_local,
                    work_queue=work_queue.url,
                    outcome_queue=outcome_queue.url,
                    run_id=run_id,
                    env={**plain_env, **secret_env},
                    log_dir=log_dir,
                    worker_args=worker_args,
                ).start()
                tick = pool.check
            elif cluster_workers:
                assert spec is not None
                create_worker_deployment(spec, kube_context=context, kube_config_path=kube_config_path)
                deployment_created = True
            try:
                summary = execute_with_queues(
                    target,
                    work_queue,
                    outcome_queue,
                    signer,
                    max_retry=max_retry,
                    max_retry_non_transient=max_retry_non_transient,
                    checkpoint=checkpoint,
                    checkpoint_interval_sec=checkpoint_interval_sec,
                    show_progress=show_progress,
                    raise_on_failure=raise_on_failure,
                    max_pending_tasks=max_pending_tasks,
                    max_outstanding_tasks=max_outstanding_tasks or max(100, 10 * worker_replicas * worker_prefetch),
                    max_task_deliveries=max_task_deliveries,
                    large_payload_location=large_payload_location,
                    tick=tick,
                )
                failures = list(summary.task_failures)
            except ExecutionError as e:
                failures = list(e.task_failures)
                if failures:
                    e.add_note(f"dead-letter report: {_write_dead_letters(records, run_id, failures)}")
                raise
            return summary
        except Exception as e:
            mark_raised_while_running(e)  # (the queues or workers failed: not a spec error)
            raise
        finally:
            with _deferring_cleanup(run_id):
                if join_path is not None:
                    join_path.unlink(missing_ok=True)
                if failures and summary is not None:
                    _write_dead_letters(records, run_id, failures)
                _cleanup(
                    run_id,
                    records,
                    heartbeat,
                    pool,
                    spec if deployment_created else None,
                    context,
                    kube_config_path,
                    created_queues,
                )


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
            f"run {run_id}: the SQS endpoint ({where}) is on loopback, which the cluster's worker pods cannot "
            "reach: set `sqs_endpoint` (or $ZETTA_SQS_ENDPOINT) to an address the pods can reach, or use "
            "`local_test: true`"
        )
    logger.warning(
        "run %s: the SQS endpoint (%s) is on loopback, which worker pods cannot reach; it is left out of "
        "the manifests (the pods would use AWS SQS): set `sqs_endpoint` to an address the pods can reach",
        run_id,
        where,
    )
    return {k: v for k, v in env.items() if k not in loopback}


def _check_sqs_credentials(endpoint: str | None) -> None:
    import boto3

    if boto3.session.Session().get_credentials() is None:
        where = f"the SQS-compatible server at {endpoint}" if endpoint else "Amazon SQS"
        raise ValueError(
            f"no AWS credentials to reach {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
            "configure ~/.aws). To try a spec without AWS, run an SQS-compatible server such as "
            "`moto_server -p 5000` and set ZETTA_SQS_ENDPOINT=http://127.0.0.1:5000 with any dummy keys."
        )


def _sibling(records: RunRecordStore, key: str) -> str:
    """A location next to the run records (a subfolder or key prefix)."""
    return f"{records.store.location.rstrip('/')}/{key}"


def _write_dead_letters(records: RunRecordStore, run_id: str, failures: list[TaskFailure]) -> str:
    where = records.write_extra(f"dead_letters/{run_id}.json", _dead_letter_report(failures).encode())
    logger.error(
        "run %s: %d task(s) failed for good (dead-letter report with tracebacks: %s):\n%s",
        run_id,
        len(failures),
        where,
        "\n".join(f"  {f.operation_name} {f.task_id}: {f.exception_type}: {f.error_message}" for f in failures[:20]),
    )
    return where


def _cleanup(
    run_id: str,
    records: RunRecordStore,
    heartbeat: RunHeartbeat,
    pool: LocalWorkerPool | None,
    spec: WorkerDeploymentSpec | None,
    context: str | None,
    kube_config_path: str | None,
    created_queues: list[QueueRef],
) -> None:
    """Delete everything the run created; keep the record (for ``zetta gc``) if anything failed."""
    from zetta_utils.cloud_management.gc import delete_run_resources

    errors: list[str] = []
    if pool is not None:
        try:
            pool.stop()
        except Exception as e:
            errors.append(f"stopping local workers: {e}")
    if spec is not None:
        try:
            delete_worker_deployment(spec.name, spec.namespace, spec.secret_name, context, kube_config_path)
        except Exception as e:
            errors.append(f"deleting deployment {spec.name}: {e}")
    heartbeat.stop()
    # The deployment is handled above; a queue that was never created needs no deleting. (A queue
    # whose creation request failed midway may exist: the record keeps its name for gc.)
    record = attrs.evolve(heartbeat.record, deployments=(), queues=tuple(created_queues))
    actions, failed = delete_run_resources(record)
    errors.extend(failed)
    for line in actions:
        logger.info("run %s: %s", run_id, line)
    if errors:
        logger.error(
            "run %s: cleanup incomplete; its record stays for `zetta gc`:\n  %s", run_id, "\n  ".join(errors)
        )
        return
    records.delete(run_id)
    if pool is not None and pool.restarts:
        logger.info("run %s: %d local worker restart(s)", run_id, pool.restarts)
    if pool is not None:
        logger.info("run %s: local worker logs kept in %s", run_id, pool.log_dir)
