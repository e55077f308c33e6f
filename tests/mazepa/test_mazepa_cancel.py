"""Ctrl-C: confirm, stop cleanly, leave no processes behind (checked by PID)."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zetta_utils import mazepa

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="checks processes through /proc"
)

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from zetta_utils import mazepa

    @mazepa.taskable_operation
    def wait_for(folder: str, name: str, i: int) -> int:
        Path(folder, f"pid-{os.getpid()}").write_text("")
        while not Path(folder, name).exists():
            time.sleep(0.02)
        return i

    @mazepa.flow_schema
    def flow(folder: str):
        yield [wait_for.make_task(folder, "go1", i) for i in range(4)]
        yield mazepa.Dependency()
        Path(folder, "stage2").write_text("")
        yield [wait_for.make_task(folder, "go2", i) for i in range(4)]

    if __name__ == "__main__":
        folder = sys.argv[1]
        try:
            summary = mazepa.execute(
                flow(folder), num_procs=2, show_progress=sys.argv[2] == "progress"
            )
        except KeyboardInterrupt:
            Path(folder, "cancelled").write_text("")
            sys.exit(130)
        Path(folder, "finished").write_text(str(summary.tasks_done))
    """
)


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")  # a zombie has ended; it only awaits reaping


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _worker_pids(folder: Path) -> set[int]:
    return {int(p.name[4:]) for p in folder.glob("pid-*")}


def _start(
    folder: Path, progress: bool, wrap: Callable[[list[str]], list[str]], **kwargs: Any
) -> subprocess.Popen[bytes]:
    script = folder / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        wrap([sys.executable, str(script), str(folder), "progress" if progress else "quiet"]),
        **kwargs,
    )


def test_sigint_without_a_terminal_cancels_and_ends_all_processes(
    tmp_path: Path, default_sigint: Callable[[list[str]], list[str]]
) -> None:
    child = _start(tmp_path, progress=False, wrap=default_sigint, stdin=subprocess.DEVNULL)
    try:
        _wait_until(lambda: len(_worker_pids(tmp_path)) == 2, "both workers to run a task")
        family = _descendants(child.pid)  # fork server, workers, resource tracker
        assert _worker_pids(tmp_path) <= family
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=300) == 130
    finally:
        if child.poll() is None:
            child.kill()
    assert (tmp_path / "cancelled").exists()
    _wait_until(
        lambda: not any(_alive(pid) for pid in family), "the child's processes to end", timeout=120
    )


def test_interactive_confirmation(
    tmp_path: Path, default_sigint: Callable[[list[str]], list[str]]
) -> None:
    master, slave = pty.openpty()
    child = _start(
        tmp_path, progress=True, wrap=default_sigint, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    output = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            output.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait_until(lambda: len(_worker_pids(tmp_path)) == 2, "both workers to run a task")
        child.send_signal(signal.SIGINT)
        _wait_until(lambda: b"Cancel the run? [y/N]" in output, "the confirmation prompt")
        os.write(master, b"n\n")
        # Declined: the run goes on to its second stage.
        (tmp_path / "go1").write_text("")
        _wait_until(lambda: (tmp_path / "stage2").exists(), "the second stage")
        assert child.poll() is None
        family = _descendants(child.pid)
        prompts = output.count(b"Cancel the run? [y/N]")
        child.send_signal(signal.SIGINT)
        _wait_until(lambda: output.count(b"Cancel the run? [y/N]") > prompts, "the second prompt")
        os.write(master, b"y\n")
        assert child.wait(timeout=300) == 130
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    assert not (tmp_path / "finished").exists()
    _wait_until(
        lambda: not any(_alive(pid) for pid in family), "the child's processes to end", timeout=120
    )


@pytest.mark.usefixtures("sigint_enabled")
def test_serial_run_is_interrupted_inside_a_task(tmp_path: Path) -> None:
    ran: list[int] = []

    @mazepa.taskable_operation
    def step(i: int) -> None:
        ran.append(i)
        if i == 3:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # interrupted long before this ends
            ran.append(-1)
        if i > 3:
            raise AssertionError("ran after the interrupt")

    checkpoint = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        mazepa.execute(
            [step.make_task(i) for i in range(10)], checkpoint=checkpoint, show_progress=False
        )
    assert ran == [0, 1, 2, 3]  # interrupted inside task 3, nothing after
    assert len(checkpoint.read_text().split()) == 3  # the finished ones were recorded
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
