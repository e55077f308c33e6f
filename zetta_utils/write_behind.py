"""Write-behind: a task's writes finish while its worker starts the next task.

An executor runs each task inside :func:`task_scope`. Inside a scope, backends hand the writes
that are safe to finish later to this process's writer instead of waiting for them:

* :func:`defer` ``(key, fn, nbytes)``: ``fn()`` runs on the writer thread (one per process, so
  deferred jobs run in the order they were deferred);
* :func:`track` ``(key, future, nbytes)``: a future that completes by itself (TensorStore's commit
  of a write) is only watched: polled with ``done()`` where it has one (whoever checks or waits
  for the task's writes finishes it; no Python callback runs on TensorStore's threads, which
  costs ~0.05 ms of CPU a write), else called back; a scope given a done callback
  (:meth:`TaskScope.add_done_callback`) has its futures call back.

Both return at once. Outside any scope, in a scope made with write-behind off, or inside
:func:`synchronous`, ``defer`` runs ``fn`` at once and ``track`` waits for the future: exactly
the synchronous behaviour. ``key`` names what is written (the volume's path): :func:`wait_for`
``(key)`` blocks until every pending piece of work on it finished, which every read of a volume
calls first, so that this process never reads data older than what it wrote.

The executor reports a task's outcome only once ``scope.wait()`` returned: the first error of a
deferred piece is raised there and fails *that* task (retried like any other failure), never the
task running meanwhile. What is pending in the process is bounded (:func:`configure`,
``max_pending_bytes``, default 256 MiB): ``defer`` and ``track`` block while over it.

``ZETTA_WRITE_BEHIND=0`` (or ``false``/``no``/``off``) turns it off: every write finishes before
its task reports, as in the original.

Local storage: :func:`configure` ``(local=False)`` makes the writes to local storage (``key`` a
``file://`` URL or a path) finish at once, inside the task, while those to remote storage still go
behind. Mazepa's local workers take it where the run's ``$ZETTA_WRITE_BEHIND`` is ``remote`` (which
counts as on for :func:`enabled`): with as many workers as cores, a local write's behind work
(encoding a jpeg chunk, copying a raw one into the page cache) is CPU work that competes for the
cores with the next tasks, while a remote write's is mostly waiting for the network.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import ctypes
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ENV",
    "OS_THREAD_NAME",
    "TaskScope",
    "call_in_scope",
    "configure",
    "current_scope",
    "defer",
    "enabled",
    "has_pending",
    "is_local_key",
    "local_behind",
    "name_os_thread",
    "pending_bytes",
    "synchronous",
    "task_scope",
    "track",
    "wait_all",
    "wait_for",
]

ENV = "ZETTA_WRITE_BEHIND"
OS_THREAD_NAME = "zetta-writer"
"""The writer thread's name for the system (Linux: at most 15 bytes)."""
_OFF = ("0", "false", "no", "off")
DEFAULT_MAX_PENDING_BYTES = 256 * 2**20


def enabled() -> bool:
    """False when ``$ZETTA_WRITE_BEHIND`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get(ENV, "").strip().lower() not in _OFF


class TaskScope:
    """The deferred work of one task run: :meth:`wait` blocks until all of it finished and
    re-raises the first error; :meth:`done` says whether it has.

    Also the context manager that :func:`task_scope` returns: inside its block, work deferred in
    this thread belongs to it (a plain class: entering and leaving cost two calls a task)."""

    def __init__(self, writer: _Writer | None) -> None:
        self._writer = writer
        self._pending = 0
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._token: contextvars.Token[TaskScope | None] | None = None

    def __enter__(self) -> TaskScope:
        self._token = _CURRENT.set(self if self._writer is not None else None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            _CURRENT.reset(token)

    @property
    def deferring(self) -> bool:
        """Whether work handed to this scope is deferred (False: write-behind is off)."""
        return self._writer is not None

    def done(self) -> bool:
        # (an int read is atomic: no lock needed to see whether the count reached 0)
        writer = self._writer
        if writer is None or not self._pending:
            return True
        if writer.polled:
            writer.reap()
        return not self._pending

    def wait(self) -> None:
        """Block until every piece deferred in this scope finished; raise the first error."""
        writer = self._writer
        if writer is None:
            return
        if self._pending:
            if writer.polled:  # (futures that completed meanwhile, the common case: no waiting)
                writer.reap()
            if self._pending:
                writer.wait_until(lambda: not self._pending, lambda item: item.scope is self)
        error = self._error
        if error is not None:
            raise error

    @property
    def error(self) -> BaseException | None:
        """The first error of the work deferred in this scope so far (None: none failed)."""
        return self._error

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (from any thread) once everything deferred in this scope finished; at
        once if it has."""
        writer = self._writer
        if writer is not None:
            with writer.lock:
                if self._pending:
                    self._callbacks.append(fn)
                    # its polled futures report by themselves from now on
                    mine = [entry for entry in writer.polled if entry[0].scope is self]
                    for entry in mine:
                        writer.polled.remove(entry)
                else:
                    mine = None
            if mine is not None:
                for item, future in mine:
                    future.add_done_callback(item)
                return
        fn()


class _Item:
    __slots__ = ("key", "nbytes", "scope", "tracked", "writer")

    def __init__(
        self, key: str, nbytes: int, scope: TaskScope, tracked: bool, writer: _Writer
    ) -> None:
        self.key = key
        self.nbytes = nbytes
        self.scope = scope
        self.tracked = tracked
        self.writer = writer

    def __call__(self, future: Any) -> None:
        """The done callback of a tracked future (on the thread that completed it)."""
        try:
            future.result()
        except BaseException as e:  # handed to the task's scope
            self.writer.finish(self, e)
        else:
            self.writer.finish(self, None)


class _Writer:
    """This process's pending work: the writer thread's queue and the tracked futures."""

    def __init__(self, max_pending_bytes: int) -> None:
        # ``with self.lock`` (a C lock) rather than ``with self.cond`` (Python-level methods);
        # waits go through :meth:`wait`, which counts the waiters: nobody is notified when
        # nobody waits
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.waiters = 0
        self.max_pending_bytes = max_pending_bytes
        self.jobs: collections.deque[tuple[_Item, Callable[[], Any]]] = collections.deque()
        self.pending_bytes = 0
        self.pending_items = 0
        self.by_key: dict[str, int] = {}
        self.tracked_by_key: dict[str, int] = {}
        self.thread: threading.Thread | None = None
        self.polled: list[tuple[_Item, Any]] = []
        """Tracked futures that nobody is called back from: each is finished by whoever looks
        (:meth:`reap`) or waits (:meth:`wait_until`). A Python callback that TensorStore runs on
        its own thread costs ~0.05 ms of CPU a write (the GIL taken from a foreign thread);
        ``future.done()`` costs nothing."""

    def wait(self) -> None:
        """``cond.wait()`` (the lock held), counted in :attr:`waiters`."""
        self.waiters += 1
        try:
            self.cond.wait()
        finally:
            self.waiters -= 1

    def notify(self) -> None:
        """Wake the waiters, if any (the lock held)."""
        if self.waiters:
            self.cond.notify_all()

    # --- polled futures ------------------------------------------------------------------------
    def reap(self) -> None:
        """Finish the polled futures that completed (any thread, without the lock)."""
        with self.lock:
            polled = self.polled
            finished = [entry for entry in polled if entry[1].done()]
            for entry in finished:
                polled.remove(entry)
        for item, future in finished:
            item(future)

    def settle_one(self, match: Callable[[_Item], bool] | None) -> bool:
        """Wait for the oldest polled future whose item ``match`` accepts (any: None) and finish
        it (without the lock); False when there is none."""
        with self.lock:
            for i, entry in enumerate(self.polled):
                if match is None or match(entry[0]):
                    del self.polled[i]
                    break
            else:
                return False
        item, future = entry
        try:
            future.result()
        except BaseException as e:
            if not future.done():  # the wait itself was interrupted (Ctrl-C): still pending
                with self.lock:
                    self.polled.insert(0, entry)
                raise
            self.finish(item, e)  # handed to the task's scope
        else:
            self.finish(item, None)
        return True

    def wait_until(
        self, settled: Callable[[], bool], match: Callable[[_Item], bool] | None
    ) -> None:
        """Block until ``settled()`` (read with the lock), finishing meanwhile the polled futures
        whose items ``match`` accepts (any: None)."""
        while True:
            if self.polled and self.settle_one(match):
                continue
            with self.lock:
                if settled():
                    return
                polled = self.polled
                if not polled or not any(match is None or match(item) for item, _ in polled):
                    self.wait()  # (track() notifies: a new polled future is looked at)

    # --- adding work ---------------------------------------------------------------------------
    def _admit(self, item: _Item) -> None:
        """Count ``item`` in, waiting while the process is over its bound (finishing polled
        futures meanwhile); returns with the lock held."""
        lock = self.lock
        lock.acquire()
        try:
            while self.pending_items and self.pending_bytes + item.nbytes > self.max_pending_bytes:
                if self.polled:
                    lock.release()
                    try:
                        self.settle_one(None)
                    finally:
                        lock.acquire()
                else:
                    self.wait()
        except BaseException:
            lock.release()
            raise
        self.pending_bytes += item.nbytes
        self.pending_items += 1
        self.by_key[item.key] = self.by_key.get(item.key, 0) + 1
        if item.tracked:
            self.tracked_by_key[item.key] = self.tracked_by_key.get(item.key, 0) + 1
        item.scope._pending += 1

    def submit(self, item: _Item, fn: Callable[[], Any]) -> None:
        self._admit(item)  # (returns with the lock held)
        try:
            self.jobs.append((item, fn))
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="zetta-write-behind", daemon=True
                )
                self.thread.start()
            if self.waiters:  # (self.notify(), inline)
                self.cond.notify_all()
        finally:
            self.lock.release()

    def track(self, item: _Item, future: Any) -> None:
        self._admit(item)
        if hasattr(future, "done"):  # (TensorStore's): polled, no callback
            try:
                self.polled.append((item, future))
                if self.waiters:
                    self.cond.notify_all()
            finally:
                self.lock.release()
            return
        self.lock.release()
        future.add_done_callback(item)

    # --- finishing -----------------------------------------------------------------------------
    def finish(self, item: _Item, error: BaseException | None) -> None:
        # (called once a write, on TensorStore's threads too: no helper calls, no allocation)
        scope = item.scope
        key = item.key
        callbacks: list[Callable[[], None]] | None = None
        with self.lock:
            self.pending_bytes -= item.nbytes
            self.pending_items -= 1
            for table in (self.by_key, self.tracked_by_key) if item.tracked else (self.by_key,):
                left = table[key] - 1
                if left:
                    table[key] = left
                else:
                    del table[key]
            scope._pending -= 1
            if error is not None and scope._error is None:
                scope._error = error
            if not scope._pending and scope._callbacks:
                callbacks, scope._callbacks = scope._callbacks, []
            if self.waiters:  # (self.notify(), inline)
                self.cond.notify_all()
        if callbacks is not None:
            for fn in callbacks:
                fn()

    def _run(self) -> None:
        name_os_thread(OS_THREAD_NAME)
        while True:
            with self.lock:
                while not self.jobs:
                    self.wait()
                item, fn = self.jobs.popleft()
            try:
                fn()
            except BaseException as e:  # handed to the task's scope
                self.finish(item, e)
            else:
                self.finish(item, None)

    # --- waiting -------------------------------------------------------------------------------
    def wait_for(self, key: str, tracked_only: bool = False) -> None:
        table = self.tracked_by_key if tracked_only else self.by_key
        if key not in table:  # (nothing pending on it: a dict lookup is atomic, no lock needed)
            return
        self.wait_until(lambda: not table.get(key), lambda item: item.key == key)

    def wait_all(self) -> None:
        self.wait_until(lambda: not self.pending_items, None)


_PR_SET_NAME = 15


def name_os_thread(name: str) -> bool:
    """Give the calling thread ``name`` (cut to 15 bytes) for the system, where Python does not
    (Linux only); returns whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) == 0


_lock = threading.Lock()
_max_pending_bytes = DEFAULT_MAX_PENDING_BYTES
_local_behind = True
_writer: _Writer | None = None
_writer_pid = -1
_CURRENT: contextvars.ContextVar[TaskScope | None] = contextvars.ContextVar(
    "zetta_write_behind_scope", default=None
)


def _the_writer() -> _Writer:
    """This process's writer (a new one after ``fork``: threads do not survive it)."""
    global _writer, _writer_pid
    writer = _writer
    if writer is not None and _writer_pid == os.getpid():
        return writer
    with _lock:
        if _writer is None or _writer_pid != os.getpid():
            _writer = _Writer(_max_pending_bytes)
            _writer_pid = os.getpid()
        return _writer


def _existing_writer() -> _Writer | None:
    writer = _writer
    return writer if writer is not None and _writer_pid == os.getpid() else None


def configure(max_pending_bytes: int | None = None, *, local: bool | None = None) -> None:
    """Set the bound on the bytes pending in this process (default 256 MiB): ``defer`` and
    ``track`` block while what is pending and the new piece exceed it (one piece is always
    admitted). ``local``: whether writes to local storage go behind too (default True; False:
    they finish at once, see the module docstring). Arguments left None are not changed."""
    global _max_pending_bytes, _local_behind
    if local is not None:
        if not isinstance(local, bool):
            raise ValueError(f"`local` must be True or False, got {local!r}")
        _local_behind = local
    if max_pending_bytes is not None:
        if (
            isinstance(max_pending_bytes, bool)
            or not isinstance(max_pending_bytes, int)
            or max_pending_bytes < 0
        ):
            raise ValueError(
                f"`max_pending_bytes` must be a non-negative integer, got {max_pending_bytes!r}"
            )
        _max_pending_bytes = max_pending_bytes
        writer = _existing_writer()
        if writer is not None:
            with writer.lock:
                writer.max_pending_bytes = max_pending_bytes
                writer.notify()


def task_scope(on: bool | None = None) -> TaskScope:
    """The scope of one task's run (opened by executors), to use as ``with task_scope() as
    scope``: writes deferred inside the block belong to it. ``on`` None: ``$ZETTA_WRITE_BEHIND``
    decides (executors read it once per run and pass it). Leaving the block does not wait; call
    ``wait()`` on the scope before reporting the task."""
    if on is None:
        on = enabled()
    return TaskScope(_the_writer() if on else None)


def call_in_scope(fn: Callable[[], Any], on: bool | None = None) -> tuple[TaskScope, Any]:
    """``fn()`` inside a new :func:`task_scope`: ``(scope, its value)`` (an exception propagates;
    its scope is lost with it: executors catch inside ``fn``). What ``with task_scope(on) as
    scope`` does, in one call (executors run it for every task)."""
    if on is None:
        on = enabled()
    writer = _the_writer() if on else None
    scope = TaskScope(writer)
    token = _CURRENT.set(scope if writer is not None else None)
    try:
        value = fn()
    finally:
        _CURRENT.reset(token)
    return scope, value


@contextlib.contextmanager
def synchronous() -> Iterator[None]:
    """Writes inside the block finish before they return (e.g. under a lock that must not be
    released before the data is on storage)."""
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_scope() -> TaskScope | None:
    """The scope deferred work goes to in this thread now (None: writes are synchronous)."""
    return _CURRENT.get()


def local_behind() -> bool:
    """Whether writes to local storage go behind in this process (see :func:`configure`)."""
    return _local_behind


def is_local_key(key: str) -> bool:
    """Whether ``key`` (what a write names: the volume's path) is on local storage: a
    ``file://`` URL or a path."""
    return key.startswith("file://") or "://" not in key


def defer(key: str, fn: Callable[[], Any], nbytes: int = 0) -> None:
    """Run ``fn()`` on the writer thread as part of the current task (at once, here, without a
    deferring scope, or for a local ``key`` where local writes do not go behind). ``fn`` must own
    its data: the caller may reuse its buffers on return."""
    scope = _CURRENT.get()
    if scope is None or scope._writer is None or (not _local_behind and is_local_key(key)):
        fn()
        return
    writer = scope._writer
    writer.submit(_Item(key, nbytes, scope, False, writer), fn)


def track(key: str, future: Any, nbytes: int = 0) -> None:
    """Count ``future`` (with ``add_done_callback`` and ``result``, as TensorStore's) as pending
    work of the current task; without a deferring scope, or for a local ``key`` where local
    writes do not go behind, wait for it here."""
    scope = _CURRENT.get()
    if scope is None or scope._writer is None or (not _local_behind and is_local_key(key)):
        future.result()
        return
    writer = scope._writer
    writer.track(_Item(key, nbytes, scope, True, writer), future)


def wait_for(key: str, tracked_only: bool = False) -> None:
    """Block until the work pending on ``key`` in this process finished (errors are its tasks',
    not raised here). ``tracked_only``: only tracked futures (deferred jobs run in order on one
    thread, so a later deferred job on ``key`` needs no wait)."""
    scope = _CURRENT.get()
    # a deferring scope's writer is this process's (checked when the scope was made)
    writer = scope._writer if scope is not None else None
    if writer is None:
        writer = _existing_writer()
    # (nothing pending on key, the common case: answered here, as _Writer.wait_for would)
    if writer is not None and key in (writer.tracked_by_key if tracked_only else writer.by_key):
        writer.wait_for(key, tracked_only)


def has_pending(key: str) -> bool:
    """Whether work on ``key`` is pending in this process (what :func:`wait_for` would wait
    for)."""
    writer = _existing_writer()
    return writer is not None and key in writer.by_key


def wait_all() -> None:
    """Block until nothing is pending in this process (a worker about to exit, a run's end)."""
    writer = _existing_writer()
    if writer is not None:
        writer.wait_all()


def pending_bytes() -> int:
    """Bytes of work pending in this process."""
    writer = _existing_writer()
    if writer is None:
        return 0
    if writer.polled:
        writer.reap()
    return writer.pending_bytes
