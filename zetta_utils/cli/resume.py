"""Resuming ``zetta run``: finished work is recorded per spec, and a rerun of the same spec skips
it.

Each spec gets a folder under ``$ZETTA_RESUME_DIR`` (default ``~/.zetta_utils/resume``) named by a
hash of the *evaluated* spec (after CUE evaluation, so the region, the layers and every option are
part of it; the file's name and formatting are not). The folder holds the run's mazepa checkpoint
(one finished task or flow id per line, appended as the run goes), a copy of the spec, and a lock
held while a run uses it.

- A run that is cancelled, fails or is killed leaves its checkpoint: running the same spec again
  skips what is recorded and redoes the rest (tasks that were in flight are simply run again:
  tasks are idempotent).
- A run that completes deletes its folder, so the next run of the spec starts over.
- ``--fresh`` deletes the checkpoint first. A changed spec has another hash, hence starts over.
- A second concurrent run of the same spec neither resumes nor records (the first holds the lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import IO, Any

__all__ = ["RESUME_DIR_ENV", "ResumeState", "resume_root", "spec_key"]

RESUME_DIR_ENV = "ZETTA_RESUME_DIR"
CHECKPOINT_NAME = "checkpoint"

logger = logging.getLogger(__name__)


def resume_root() -> Path:
    """Where resume folders live: ``$ZETTA_RESUME_DIR``, else ``~/.zetta_utils/resume``."""
    return Path(os.environ.get(RESUME_DIR_ENV) or "~/.zetta_utils/resume").expanduser()


def spec_key(spec: Any) -> str:
    """The hash naming a spec's resume folder: equal evaluated specs, equal keys."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ResumeState:
    """The resume folder of one spec, locked for the duration of a run."""

    def __init__(self, folder: Path, lock: IO[str] | None):
        self.folder = folder
        self._lock = lock

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT_NAME

    @property
    def active(self) -> bool:
        """This run records its progress (it holds the lock)."""
        return self._lock is not None

    @classmethod
    def open(cls, spec: Any, spec_path: str, *, fresh: bool) -> ResumeState:
        folder = resume_root() / spec_key(spec)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = open(folder / "lock", "a+", encoding="utf-8")  # held until release
        except OSError as e:
            logger.warning(
                "cannot record this run's progress in %s (%s): a rerun will start over", folder, e
            )
            return cls(folder, None)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            logger.warning(
                "another run of this spec is going on (resume folder %s): this run neither resumes "
                "nor records its progress",
                folder,
            )
            return cls(folder, None)
        state = cls(folder, lock)
        if fresh:
            state.checkpoint.unlink(missing_ok=True)
        spec_copy = {"spec_path": os.path.abspath(spec_path), "spec": spec}
        (folder / "spec.json").write_text(json.dumps(spec_copy, default=repr), encoding="utf-8")
        return state

    def recorded(self) -> int:
        """How many finished ids the checkpoint holds."""
        try:
            with open(self.checkpoint, "rb") as f:
                return sum(1 for line in f if line.endswith(b"\n"))
        except FileNotFoundError:
            return 0

    def finish(self, completed: bool) -> None:
        """After a run that returned: a completed run forgets its progress; one that left work
        undone (``raise_on_failure: false`` with failures) keeps it for a rerun."""
        if self._lock is None:
            return
        if completed:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def resume_hint(self, spec_path: str) -> str | None:
        """What to tell a user whose run stopped, if a rerun would resume."""
        n = self.recorded()
        if not n:
            return None
        return (
            f"{n} finished task(s) and flow(s) are on record ({self.checkpoint}): run `zetta run "
            f"{spec_path}` again to resume (they are skipped), or add --fresh to start over."
        )
