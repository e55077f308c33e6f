"""How many mazepa runs enclose the current one.

A task may run a flow itself (e.g. the lower levels of a chunk); worker processes start at 1. A
nested run shows no progress, keeps the enclosing run's semaphores, and leaves Ctrl-C to the
outermost run. Kept apart from ``execute`` so that the worker processes (which ``execute``
starts) can mark themselves without importing it back.
"""

from __future__ import annotations

import contextvars

__all__ = ["NESTING", "mark_worker_process"]

NESTING: contextvars.ContextVar[int] = contextvars.ContextVar("mazepa_nesting", default=0)


def mark_worker_process() -> None:
    """Called by worker processes: runs started in their tasks count as nested."""
    NESTING.set(1)
