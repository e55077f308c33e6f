"""Moved to :mod:`zetta_utils.mazepa.regions` (the scheduler names failed tasks by region too)."""

from zetta_utils.mazepa.regions import describe_task_region, describe_voxel_box

__all__ = ["describe_task_region", "describe_voxel_box"]
