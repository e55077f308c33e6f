"""Flow (c) in one process keeps its intermediary rows in memory (issue 24): no row file is
written unless one is let go of from memory while still needed, the bytes written to dst are
those of a run that writes every row, and a run killed midway and resumed from its checkpoint
gives the same dst."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

from zetta_utils import mazepa, write_behind
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa.checkpoint import CheckpointStore
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box, ChunkGrid
from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore

from .helpers import BLEND_TWO_LEVELS, RES, make_volume_at, random_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (64, 64, 2)
CFG = BLEND_TWO_LEVELS
TOP_CHUNKS = 4 * 4 * 2


def row_files(tmp: Path) -> int:
    """Row files under the intermediaries ``tmp``: in a pieces volume, or in its pool of files
    to reuse."""
    return sum(
        1
        for d, _, files in os.walk(tmp)
        if f"{os.sep}pieces{os.sep}" in d + os.sep
        for f in files
        if f != "info" and not f.endswith(".tmp")
    )


class RowWatch:
    """The flow's function: records, on every call, how many row files exist (the most seen, in
    a file per process: it runs in workers too)."""

    def __init__(self, tmp: Path, out: Path):
        self.tmp, self.out = tmp, out

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        seen = self.out / str(os.getpid())
        n = row_files(self.tmp)
        if not seen.exists() or int(seen.read_text()) < n:
            seen.write_text(str(n))
        return src * 0.5 + src[:, :1, :1, :1] * 0.25  # overlapping outputs differ


def most_rows_seen(out: Path) -> int:
    return max((int(p.read_text()) for p in out.iterdir()), default=-1)


def dst_files(path: Path) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), path): Path(d, f).read_bytes()
        for d, _, files in os.walk(path)
        for f in files
        if f != "info"
    }


def run_case(
    root: Path,
    name: str,
    src: VolumetricLayer,
    dst_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Path, int]:
    """Run the flow into ``root/name``; its dst folder and the most row files seen during it."""
    tmp, out, dst_path = root / f"{name}-tmp", root / f"{name}-seen", root / f"{name}-dst"
    out.mkdir()
    exec_kwargs = {k: kwargs.pop(k) for k in ("num_procs", "worker_start_cost_s") if k in kwargs}
    flow = build_subchunkable_apply_flow(
        dst=make_volume_at(str(dst_path), size=SIZE, **(dst_kwargs or {})),
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=RowWatch(tmp, out),
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp}", f"file://{tmp}"],
        verbose=False,
        **CFG,
        **kwargs,
    )
    mazepa.execute(flow, show_progress=False, batch_size=1, **exec_kwargs)
    return dst_path, most_rows_seen(out)


@pytest.fixture
def src(tmp_path: Path) -> VolumetricLayer:
    layer = make_volume_at(str(tmp_path / "src"), size=SIZE)
    write_array(layer, random_array((1, *SIZE), "uint8", seed=21))
    return layer


def test_a_serial_run_writes_no_row_and_the_same_bytes(
    tmp_path: Path, src: VolumetricLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory, rows = run_case(tmp_path, "memory", src)
    assert rows == 0  # during the whole run, from inside its tasks
    kept, kept_rows = run_case(tmp_path, "kept", src, keep_intermediaries=True)
    assert row_files(tmp_path / "kept-tmp") == TOP_CHUNKS  # kept intermediaries: every row
    monkeypatch.setenv(volumetric_apply_flow.ROWS_IN_MEMORY_ENV, "0")
    written, written_rows = run_case(tmp_path, "written", src)
    assert written_rows > 0 and kept_rows > 0  # (the listing sees rows where there are)
    assert dst_files(in_memory) == dst_files(written) == dst_files(kept)
    assert len(dst_files(in_memory)) == TOP_CHUNKS


def test_rows_let_go_of_while_needed_are_written(
    tmp_path: Path, src: VolumetricLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # room for about two rows: rows, and frames of rows reduced already, are let go of all the
    # time while later reductions need them
    monkeypatch.setattr(volumetric_apply_flow, "KEPT_ROWS_MAX_BYTES", 2 * 20 * 20)
    evicting, rows = run_case(tmp_path, "evicting", src)
    assert rows > 0
    monkeypatch.setenv(volumetric_apply_flow.ROWS_IN_MEMORY_ENV, "0")
    written, _ = run_case(tmp_path, "written", src)
    assert dst_files(evicting) == dst_files(written)


def test_two_flows_of_one_run_keep_their_rows_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process keeps one flow's rows at a time: the other's, let go of while needed, are
    written."""

    def flow(name: str, seed: int) -> Any:
        src = make_volume_at(str(tmp_path / f"{name}-src"), size=SIZE)
        write_array(src, random_array((1, *SIZE), "uint8", seed=seed))
        tmp = tmp_path / f"{name}-tmp"
        return build_subchunkable_apply_flow(
            dst=make_volume_at(str(tmp_path / f"{name}-dst"), size=SIZE),
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            fn=lambda src: src * 0.5 + src[:, :1, :1, :1] * 0.25,
            op_kwargs={"src": src},
            level_intermediaries_dirs=[f"file://{tmp}", f"file://{tmp}"],
            verbose=False,
            **CFG,
        )

    checkpoint = tmp_path / "both.ckpt"
    mazepa.execute(
        mazepa.concurrent_flow([flow("a", 1), flow("b", 2)]),
        show_progress=False,
        batch_size=1,
        checkpoint=checkpoint,
    )
    monkeypatch.setenv(volumetric_apply_flow.ROWS_IN_MEMORY_ENV, "0")
    for name, seed in (("a", 1), ("b", 2)):
        mazepa.execute(flow(f"{name}-written", seed), show_progress=False)
        assert dst_files(tmp_path / f"{name}-dst") == dst_files(tmp_path / f"{name}-written-dst")
    # every task on record in the end
    summary = mazepa.execute(
        mazepa.concurrent_flow([flow("a", 1), flow("b", 2)]),
        show_progress=False,
        checkpoint=checkpoint,
    )
    assert summary.tasks_done == 0


def test_a_stores_rows_in_memory_are_written_when_another_stores_replace_them(
    tmp_path: Path,
) -> None:
    grid = ChunkGrid.over(Box((0, 0, 0), (96, 96, 1)), (32, 32, 1), (2, 2, 0))
    rng = np.random.default_rng(3)
    outputs = {
        key: rng.integers(0, 200, (1, *grid.padded(key).shape)).astype(np.uint8)
        for key in grid.keys()
    }
    reference, first, second = (
        PieceStore(f"file://{tmp_path}/{name}", Vec3D(*RES), grid, "uint8", 1)
        for name in ("reference", "first", "second")
    )
    for store in (reference, first, second):
        store.create()
    reference.run_token = None  # keeps nothing in memory: reads every row from its files
    for store in (first, second):
        store.in_memory = True
        store.keep_bytes = 10**6
    for key, data in outputs.items():
        reference.write_chunk(key, data)
        first.write_chunk(key, data)
    assert row_files(tmp_path / "first") == 0  # all in memory
    second.write_chunk((0, 0, 0), outputs[(0, 0, 0)])  # the process keeps one store's rows
    assert row_files(tmp_path / "first") == len(outputs)  # written when let go of
    assert row_files(tmp_path / "second") == 0
    box = Box((0, 0, 0), (96, 96, 1))
    assert np.array_equal(
        first.reduce_box(box, np.uint8, "linear"), reference.reduce_box(box, np.uint8, "linear")
    )
    second.delete()  # its rows in memory too, which the next test's would replace (and write)


def test_a_reduction_run_again_after_its_rows_in_memory_were_reduced_says_so(
    tmp_path: Path,
) -> None:
    """(A reduction that succeeded let go of the interiors it reduced from memory: another reading
    them is a bug, and says what to do. A failed one gives them back, see the test below.)"""
    grid = ChunkGrid.over(Box((0, 0, 0), (64, 64, 1)), (32, 32, 1), (2, 2, 0))
    store = PieceStore(f"file://{tmp_path}/tmp", Vec3D(*RES), grid, "uint8", 1)
    store.create()
    store.in_memory, store.keep_bytes = True, 10**6
    for key in grid.keys():
        store.write_chunk(key, np.ones((1, *grid.padded(key).shape), np.uint8))
    box = Box((0, 0, 0), (64, 64, 1))
    assert (store.reduce_box(box, np.uint8, "linear") == 1).all()
    with pytest.raises(RuntimeError, match=r"kept in memory only .* Run the flow again"):
        store.reduce_box(box, np.uint8, "linear")
    store.delete()


def _store_of_ones(tmp_path: Path) -> tuple[PieceStore, Box]:
    grid = ChunkGrid.over(Box((0, 0, 0), (64, 64, 1)), (32, 32, 1), (2, 2, 0))
    store = PieceStore(f"file://{tmp_path}/tmp", Vec3D(*RES), grid, "uint8", 1)
    store.create()
    store.in_memory, store.keep_bytes = True, 10**6
    for key in grid.keys():
        store.write_chunk(key, np.full((1, *grid.padded(key).shape), key[0] + 2 * key[1] + 1))
    return store, Box((0, 0, 0), (64, 64, 1))


def _fail() -> None:
    raise OSError("the dst write failed")


@pytest.mark.parametrize("when", ["in the task", "in a deferred write"])
def test_a_reduction_that_fails_gives_its_rows_in_memory_back_for_its_retry(
    tmp_path: Path, when: str
) -> None:
    store, box = _store_of_ones(tmp_path)
    if when == "in the task":
        with pytest.raises(OSError, match="dst write failed"):
            with store.reduction_attempt():
                first = store.reduce_box(box, np.uint8, "linear")
                _fail()
    else:
        with write_behind.task_scope(on=True) as scope:
            with store.reduction_attempt():
                first = store.reduce_box(box, np.uint8, "linear")
                write_behind.defer("test dst", _fail, 1)
        finished = threading.Event()  # after the store's own callback: the order they came in
        scope.add_done_callback(finished.set)
        assert finished.wait(60)
        with pytest.raises(OSError, match="dst write failed"):
            scope.wait()
    assert row_files(tmp_path / "tmp") == 0
    with store.reduction_attempt():  # the retry
        again = store.reduce_box(box, np.uint8, "linear")
    assert set(np.unique(first)) == {1, 2, 3, 4}
    assert (again == first).all()
    with pytest.raises(RuntimeError, match=r"kept in memory only"):  # it succeeded: gone now
        store.reduce_box(box, np.uint8, "linear")
    store.delete()


class FailingOnce:
    """A dst write processor: a transient error on its first call in this process."""

    calls = 0

    def __call__(self, data: torch.Tensor) -> torch.Tensor:
        FailingOnce.calls += 1
        if FailingOnce.calls == 1:
            raise mazepa.TransientError("the storage service is busy")
        return data


def test_a_serial_run_whose_reduction_fails_once_writes_the_same_bytes(
    tmp_path: Path, src: VolumetricLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FailingOnce, "calls", 0)
    retried, rows = run_case(tmp_path, "retried", src, dst_kwargs={"write_procs": [FailingOnce()]})
    assert FailingOnce.calls > 1 and rows == 0
    monkeypatch.setenv(volumetric_apply_flow.ROWS_IN_MEMORY_ENV, "0")
    written, _ = run_case(tmp_path, "written", src)
    assert dst_files(retried) == dst_files(written)


def test_rows_in_memory_of_a_run_that_ended_are_not_written(
    tmp_path: Path, src: VolumetricLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped by a failure leaves its rows in memory; the next run's rows replace them,
    and nothing is written for the run that ended."""

    @mazepa.flow_schema
    def failing(flow: Any) -> Any:
        yield flow
        yield mazepa.Dependency()

    out = tmp_path / "seen"
    out.mkdir()
    failed_tmp = tmp_path / "failed-tmp"

    class FailAtEnd(RowWatch):
        calls = 0

        def __call__(self, src: torch.Tensor) -> torch.Tensor:
            FailAtEnd.calls += 1
            if FailAtEnd.calls == 40:
                raise ValueError("fails on purpose")
            return super().__call__(src)

    flow = build_subchunkable_apply_flow(
        dst=make_volume_at(str(tmp_path / "failed-dst"), size=SIZE),
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=FailAtEnd(failed_tmp, out),
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{failed_tmp}"] * 2,
        verbose=False,
        **CFG,
    )
    with pytest.raises(mazepa.ExecutionError, match="fails on purpose"):
        mazepa.execute(failing(flow), show_progress=False, batch_size=1)
    assert row_files(failed_tmp) == 0
    run_case(tmp_path, "next", src)
    assert row_files(failed_tmp) == 0


@pytest.mark.parametrize("start_cost", [0, 1e-9], ids=["workers", "first-task-in-driver"])
def test_rows_are_written_with_several_processes(
    tmp_path: Path, src: VolumetricLayer, start_cost: float
) -> None:
    in_memory, _ = run_case(tmp_path, "memory", src)
    two, rows = run_case(tmp_path, "two", src, num_procs=2, worker_start_cost_s=start_cost)
    assert rows > 0
    assert dst_files(two) == dst_files(in_memory)


CHILD = """
import sys, threading
from pathlib import Path
import torch
from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common import volumetric_apply_flow
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box, ChunkGrid
from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore

root, stop_at, bound = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if bound:
    volumetric_apply_flow.KEPT_ROWS_MAX_BYTES = bound
calls = 0

def fn(src: torch.Tensor) -> torch.Tensor:
    global calls
    calls += 1
    if calls == stop_at:  # the parent kills this process once it sees the file
        (root / "stopped").write_text("")
        threading.Event().wait()
    return src * 0.5 + src[:, :1, :1, :1] * 0.25

def layer(name):
    return build_ts_layer(
        f"file://{root / name}", info_type="image", info_data_type="uint8",
        info_num_channels=1, info_scales=[[4, 4, 40]], info_chunk_size=[16, 16, 1],
        info_dataset_size=[64, 64, 2], info_encoding="raw",
    )

flow = build_subchunkable_apply_flow(
    dst=layer("dst"), dst_resolution=[4, 4, 40],
    bbox=BBox3D.from_coords((0, 0, 0), (64, 64, 2), (4, 4, 40)), fn=fn,
    op_kwargs={"src": layer("src")},
    level_intermediaries_dirs=[f"file://{root / 'tmp'}"] * 2, verbose=False, **CFG,
)
summary = mazepa.execute(flow, checkpoint=str(root / "run.ckpt"), show_progress=False,
                         batch_size=1)
print("SUMMARY", summary.tasks_done, summary.tasks_skipped, calls)
"""


def _child(root: Path, stop_at: int, bound: int) -> subprocess.Popen[str]:
    script = root / "child.py"
    script.write_text(f"CFG = {CFG!r}\n" + textwrap.dedent(CHILD))
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(stop_at), str(bound)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("bound", [0, 2 * 20 * 20], ids=["kept", "evicting"])
def test_a_run_killed_midway_and_resumed_writes_the_same_bytes(
    tmp_path: Path, src: VolumetricLayer, bound: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def counting(src: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return src * 0.5 + src[:, :1, :1, :1] * 0.25

    reference = make_volume_at(str(tmp_path / "reference"), size=SIZE)
    mazepa.execute(
        build_subchunkable_apply_flow(
            dst=reference,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            fn=counting,
            op_kwargs={"src": src},
            level_intermediaries_dirs=[f"file://{tmp_path / 'ref-tmp'}"] * 2,
            verbose=False,
            **CFG,
        ),
        show_progress=False,
    )
    root = tmp_path / "run"
    root.mkdir()
    write_array(
        make_volume_at(str(root / "src"), size=SIZE), random_array((1, *SIZE), "uint8", seed=21)
    )
    # killed 3/4 of the way through the top-level work: the first z section is reduced, the
    # second half computed
    child = _child(root, len(calls) * 3 // 4, bound)
    deadline = time.monotonic() + 120  # a safety net: the point is chosen by the file
    while not (root / "stopped").exists():
        assert child.poll() is None, child.communicate()[0]
        assert time.monotonic() < deadline, "the run never reached its stopping point"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    recorded = CheckpointStore(root / "run.ckpt").load()
    assert recorded  # work finished before the kill is on record

    resumed = _child(root, 0, bound)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    done, skipped, fn_calls = map(int, output.split("SUMMARY")[1].split())
    assert done > 0
    assert skipped > 0 and 0 < fn_calls < len(calls)  # resumed, not run again from scratch
    assert dst_files(root / "dst") == dst_files(tmp_path / "reference")
    assert np.any(np.frombuffer(b"".join(dst_files(root / "dst").values()), np.uint8))
