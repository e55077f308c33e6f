"""Caps on concurrent heavy work inside the worker processes of one machine.

    with mazepa.semaphore("cuda"):
        result = model(batch)

``execute`` creates one process-shared semaphore per type ("read", "write", "cuda", "cpu") and
hands them to its workers; outside an ``execute`` (or a ``configure_semaphores`` block)
``semaphore(...)`` does nothing. Default limits: ``cuda`` 1, the others the number of worker
processes (that is, no limit); ``semaphores_spec={"read": 2}`` changes them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "SEMAPHORE_TYPES",
    "active_semaphores",
    "configure_semaphores",
    "default_semaphore_counts",
    "semaphore",
]

SEMAPHORE_TYPES: tuple[str, ...] = ("read", "write", "cuda", "cpu")

_ACTIVE: dict[str, Any] | None = None


def _check_name(name: str) -> None:
    if name not in SEMAPHORE_TYPES:
        raise ValueError(
            f"semaphore: unknown type {name!r}; expected one of {', '.join(SEMAPHORE_TYPES)}"
        )


def default_semaphore_counts(num_procs: int) -> dict[str, int]:
    n = max(1, num_procs)
    return {"read": n, "write": n, "cuda": 1, "cpu": n}


def _validated_counts(spec: Mapping[str, int] | None, num_procs: int) -> dict[str, int]:
    counts = default_semaphore_counts(num_procs)
    if spec is None:
        return counts
    if not isinstance(spec, Mapping):
        raise TypeError(f"`semaphores_spec` must map semaphore types to counts, got {spec!r}")
    for name, count in spec.items():
        if name not in SEMAPHORE_TYPES:
            raise ValueError(
                f"`semaphores_spec`: unknown semaphore type {name!r}; expected "
                f"{', '.join(SEMAPHORE_TYPES)}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(
                f"`semaphores_spec[{name!r}]` must be a positive integer, got {count!r}"
            )
        counts[name] = count
    return counts


def create_semaphores(
    spec: Mapping[str, int] | None, num_procs: int, mp_context: Any = None
) -> dict[str, Any]:
    """One process-shared semaphore per type, sized by ``spec`` over the defaults."""
    ctx = mp_context or multiprocessing.get_context()
    return {
        name: ctx.Semaphore(count) for name, count in _validated_counts(spec, num_procs).items()
    }


def install_semaphores(semaphores: dict[str, Any] | None) -> None:
    """Make ``semaphores`` the ones ``semaphore(...)`` uses in this process (worker start-up)."""
    global _ACTIVE
    _ACTIVE = semaphores


def active_semaphores() -> dict[str, Any] | None:
    """The semaphores ``semaphore(...)`` uses in this process now (None: no limits)."""
    return _ACTIVE


@contextlib.contextmanager
def configure_semaphores(
    semaphores_spec: Mapping[str, int] | None = None,
    num_procs: int = 1,
    mp_context: Any = None,
) -> Iterator[dict[str, Any]]:
    """Within the block, ``semaphore(name)`` limits concurrency with fresh semaphores (yielded,
    to hand to worker processes)."""
    global _ACTIVE
    semaphores = create_semaphores(semaphores_spec, num_procs, mp_context)
    previous = _ACTIVE
    _ACTIVE = semaphores
    try:
        yield semaphores
    finally:
        _ACTIVE = previous


@contextlib.contextmanager
def semaphore(name: str) -> Iterator[None]:
    """Hold one unit of the ``name`` semaphore for the block (no-op outside an execution)."""
    _check_name(name)
    active = _ACTIVE
    if active is None:
        yield
        return
    sem = active[name]
    sem.acquire()
    try:
        yield
    finally:
        sem.release()
