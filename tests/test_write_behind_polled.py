"""zetta_utils.write_behind: tracked futures with ``done()`` (TensorStore's) are polled, never
called back, unless a scope asks to be called back (a worker process waking its loop).

No test depends on speed: futures are completed by hand or from a thread held by events.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from zetta_utils import write_behind

pytestmark = pytest.mark.usefixtures("write_behind_default_bound")


class _PolledFuture:
    """A future with ``done()``, completed by hand; ``result()`` blocks until then."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._error: BaseException | None = None
        self.callbacks: list[Any] = []

    def done(self) -> bool:
        return self._event.is_set()

    def add_done_callback(self, fn: Any) -> None:
        self.callbacks.append(fn)
        if self.done():
            fn(self)

    interrupt_next_wait = False
    """The next ``result()`` on a pending future raises KeyboardInterrupt (Ctrl-C in a wait)."""

    def result(self) -> None:
        if self.interrupt_next_wait and not self.done():
            self.interrupt_next_wait = False
            raise KeyboardInterrupt
        assert self._event.wait(10)
        if self._error is not None:
            raise self._error

    def complete(self, error: BaseException | None = None) -> None:
        self._error = error
        self._event.set()
        for fn in list(self.callbacks):
            fn(self)


def test_a_polled_future_is_seen_done_without_a_callback() -> None:
    future = _PolledFuture()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", future, 100)
    assert not scope.done()
    assert write_behind.pending_bytes() == 100
    future.complete()
    assert future.callbacks == []
    assert scope.done()
    assert write_behind.pending_bytes() == 0
    scope.wait()


def test_wait_waits_for_a_polled_future_and_raises_its_error() -> None:
    future = _PolledFuture()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", future, 1)
    completer = threading.Thread(target=future.complete, args=(OSError("disk full"),))
    completer.start()
    with pytest.raises(OSError, match="disk full"):
        scope.wait()
    completer.join()
    assert scope.done() and isinstance(scope.error, OSError)


def test_wait_for_a_key_waits_for_its_polled_futures_only() -> None:
    mine, other = _PolledFuture(), _PolledFuture()
    with write_behind.task_scope(on=True):
        write_behind.track("a", mine, 1)
        write_behind.track("b", other, 1)
    waited = threading.Event()

    def reader() -> None:
        write_behind.wait_for("a", tracked_only=True)
        waited.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert not waited.wait(0.05)  # (a future held back: the reader must still wait)
    mine.complete()
    thread.join(10)
    assert waited.is_set()
    assert write_behind.pending_bytes() == 1  # the write to "b" is still pending
    other.complete()
    write_behind.wait_all()


def test_the_bound_finishes_the_oldest_polled_future_first() -> None:
    write_behind.configure(max_pending_bytes=10)
    first, second = _PolledFuture(), _PolledFuture()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", first, 8)
        threading.Timer(0.01, first.complete).start()
        write_behind.track("vol", second, 8)  # over the bound: waits for the first
        assert first.done()
        assert write_behind.pending_bytes() == 8
    second.complete()
    scope.wait()


def test_a_scope_that_asks_for_a_callback_gets_it_when_its_polled_future_completes() -> None:
    future = _PolledFuture()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", future, 1)
    called: list[str] = []
    scope.add_done_callback(lambda: called.append("done"))
    assert called == [] and len(future.callbacks) == 1
    future.complete()  # (from "TensorStore's thread")
    assert called == ["done"]
    assert scope.done()


def test_a_wait_interrupted_by_ctrl_c_leaves_the_write_pending() -> None:
    future = _PolledFuture()
    with write_behind.task_scope(on=True) as scope:
        write_behind.track("vol", future, 1)
    future.interrupt_next_wait = True
    with pytest.raises(KeyboardInterrupt):
        scope.wait()
    assert not scope.done() and scope.error is None  # still pending, not failed
    future.complete()
    scope.wait()
    assert scope.done() and scope.error is None
