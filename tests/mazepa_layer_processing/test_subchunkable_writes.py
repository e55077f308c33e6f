"""A flow writes exactly the ``dst`` chunks that its region meets, and nothing else.

* a sweep of random valid configurations (levels, crops, blends, reduction chunk sizes, gaps,
  ``expand_bbox_backend``, regions and dst chunk grids not aligned to anything): the chunk files
  written are those that the region (as the options expand it) meets, minus those wholly inside
  ``processing_gap`` s; every other file keeps its inode, mtime and bytes, and the voxels outside
  the region in the files written keep theirs; the summary's bytes to write are the bytes written,
  and its count of reduction tasks the tasks made;
* two flows whose regions share ``dst`` chunks, run at the same time in two processes, both keep
  their data (the shared chunks are merged, not read and written back whole); two processes
  merging halves of the same chunks in a tight loop never undo each other's writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zetta_utils import mazepa
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common import make_subchunkable_plan
from zetta_utils.mazepa_layer_processing.common.summary import estimate, reduction_count
from zetta_utils.mazepa_layer_processing.common.volumetric_apply_flow import plan_reducer

from .helpers import RES, example_dir, make_volume_at, random_array, read_array, write_array
from .test_subchunkable_properties import level_configs

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[2]
VOLUME = (48, 40, 4)
OLD_NS = 10**18  # 2001: files not written by the flow keep this mtime


def identity(src: torch.Tensor) -> torch.Tensor:
    return src


def snapshot(scale_dir: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each chunk file's inode, mtime and bytes."""
    result = {}
    for entry in os.scandir(scale_dir):
        if entry.is_file() and not entry.name.startswith("."):
            st_ = entry.stat()
            result[entry.name] = (st_.st_ino, st_.st_mtime_ns, Path(entry.path).read_bytes())
    return result


def age_files(scale_dir: Path) -> None:
    for entry in os.scandir(scale_dir):
        os.utime(entry.path, ns=(OLD_NS, OLD_NS))


def covered_voxels(lo: int, hi: int, first: int, chunk: int, gap: int) -> np.ndarray:
    """The coordinates in ``[lo, hi)`` that top-level chunks starting at ``first`` (stride
    ``chunk + gap``) cover: all but the gaps."""
    v = np.arange(lo, hi)
    return v[(v - first) % (chunk + gap) < chunk]


def expected_files(
    region: tuple[list[int], list[int]],
    first: list[int],
    top: Any,
    gap: Any,
    offset: Any,
    dchunk: Any,
) -> set[str]:
    """The names of the dst chunk files (clipped to the volume) that the covered part of
    ``region`` meets: computed voxel by voxel, independently of the flow's code."""
    per_dim = []
    for d in range(3):
        lo, hi = max(region[0][d], offset[d]), min(region[1][d], offset[d] + VOLUME[d])
        voxels = covered_voxels(lo, hi, first[d], top[d], gap[d])
        per_dim.append(sorted({int(k) for k in (voxels - offset[d]) // dchunk[d]}))
    names = set()
    for kx in per_dim[0]:
        for ky in per_dim[1]:
            for kz in per_dim[2]:
                start = [offset[d] + k * dchunk[d] for d, k in enumerate((kx, ky, kz))]
                stop = [min(s + dchunk[d], offset[d] + VOLUME[d]) for d, s in enumerate(start)]
                names.add(precomputed.chunk_name(start, stop))
    return names


@settings(
    max_examples=20,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_flow_writes_exactly_the_dst_chunks_of_its_region(
    tmp_path: Path, data: st.DataObject
) -> None:
    cfg = data.draw(level_configs(), label="levels")
    offset = data.draw(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 1)), label="dst offset"
    )
    dchunk = data.draw(
        st.tuples(st.sampled_from([3, 4, 5, 8]), st.sampled_from([3, 8]), st.sampled_from([1, 2])),
        label="dst chunk",
    )
    start = tuple(offset[d] + data.draw(st.integers(0, 9 if d < 2 else 1)) for d in range(3))
    size = (
        data.draw(st.integers(1, 24)),
        data.draw(st.integers(1, 20)),
        data.draw(st.integers(1, 2)),
    )
    stop = tuple(s + n for s, n in zip(start, size, strict=True))
    roi_crop = data.draw(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 1)), label="roi_crop_pad"
    )
    top = cfg["processing_chunk_sizes"][0]
    gap = (0, 0, 0)
    if not any(cfg["processing_blend_pads"][0]) and data.draw(st.booleans(), label="use gap"):
        gap = (2 * data.draw(st.integers(0, 2)), 2 * data.draw(st.integers(0, 2)), 0)
    # (the original refuses expand_bbox_backend with a gap: it would move where the gaps fall)
    snap = not any(gap) and data.draw(st.booleans(), label="expand_bbox_backend")
    dtype = data.draw(st.sampled_from(["uint8", "float32"]), label="dtype")
    max_red = data.draw(st.sampled_from([None, 2, 3]), label="reduction chunks")

    root = example_dir(tmp_path)
    src = make_volume_at(
        str(root / "src"), size=VOLUME, dtype=dtype, chunk=(8, 8, 1), offset=offset
    )
    dst = make_volume_at(str(root / "dst"), size=VOLUME, dtype=dtype, chunk=dchunk, offset=offset)
    source = random_array((1, *VOLUME), dtype, seed=1)
    before = random_array((1, *VOLUME), dtype, seed=2)
    write_array(src, source, offset)
    write_array(dst, before, offset)
    scale_dir = root / "dst" / "4_4_40"
    age_files(scale_dir)
    old = snapshot(scale_dir)

    kwargs: dict[str, Any] = dict(
        dst=dst,
        dst_resolution=RES,
        start_coord=start,
        end_coord=stop,
        coord_resolution=RES,
        fn=identity,
        op_kwargs={"src": src},
        level_intermediaries_dirs=[f"file://{root}/tmp"] * len(cfg["processing_chunk_sizes"]),
        roi_crop_pad=roi_crop,
        processing_gap=gap,
        expand_bbox_backend=snap,
        **cfg,
    )
    if max_red is not None:
        kwargs["max_reduction_chunk_size"] = [
            max(max_red * c, dc) for c, dc in zip(top, dchunk, strict=True)
        ]
    plan, _ = make_subchunkable_plan(**kwargs)
    mazepa.execute(build_subchunkable_apply_flow(verbose=False, **kwargs), show_progress=False)

    # the region as documented: snapped to dst chunks (within the volume), grown at its end to
    # whole top-level chunks (and gaps) once padded by roi_crop_pad
    lo, hi = list(start), list(stop)
    if snap:
        lo = [offset[d] + (lo[d] - offset[d]) // dchunk[d] * dchunk[d] for d in range(3)]
        hi = [
            min(offset[d] - (offset[d] - hi[d]) // dchunk[d] * dchunk[d], offset[d] + VOLUME[d])
            for d in range(3)
        ]
    for d in range(3):
        padded = hi[d] - lo[d] + 2 * roi_crop[d]
        stride = top[d] + gap[d]
        n = max(1, -(-(padded + gap[d]) // stride))
        hi[d] += n * stride - gap[d] - padded
    first = [lo[d] - roi_crop[d] for d in range(3)]
    expected = expected_files((lo, hi), first, top, gap, offset, dchunk)

    new = snapshot(scale_dir)
    assert set(new) == set(old)
    written = {name for name in new if new[name] != old[name]}
    assert written == expected, (sorted(written - expected), sorted(expected - written))
    assert all(new[name][1] != OLD_NS for name in written)
    assert estimate(plan)["write"] == sum(len(new[name][2]) for name in written)
    reducer = plan_reducer(plan)
    if reducer is not None and plan.reduction_chunk is not None:
        assert reduction_count(plan) == sum(1 for _ in reducer.chunks(plan.reduction_chunk))

    # voxels: the region's covered part is the source, everything else as it was
    out = read_array(dst, offset, [o + s for o, s in zip(offset, VOLUME, strict=True)])
    inside = np.zeros(VOLUME, dtype=bool)
    axes = []
    for d in range(3):
        clipped_lo, clipped_hi = max(lo[d], offset[d]), min(hi[d], offset[d] + VOLUME[d])
        axes.append(covered_voxels(clipped_lo, clipped_hi, first[d], top[d], gap[d]) - offset[d])
    inside[np.ix_(*axes)] = True
    np.testing.assert_array_equal(out[0][~inside], before[0][~inside])
    if dtype == "float32":
        np.testing.assert_allclose(out[0][inside], source[0][inside], rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(out[0][inside], source[0][inside])


NEIGHBOUR_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
    from tests.mazepa_layer_processing.helpers import RES, make_volume_at

    root, x0, x1, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    dst = make_volume_at(root + "/dst", size=(64, 64, 8), dtype="uint8", chunk=(16, 16, 1))
    src = make_volume_at(root + "/src", size=(64, 64, 8), dtype="uint8", chunk=(16, 16, 1))
    flow = build_subchunkable_apply_flow(
        dst=dst, dst_resolution=RES, start_coord=(x0, 0, 0), end_coord=(x1, 64, 8),
        coord_resolution=RES, fn=lambda src: torch.full_like(src, value),
        op_kwargs={"src": src}, processing_chunk_sizes=[[8, 16, 1]],
        processing_blend_pads=[[2, 4, 0]], expand_bbox_processing=False,
        level_intermediaries_dirs=[root + f"/tmp{int(value)}"], verbose=False,
    )
    Path(root, f"ready{int(value)}").touch()
    while not Path(root, "go").exists():
        time.sleep(0.005)
    mazepa.execute(flow, show_progress=False)
    """
)


@pytest.mark.slow
def test_flows_on_neighbouring_regions_at_the_same_time_both_keep_their_data(
    tmp_path: Path,
) -> None:
    """Regions x in [0, 24) and [24, 64) share the column of dst chunks x in [16, 32) (32 files):
    both flows merge their voxels into each of them at the same time, twice. (Whether two merges
    really overlap in time is up to the scheduler; the next test makes them collide for sure.)"""
    make_volume_at(str(tmp_path / "src"), size=(64, 64, 8), dtype="uint8", chunk=(16, 16, 1))
    dst = make_volume_at(str(tmp_path / "dst"), size=(64, 64, 8), dtype="uint8", chunk=(16, 16, 1))
    script = tmp_path / "flow.py"
    script.write_text(NEIGHBOUR_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(2):
        a, b = 10 + 2 * round_, 11 + 2 * round_
        for name in ("go", f"ready{a}", f"ready{b}"):
            (tmp_path / name).unlink(missing_ok=True)
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path), x0, x1, str(v)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for x0, x1, v in (("0", "24", a), ("24", "64", b))
        ]
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{v}").exists() for v in (a, b)):
            assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / "go").touch()
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        out = read_array(dst, (0, 0, 0), (64, 64, 8))
        assert (out[:, :24] == a).all(), (
            f"round {round_}: the left flow lost {(out[:, :24] != a).sum()} voxels"
        )
        assert (out[:, 24:] == b).all(), (
            f"round {round_}: the right flow lost {(out[:, 24:] != b).sum()} voxels"
        )


MERGE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from zetta_utils.geometry import Vec3D
    from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box
    from zetta_utils.mazepa_layer_processing.common.edge_writes import merge_into
    from tests.mazepa_layer_processing.helpers import RES, make_volume_at, read_array

    root, side, rounds, way = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if way == "locked":  # as for volumes TensorStore cannot write
        from zetta_utils.mazepa_layer_processing.common import edge_writes
        edge_writes._tensorstore = lambda backend, resolution: None
    dst = make_volume_at(root + "/dst", size=(32, 16, 2), dtype="uint8", chunk=(32, 16, 1))
    mine = Box((16 * side, 0, 0), (16 * side + 16, 16, 2))  # one half of each of the two chunks
    Path(root, f"ready{side}").touch()
    while not Path(root, "go").exists():
        time.sleep(0.001)
    last = 0
    for i in range(1, rounds + 1):
        # nobody else writes these voxels: they hold what this process wrote last
        seen = read_array(dst, mine.start, mine.stop)
        if not (seen == last).all():
            sys.exit(
                f"side {side}, round {i}: my voxels hold {np.unique(seen).tolist()}, "
                f"I wrote {last}"
            )
        last = i % 200 + 1
        merge_into(dst.backend, Vec3D(*RES), [(mine, np.full((1, 16, 16, 2), last, np.uint8))])
    """
)


@pytest.mark.parametrize("way", ["tensorstore", "locked"])
def test_merges_into_shared_chunks_from_two_processes_never_undo_each_other(
    tmp_path: Path, way: str
) -> None:
    """Two processes merge their halves of the same chunks in a tight loop; each checks before
    every write that its half still holds what it wrote last (an unguarded read-modify-write of
    the whole chunk by the other would put back an older value). Both ways of merging: through
    TensorStore's conditional writes, and read-modify-write under the scale folder's lock."""
    make_volume_at(str(tmp_path / "dst"), size=(32, 16, 2), dtype="uint8", chunk=(32, 16, 1))
    script = tmp_path / "merge.py"
    script.write_text(MERGE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), str(side), "300", way],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for side in (0, 1)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{side}").exists() for side in (0, 1)):
        assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def test_a_merge_into_a_volume_made_again_with_another_type_writes_the_new_type(
    tmp_path: Path,
) -> None:
    """A volume made again at the same path with another data type (same grid) gets the new
    type's bytes: the process's TensorStore handle on the old volume is not reused (it was, and
    the merge of uint16 voxels into it failed, as the flow sweep found)."""
    from zetta_utils.geometry import Vec3D
    from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box
    from zetta_utils.mazepa_layer_processing.common.edge_writes import merge_into

    path = str(tmp_path / "dst")
    box = Box((0, 0, 0), (8, 16, 1))  # half of the one chunk in x: a merge
    first = make_volume_at(path, size=(16, 16, 1), dtype="uint8", chunk=(16, 16, 1))
    merge_into(first.backend, Vec3D(*RES), [(box, np.full((1, 8, 16, 1), 7, np.uint8))])
    shutil.rmtree(path)
    again = make_volume_at(path, size=(16, 16, 1), dtype="uint16", chunk=(16, 16, 1))
    merge_into(again.backend, Vec3D(*RES), [(box, np.full((1, 8, 16, 1), 1000, np.uint16))])
    out = read_array(again, (0, 0, 0), (16, 16, 1))
    assert (out[:, :8] == 1000).all() and (out[:, 8:] == 0).all()
