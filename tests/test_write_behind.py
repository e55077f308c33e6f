"""zetta_utils.write_behind: scopes, order, reads waiting for writes, the bound, errors.

No test depends on speed: deferred jobs are held back with events, never with sleeps.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from zetta_utils import write_behind

pytestmark = pytest.mark.usefixtures("write_behind_default_bound")


class _Gate:
    """A deferred job that blocks until opened, and says when it started and finished."""

    def __init__(self, log: list[str], name: str, error: BaseException | None = None) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.log = log
        self.name = name
        self.error = error

    def __call__(self) -> None:
        self.started.set()
        assert self.open.wait(10)
        self.log.append(self.name)
        if self.error is not None:
            raise self.error


class _Future:
    """A future completed by hand (TensorStore's interface: add_done_callback, result)."""

    def __init__(self) -> None:
        self._callbacks: list[Any] = []
        self._error: BaseException | None = None
        self._done = False

    def add_done_callback(self, fn: Any) -> None:
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def result(self) -> None:
        if not self._done:
            raise AssertionError("result() of a pending future: the caller would block")
        if self._error is not None:
            raise self._error

    def complete(self, error: BaseException | None = None) -> None:
        self._error = error
        self._done = True
        for fn in self._callbacks:
            fn(self)


def test_outside_a_scope_defer_runs_inline() -> None:
    log: list[str] = []
    write_behind.defer("vol", lambda: log.append("x"), 10)
    assert log == ["x"]
    future = _Future()
    future.complete()
    write_behind.track("vol", future, 10)  # waits (result() of a done future)


def test_off_switch_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(write_behind.ENV, "0")
    log: list[str] = []
    with write_behind.task_scope() as scope:
        write_behind.defer("vol", lambda: log.append("x"))
        assert log == ["x"]
        assert not scope.deferring
    assert scope.done()


def test_defer_returns_at_once_and_wait_waits() -> None:
    log: list[str] = []
    gate = _Gate(log, "a")
    with write_behind.task_scope(on=True) as scope:
        write_behind.defer("vol", gate, 1)
    assert gate.started.wait(10)
    assert not scope.done() and log == []
    gate.open.set()
    scope.wait()
    assert scope.done() and log == ["a"]


def test_jobs_of_consecutive_tasks_run_in_order() -> None:
    log: list[str] = []
    first = _Gate(log, "task1")
    with write_behind.task_scope(on=True) as one:
        write_behind.defer("vol", first)
    with write_behind.task_scope(on=True) as two:
        write_behind.defer("vol", lambda: log.append("task2"))
    assert first.started.wait(10)
    assert not two.done()  # behind task 1's job on the one writer thread
    first.open.set()
    two.wait()
    one.wait()
    assert log == ["task1", "task2"]


def test_an_error_fails_its_own_scope_only() -> None:
    log: list[str] = []
    failing = _Gate(log, "bad", OSError("disk full"))
    failing.open.set()
    with write_behind.task_scope(on=True) as one:
        write_behind.defer("vol", failing)
    with write_behind.task_scope(on=True) as two:
        write_behind.defer("vol", lambda: log.append("good"))
    with pytest.raises(OSError, match="disk full"):
        one.wait()
    two.wait()
    assert log == ["bad", "good"]


def test_wait_for_waits_for_the_key_only() -> None:
    log: list[str] = []
    gate = _Gate(log, "vol-a")
    with write_behind.task_scope(on=True):
        write_behind.defer("a", gate)
    assert gate.started.wait(10)
    write_behind.wait_for("b")  # nothing pending on b: returns
    waited = threading.Event()

    def reader() -> None:
        write_behind.wait_for("a")
        waited.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert not waited.is_set()
    gate.open.set()
    thread.join(10)
    assert waited.is_set() and log == ["vol-a"]


def test_tracked_futures() -> None:
    future = _Future()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", future, 5)
    assert not scope.done() and write_behind.pending_bytes() == 5
    called = threading.Event()
    scope.add_done_callback(called.set)
    assert not called.is_set()
    future.complete(RuntimeError("PUT failed"))
    assert called.is_set() and scope.done() and write_behind.pending_bytes() == 0
    with pytest.raises(RuntimeError, match="PUT failed"):
        scope.wait()


def test_pending_work_is_bounded() -> None:
    write_behind.configure(max_pending_bytes=100)
    log: list[str] = []
    first = _Gate(log, "first")
    admitted = threading.Event()
    with write_behind.task_scope(on=True) as scope:
        write_behind.defer("vol", first, 80)  # one piece is always admitted
        assert first.started.wait(10)

        def second() -> None:
            with write_behind.task_scope(on=True) as other:
                write_behind.defer("vol", lambda: log.append("second"), 30)  # 110 > 100: blocks
                admitted.set()
            other.wait()

        thread = threading.Thread(target=second)
        thread.start()
        assert write_behind.pending_bytes() == 80
        assert not admitted.is_set()
        first.open.set()
        thread.join(10)
    assert admitted.is_set()
    scope.wait()
    assert log == ["first", "second"]


def test_synchronous_block_writes_inline() -> None:
    log: list[str] = []
    with write_behind.task_scope(on=True) as scope:
        with write_behind.synchronous():
            write_behind.defer("vol", lambda: log.append("locked"))
            assert log == ["locked"]
        assert write_behind.current_scope() is scope
    assert write_behind.current_scope() is None


def test_configure_refuses_bad_bounds() -> None:
    with pytest.raises(ValueError, match="max_pending_bytes"):
        write_behind.configure(max_pending_bytes=-1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names of /proc")
def test_the_writer_thread_has_a_system_name() -> None:
    """Python threads are all "python" for the system: the writer's CPU time could not be told
    from the tasks' (top -H, perf, /proc/<pid>/task/*/comm)."""
    seen: list[str] = []

    def job() -> None:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            seen.append(f.read().strip())

    with write_behind.task_scope(on=True) as scope:
        write_behind.defer("k", job)
    scope.wait()
    assert seen == [write_behind.OS_THREAD_NAME] == ["zetta-writer"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names of /proc")
def test_name_os_thread_cuts_to_the_system_limit() -> None:
    names: list[str] = []

    def run() -> None:
        assert write_behind.name_os_thread("a-name-longer-than-fifteen")
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            names.append(f.read().strip())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert names == ["a-name-longer-t"]
