"""Flow (c) on queue workers runs in section tasks (issue 24): the tasks pickle, each keeps its
rows in memory in the worker that runs it, no row file is written, and the bytes are those of a
serial run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import torch

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.slow

SIZE = (64, 64, 4)
RES = (8, 8, 40)


class CountRows:
    """The flow's function: records the most row files under ``tmp`` seen on any call (in the
    worker that runs it)."""

    def __init__(self, tmp: Path, seen: Path):
        self.tmp, self.seen = tmp, seen

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        rows = sum(
            1
            for d, _, files in os.walk(self.tmp)
            if f"{os.sep}pieces{os.sep}" in d + os.sep
            for f in files
            if f != "info" and not f.endswith(".tmp")
        )
        (self.seen / f"{os.getpid()}.{rows}").touch()
        return src * 0.5 + src[:, :1, :1, :1] * 0.25


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_queue_workers_run_section_tasks_without_rows(
    sqs_env: str, tmp_path: Path, list_queues: Callable[[str], list[str]]
) -> None:
    info: dict[str, Any] = {
        "info_type": "image",
        "info_data_type": "uint8",
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
        "info_chunk_size": (16, 16, 1),
        "info_scales": [RES],
        "info_dataset_size": SIZE,
    }
    src = build_ts_layer(f"file://{tmp_path / 'src'}", **info)
    full = VolumetricIndex.from_coords(Vec3D(0, 0, 0), Vec3D(*SIZE), Vec3D(*RES))
    src[full] = torch.randint(0, 255, (1, *SIZE), generator=torch.Generator().manual_seed(2)).to(
        torch.uint8
    )
    outputs = {}
    for name in ("serial", "remote"):
        seen = tmp_path / f"{name}-seen"
        seen.mkdir()
        tmp = tmp_path / f"{name}-tmp"
        flow = build_subchunkable_apply_flow(
            bbox=BBox3D.from_coords(Vec3D(0, 0, 0), Vec3D(*SIZE), Vec3D(*RES)),
            dst_resolution=Vec3D(*RES),
            processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
            processing_crop_pads=[[2, 2, 0], [1, 1, 0]],
            processing_blend_pads=[[2, 2, 0], [2, 2, 0]],
            processing_blend_modes=["linear", "quadratic"],
            max_reduction_chunk_sizes=[32, 32, 1],
            level_intermediaries_dirs=[f"file://{tmp}"] * 2,
            fn=CountRows(tmp, seen),
            op_kwargs={"src": src},
            dst=build_ts_layer(f"file://{tmp_path / name}", **info),
            verbose=False,
        )
        if name == "serial":
            mazepa.execute(flow, show_progress=False)
        else:
            summary: Any = execute_on_gcp_with_sqs(
                flow,
                worker_replicas=2,
                local_test=True,
                visibility_timeout_s=4,
                show_progress=False,
            )
            assert list_queues(f"zetta-{summary.run_id}") == []
            assert summary.tasks_done == 4  # one per z section
        outputs[name] = _files(tmp_path / name)
        counts = [int(p.name.split(".")[1]) for p in seen.iterdir()]
        assert counts
        if name == "remote":  # (a serial run keeps a bounded number of rows in memory, and how
            # many top-level tasks run before a wave's reductions depends on its batches, sized
            # by measured durations: it may write a few)
            assert max(counts) == 0
    assert len(outputs["remote"]) == 64 + 1  # (and the info)
    assert outputs["remote"] == outputs["serial"]
