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
  drops the reads of the task before the running one that it did not take (and those of the
  steps of a task, :func:`start_in_task`: at most the running step's and the next one's);
* a read that failed raises its error in the task taking it (then that task fails, as if it
  had read itself); reads never taken are dropped with their errors.

Besides ``(layer, index)`` pairs, :func:`start` takes :class:`Call` reads: a function reading a
volume (a precomputed backend) in some other way, e.g. a flow's read of a chunk's padded input
into memory through a scoped cache of storage chunks (``prefetch_layer``), taken with
:func:`take_call` by an equal key and the same owner object (the layer), under the same rules.
Tasks that go through several chunks one after another (a section of a flow's top-level chunks)
read their next chunk's input while the current one is computed with :func:`start_in_task`:
those reads are held apart (steps of the running task), so that they never drop the next task's
reads. A call may name earlier calls in flight to wait for (``after``: reads sharing storage
chunks through a cache that does not merge concurrent reads of a chunk).

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
from collections.abc import Callable, Hashable, Iterable
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
    "Call",
    "clear",
    "held",
    "mode",
    "reads_ahead",
    "set_mode",
    "settle",
    "start",
    "start_in_task",
    "take",
    "take_call",
]

ENV = "ZETTA_READ_AHEAD"
_MODES = ("remote", "all", "off")
THREADS = 4
"""Reads in flight at once (a task declaring more queues them)."""
TASKS_HELD = 2
"""Tasks whose reads are held: the running one's (not taken yet) and the next one's."""


class Call:
    """A read ahead other than ``layer[idx]``: ``read()`` reads the precomputed volume
    ``backend`` (on one of the read-ahead threads); :func:`take_call` takes its result for the
    same ``owner`` object and an equal ``key`` (what identifies the read exactly).

    ``after(other)``: whether the read must wait until the read of ``other``, a call of the same
    volume started before it and still in flight, has finished: for readers that do not merge
    concurrent reads of one storage chunk (CloudVolume's cache; TensorStore's does), two reads
    in flight sharing storage chunks would each fetch and decode them."""

    __slots__ = ("after", "backend", "key", "owner", "read")

    def __init__(
        self,
        owner: Any,
        key: Hashable,
        backend: Any,
        read: Callable[[], Any],
        after: Callable[[Call], bool] | None = None,
    ):
        self.owner = owner
        self.key = key
        self.backend = backend
        self.read = read
        self.after = after


class _Read:
    __slots__ = ("call", "future", "idx", "key", "layer")

    def __init__(
        self,
        layer: Any,
        idx: Any,
        key: str,
        future: concurrent.futures.Future[Any],
        call: bool = False,
    ):
        self.layer = layer
        self.idx = idx  # (a Call's key for a call)
        self.key = key
        self.future = future
        self.call = call


_LOCK = threading.RLock()
"""(Reentrant: dropping a read cancels its future, whose callbacks take it again.)"""
_GROUPS: deque[list[_Read]] = deque()
"""The reads of the last :data:`TASKS_HELD` tasks given to :func:`start`, oldest first, then
(last) the running task's next step's (:func:`start_in_task`), if any."""
_IN_TASK: list[int] = [0]
"""How many groups at the end of :data:`_GROUPS` hold reads of :func:`start_in_task` (at most
:data:`TASKS_HELD`: the running step's and the next one's)."""
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
    return _backend_key(layer.backend)


def _backend_key(backend: Any) -> str | None:
    if not isinstance(backend, precomputed.PrecomputedBackend):
        return None
    if backend.is_local and _MODE[0] != "all":
        return None
    return backend.path


def reads_ahead(layer: VolumetricLayer) -> bool:
    """Whether :func:`start` reads ``layer`` ahead (a plain layer on remote storage, or local
    too with ``all``; never with ``off``)."""
    return (_MODE[0] or mode()) != "off" and _volume_key(layer) is not None


def reads_backend_ahead(backend: Any) -> bool:
    """Whether :func:`start` reads a :class:`Call` of ``backend`` ahead (a precomputed volume on
    remote storage, or local too with ``all``; never with ``off``)."""
    return (_MODE[0] or mode()) != "off" and _backend_key(backend) is not None


Reads = Iterable["tuple[VolumetricLayer, VolumetricIndex] | Call"]


def start(reads: Reads) -> int:
    """Start reading ``layer[idx]`` for each pair, and each :class:`Call` (one task's reads; see
    the module docstring) on this process's read-ahead threads; returns how many were started.
    The reads of the task before the previous call are dropped unless taken."""
    if (_MODE[0] or mode()) == "off":
        return 0
    group = _submit(reads)
    with _LOCK:
        if not group and not _GROUPS:
            return 0
        _listen()
        _drop_in_task()  # (a task's steps start after the next task's reads: an older task's)
        _GROUPS.append(group)
        while len(_GROUPS) > TASKS_HELD:
            _drop_group(_GROUPS.popleft())
        HELD[0] = sum(len(g) for g in _GROUPS)
    return len(group)


def start_in_task(reads: Reads, steps: int = TASKS_HELD) -> int:
    """:func:`start` for the next step of the running task (its next chunk), called before the
    step before it runs (a :class:`Call` already held, e.g. read ahead for the task, is not read
    again): held apart from the tasks' reads, whose count it does not touch; at most
    two steps' reads are held (the running step's and the next one's: the reads of the call
    before the previous one are dropped unless taken), and they are dropped at the next
    :func:`start` (the next task's reads start before it runs)."""
    if (_MODE[0] or mode()) == "off":
        return 0
    group = _submit(reads)
    with _LOCK:
        if not group and not _IN_TASK[0]:
            return 0
        _listen()
        _GROUPS.append(group)
        _IN_TASK[0] += 1
        if _IN_TASK[0] > steps:
            oldest = len(_GROUPS) - _IN_TASK[0]
            _drop_group(_GROUPS[oldest])
            del _GROUPS[oldest]
            _IN_TASK[0] -= 1
        HELD[0] = sum(len(g) for g in _GROUPS)
    return len(group)


def _submit(reads: Reads) -> list[_Read]:
    group: list[_Read] = []
    for item in reads:
        if isinstance(item, Call):
            key = _backend_key(item.backend)
            if key is not None and not _held_call(item):  # (held: read once)
                group.append(_Read(item.owner, item.key, key, _submit_call(item, key), call=True))
            continue
        layer, idx = item
        key = _volume_key(layer)
        if key is not None:
            group.append(_Read(layer, idx, key, _pool().submit(_read, layer, idx)))
    return group


def _held_call(call: Call) -> bool:
    with _LOCK:
        return any(
            r.call and r.layer is call.owner and r.idx == call.key for g in _GROUPS for r in g
        )


_CALLS_IN_FLIGHT: dict[str, list[tuple[Call, concurrent.futures.Future[Any]]]] = {}
"""Per volume, the calls with an ``after`` submitted and not finished yet (their futures)."""


def _submit_call(call: Call, key: str) -> concurrent.futures.Future[Any]:
    after = call.after
    if after is None:
        return _pool().submit(call.read)
    with _LOCK:
        flying = _CALLS_IN_FLIGHT.setdefault(key, [])
        before = [f for c, f in flying if after(c)]
        # (the pool runs its jobs in order: those waited for started first, no deadlock)
        future = _pool().submit(_read_after, before, call.read)
        entry = (call, future)
        flying.append(entry)
    future.add_done_callback(lambda _: _landed(key, entry))  # (outside: it may run at once)
    return future


def _landed(key: str, entry: tuple[Call, concurrent.futures.Future[Any]]) -> None:
    with _LOCK:
        flying = _CALLS_IN_FLIGHT.get(key)
        if flying is not None and entry in flying:
            flying.remove(entry)
            if not flying:
                del _CALLS_IN_FLIGHT[key]


def _read_after(before: list[concurrent.futures.Future[Any]], read: Callable[[], Any]) -> Any:
    concurrent.futures.wait(before)  # (their errors, or cancellations, are their takers')
    return read()


def _drop_in_task() -> None:
    while _IN_TASK[0]:  # (the last groups)
        _drop_group(_GROUPS.pop())
        _IN_TASK[0] -= 1


def _listen() -> None:
    if not _LISTENING[0]:  # (only now: every write of the process calls a listener)
        _LISTENING[0] = True
        precomputed.add_listener(_on_event)


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
    return _take(layer, idx, False)


def take_call(owner: Any, key: Hashable) -> Any:
    """What the :class:`Call` of ``owner`` (the same object) and ``key`` (equal) read ahead
    returned (waiting for it if still in flight), or None when nothing matches (or a write
    made it stale). A read that failed raises its error here."""
    return _take(owner, key, True)


def _take(layer: Any, idx: Any, call: bool) -> Any:
    found = None
    with _LOCK:
        for group in _GROUPS:
            for i, read in enumerate(group):
                if read.layer is layer and read.call is call and read.idx == idx:
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
        _IN_TASK[0] = 0
        _CALLS_IN_FLIGHT.clear()
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



def _after_fork() -> None:
    # a child of a plain fork has none of this process's threads (the pool's, and maybe one that
    # held the lock): a new pool when it reads ahead, nothing held (mazepa's workers come from a
    # fork server, which never read ahead)
    global _LOCK
    _LOCK = threading.RLock()
    _POOL[0] = None
    _GROUPS.clear()
    _IN_TASK[0] = 0
    _CALLS_IN_FLIGHT.clear()
    HELD[0] = 0


os.register_at_fork(after_in_child=_after_fork)
