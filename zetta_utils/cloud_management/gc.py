"""Garbage collection of runs whose producer died: ``zetta gc``.

A run whose record's heartbeat is older than ``max_age_s`` is taken to be dead: its queues, its
worker Deployment and Secret, and its stored payloads are deleted, and its record is marked
``collected`` (kept, for the history). Resources that are already gone count as deleted; a record
whose deletion failed (e.g. no access to its cluster) stays ``running`` and is tried again next
time.
"""

from __future__ import annotations

import logging
import time

import attrs

from zetta_utils.message_queues.sqs import delete_sqs_queue

from .blob_store import open_blob_store
from .kubernetes_workers import delete_worker_deployment
from .run_records import RunRecord, RunRecordStore

__all__ = ["GcReport", "collect_garbage", "delete_run_resources"]

logger = logging.getLogger(__name__)


@attrs.define
class GcReport:
    examined: int = 0
    alive: list[str] = attrs.field(factory=list)
    collected: list[str] = attrs.field(factory=list)
    actions: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)


def delete_run_resources(
    record: RunRecord, dry_run: bool = False, kube_config_path: str | None = None
) -> tuple[list[str], list[str]]:
    """Delete what ``record`` lists; returns (actions, errors). Safe to repeat."""
    actions: list[str] = []
    errors: list[str] = []
    verb = "would delete" if dry_run else "deleted"
    for d in record.deployments:
        where = f"deployment {d.namespace}/{d.name}" + (
            f" (context {d.kube_context})" if d.kube_context else ""
        )
        if dry_run:
            actions.append(f"{verb} {where}")
            continue
        try:
            found = delete_worker_deployment(
                d.name,
                d.namespace,
                d.secret_name,
                kube_context=d.kube_context,
                kube_config_path=kube_config_path,
            )
            actions.append(f"{verb} {where}" if found else f"{where} was already gone")
        except Exception as e:
            errors.append(f"{record.run_id}: could not delete {where}: {e}")
    for q in record.queues:
        if dry_run:
            actions.append(f"{verb} queue {q.name}")
            continue
        try:
            found = delete_sqs_queue(
                q.url or q.name, region_name=q.region_name, endpoint_url=q.endpoint_url
            )
            actions.append(
                f"{verb} queue {q.name}" if found else f"queue {q.name} was already gone"
            )
        except Exception as e:
            errors.append(f"{record.run_id}: could not delete queue {q.name}: {e}")
    if record.payload_location:
        try:
            store = open_blob_store(record.payload_location)
            keys = store.list()
            if not dry_run:
                for key in keys:
                    store.delete(key)
            if keys:
                actions.append(f"{verb} {len(keys)} stored payload(s) in {record.payload_location}")
        except Exception as e:
            errors.append(
                f"{record.run_id}: could not delete payloads in {record.payload_location}: {e}"
            )
    return actions, errors


def collect_garbage(
    max_age_s: float = 300.0,
    dry_run: bool = False,
    location: str | None = None,
    kube_config_path: str | None = None,
    now: float | None = None,
) -> GcReport:
    """Delete the resources of runs whose heartbeat is older than ``max_age_s`` seconds.

    :param location: the run records location (default ``$ZETTA_RUN_RECORDS`` or
        ``~/.zetta_utils/runs``).
    :param dry_run: only report what would be deleted.
    """
    if isinstance(max_age_s, bool) or not isinstance(max_age_s, (int, float)) or max_age_s < 0:
        raise ValueError(f"`max_age_s` must be a non-negative number of seconds, got {max_age_s!r}")
    store = RunRecordStore(location)
    now = time.time() if now is None else now
    report = GcReport()
    for record in store.list_records():
        if record.status == "collected":
            continue
        report.examined += 1
        age = record.heartbeat_age(now)
        if age < max_age_s:
            report.alive.append(record.run_id)
            continue
        logger.info("run %s: heartbeat stopped %.0f s ago; collecting", record.run_id, age)
        actions, errors = delete_run_resources(
            record, dry_run=dry_run, kube_config_path=kube_config_path
        )
        report.actions.extend(f"{record.run_id}: {a}" for a in actions)
        report.errors.extend(errors)
        if dry_run or errors:
            continue
        store.save(attrs.evolve(record, status="collected", collected_at=now))
        report.collected.append(record.run_id)
    return report
