"""Progress display: rich on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from zetta_utils import mazepa


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
