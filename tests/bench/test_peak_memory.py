"""The worker memory the plan's summary estimates bounds what a worker's tasks hold at most on a
real run of the guide's crop + blend flow (c) (issue 24 part 4). Memory, not speed: nothing here
depends on how fast the machine is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import peak_memory


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-memory counters"
)
def test_the_plans_memory_estimate_bounds_a_measured_run(tmp_path: Path) -> None:
    got = peak_memory.measure(size=2048, z=1, root=str(tmp_path))
    assert got["measured"] > 1 << 20  # the run did hold its chunks (a 1 MiB storage chunk at least)
    assert got["measured"] <= got["estimate"]
    assert got["estimate"] == max(got["top_task_estimate"], got["reduction_estimate"])
