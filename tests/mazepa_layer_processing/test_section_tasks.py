"""Flow (c) with several processes runs in section tasks (issue 24): one task per independent
wave computes its top-level chunks and reduces them, its rows in memory. The bytes are those of a
serial run and of a run with the switch off; no row file is ever written; a worker killed inside
a section task costs a rerun of that task; dependent waves and the switch keep top-level and
reduction tasks apart; progress counts what runs."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import torch
from rich.console import Console

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan
from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow as vaf
from zetta_utils.mazepa_layer_processing.common.summary import print_plan_summary

from .helpers import BLEND_TWO_LEVELS, RES, make_volume_at, random_array, write_array
from .test_rows_in_memory import RowWatch, dst_files, most_rows_seen

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (64, 64, 4)  # four z sections: four waves
CFG = BLEND_TWO_LEVELS


@pytest.fixture
def src(tmp_path: Path) -> VolumetricLayer:
    layer = make_volume_at(str(tmp_path / "src"), size=SIZE)
    write_array(layer, random_array((1, *SIZE), "uint8", seed=5))
    return layer


def flow_into(root: Path, name: str, src: VolumetricLayer, fn: Any, **kwargs: Any) -> Any:
    return build_subchunkable_apply_flow(
        dst=make_volume_at(str(root / f"{name}-dst"), size=SIZE),
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=fn,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{root / f'{name}-tmp'}"] * 2,
        verbose=False,
        **{**CFG, **kwargs},
    )


def run(
    root: Path,
    name: str,
    src: VolumetricLayer,
    num_procs: int,
    capsys: pytest.CaptureFixture[str] | None = None,
    start_cost: float = 0,
    **kwargs: Any,
) -> tuple[dict[str, bytes], int, str]:
    """Run the flow into ``root/name``: its dst files, the most row files its function saw (from
    inside its tasks, in every process) and the progress' last line (with ``capsys``)."""
    seen = root / f"{name}-seen"
    seen.mkdir()
    flow = flow_into(root, name, src, RowWatch(root / f"{name}-tmp", seen), **kwargs)
    if capsys is not None:
        capsys.readouterr()
    mazepa.execute(
        flow,
        num_procs=num_procs,
        worker_start_cost_s=start_cost,
        show_progress=capsys is not None,
        progress_console=Console(file=io.StringIO(), force_terminal=False),
        progress_log_interval_sec=0,
    )
    last = capsys.readouterr().err.strip().splitlines()[-1] if capsys is not None else ""
    return dst_files(root / f"{name}-dst"), most_rows_seen(seen), last


@pytest.mark.slow
@pytest.mark.parametrize("start_cost", [0, 1e-9], ids=["workers", "first-task-in-driver"])
def test_two_processes_write_the_bytes_of_a_serial_run_and_no_row(
    tmp_path: Path,
    src: VolumetricLayer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    start_cost: float,
) -> None:
    serial, _serial_rows, _ = run(tmp_path, "serial", src, 1)
    sections, rows, last = run(tmp_path, "sections", src, 2, capsys, start_cost)
    assert rows == 0  # no row file, seen from inside every task but the first
    # progress: the section tasks, one per z section, and nothing else
    assert re.search(r": RowWatch \+ reduction 4/4 \(", last), last
    assert "RowWatch 4" not in last and "RowWatch reduction" not in last
    monkeypatch.setenv(vaf.SECTION_TASKS_ENV, "0")
    apart, apart_rows, apart_last = run(tmp_path, "apart", src, 2, capsys)
    assert apart_rows > 0  # (the listing sees rows where there are)
    assert re.search(r"RowWatch 64/64 .*RowWatch reduction 16/16", apart_last), apart_last
    # (no assertion on serial_rows: a serial run keeps a bounded number of rows in memory, and how
    # many top-level tasks run before a wave's reductions depends on its batches, sized by
    # measured durations: it may write a few)
    assert len(serial) == 64
    assert sections == serial == apart


@pytest.mark.slow
def test_dependent_waves_keep_top_level_and_reduction_tasks_apart(
    tmp_path: Path, src: VolumetricLayer, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs: dict[str, Any] = {"max_reduction_chunk_sizes": [32, 32, 2]}  # spanning two waves
    serial, _, _ = run(tmp_path, "serial", src, 1, **kwargs)
    two, rows, last = run(tmp_path, "two", src, 2, capsys, **kwargs)
    assert rows > 0 and "+ reduction" not in last, last
    assert two == serial


def plan_of(make_volume: Any, size: tuple[int, int, int] = SIZE, **kwargs: Any) -> Any:
    src, dst = make_volume(size=size), make_volume(size=size, chunk=(8, 8, 1))
    plan, _ = make_subchunkable_plan(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), size, RES),
        fn=lambda src: src,
        op_kwargs={"src": src},
        level_intermediaries_dirs=["file:///nonexistent/tmp"] * 2,
        **{**CFG, **kwargs},
    )
    return plan


@pytest.mark.parametrize(
    "size, kwargs, waves",
    [
        (SIZE, {}, 4),
        ((64, 64, 3), {}, None),  # too few waves to keep the workers busy
        (SIZE, {"keep_intermediaries": True}, None),  # its rows are written anyway
        (SIZE, {"max_reduction_chunk_sizes": [32, 32, 2]}, None),
        (SIZE, {"op_worker_type": "gpu", "reduction_worker_type": "cpu"}, None),
        (SIZE, {"op_worker_type": "gpu", "reduction_worker_type": "gpu"}, 4),
        ((64, 64, 1), {}, None),  # waves along y, which blends
        (
            (64, 64, 8),
            {
                "processing_chunk_sizes": [[16, 16, 2], [8, 8, 2]],
                "processing_blend_pads": [[2, 2, 1], [2, 2, 0]],
                "max_reduction_chunk_sizes": [32, 32, 2],
            },
            None,  # a blend pad along the waves
        ),
        (
            (64, 64, 8),
            {
                "processing_chunk_sizes": [[16, 16, 2], [8, 8, 2]],
                "max_reduction_chunk_sizes": [32, 32, 2],
            },
            4,
        ),
        ((64, 64, 1), {"max_reduction_chunk_sizes": [32, 16, 1]}, 4),
    ],
)
def test_which_plans_go_in_section_tasks(
    make_volume: Any, size: tuple[int, int, int], kwargs: dict[str, Any], waves: int | None
) -> None:
    if size[2] == 1 and kwargs:  # waves along y, which does not blend
        kwargs = {
            **kwargs,
            "processing_crop_pads": [[2, 0, 0], [1, 0, 0]],
            "processing_blend_pads": [[2, 0, 0], [2, 0, 0]],
        }
    plan = plan_of(make_volume, size, **kwargs)
    assert vaf.section_waves(plan) == waves


def summary_of(plan: Any) -> str:
    out = io.StringIO()
    print_plan_summary(plan, {"original_region": plan.region}, console=Console(file=out, width=400))
    return out.getvalue()


def test_the_plan_summary_tells_of_section_tasks(make_volume: Any) -> None:
    text = summary_of(plan_of(make_volume))
    assert re.search(
        r"section tasks +with -p > 1 or remote workers: 4 tasks instead, each the top-level "
        r"chunks of one z section and their reduction",
        text,
    ), text
    assert "in memory, with -p 1 and in section tasks" in text
    assert "section tasks" not in summary_of(plan_of(make_volume, (64, 64, 3)))


@pytest.mark.parametrize(
    "env, used",
    [
        ({}, True),
        ({vaf.SECTION_TASKS_ENV: "0"}, False),
        ({vaf.SECTION_TASKS_ENV: "1"}, True),
        ({vaf.ROWS_IN_MEMORY_ENV: "off"}, False),  # rows always written: no section tasks
    ],
)
def test_the_switches(
    make_volume: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], used: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # (outside a run: not a run wholly in one process)
    assert vaf.uses_section_tasks(plan_of(make_volume)) is used


def test_a_wave_over_the_bound_keeps_tasks_apart(
    make_volume: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_of(make_volume)
    monkeypatch.setattr(vaf, "SECTION_MAX_VOXELS", 16 * 16 * 16)  # 16 chunks of 16 x 16 x 1
    assert vaf.section_waves(plan) == 4
    monkeypatch.setattr(vaf, "SECTION_MAX_VOXELS", 16 * 16 * 16 - 1)
    assert vaf.section_waves(plan) is None


class StopOnce(RowWatch):
    """RowWatch that, on its ``at``-th call in a worker process, says so in a file (its pid) and
    waits there for good; once the file exists it never stops again."""

    def __init__(self, tmp: Path, out: Path, stop: Path, driver: int, at: int):
        super().__init__(tmp, out)
        self.stop, self.driver, self.at, self.calls = stop, driver, at, 0

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if os.getpid() != self.driver and self.calls == self.at and not self.stop.exists():
            self.stop.write_text(str(os.getpid()))
            threading.Event().wait()
        return super().__call__(src)


@pytest.mark.slow
def test_a_worker_killed_inside_a_section_task_costs_a_rerun_of_it(
    tmp_path: Path, src: VolumetricLayer
) -> None:
    serial, _, _ = run(tmp_path, "serial", src, 1)
    stop, seen = tmp_path / "stopped", tmp_path / "killed-seen"
    seen.mkdir()
    # a section task calls the function 144 times (16 top-level chunks of 9 bottom ones); by
    # the 120th, rows are in memory and reductions of the section have written dst chunks
    fn = StopOnce(tmp_path / "killed-tmp", seen, stop, os.getpid(), 120)
    killed: list[int] = []

    def kill_when_stopped() -> None:
        deadline = time.monotonic() + 120  # a safety net: the point is chosen by the file
        while not stop.exists() or not stop.read_text():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        killed.append(int(stop.read_text()))
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_when_stopped, daemon=True)
    killer.start()
    summary = mazepa.execute(
        flow_into(tmp_path, "killed", src, fn),
        num_procs=2,
        worker_start_cost_s=0,
        show_progress=False,
        checkpoint=tmp_path / "run.ckpt",
    )
    killer.join()
    assert killed and summary.retries >= 1
    assert most_rows_seen(seen) == 0
    assert dst_files(tmp_path / "killed-dst") == serial
    # every section task is on record: a resumed run skips them all
    again = mazepa.execute(
        flow_into(tmp_path, "killed", src, fn),
        num_procs=2,
        worker_start_cost_s=0,
        show_progress=False,
        checkpoint=tmp_path / "run.ckpt",
    )
    assert again.tasks_done == 0


class TransientOnce(RowWatch):
    """RowWatch raising a transient error on its ``at``-th call in a worker process, once (a
    file says it did)."""

    def __init__(self, tmp: Path, out: Path, done: Path, driver: int, at: int):
        super().__init__(tmp, out)
        self.done, self.driver, self.at, self.calls = done, driver, at, 0

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if os.getpid() != self.driver and self.calls == self.at and not self.done.exists():
            self.done.write_text(str(os.getpid()))
            raise mazepa.TransientError("the storage service is busy")
        return super().__call__(src)


@pytest.mark.slow
def test_a_section_task_that_fails_midway_runs_again_whole(
    tmp_path: Path, src: VolumetricLayer
) -> None:
    """(Its retry may run in the same worker, where the failed run left rows in memory and
    interiors reduced.)"""
    serial, _, _ = run(tmp_path, "serial", src, 1)
    done, seen = tmp_path / "failed", tmp_path / "retried-seen"
    seen.mkdir()
    fn = TransientOnce(tmp_path / "retried-tmp", seen, done, os.getpid(), 120)
    summary = mazepa.execute(
        flow_into(tmp_path, "retried", src, fn),
        num_procs=2,
        worker_start_cost_s=0,
        show_progress=False,
    )
    assert done.exists() and summary.retries == 1
    assert most_rows_seen(seen) == 0
    assert dst_files(tmp_path / "retried-dst") == serial


class FailIfFlagged(RowWatch):
    """RowWatch failing on its ``at``-th call in a process while the file ``flag`` exists."""

    def __init__(self, tmp: Path, out: Path, flag: Path, at: int):
        super().__init__(tmp, out)
        self.flag, self.at, self.calls = flag, at, 0

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at and self.flag.exists():
            raise ValueError("fails on purpose")
        return super().__call__(src)


@pytest.mark.slow
@pytest.mark.parametrize("first, then", [(1, 2), (2, 1)], ids=["serial-then-2p", "2p-then-serial"])
def test_a_checkpoint_of_another_process_count_is_resumed_without_missing_rows(
    tmp_path: Path, src: VolumetricLayer, first: int, then: int
) -> None:
    serial, _, _ = run(tmp_path, "serial", src, 1)
    flag, seen = tmp_path / "fail", tmp_path / "resumed-seen"
    seen.mkdir()
    flag.write_text("")
    fn = FailIfFlagged(tmp_path / "resumed-tmp", seen, flag, 200)  # in the second section
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(mazepa.ExecutionError, match="fails on purpose"):
        mazepa.execute(
            flow_into(tmp_path, "resumed", src, fn),
            num_procs=first,
            worker_start_cost_s=0,
            show_progress=False,
            checkpoint=checkpoint,
            max_retry=0,
        )
    flag.unlink()
    summary = mazepa.execute(
        flow_into(tmp_path, "resumed", src, fn),
        num_procs=then,
        worker_start_cost_s=0,
        show_progress=False,
        checkpoint=checkpoint,
    )
    assert summary.tasks_done > 0
    assert dst_files(tmp_path / "resumed-dst") == serial
