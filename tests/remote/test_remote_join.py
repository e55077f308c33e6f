"""Workers that join a run from anywhere (``zetta worker --join FILE``), and what they refuse:
messages of another run, and a message replayed after its task finished. Real queues (moto's
server), real ``zetta run`` and ``zetta worker`` processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa_addons import run_worker
from zetta_utils.mazepa_addons.execution import queue_names
from zetta_utils.mazepa_addons.join import JoinInfo, read_join_file, worker_command, write_join_file
from zetta_utils.message_queues import MessageSigner
from zetta_utils.message_queues.signing import encode_key, new_run_key

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).parents[2]


@mazepa.taskable_operation
def count_runs(path: str) -> int:
    """Counts its own runs in the file at ``path``."""
    p = Path(path)
    runs = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(runs))
    return runs


def _task_message(signer: MessageSigner, task: mazepa.Task[Any], payloads: str | None) -> str:
    meta = {
        "task_id": task.id,
        "attempt": 1,
        "op": task.operation_name,
        "max_deliveries": 5,
        "payloads": payloads,
    }
    return signer.seal("task", mazepa.serialize_task(task), meta)


def _work(work: Any, outcomes: Any, signer: MessageSigner, n: int) -> Any:
    return run_worker(
        work, outcomes, signer, visibility_timeout_s=10, wait_s=1, max_tasks=n, handle_signals=False
    )


def test_messages_sealed_for_another_run_are_refused(run_queues: Any, tmp_path: Path) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    other_run = MessageSigner(new_run_key(), "another-run-0001")
    same_key_other_id = MessageSigner(signer._key, "another-run-0001")
    task = count_runs.make_task(str(tmp_path / "count"))
    work.send([_task_message(other_run, task, None), _task_message(same_key_other_id, task, None)])
    stats = _work(work, outcomes, signer, 2)
    assert stats.rejected == 2 and stats.tasks_run == 0
    assert not (tmp_path / "count").exists()
    assert work.approximate_counts() == (0, 0)


@pytest.mark.parametrize("store", [True, False], ids=["payload-store", "no-store"])
def test_a_message_replayed_after_its_task_finished_does_not_run_again(
    run_queues: Any, tmp_path: Path, store: bool
) -> None:
    run_id, work, outcomes = run_queues
    signer = MessageSigner(new_run_key(), run_id)
    counter = tmp_path / "count"
    body = _task_message(
        signer, count_runs.make_task(str(counter)), str(tmp_path / "payloads") if store else None
    )
    work.send([body])
    first = _work(work, outcomes, signer, 1)
    assert first.tasks_run == 1 and counter.read_text() == "1"

    from zetta_utils.mazepa_addons.worker import _Worker

    def replay_to(worker: _Worker) -> None:
        work.send([body])
        (message,) = work.receive(1, wait_s=5, visibility_timeout_s=10)
        worker.handle(message)
        worker.flush()

    other = _Worker(work, outcomes, signer, "another-worker", 10)
    try:
        replay_to(other)
        if store:  # every worker of the run knows the message was answered
            assert other.stats.refused_replayed == 1 and other.stats.tasks_run == 0
            assert counter.read_text() == "1"
        else:  # without a payload store, only the worker that ran it knows
            assert other.stats.tasks_run == 1 and counter.read_text() == "2"
        replay_to(other)  # now this worker has answered it, either way
        assert other.stats.refused_replayed == (2 if store else 1)
        assert counter.read_text() == ("1" if store else "2")
    finally:
        other.leases.stop()
    assert work.approximate_counts() == (0, 0)


def test_join_files_are_private_and_checked(tmp_path: Path) -> None:
    info = JoinInfo(
        run_id="amber-heron-0417",
        work_queue="zetta-amber-heron-0417-work",
        outcome_queue="zetta-amber-heron-0417-outcome",
        region="us-east-1",
        endpoint=None,
        key=encode_key(new_run_key()),
        visibility_timeout_s=60,
        prefetch=1,
    )
    path = write_join_file(info, tmp_path / "j" / "run.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_join_file(path) == info
    assert worker_command(path) == f"zetta worker --join {path}"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "work_queue": ""}))
    with pytest.raises(ValueError, match="work_queue"):
        read_join_file(path)
    with pytest.raises(ValueError, match="no such file"):
        read_join_file(tmp_path / "missing.json")


def _subchunkable_target(dst: str) -> dict[str, Any]:
    src = "file://~/.zetta_utils/demo/fafb_v15/img_norm"
    return {
        "@type": "build_subchunkable_apply_flow",
        "bbox": {
            "@type": "BBox3D.from_coords",
            "start_coord": [29696, 16384, 2000],
            "end_coord": [29696 + 512, 16384 + 512, 2002],
            "resolution": [16, 16, 40],
        },
        "dst_resolution": [16, 16, 40],
        "processing_chunk_sizes": [[256, 256, 1]],
        "processing_crop_pads": [[0, 0, 0]],
        "processing_blend_pads": [[32, 32, 0]],
        "processing_blend_modes": ["linear"],
        "level_intermediaries_dirs": ["file://~/.zetta_utils/tmp/"],
        "fn": {"@type": "lambda", "lambda_str": "lambda src: src * 2.0"},
        "op_kwargs": {"src": {"@type": "build_cv_layer", "path": src}},
        "dst": {
            "@type": "build_cv_layer",
            "path": dst,
            "info_reference_path": src,
            "info_chunk_size": [128, 128, 1],
            "on_info_exists": "overwrite",
        },
    }


def _chunks(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
def test_a_zetta_run_served_only_by_workers_started_separately(
    sqs_env: str, home: Path, tmp_path: Path, list_queues: Any
) -> None:
    run_id = f"joined-run-{os.getpid() % 10_000:04d}"
    join = tmp_path / "join.json"
    spec = {
        "@type": "mazepa.execute_on_gcp_with_sqs",
        "start_workers": False,
        "run_id": run_id,
        "worker_join_file": str(join),
        "large_payload_location": str(tmp_path / "payloads"),
        "target": _subchunkable_target("file://~/out"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZETTA_RESUME_DIR": str(tmp_path / "resume")}
    zetta = [sys.executable, "-m", "zetta_utils.cli.main"]
    run_log = open(tmp_path / "run.log", "w")
    driver = subprocess.Popen(
        [*zetta, "run", str(tmp_path / "spec.json")],
        stdout=subprocess.DEVNULL,
        stderr=run_log,
        env=env,
    )
    workers: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 120  # a hang guard only
        while not join.exists():
            assert driver.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "the run never wrote its join file"
            time.sleep(0.05)
        assert sorted(list_queues(f"zetta-{run_id}")) == sorted(queue_names(run_id))
        for i in range(2):
            with open(tmp_path / f"worker{i}.log", "w") as log:
                workers.append(
                    subprocess.Popen(
                        [*zetta, "worker", "--join", str(join)],
                        stdout=log,
                        stderr=log,
                        env=env,
                        text=True,
                    )
                )
        assert driver.wait(300) == 0, (tmp_path / "run.log").read_text()
        for w in workers:  # the run deleted its queues: its workers exit by themselves
            assert w.wait(120) == 0
    finally:
        procs: list[subprocess.Popen[Any]] = [driver, *workers]
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        run_log.close()
    run_text = (tmp_path / "run.log").read_text()
    assert f"zetta worker --join {join}" in run_text
    assert not join.exists(), "the join file (it holds the key) outlives its run"
    assert list_queues(f"zetta-{run_id}") == []
    ran = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("queue deleted" in text for text in ran)
    assert sum(int(text.split("ran ")[1].split(" task")[0]) for text in ran) > 0

    reference = {"@type": "mazepa.execute", "target": _subchunkable_target("file://~/ref")}
    (tmp_path / "ref.json").write_text(json.dumps(reference))
    r = subprocess.run(
        [*zetta, "run", str(tmp_path / "ref.json")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    out, ref = _chunks(home / "out"), _chunks(home / "ref")
    assert len(out) > 4 and out == ref
