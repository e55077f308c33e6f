"""Local worker processes: same results as serial, work spread as workers free up, semaphores."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from zetta_utils import builder, mazepa
from zetta_utils.mazepa.local_pool import LocalProcessExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@mazepa.taskable_operation
def write_square(folder: str, i: int) -> int:
    Path(folder, f"sq{i}").write_text(str(i * i))
    return os.getpid()


@mazepa.taskable_operation
def total(folder: str, n: int, out_name: str) -> dict[str, Any]:
    present = [Path(folder, f"sq{i}").exists() for i in range(n)]
    value = sum(int(Path(folder, f"sq{i}").read_text()) for i in range(n) if present[i])
    Path(folder, out_name).write_text(str(value))
    return {"all_inputs_present": all(present), "total": value}


@mazepa.flow_schema
def squares_then_totals(folder: str, n: int) -> Iterator[Any]:
    yield [write_square.make_task(folder, i) for i in range(n)]
    yield mazepa.Dependency()
    totals = [total.make_task(folder, n, f"total{k}") for k in range(3)]
    yield totals
    yield mazepa.Dependency()
    yield total.make_task(folder, n, "final")


def _results(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_parallel_gives_the_same_results_as_serial(tmp_path: Path) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    serial.mkdir()
    parallel.mkdir()
    n = 200
    mazepa.execute(squares_then_totals(str(serial), n), show_progress=False)
    flow = squares_then_totals(str(parallel), n)
    summary = mazepa.execute(flow, num_procs=2, show_progress=False)
    assert summary.tasks_done == n + 4
    assert _results(serial) == _results(parallel)
    assert Path(parallel, "final").read_text() == str(sum(i * i for i in range(n)))


def test_dependencies_hold_across_processes(tmp_path: Path) -> None:
    seen: list[Any] = []

    @mazepa.flow_schema
    def check(folder: str, n: int) -> Iterator[Any]:
        tasks = [total.make_task(folder, n, f"t{k}") for k in range(4)]
        yield [write_square.make_task(folder, i) for i in range(n)]
        yield mazepa.Dependency()
        yield tasks
        yield mazepa.Dependency(tasks)
        seen.extend(t.outcome.return_value for t in tasks if t.outcome)

    mazepa.execute(check(str(tmp_path), 300), num_procs=2, show_progress=False)
    assert len(seen) == 4
    assert all(r["all_inputs_present"] for r in seen)  # no total ran before every square


@mazepa.taskable_operation
def sleep_and_report(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@mazepa.taskable_operation
def short_task(folder: str, i: int) -> int:
    Path(folder, f"short{i}").write_text("")
    return os.getpid()


@mazepa.taskable_operation
def long_task(folder: str, wait_for: int) -> int:
    """Runs until `wait_for` short tasks have finished elsewhere (or a minute passes)."""
    deadline = time.monotonic() + 600  # (only if the executor is broken)
    while len(list(Path(folder).glob("short*"))) < wait_for and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def _parallel(tasks: list[mazepa.Task[Any]], duration_of: Any, num_procs: int = 2) -> None:
    """``mazepa.execute`` on a pool whose batch sizes come from declared task durations (never
    from the machine's speed)."""
    pool = LocalProcessExecutor(num_procs, duration_of=duration_of)
    try:
        mazepa.execute(tasks, executor=pool, show_progress=False)
    finally:
        pool.shutdown()


def test_work_goes_to_workers_as_they_free_up(tmp_path: Path) -> None:
    # While one worker is busy with the long task, the other takes the short ones as it frees
    # up. Static chunking would leave half of them queued behind the long task, which waits for
    # 250 of them; at most one prefetched batch (1 ms tasks, declared: 20 of them, 20 ms of
    # work) and the rest of its first one may wait.
    long = long_task.make_task(str(tmp_path), 250)
    short = [short_task.make_task(str(tmp_path), i) for i in range(300)]
    _parallel([long, *short], duration_of=lambda outcome: 0.001)
    assert long.outcome is not None
    long_pid = long.outcome.return_value
    short_pids = [t.outcome.return_value for t in short if t.outcome]
    assert len(short_pids) == 300
    assert sum(pid != long_pid for pid in short_pids) >= 250


@mazepa.taskable_operation
def hold_cuda(folder: str, i: int) -> int:
    with mazepa.semaphore("cuda"):
        marker = Path(folder, f"holder{i}")
        marker.write_text("")
        time.sleep(0.1)
        holders = len(list(Path(folder).glob("holder*")))
        marker.unlink()
    return holders


@mazepa.taskable_operation
def hold_cuda_until_peer(folder: str, i: int) -> int:
    with mazepa.semaphore("cuda"):
        marker = Path(folder, f"holder{i}")
        marker.write_text("")
        deadline = time.monotonic() + 600  # (only if the semaphore is broken)
        while len(list(Path(folder).glob("holder*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        holders = len(list(Path(folder).glob("holder*")))
        time.sleep(0.05)
        marker.unlink()
    return holders


def test_semaphores_cap_concurrency_across_workers(tmp_path: Path) -> None:
    capped = [hold_cuda.make_task(str(tmp_path), i) for i in range(4)]
    mazepa.execute(capped, num_procs=2, show_progress=False)  # cuda defaults to 1
    assert [t.outcome.return_value for t in capped if t.outcome] == [1, 1, 1, 1]

    # With room for two, two holders do meet: the check above can see concurrency.
    open_ = [hold_cuda_until_peer.make_task(str(tmp_path), i) for i in range(2)]
    # one task per message, so that each worker gets one even when one worker starts late
    mazepa.execute(
        open_, num_procs=2, semaphores_spec={"cuda": 2}, batch_size=1, show_progress=False
    )
    assert [t.outcome.return_value for t in open_ if t.outcome] == [2, 2]


def test_semaphore_outside_a_run_is_a_no_op_and_names_are_checked() -> None:
    with mazepa.semaphore("read"):
        pass
    with pytest.raises(ValueError, match="unknown type 'gpu'"), mazepa.semaphore("gpu"):
        pass
    with pytest.raises(ValueError, match="semaphores_spec"):
        mazepa.execute([], semaphores_spec={"disk": 1}, show_progress=False)
    with pytest.raises(ValueError, match=r"semaphores_spec\['cuda'\]"):
        mazepa.execute([], semaphores_spec={"cuda": 0}, show_progress=False)


def test_num_procs_from_spec_and_from_defaults(tmp_path: Path) -> None:
    tasks = [write_square.make_task(str(tmp_path), i) for i in range(20)]
    builder.build(
        {"@type": "mazepa.execute", "target": tasks, "num_procs": 2, "show_progress": False}
    )
    assert {t.outcome.return_value for t in tasks if t.outcome} != {os.getpid()}

    tasks = [write_square.make_task(str(tmp_path), i) for i in range(20)]
    with mazepa.execution_defaults(num_procs=2, show_progress=False):
        mazepa.execute(tasks)
    assert os.getpid() not in {t.outcome.return_value for t in tasks if t.outcome}

    tasks = [write_square.make_task(str(tmp_path), i) for i in range(5)]
    with mazepa.execution_defaults(num_procs=2):
        mazepa.execute(tasks, num_procs=1, show_progress=False)  # explicit arguments win
    assert {t.outcome.return_value for t in tasks if t.outcome} == {os.getpid()}
    with pytest.raises(TypeError, match="unknown argument"), mazepa.execution_defaults(procs=2):
        pass


def test_pool_replaces_dead_workers_and_shuts_down_cleanly() -> None:
    pool = LocalProcessExecutor(2)
    try:
        first = set(pool.worker_pids)
        victim = pool.worker_pids[0]
        os.kill(victim, 9)
        task = sleep_and_report.make_task(0)
        pool.submit([task])
        outcomes: list[mazepa.TaskOutcome[Any]] = []
        deadline = time.monotonic() + 600  # (only if the pool is broken)
        while not outcomes and time.monotonic() < deadline:
            outcomes += pool.poll_outcomes(0.2)
        assert outcomes and outcomes[0].succeeded
        assert victim not in pool.worker_pids and len(set(pool.worker_pids) - first) == 1
        pids = [p.pid for p in pool._processes]
    finally:
        pool.shutdown()
    _wait_for_exit(pids)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit([task])


def _pid_alive(pid: int) -> bool:
    """Running (zombies count as gone: they only wait for their parent to reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@mazepa.taskable_operation
def run_nested(folder: str, i: int) -> int:
    """A task that runs a flow itself (as the lower levels of a chunk do)."""
    inner = hold_cuda.make_task(folder, i)
    mazepa.execute(inner)  # nested: no progress output, the enclosing run's semaphores
    assert inner.outcome is not None and inner.outcome.return_value is not None
    return inner.outcome.return_value


def test_nested_runs_in_workers_share_the_semaphores(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outer = [run_nested.make_task(str(tmp_path), i) for i in range(4)]
    mazepa.execute(outer, num_procs=2, show_progress=False)
    assert [t.outcome.return_value for t in outer if t.outcome] == [1, 1, 1, 1]
    assert "mazepa" not in capfd.readouterr().err  # the nested runs printed no progress


SEEN_SEMAPHORES: list[Any] = []


@mazepa.taskable_operation
def look(i: int) -> int:
    from zetta_utils.mazepa.semaphores import active_semaphores

    SEEN_SEMAPHORES.append(active_semaphores())
    return i


@mazepa.taskable_operation
def outer_task() -> int:
    from zetta_utils.mazepa.semaphores import active_semaphores

    SEEN_SEMAPHORES.append(active_semaphores())
    summary = mazepa.execute([look.make_task(i) for i in range(3)])
    return summary.tasks_done


def test_nested_serial_run(capsys: pytest.CaptureFixture[str]) -> None:
    from zetta_utils.mazepa.semaphores import active_semaphores

    SEEN_SEMAPHORES.clear()
    task = outer_task.make_task()
    mazepa.execute(task, show_progress=False, semaphores_spec={"read": 1})
    assert task.outcome is not None and task.outcome.return_value == 3
    seen = SEEN_SEMAPHORES
    assert len(seen) == 4 and all(s is seen[0] for s in seen) and seen[0] is not None
    assert active_semaphores() is None
    assert capsys.readouterr().err == ""  # the nested run printed no progress


@mazepa.taskable_operation
def torch_threads(i: int) -> int:
    import torch

    return int(torch.get_num_threads())


@pytest.mark.slow
def test_workers_limit_torch_threads_once_torch_is_imported() -> None:
    first, second = torch_threads.make_task(0), torch_threads.make_task(1)

    @mazepa.flow_schema
    def flow() -> Iterator[Any]:
        yield first
        yield mazepa.Dependency()
        yield second

    with LocalProcessExecutor(1) as pool:  # one worker: both tasks run in the same process
        mazepa.execute(flow(), executor=pool, show_progress=False)
    assert first.outcome is not None and second.outcome is not None
    default = first.outcome.return_value  # torch's own default, before the worker saw torch
    if default == 1:
        pytest.skip("torch defaults to one thread on this machine: nothing to limit")
    assert second.outcome.return_value == 1


def _worker_finds_imported(setup: str, module: str) -> bool:
    """Run ``setup`` in a fresh interpreter, then a task on 2 worker processes that reports
    whether ``module`` was already imported in its worker."""
    import subprocess
    import sys

    code = f"""
import sys
from zetta_utils import mazepa
{setup}

@mazepa.taskable_operation
def loaded() -> bool:
    return {module!r} in sys.modules

task = loaded.make_task()
mazepa.execute(task, num_procs=2, show_progress=False)
print("preloaded:", task.outcome.return_value)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return "preloaded: True" in result.stdout


def test_workers_start_with_the_zetta_utils_modules_the_parent_loaded() -> None:
    """A run's fork server imports the parent's zetta_utils modules once, so that no worker
    imports them again while unpickling its first task."""
    assert _worker_finds_imported("import zetta_utils.geometry", "zetta_utils.geometry")


def test_start_fork_server_preloads_modules_for_later_workers() -> None:
    """`zetta run -p N` starts the fork server early; workers then find its imports done."""
    setup = (
        "from zetta_utils.mazepa.local_pool import start_fork_server\n"
        'start_fork_server(["decimal", "fractions"])'
    )
    assert _worker_finds_imported(setup, "fractions")


_REUSE_PROBE = """
import ctypes, resource

SIZE = 16 << 20

def _libc():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc

def faults_of_a_second_large_block() -> int:
    # page faults while filling a 16 MB block malloc'd again right after freeing one
    libc, size = _libc(), SIZE
    counts = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return counts[1]

def faults_of_a_block_freed_by_another_thread() -> int:
    # page faults while a thread fills a 16 MB block malloc'd right after another (still
    # running) thread freed one
    import threading
    libc, size = _libc(), SIZE
    freed, done = threading.Event(), threading.Event()
    counts = []
    def first() -> None:
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        freed.set()
        done.wait()
    def second() -> None:
        freed.wait()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        libc.free(block)
        done.set()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts[0]
"""


def _run_probe(code: str, env: dict[str, str] | None = None) -> str:
    import os
    import subprocess
    import sys

    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", _REUSE_PROBE + code],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_malloc_keeps_freed_blocks_for_reuse() -> None:
    tuned = _run_probe(
        "from zetta_utils.mazepa.worker_process import tune_malloc\nprint(tune_malloc(), "
        "faults_of_a_second_large_block(), faults_of_a_block_freed_by_another_thread())"
    )
    default = _run_probe(
        "print(faults_of_a_second_large_block(), faults_of_a_block_freed_by_another_thread())"
    )
    switched_off = _run_probe(
        "from zetta_utils.mazepa.worker_process import tune_malloc\nprint(tune_malloc())",
        {"ZETTA_MALLOC_TUNING": "0"},
    )
    applied, faults, across_threads = tuned.split()
    assert applied == "True" and int(faults) < 100  # the freed block is reused as it is ...
    assert int(across_threads) < 100  # ... by any thread
    default_faults, default_across_threads = default.split()
    assert int(default_faults) > 2000  # glibc's default maps a new one: a fault per 4 KB page
    assert int(default_across_threads) > 2000  # and gives the second thread a heap of its own
    assert switched_off.strip() == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_local_workers_keep_freed_blocks_for_reuse() -> None:
    out = _run_probe(
        """
from zetta_utils import mazepa

@mazepa.taskable_operation
def probe() -> int:
    return faults_of_a_second_large_block()

task = probe.make_task()
mazepa.execute(task, num_procs=2, show_progress=False)
print(task.outcome.return_value)
"""
    )
    assert int(out) < 100


class RecordsUnpickling:
    """An operation that leaves a file each time a process unpickles it."""

    def __init__(self, folder: str):
        self.folder = folder

    def __call__(self, i: int) -> int:
        return os.getpid()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        n = len(list(Path(self.folder).glob(f"unpickled-{os.getpid()}-*")))
        Path(self.folder, f"unpickled-{os.getpid()}-{n}").touch()


def test_each_worker_unpickles_an_operation_once(tmp_path: Path) -> None:
    op = mazepa.taskable_operation(RecordsUnpickling(str(tmp_path)), operation_name="records")
    tasks = [op.make_task(i) for i in range(12)]
    _parallel(tasks, duration_of=lambda outcome: 0.06)  # one task per batch: many batches
    pids = {t.outcome.return_value for t in tasks if t.outcome is not None}
    assert len(pids) == 2  # (the first two batches go one to each worker)
    unpickled = sorted(p.name.split("-")[1] for p in tmp_path.iterdir())
    assert unpickled == sorted(str(pid) for pid in pids)  # once per worker, not once per task


def _wait_for_file(path: str) -> None:
    deadline = time.monotonic() + 120  # (if the run waited for its workers, it returns after this)
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


@mazepa.taskable_operation
def slow_to_exit(i: int, gate: str) -> int:
    """Makes its worker wait, once told to exit, until the file ``gate`` exists."""
    from multiprocessing import util

    if not getattr(slow_to_exit, "armed", False):
        slow_to_exit.armed = True  # type: ignore[attr-defined]
        util.Finalize(None, _wait_for_file, args=(gate,), exitpriority=0)
    return os.getpid()


def _wait_for_exit(pids: Any) -> None:
    deadline = time.monotonic() + 600  # (only if they never exit)
    while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_pid_alive(pid) for pid in pids)


def test_a_finished_run_does_not_wait_for_its_workers_to_exit(tmp_path: Path) -> None:
    # The workers cannot exit before the test lets them: a run that waited for them would only
    # return once they gave up waiting, and they would be gone by then.
    gate = str(tmp_path / "may-exit")
    tasks = [slow_to_exit.make_task(i, gate) for i in range(4)]
    pool = LocalProcessExecutor(2, exit_grace_s=600)  # not terminated while the test looks
    try:
        mazepa.execute(tasks, executor=pool, show_progress=False)
    finally:
        pool.shutdown()  # what execute does with a pool of its own at the end of a run
    pids = {t.outcome.return_value for t in tasks if t.outcome is not None}
    assert len(pids) >= 1 and all(t.outcome is not None and t.outcome.succeeded for t in tasks)
    assert all(_pid_alive(pid) for pid in pids)  # returned while they wait to exit ...
    Path(gate).touch()
    _wait_for_exit(pids)  # ... and they do exit


def test_workers_still_starting_when_a_run_ends_start_and_exit_cleanly(tmp_path: Path) -> None:
    """A run can end before a worker has read its start-up arguments (the semaphores among them):
    they must outlive the run until its workers have exited, or the worker fails to start with
    a traceback on the terminal (the semaphore's name already unlinked)."""
    import subprocess

    code = """
import gc, multiprocessing, time
from zetta_utils.mazepa.local_pool import LocalProcessExecutor
from zetta_utils.mazepa.semaphores import create_semaphores

if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    for _ in range(4):
        pool = LocalProcessExecutor(
            2, semaphores=create_semaphores(None, 2, ctx), start_method="forkserver"
        )
        pool.shutdown()
        del pool
        gc.collect()
    time.sleep(1.5)
    print("done")
"""
    script = tmp_path / "probe.py"  # a file: forkserver workers re-import the parent's __main__
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "done" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@mazepa.taskable_operation
def nap(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


def test_busy_workers_are_topped_up_with_whole_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first tasks are slow (sent one at a time), the rest take 1 ms (batches of about 16:
    # 20 ms of work). Once the batches grow, a worker gets its next one when it has room for a
    # whole one: topped up task by task as each finishes, it would keep getting one per message.
    sizes: list[int] = []
    serialize = LocalProcessExecutor._serialize

    def counting(self: LocalProcessExecutor, items: Any, sent: Any) -> Any:
        sizes.append(len(items))
        return serialize(self, items, sent)

    monkeypatch.setattr(LocalProcessExecutor, "_serialize", counting)
    # durations declared, not measured (and the tasks do not sleep): 60 ms, then 1 ms
    tasks = [nap.make_task(i, 0) for i in range(400)]
    _parallel(tasks, duration_of=lambda outcome: 0.06 if outcome.return_value < 4 else 0.001)
    assert [t.outcome.return_value for t in tasks if t.outcome is not None] == list(range(400))
    assert sum(sizes) == 400
    assert len(sizes) < 400 / 4, sizes
