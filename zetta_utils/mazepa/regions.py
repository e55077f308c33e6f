"""Where in the volume a task works, in words, for error messages and dead-letter reports.

A task's operation may say so itself: ``describe_region(*args, **kwargs) -> str | None`` on the
operation object (the subchunkable flow's tasks do). Otherwise the first
:class:`~zetta_utils.layer.volumetric.VolumetricIndex` among the task's arguments is described.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["describe_task_region", "describe_voxel_box"]


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def describe_voxel_box(
    start: Sequence[int], stop: Sequence[int], resolution: Sequence[float]
) -> str:
    """``voxels (x0, y0, z0) - (x1, y1, z1) at (rx, ry, rz) nm, i.e. nm (..) - (..)``."""
    nm_start = [float(s) * float(r) for s, r in zip(start, resolution, strict=True)]
    nm_stop = [float(s) * float(r) for s, r in zip(stop, resolution, strict=True)]
    return (
        f"voxels {_fmt([float(v) for v in start])} - {_fmt([float(v) for v in stop])} at "
        f"{_fmt(resolution)} nm, i.e. nm {_fmt(nm_start)} - {_fmt(nm_stop)}"
    )


def _find_index(values: Any, index_type: type, depth: int = 0) -> Any:
    if isinstance(values, index_type):
        return values
    if depth >= 2:
        return None
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (list, tuple)):
        for v in values[:16]:
            found = _find_index(v, index_type, depth + 1)
            if found is not None:
                return found
    return None


def describe_task_region(task: Any) -> str | None:
    """The region ``task`` works on, or None when it does not say and has no index argument."""
    args = getattr(task, "args", ())
    kwargs = getattr(task, "kwargs", {})
    describe = getattr(getattr(task, "fn", None), "describe_region", None)
    if callable(describe):
        try:
            text = describe(*args, **kwargs)
        except Exception:  # a description must never break error reporting
            text = None
        if text:
            return str(text)
    if "zetta_utils.layer.volumetric" not in sys.modules:
        return None  # (so no argument can be an index; and the worker need not import torch here)
    from zetta_utils.layer.volumetric import VolumetricIndex

    index = _find_index([*args, *kwargs.values()], VolumetricIndex)
    if index is None:
        return None
    try:
        return describe_voxel_box(tuple(index.start), tuple(index.stop), tuple(index.resolution))
    except Exception:
        return None
