"""Progress of a run, per operation: a live rich display on a terminal, log lines elsewhere.

The scheduler only bumps integer counters (cheap enough per task); a display reads them at most
``refresh_per_second`` times a second.

Totals: a flow that knows how many tasks it will yield says so when it starts, with
:func:`expect_tasks` (a subchunkable flow does, from its plan). Its bar then shows the real total
from the first moment, and an ETA from the rate measured since the operation's first task
(``done / elapsed``, skipped tasks left out of the rate). An operation nobody declared shows the
tasks yielded so far followed by ``+`` (more may come) and no ETA. The counters take a ``clock``
so that rates and ETAs can be tested without waiting.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TextIO

__all__ = [
    "Clock",
    "LogProgressDisplay",
    "NullProgressDisplay",
    "OperationCounts",
    "ProgressCounters",
    "ProgressDisplay",
    "RichProgressDisplay",
    "collecting",
    "expect_tasks",
    "format_duration",
    "make_progress_display",
    "summary_sentence",
]

Clock = Callable[[], float]


class OperationCounts:
    """Counters of one operation (task type), and what flows declared about its whole run."""

    __slots__ = (
        "_clock",
        "_yielded",
        "bytes_written",
        "done",
        "expected",
        "failed",
        "retries",
        "skipped",
        "started",
        "voxels",
    )

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.started: float | None = None  # when the first task of this kind was yielded
        self._yielded = 0
        self.done = 0
        self.skipped = 0
        self.failed = 0
        self.retries = 0
        self.expected = 0  # tasks declared with expect_tasks (0: nobody declared any)
        self.voxels = 0.0  # voxels the expected tasks process together (declared)
        self.bytes_written = 0.0  # bytes the expected tasks write together (declared)

    @property
    def yielded(self) -> int:
        return self._yielded

    @yielded.setter
    def yielded(self, value: int) -> None:
        if self.started is None and value > 0:
            self.started = self._clock()
        self._yielded = value

    @property
    def finished(self) -> int:
        return self.done + self.skipped

    @property
    def total(self) -> int | None:
        """The run's number of tasks of this kind, when a flow declared it (else None)."""
        return max(self.expected, self._yielded) if self.expected else None

    def rate(self, now: float) -> float:
        """Tasks done per second since the first one was yielded (skipped ones not counted)."""
        if self.started is None:
            return 0.0
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        """Seconds left at the measured rate; None while unknown (no total, nothing done yet)."""
        total = self.total
        if total is None:
            return None
        remaining = total - self.finished - self.failed
        if remaining <= 0:
            return 0.0
        rate = self.rate(now)
        return remaining / rate if rate > 0 else None

    def share_done(self) -> float:
        """The fraction of the declared work this run did (tasks done / tasks expected)."""
        return min(1.0, self.done / self.expected) if self.expected else 0.0


class ProgressCounters:
    """Per-operation counters, in order of first appearance."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.by_name: dict[str, OperationCounts] = {}
        self.start_time = clock()

    def get(self, name: str) -> OperationCounts:
        counts = self.by_name.get(name)
        if counts is None:
            counts = self.by_name[name] = OperationCounts(self.clock)
        return counts

    def expect(self, name: str, tasks: int, voxels: float = 0, bytes_written: float = 0) -> None:
        """Add ``tasks`` tasks named ``name`` to the run's totals (see :func:`expect_tasks`)."""
        counts = self.get(name)
        counts.expected += tasks
        counts.voxels += voxels
        counts.bytes_written += bytes_written

    def totals(self) -> OperationCounts:
        total = OperationCounts(self.clock)
        for c in self.by_name.values():
            total.yielded += c.yielded
            total.done += c.done
            total.skipped += c.skipped
            total.failed += c.failed
            total.retries += c.retries
        return total

    def work_done(self) -> tuple[float, float]:
        """Voxels processed and bytes written by this run, from what flows declared: each
        operation's declared amount times the share of its tasks this run did (tasks an
        earlier run finished and this one skipped are not counted)."""
        voxels = sum(c.voxels * c.share_done() for c in self.by_name.values())
        written = sum(c.bytes_written * c.share_done() for c in self.by_name.values())
        return voxels, written


_CURRENT: contextvars.ContextVar[ProgressCounters | None] = contextvars.ContextVar(
    "mazepa_progress_counters", default=None
)


@contextlib.contextmanager
def collecting(counters: ProgressCounters) -> Iterator[None]:
    """Within the block, :func:`expect_tasks` adds to ``counters`` (``execute`` holds one
    around its run, so flows it runs declare into its counters)."""
    token = _CURRENT.set(counters)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def expect_tasks(
    operation_name: str, tasks: int, *, voxels: float = 0, bytes_written: float = 0
) -> None:
    """Tell the running ``mazepa.execute`` that this flow will yield ``tasks`` tasks named
    ``operation_name`` (including any an earlier run finished: those count as skipped), which
    together process ``voxels`` voxels and write ``bytes_written`` bytes. Called by a flow when
    it starts; outside a run it does nothing. Declarations of the same name add up."""
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 0:
        raise ValueError(f"`tasks` must be a non-negative integer, got {tasks!r}")
    counters = _CURRENT.get()
    if counters is not None and tasks:
        counters.expect(operation_name, tasks, voxels, bytes_written)


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


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _count_text(c: OperationCounts, final: bool) -> str:
    total = c.total
    if total is not None:
        return f"{c.finished}/{total}"
    # Nobody declared a total: what was yielded so far, and more may come until the run ends.
    return f"{c.finished}/{c.yielded}" + ("" if final else "+")


def _extras(c: OperationCounts, markup: bool = False) -> list[str]:
    extras = []
    if c.skipped:
        extras.append(f"{c.skipped} skipped")
    if c.retries:
        extras.append(f"{c.retries} retried")
    if c.failed:
        extras.append(f"[red]{c.failed} failed[/red]" if markup else f"{c.failed} failed")
    return extras


def _describe(
    name: str, c: OperationCounts, now: float, final: bool = False, ended: bool = False
) -> str:
    """``final``: the run completed (what was yielded is all); ``ended``: it stopped (no ETA)."""
    text = f"{name} {_count_text(c, final)}"
    rate = c.rate(now)
    if rate > 0:
        text += f" ({rate:.1f}/s"
        eta = c.eta(now)
        if eta is not None and eta > 0 and not (final or ended):
            text += f", ETA {format_duration(eta)}"
        text += ")"
    extras = _extras(c)
    if extras:
        text += " [" + ", ".join(extras) + "]"
    return text


class LogProgressDisplay:
    """Plain lines every ``interval_sec`` seconds and at the end: for CI logs and pipes."""

    def __init__(
        self, counters: ProgressCounters, stream: TextIO | None = None, interval_sec: float = 5.0
    ):
        self.counters = counters
        self.stream = stream
        self.interval_sec = interval_sec
        self._last = 0.0

    def _write(self, label: str, final: bool = False, ended: bool = False) -> None:
        now = self.counters.clock()
        elapsed = now - self.counters.start_time
        parts = [
            _describe(n, c, now, final, ended)
            for n, c in self.counters.by_name.items()
            if c.yielded or c.expected
        ]
        line = f"mazepa {label} [{format_duration(elapsed)}]: " + (" | ".join(parts) or "no tasks")
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)

    def start(self) -> None:
        self._last = self.counters.clock()

    def refresh(self, force: bool = False) -> None:
        now = self.counters.clock()
        if force or now - self._last >= self.interval_sec:
            self._last = now
            self._write("progress")

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self, status: str = "done") -> None:
        self._write(status, final=status == "done", ended=True)


# What ``ask_cancel_confirmation`` leaves on the screen below the (erased) bars: a blank line,
# then the question with the answer typed after it and its newline.
_PROMPT_LINES = 2


class RichProgressDisplay:
    """A live table: one bar per operation with done/total, rate, elapsed and ETA.

    At the cancel prompt the bars are erased (the question takes their place); answering "no"
    erases the question and draws the bars again where they were."""

    def __init__(
        self, counters: ProgressCounters, console: Any = None, refresh_per_second: float = 10.0
    ):
        from rich.progress import BarColumn, Progress, TextColumn

        self.counters = counters
        self._min_interval = 1.0 / refresh_per_second
        self._last: float | None = None
        self._rows: dict[str, Any] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[elapsed]}"),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[extra]}"),
            console=console,
            refresh_per_second=refresh_per_second,
            transient=False,
        )
        self._console = self._progress.console
        self._running = False
        self._paused = False

    def start(self) -> None:
        self._progress.start()
        self._running = True

    def refresh(self, force: bool = False, final: bool = False, ended: bool = False) -> None:
        now = self.counters.clock()
        if not force and self._last is not None and now - self._last < self._min_interval:
            return
        self._last = now
        for name, c in self.counters.by_name.items():
            if not (c.yielded or c.expected):
                continue
            row = self._rows.get(name)
            if row is None:
                row = self._rows[name] = self._progress.add_task(
                    name, total=None, count="", rate="", elapsed="", eta="", extra=""
                )
            eta = c.eta(now)
            total = c.total
            self._progress.update(
                row,
                completed=c.finished,
                # no declared total: the bar pulses (until the end, when what was yielded is all)
                total=total if total is not None else (max(c.yielded, 1) if final else None),
                count=_count_text(c, final),
                rate=f"{c.rate(now):.1f}/s",
                elapsed=format_duration(now - c.started) if c.started is not None else "",
                eta=("ETA " + format_duration(eta))
                if eta is not None and eta > 0 and not (final or ended)
                else "",
                extra=", ".join(_extras(c, markup=True)),
            )
        if force and self._running:
            self._progress.refresh()

    def pause(self) -> None:
        if self._running:
            live = self._progress.live
            live.transient = True  # stop() erases the bars
            self._progress.stop()
            live.transient = False
            # Drawn again, they start where they were: rich would otherwise move up over the
            # height of the erased render first, into the lines above them.
            render = getattr(live, "_live_render", None)
            if render is not None and hasattr(render, "_shape"):
                render._shape = None
            self._running = False
            self._paused = True

    def resume(self) -> None:
        if self._running:
            return
        if self._paused and self._console.is_terminal:
            # back to where the bars were, erasing the question and the answer
            self._console.file.write(f"\x1b[{_PROMPT_LINES}F\x1b[J")
            self._console.file.flush()
        self._paused = False
        self._progress.start()
        self._running = True

    def stop(self, status: str = "done") -> None:
        self.refresh(force=True, final=status == "done", ended=True)
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


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def summary_sentence(
    *,
    tasks_done: int,
    tasks_skipped: int,
    tasks_failed: int,
    elapsed_secs: float,
    retries: int = 0,
    voxels: float = 0,
    bytes_written: float = 0,
    completed: bool = True,
) -> str:
    """What a finished run did, for people: e.g. "Done in 0:01:32: 2,400 tasks done (26.1/s),
    none failed; 1.1 Gvoxels processed (11.7 Mvoxels/s), 512.0 MiB written." Skipped tasks
    (finished by an earlier run) are said when there are any."""
    head = "Done" if completed and not tasks_failed else "Stopped"
    rate = tasks_done / elapsed_secs if elapsed_secs > 0 else 0.0
    parts = [
        f"{_plural(tasks_done, 'task')} done"
        + (f" ({rate:.1f}/s)" if tasks_done and rate > 0 else "")
    ]
    if tasks_skipped:
        parts.append(f"{tasks_skipped:,} skipped (finished by an earlier run)")
    parts.append(f"{tasks_failed:,} failed" if tasks_failed else "none failed")
    if retries:
        parts.append(f"{retries:,} " + ("retry" if retries == 1 else "retries"))
    text = f"{head} in {format_duration(elapsed_secs)}: " + ", ".join(parts)
    work = []
    if voxels > 0:
        vrate = voxels / elapsed_secs if elapsed_secs > 0 else 0.0
        work.append(
            f"{_si(voxels, 'voxels')} processed"
            + (f" ({_si(vrate, 'voxels/s')})" if vrate > 0 else "")
        )
    if bytes_written > 0:
        work.append(f"{_bytes(bytes_written)} written")
    if work:
        text += "; " + ", ".join(work)
    return text + "."
