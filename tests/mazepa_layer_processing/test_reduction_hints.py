"""Each reduction task names the top-level tasks whose pieces it reads (``Task.reads_from``), so
that local workers run it where those pieces may still be in memory."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import torch

from zetta_utils import mazepa
from zetta_utils.mazepa.executors import SerialExecutor
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

from .helpers import RES, make_volume_at, random_array, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def identity(src: torch.Tensor) -> torch.Tensor:
    return src


class RecordingExecutor(SerialExecutor):
    """Runs tasks here, as ``num_procs=1`` does, keeping every task it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[mazepa.Task[Any]] = []

    def submit(self, tasks: Sequence[mazepa.Task[Any]]) -> None:
        self.tasks.extend(tasks)
        super().submit(tasks)


def test_each_reduction_names_the_top_level_tasks_whose_pieces_it_reads(tmp_path: Path) -> None:
    size = (128, 64, 2)
    src = make_volume_at(str(tmp_path / "src"), size=size)
    data = random_array((1, *size), "uint8")
    write_array(src, data)
    dst = make_volume_at(str(tmp_path / "dst"), size=size)
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        start_coord=(0, 0, 0),
        end_coord=size,
        coord_resolution=RES,
        fn=identity,
        op_kwargs={"src": src},
        processing_chunk_sizes=[[32, 32, 1]],
        processing_crop_pads=[[2, 2, 0]],
        processing_blend_pads=[[4, 4, 0]],
        processing_blend_modes=["linear"],
        max_reduction_chunk_sizes=[64, 64, 1],
        level_intermediaries_dirs=[f"file://{tmp_path / 'tmp'}"],
    )
    executor = RecordingExecutor()
    mazepa.execute(flow, executor=executor, show_progress=False)
    assert np.array_equal(read_array(dst, (0, 0, 0), size), data)
    # top-level chunk keys -> their task: 4 x 2 chunks of 32 x 32 per section
    key_of: dict[str, tuple[int, int, int]] = {}
    reductions: list[mazepa.Task[Any]] = []
    for task in executor.tasks:
        if task.operation_name.endswith("reduction"):
            reductions.append(task)
        else:
            assert task.reads_from == ()
            (keys,) = task.args
            for key in keys:
                key_of[task.id] = key
    assert len(key_of) == 4 * 2 * 2
    assert len(reductions) == 2 * 2  # 64 x 64 each
    for task in reductions:
        (((_, write),),) = task.args
        x0, z = write.start[0], write.start[2]
        read = sorted(key_of[i] for i in task.reads_from)
        # the chunks under it, and the neighbours whose blend pads reach into it, of its section
        xs = [j for j in range(4) if 32 * j - 4 < x0 + 64 and x0 < 32 * j + 36]
        assert read == sorted((x, y, z) for x in xs for y in range(2)), (write, read)
