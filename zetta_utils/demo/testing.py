"""Helpers for tests that run the guide's examples on the demo volume.

The examples name their data by ``~`` paths (``file://~/.zetta_utils/demo/fafb_v15/img_norm``,
``file://~/zetta_utils_temp/``, ``file://~/.zetta_utils/tmp/``). A test points ``HOME`` at a fresh
directory made by :func:`make_home`, whose ``.zetta_utils/demo/fafb_v15`` links to a demo
volume written once per test session by :func:`shared_demo` (concurrent test processes, e.g.
pytest-xdist workers, wait for the one that writes it), so outputs land in the test's own
directory and the demo is generated once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

TEST_REGIONS: tuple[str, ...] = ("guide_64nm", "subchunkable", "layer_set")
"""What the guide's examples read (the 4 and 8 nm patches are left out)."""


def shared_demo(directory: str | os.PathLike[str], regions: Sequence[str] = TEST_REGIONS) -> Path:
    """The demo volume in ``directory``, written unless already there (under a file lock, so
    that processes sharing ``directory`` write it once)."""
    from .volume import write_demo_volume

    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            write_demo_volume(str(target), regions=list(regions))
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return target


def make_home(home: str | os.PathLike[str], demo_dir: str | os.PathLike[str]) -> Path:
    """Make ``home`` a home directory whose ``~/.zetta_utils/demo/fafb_v15`` is ``demo_dir``."""
    root = Path(home)
    link = root / ".zetta_utils" / "demo" / "fafb_v15"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(Path(demo_dir).resolve(), target_is_directory=True)
    return root
