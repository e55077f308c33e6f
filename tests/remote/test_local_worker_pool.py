"""``LocalWorkerPool`` on its own: restarts with backoff on an injected clock, and giving up on
workers that die before taking any task. Real ``zetta worker`` processes; no queue server is
needed, since these workers die at start (no run key in their environment)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from zetta_utils.mazepa_addons.local_workers import InFlightFile, LocalWorkerPool, describe_exit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(tmp_path: Path, clock: FakeClock, **kwargs: object) -> LocalWorkerPool:
    return LocalWorkerPool(
        1,
        work_queue="http://127.0.0.1:9/queue/w",
        outcome_queue="http://127.0.0.1:9/queue/o",
        run_id="pool-test-0001",
        env={},
        log_dir=tmp_path / "logs",
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def _wait_for_exit(pool: LocalWorkerPool) -> None:
    for slot in pool._slots:
        if slot.process is not None:
            slot.process.wait(60)


@pytest.fixture
def no_run_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZETTA_RUN_KEY", raising=False)


def test_workers_dying_before_any_task_stop_the_run_with_their_log(
    tmp_path: Path, no_run_key: None
) -> None:
    clock = FakeClock()
    pool = _pool(tmp_path, clock, restart_backoff_s=0, max_quick_deaths=3).start()
    try:
        for _ in range(2):
            _wait_for_exit(pool)
            pool.check()  # restarted at once (no backoff)
        _wait_for_exit(pool)
        with pytest.raises(RuntimeError, match="died 3 times in a row") as info:
            pool.check()
        assert "before taking any task" in str(info.value) and "ZETTA_RUN_KEY" in str(info.value)
        assert len(pool.deaths) == 3 and all(d.tasks == [] for d in pool.deaths)
    finally:
        pool.stop()


def test_a_dead_worker_is_restarted_after_a_doubling_delay(
    tmp_path: Path, no_run_key: None
) -> None:
    clock = FakeClock()
    pool = _pool(
        tmp_path, clock, restart_backoff_s=1.0, max_restart_backoff_s=3.0, max_quick_deaths=100
    ).start()
    try:
        expected_delays = [1.0, 2.0, 3.0, 3.0]
        for delay in expected_delays:
            _wait_for_exit(pool)
            pool.check()  # notices the death
            first_pid = pool.deaths[-1].pid
            clock.now += delay - 0.01
            pool.check()
            assert pool._slots[0].restart_at is not None, "restarted before its delay"
            clock.now += 0.01
            pool.check()
            assert pool._slots[0].restart_at is None and pool._slots[0].process is not None
            assert pool._slots[0].process.pid != first_pid
        assert len(pool.deaths) == len(expected_delays)
        # a worker that lived past quick_death_s starts a new row of delays
        _wait_for_exit(pool)
        clock.now += 60
        pool.check()
        assert pool._slots[0].restart_at == pytest.approx(clock.now + 1.0)
    finally:
        pool.stop()


def test_in_flight_file_round_trip(tmp_path: Path) -> None:
    f = InFlightFile(tmp_path / "w.json")
    assert f.read() == []
    f.write([{"running": True, "handle": "h1", "task_id": "t"}, {"handle": "h2"}, {"no": "handle"}])
    assert [e["handle"] for e in f.read()] == ["h1", "h2"]
    f.clear()
    f.clear()
    assert f.read() == []


def test_exits_are_described() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-11) == "was killed by signal SIGSEGV"
    assert describe_exit(-6) == "was killed by signal SIGABRT"
    proc = subprocess.run(["true"])
    assert describe_exit(proc.returncode) == "exited with code 0"
