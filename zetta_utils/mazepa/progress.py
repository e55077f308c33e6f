"""Progress of a run, per operation: a live rich display on a terminal, log lines elsewhere.

The scheduler only bumps integer counters (cheap enough per task); a display reads them at most
``refresh_per_second`` times a second.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

__all__ = [
    "LogProgressDisplay",
    "NullProgressDisplay",
    "OperationCounts",
    "ProgressCounters",
    "ProgressDisplay",
    "RichProgressDisplay",
    "make_progress_display",
]


class OperationCounts:
    """Counters of one operation (task type)."""

    __slots__ = ("done", "failed", "retries", "skipped", "started", "yielded")

    def __init__(self) -> None:
        self.started = time.monotonic()  # when the first task of this kind appeared
        self.yielded = 0
        self.done = 0
        self.skipped = 0
        self.failed = 0
        self.retries = 0

    @property
    def finished(self) -> int:
        return self.done + self.skipped


class ProgressCounters:
    """Per-operation counters, in order of first appearance."""

    def __init__(self) -> None:
        self.by_name: dict[str, OperationCounts] = {}
        self.start_time = time.monotonic()

    def get(self, name: str) -> OperationCounts:
        counts = self.by_name.get(name)
        if counts is None:
            counts = self.by_name[name] = OperationCounts()
        return counts

    def totals(self) -> OperationCounts:
        total = OperationCounts()
        for c in self.by_name.values():
            total.yielded += c.yielded
            total.done += c.done
            total.skipped += c.skipped
            total.failed += c.failed
            total.retries += c.retries
        return total


class ProgressDisplay(Protocol):
    def start(self) -> None: ...

    def refresh(self, force: bool = False) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self, status: str = "done") -> None: ...


class NullProgressDisplay:
    def start(self) -> None:
        pass

    def refresh(self, force: bool = False) -> None:
        pass

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self, status: str = "done") -> None:
        pass


def _format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _rate(c: OperationCounts, now: float) -> float:
    elapsed = now - c.started
    return c.done / elapsed if elapsed > 0 else 0.0


def _describe(name: str, c: OperationCounts, now: float) -> str:
    rate = _rate(c, now)
    text = f"{name} {c.finished}/{c.yielded}"
    if rate > 0:
        text += f" ({rate:.1f}/s"
        remaining = c.yielded - c.finished
        if remaining > 0:
            text += f", ETA {_format_duration(remaining / rate)}"
        text += ")"
    extras = []
    if c.skipped:
        extras.append(f"{c.skipped} skipped")
    if c.retries:
        extras.append(f"{c.retries} retried")
    if c.failed:
        extras.append(f"{c.failed} failed")
    if extras:
        text += " [" + ", ".join(extras) + "]"
    return text


class LogProgressDisplay:
    """Plain lines every ``interval_sec`` seconds and at the end: for CI logs and pipes."""

    def __init__(self, counters: ProgressCounters, stream: TextIO | None = None, interval_sec: float = 5.0):
        self.counters = counters
        self.stream = stream
        self.interval_sec = interval_sec
        self._last = 0.0

    def _write(self, label: str) -> None:
        now = time.monotonic()
        elapsed = now - self.counters.start_time
        parts = [_describe(n, c, now) for n, c in self.counters.by_name.items()]
        line = f"mazepa {label} [{_format_duration(elapsed)}]: " + (" | ".join(parts) or "no tasks")
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)

    def start(self) -> None:
        self._last = time.monotonic()

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval_sec:
            self._last = now
            self._write("progress")

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self, status: str = "done") -> None:
        self._write(status)


class RichProgressDisplay:
    """A live table: one bar per operation with done/total, rate, elapsed and ETA."""

    def __init__(self, counters: ProgressCounters, console: Any = None, refresh_per_second: float = 10.0):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.counters = counters
        self._min_interval = 1.0 / refresh_per_second
        self._last = 0.0
        self._rows: dict[str, Any] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[extra]}"),
            console=console,
            refresh_per_second=refresh_per_second,
            transient=False,
        )
        self._running = False

    def start(self) -> None:
        self._progress.start()
        self._running = True

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        for name, c in self.counters.by_name.items():
            row = self._rows.get(name)
            if row is None:
                row = self._rows[name] = self._progress.add_task(name, total=None, rate="", extra="")
            rate = _rate(c, now)
            extras = []
            if c.skipped:
                extras.append(f"{c.skipped} skipped")
            if c.retries:
                extras.append(f"{c.retries} retried")
            if c.failed:
                extras.append(f"[red]{c.failed} failed[/red]")
            self._progress.update(
                row,
                completed=c.finished,
                total=max(c.yielded, 1),
                rate=f"{rate:.1f}/s",
                extra=", ".join(extras),
            )
        if force and self._running:
            self._progress.refresh()

    def pause(self) -> None:
        if self._running:
            self._progress.stop()
            self._running = False

    def resume(self) -> None:
        if not self._running:
            self._progress.start()
            self._running = True

    def stop(self, status: str = "done") -> None:
        self.refresh(force=True)
        if self._running:
            self._progress.stop()
            self._running = False


def make_progress_display(
    counters: ProgressCounters,
    show_progress: bool,
    console: Any = None,
    log_stream: TextIO | None = None,
    log_interval_sec: float = 5.0,
) -> ProgressDisplay:
    """Rich on a terminal (``console``, default stdout), log lines to ``log_stream`` (default
    stderr) otherwise, nothing when ``show_progress`` is false."""
    if not show_progress:
        return NullProgressDisplay()
    if console is None:
        from rich.console import Console

        console = Console()
    if console.is_terminal:
        return RichProgressDisplay(counters, console=console)
    return LogProgressDisplay(counters, stream=log_stream, interval_sec=log_interval_sec)
