"""Checkpoints: the ids of finished tasks and flows, so that a rerun skips them.

A local path (or ``file://`` URL) names one text file, one id per line, appended to as the run goes.
Other URLs (``gs://``, ``s3://``, ``memory://``, ...) go through fsspec and name a *folder* of part
files, one per flush, since object stores cannot append. Loading reads every line of every part.

Ids are recorded as tasks succeed and as flows finish (every few seconds and at the end, also
after a failure or Ctrl-C). A rerun skips recorded tasks (their ``task.outcome`` says
``skipped=True`` and has no return value) and recorded flows without starting their generators.
Runs whose flows read tasks' return values should not rely on skipping them. A task of a run in
one process may hold its record until a later release (:mod:`.record_holds`: a result kept in
memory only); a record still held when the run ends is not written.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["CheckpointStore", "open_checkpoint"]


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_path(path: str) -> Path:
    if path.startswith("file://"):
        path = path[len("file://") :]
    return Path(os.path.expanduser(path))


class CheckpointStore:
    """Loads recorded ids and appends new ones (buffered, flushed every ``interval_sec``)."""

    def __init__(self, path: str | os.PathLike[str], interval_sec: float = 30.0):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"`checkpoint` must be a path or URL string, got {type(path).__name__}: {path!r}"
            )
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("`checkpoint` must not be empty")
        if (
            isinstance(interval_sec, bool)
            or not isinstance(interval_sec, (int, float))
            or interval_sec < 0
        ):
            raise ValueError(
                f"`checkpoint_interval_sec` must be a non-negative number, got {interval_sec!r}"
            )
        self.interval_sec = float(interval_sec)
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()
        self._fs: Any = None
        self._root = ""
        if not _is_local(self.path):
            try:
                import fsspec
            except ImportError as e:
                raise ValueError(
                    f"`checkpoint` {self.path!r}: URLs other than file:// need the `fsspec` "
                    "package (and its backend for the scheme); install it or use a local path"
                ) from e
            try:
                self._fs, self._root = fsspec.core.url_to_fs(self.path)
            except (ImportError, ValueError) as e:
                raise ValueError(f"`checkpoint` {self.path!r}: cannot open this URL: {e}") from e

    @property
    def is_local(self) -> bool:
        """A local file: appending to it is cheap enough to do on every step of a run."""
        return self._fs is None

    def load(self) -> set[str]:
        """The ids recorded so far (empty for a new checkpoint)."""
        if self._fs is None:
            local = _local_path(self.path)
            if not local.exists():
                return set()
            if local.is_dir():
                raise ValueError(f"`checkpoint` {self.path!r} is a directory; expected a file path")
            return _parse(local.read_text(encoding="utf-8"))
        if not self._fs.exists(self._root):
            return set()
        ids: set[str] = set()
        for part in sorted(self._fs.find(self._root)):
            with self._fs.open(part, "rb") as f:
                ids |= _parse(f.read().decode("utf-8"))
        return ids

    def record(self, ids: Iterable[str]) -> None:
        self._buffer.extend(ids)

    def maybe_flush(self) -> None:
        if self._buffer and time.monotonic() - self._last_flush >= self.interval_sec:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        text = "".join(f"{i}\n" for i in self._buffer)
        if self._fs is None:
            local = _local_path(self.path)
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
        else:
            name = f"{self._root.rstrip('/')}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.txt"
            self._fs.makedirs(self._root, exist_ok=True)
            with self._fs.open(name, "wb") as f:
                f.write(text.encode("utf-8"))
        self._buffer.clear()


def _parse(text: str) -> set[str]:
    lines = text.split("\n")
    if lines and not text.endswith("\n"):
        lines.pop()  # a line cut short by a crash mid-write
    return {line for line in lines if line}


def open_checkpoint(
    path: str | os.PathLike[str] | None, interval_sec: float = 30.0
) -> CheckpointStore | None:
    return None if path is None else CheckpointStore(path, interval_sec)
