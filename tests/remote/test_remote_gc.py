"""Garbage collection of dead runs against real queues (moto) and a real records folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from zetta_utils.cli.remote import gc
from zetta_utils.cloud_management import (
    DeploymentRef,
    QueueRef,
    RunHeartbeat,
    RunRecord,
    RunRecordStore,
    collect_garbage,
)
from zetta_utils.message_queues import create_sqs_queue

ListQueues = Callable[[str], list[str]]


def _record_with_queues(
    store: RunRecordStore, run_id: str, heartbeat: float, **kwargs: object
) -> RunRecord:
    refs = []
    for kind in ("work", "outcome"):
        q = create_sqs_queue(f"zetta-{run_id}-{kind}")
        refs.append(QueueRef(q.name, q.url, q.region_name, q.endpoint_url))
    record = RunRecord(
        run_id=run_id, created=heartbeat, heartbeat=heartbeat, queues=tuple(refs), **kwargs
    )  # type: ignore[arg-type]
    store.save(record)
    return record


def test_gc_collects_runs_whose_heartbeat_stopped(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    location = str(tmp_path / "records")
    store = RunRecordStore(location)
    now = time.time()
    payloads = tmp_path / "payloads" / "dead-otter-0001"
    payloads.mkdir(parents=True)
    (payloads / "blob").write_bytes(b"x")
    _record_with_queues(store, "dead-otter-0001", now - 3600, payload_location=str(payloads))
    _record_with_queues(store, "live-heron-0002", now)

    dry = CliRunner().invoke(gc, ["--max-age-s", "600", "--dry-run", "--records", location])
    assert dry.exit_code == 0, dry.output
    assert "dead-otter-0001: would delete queue zetta-dead-otter-0001-work" in dry.output
    assert "live-heron-0002" not in dry.output.replace("alive", "")
    assert len(list_queues("zetta-dead-otter-0001")) == 2  # nothing deleted

    result = CliRunner().invoke(gc, ["--max-age-s", "600", "--records", location])
    assert result.exit_code == 0, result.output
    assert "2 run(s) examined, 1 alive, 1 collected" in result.output
    assert list_queues("zetta-dead-otter-0001") == []
    assert len(list_queues("zetta-live-heron-0002")) == 2
    assert not (payloads / "blob").exists()
    collected = store.load("dead-otter-0001")
    assert collected.status == "collected" and collected.collected_at is not None
    assert store.load("live-heron-0002").status == "running"

    again = collect_garbage(max_age_s=600, location=location)
    assert again.collected == [] and again.examined == 1 and again.errors == []
    # The live run's heartbeat stops too: now it goes.
    final = collect_garbage(max_age_s=600, location=location, now=now + 3600)
    assert final.collected == ["live-heron-0002"] and list_queues("zetta-live-heron-0002") == []


def test_gc_keeps_a_record_whose_deployment_cannot_be_deleted(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    location = str(tmp_path / "records")
    store = RunRecordStore(location)
    deployment = DeploymentRef(
        "zetta-lost-lynx-0003-workers",
        "default",
        "gke_proj_us-east1_c1",
        "zetta-lost-lynx-0003-key",
    )
    _record_with_queues(store, "lost-lynx-0003", time.time() - 3600, deployments=(deployment,))
    report = collect_garbage(
        max_age_s=60, location=location, kube_config_path=str(tmp_path / "no-kubeconfig")
    )
    (error,) = report.errors
    assert "zetta-lost-lynx-0003-workers" in error and "get-credentials" in error
    assert list_queues("zetta-lost-lynx-0003") == []  # the queues went anyway
    assert store.load("lost-lynx-0003").status == "running"  # tried again next time
    cli = CliRunner().invoke(
        gc, ["--max-age-s", "60", "--records", location, "--kube-config", str(tmp_path / "none")]
    )
    assert cli.exit_code == 1


def test_heartbeat_keeps_the_record_fresh(tmp_path: Path) -> None:
    store = RunRecordStore(str(tmp_path))
    record = RunRecord(run_id="busy-bee-0001", created=0.0, heartbeat=0.0)
    beat = RunHeartbeat(store, record, interval_s=0.05).start()
    try:
        first = store.load("busy-bee-0001").heartbeat
        deadline = time.monotonic() + 120
        while store.load("busy-bee-0001").heartbeat == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.load("busy-bee-0001").heartbeat > first > 0
    finally:
        beat.stop()
    assert collect_garbage(max_age_s=3600, location=str(tmp_path)).alive == ["busy-bee-0001"]


def test_bad_gc_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_age_s"):
        collect_garbage(max_age_s=-1, location=str(tmp_path))
    with pytest.raises(ValueError, match="unsupported scheme"):
        RunRecordStore("ftp://somewhere/records")


def test_records_in_a_bucket(
    sqs_env: str, monkeypatch: pytest.MonkeyPatch, list_queues: ListQueues
) -> None:
    """Run records (and gc) work the same with an ``s3://`` records location (moto's S3)."""
    import boto3

    monkeypatch.setenv("ZETTA_S3_ENDPOINT", sqs_env)
    boto3.client("s3", endpoint_url=sqs_env, region_name="us-east-1").create_bucket(
        Bucket="zetta-records"
    )
    location = "s3://zetta-records/team/runs"
    store = RunRecordStore(location)
    assert store.list_records() == []
    _record_with_queues(store, "bucket-run-0001", time.time() - 7200)
    store.write_extra("dead_letters/bucket-run-0001.json", b"[]")  # companions are not records
    (loaded,) = store.list_records()
    assert loaded.run_id == "bucket-run-0001" and len(loaded.queues) == 2
    report = collect_garbage(max_age_s=600, location=location)
    assert report.collected == ["bucket-run-0001"] and list_queues("zetta-bucket-run-0001") == []
    assert store.load("bucket-run-0001").status == "collected"
    assert store.delete("bucket-run-0001") is True and store.delete("bucket-run-0001") is False
    with pytest.raises(FileNotFoundError):
        store.load("bucket-run-0001")
