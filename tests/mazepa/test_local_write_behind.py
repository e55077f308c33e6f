"""With ``$ZETTA_WRITE_BEHIND=remote`` (``mazepa.worker_threads.local_write_behind``,
``write_behind.configure(local=False)``), writes to local storage finish inside their tasks in
local workers, while writes to remote storage still go behind. Real worker processes and threads;
nothing timed (the deadlines only stop a broken run from hanging the test)."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa, write_behind
from zetta_utils.mazepa import worker_threads

cloudpickle.register_pickle_by_value(sys.modules[__name__])

_GUARD_SEC = 60.0


@pytest.fixture
def local_off() -> Any:
    write_behind.configure(local=False)
    try:
        yield
    finally:
        write_behind.configure(local=True)


def test_local_writes_go_behind_in_workers_unless_the_run_says_remote() -> None:
    rule = worker_threads.local_write_behind
    assert rule(2, environ={}) is True
    assert rule(2, environ={"ZETTA_WRITE_BEHIND": "1"}) is True
    assert rule(2, environ={"ZETTA_WRITE_BEHIND": " Remote "}) is False
    assert rule(1, environ={"ZETTA_WRITE_BEHIND": "remote"}) is False
    assert write_behind.enabled()  # ("remote" is on)


def test_keys_of_local_storage() -> None:
    for key in ("file:///data/vol", "/data/vol", "relative/vol"):
        assert write_behind.is_local_key(key), key
    for key in ("gs://bucket/vol", "s3://bucket/vol", "https://host/vol"):
        assert not write_behind.is_local_key(key), key


def test_a_local_deferred_write_runs_at_once_a_remote_one_behind(local_off: None) -> None:
    ran_on: dict[str, int] = {}
    release = threading.Event()

    def job(name: str, wait: bool = False) -> None:
        if wait:
            assert release.wait(_GUARD_SEC)
        ran_on[name] = threading.get_ident()

    with write_behind.task_scope(True) as scope:
        write_behind.defer("file:///tmp/vol", lambda: job("file"))
        write_behind.defer("/tmp/vol", lambda: job("path"))
        write_behind.defer("s3://bucket/vol", lambda: job("s3", wait=True))
        # the local ones ran here, before defer returned; the remote one waits on the writer
        assert ran_on == {"file": threading.get_ident(), "path": threading.get_ident()}
        assert not scope.done()
    release.set()
    scope.wait()
    assert ran_on["s3"] != threading.get_ident()


class _WatchedFuture(Future):
    """A real future that notes whether anyone waited for its result."""

    waited = False

    def result(self, timeout: float | None = None) -> Any:
        self.waited = True
        return super().result(timeout)


def test_a_local_tracked_future_is_waited_for_a_remote_one_is_not(local_off: None) -> None:
    local, remote = _WatchedFuture(), _WatchedFuture()
    local.set_result(None)
    remote.set_result(None)
    with write_behind.task_scope(True) as scope:
        write_behind.track("file:///tmp/vol", local)
        assert local.waited
        write_behind.track("gs://bucket/vol", remote)
        assert not remote.waited  # (polled later: whoever waits for the task's writes)
    scope.wait()
    assert remote.waited


def test_by_default_local_writes_go_behind() -> None:
    assert write_behind.local_behind()
    release = threading.Event()
    with write_behind.task_scope(True) as scope:
        write_behind.defer("file:///tmp/vol", lambda: release.wait(_GUARD_SEC))
        assert not scope.done()
    release.set()
    scope.wait()
    with pytest.raises(ValueError, match="`local` must be True or False"):
        write_behind.configure(local="no")  # type: ignore[arg-type]


@mazepa.taskable_operation
def write_locally_and_remotely(folder: str, i: int) -> bool:
    """Defers a job on a local key and one on a remote key; each notes in a file whether it ran
    on the task's own thread (at once) or on the writer thread (behind). Returns the worker's
    setting."""
    task_thread = threading.get_ident()

    def job(name: str) -> None:
        where = "inline" if threading.get_ident() == task_thread else "behind"
        Path(folder, f"{name}{i}").write_text(where)

    write_behind.defer(folder, lambda: job("local"))
    write_behind.defer(f"s3://bucket/{i}", lambda: job("remote"))
    return write_behind.local_behind()


def _run(folder: Path, n: int) -> tuple[list[Any], set[str], set[str]]:
    """The tasks' return values, and where their local and remote jobs ran."""
    folder.mkdir()
    tasks = [write_locally_and_remotely.make_task(str(folder), i) for i in range(n)]
    mazepa.execute(tasks, num_procs=2, show_progress=False, worker_start_cost_s=0)
    # (a task is reported once its jobs finished: their files are all there)
    local = {(folder / f"local{i}").read_text() for i in range(n)}
    remote = {(folder / f"remote{i}").read_text() for i in range(n)}
    return [t.outcome.return_value if t.outcome is not None else None for t in tasks], local, remote


def test_workers_take_the_runs_local_write_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZETTA_WRITE_BEHIND", "remote")
    assert _run(tmp_path / "remote", 4) == ([False] * 4, {"inline"}, {"behind"})
    monkeypatch.delenv("ZETTA_WRITE_BEHIND")
    assert _run(tmp_path / "default", 4) == ([True] * 4, {"behind"}, {"behind"})
