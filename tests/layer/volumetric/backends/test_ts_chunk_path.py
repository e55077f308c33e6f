"""The per-chunk path of a TensorStore volume (issue 24, flow (a) on jpeg): what it asks of
TensorStore and what it finds once and keeps (scales, bounds, voxel coordinates).

TensorStore's own metrics count its file reads: a whole-chunk write must read nothing back (a
partial one would read the chunk first), and a jpeg volume copied chunk by chunk through the
layers holds the very bytes TensorStore's own chunk copy writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import torch

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend, build_ts_layer

from .helpers import expected_region, random_data, small_info, stored_array

RES = Vec3D(8, 8, 40)
LO = (10, 20, 3)  # small_info: dataset (10, 20, 3) - (106, 100, 9), chunks of (32, 32, 2)
HI = (106, 100, 9)


def file_reads() -> int:
    """TensorStore's count of file reads in this process so far."""
    for metric in ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/read"):
        if metric["name"] == "/tensorstore/kvstore/file/read":
            return int(sum(v.get("value", 0) for v in metric["values"]))
    return 0


def smooth_image(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """XYZ uint8 that jpeg keeps close to itself (a ramp with a little noise)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    ramp = ((x + y) // 2 % 200).astype(np.uint8)
    noise = rng.integers(0, 8, shape, dtype=np.uint8)
    return ramp[:, :, None] + noise


def jpeg_volume(path: str, data: np.ndarray | None = None) -> str:
    info = small_info(encoding="jpeg", chunk=(32, 32, 1), size=(96, 80, 6))
    write_info(path, info)
    if data is not None:
        store = ts.open(
            {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": path}}
        ).result()
        store[:, :, :, 0].write(data).result()
    return path


# --- voxel coordinates of an index ----------------------------------------------------------------
def test_index_voxels_are_whole_or_rounded_halves_to_even() -> None:
    bbox = BBox3D.from_coords((20, 36, 40), (84, 100, 120), (1, 1, 1))  # nm
    idx = VolumetricIndex(resolution=RES, bbox=bbox, allow_slice_rounding=True)
    # 20/8 = 2.5 -> 2, 36/8 = 4.5 -> 4, 84/8 = 10.5 -> 10, 100/8 = 12.5 -> 12 (as round())
    assert idx.start == Vec3D(2, 4, 1) and idx.stop == Vec3D(10, 12, 3)
    assert all(type(v) is int for v in (*idx.start, *idx.stop))
    strict = VolumetricIndex(resolution=RES, bbox=bbox)
    with pytest.raises(ValueError, match=r"start of .* not a whole number .*allow_slice_rounding"):
        _ = strict.start
    # within 1e-6 voxels of a whole one counts as whole
    near = BBox3D.from_coords((16 + 1e-7, 32, 40), (80, 96, 120 - 1e-6), (1, 1, 1))
    exact = VolumetricIndex(resolution=RES, bbox=near)
    assert exact.start == Vec3D(2, 4, 1) and exact.stop == Vec3D(10, 12, 3)


# --- scales and bounds, found once ------------------------------------------------------------
def test_scale_lookup_takes_any_form_of_a_resolution_and_still_refuses_others(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(resolutions=((8, 8, 40), (16, 16, 40))))
    backend = TSBackend(path)
    for res in (Vec3D(8, 8, 40), (8.0, 8.0, 40.0), [8, 8, 40], Vec3D(8 + 1e-9, 8, 40)):
        assert backend._scale(res)["key"] == "8_8_40"
    assert backend._scale([16, 16, 40])["key"] == "16_16_40"
    assert backend._scale(Vec3D(8, 8, 40))["key"] == "8_8_40"
    for _ in range(2):  # a miss is never remembered as a hit
        with pytest.raises(ValueError, match=r"resolution \(4, 4, 40\) is not stored"):
            backend._scale(Vec3D(4, 4, 40))
    resolutions = backend.get_resolutions()
    resolutions.append(Vec3D(1, 1, 1))  # the caller's list: what the backend keeps is unchanged
    assert backend.get_resolutions() == [Vec3D(8, 8, 40), Vec3D(16, 16, 40)]


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        (LO, HI),  # the whole dataset: read straight through
        ((10, 20, 3), (42, 52, 5)),  # one chunk at the low corner
        ((9, 20, 3), (42, 52, 5)),  # one voxel before the dataset in x
        ((74, 68, 7), (107, 100, 9)),  # one voxel past its end in x
        ((10, 20, 2), (106, 100, 10)),  # past both ends in z
        ((200, 20, 3), (232, 52, 5)),  # wholly outside
    ],
)
def test_reads_at_and_across_the_bounds(
    tmp_path: Path, start: tuple[int, ...], stop: tuple[int, ...]
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    backend = TSBackend(path)
    data = random_data("uint8", (1, 96, 80, 6), seed=5)
    backend.write(VolumetricIndex.from_coords(LO, HI, RES), data)
    whole = stored_array(data, "uint8")
    got = backend.read(VolumetricIndex.from_coords(start, stop, RES))
    np.testing.assert_array_equal(got.numpy(), expected_region(whole, start, stop))


def test_writes_inside_the_bounds_and_clipped_at_them(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    backend = TSBackend(path)
    data = random_data("uint8", (1, 96, 80, 6), seed=6)
    backend.write(VolumetricIndex.from_coords(LO, HI, RES), data)
    # a chunk-aligned region reaching past the end: only its part inside is written
    part = random_data("uint8", (1, 64, 64, 4), seed=7)
    backend.write(VolumetricIndex.from_coords((74, 52, 5), (138, 116, 9), RES), part)
    whole = stored_array(data, "uint8").copy()
    whole[64:96, 32:80, 2:6] = stored_array(part, "uint8")[:32, :48]
    got = backend.read(VolumetricIndex.from_coords(LO, HI, RES))
    np.testing.assert_array_equal(got.numpy(), expected_region(whole, LO, HI))
    with pytest.raises(ValueError, match="lies outside the bounds"):
        backend.write(
            VolumetricIndex.from_coords((106, 20, 3), (138, 52, 5), RES),
            torch.zeros((1, 32, 32, 2), dtype=torch.uint8),
        )
    with pytest.raises(ValueError, match="not chunk-aligned in x"):
        backend.write(
            VolumetricIndex.from_coords((11, 20, 3), (43, 52, 5), RES),
            torch.zeros((1, 32, 32, 2), dtype=torch.uint8),
        )


# --- jpeg chunks: whole-chunk writes, same bytes as TensorStore's own copy ------------------------
def test_whole_chunk_jpeg_writes_read_nothing_back(tmp_path: Path) -> None:
    src = jpeg_volume(str(tmp_path / "src"), smooth_image((96, 80, 6), seed=1))
    dst = jpeg_volume(str(tmp_path / "dst"))
    src_layer, dst_layer = build_ts_layer(src), build_ts_layer(dst)
    whole = VolumetricIndex.from_coords(LO, HI, RES)
    data = src_layer[whole]
    chunk = VolumetricIndex.from_coords((42, 52, 4), (74, 84, 5), RES)
    one = data[:, 32:64, 32:64, 1:2]
    dst_layer[VolumetricIndex.from_coords(LO, (42, 52, 4), RES)] = data[:, :32, :32, :1]  # opens
    before = file_reads()
    src_layer[chunk]
    assert file_reads() == before + 1  # the counter counts: a one-chunk read is one file read
    dst_layer[chunk] = one  # a chunk not yet on storage
    dst_layer[chunk] = one  # over one that is
    dst_layer[whole] = data  # 54 chunks, the last ones in x and y clipped at the dataset end
    assert file_reads() == before + 1
    diff = (dst_layer[whole].to(torch.int16) - data.to(torch.int16)).abs().float().mean()
    assert diff < 2  # jpeg again


def test_jpeg_copied_chunk_by_chunk_holds_tensorstores_bytes(tmp_path: Path) -> None:
    src = jpeg_volume(str(tmp_path / "src"), smooth_image((96, 80, 6), seed=2))
    ours = jpeg_volume(str(tmp_path / "ours"))
    theirs = jpeg_volume(str(tmp_path / "theirs"))
    spec: dict[str, Any] = {"driver": "neuroglancer_precomputed"}
    s = ts.open({**spec, "kvstore": {"driver": "file", "path": src}}).result()
    d = ts.open({**spec, "kvstore": {"driver": "file", "path": theirs}}).result()
    src_layer, dst_layer = build_ts_layer(src), build_ts_layer(ours)
    for z in range(3, 9):
        for y in range(20, 100, 32):
            for x in range(10, 106, 32):
                stop = (min(x + 32, 106), min(y + 32, 100), z + 1)
                idx = VolumetricIndex.from_coords((x, y, z), stop, RES)
                dst_layer[idx] = src_layer[idx]
                a = s[x : stop[0], y : stop[1], z : z + 1].read(order="F").result()
                d[x : stop[0], y : stop[1], z : z + 1].write(a).result()
    names = sorted(os.listdir(os.path.join(theirs, "8_8_40")))
    assert len(names) == 3 * 3 * 6
    assert sorted(os.listdir(os.path.join(ours, "8_8_40"))) == names
    for name in names:
        with open(os.path.join(ours, "8_8_40", name), "rb") as f1:
            with open(os.path.join(theirs, "8_8_40", name), "rb") as f2:
                assert f1.read() == f2.read(), name
