"""The benchmark matrix (bench/bench_matrix.py) runs end to end with its tiniest settings, on
every storage kind (a real moto S3 server included), so that it cannot rot. Its timings are
printed, never asserted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_matrix.py"


def _has_moto() -> bool:
    return os.path.exists(os.path.join(os.path.dirname(sys.executable), "moto_server")) or bool(
        shutil.which("moto_server")
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not _has_moto(), reason="moto_server not installed (pip install 'moto[server]')"
)
def test_the_matrix_runs_with_its_tiniest_settings(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ZETTA_WORKER_START_COST_S": "0"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for kind in ("raw", "gzip", "jpeg", "sharded", "s3-raw", "s3-gzip"):
        assert f"\n{kind}: 2048 x 2048 x 1 uint8" in out
    # every kind x flow x process count measured, and its output checked against the source
    assert out.count(" Mvox/s  ratio ") == 6 * 2 * 2
    assert out.count("output == source") == 5 * 2 * 2
    assert out.count("output jpeg: mean |dst - src|") == 2 * 2 and "TOO LARGE" not in out
    assert "DIFFERS" not in out
    assert "goals missed:" in out or "all goals met" in out


def test_flows_picks_the_flows_measured(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--kinds", "raw", "--procs", "1", "--flows", "c"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ZETTA_WORKER_START_COST_S": "0", "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(" Mvox/s  ratio ") == 1 and "(c) crop + blend" in done.stdout
    assert "(a) one level" not in done.stdout and "output == source" in done.stdout
    bad = subprocess.run(
        [sys.executable, str(BENCH), "--flows", "b"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "--flows: expected letters among a, c" in bad.stderr
