"""What the per-chunk read and write path remembers between calls (issue 24, flow (a)), and
that none of it is served stale: a backend's scale geometry and resolution matches (its info
never changes), TensorStore handles (kept per backend until the registry drops one, or the
process forks), the registries' notes of which volumes hold caches to drop on a write, and the
fast paths of layers without processors, of boxes and of indices. Errors stay errors on every
call, not only the first."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex, precomputed
from zetta_utils.layer.volumetric.cloudvol import CVBackend
from zetta_utils.layer.volumetric.cloudvol import backend as cv_backend_module
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend, build_ts_layer
from zetta_utils.layer.volumetric.tensorstore import backend as ts_backend_module

from .helpers import random_data, small_info

FINE, COARSE = Vec3D(8, 8, 40), Vec3D(16, 16, 40)
LO, HI = (10, 20, 3), (106, 100, 9)  # small_info's dataset at FINE


def two_scale_volume(tmp_path: Path, name: str = "v") -> str:
    path = str(tmp_path / name)
    write_info(path, small_info(resolutions=((8, 8, 40), (16, 16, 40))))
    return path


# --- scale geometry and resolution matches, per backend -------------------------------------------
def test_reads_and_writes_alternating_scales_each_get_their_own(tmp_path: Path) -> None:
    backend = TSBackend(two_scale_volume(tmp_path))
    fine = random_data("uint8", (1, 96, 80, 6), seed=1)
    coarse = random_data("uint8", (1, 96, 80, 6), seed=2)  # (small_info: same voxel bounds)
    fine_idx = VolumetricIndex.from_coords(LO, HI, FINE)
    coarse_idx = VolumetricIndex.from_coords(LO, HI, COARSE)
    for _ in range(2):
        backend.write(fine_idx, fine)
        backend.write(coarse_idx, coarse)
        assert torch.equal(backend.read(fine_idx), fine)
        assert torch.equal(backend.read(coarse_idx), coarse)
    # the same resolution given as an equal object, a tuple or a list reads the same scale
    for res in (Vec3D(8.0, 8.0, 40.0), (8, 8, 40), [8, 8, 40], Vec3D(8 + 1e-12, 8, 40)):
        assert backend.find_resolution(res) == FINE  # type: ignore[arg-type]
        assert backend._geometry(res).scale["key"] == "8_8_40"  # type: ignore[arg-type]
        idx = VolumetricIndex.from_coords(LO, HI, res)
        assert torch.equal(build_ts_layer(backend.path)[idx], fine)


def test_an_unstored_resolution_is_refused_on_every_call(tmp_path: Path) -> None:
    path = two_scale_volume(tmp_path)
    layer = build_ts_layer(path)
    backend = layer.backend
    idx = VolumetricIndex.from_coords((0, 0, 0), (4, 4, 1), Vec3D(4, 4, 40))
    for _ in range(3):  # a miss is remembered as a miss, never as some scale
        assert backend.find_resolution(Vec3D(4, 4, 40)) is None
        with pytest.raises(ValueError, match=r"cannot read .* at resolution \(4, 4, 40\)"):
            layer[idx]
        with pytest.raises(ValueError, match=r"cannot write .* at resolution \(4, 4, 40\)"):
            layer[idx] = torch.zeros((1, 4, 4, 1), dtype=torch.uint8)
        with pytest.raises(ValueError, match=r"resolution \(4, 4, 40\) is not stored"):
            backend.read(idx)


def test_a_new_info_is_seen_by_a_backend_built_on_it(tmp_path: Path) -> None:
    path = two_scale_volume(tmp_path)
    old = TSBackend(path)
    old.read(VolumetricIndex.from_coords(LO, HI, FINE))  # geometry and handle kept
    info = small_info(resolutions=((8, 8, 40), (16, 16, 40)), size=(128, 80, 6))
    write_info(path, info)
    new = TSBackend(path)
    data = random_data("uint8", (1, 128, 80, 6), seed=3)
    whole = VolumetricIndex.from_coords(LO, (138, 100, 9), FINE)
    new.write(whole, data)
    assert torch.equal(new.read(whole), data)
    # the old backend keeps the bounds of the info it was built on
    assert torch.equal(old.read(VolumetricIndex.from_coords(LO, HI, FINE)), data[:, :96])


@pytest.mark.parametrize("kind", ["ts", "cv"])
def test_write_errors_are_raised_on_every_call(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    backend: Any = TSBackend(path) if kind == "ts" else CVBackend(path)
    zeros = torch.zeros((1, 32, 32, 2), dtype=torch.uint8)
    good = VolumetricIndex.from_coords(LO, (42, 52, 5), FINE)
    cases: list[tuple[VolumetricIndex, Any, type[Exception], str]] = [
        (VolumetricIndex.from_coords((11, 20, 3), (43, 52, 5), FINE), zeros, ValueError,
         "not chunk-aligned in x"),
        (VolumetricIndex.from_coords((11, 20, 3), (42, 52, 5), FINE),
         torch.zeros((1, 31, 32, 2), dtype=torch.uint8), ValueError, "not chunk-aligned in x"),
        (VolumetricIndex.from_coords((10, 21, 3), (42, 52, 5), FINE),
         torch.zeros((1, 32, 31, 2), dtype=torch.uint8), ValueError, "not chunk-aligned in y"),
        (VolumetricIndex.from_coords((10, 20, 4), (42, 52, 5), FINE),
         torch.zeros((1, 32, 32, 1), dtype=torch.uint8), ValueError, "not chunk-aligned in z"),
        (VolumetricIndex.from_coords((10, 20, 3), (42, 52, 4), FINE),
         torch.zeros((1, 32, 32, 1), dtype=torch.uint8), ValueError, "not chunk-aligned in z"),
        (VolumetricIndex.from_coords((106, 20, 3), (138, 52, 5), FINE), zeros, ValueError,
         "lies outside the bounds"),
        (good, torch.zeros((1, 32, 32, 1), dtype=torch.uint8), ValueError,
         r"expected shape \(1, 32, 32, 2\)"),
        (good, torch.zeros((2, 32, 32, 2), dtype=torch.uint8), ValueError,
         r"expected shape \(1, 32, 32, 2\)"),
        (good, torch.full((1, 32, 32, 2), 300, dtype=torch.int64), ValueError,
         "outside the range of the stored uint8"),
        (good, np.zeros((1, 32, 32, 2), dtype=np.uint8), TypeError,
         "expected a torch.Tensor"),
    ]  # fmt: skip
    for idx, data, error, message in cases:
        backend.write(good, zeros + 1)  # a good write before each bad one: nothing is stale
        for _ in range(2):
            with pytest.raises(error, match=message):
                backend.write(idx, data)
    # values that fit are converted (int64 -> uint8), as before
    backend.write(good, torch.full((1, 32, 32, 2), 200, dtype=torch.int64))
    assert bool((backend.read(good) == 200).all())


def test_a_locked_scale_is_refused_on_every_call(tmp_path: Path) -> None:
    info = small_info()
    info["scales"][0]["locked"] = True
    path = str(tmp_path / "locked")
    write_info(path, info)
    backend = TSBackend(path)
    for _ in range(2):
        with pytest.raises(PermissionError, match="write-locked"):
            backend.write(
                VolumetricIndex.from_coords(LO, (42, 52, 5), FINE),
                torch.zeros((1, 32, 32, 2), dtype=torch.uint8),
            )


@pytest.mark.parametrize(
    ("data_type", "torch_dtype"),
    [
        ("uint8", torch.uint8),
        ("int16", torch.int16),
        ("float32", torch.float32),
        ("uint16", torch.int32),  # widened, as to_torch does
        ("uint32", torch.int64),
        ("uint64", torch.int64),
    ],
)
def test_reads_give_the_tensors_to_torch_gives(
    tmp_path: Path, data_type: str, torch_dtype: torch.dtype
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type=data_type))
    backend = TSBackend(path)
    data = random_data(data_type, (1, 96, 80, 6), seed=4)
    idx = VolumetricIndex.from_coords(LO, HI, FINE)
    backend.write(idx, data)
    got = backend.read(idx)
    assert got.dtype == torch_dtype
    np.testing.assert_array_equal(got.numpy(), data.numpy().astype(got.numpy().dtype))


# --- TensorStore handles, kept per backend --------------------------------------------------------
def test_a_kept_handle_is_dropped_with_the_registrys(tmp_path: Path) -> None:
    path = two_scale_volume(tmp_path)
    backend = TSBackend(path)
    scale = backend._scale(FINE)
    first = backend._store(scale)
    assert backend._store(scale) is first  # kept
    TSBackend(path).clear_cache()  # drops the volume's handles in this process
    second = backend._store(scale)
    assert second is not first
    assert backend._store(scale) is second
    # a new info written by this process drops them too
    write_info(path, small_info(resolutions=((8, 8, 40), (16, 16, 40)), size=(128, 80, 6)))
    with pytest.raises(ValueError, match="changed since this layer was built"):
        backend._store(scale)


def test_a_forked_child_opens_its_own_handles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (TensorStore's threads do not survive a real fork: what a child runs after one, instead)
    path = two_scale_volume(tmp_path)
    backend = TSBackend(path)
    data = random_data("uint8", (1, 96, 80, 6), seed=5)
    idx = VolumetricIndex.from_coords(LO, HI, FINE)
    backend.write(idx, data)
    scale = backend._scale(FINE)
    parents = backend._store(scale)
    registry = ts_backend_module._REGISTRY
    monkeypatch.setattr(registry, "pid", -1)  # the registry's handles are another process's
    ts_backend_module._after_fork_in_child()
    own = backend._store(scale)
    assert own is not parents and backend._store(scale) is own
    assert torch.equal(backend.read(idx), data)


def test_a_backend_pickles_without_its_handles(tmp_path: Path) -> None:
    import pickle

    path = two_scale_volume(tmp_path)
    backend = TSBackend(path)
    backend.read(VolumetricIndex.from_coords(LO, HI, FINE))
    assert backend._stores
    copy = pickle.loads(pickle.dumps(backend))
    assert copy == backend and not copy._stores
    assert torch.equal(
        copy.read(VolumetricIndex.from_coords(LO, HI, FINE)),
        backend.read(VolumetricIndex.from_coords(LO, HI, FINE)),
    )


# --- which volumes have caches a write must drop --------------------------------------------------
def test_writes_drop_only_what_unrevalidated_backends_hold(tmp_path: Path) -> None:
    path = two_scale_volume(tmp_path)
    other = two_scale_volume(tmp_path, "other")
    registry = ts_backend_module._REGISTRY
    idx = VolumetricIndex.from_coords(LO, (42, 52, 5), FINE)
    reader = TSBackend(path, revalidate_cache=False, cache_bytes_limit=2**20)
    reader.read(idx)
    assert reader.path in registry.unrevalidated
    generation = registry.generation
    TSBackend(other).write(idx, torch.ones((1, 32, 32, 2), dtype=torch.uint8))
    assert registry.generation == generation  # another volume: nothing dropped
    TSBackend(path).write(idx, torch.full((1, 32, 32, 2), 9, dtype=torch.uint8))
    assert reader.path not in registry.unrevalidated and registry.generation > generation
    assert bool((reader.read(idx) == 9).all())  # its cache went with the write
    assert reader.path in registry.unrevalidated  # ... and its new handle is noted again
    TSBackend(path).write(idx, torch.full((1, 32, 32, 2), 4, dtype=torch.uint8))
    assert bool((reader.read(idx) == 4).all())


def test_cloudvolume_caches_are_cleared_by_writes_to_their_volume(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    idx = VolumetricIndex.from_coords(LO, (42, 52, 5), FINE)
    reader = CVBackend(path)
    TSBackend(path).write(idx, torch.full((1, 32, 32, 2), 3, dtype=torch.uint8))
    assert bool((reader.read(idx) == 3).all())
    assert reader.path in cv_backend_module._REGISTRY.urls
    TSBackend(path).write(idx, torch.full((1, 32, 32, 2), 8, dtype=torch.uint8))
    assert bool((reader.read(idx) == 8).all())


def test_listeners_added_later_are_notified(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def listener(url: str, event: Any) -> None:
        seen.append((url, event))

    precomputed.add_listener(listener)
    precomputed.add_listener(listener)  # once only
    try:
        path = str(tmp_path / "v")
        write_info(path, small_info())
        TSBackend(path).write(
            VolumetricIndex.from_coords(LO, (42, 52, 5), FINE),
            torch.zeros((1, 32, 32, 2), dtype=torch.uint8),
        )
        url = precomputed.normalize_path(path)
        assert seen == [(url, "info"), (url, "data")]
    finally:
        precomputed._LISTENERS = tuple(f for f in precomputed._LISTENERS if f is not listener)


# --- layers without processors, and with them -----------------------------------------------------
def test_processors_added_to_a_layer_run(tmp_path: Path) -> None:
    path = two_scale_volume(tmp_path)
    layer = build_ts_layer(path)
    idx = VolumetricIndex.from_coords(LO, (42, 52, 5), FINE)
    layer[idx] = torch.full((1, 32, 32, 2), 10, dtype=torch.uint8)
    assert bool((layer[idx] == 10).all())
    plus_one = layer.with_procs(read_procs=[lambda d: d + 1], write_procs=[lambda d: d * 2])
    assert bool((plus_one[idx] == 11).all())
    plus_one[idx] = torch.full((1, 32, 32, 2), 3, dtype=torch.uint8)
    assert bool((layer[idx] == 6).all()) and bool((plus_one[idx] == 7).all())
    shifted = layer.with_procs(index_procs=[lambda i: i.translated((32, 0, 0))])
    layer[VolumetricIndex.from_coords((42, 20, 3), (74, 52, 5), FINE)] = torch.full(
        (1, 32, 32, 2), 5, dtype=torch.uint8
    )
    assert bool((shifted[idx] == 5).all())
    readonly = layer.with_changes(readonly=True)
    for _ in range(2):
        with pytest.raises(PermissionError, match="read-only"):
            readonly[idx] = torch.zeros((1, 32, 32, 2), dtype=torch.uint8)
    for _ in range(2):  # a wrong shape is refused before the backend is asked
        with pytest.raises(ValueError, match=r"must be CXYZ of shape \(C, 32, 32, 2\)"):
            layer[idx] = torch.zeros((1, 32, 32, 1), dtype=torch.uint8)


# --- boxes and indices built from plain numbers ---------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "res"),
    [
        ((0, 0, 0), (64, 64, 2), (8, 8, 40)),
        (Vec3D(1, 2, 3), Vec3D(5, 6, 7), Vec3D(4.5, 4.5, 45)),
        ((np.int64(3), 0, 0), (5, 1, 1), (1, 1, 1)),  # NumPy numbers: the checked path
        ((0.5, 0, 0), (1.5, 2, 2), (2, 2, 2)),
    ],
)
def test_boxes_from_plain_numbers_equal_the_checked_ones(start: Any, end: Any, res: Any) -> None:
    box = BBox3D.from_coords(start, end, res)
    s, e, r = Vec3D(*start), Vec3D(*end), Vec3D(*res)
    expected = BBox3D(bounds=tuple(zip(s * r, e * r, strict=True)))
    assert box == expected and box.bounds == expected.bounds
    assert all(type(v) in (int, float) for pair in box.bounds for v in pair)


@pytest.mark.parametrize(
    ("start", "end", "res", "message"),
    [
        ((0, 0, 0), (1, 1, 1), (0, 8, 40), "resolution must be positive"),
        ((0, 0, 0), (1, 1, 1), (-8, 8, 40), "resolution must be positive"),
        ((2, 0, 0), (1, 1, 1), (8, 8, 40), "end_coord must not precede start_coord; x"),
        ((0, 0, math.nan), (1, 1, 1), (8, 8, 40), "must be finite|must not precede"),
        ((0, 0, 0), (1, 1, math.inf), (8, 8, 40), "must be finite"),
        ((True, 0, 0), (1, 1, 1), (8, 8, 40), "must be three numbers"),
    ],
)
def test_bad_boxes_are_refused_on_every_call(start: Any, end: Any, res: Any, message: str) -> None:
    for _ in range(2):
        with pytest.raises((ValueError, TypeError), match=message):
            BBox3D.from_coords(start, end, res)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (((0, 1), (0, 1), (1, 0)), "end must not precede start, got z"),
        (((0, 1), (0, math.inf), (0, 1)), "must be finite, got y"),
        (((0, 1), (0, 1), (math.nan, 1)), "must be finite, got z"),
        (((0, 1), (0, 1)), "three"),
        (((0, 1), (0, 1), (0, 1, 2)), "three"),
        (((False, 1), (0, 1), (0, 1)), "three|bool"),
    ],
)
def test_bad_bounds_are_refused_on_every_call(bounds: Any, message: str) -> None:
    for _ in range(2):
        with pytest.raises((ValueError, TypeError), match=message):
            BBox3D(bounds=bounds)


def test_an_index_keeps_a_good_resolution_and_refuses_bad_ones() -> None:
    res = Vec3D(8, 8, 40)
    bbox = BBox3D.from_coords((0, 0, 0), (8, 8, 1), res)
    assert VolumetricIndex(resolution=res, bbox=bbox).resolution is res
    assert VolumetricIndex(resolution=(8, 8, 40), bbox=bbox).resolution == res
    for bad in (Vec3D(0, 8, 40), Vec3D(8, -8, 40)):
        for _ in range(2):
            with pytest.raises(ValueError, match="resolution must be positive"):
                VolumetricIndex(resolution=bad, bbox=bbox)


def test_voxel_box_is_start_and_stop_with_their_errors() -> None:
    bbox = BBox3D.from_coords((20, 36, 40), (84, 100, 120), (1, 1, 1))  # nm
    rounded = VolumetricIndex(resolution=FINE, bbox=bbox, allow_slice_rounding=True)
    assert (
        rounded.voxel_box
        == (rounded.start.tuple(), rounded.stop.tuple())
        == ((2, 4, 1), (10, 12, 3))
    )
    strict = VolumetricIndex(resolution=FINE, bbox=bbox)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"^start of .* not a whole number"):
            _ = strict.voxel_box
    end_only = VolumetricIndex(
        resolution=FINE, bbox=BBox3D.from_coords((16, 32, 40), (84, 96, 120), (1, 1, 1))
    )
    assert end_only.start == Vec3D(2, 4, 1)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"^stop of .* not a whole number"):
            _ = end_only.voxel_box


def test_a_resolution_stored_as_it_is_is_answered_with_itself(tmp_path: Path) -> None:
    backend = TSBackend(two_scale_volume(tmp_path))
    asked = Vec3D(8, 8, 40)
    for _ in range(2):
        assert backend.find_resolution(asked) is asked
        close = Vec3D(8 + 1e-12, 8, 40)
        assert (
            backend.find_resolution(close) == FINE and backend.find_resolution(close) is not close
        )
        assert backend.find_resolution(COARSE) is COARSE
        assert backend.find_resolution(Vec3D(4, 4, 40)) is None
        assert backend._geometry(asked).scale["key"] == "8_8_40"
        assert backend._geometry(COARSE).scale["key"] == "16_16_40"
