"""Ctrl-C during a run: interrupt only where it is safe, then ask before cancelling.

While ``execute`` runs, SIGINT raises ``KeyboardInterrupt`` only inside *interruptible* regions:
blocking waits of an executor and the user code of a task running in this process. Anywhere else
(the scheduler's bookkeeping) the signal is noted and raised at the next safe point, so the
scheduler's state is never torn. Executors mark their regions with ``interruptible()``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = [
    "InterruptGuard",
    "ask_cancel_confirmation",
    "current_guard",
    "interruptible",
    "mark_raised_while_running",
    "raised_while_running",
]

_RAN_ATTR = "_zetta_raised_while_running"


def mark_raised_while_running(exc: BaseException) -> None:
    """Note that ``exc`` ended a run that had started (tasks or workers failed, a queue went
    away, ...), as opposed to an error in the spec or arguments found before anything ran. The
    outermost run's guard marks what escapes it; ``zetta run`` exits with 1 for those, 2 for the
    others."""
    try:
        setattr(exc, _RAN_ATTR, True)
    except (AttributeError, TypeError):  # an exception type with __slots__
        pass


def raised_while_running(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, was marked by
    :func:`mark_raised_while_running`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if getattr(current, _RAN_ATTR, False):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class InterruptGuard:
    """Installs a SIGINT handler for the block (main thread only; elsewhere it does nothing).

    The outermost ``execute`` holds one for the whole run, so an exception leaving it ended a
    started run: it is marked (:func:`raised_while_running`)."""

    def __init__(self) -> None:
        self.active = False
        self.pending = False
        self._previous: Any = None
        self._outer: InterruptGuard | None = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.active:
            self.active = False
            raise KeyboardInterrupt
        self.pending = True

    def __enter__(self) -> InterruptGuard:
        global _GUARD
        # Not where SIGINT is deliberately ignored (worker processes leave Ctrl-C to the parent).
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._outer = _GUARD
            self._installed = True
            _GUARD = self
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        global _GUARD
        if isinstance(exc, Exception):
            mark_raised_while_running(exc)
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
            if _GUARD is self:
                _GUARD = self._outer

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a SIGINT arrived since the last check."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def region(self) -> Iterator[None]:
        self.check()
        self.active = True
        try:
            yield
        finally:
            self.active = False


_GUARD: InterruptGuard | None = None


def current_guard() -> InterruptGuard | None:
    """The guard of the ``execute`` running in this process's main thread, if any."""
    return _GUARD


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Mark a region (a blocking wait, user code) where Ctrl-C may interrupt at once."""
    guard = _GUARD
    if guard is None:
        yield
        return
    with guard.region():
        yield


def ask_cancel_confirmation(
    pause: Callable[[], None] | None = None, resume: Callable[[], None] | None = None
) -> bool:
    """After a Ctrl-C: True to cancel the run. Asks "Cancel the run? [y/N]" on an interactive
    terminal (a second Ctrl-C or end of input counts as yes); without one, cancels at once."""
    try:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed stdin
        interactive = False
    if not interactive:
        return True
    if pause is not None:
        pause()
    try:
        with interruptible():  # a second Ctrl-C at the prompt confirms
            answer = input("\nCancel the run? [y/N] ")
    except (KeyboardInterrupt, EOFError):
        return True
    confirmed = answer.strip().lower() in ("y", "yes")
    if not confirmed and resume is not None:
        resume()
    return confirmed
