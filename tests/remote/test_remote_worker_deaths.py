"""A task that kills its worker, whatever the way it dies, is dead-lettered and the run goes on.

Real local workers (``zetta worker`` processes of a ``LocalWorkerPool``) against the real
SQS-compatible server of ``conftest.py``. The visibility timeout is long (60 s): the runs finish
quickly only because the pool releases a dead worker's message at once, and no assertion depends
on how fast anything runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs
from zetta_utils.mazepa_addons.regions import describe_voxel_box

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow

WAYS_TO_DIE = ["sigkill", "os_exit", "sigsegv", "sigabrt"]


def die(how: str) -> None:
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "os_exit":
        os._exit(3)
    elif how == "sigsegv":
        import ctypes

        ctypes.string_at(0)  # reads address 0
    elif how == "sigabrt":
        os.abort()
    raise AssertionError(f"still alive after {how}")


@mazepa.taskable_operation_cls
class Poison(mazepa.OperationBase):
    """Kills the worker running it. Says where it works without an index argument (so that the
    workers need not import torch to unpickle it: each death costs a worker start)."""

    def __call__(self, marker_dir: str, how: str) -> None:
        Path(marker_dir, f"poison.{os.getpid()}").touch()
        die(how)

    def describe_region(self, marker_dir: str, how: str) -> str:
        return describe_voxel_box((128, 256, 2000), (192, 320, 2001), (16, 16, 40))


@mazepa.taskable_operation
def healthy(folder: str, i: int) -> int:
    Path(folder, f"done{i}").write_text(str(i))
    return i


def _run(tasks: list[Any], **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "local_test": True,
        "visibility_timeout_s": 60,
        "max_task_deliveries": 2,
        "show_progress": False,
    }
    options.update(kwargs)
    return execute_on_gcp_with_sqs(tasks, **options)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", WAYS_TO_DIE)
def test_a_task_that_kills_its_worker_is_dead_lettered_and_the_rest_completes(
    sqs_env: str, tmp_path: Path, list_queues: Any, how: str, workers: int
) -> None:
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir()
    markers.mkdir()
    run_id = f"poison-{how.replace('_', '')}-{workers}"
    tasks = [healthy.make_task(str(out), i) for i in range(3)]
    tasks.append(Poison().make_task(str(markers), how))
    tasks += [healthy.make_task(str(out), i) for i in range(3, 6)]
    with pytest.raises(mazepa.ExecutionError) as info:
        _run(tasks, worker_replicas=workers, local_workers=workers, run_id=run_id)
    # every healthy task ran, before and after the poison one
    assert sorted(p.name for p in out.iterdir()) == [f"done{i}" for i in range(6)]
    # each of the two deliveries killed a worker; the third was refused
    assert len(list(markers.iterdir())) == 2
    (failure,) = info.value.task_failures
    assert failure.exception_type.endswith("WorkerCrashedError")
    assert "handed out 3 times" in failure.error_message
    assert "voxels (128, 256, 2000) - (192, 320, 2001) at (16, 16, 40) nm" in failure.error_message
    assert "nm (2048, 4096, 80000) - (3072, 5120, 80040)" in failure.error_message
    report = Path(os.environ["ZETTA_RUN_RECORDS"]) / "dead_letters" / f"{run_id}.json"
    assert any(str(report) in note for note in info.value.__notes__)
    (entry,) = json.loads(report.read_text())
    assert (
        entry["task_id"] == failure.task_id and "voxels (128, 256, 2000)" in entry["error_message"]
    )
    assert list_queues(f"zetta-{run_id}") == []


def _write_source(path: Path) -> None:
    """64 x 64 x 1 voxels at 4 x 4 x 40 nm in 16^2 chunks; zeros but for one voxel of 77 in the
    chunk at voxels (16, 32, 0) - (32, 48, 1)."""
    import numpy as np
    import torch

    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    layer = build_ts_layer(
        f"file://{path}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[[4, 4, 40]],
        info_chunk_size=[16, 16, 1],
        info_dataset_size=[64, 64, 1],
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    data = np.full((1, 64, 64, 1), 5, dtype=np.uint8)
    data[0, 20, 40, 0] = 77
    layer[VolumetricIndex.from_coords((0, 0, 0), (64, 64, 1), (4, 4, 40))] = torch.from_numpy(data)


def test_zetta_run_with_a_poison_chunk_exits_1_naming_its_region_and_the_report(
    sqs_env: str, tmp_path: Path, list_queues: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    src, dst = tmp_path / "src", tmp_path / "dst"
    _write_source(src)
    spec = {
        "@type": "mazepa.execute_on_gcp_with_sqs",
        "local_test": True,
        "worker_replicas": 1,
        "visibility_timeout_s": 60,
        "max_task_deliveries": 2,
        "show_progress": False,
        "run_id": "poison-cli-0001",
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "bbox": {
                "@type": "BBox3D.from_coords",
                "start_coord": [0, 0, 0],
                "end_coord": [64, 64, 1],
                "resolution": [4, 4, 40],
            },
            "dst_resolution": [4, 4, 40],
            "processing_chunk_sizes": [[16, 16, 1]],
            "skip_intermediaries": True,
            "fn": {
                "@type": "lambda",
                "lambda_str": "lambda src: __import__('os')._exit(3) if (src == 77).any() else src",
            },
            "op_kwargs": {"src": {"@type": "build_cv_layer", "path": f"file://{src}"}},
            "dst": {
                "@type": "build_cv_layer",
                "path": f"file://{dst}",
                "info_reference_path": f"file://{src}",
            },
        },
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    err = result.stderr
    assert "Error: the run failed." in err
    assert (
        "voxels (16, 32, 0) - (32, 48, 1) at (4, 4, 40) nm, i.e. nm (64, 128, 0) - (128, 192, 40)"
        in err
    )
    report = Path(os.environ["ZETTA_RUN_RECORDS"]) / "dead_letters" / "poison-cli-0001.json"
    assert f"dead-letter report: {report}" in err
    assert len(json.loads(report.read_text())) == 1
    # the 15 healthy chunks were written; the poison one was not
    chunks = {p.name for p in (dst / "4_4_40").iterdir()}
    assert len(chunks) == 15 and "16-32_32-48_0-1" not in chunks
    assert list_queues("zetta-poison-cli-0001") == []
