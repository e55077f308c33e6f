"""A local worker whose run's process went away (killed: the outcomes' pipe is closed) ends
quietly once it has an outcome to send: exit status 0, not a BrokenPipeError traceback printed on
the run's terminal by every worker.

A real worker process; the task waits for a file the test creates (the deadline only stops a
broken worker from hanging the test)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cloudpickle

from zetta_utils import mazepa
from zetta_utils.mazepa.local_pool import LocalProcessExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # (tasks unpickled in workers)

_GUARD_SEC = 60.0


@mazepa.taskable_operation
def wait_for(path: str) -> int:
    Path(path + ".started").write_text("")
    while not Path(path).exists():  # (a file the test creates)
        time.sleep(0.005)
    return 1


def test_a_worker_whose_parent_closed_its_pipe_ends_quietly(tmp_path: Path) -> None:
    gate = str(tmp_path / "go")
    pool = LocalProcessExecutor(1)
    try:
        pool.submit([wait_for.make_task(gate)])
        deadline = time.monotonic() + _GUARD_SEC
        while not Path(gate + ".started").exists():
            pool.poll_outcomes(0.01)  # (sends the task)
            assert time.monotonic() < deadline, "the task never started"
        worker = pool._workers[0]
        worker.result_conn.close()  # what a killed run's process leaves: a pipe nobody reads
        Path(gate).write_text("")
        worker.process.join(_GUARD_SEC)
        assert worker.process.exitcode == 0
    finally:
        pool.shutdown(cancel=True)
