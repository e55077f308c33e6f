"""``execute_on_gcp_with_sqs`` with the original's arguments: worker groups (one queue and one
Deployment per group, tasks routed by ``worker_type``), ``worker_labels`` and the other arguments
of both of the original's forms.

Runs use local test workers against the real SQS-compatible server (tests/remote/conftest.py);
the Kubernetes side is checked as the manifests a dry run writes.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import yaml

from zetta_utils import builder, mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ListQueues = Callable[[str], list[str]]

CLUSTER: dict[str, Any] = {
    "worker_image": "us.gcr.io/zetta-research/zetta_utils:v1",
    "worker_cluster_name": "research-cluster",
    "worker_cluster_region": "us-east1",
    "worker_cluster_project": "zetta-research",
}


@mazepa.taskable_operation
def note_group(folder: str, name: str) -> str:
    """Records which worker group ran it (``$ZETTA_WORKER_GROUP`` of its worker)."""
    group = os.environ.get("ZETTA_WORKER_GROUP", "?")
    Path(folder, f"{name}.{group}").touch()
    return group


@mazepa.taskable_operation
def note_pid(folder: str, i: int) -> None:
    Path(folder, f"{i}.{os.getpid()}").touch()


def _noted(folder: Path) -> dict[str, str]:
    return dict(p.name.split(".", 1) for p in folder.iterdir())


def _dry_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No server listens here: a dry run must touch neither SQS nor a cluster.
    monkeypatch.setenv("ZETTA_SQS_ENDPOINT", "http://sqs.internal.example:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("ZETTA_RUN_RECORDS", str(tmp_path / "runs"))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# ---- the Kubernetes side: one Deployment per group ---------------------------------------------


GROUPS: dict[str, Any] = {
    "cpu": {
        "replicas": 20,
        "resource_limits": {"memory": "16Gi", "cpu": 4},
        "resource_requests": {"memory": "12Gi", "cpu": 3},
        "labels": {"team": "alignment"},
        "provisioning_model": "standard",
        "required_zones": ["us-east1-b", "us-east1-c"],
        "termination_grace_seconds": 120,
        "sqs_based_scaling": False,
    },
    "gpu_big": {
        "replicas": 5,
        "resource_limits": {"memory": "30Gi", "nvidia.com/gpu": "1"},
        "provisioning_model": "spot",
        "gpu_accelerator_type": "nvidia-l4",
        "preferred_zones": ["us-east1-d"],
        "idle_worker_timeout": 600,
        "nudge_node_pools": True,
        "num_procs": 3,
        "semaphores_spec": {"cuda": 1, "read": 2},
    },
}


def test_dry_run_writes_one_deployment_per_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dry_env(monkeypatch, tmp_path)
    out = tmp_path / "k8s"
    result = execute_on_gcp_with_sqs(
        [note_group.make_task(str(tmp_path), "x")],
        **CLUSTER,
        worker_groups=GROUPS,
        run_id="amber-heron-0417",
        dry_run_manifest_dir=str(out),
    )
    assert result is None
    assert not (tmp_path / "runs").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "zetta-amber-heron-0417-cpu-workers.yaml",
        "zetta-amber-heron-0417-gpu-big-workers.yaml",
        "zetta-amber-heron-0417-key.yaml",
    ]
    secret = _yaml(out / "zetta-amber-heron-0417-key.yaml")
    assert (
        secret["kind"] == "Secret"
        and "very-secret-value" not in (out / "zetta-amber-heron-0417-key.yaml").read_text()
    )

    cpu = _yaml(out / "zetta-amber-heron-0417-cpu-workers.yaml")
    assert cpu["kind"] == "Deployment" and cpu["spec"]["replicas"] == 20
    labels = cpu["metadata"]["labels"]
    assert (
        labels["team"] == "alignment"
        and labels["worker_group"] == "cpu"
        and labels["zetta-run-id"] == "amber-heron-0417"
    )
    assert cpu["spec"]["template"]["metadata"]["labels"]["team"] == "alignment"
    pod = cpu["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {
        "limits": {"memory": "16Gi", "cpu": "4"},
        "requests": {"memory": "12Gi", "cpu": "3"},
    }
    assert pod["terminationGracePeriodSeconds"] == 120
    assert pod.get("tolerations") is None and pod.get("nodeSelector") is None
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"} in term[
        "matchExpressions"
    ]
    assert {
        "key": "topology.kubernetes.io/zone",
        "operator": "In",
        "values": ["us-east1-b", "us-east1-c"],
    } in term["matchExpressions"]
    cmd = container["command"]
    assert cmd[cmd.index("--queue") + 1] == "zetta-amber-heron-0417-cpu-work"
    assert cmd[cmd.index("--outcome-queue") + 1] == "zetta-amber-heron-0417-outcome"
    env = {e["name"]: e for e in container["env"]}
    assert env["ZETTA_WORKER_GROUP"]["value"] == "cpu"
    assert env["ZETTA_RUN_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "zetta-amber-heron-0417-key"

    gpu = _yaml(out / "zetta-amber-heron-0417-gpu-big-workers.yaml")
    assert gpu["spec"]["replicas"] == 5 and gpu["metadata"]["labels"]["worker_group"] == "gpu-big"
    pod = gpu["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (
        container["resources"]["requests"]
        == container["resources"]["limits"]
        == {"memory": "30Gi", "nvidia.com/gpu": "1"}
    )
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-spot": "true",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }
    keys = {t["key"] for t in pod["tolerations"]}
    assert keys == {"nvidia.com/gpu", "cloud.google.com/gke-spot"}
    (preferred,) = pod["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["preference"]["matchExpressions"][0]["values"] == ["us-east1-d"]
    assert pod["terminationGracePeriodSeconds"] == 30
    cmd = container["command"]
    assert cmd[cmd.index("--queue") + 1] == "zetta-amber-heron-0417-gpu-big-work"
    # three worker processes in each pod, sharing the semaphores
    assert cmd[:6] == [
        "python",
        "-m",
        "zetta_utils.mazepa_addons.pod_workers",
        "--procs",
        "3",
        "--semaphores",
    ]
    assert json.loads(cmd[6]) == {"cuda": 1, "read": 2} and cmd[7] == "--"


def test_the_replicas_form_takes_labels_requests_and_provisioning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dry_env(monkeypatch, tmp_path)
    spec = {
        "@type": "mazepa.execute_on_gcp_with_sqs",
        **CLUSTER,
        "worker_replicas": 7,
        "worker_resources": {"memory": "18560Mi"},
        "worker_resource_requests": {"memory": "9Gi"},
        "worker_labels": {"owner": "sergiy"},
        "provisioning_model": "spot",
        # the original's batching and dry-run estimation: accepted without effect
        "max_batch_len": 500,
        "batch_gap_sleep_sec": 4.0,
        "do_dryrun_estimation": False,
        "raise_on_failed_checkpoint": True,
        "local_test": False,
        "run_id": "spec-built-0002",
        "dry_run_manifest_dir": str(tmp_path),
        "target": {"@type": "mazepa.seq_flow", "flows": []},
    }
    assert builder.build(spec) is None
    docs = {
        d["kind"]: d
        for d in yaml.safe_load_all((tmp_path / "zetta-spec-built-0002-workers.yaml").read_text())
    }
    dep = docs["Deployment"]
    assert dep["spec"]["replicas"] == 7 and dep["metadata"]["labels"]["owner"] == "sergiy"
    assert "worker_group" not in dep["metadata"]["labels"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "limits": {"memory": "18560Mi"},
        "requests": {"memory": "9Gi"},
    }
    assert pod["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}


def test_the_early_forms_of_cluster_and_lease_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dry_env(monkeypatch, tmp_path)
    execute_on_gcp_with_sqs(
        [note_pid.make_task(str(tmp_path), 0)],
        worker_image=CLUSTER["worker_image"],
        worker_cluster={
            "name": "zutils-cns",
            "region": "us-east1",
            "project": "zetta-lee-fly-vnc-001",
        },
        worker_lease_sec=45,
        worker_replicas=2,
        worker_resources={"memory": "1Gi"},
        run_id="early-form-0001",
        dry_run_manifest_dir=str(tmp_path),
    )
    docs = {
        d["kind"]: d
        for d in yaml.safe_load_all((tmp_path / "zetta-early-form-0001-workers.yaml").read_text())
    }
    cmd = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--visibility-timeout") + 1] == "45"
    with pytest.raises(ValueError, match=r"worker_cluster.*`project`"):
        execute_on_gcp_with_sqs(
            [],
            **{
                **CLUSTER,
                "worker_cluster_name": None,
                "worker_cluster_region": None,
                "worker_cluster_project": None,
            },
            worker_cluster={"name": "c", "region": "r"},
            worker_replicas=1,
            dry_run_manifest_dir=str(tmp_path),
        )
    with pytest.raises(ValueError, match="either `worker_cluster`"):
        execute_on_gcp_with_sqs(
            [], **CLUSTER, worker_cluster={"name": "c"}, dry_run_manifest_dir=str(tmp_path)
        )


def test_bad_arguments_are_refused_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dry_env(monkeypatch, tmp_path)
    task = [note_pid.make_task(str(tmp_path), 0)]
    dry = {**CLUSTER, "dry_run_manifest_dir": str(tmp_path / "k8s")}

    def refused(match: str, error: type[Exception] = ValueError, **kwargs: Any) -> None:
        with pytest.raises(error, match=match):
            execute_on_gcp_with_sqs(task, **{**dry, **kwargs})

    group = {"replicas": 2, "resource_limits": {"memory": "1Gi"}}
    refused(
        r"`worker_replicas`.*cannot be combined with `worker_groups`.*`replicas`",
        worker_groups={"a": group},
        worker_replicas=3,
    )
    refused(r"`worker_labels`.*`labels`", worker_groups={"a": group}, worker_labels={"x": "y"})
    refused(
        r"worker_groups\['a'\]`: unknown key\(s\) replica;", worker_groups={"a": {"replica": 2}}
    )
    refused(r"worker_groups\['a'\].replicas` is required", worker_groups={"a": {}})
    refused(
        r"worker_groups\['a'\].num_procs` must be a positive integer",
        worker_groups={"a": {**group, "num_procs": 0}},
    )
    refused(
        r"'mem_agg' and 'mem-agg' name the same group",
        worker_groups={"mem_agg": group, "mem-agg": group},
    )
    refused(r"group name 'GPU'", worker_groups={"GPU": group})
    refused(
        r"worker_groups\['a'\].resource_limits` is required", worker_groups={"a": {"replicas": 1}}
    )
    refused(
        r"provisioning_model", worker_groups={"a": {**group, "provisioning_model": "preemptible"}}
    )
    refused(
        r"worker_groups\['a'\].labels.*'bad value!'",
        worker_groups={"a": {**group, "labels": {"k": "bad value!"}}},
    )
    refused(
        r"semaphores_spec.*unknown semaphore type 'gpu'",
        worker_groups={"a": group},
        semaphores_spec={"gpu": 1},
    )
    refused(r"too long", worker_groups={"g" * 50: group}, run_id="amber-heron-0417")
    refused(
        r"`num_procs` must be a positive integer",
        worker_replicas=2,
        worker_resources={"memory": "1Gi"},
        num_procs=-1,
    )
    refused(
        r"`debug` can only be set to `True` when `local_test` is also `True`",
        debug=True,
        worker_replicas=1,
    )
    refused(
        r"extra_ctx_managers.*not a context manager",
        TypeError,
        worker_replicas=1,
        extra_ctx_managers=[42],
    )
    assert not (tmp_path / "k8s").exists()


# ---- runs: local test workers on real queues ---------------------------------------------------


@pytest.mark.slow
def test_tasks_go_to_the_group_their_worker_type_names(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZETTA_JOIN_DIR", str(tmp_path / "join"))
    out = tmp_path / "out"
    out.mkdir()
    tasks = [
        note_group.make_task(str(out), "untyped"),
        note_group.make_task(str(out), "mem").with_options(worker_type="mem"),
        note_group.make_task(str(out), "mem_agg").with_options(worker_type="mem_agg"),
        note_group.make_task(str(out), "mem-agg").with_options(worker_type="mem-agg"),
    ]
    seen_queues: list[list[str]] = []

    @contextlib.contextmanager
    def while_running() -> Iterator[None]:
        seen_queues.append(list_queues("zetta-green-finch-0001"))
        yield

    summary = execute_on_gcp_with_sqs(
        tasks,
        worker_groups={"cpu": {"replicas": 1}, "mem": {"replicas": 1}, "mem_agg": {"replicas": 3}},
        local_test=True,
        local_workers=1,
        run_id="green-finch-0001",
        visibility_timeout_s=4,
        show_progress=False,
        extra_ctx_managers=[while_running()],
    )
    assert summary is not None and summary.tasks_done == 4
    assert _noted(out) == {
        "untyped": "cpu",
        "mem": "mem",
        "mem_agg": "mem-agg",
        "mem-agg": "mem-agg",
    }
    # the context manager was entered before the run made its queues, and they are all gone now
    assert seen_queues == [[]]
    assert list_queues("zetta-green-finch-0001") == []
    assert not (Path(os.environ["ZETTA_RUN_RECORDS"]) / "green-finch-0001.json").exists()
    assert not any((tmp_path / "join").iterdir())
    logs = Path(os.environ["ZETTA_RUN_RECORDS"]) / "logs" / "green-finch-0001"
    assert sorted(p.name for p in logs.iterdir()) == ["cpu", "mem", "mem-agg"]


@pytest.mark.slow
def test_a_worker_type_no_group_serves_fails_naming_the_groups(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The task fails before it is sent (had it gone to a group, that group's worker would run it).
    monkeypatch.setenv("ZETTA_JOIN_DIR", str(tmp_path / "join"))
    task = note_group.make_task(str(tmp_path), "x").with_options(worker_type="gpu")
    with pytest.raises(
        mazepa.ExecutionError, match=r"worker_type 'gpu'.*no worker group serves.*'cpu', 'mem'"
    ):
        execute_on_gcp_with_sqs(
            [task],
            worker_groups={"cpu": {"replicas": 1}, "mem": {"replicas": 1}},
            local_test=True,
            run_id="lost-tapir-0001",
            show_progress=False,
        )
    assert not list(tmp_path.glob("x.*"))
    assert list_queues("zetta-lost-tapir-0001") == []
    assert sorted(p.name for p in (tmp_path / "join").iterdir()) == []


def test_debug_runs_every_task_in_this_process(tmp_path: Path) -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def around() -> Iterator[None]:
        entered.append("in")
        yield
        entered.append("out")

    summary = execute_on_gcp_with_sqs(
        [note_pid.make_task(str(tmp_path), i) for i in range(3)],
        worker_replicas=4,
        local_test=True,
        debug=True,
        semaphores_spec={"read": 2},
        show_progress=False,
        extra_ctx_managers=[around()],
    )
    assert summary is not None and summary.tasks_done == 3
    assert _noted(tmp_path) == {"0": str(os.getpid()), "1": str(os.getpid()), "2": str(os.getpid())}
    assert entered == ["in", "out"]


@pytest.mark.slow
def test_subchunkable_flow_on_worker_groups_gives_the_serial_bytes(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow's op tasks run on the group ``op_worker_type`` names, its reductions on the
    ``reduction_worker_type`` group, and the bytes equal a serial run's."""
    torch = pytest.importorskip("torch")
    from zetta_utils.geometry import BBox3D, Vec3D
    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    monkeypatch.setenv("ZETTA_JOIN_DIR", str(tmp_path / "join"))
    info: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": "float32",
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
        "info_chunk_size": (16, 16, 1),
        "info_scales": [(8, 8, 40)],
        "info_dataset_size": (64, 64, 1),
    }
    src = build_ts_layer(f"file://{tmp_path / 'src'}", **info)
    full = VolumetricIndex.from_coords(Vec3D(0, 0, 0), Vec3D(64, 64, 1), Vec3D(8, 8, 40))
    src[full] = torch.rand((1, 64, 64, 1), generator=torch.Generator().manual_seed(3))
    marks = tmp_path / "marks"
    marks.mkdir()
    marks_dir = str(marks)

    def double_and_note(src: Any) -> Any:
        Path(marks_dir, f"{os.getpid()}.{os.environ.get('ZETTA_WORKER_GROUP', 'serial')}").touch()
        return src * 2

    outputs = {}
    for name in ("serial", "remote"):
        dst = build_ts_layer(f"file://{tmp_path / name}", **info)
        flow = build_subchunkable_apply_flow(
            bbox=BBox3D.from_coords(Vec3D(0, 0, 0), Vec3D(64, 64, 1), Vec3D(8, 8, 40)),
            dst_resolution=Vec3D(8, 8, 40),
            processing_chunk_sizes=[[32, 32, 1]],
            processing_blend_pads=[[8, 8, 0]],
            level_intermediaries_dirs=[f"file://{tmp_path / name}_tmp"],
            fn=double_and_note,
            op_kwargs={"src": src},
            dst=dst,
            op_worker_type="gpu_x",
            reduction_worker_type="cpu",
            verbose=False,
        )
        if name == "serial":
            mazepa.execute(flow, show_progress=False)
        else:
            for p in marks.iterdir():
                p.unlink()
            summary = execute_on_gcp_with_sqs(
                flow,
                worker_groups={"cpu": {"replicas": 1}, "gpu-x": {"replicas": 1}},
                local_test=True,
                run_id="blend-owl-0001",
                visibility_timeout_s=4,
                show_progress=False,
            )
            assert summary is not None and summary.completed
            assert list_queues("zetta-blend-owl-0001") == []
        outputs[name] = {
            p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
            for p in sorted((tmp_path / name).rglob("*"))
            if p.is_file()
        }
    assert outputs["remote"] == outputs["serial"] and len(outputs["remote"]) > 1
    assert {p.name.split(".")[1] for p in marks.iterdir()} == {"gpu-x"}


# ---- num_procs: several workers in one pod ------------------------------------------------------


@contextlib.contextmanager
def _pod_joining(
    join: Path, num_procs: int, semaphores: dict[str, int] | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Starts what a pod with ``num_procs`` runs once the run's join file exists. Should the pod
    exit while the run goes on (the run would wait for workers forever), the run is interrupted."""
    from zetta_utils.mazepa_addons.pod_workers import pod_worker_command

    started: list[subprocess.Popen[bytes]] = []
    run_over = threading.Event()

    def pod() -> None:
        while not join.exists() and not run_over.wait(0.05):
            pass
        if run_over.is_set():
            return
        command = pod_worker_command(num_procs, ["--join", str(join)], semaphores)
        assert command[0] == "python"
        proc = subprocess.Popen(
            [sys.executable, *command[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(proc)
        while not run_over.wait(0.1):
            if proc.poll() is not None:
                _thread.interrupt_main()
                return

    thread = threading.Thread(target=pod)
    thread.start()
    try:
        yield started
    except KeyboardInterrupt:
        if started and started[0].poll() is not None:
            pytest.fail(
                f"the pod's supervisor exited (status {started[0].returncode}) while the run went "
                "on"
            )
        raise
    finally:
        run_over.set()
        thread.join()


@mazepa.taskable_operation
def check_shared_cuda(folder: str, role: int) -> None:
    """Role 0 holds the ``cuda`` semaphore while role 1, in another process, tries to take it."""
    from zetta_utils.mazepa.semaphores import active_semaphores

    here = Path(folder)
    Path(here, f"pid{role}.{os.getpid()}").touch()
    semaphores = active_semaphores()
    if semaphores is None:
        Path(here, f"result{role}").write_text("no semaphores")
        Path(here, "held" if role == 0 else "checked").touch()
        return
    deadline = time.monotonic() + 120  # a safety net, not a speed assumption

    def wait_for(name: str) -> None:
        while not Path(here, name).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never appeared")
            time.sleep(0.05)

    if role == 0:
        semaphores["cuda"].acquire()
        Path(here, "held").touch()
        wait_for("checked")
        semaphores["cuda"].release()
        Path(here, "result0").write_text("held")
    else:
        wait_for("held")
        got = semaphores["cuda"].acquire(block=False)
        if got:
            semaphores["cuda"].release()
        Path(here, "result1").write_text("free" if got else "busy")
        Path(here, "checked").touch()


@pytest.mark.slow
def test_pod_workers_run_num_procs_workers_sharing_semaphores(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    """What a pod of a group with ``num_procs: 2`` runs (the dry-run test checks the command),
    run here for real: two workers take the run's two tasks side by side, share the ``cuda``
    semaphore, and the supervisor exits 0 when the run deletes its queues."""
    out = tmp_path / "out"
    out.mkdir()
    join = tmp_path / "join.json"
    with _pod_joining(join, 2, {"cuda": 1}) as started:
        summary = execute_on_gcp_with_sqs(
            [check_shared_cuda.make_task(str(out), role) for role in (0, 1)],
            local_test=True,
            start_workers=False,
            worker_join_file=str(join),
            run_id="pod-pair-0001",
            show_progress=False,
        )
    assert summary is not None and summary.tasks_done == 2
    (pod,) = started
    assert pod.wait(120) == 0
    assert Path(out, "result0").read_text() == "held" and Path(out, "result1").read_text() == "busy"
    pids = {p.name.split(".")[0]: p.name.split(".")[1] for p in out.glob("pid*")}
    assert pids["pid0"] != pids["pid1"]
    assert list_queues("zetta-pod-pair-0001") == []


@mazepa.taskable_operation
def dies_the_first_time(folder: str) -> None:
    first = not any(Path(folder).glob("attempt.*"))
    Path(folder, f"attempt.{os.getpid()}").touch()
    if first:
        os.kill(os.getpid(), signal.SIGKILL)
    Path(folder, "done").touch()


@pytest.mark.slow
def test_pod_workers_start_a_dead_worker_again(
    sqs_env: str, tmp_path: Path, list_queues: ListQueues
) -> None:
    """A worker of a pod killed by its task is started again; the task, handed out again when
    its lease runs out, completes; the supervisor exits 0 at the end of the run."""
    out = tmp_path / "out"
    out.mkdir()
    join = tmp_path / "join.json"
    with _pod_joining(join, 1) as started:
        summary = execute_on_gcp_with_sqs(
            [dies_the_first_time.make_task(str(out))],
            local_test=True,
            start_workers=False,
            worker_join_file=str(join),
            visibility_timeout_s=2,
            run_id="pod-phoenix-0001",
            show_progress=False,
        )
    assert summary is not None and summary.tasks_done == 1
    (pod,) = started
    assert pod.wait(120) == 0
    assert Path(out, "done").exists()
    assert (
        len({p.name for p in out.glob("attempt.*")}) == 2
    )  # two worker processes, one after the other
    assert list_queues("zetta-pod-phoenix-0001") == []
