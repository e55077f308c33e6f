"""Threads of the libraries in each local worker process, sized for the processes of the run.

A run with ``num_procs`` local workers has that many processes doing the same kind of work on
this machine's cores. Each library's thread pool defaults to *all* the cores: TensorStore's
``data_copy_concurrency`` (its threads decoding and encoding chunks: jpeg, compressed formats)
is the core count per process, so 2 workers on 2 cores run 4 such threads besides their own main
and writer threads. Each worker here gets its share instead:

* TensorStore ``data_copy_concurrency``: ``max(1, cores // num_procs)`` per worker, through
  ``$ZETTA_TS_DATA_COPY_CONCURRENCY`` (which the TensorStore backend reads when it makes its
  contexts). Given in the run's environment, that value is used in every process instead (a
  positive integer).
* ``$ZETTA_WORKER_CPROFILE``, ``$ZETTA_WORKER_TRACE`` (measuring, see ``worker_process``) and
  ``$ZETTA_READ_AHEAD`` (``zetta_utils.layer.volumetric.read_ahead``): as the run's process has
  them, if set.
* write-behind (:mod:`zetta_utils.write_behind`) of writes to local storage: as in the run's
  process, unless its ``$ZETTA_WRITE_BEHIND`` is ``remote``: then a local write finishes inside
  its task and only remote writes go behind (:func:`local_write_behind`).
* torch: one intra-op thread per worker (set at the start where the fork server has torch
  imported already, else after the first task that imported it).

A run in this process (``num_procs=1``) is left as it is: TensorStore's default, all the cores.

:func:`current` says what a worker runs with, from inside a task.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from zetta_utils import write_behind

__all__ = [
    "TS_DATA_COPY_CONCURRENCY_ENV",
    "apply",
    "current",
    "local_write_behind",
    "worker_entry",
    "worker_environment",
]

TS_DATA_COPY_CONCURRENCY_ENV = "ZETTA_TS_DATA_COPY_CONCURRENCY"
"""Read by ``zetta_utils.layer.volumetric.tensorstore.backend`` (same name, spelled there too:
layers do not import mazepa)."""

MEASURING_ENV = ("ZETTA_WORKER_CPROFILE", "ZETTA_WORKER_TRACE", "ZETTA_READ_AHEAD")
"""Switches for measuring workers (see ``worker_process``) and reading ahead (so that an A/B of
it can alternate runs in one process), handed from the run's process to its workers like the
settings above (a worker's own environment is the fork server's, fixed when it started)."""

_NUM_PROCS: list[int | None] = [None]


def _positive_int_env(environ: Mapping[str, str], name: str) -> int | None:
    given = environ.get(name, "").strip()
    if not given:
        return None
    try:
        value = int(given)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${name} must be a positive integer, got {given!r}")
    return value


def worker_environment(
    num_procs: int,
    *,
    cpu_count: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment settings a worker of a run of ``num_procs`` local processes starts with:
    the run's own ``$ZETTA_TS_DATA_COPY_CONCURRENCY`` if given (checked here, in the run's
    process), else this machine's cores shared among the processes."""
    environ = os.environ if environ is None else environ
    given = _positive_int_env(environ, TS_DATA_COPY_CONCURRENCY_ENV)
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    share = given if given is not None else max(1, cores // max(1, num_procs))
    settings = {TS_DATA_COPY_CONCURRENCY_ENV: str(share)}
    for name in MEASURING_ENV:  # (only where the run's process has them)
        if environ.get(name):
            settings[name] = environ[name]
    return settings


def local_write_behind(num_procs: int, *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the workers of a run of ``num_procs`` local processes let writes to local storage
    finish behind their tasks: yes, unless ``$ZETTA_WRITE_BEHIND`` is ``remote`` (then only
    writes to remote storage go behind).

    Not decided by the cores: with 2 workers on 2 cores (jpeg, flow (a)), local writes behind
    give a worker 2 or more runnable threads 75 % of the time and 3 or more 25 % (a plain
    TensorStore copy: 30 % and 5 %), yet finishing them inside the task was no faster in 15
    alternated pairs on a shared machine (8 slower, 6 faster; CPU per section lower in 9): the
    switch is there to measure it where the machine is quiet (``bench/bench_idle.py --ab
    ZETTA_WRITE_BEHIND=remote``)."""
    del num_procs  # (the same for every count, see above)
    environ = os.environ if environ is None else environ
    return environ.get("ZETTA_WRITE_BEHIND", "").strip().lower() != "remote"


def apply(num_procs: int, settings: Mapping[str, str]) -> None:
    """In a worker, before its first task: take ``settings`` (from :func:`worker_environment`)."""
    _NUM_PROCS[0] = num_procs
    os.environ.update(settings)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def worker_entry(num_procs: int, settings: Mapping[str, str], *args: Any) -> None:
    """A local worker process's target: :func:`apply`, then the worker loop."""
    from .worker_process import worker_main

    apply(num_procs, settings)
    worker_main(*args)


def current() -> dict[str, Any]:
    """What this process runs with: ``num_procs`` (None outside a local worker),
    ``local_write_behind`` (whether writes to local storage go behind, :func:`local_write_behind`),
    ``ts_data_copy_concurrency`` (None: TensorStore's default, the core count), and
    ``torch_threads`` (None while torch is not imported)."""
    torch = sys.modules.get("torch")
    return {
        "num_procs": _NUM_PROCS[0],
        "local_write_behind": write_behind.local_behind(),
        "ts_data_copy_concurrency": _positive_int_env(os.environ, TS_DATA_COPY_CONCURRENCY_ENV),
        "torch_threads": None if torch is None else int(torch.get_num_threads()),
    }
