"""build_subchunkable_apply_flow end to end on small local volumes: the guide's three examples
(through the builder), executors, stale data, idempotent tasks, intermediaries, ``defer``,
``max``, operations, ``skip_intermediaries``, routing and the summary."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import attrs
import cloudpickle
import numpy as np
import pytest
import torch

from zetta_utils import builder, mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa_layer_processing import (
    build_deferred_reduction_flow,
    build_postpad_subchunkable_apply_flow,
    build_subchunkable_apply_flow,
)
from zetta_utils.mazepa_layer_processing.common import (
    make_subchunkable_plan,
    reduction,
    volumetric_apply_flow,
)
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box
from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore
from zetta_utils.mazepa_layer_processing.common.volumetric_apply_flow import (
    ProcessTopChunks,
    plan_reducer,
)

from .conftest import MakeVolume
from .helpers import RES, random_array, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (32, 32, 2)
BLEND_CFG: dict[str, Any] = {
    "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
    "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
    "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    "processing_blend_modes": ["linear", "quadratic"],
}


def identity(src: torch.Tensor) -> torch.Tensor:
    return src


def shifted(src: torch.Tensor) -> torch.Tensor:
    # chunk-dependent: overlapping outputs differ, so blending and its weights matter
    return src * 0.5 + src[:, :1, :1, :1]


def zeros_like(src: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(src)


def source_volume(
    make_volume: MakeVolume, dtype: str = "uint8", name: str = "src", **kwargs: Any
) -> tuple[VolumetricLayer, np.ndarray]:
    src = make_volume(name, size=SIZE, dtype=dtype, **kwargs)
    data = random_array((src.backend.num_channels, *SIZE), dtype, seed=3)
    write_array(src, data)
    return src, data


def tree_digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def run(flow: mazepa.Flow, **kwargs: Any) -> None:
    mazepa.execute(flow, show_progress=False, **kwargs)


def make_flow(
    src: VolumetricLayer, dst: VolumetricLayer, tmp: Path, fn: Any = identity, **kwargs: Any
) -> mazepa.Flow:
    args: dict[str, Any] = {
        "dst": dst,
        "dst_resolution": RES,
        "bbox": BBox3D.from_coords((0, 0, 0), SIZE, RES),
        "fn": fn,
        "op_kwargs": {"src": src},
        "verbose": False,
    }
    args.update(BLEND_CFG)
    args["level_intermediaries_dirs"] = [f"file://{tmp}"] * len(args["processing_chunk_sizes"])
    args.update(kwargs)
    return build_subchunkable_apply_flow(**args)


# --- the guide's three examples, built from specs ------------------------------------------------


def guide_spec(src: str, dst: str, tmp: Path, example: int) -> dict[str, Any]:
    target: dict[str, Any] = {
        "@type": "build_subchunkable_apply_flow",
        "bbox": {
            "@type": "BBox3D.from_coords",
            "start_coord": [64, 0, 1],
            "end_coord": [64 + 128, 128, 1 + 2],
            "resolution": list(RES),
        },
        "dst_resolution": list(RES),
        "fn": {"@type": "lambda", "lambda_str": "lambda src: src"},
        "op_kwargs": {"src": {"@type": "build_cv_layer", "path": src}},
        "dst": {
            "@type": "build_cv_layer",
            "path": dst,
            "info_reference_path": src,
            "on_info_exists": "overwrite",
        },
        "verbose": False,
    }
    if example == 1:
        target.update(
            processing_chunk_sizes=[[64, 64, 1]],
            processing_crop_pads=[[0, 0, 0]],
            processing_blend_pads=[[0, 0, 0]],
            skip_intermediaries=True,
        )
    elif example == 2:
        target.update(
            processing_chunk_sizes=[[64, 64, 1], [16, 16, 1]],
            processing_crop_pads=[[0, 0, 0], [0, 0, 0]],
            processing_blend_pads=[[0, 0, 0], [0, 0, 0]],
            level_intermediaries_dirs=[f"file://{tmp}", f"file://{tmp}"],
        )
    else:
        # the guide's 1024 / 96 / 32 over 256 / 24 / 16, scaled by 1/16 (and rounded)
        target.update(
            processing_chunk_sizes=[[64, 64, 1], [16, 16, 1]],
            processing_crop_pads=[[6, 6, 0], [2, 2, 0]],
            processing_blend_pads=[[2, 2, 0], [1, 1, 0]],
            processing_blend_modes=["linear", "quadratic"],
            max_reduction_chunk_sizes=[128, 128, 1],
            level_intermediaries_dirs=[f"file://{tmp}", f"file://{tmp}"],
        )
    return {"@type": "mazepa.execute", "target": target, "show_progress": False}


@pytest.mark.parametrize("example", [1, 2, 3])
def test_the_guides_examples_copy_the_region_exactly(
    tmp_path: Path, make_volume: MakeVolume, example: int
) -> None:
    res = RES
    src = make_volume("src", size=(192, 128, 3), chunk=(64, 64, 1), offset=(0, 0, 0))
    data = random_array((1, 192, 128, 3), "uint8", seed=example)
    src[VolumetricIndex.from_coords((0, 0, 0), (192, 128, 3), res)] = torch.from_numpy(data)
    dst_path = f"file://{tmp_path}/dst"
    builder.build(guide_spec(f"file://{tmp_path}/src", dst_path, tmp_path / "tmp", example))
    dst = builder.build({"@type": "build_cv_layer", "path": dst_path})
    out = dst[VolumetricIndex.from_coords((0, 0, 0), (192, 128, 3), res)].numpy()
    expected = np.zeros_like(data)
    expected[:, 64:192, 0:128, 1:3] = data[:, 64:192, 0:128, 1:3]
    assert np.array_equal(out, expected)
    assert not (tmp_path / "tmp").exists() or list((tmp_path / "tmp").iterdir()) == []


# --- executors, idempotency, stale data ----------------------------------------------------------


def test_serial_and_two_processes_write_the_same_bytes(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src, _ = source_volume(make_volume, dtype="float32")
    outputs = []
    for procs in (1, 2):
        dst = make_volume(f"dst{procs}", size=SIZE, dtype="float32", chunk=(8, 8, 1))
        run(make_flow(src, dst, tmp_path / f"tmp{procs}", fn=shifted), num_procs=procs)
        outputs.append(tree_digest(tmp_path / f"dst{procs}"))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # blended, through intermediaries
        {
            "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
            "processing_crop_pads": 0,
            "processing_blend_pads": 0,
        },
        {
            "processing_chunk_sizes": [[16, 16, 1]],
            "processing_crop_pads": 0,
            "processing_blend_pads": 0,
            "processing_blend_modes": "linear",
            "skip_intermediaries": True,
            "level_intermediaries_dirs": None,
        },
    ],
    ids=["reduction", "direct", "skip_intermediaries"],
)
def test_all_zero_results_overwrite_stale_data(
    tmp_path: Path, make_volume: MakeVolume, kwargs: dict[str, Any]
) -> None:
    src, _ = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    write_array(dst, np.full((1, *SIZE), 9, dtype=np.uint8))
    run(make_flow(src, dst, tmp_path / "tmp", fn=zeros_like, **kwargs))
    out = read_array(dst, (0, 0, 0), SIZE)
    assert (out == 0).all()
    # no chunk is missing on disk: zeros were written, not skipped
    assert len(list((tmp_path / "dst").rglob("*-*_*-*_*-*"))) == 4 * 4 * 2


def test_tasks_are_idempotent(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, _ = source_volume(make_volume, dtype="float32")
    dst = make_volume("dst", size=SIZE, dtype="float32", chunk=(8, 8, 1))
    args = dict(BLEND_CFG)
    plan, _ = make_subchunkable_plan(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=shifted,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        keep_intermediaries=True,
        **args,
    )
    run(mazepa.Flow(__import__(
        "zetta_utils.mazepa_layer_processing.common.volumetric_apply_flow", fromlist=["x"]
    ).subchunkable_flow, (plan,)))
    before = tree_digest(tmp_path)
    keys = list(plan.top_grid.keys())
    ProcessTopChunks(plan)([keys[5], keys[5], keys[0]])
    reducer = plan_reducer(plan)
    assert reducer is not None and plan.reduction_chunk is not None
    boxes = list(reducer.chunks(plan.reduction_chunk))
    for aligned, write in boxes[:3] + boxes[:1]:
        reducer.reduce(aligned, write)
    assert tree_digest(tmp_path) == before


def test_intermediaries_are_deleted_or_kept(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    run(make_flow(src, dst, tmp_path / "tmp"))
    assert list((tmp_path / "tmp").iterdir()) == []
    run(make_flow(src, dst, tmp_path / "kept", keep_intermediaries=True))
    (run_dir,) = list((tmp_path / "kept").iterdir())
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["manifest.json", "pieces"]
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


def test_defer_leaves_the_reduction_to_a_later_flow(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src, _ = source_volume(make_volume, dtype="float32")
    reference = make_volume("reference", size=SIZE, dtype="float32", chunk=(8, 8, 1))
    run(make_flow(src, reference, tmp_path / "tmp", fn=shifted))
    dst = make_volume("dst", size=SIZE, dtype="float32", chunk=(8, 8, 1))
    write_array(dst, np.full((1, *SIZE), 5, dtype=np.float32))
    deferred = make_flow(
        src, dst, tmp_path / "deferred", fn=shifted, processing_blend_modes=["defer", "quadratic"]
    )
    run(deferred)
    assert (read_array(dst, (0, 0, 0), SIZE) == 5).all()
    (run_dir,) = list((tmp_path / "deferred").iterdir())
    run(build_deferred_reduction_flow(f"file://{run_dir}", dst, blend_mode="linear"))
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), read_array(reference, (0, 0, 0), SIZE))
    assert not run_dir.exists()


def test_max_mode_takes_the_largest_overlapping_output(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src = make_volume("src", size=(32, 8, 1), dtype="float32", chunk=(8, 8, 1))
    ramp = np.arange(32, dtype=np.float32)[None, :, None, None] * np.ones(
        (1, 32, 8, 1), dtype=np.float32
    )
    write_array(src, ramp)
    dst = make_volume("dst", size=(32, 8, 1), dtype="float32", chunk=(8, 8, 1))
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), (32, 8, 1), RES),
        fn=lambda src: src[:, :1, :1, :1].expand_as(src).clone(),  # each chunk: its first voxel
        op_kwargs={"src": src},
        processing_chunk_sizes=[[8, 8, 1]],
        processing_blend_pads=[[2, 0, 0]],
        processing_blend_modes="max",
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"],
        verbose=False,
    )
    run(flow)
    out = read_array(dst, (0, 0, 0), (32, 8, 1))[0, :, 0, 0]
    # chunk j reads from x = 8j - 2 (zeros before the volume): values 0, 6, 14, 22
    expected = [0] * 6 + [6] * 8 + [14] * 8 + [22] * 10
    assert out.tolist() == expected


# --- operations ----------------------------------------------------------------------------------


@attrs.frozen
class AddOne:
    """An operation object: reads ``src`` with ``crop_pad`` context, writes ``src + 1``."""

    crop_pad: Vec3D[int] = attrs.field(factory=lambda: Vec3D(0, 0, 0))

    def with_added_crop_pad(self, crop_pad: Vec3D[int]) -> AddOne:
        return AddOne(self.crop_pad + crop_pad)

    def get_input_resolution(self, dst_resolution: Vec3D[float]) -> Vec3D[float]:
        return dst_resolution

    def get_operation_name(self) -> str:
        return "add_one"

    def __call__(self, idx: VolumetricIndex, dst: Any, src: VolumetricLayer) -> None:
        data = src[idx.padded(self.crop_pad)] + 1
        c = self.crop_pad
        dst[idx] = data[
            :, c[0] : data.shape[1] - c[0], c[1] : data.shape[2] - c[1], c[2] : data.shape[3] - c[2]
        ]


def test_an_operation_object_gives_what_the_equivalent_function_gives(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src, _ = source_volume(make_volume, dtype="float32")
    by_op = make_volume("by_op", size=SIZE, dtype="float32", chunk=(8, 8, 1))
    by_fn = make_volume("by_fn", size=SIZE, dtype="float32", chunk=(8, 8, 1))
    run(make_flow(src, by_op, tmp_path / "tmp", fn=None, op=AddOne()))
    run(make_flow(src, by_fn, tmp_path / "tmp", fn=lambda src: src + 1))
    assert np.allclose(read_array(by_op, (0, 0, 0), SIZE), read_array(by_fn, (0, 0, 0), SIZE))


@attrs.frozen
class WriteMarker:
    """Writes by itself (no dst): a file per chunk."""

    folder: str

    def __call__(self, idx: VolumetricIndex, dst: Any) -> None:
        assert dst is None
        Path(self.folder, "_".join(map(str, idx.start))).write_text(str(tuple(idx.shape)))


def test_dst_may_be_none_for_an_op_that_writes_by_itself(tmp_path: Path) -> None:
    flow = build_subchunkable_apply_flow(
        dst=None,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), (32, 16, 1), RES),
        op=WriteMarker(str(tmp_path)),
        processing_chunk_sizes=[[16, 16, 1], [8, 8, 1]],
        skip_intermediaries=True,
        verbose=False,
    )
    run(flow)
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{x}_{y}_0" for x in range(0, 32, 8) for y in (0, 8)
    )


def test_skip_intermediaries_with_a_bottom_crop_writes_chunks_directly(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    flow = make_flow(
        src,
        dst,
        tmp_path,
        processing_chunk_sizes=[[32, 32, 2], [8, 8, 1]],
        processing_crop_pads=[[0, 0, 0], [3, 3, 1]],
        processing_blend_pads=0,
        skip_intermediaries=True,
        level_intermediaries_dirs=None,
    )
    run(flow)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


def test_multichannel_int_data_through_blending(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, data = source_volume(make_volume, dtype="uint16", channels=3)
    dst = make_volume(
        "dst", size=SIZE, dtype="uint16", chunk=(8, 8, 2), channels=3, offset=(0, 0, 0)
    )
    run(make_flow(src, dst, tmp_path / "tmp"))
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled loops", "numpy"])
def test_nested_levels_with_equal_padded_shapes_blend_exactly(
    tmp_path: Path, make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    # Levels 0 and 1 both have 4 x 4 x 4 padded outputs: each level's blend needs its own float
    # buffer while the level above is still blending into its own.
    if not compiled:
        monkeypatch.setattr(reduction, "KERNELS", None)
    elif reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    src, data = source_volume(make_volume, dtype="uint16")
    dst = make_volume("dst", size=SIZE, dtype="uint16", chunk=(4, 3, 1), offset=(0, 0, 0))
    run(
        make_flow(
            src,
            dst,
            tmp_path / "tmp",
            bbox=BBox3D.from_coords((0, 0, 0), (8, 8, 2), RES),
            processing_chunk_sizes=[[2, 2, 2], [2, 2, 2], [2, 2, 1]],
            processing_crop_pads=[[0, 0, 0]] * 3,
            processing_blend_pads=[[1, 1, 1], [1, 1, 1], [0, 1, 0]],
            processing_blend_modes=["linear"] * 3,
            level_intermediaries_dirs=[f"file://{tmp_path / 'tmp'}"] * 3,
        )
    )
    assert np.array_equal(read_array(dst, (0, 0, 0), (8, 8, 2)), data[:, :8, :8, :2])


# --- routing, caching, summary -------------------------------------------------------------------


def all_tasks(flow: mazepa.Flow) -> list[mazepa.Task[Any]]:
    """The tasks a flow yields, its sub-flows' included, in order."""
    tasks: list[mazepa.Task[Any]] = []
    for item in flow.iter_items():
        for x in item if isinstance(item, list) else [item]:
            if isinstance(x, mazepa.Flow):
                tasks += all_tasks(x)
            elif isinstance(x, mazepa.Task):
                tasks.append(x)
    return tasks


def test_worker_types_names_and_task_stacks(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, _ = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    flow = make_flow(
        src,
        dst,
        tmp_path / "tmp",
        op_worker_type="gpu",
        reduction_worker_type="cpu",
        task_stack_size=3,
        task_name="copy",
    )
    tasks = all_tasks(flow)
    top = [t for t in tasks if t.operation_name == "copy"]
    reductions = [t for t in tasks if t.operation_name == "copy reduction"]
    assert {t.worker_type for t in top} == {"gpu"} and {t.worker_type for t in reductions} == {
        "cpu"
    }
    # two levels: as in the original, a task holds one top-level chunk; task_stack_size stacks
    # the bottom-level chunks inside it (see test_subchunkable_arguments)
    assert [len(t.args[0]) for t in top] == [1] * 8
    assert len(reductions) == 8 and len({t.id for t in tasks}) == len(tasks)


def test_a_serial_run_keeps_few_intermediaries(
    tmp_path: Path, make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each slice of top-level chunks is reduced, and its pieces recycled, while the next slices
    # are computed: the pieces on disk stay within about two slices (16 chunks each) however many
    # slices the region has, instead of the executor's and scheduler's look-ahead.
    size = (32, 32, 6)
    src = make_volume("src", size=size, chunk=(8, 8, 1))
    data = random_array((1, *size), "uint8", seed=5)
    write_array(src, data)
    dst = make_volume("dst", size=size, chunk=(8, 8, 1))
    live: list[int] = []
    original = PieceStore._write_row

    def counting(self: PieceStore, key: Any, row: np.ndarray) -> None:
        original(self, key, row)
        folder = Path(self._local_file(key)).parent
        live.append(sum(1 for p in folder.iterdir() if p.is_file() and not p.name.endswith(".tmp")))

    monkeypatch.setattr(PieceStore, "_write_row", counting)
    # (an executor given: not a run wholly in one process; with section tasks it writes no row)
    monkeypatch.setenv(volumetric_apply_flow.SECTION_TASKS_ENV, "0")
    flow = make_flow(
        src,
        dst,
        tmp_path / "tmp",
        bbox=BBox3D.from_coords((0, 0, 0), size, RES),
        processing_chunk_sizes=[[8, 8, 1], [4, 4, 1]],
        processing_crop_pads=[[2, 2, 0], [1, 1, 0]],
        processing_blend_pads=[[2, 2, 0], [1, 1, 0]],
        max_reduction_chunk_size=[16, 16, 1],
    )
    # Tasks of 25 ms (declared, not measured): the serial executor takes them one by one.
    run(flow, executor=mazepa.SerialExecutor(duration_of=lambda outcome: 0.025))
    assert len(live) == 16 * 6
    assert max(live) <= 32, live
    np.testing.assert_array_equal(read_array(dst, (0, 0, 0), size), data)


@pytest.mark.parametrize("depth", [2, 1], ids=["waves along z", "waves along y, blended across"])
def test_reductions_start_as_soon_as_what_they_read_is_computed(
    tmp_path: Path, make_volume: MakeVolume, depth: int
) -> None:
    src, _ = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    region = BBox3D.from_coords((0, 0, 0), (32, 32, depth), RES)
    flow = make_flow(
        src,
        dst,
        tmp_path / "tmp",
        task_stack_size=3,
        bbox=region,
        processing_chunk_sizes=[[8, 8, 1], [4, 4, 1]],
        processing_crop_pads=[[2, 2, 0], [1, 1, 0]],
        processing_blend_pads=[[2, 2, 0], [1, 1, 0]],
        max_reduction_chunk_size=[8, 8, 1],
    )
    order: list[Any] = []  # top-level tasks and reduction sub-flows, as the flow yields them
    for item in flow.iter_items():
        order += item if isinstance(item, list) else [item]
    top = [x for x in order if isinstance(x, mazepa.Task)]
    waves = [x for x in order if isinstance(x, mazepa.Flow) and x.name == "reduction_wave"]
    releases = [x for x in order if isinstance(x, mazepa.Flow) and x.name == "release_pieces"]
    assert len(waves) + len(releases) == len([x for x in order if isinstance(x, mazepa.Flow)])
    # top-level chunks 4 x 4 x depth, in slices along z (depth 2), else along y: reduction
    # chunks read the slices they meet and, in y, their neighbours' bands
    assert len(waves) == (2 if depth == 2 else 3)
    # the first slice's reductions come before the second slice's tasks end (not after them all)
    assert order.index(waves[0]) < order.index(top[-1])
    reduced = []
    grid = releases[0].args[0].grid  # the pieces' grid: the top-level chunk grid
    readers: dict[tuple[int, ...], set[str]] = {}  # top-level key -> reduction sub-flows reading it
    for wave in waves:
        items = list(wave.iter_items())
        dependency, chunks = items[0], [t for batch in items[1:] for t in batch]
        assert isinstance(dependency, mazepa.Dependency)
        after = set(dependency.target_ids())
        for task in chunks:
            ((_, write),) = task.args[0]
            reduced.append(write)
            # every top-level task computing a chunk whose padded output meets the box is waited for
            for t in top:
                if any(
                    not grid.padded(tuple(k)).intersection(Box.of(*write)).is_empty()
                    for k in t.args[0]
                ):
                    assert t.id in after
            for key in grid.keys():
                if not grid.padded(key).intersection(Box.of(*write)).is_empty():
                    readers.setdefault(key, set()).add(wave.id)
    # every chunk's pieces are deleted once, after (and only after) every sub-flow reading them
    released: list[tuple[int, ...]] = []
    for release in releases:
        _, keys, after_flows = release.args
        assert all(order.index(f) < order.index(release) for f in after_flows)
        waited = {f.id for f in after_flows}
        for key in keys:
            assert readers[tuple(key)] <= waited
        released += [tuple(k) for k in keys]
    assert sorted(released) == sorted(grid.keys())
    # the reduction chunks tile the region, each once
    covered = np.zeros((32, 32, depth), dtype=int)
    for w in reduced:
        covered[Box.of(*w).slices_in(Box((0, 0, 0), (32, 32, depth)))[1:]] += 1
    assert (covered == 1).all()


class CountingReads:
    """Counts reads of the wrapped layer's backend."""

    def __init__(self, layer: VolumetricLayer):
        from zetta_utils.mazepa_layer_processing.common.layer_wrappers import _DelegatingBackend

        counter = self

        class Backend(_DelegatingBackend):
            def read(self, idx: VolumetricIndex) -> torch.Tensor:
                counter.count += 1
                return super().read(idx)

        self.count = 0
        self.layer = attrs.evolve(layer, backend=Backend(layer.backend))


@pytest.mark.parametrize("level, reads", [(1, 4), (0, 4 * 9)])
def test_allow_cache_up_to_level_reads_inputs_once_per_chunk_of_that_level(
    tmp_path: Path, make_volume: MakeVolume, level: int, reads: int
) -> None:
    src, data = source_volume(make_volume)
    counting = CountingReads(src)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    flow = make_flow(
        counting.layer,
        dst,
        tmp_path / "tmp",
        bbox=BBox3D.from_coords((0, 0, 0), (32, 32, 1), RES),
        allow_cache_up_to_level=level,
    )
    run(flow)
    assert counting.count == reads  # 4 top chunks; 3 x 3 bottom chunks each
    assert np.array_equal(read_array(dst, (0, 0, 0), (32, 32, 1)), data[:, :, :, :1])


def test_summary_table_and_neuroglancer_link(
    tmp_path: Path, make_volume: MakeVolume, capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    make_flow(src, dst, tmp_path / "tmp", verbose=None, print_summary=True, generate_ng_link=True)
    out = capsys.readouterr().out
    for text in (
        "SubchunkableApplyFlow",
        "levels",
        "(16, 16, 1)",
        "(8, 8, 1)",
        "linear",
        "quadratic",
        "intermediaries",
        "neuroglancer-demo",
    ):
        assert text in out
    assert not (tmp_path / "tmp").exists()  # building creates nothing


def test_postpad_sizes(tmp_path: Path, make_volume: MakeVolume) -> None:
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    flow = build_postpad_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        processing_input_sizes=[[24, 24, 1], [12, 12, 1]],
        processing_crop=[1, 1, 0],
        processing_blend=[2, 2, 0],
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=identity,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        verbose=False,
    )
    run(flow)
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


@pytest.mark.parametrize(
    "kwargs, region",
    [
        ({"expand_bbox_backend": True}, ((0, 0, 0), (16, 16, 1))),
        (
            {
                "shrink_processing_chunk": True,
                "expand_bbox_processing": False,
                "processing_chunk_sizes": [[64, 64, 1], [8, 8, 1]],
                "processing_blend_pads": 0,
                "processing_crop_pads": 0,
            },
            ((5, 3, 0), (13, 11, 1)),
        ),
        (
            {"auto_divisibility": True, "processing_chunk_sizes": [[30, 30, 1], [8, 8, 1]]},
            ((5, 3, 0), (29, 27, 1)),
        ),
        (
            {
                "expand_bbox_resolution": True,
                "bbox": BBox3D.from_coords((5.5, 3, 0), (12.5, 11, 1), RES),
            },
            ((5, 3, 0), (21, 19, 1)),
        ),
        ({"auto_bbox": True}, ((0, 0, 0), SIZE)),
    ],
    ids=[
        "expand_bbox_backend",
        "shrink_processing_chunk",
        "auto_divisibility",
        "expand_bbox_resolution",
        "auto_bbox",
    ],
)
def test_region_options(
    tmp_path: Path, make_volume: MakeVolume, kwargs: dict[str, Any], region: tuple[Any, Any]
) -> None:
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    start, stop = region
    if "bbox" not in kwargs and not kwargs.get("auto_bbox"):
        kwargs = {**kwargs, "bbox": BBox3D.from_coords((5, 3, 0), (13, 11, 1), RES)}
    run(make_flow(src, dst, tmp_path / "tmp", **({"bbox": None} | kwargs)))
    out = read_array(dst, (0, 0, 0), SIZE)
    expected = np.zeros_like(data)
    sl = (slice(None), *(slice(a, b) for a, b in zip(start, stop)))
    expected[sl] = data[sl]
    assert np.array_equal(out, expected)


def test_summary_estimates_a_workers_memory(
    tmp_path: Path, make_volume: MakeVolume, capsys: pytest.CaptureFixture[str]
) -> None:
    from zetta_utils.mazepa_layer_processing.common.summary import estimate

    src, _ = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    plan, _ = make_subchunkable_plan(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=identity,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{tmp_path}"] * 2,
        **BLEND_CFG,
    )
    # uint8: the top chunk's input (16 + 2 * (2 + 2 + 2 + 1))^2 = 30 x 30, its padded output
    # 20 x 20 with float32 buffers for the bands the level below blends in it (the 400 voxels but
    # the 3 x 3 interiors of 4 x 4), one bottom output 12 x 12, and the 3 x 3 storage chunks of
    # 16 x 16 that the input meets (read whole); and the rows kept for the reductions from task
    # to task: the 3 x 3 padded top-level outputs of 20 x 20 that a reduction reads at most,
    # twice (a run in one process keeps them in memory only: those of the next wave too)
    assert (
        estimate(plan)["memory"]
        == 30 * 30 + 20 * 20 + (400 - 9 * 16) * 4 + 12 * 12 + 9 * 16 * 16 + 2 * 9 * 20 * 20
    )
    make_flow(src, dst, tmp_path / "tmp", verbose=True)
    assert "worker memory" in capsys.readouterr().out


def test_prefetch_cache_holds_the_storage_chunks_of_the_regions_reused() -> None:
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import (
        PREFETCH_CACHE_BYTES,
        prefetch_cache_bytes,
    )

    mib = 1 << 20
    offset, chunk = (10, 0, 0), (64, 64, 8)
    # x 10-138 is 2 chunks, 9-138 is 3 (one voxel into the chunk before), y 0-100 is 2, z 0-8 is 1
    assert prefetch_cache_bytes([Box((10, 0, 0), (138, 100, 8))], offset, chunk, mib) == 8 * mib
    row = Box((9, 0, 0), (1034, 100, 8))  # 17 chunks along x (-54 to 1034), 2 along y
    region = Box((9, 0, 0), (138, 100, 8))  # 3 x 2
    assert prefetch_cache_bytes([row, region], offset, chunk, mib) == 40 * mib  # 40 chunks of 1 MiB
    assert prefetch_cache_bytes([row, region], offset, chunk, 3 * mib) == 120 * mib
    assert prefetch_cache_bytes([row, region], offset, chunk, 4 * mib) == PREFETCH_CACHE_BYTES
    assert prefetch_cache_bytes([Box((0, 0, 0), (0, 0, 0))], offset, chunk, mib) == 8 * mib


def test_a_runs_cached_prefetches_ask_one_size_the_most_any_chunk_needs() -> None:
    import torch

    from zetta_utils.geometry import Vec3D
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import (
        _most_cache_bytes,
        _Source,
    )

    mib = 1 << 20
    # flow (c) over 4096 x 4096 of 1024 x 1024 x 1 storage chunks: the padded reads (1360 wide)
    # meet 2 x 2 storage chunks at the corners and 3 x 3 inside; a row (4432 wide, the whole
    # dataset) 4 x 2 at the edges and 4 x 3 inside. Every prefetch asks what an inside one needs
    # (12 + 9 chunks: 24 MiB), so that no larger size asked later replaces the reader and drops
    # its cache (a run asked 16 MiB for the first row, then 24)
    source = _Source(
        stored=Vec3D(4, 4, 40),
        offset=(0, 0, 0),
        bounds=Box((0, 0, 0), (4096, 4096, 8)),
        chunk=(1024, 1024, 1),
        chunk_bytes=mib,
        num_channels=1,
        dtype=torch.uint8,
        into_buffer=True,
        reads_chunk_files=False,
    )
    assert _most_cache_bytes(source, [(4432, 1360, 1), (1360, 1360, 1)]) == 24 * mib
    assert _most_cache_bytes(source, [(4432, 1024, 1), (1024, 1024, 1)]) == 16 * mib  # 8 + 4
    assert _most_cache_bytes(source, [(100000, 100000, 1)]) == 16 * mib  # (the dataset's 16)


@pytest.mark.parametrize("raw_reads", ["1", "0"])
def test_prefetches_read_chunk_files_or_through_a_cache_sized_for_a_row_of_chunks(
    tmp_path: Path, make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch, raw_reads: str
) -> None:
    from zetta_utils.mazepa_layer_processing.common import layer_wrappers

    monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", raw_reads)
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    layer_wrappers._CACHED_READERS.clear()
    run(make_flow(src, dst, tmp_path / "tmp"))
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)
    readers = [r for rs in layer_wrappers._CACHED_READERS.values() for r in rs]
    if raw_reads == "1":
        # each prefetch read only the rows of the (raw, local) chunk files it covers: no cache
        assert not readers
    else:
        # the padded regions of this small volume share storage chunks: they went through a
        # cache of one step (8 MiB), not the largest one
        assert readers and all(r.cache_bytes_limit == 8 << 20 for r in readers)


@pytest.mark.parametrize("cache", [True, False])
def test_prefetches_of_chunk_files_keep_whole_chunks_for_inputs_the_run_only_reads(
    tmp_path: Path, make_volume: MakeVolume, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    from zetta_utils.geometry import Vec3D
    from zetta_utils.layer.volumetric import raw_chunks
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import prefetch_layer_voxels

    monkeypatch.setattr(raw_chunks, "_CHUNK_CACHE", [cache])
    raw_chunks.clear_chunk_cache()
    src, data = source_volume(make_volume)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    run(make_flow(src, dst, tmp_path / "tmp"))
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)
    stats = raw_chunks.chunk_cache_stats()
    if cache:
        # the padded regions share storage chunks: each mapped once, its parts copied from it,
        # in a cache sized as the prefetch cache (one step of 8 MiB for this small volume)
        assert stats.scope is not None and stats.limit == 8 << 20
        assert stats.misses > 0 and stats.hits > stats.misses
    else:
        assert stats.chunks == stats.hits == stats.misses == 0
    # a prefetch without a scope (a volume the run may write) caches nothing
    raw_chunks.clear_chunk_cache()
    box = Box((-3, 5, 0), (20, 40, 2))
    layer = prefetch_layer_voxels(src, Vec3D(*RES), box, Box((-3, 5, 0), (32, 40, 2)))
    assert layer.backend.data is not None  # type: ignore[attr-defined]
    assert raw_chunks.chunk_cache_stats().chunks == 0
    raw_chunks.clear_chunk_cache()


def test_prefetches_of_a_volume_share_one_cached_reader_per_info(make_volume: MakeVolume) -> None:
    import pickle

    from zetta_utils.layer.volumetric.cloudvol import CVBackend
    from zetta_utils.layer.volumetric.tensorstore import TSBackend
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import (
        PREFETCH_CACHE_BYTES,
        chunk_cached,
    )

    backend = make_volume().backend
    assert isinstance(backend, TSBackend)
    reader = chunk_cached(backend)
    assert isinstance(reader, TSBackend) and reader.cache_bytes_limit == PREFETCH_CACHE_BYTES
    # the same volume as a worker unpickles it with each task: the same reader, so its cache
    assert chunk_cached(pickle.loads(pickle.dumps(backend))) is reader
    info = backend.info
    info["scales"][0]["voxel_offset"] = [1, 1, 1]  # the volume's info changed since
    other = chunk_cached(TSBackend(backend.path, info=info))
    assert other is not reader and other.has_same_info(TSBackend(backend.path, info=info))
    # a cache of another size is another reader
    small = chunk_cached(backend, 8 << 20)
    assert small is not reader and small.cache_bytes_limit == 8 << 20  # type: ignore[attr-defined]
    assert chunk_cached(backend, 8 << 20) is small
    # backends with their own cache, and other backends, read as they are
    own = TSBackend(backend.path, cache_bytes_limit=1 << 20)
    assert chunk_cached(own) is own
    cv = CVBackend(backend.path)
    assert chunk_cached(cv) is cv


def test_prefetched_voxels_read_like_the_layer(make_volume: MakeVolume) -> None:
    from zetta_utils.geometry import Vec3D
    from zetta_utils.mazepa_layer_processing.common.layer_wrappers import (
        PrefetchedBackend,
        prefetch_layer_voxels,
    )

    src, data = source_volume(make_volume)
    box = Box((-3, 5, 0), (20, 40, 2))  # past the dataset on two sides: zeros there
    expected = np.zeros((1, 23, 35, 2), data.dtype)
    expected[:, 3:, :27] = data[:, :20, 5:32]
    # at the stored resolution, and at one equal to it up to float noise
    for resolution in (Vec3D(*RES), Vec3D(RES[0] * (1 + 1e-12), RES[1], RES[2])):
        layer = prefetch_layer_voxels(src, resolution, box, Box((-3, 5, 0), (32, 40, 2)))
        assert isinstance(layer.backend, PrefetchedBackend) and layer.backend.data is not None
        assert layer.backend.box == box
        assert np.array_equal(layer.backend.data.numpy(), expected)
    # a layer with index processors reads as it is
    procs = attrs.evolve(src, index_procs=(lambda idx: idx,))
    assert prefetch_layer_voxels(procs, Vec3D(*RES), box) is procs
