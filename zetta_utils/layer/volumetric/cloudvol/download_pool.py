"""CloudVolume's remote chunk downloads on one thread pool per process.

For each read that misses its cache, CloudVolume's image download starts a fresh set of up to 20
threads (its ``ThreadedQueue``), whose workers and waiters poll with 10-15 ms sleeps and which it
stops by spinning in 1 ms sleeps: on object storage a read of a few chunks waited for those
sleeps as much as for the store (flow (c) on gzip over S3 at a 20 ms round trip: 4.63 s per 8
sections in one process, 3.71 s on a pool, `bench/bench_matrix.py --kinds s3-gzip --procs 1`).

:func:`install` replaces the scheduler that CloudVolume's image download module calls
(``cloudvolume.datasource.precomputed.image.rx.schedule_jobs``) with one that runs the jobs of a
threaded call on a pool of :data:`THREADS` threads kept by this process (a fresh pool after a
fork) and returns once all of them finished, their results in order, the first error raised.
Calls CloudVolume makes without threads (local files, cache hits) or with green threads go to
its own scheduler, unchanged. A download job does not schedule jobs itself, so the pool cannot
wait on its own threads. ``ZETTA_CV_DOWNLOAD_POOL=0`` leaves CloudVolume's scheduler alone (read
when CloudVolume is first used by a backend of this process).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ENV", "THREADS", "install", "installed", "jobs_run"]

ENV = "ZETTA_CV_DOWNLOAD_POOL"
THREADS = 16
"""Downloads in flight at once per process (CloudVolume's own: up to 20 per read)."""

_LOCK = threading.Lock()
_POOL: list[concurrent.futures.ThreadPoolExecutor | None] = [None]
_ORIGINAL: list[Callable[..., Any] | None] = [None]
_JOBS = [0]


def _enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def installed() -> bool:
    """Whether CloudVolume's downloads go to this module's pool in this process."""
    return _ORIGINAL[0] is not None


def jobs_run() -> int:
    """Download jobs run on the pool by this process (for tests)."""
    return _JOBS[0]


def install() -> None:
    """Send CloudVolume's threaded image downloads to this process's pool (see the module
    docstring); once per process, nothing with ``$ZETTA_CV_DOWNLOAD_POOL=0``."""
    if _ORIGINAL[0] is not None or not _enabled():
        return
    from cloudvolume.datasource.precomputed.image import rx

    with _LOCK:
        if _ORIGINAL[0] is not None:
            return
        original = rx.schedule_jobs

        def schedule_jobs(
            fns: Iterable[Callable[[], Any]],
            concurrency: int = 0,
            progress: Any = None,
            total: int | None = None,
            green: bool = False,
        ) -> list[Any]:
            if concurrency == 0 or green:
                return original(
                    fns, concurrency=concurrency, progress=progress, total=total, green=green
                )
            return _run_on_pool(fns, progress)

        _ORIGINAL[0] = original
        rx.schedule_jobs = schedule_jobs


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    pool = _POOL[0]
    if pool is None:
        with _LOCK:
            pool = _POOL[0]
            if pool is None:
                pool = _POOL[0] = concurrent.futures.ThreadPoolExecutor(
                    THREADS, thread_name_prefix="zetta-cv-download"
                )
    return pool


def _run_on_pool(fns: Iterable[Callable[[], Any]], progress: Any) -> list[Any]:
    pool = _pool()
    futures = [pool.submit(fn) for fn in fns]
    _JOBS[0] += len(futures)
    concurrent.futures.wait(futures)  # (all finished before returning, as CloudVolume's)
    results = []
    for future in futures:
        results.append(future.result())  # the first error, in order
        if hasattr(progress, "update"):
            progress.update(1)
    return results


def _after_fork_in_child() -> None:
    global _LOCK  # pylint: disable=global-statement
    _LOCK = threading.Lock()  # (held by another thread at the fork, it would stay held)
    _POOL[0] = None  # the parent's pool: its threads are not in this process


os.register_at_fork(after_in_child=_after_fork_in_child)
