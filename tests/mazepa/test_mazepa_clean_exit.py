"""Runs with local worker processes end without noise: no "Exception ignored in atexit callback
... process object is closed" (the reaper thread closed process objects while multiprocessing's
exit handler joined them) and no "resource_tracker: There appear to be N leaked semaphore
objects" (workers ended without their exit handlers, leaving tqdm's process lock behind), after
a successful run or a cancelled one. Both were races: each test runs many times."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOISE = ("Exception ignored", "leaked semaphore", "resource_tracker", "Traceback")

SHORT_RUN = """
import sys
from zetta_utils import mazepa

@mazepa.taskable_operation
def square(i: int) -> int:
    return i * i

if __name__ == "__main__":  # (worker processes import this module too)
    mazepa.execute([square.make_task(i) for i in range(8)], num_procs=2, show_progress=False)
"""


def _assert_quiet(stderr: str) -> None:
    for noise in NOISE:
        assert noise not in stderr, stderr[-3000:]


def test_twenty_short_parallel_runs_exit_quietly(tmp_path: Path) -> None:
    script = tmp_path / "short_run.py"
    script.write_text(SHORT_RUN)
    for _ in range(20):
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        _assert_quiet(result.stderr)


def _volume_spec(tmp_path: Path, lambda_str: str) -> Path:
    """A subchunkable copy of a 64 x 64 x 1 CloudVolume source (16 top-level chunks)."""
    import numpy as np
    import torch

    from zetta_utils.layer.volumetric import VolumetricIndex
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    src, dst = tmp_path / "src", tmp_path / "dst"
    layer = build_ts_layer(
        f"file://{src}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[[4, 4, 40]],
        info_chunk_size=[16, 16, 1],
        info_dataset_size=[64, 64, 1],
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    index = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 1), (4, 4, 40))
    layer[index] = torch.from_numpy(np.full((1, 64, 64, 1), 5, dtype=np.uint8))
    spec = {
        "@type": "mazepa.execute",
        "show_progress": False,
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
            "fn": {"@type": "lambda", "lambda_str": lambda_str},
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
    return path


def _zetta(*args: str) -> list[str]:
    return [sys.executable, "-m", "zetta_utils.cli.main", *args]


def test_zetta_run_p2_exits_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = _volume_spec(tmp_path, "lambda src: src")
    for _ in range(2):
        result = subprocess.run(
            _zetta("run", "-p", "2", str(spec)), capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
        _assert_quiet(result.stderr)
    assert len(list((tmp_path / "dst" / "4_4_40").iterdir())) == 16


def test_cancelled_zetta_run_p2_exits_quietly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    default_sigint: Callable[[list[str]], list[str]],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    marks = tmp_path / "marks"
    marks.mkdir()
    # every task marks that it started, then waits far longer than the test
    spec = _volume_spec(
        tmp_path,
        f"lambda src: (open('{marks}/%d' % __import__('os').getpid(), 'w').close(), "
        "__import__('time').sleep(600), src)[2]",
    )
    proc = subprocess.Popen(
        default_sigint(_zetta("run", "-p", "2", str(spec))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        while len(list(marks.iterdir())) < 2:  # both workers are in a task
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    _assert_quiet(stderr)
