"""Run records: what a remote run created, and whether its producer is still alive.

Each run writes ``<run_id>.json`` to the records location before it creates anything, and keeps
its ``heartbeat`` fresh while it runs. A run that ends (normally, on error, or after a confirmed
Ctrl-C) deletes its resources and then its record. A run killed outright leaves the record behind
with a heartbeat that stops moving; ``zetta gc`` deletes the resources of such runs.

The location: argument > ``$ZETTA_RUN_RECORDS`` > ``~/.zetta_utils/runs``; any blob store location
(a local path, ``s3://``, ``gs://``), so producers on several machines can share one.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import attrs

from .blob_store import BlobStore, open_blob_store

__all__ = [
    "DEFAULT_RECORDS_LOCATION",
    "DeploymentRef",
    "QueueRef",
    "RunHeartbeat",
    "RunRecord",
    "RunRecordStore",
    "records_location",
]

logger = logging.getLogger(__name__)

DEFAULT_RECORDS_LOCATION = "~/.zetta_utils/runs"
RECORDS_ENV = "ZETTA_RUN_RECORDS"


def records_location(location: str | None = None) -> str:
    return location or os.environ.get(RECORDS_ENV) or DEFAULT_RECORDS_LOCATION


@attrs.frozen
class QueueRef:
    name: str
    url: str | None = None
    region_name: str | None = None
    endpoint_url: str | None = None


@attrs.frozen
class DeploymentRef:
    name: str
    namespace: str = "default"
    kube_context: str | None = None
    secret_name: str | None = None


@attrs.frozen
class RunRecord:
    run_id: str
    created: float
    heartbeat: float
    status: str = "running"
    """running -> (deleted when the run cleans up) | collected (by gc)."""
    queues: tuple[QueueRef, ...] = ()
    deployments: tuple[DeploymentRef, ...] = ()
    payload_location: str | None = None
    """Where oversized task payloads of this run were stored (deleted with the run)."""
    host: str = attrs.field(factory=socket.gethostname)
    pid: int = attrs.field(factory=os.getpid)
    collected_at: float | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord:
        doc: dict[str, Any] = json.loads(text)
        doc["queues"] = tuple(QueueRef(**q) for q in doc.get("queues", ()))
        doc["deployments"] = tuple(DeploymentRef(**d) for d in doc.get("deployments", ()))
        doc["notes"] = tuple(doc.get("notes", ()))
        known = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def heartbeat_age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.heartbeat


class RunRecordStore:
    """Run records in a blob store."""

    def __init__(self, location: str | None = None, store: BlobStore | None = None):
        self.store: BlobStore = (
            store if store is not None else open_blob_store(records_location(location))
        )

    def __repr__(self) -> str:
        return f"RunRecordStore({self.store.location!r})"

    def save(self, record: RunRecord) -> None:
        self.store.put(f"{record.run_id}.json", record.to_json().encode())

    def load(self, run_id: str) -> RunRecord:
        return RunRecord.from_json(self.store.get(f"{run_id}.json"))

    def delete(self, run_id: str) -> bool:
        return self.store.delete(f"{run_id}.json")

    def list_records(self) -> list[RunRecord]:
        records = []
        for key in self.store.list():
            if "/" in key or not key.endswith(".json"):
                continue
            try:
                records.append(RunRecord.from_json(self.store.get(key)))
            except FileNotFoundError:
                continue  # deleted while listing
            except (ValueError, TypeError, KeyError) as e:
                logger.warning("ignoring unreadable run record %s: %s", key, e)
        return records

    def write_extra(self, key: str, data: bytes) -> str:
        """Store a companion document (e.g. a dead-letter report); returns where it went."""
        self.store.put(key, data)
        loc = self.store.location
        return f"{loc.rstrip('/')}/{key}"


class RunHeartbeat:
    """Rewrites a run's record with a fresh heartbeat every ``interval_s`` in a daemon thread."""

    def __init__(self, store: RunRecordStore, record: RunRecord, interval_s: float = 30.0):
        if not interval_s > 0:
            raise ValueError(f"`interval_s` must be positive, got {interval_s!r}")
        self.store = store
        self.record = record
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def update(self, **changes: Any) -> None:
        """Change the record (e.g. add a deployment) and write it at once."""
        with self._lock:
            self.record = attrs.evolve(self.record, heartbeat=time.time(), **changes)
            self.store.save(self.record)

    def start(self) -> RunHeartbeat:
        self.update()
        self._thread = threading.Thread(
            target=self._loop, name=f"run-heartbeat-{self.record.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.update()
            except Exception as e:  # a missed beat is not fatal; gc waits several intervals
                logger.warning("could not refresh the run record of %s: %s", self.record.run_id, e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
