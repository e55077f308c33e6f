"""Reading the next task's input while the current task runs.

On object storage a task's read waits a round trip (20-100 ms) before the task can start: for a
1 MB chunk that is most of the task. An executor about to run task *i* asks task *i + 1* to
declare its reads (mazepa's ``Task.start_reads``: an operation's ``read_ahead`` method); the
operation hands them here, as ``(layer, index)`` pairs, with :func:`start`. They are read on a
few threads of this process (a TensorStore or CloudVolume read waits for the network without the
GIL), and when task *i + 1* reads ``layer[index]`` (:meth:`.layer.VolumetricLayer.__getitem__`)
it takes the data read ahead (:func:`take`), or reads as before when nothing matches.

Safety:

* only what the caller vouches for is read ahead: a volume the flow itself never writes (as
  ``read_cache``'s scoped readers require); dependencies between tasks do the rest (a task is
  handed to a worker only once the tasks it depends on, writes included, have finished);
* a read waits first for the writes this process has pending on the volume (as every read does);
* a write by this process to the volume (:func:`.precomputed.notify`) drops what was read ahead
  of it, whether read already or not, and so does a write still pending on the volume when the
  data is taken: the task then reads again, after that write;
* at most two tasks' reads are held (the running task's and the next one's): :func:`start`
  drops the reads of the task before the running one that it did not take;
* a read that failed raises its error in the task taking it (then that task fails, as if it
  had read itself); reads never taken are dropped with their errors.

Only plain layers (no index or read processors) on remote storage are read ahead; local reads
are cheap and their decoding would compete for the cores with the running task.
``ZETTA_READ_AHEAD``: ``remote`` (the default), ``all`` (local volumes too, for measuring) or
``0``/``off`` (none), read once per process.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from zetta_utils import write_behind

from . import precomputed

if TYPE_CHECKING:
    from .index import VolumetricIndex


class VolumetricLayer(Protocol):
    """What read-ahead uses of a :class:`.layer.VolumetricLayer` (named so here: ``layer``
    imports this module)."""

    @property
    def backend(self) -> Any: ...

    @property
    def index_procs(self) -> Any: ...

    @property
    def read_procs(self) -> Any: ...

    def _read_backend(self, idx: VolumetricIndex) -> Any: ...

__all__ = [
    "ENV",
    "HELD",
    "TAKEN",
    "clear",
    "held",
    "mode",
    "reads_ahead",
    "set_mode",
    "settle",
    "start",
    "take",
]

ENV = "ZETTA_READ_AHEAD"
_MODES = ("remote", "all", "off")
THREADS = 4
"""Reads in flight at once (a task declaring more queues them)."""
TASKS_HELD = 2
"""Tasks whose reads are held: the running one's (not taken yet) and the next one's."""


class _Read:
    __slots__ = ("future", "idx", "key", "layer")

    def __init__(self, layer: Any, idx: Any, key: str, future: concurrent.futures.Future[Any]):
        self.layer = layer
        self.idx = idx
        self.key = key
        self.future = future


_LOCK = threading.Lock()
_GROUPS: deque[list[_Read]] = deque()
"""The reads of the last :data:`TASKS_HELD` tasks given to :func:`start`, oldest first."""
HELD: list[int] = [0]
"""How many reads are held: readers call :func:`take` only while some are."""
TAKEN: list[int] = [0]
"""Reads ahead taken by :func:`take` in this process (for tests and benchmarks)."""
_POOL: list[concurrent.futures.ThreadPoolExecutor | None] = [None]
_MODE: list[str | None] = [None]
_LISTENING = [False]


def mode() -> str:
    """``remote``, ``all`` or ``off``: ``$ZETTA_READ_AHEAD`` as read once by this process."""
    current = _MODE[0]
    if current is None:
        value = os.environ.get(ENV, "remote").strip().lower()
        current = "off" if value in ("0", "false", "no", "off") else value
        if current not in _MODES:
            raise ValueError(f"${ENV}: expected one of remote, all, 0/off; got {value!r}")
        _MODE[0] = current
    return current


def set_mode(value: str | None) -> None:
    """Set the mode for this process (None: read ``$ZETTA_READ_AHEAD`` again at the next use);
    drops what is held."""
    if value is not None and value not in _MODES:
        raise ValueError(f"mode: expected one of {', '.join(_MODES)} or None, got {value!r}")
    clear()
    _MODE[0] = value


def _volume_key(layer: Any) -> str | None:
    """The volume ``layer`` reads (its URL, as writes notify it), or None when it is not read
    ahead: processors, a backend that is not a precomputed volume, local storage unless
    ``all``."""
    if layer.index_procs or layer.read_procs:
        return None
    backend = layer.backend
    if not isinstance(backend, precomputed.PrecomputedBackend):
        return None
    if backend.is_local and _MODE[0] != "all":
        return None
    return backend.path


def reads_ahead(layer: VolumetricLayer) -> bool:
    """Whether :func:`start` reads ``layer`` ahead (a plain layer on remote storage, or local
    too with ``all``; never with ``off``)."""
    return (_MODE[0] or mode()) != "off" and _volume_key(layer) is not None


def start(reads: Iterable[tuple[VolumetricLayer, VolumetricIndex]]) -> int:
    """Start reading ``layer[idx]`` for each pair (one task's reads; see the module docstring)
    on this process's read-ahead threads; returns how many were started. The reads of the task
    before the previous call are dropped unless taken."""
    if (_MODE[0] or mode()) == "off":
        return 0
    group: list[_Read] = []
    for layer, idx in reads:
        key = _volume_key(layer)
        if key is None:
            continue
        group.append(_Read(layer, idx, key, _pool().submit(_read, layer, idx)))
    with _LOCK:
        if not group and not _GROUPS:
            return 0
        if not _LISTENING[0]:  # (only now: every write of the process calls a listener)
            _LISTENING[0] = True
            precomputed.add_listener(_on_event)
        _GROUPS.append(group)
        while len(_GROUPS) > TASKS_HELD:
            _drop_group(_GROUPS.popleft())
        HELD[0] = sum(len(g) for g in _GROUPS)
    return len(group)


def _read(layer: Any, idx: Any) -> Any:
    return layer._read_backend(idx)  # pylint: disable=protected-access


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    pool = _POOL[0]
    if pool is None:
        pool = _POOL[0] = concurrent.futures.ThreadPoolExecutor(
            THREADS, thread_name_prefix="zetta-read-ahead"
        )
    return pool


def take(layer: VolumetricLayer, idx: VolumetricIndex) -> Any:
    """The data of ``layer[idx]`` read ahead (waiting for it if still in flight), or None when
    nothing was read ahead for exactly this layer object and index (or a write made it stale).
    A read ahead that failed raises its error here."""
    found = None
    with _LOCK:
        for group in _GROUPS:
            for i, read in enumerate(group):
                if read.layer is layer and read.idx == idx:
                    found = group.pop(i)
                    HELD[0] -= 1
                    break
            if found is not None:
                break
    if found is None:
        return None
    TAKEN[0] += 1
    if write_behind.has_pending(found.key):
        # a write of this process to the volume is still in flight: read after it instead
        found.future.cancel()
        return None
    return found.future.result()


def held() -> list[tuple[Any, Any]]:
    """``(layer, idx)`` of the reads held, oldest first (for tests)."""
    with _LOCK:
        return [(r.layer, r.idx) for g in _GROUPS for r in g]


def settle() -> None:
    """Wait until the reads held have finished (for tests)."""
    with _LOCK:
        futures = [r.future for g in _GROUPS for r in g]
    concurrent.futures.wait(futures)


def clear() -> None:
    """Drop everything held (reads in flight finish unobserved)."""
    with _LOCK:
        while _GROUPS:
            _drop_group(_GROUPS.popleft())
        HELD[0] = 0


def _drop_group(group: list[_Read]) -> None:
    for read in group:
        read.future.cancel()  # (a read not started yet is not made; one in flight finishes)


def _on_event(url: str, event: precomputed.Event) -> None:
    if not HELD[0]:
        return
    with _LOCK:
        for group in _GROUPS:
            kept = [r for r in group if r.key != url]
            if len(kept) != len(group):
                for r in group:
                    if r.key == url:
                        r.future.cancel()
                group[:] = kept
        HELD[0] = sum(len(g) for g in _GROUPS)

