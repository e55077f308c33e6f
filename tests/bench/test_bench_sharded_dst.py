"""bench/bench_sharded_dst.py runs end to end with its smallest settings (one section, one round,
one process), so that it cannot rot; every case's output is checked against its source there.
Its timings are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sharded_dst.py"


@pytest.mark.slow
def test_the_sharded_dst_benchmark_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--z", "1", "--rounds", "1", "--procs", "1"]
        + ["--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("output == source") == 4, out
    assert "DIFFERS" not in out
