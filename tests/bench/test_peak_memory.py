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


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-memory counters"
)
def test_the_estimate_counts_the_cache_of_decoded_input_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reads through TensorStore's array interface: the prefetches go through a cache of decoded
    # chunks that stays in the worker (rows of 1024-voxel chunks of a 6144-wide region)
    monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", "0")
    got = peak_memory.measure(size=6144, z=1, root=str(tmp_path))
    assert got["measured"] > 32 << 20  # more than the estimate without the cache (26.6 MiB)
    assert got["measured"] <= got["estimate"]
