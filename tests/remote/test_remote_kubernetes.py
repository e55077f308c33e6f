"""The worker Deployment and Secret a remote run creates, checked as manifests (no cluster runs
here), and the run's behaviour when the cluster cannot be reached."""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from zetta_utils import builder, mazepa
from zetta_utils.cloud_management import gke_context_name
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs

ListQueues = Callable[[str], list[str]]


@mazepa.taskable_operation
def noop() -> None:
    pass


GUIDE_ARGS: dict[str, Any] = {
    "worker_image": "us.gcr.io/zetta-research/zetta_utils:v1",
    "worker_cluster_name": "research-cluster",
    "worker_cluster_region": "us-east1",
    "worker_cluster_project": "zetta-research",
    "worker_resources": {"memory": "18560Mi", "nvidia.com/gpu": "1"},
    "worker_replicas": 10,
}


def _load(path: Path) -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    return {d["kind"]: d for d in docs}


def test_dry_run_writes_the_deployment_and_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No server listens here: a dry run must not touch SQS or a cluster.
    monkeypatch.setenv("ZETTA_SQS_ENDPOINT", "http://sqs.internal.example:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    # another test module's S3 fixture may have set a session token in this process
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("ZETTA_RUN_RECORDS", str(tmp_path / "runs"))
    result = execute_on_gcp_with_sqs(
        [noop.make_task()],
        **GUIDE_ARGS,
        run_id="amber-heron-0417",
        dry_run_manifest_dir=str(tmp_path / "k8s"),
    )
    assert result is None
    assert not (tmp_path / "runs").exists()
    manifest = tmp_path / "k8s" / "zetta-amber-heron-0417-workers.yaml"
    objects = _load(manifest)
    assert set(objects) == {"Deployment", "Secret"}

    dep = objects["Deployment"]
    assert (
        dep["apiVersion"] == "apps/v1"
        and dep["metadata"]["name"] == "zetta-amber-heron-0417-workers"
    )
    assert dep["metadata"]["labels"]["zetta-run-id"] == "amber-heron-0417"
    assert dep["spec"]["replicas"] == 10
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "us.gcr.io/zetta-research/zetta_utils:v1"
    for part in ("requests", "limits"):
        assert container["resources"][part] == {"memory": "18560Mi", "nvidia.com/gpu": "1"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    cmd = container["command"]
    assert cmd[:2] == ["zetta", "worker"]
    assert cmd[cmd.index("--queue") + 1] == "zetta-amber-heron-0417-work"
    assert cmd[cmd.index("--outcome-queue") + 1] == "zetta-amber-heron-0417-outcome"
    env = {e["name"]: e for e in container["env"]}
    assert env["ZETTA_RUN_ID"]["value"] == "amber-heron-0417"
    assert env["ZETTA_WORK_QUEUE"]["value"] == "zetta-amber-heron-0417-work"
    assert env["ZETTA_OUTCOME_QUEUE"]["value"] == "zetta-amber-heron-0417-outcome"
    assert env["ZETTA_SQS_ENDPOINT"]["value"] == "http://sqs.internal.example:9"
    for name in ("ZETTA_RUN_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "zetta-amber-heron-0417-key",
            "key": name,
        }

    secret = objects["Secret"]
    assert secret["metadata"]["name"] == "zetta-amber-heron-0417-key" and secret["type"] == "Opaque"
    assert set(secret["data"]) == {"ZETTA_RUN_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert {base64.b64decode(v).decode() for v in secret["data"].values()} == {"<redacted>"}
    assert "very-secret-value" not in manifest.read_text()


def test_cpu_workers_get_no_gpu_toleration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    args = {**GUIDE_ARGS, "worker_resources": {"memory": "4Gi", "cpu": 2}, "worker_replicas": 3}
    execute_on_gcp_with_sqs(
        [noop.make_task()],
        **args,
        run_id="calm-yak-0001",
        dry_run_manifest_dir=str(tmp_path),
        worker_env={"MY_FLAG": "1"},
    )
    dep = _load(tmp_path / "zetta-calm-yak-0001-workers.yaml")["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    assert pod.get("tolerations") is None
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"memory": "4Gi", "cpu": "2"}
    assert {e["name"]: e.get("value") for e in container["env"]}["MY_FLAG"] == "1"


def test_guide_spec_builds_through_the_builder(tmp_path: Path) -> None:
    spec = {
        "@type": "mazepa.execute_on_gcp_with_sqs",
        **GUIDE_ARGS,
        "local_test": False,
        "run_id": "spec-built-0001",
        "dry_run_manifest_dir": str(tmp_path),
        "target": {"@type": "mazepa.seq_flow", "flows": []},
    }
    assert builder.build(spec) is None
    assert (tmp_path / "zetta-spec-built-0001-workers.yaml").exists()


def test_arguments_are_checked_before_anything_is_created(tmp_path: Path) -> None:
    task = [noop.make_task()]
    with pytest.raises(ValueError, match="worker_image"):
        execute_on_gcp_with_sqs(task, **{**GUIDE_ARGS, "worker_image": None})
    with pytest.raises(ValueError, match="worker_cluster_project"):
        execute_on_gcp_with_sqs(task, **{**GUIDE_ARGS, "worker_cluster_project": ""})
    with pytest.raises(ValueError, match="worker_replicas"):
        execute_on_gcp_with_sqs(task, **{**GUIDE_ARGS, "worker_replicas": 0})
    with pytest.raises(ValueError, match="worker_resources"):
        execute_on_gcp_with_sqs(
            task,
            **{**GUIDE_ARGS, "worker_resources": {"memory": ""}},
            dry_run_manifest_dir=str(tmp_path),
        )
    with pytest.raises(TypeError, match="local_test"):
        execute_on_gcp_with_sqs(task, **GUIDE_ARGS, local_test="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id"):
        execute_on_gcp_with_sqs(
            task, **GUIDE_ARGS, run_id="Not_Valid", dry_run_manifest_dir=str(tmp_path)
        )
    assert gke_context_name("zetta-research", "us-east1", "c1") == "gke_zetta-research_us-east1_c1"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"worker_join_file": ""}, "`worker_join_file` must be a file path, got ''"),
        (
            {"visibility_timeout_s": 1},
            "`visibility_timeout_s` must be an integer from 2 to 43200, got 1",
        ),
        (
            {"worker_lease_sec": 50_000},
            "`visibility_timeout_s` must be an integer from 2 to 43200, got 50000",
        ),
        ({"worker_prefetch": 11}, "`worker_prefetch` must be an integer from 1 to 10, got 11"),
        ({"local_workers": 0}, "`local_workers` must be a positive integer, got 0"),
        ({"heartbeat_interval_s": 0}, "`heartbeat_interval_s` must be positive, got 0"),
        ({"worker_env": {"A": 1}}, "`worker_env` must map names to strings, got {'A': 1}"),
    ],
)
def test_queue_arguments_are_refused_before_the_run_starts(
    tmp_path: Path, bad: dict[str, Any], message: str
) -> None:
    """Before the extra context managers are entered, and before any manifest is written."""
    entered: list[bool] = []

    @contextlib.contextmanager
    def note_entry() -> Iterator[None]:
        entered.append(True)
        yield

    manifests = tmp_path / "manifests"
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        execute_on_gcp_with_sqs(
            [noop.make_task()],
            **GUIDE_ARGS,
            dry_run_manifest_dir=str(manifests),
            extra_ctx_managers=[note_entry()],
            **bad,
        )
    assert entered == []
    assert not manifests.exists()


def test_a_loopback_endpoint_never_reaches_the_pods(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues, caplog: pytest.LogCaptureFixture
) -> None:
    """This machine's 127.0.0.1 is not the pods': a Deployment about to be created with it is
    refused before anything exists; a dry run's manifest leaves it out, with a warning."""
    assert sqs_env.startswith("http://127.0.0.1:")
    with pytest.raises(ValueError, match=r"loopback.*sqs_endpoint"):
        execute_on_gcp_with_sqs([noop.make_task()], **GUIDE_ARGS, run_id="lonely-owl-0001")
    assert list_queues("zetta-lonely-owl-0001") == []
    assert not (Path(os.environ["ZETTA_RUN_RECORDS"]) / "lonely-owl-0001.json").exists()
    for endpoint in ("http://localhost:4566", "http://[::1]:4566", "http://0.0.0.0:5000"):
        with pytest.raises(ValueError, match="loopback"):
            execute_on_gcp_with_sqs([noop.make_task()], **GUIDE_ARGS, sqs_endpoint=endpoint)

    with caplog.at_level("WARNING"):
        execute_on_gcp_with_sqs(
            [noop.make_task()],
            **GUIDE_ARGS,
            run_id="lonely-owl-0002",
            dry_run_manifest_dir=str(tmp_path),
        )
    env = {
        e["name"]
        for e in _load(tmp_path / "zetta-lonely-owl-0002-workers.yaml")["Deployment"]["spec"][
            "template"
        ]["spec"]["containers"][0]["env"]
    }
    assert "ZETTA_SQS_ENDPOINT" not in env and "ZETTA_RUN_ID" in env
    assert "loopback" in caplog.text and sqs_env in caplog.text


def test_unreachable_cluster_fails_clearly(tmp_path: Path) -> None:
    from zetta_utils.cloud_management.kubernetes_workers import (
        WorkerDeploymentSpec,
        create_worker_deployment,
    )

    spec = WorkerDeploymentSpec(
        name="zetta-lonely-owl-0001-workers",
        image="img",
        replicas=1,
        command=("zetta", "worker"),
        env={},
        secret_env={},
        resources={"memory": "1Gi"},
        namespace="default",
        labels={},
        secret_name="zetta-lonely-owl-0001-key",
    )
    context = gke_context_name("zetta-research", "us-east1", "research-cluster")
    with pytest.raises(RuntimeError, match="get-credentials") as info:
        create_worker_deployment(
            spec, kube_context=context, kube_config_path=str(tmp_path / "no-kubeconfig")
        )
    assert "gke_zetta-research_us-east1_research-cluster" in str(info.value)
