"""bench/bench_task_calls.py runs end to end with its smallest settings (one 2048^2 section, one
process), so that it cannot rot. Its counts are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_task_calls.py"


@pytest.mark.slow
def test_the_task_calls_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--z", "1", "--size", "2048", "--procs", "1", "--top", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "1 process(es), 1 sections, 4 tasks" in out, out
    assert "mean |dst - src| 0.00" in out, out
    assert "run's process:" in out and "calls per task" in out, out
