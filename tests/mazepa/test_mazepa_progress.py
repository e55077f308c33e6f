"""Progress display: rich on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from zetta_utils import mazepa
from zetta_utils.mazepa import progress


@mazepa.taskable_operation
def noop(i: int) -> int:
    return i


@mazepa.taskable_operation(operation_name="Downsample")
def other(i: int) -> int:
    return i


@mazepa.flow_schema
def mixed(n: int) -> Iterator[Any]:
    yield [noop.make_task(i) for i in range(n)]
    yield mazepa.Dependency()
    yield [other.make_task(i) for i in range(n // 2)]


def test_log_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    mazepa.execute(mixed(10), progress_console=plain, progress_log_interval_sec=0)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("mazepa done [")
    assert "noop 10/10" in lines[-1] and "Downsample 5/5" in lines[-1]
    assert any(line.startswith("mazepa progress [") for line in lines[:-1])


def test_rich_display_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=140)
    summary = mazepa.execute(mixed(10), progress_console=terminal)
    text = out.getvalue()
    assert "noop" in text and "Downsample" in text
    assert "10/10" in text and "5/5" in text
    assert summary.tasks_done == 15
    assert capsys.readouterr().err == ""  # no log lines on a terminal


def test_failures_and_retries_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    attempts: list[int] = []

    @mazepa.taskable_operation
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise mazepa.TransientError("again")

    plain = Console(file=io.StringIO(), force_terminal=False)
    summary = mazepa.execute([flaky.make_task()], progress_console=plain)
    assert summary.retries == 2
    assert "[2 retried]" in capsys.readouterr().err


def test_no_output_without_progress(capsys: pytest.CaptureFixture[str]) -> None:
    mazepa.execute(mixed(4), show_progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ---- totals and ETA, with a clock the test moves ------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _log_line(counters: progress.ProgressCounters, final: str | None = None) -> str:
    stream = io.StringIO()
    display = progress.LogProgressDisplay(counters, stream=stream, interval_sec=0)
    if final is None:
        display.refresh(force=True)
    else:
        display.stop(final)
    return stream.getvalue().strip()


def test_a_declared_total_is_shown_from_the_start_with_an_eta_from_the_rate_since_then() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counters.expect("lambda", 2400)
    counts = counters.get("lambda")
    counts.yielded += 400  # the look-ahead: far fewer yielded than the run has
    assert _log_line(counters) == "mazepa progress [0:00:00]: lambda 0/2400"
    clock.now += 10
    counts.done = 300
    counts.yielded += 300
    # 30 tasks/s since the first was yielded; 2100 left: 70 s
    assert _log_line(counters) == "mazepa progress [0:00:10]: lambda 300/2400 (30.0/s, ETA 0:01:10)"
    clock.now += 50
    counts.done = 1800
    assert counts.eta(clock()) == pytest.approx(20.0)
    assert "lambda 1800/2400 (30.0/s, ETA 0:00:20)" in _log_line(counters)


def test_skipped_tasks_count_as_finished_but_not_in_the_rate() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counters.expect("copy", 100)
    counts = counters.get("copy")
    counts.yielded = 60
    counts.skipped = 50  # finished by an earlier run: skipped at once
    clock.now += 5
    counts.done = 10
    # 2 tasks/s (the 50 skipped ones are not work done now); 40 left: 20 s
    assert _log_line(counters).endswith("copy 60/100 (2.0/s, ETA 0:00:20) [50 skipped]")


def test_an_operation_counts_from_its_own_first_task() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counters.expect("top", 10)
    counters.expect("top reduction", 4)
    counters.get("top").yielded = 10
    clock.now += 100  # the reduction's tasks come once the top level is done
    counters.get("top").done = 10
    counters.get("top reduction").yielded = 4
    clock.now += 2
    counters.get("top reduction").done = 1
    assert counters.get("top reduction").eta(clock()) == pytest.approx(6.0)  # 0.5/s, 3 left


def test_without_a_declared_total_the_count_says_more_may_come_and_there_is_no_eta() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counts = counters.get("noop")
    counts.yielded = 5
    clock.now += 1
    counts.done = 3
    assert _log_line(counters).endswith("noop 3/5+ (3.0/s)")
    counts.done = 5
    assert _log_line(counters, final="done").endswith("noop 5/5 (5.0/s)")


def test_declarations_add_up_and_do_nothing_outside_a_run() -> None:
    progress.expect_tasks("x", 5)  # no run: ignored
    counters = progress.ProgressCounters(FakeClock())
    with progress.collecting(counters):
        progress.expect_tasks("x", 5, voxels=500, bytes_written=50)
        progress.expect_tasks("x", 3, voxels=300)
    counts = counters.get("x")
    assert (counts.expected, counts.voxels, counts.bytes_written) == (8, 800, 50)
    with pytest.raises(ValueError, match="`tasks` must be a non-negative integer"):
        progress.expect_tasks("x", -1)


@mazepa.flow_schema
def declared(n: int) -> Iterator[Any]:
    progress.expect_tasks("noop", n, voxels=n * 1000, bytes_written=n * 10)
    for i in range(n):
        yield noop.make_task(i)


def test_execute_shows_a_flows_declared_total_on_every_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    summary = mazepa.execute(
        declared(12), progress_console=plain, progress_log_interval_sec=0, max_pending_tasks=2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) > 3
    counts = [line.split("noop ")[1].split(" ")[0] for line in lines]
    assert all(c.endswith("/12") for c in counts), counts
    assert counts[0] != "12/12"
    assert (summary.voxels_processed, summary.bytes_written) == (12_000, 120)


def test_a_list_of_tasks_is_its_own_total(capsys: pytest.CaptureFixture[str]) -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    mazepa.execute(
        [noop.make_task(i) for i in range(6)],
        progress_console=plain,
        progress_log_interval_sec=0,
        max_pending_tasks=2,
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert all("/6" in line and "+" not in line for line in lines), lines


def test_a_resumed_run_counts_its_work_from_the_share_of_tasks_it_did(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    tasks = [noop.make_task(i) for i in range(4)]
    mazepa.execute(tasks[:1], checkpoint=str(checkpoint), show_progress=False)
    summary = mazepa.execute(declared(4), checkpoint=str(checkpoint), show_progress=False)
    assert (summary.tasks_done, summary.tasks_skipped) == (3, 1)
    assert (summary.voxels_processed, summary.bytes_written) == (3000, 30)
    assert (
        "3 tasks done" in summary.sentence()
        and "1 skipped (finished by an earlier run)" in summary.sentence()
    )


# ---- the summary sentence ---------------------------------------------------------------------


def test_the_summary_is_a_sentence() -> None:
    text = progress.summary_sentence(
        tasks_done=2400,
        tasks_skipped=0,
        tasks_failed=0,
        elapsed_secs=92,
        voxels=1.2e9,
        bytes_written=512 * 2**20,
    )
    assert text == (
        "Done in 0:01:32: 2,400 tasks done (26.1/s), none failed; 1.2 Gvoxels processed "
        "(13.0 Mvoxels/s), 512.0 MiB written."
    )
    text = progress.summary_sentence(
        tasks_done=1, tasks_skipped=7, tasks_failed=2, elapsed_secs=3, retries=1, completed=False
    )
    assert text == (
        "Stopped in 0:00:03: 1 task done (0.3/s), 7 skipped (finished by an earlier run), "
        "2 failed, 1 retry."
    )


# ---- the terminal: bars continue in place after "n" at the cancel prompt ---------------------


def _screen(raw: str, columns: int = 120, lines: int = 20) -> list[str]:
    import pyte

    screen = pyte.Screen(columns, lines)
    stream = pyte.Stream(screen)
    stream.feed(raw.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


def test_bars_continue_in_place_after_no_at_the_cancel_prompt() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counters.expect("lambda", 100)
    counters.expect("lambda reduction", 10)
    counters.get("lambda").yielded = 50
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=120, height=20)
    print("the plan's summary", file=out)
    display = progress.RichProgressDisplay(counters, console=terminal, refresh_per_second=0.001)
    display.start()
    clock.now += 10
    counters.get("lambda").done = 20
    display.refresh(force=True)
    display.pause()
    out.write("\nCancel the run? [y/N] n\n")  # what input() and the answer leave on the terminal
    display.resume()
    clock.now += 10
    counters.get("lambda").done = 40
    display.refresh(force=True)
    display.stop("done")
    shown = _screen(out.getvalue())
    assert shown[0] == "the plan's summary"
    assert len(shown) == 3, shown  # the two bars, once; no question left, no frozen copy
    assert shown[1].startswith("lambda ") and "40/100" in shown[1]
    assert shown[2].startswith("lambda reduction ") and "0/10" in shown[2]
    assert not any("Cancel" in line for line in shown)


# ---- a subchunkable flow declares its plan's task counts ---------------------------------------


def test_a_subchunkable_run_shows_its_plans_totals_from_the_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(The totals equal the tasks yielded in the end: the last line shows n/n, not n/m.)"""
    from zetta_utils.geometry import BBox3D
    from zetta_utils.mazepa_layer_processing.common import build_subchunkable_apply_flow

    from ..mazepa_layer_processing.helpers import RES, make_volume_at, random_array, write_array

    src = make_volume_at(str(tmp_path / "src"), size=(64, 64, 2))
    dst = make_volume_at(str(tmp_path / "dst"), size=(64, 64, 2))
    write_array(src, random_array((1, 64, 64, 2), "uint8"))
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), (64, 64, 2), RES),
        fn=lambda src: src,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        processing_blend_pads=[[4, 4, 0], [0, 0, 0]],
        max_reduction_chunk_size=[32, 32, 1],
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp", None],
        verbose=False,
    )
    plain = Console(file=io.StringIO(), force_terminal=False)
    summary = mazepa.execute(
        flow, progress_console=plain, progress_log_interval_sec=0, max_pending_tasks=3
    )
    lines = capsys.readouterr().err.strip().splitlines()
    # 4 x 4 x 2 top-level chunks, one task each; reduction chunks of 32 x 32 x 1: 2 x 2 x 2
    assert all("lambda " in line and "lambda reduction " in line for line in lines), lines
    counts = [
        (line.split("lambda ")[1].split(" ")[0], line.split("lambda reduction ")[1].split(" ")[0])
        for line in lines
    ]
    assert all(top.endswith("/32") and red.endswith("/8") for top, red in counts), counts
    assert counts[0] != ("32/32", "8/8") and counts[-1] == ("32/32", "8/8")
    assert summary.voxels_processed == 64 * 64 * 2
    assert summary.bytes_written == 64 * 64 * 2  # uint8, the whole dst


def test_a_stopped_run_shows_no_eta_and_keeps_the_plus_of_unknown_totals() -> None:
    clock = FakeClock()
    counters = progress.ProgressCounters(clock)
    counters.expect("copy", 10)
    counters.get("copy").yielded = 4
    counters.get("noop").yielded = 3
    clock.now += 1
    counters.get("copy").done = 2
    counters.get("noop").done = 1
    assert _log_line(counters).endswith("copy 2/10 (2.0/s, ETA 0:00:04) | noop 1/3+ (1.0/s)")
    assert (
        _log_line(counters, final="cancelled")
        == "mazepa cancelled [0:00:01]: copy 2/10 (2.0/s) | noop 1/3+ (1.0/s)"
    )


@pytest.mark.parametrize(
    ("x_range", "options"),
    [
        # top-level chunks at x 8-24 and 56-72: the reduction chunk x 32-48 lies in the gap, no task
        (
            (8, 72),
            {
                "processing_gap": [32, 0, 0],
                "processing_blend_pads": [[0, 0, 0]],
                "max_reduction_chunk_size": [16, 64, 1],
            },
        ),
        (
            (0, 64),
            {
                "task_stack_size": 3,
                "processing_blend_pads": [[4, 4, 0]],
                "max_reduction_chunk_size": [32, 32, 1],
            },
        ),
    ],
    ids=["gap", "stacks"],
)
def test_declared_totals_are_the_tasks_the_flow_yields(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    x_range: tuple[int, int],
    options: dict[str, Any],
) -> None:
    from zetta_utils.geometry import BBox3D
    from zetta_utils.mazepa_layer_processing.common import build_subchunkable_apply_flow

    from ..mazepa_layer_processing.helpers import RES, make_volume_at

    src = make_volume_at(str(tmp_path / "src"), size=(80, 64, 2))
    dst = make_volume_at(str(tmp_path / "dst"), size=(80, 64, 2))
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((x_range[0], 0, 0), (x_range[1], 64, 2), RES),
        fn=lambda src: src,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[16, 16, 1]],
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"],
        verbose=False,
        **options,
    )
    plain = Console(file=io.StringIO(), force_terminal=False)
    mazepa.execute(flow, progress_console=plain, progress_log_interval_sec=0)
    lines = capsys.readouterr().err.strip().splitlines()
    first, last = lines[0], lines[-1]
    assert last.startswith("mazepa done")
    finals = re.findall(r"(lambda(?: reduction)?) (\d+)/(\d+)", last)
    assert {name for name, _, _ in finals} == {"lambda", "lambda reduction"}
    assert all(done == total for _, done, total in finals), last
    # and the first line already had those totals
    assert re.findall(r"(lambda(?: reduction)?) \d+/(\d+)", first) == [
        (n, t) for n, _, t in finals if n in first
    ]


# ---- end to end: a real run on a pseudo-terminal, Ctrl-C, "n" ----------------------------------

_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from zetta_utils import mazepa
    from zetta_utils.mazepa import progress

    @mazepa.taskable_operation
    def wait_for(folder: str, i: int) -> int:
        Path(folder, f"pid-{os.getpid()}").write_text("")
        while not Path(folder, "go").exists():
            time.sleep(0.02)
        return i

    @mazepa.flow_schema
    def flow(folder: str):
        progress.expect_tasks("wait_for", 4)
        yield [wait_for.make_task(folder, i) for i in range(4)]

    if __name__ == "__main__":
        print("before the run")
        mazepa.execute(flow(sys.argv[1]), num_procs=2)
        Path(sys.argv[1], "finished").write_text("")
    """
)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout  # a safety net, not a speed assumption
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pseudo-terminal")
def test_on_a_terminal_the_bars_go_on_in_place_after_no(
    tmp_path: Path, default_sigint: Callable[[list[str]], list[str]]
) -> None:
    import pty

    (tmp_path / "child.py").write_text(_CHILD)
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "30"}
    child = subprocess.Popen(
        default_sigint([sys.executable, str(tmp_path / "child.py"), str(tmp_path)]),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
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
        _wait_for(lambda: len(list(tmp_path.glob("pid-*"))) == 2, "both workers to run a task")
        child.send_signal(signal.SIGINT)
        _wait_for(lambda: b"Cancel the run? [y/N]" in output, "the confirmation prompt")
        os.write(master, b"n\n")
        (tmp_path / "go").write_text("")
        assert child.wait(timeout=300) == 0
        assert (tmp_path / "finished").exists()
    finally:
        if child.poll() is None:
            child.kill()
    reader.join(timeout=30)
    os.close(master)
    shown = _screen(
        output.decode("utf-8", errors="replace").replace("\r\n", "\n"), columns=100, lines=30
    )
    assert shown[0] == "before the run"
    bars = [line for line in shown if line.startswith("wait_for")]
    assert len(bars) == 1 and "4/4" in bars[0], shown  # one bar, continued in place
    assert not any("Cancel" in line for line in shown), shown
