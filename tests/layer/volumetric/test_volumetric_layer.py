"""VolumetricLayer over the in-memory backend: independent resolutions against hand-computed
expectations, resampled reads and writes, processors around resampling, errors, pickling."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer, build_volumetric_layer
from zetta_utils.layer.volumetric.memory import MemoryBackend, build_mem_layer

R2 = Vec3D(2, 2, 40)
R4 = Vec3D(4, 4, 40)
R8 = Vec3D(8, 8, 40)
R16 = Vec3D(16, 16, 40)


def fill(backend: MemoryBackend, res: Vec3D[float], array: npt.NDArray[Any]) -> None:
    """Write ``array`` (CXYZ) over the whole dataset at ``res`` directly into the backend."""
    bounds = backend.get_bounds(res)
    assert tuple(bounds.shape) == array.shape[1:]
    backend.write(bounds, torch.from_numpy(np.ascontiguousarray(array)))


def stored(layer: VolumetricLayer, res: Vec3D[float]) -> npt.NDArray[Any]:
    return layer.backend.read(layer.backend.get_bounds(res)).numpy()


def block_mean(a: npt.NDArray[Any], k: tuple[int, int, int]) -> npt.NDArray[np.float64]:
    c, x, y, z = a.shape
    return (
        a.reshape(c, x // k[0], k[0], y // k[1], k[1], z // k[2], k[2])
        .astype(np.float64)
        .mean(axis=(2, 4, 6))
    )


def linear_1d(a: npt.NDArray[Any], factor: int) -> npt.NDArray[np.float64]:
    """Upsample a 1-D array by an integer factor, align_corners=False, clamped at the ends."""
    n = len(a)
    out = np.empty(n * factor)
    for j in range(n * factor):
        src = min(max((j + 0.5) / factor - 0.5, 0.0), n - 1)
        i0 = math.floor(src)
        i1 = min(i0 + 1, n - 1)
        out[j] = (1 - (src - i0)) * a[i0] + (src - i0) * a[i1]
    return out


RNG = np.random.default_rng(0)


# --- independent resolutions -------------------------------------------------------------------
def test_guide_example_index_desired_and_data_resolutions_are_independent() -> None:
    """cvl[211200:216000, 64800:69600, 2000:2002] at index (4,4,40), desired (192,192,80) from
    data (64,64,40) -> (1, 100, 100, 1), each voxel the mean of a 3x3x2 block."""
    bbox = BBox3D.from_coords((13200, 4050, 2000), (13500, 4350, 2002), (64, 64, 40))
    layer = build_mem_layer(
        bbox=bbox,
        resolutions=[(64, 64, 40)],
        default_desired_resolution=Vec3D(192, 192, 80),
        index_resolution=Vec3D(4, 4, 40),
        data_resolution=Vec3D(64, 64, 40),
        interpolation_mode="img",
    )
    data = RNG.normal(size=(1, 300, 300, 2)).astype(np.float32)
    fill(layer.backend, Vec3D(64, 64, 40), data)
    result = layer[211200:216000, 64800:69600, 2000:2002]
    assert isinstance(result, torch.Tensor)
    assert result.shape == (1, 100, 100, 1)
    np.testing.assert_allclose(result.numpy(), block_mean(data, (3, 3, 2)), rtol=1e-5, atol=1e-6)
    # the same region named by a VolumetricIndex at the desired resolution
    idx = VolumetricIndex.from_coords((4400, 1350, 1000), (4500, 1450, 1001), (192, 192, 80))
    torch.testing.assert_close(layer[idx], result)


def test_stored_resolution_read_is_a_pass_through() -> None:
    class Recording(MemoryBackend):
        last: torch.Tensor | None = None

        def read(self, idx: VolumetricIndex) -> torch.Tensor:
            self.last = super().read(idx)
            return self.last

    backend = Recording("mem://rec", BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4), [R4, R8])
    for layer in (
        build_volumetric_layer(backend),
        build_volumetric_layer(backend, interpolation_mode="img"),
        build_volumetric_layer(backend, data_resolution=R4, interpolation_mode="img"),
    ):
        result = layer[R4, 0:8, 0:8, 0:1]
        assert result is backend.last
    idx = VolumetricIndex.from_coords((0, 0, 0), (4, 4, 1), (8.0, 8.0, 40.0))
    assert build_volumetric_layer(backend)[idx] is backend.last


def test_unstored_resolution_reads_from_nearest_finer_stored_one() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (16, 16, 2), R4),
        resolutions=[R4, R8],
        interpolation_mode="img",
    )
    fine = RNG.normal(size=(1, 16, 16, 2)).astype(np.float32)
    coarse = RNG.normal(size=(1, 8, 8, 2)).astype(np.float32)  # deliberately not fine's mean
    fill(layer.backend, R4, fine)
    fill(layer.backend, R8, coarse)
    at16 = layer[R16, 0:4, 0:4, 0:2].numpy()
    np.testing.assert_allclose(at16, block_mean(coarse, (2, 2, 1)), rtol=1e-5, atol=1e-6)
    at_8_80 = layer[(8, 8, 80), 0:8, 0:8, 0:1].numpy()
    np.testing.assert_allclose(at_8_80, block_mean(coarse, (1, 1, 2)), rtol=1e-5, atol=1e-6)
    # with data_resolution, the finest level is used even though (8, 8, 40) is stored
    pinned = layer.with_changes(data_resolution=R4)
    np.testing.assert_allclose(
        pinned[R8, 0:8, 0:8, 0:2].numpy(), block_mean(fine, (2, 2, 1)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        pinned[R16, 0:4, 0:4, 0:2].numpy(), block_mean(fine, (4, 4, 1)), rtol=1e-5, atol=1e-6
    )


def test_integer_img_downsampling_keeps_dtype_and_truncates() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (2, 2, 1), R4),
        resolutions=[R4],
        dtype="uint8",
        interpolation_mode="img",
    )
    fill(layer.backend, R4, np.array([10, 11, 11, 11], dtype=np.uint8).reshape(1, 2, 2, 1))
    result = layer[R8, 0:1, 0:1, 0:1]
    assert result.dtype == torch.uint8 and result.item() == 10  # 10.75 floors, as tinybrain


def test_upsampling_segmentation_from_an_unaligned_start_is_exact() -> None:
    """Desired (2,2,40) from (4,4,40): a region starting at an odd 2 nm voxel reads the covering
    4 nm region and crops; voxel j of the output is the label of 4 nm voxel j // 2."""
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (10, 6, 1), R4),
        resolutions=[R4],
        dtype="int64",
        interpolation_mode="segmentation",
    )
    labels = np.arange(60, dtype=np.int64).reshape(1, 10, 6, 1) * 1_000_003
    fill(layer.backend, R4, labels)
    result = layer[R2, 3:14, 1:12, 0:1].numpy()
    expected = labels[:, np.arange(3, 14) // 2][:, :, np.arange(1, 12) // 2]
    np.testing.assert_array_equal(result, expected)


def test_img_upsampling_matches_whole_volume_interpolation_in_any_chunk() -> None:
    """Linear upsampling reads context around the region (inside the dataset), so any sub-region
    equals the same crop of the whole volume upsampled at once, with clamping only at the
    dataset's faces."""
    n = 12
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (n, 1, 1), R4),
        resolutions=[R4],
        interpolation_mode="img",
    )
    values = (np.arange(n, dtype=np.float32) ** 2).reshape(1, n, 1, 1)
    fill(layer.backend, R4, values)
    whole = linear_1d(values[0, :, 0, 0], 2)
    got_whole = layer[R2, 0 : 2 * n, 0:2, 0:1].numpy()[0, :, 0, 0]
    np.testing.assert_allclose(got_whole, whole, rtol=1e-6)
    for start, stop in [(0, 5), (3, 9), (7, 8), (10, 24), (13, 22), (1, 23)]:
        part = layer[R2, start:stop, 0:2, 0:1].numpy()
        assert part.shape == (1, stop - start, 2, 1)
        np.testing.assert_allclose(
            part[0, :, 0, 0], whole[start:stop], rtol=1e-6, err_msg=f"{start}:{stop}"
        )
        np.testing.assert_allclose(part[0, :, 1, 0], whole[start:stop], rtol=1e-6)


def test_non_integer_ratio_reads_on_the_common_grid() -> None:
    """Desired 96 nm from 64 nm data (ratio 1.5): voxel i averages the 64 nm voxels overlapping
    [96 i, 96 (i + 1)), whatever the region's start."""
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (12, 1, 1), (64, 64, 40)),
        resolutions=[(64, 64, 40)],
        interpolation_mode="img",
    )
    values = RNG.normal(size=(1, 12, 1, 1)).astype(np.float32)
    fill(layer.backend, Vec3D(64, 64, 40), values)
    expected = [
        values[0, math.floor(1.5 * i) : math.ceil(1.5 * (i + 1)), 0, 0].mean() for i in range(8)
    ]
    for start, stop in [(0, 8), (1, 4), (3, 8), (5, 6)]:
        got = layer[(96, 64, 40), start:stop, 0:1, 0:1].numpy()[0, :, 0, 0]
        np.testing.assert_allclose(got, expected[start:stop], rtol=1e-5, err_msg=f"{start}:{stop}")


def test_mask_and_field_modes() -> None:
    mask = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 2, 1), R4),
        resolutions=[R4],
        dtype="uint8",
        interpolation_mode="mask",
    )
    fill(
        mask.backend,
        R4,
        np.array([[0, 0], [0, 0], [0, 0], [0, 7]], dtype=np.uint8).reshape(1, 4, 2, 1),
    )
    assert mask[R8, 0:2, 0:1, 0:1].flatten().tolist() == [0, 1]

    field = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (2, 2, 1), R4),
        resolutions=[R4],
        num_channels=2,
        interpolation_mode="field",
    )
    disp = np.stack([np.full((2, 2, 1), 4.0), np.full((2, 2, 1), -2.0)]).astype(np.float32)
    fill(field.backend, R4, disp)
    # 4 px at 4 nm is 2 px at 8 nm
    assert field[R8, 0:1, 0:1, 0:1].flatten().tolist() == [2.0, -1.0]


def test_allow_slice_rounding_layer() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4),
        resolutions=[R4],
        index_resolution=(1, 1, 40),
        default_desired_resolution=R4,
        allow_slice_rounding=True,
    )
    assert layer[0:31, 0:29, 0:1].shape == (1, 8, 7, 1)  # 7.75 voxels -> 8, 7.25 -> 7
    with pytest.raises(ValueError, match="allow_slice_rounding"):
        layer.with_changes(allow_slice_rounding=False)[0:31, 0:29, 0:1]


# --- writes --------------------------------------------------------------------------------------
def test_numpy_and_tensor_writes_at_a_stored_resolution() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 2), R4), resolutions=[R4], dtype="uint16"
    )
    array = np.arange(32, dtype=np.uint16).reshape(1, 4, 4, 2) * 1000
    layer[R4, 0:4, 0:4, 0:2] = array
    np.testing.assert_array_equal(layer[R4, 0:4, 0:4, 0:2].numpy(), array)
    layer[R4, 1:3, 0:1, 0:1] = torch.tensor([[[[7]], [[9]]]], dtype=torch.int32)
    assert stored(layer, R4)[0, 1:3, 0, 0].tolist() == [7, 9]


def test_write_at_coarser_resolution_upsamples_to_data_resolution() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4),
        resolutions=[R4],
        dtype="int64",
        data_resolution=R4,
        interpolation_mode="segmentation",
    )
    labels = np.array([[1, 2], [3, 4]], dtype=np.int64).reshape(1, 2, 2, 1)
    layer[R8, 0:2, 0:2, 0:1] = labels
    np.testing.assert_array_equal(stored(layer, R4), labels.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(layer[R8, 0:2, 0:2, 0:1].numpy(), labels)


def test_write_at_finer_resolution_downsamples_to_data_resolution() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (2, 2, 1), R4),
        resolutions=[R4],
        data_resolution=R4,
        interpolation_mode="img",
    )
    data = RNG.normal(size=(1, 4, 4, 1)).astype(np.float32)
    layer[R2, 0:4, 0:4, 0:1] = data
    np.testing.assert_allclose(stored(layer, R4), block_mean(data, (2, 2, 1)), rtol=1e-5, atol=1e-6)


def test_resampled_write_must_cover_whole_voxels() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R8),
        resolutions=[R8],
        data_resolution=R8,
        interpolation_mode="img",
    )
    with pytest.raises(ValueError, match="partial voxels"):
        layer[R4, 1:5, 0:4, 0:1] = np.ones((1, 4, 4, 1), dtype=np.float32)
    assert not stored(layer, R8).any()


def test_write_at_unstored_resolution_without_data_resolution_fails() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4),
        resolutions=[R4],
        interpolation_mode="img",
    )
    with pytest.raises(ValueError, match=r"not stored.*data_resolution"):
        layer[R8, 0:2, 0:2, 0:1] = np.ones((1, 2, 2, 1), dtype=np.float32)


def test_write_shape_must_match_index() -> None:
    layer = build_mem_layer(bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4), resolutions=[R4])
    with pytest.raises(ValueError, match=r"\(C, 4, 4, 1\)"):
        layer[R4, 0:4, 0:4, 0:1] = np.ones((1, 4, 2, 1), dtype=np.float32)


def test_readonly_layer_refuses_writes_naming_its_path() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4),
        resolutions=[R4],
        name="mem://volume/img",
        readonly=True,
    )
    with pytest.raises(PermissionError, match=r"mem://volume/img.*read-only"):
        layer[R4, 0:4, 0:4, 0:1] = np.ones((1, 4, 4, 1), dtype=np.float32)
    assert not stored(layer, R4).any()
    layer.with_changes(readonly=False)[R4, 0:4, 0:4, 0:1] = np.ones((1, 4, 4, 1), dtype=np.float32)
    assert stored(layer, R4).all()


# --- errors ---------------------------------------------------------------------------------------
def test_reading_an_unstored_resolution_without_interpolation_mode_fails_clearly() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4), resolutions=[R4], name="mem://x"
    )
    with pytest.raises(
        ValueError,
        match=r"mem://x at resolution \(8, 8, 40\): it is not stored "
        r"\(stored: \(4, 4, 40\)\).*interpolation_mode",
    ):
        layer[R8, 0:2, 0:2, 0:1]


def test_build_errors() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4)
    with pytest.raises(ValueError, match=r"data_resolution.*interpolation_mode"):
        build_mem_layer(bbox=bbox, resolutions=[R4], data_resolution=R4)
    with pytest.raises(TypeError, match=r"backend.*VolumetricBackend"):
        build_volumetric_layer(backend="gs://not-a-backend")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"read_procs\[0\]"):
        build_mem_layer(bbox=bbox, resolutions=[R4], read_procs=[42])


# --- processors around resampling -----------------------------------------------------------------
class ThresholdProcessor:
    """The guide's read processor."""

    def __init__(self, threshold: float = 0):
        self.threshold = threshold

    def __call__(self, data: Any) -> Any:
        data[data < self.threshold] = self.threshold
        return data


class PadCrop:
    """Reads/writes one voxel more on each side, then crops it off: a joint processor that sees
    the index and data at the desired resolution."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def process_index(self, idx: VolumetricIndex, mode: str) -> VolumetricIndex:
        self.seen.append((f"index.{mode}", idx.resolution))
        return idx.padded((1, 1, 0))

    def process_data(self, data: torch.Tensor, mode: str) -> torch.Tensor:
        self.seen.append((f"data.{mode}", tuple(data.shape)))
        if mode == "read":
            return data[:, 1:-1, 1:-1, :]
        return torch.nn.functional.pad(data, (0, 0, 1, 1, 1, 1))


def test_guide_threshold_processor_on_reads() -> None:
    layer = build_mem_layer(bbox=BBox3D.from_coords((0, 0, 0), (4, 4, 1), R4), resolutions=[R4])
    data = RNG.normal(size=(1, 4, 4, 1)).astype(np.float32)
    fill(layer.backend, R4, data)
    proc_layer = layer.with_procs(read_procs=[ThresholdProcessor(0)])
    assert layer[R4, 0:4, 0:4, 0:1].min() < 0
    assert proc_layer[R4, 0:4, 0:4, 0:1].min() == 0.0
    np.testing.assert_array_equal(proc_layer[R4, 0:4, 0:4, 0:1].numpy(), np.maximum(data, 0))
    assert stored(layer, R4).min() < 0  # the in-place processor did not touch the storage


def test_joint_processor_runs_at_the_desired_resolution_outside_resampling() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (16, 16, 1), R4),
        resolutions=[R4],
        interpolation_mode="img",
    )
    data = RNG.normal(size=(1, 16, 16, 1)).astype(np.float32)
    fill(layer.backend, R4, data)
    proc = PadCrop()
    proc_layer = layer.with_procs(read_procs=[proc], write_procs=[proc])
    plain = layer[R8, 2:6, 2:6, 0:1]
    got = proc_layer[R8, 2:6, 2:6, 0:1]
    torch.testing.assert_close(got, plain)
    assert proc.seen == [("index.read", R8), ("data.read", (1, 6, 6, 1))]

    proc.seen.clear()
    writable = proc_layer.with_changes(data_resolution=R4, interpolation_mode="mask")
    writable[R8, 2:6, 2:6, 0:1] = torch.ones(1, 4, 4, 1)
    assert proc.seen == [("index.write", R8), ("data.write", (1, 4, 4, 1))]
    after = stored(layer, R4)[0, :, :, 0]
    # 8 nm voxels 2..6 are 4 nm voxels 4..12; the padded region (8 nm 1..7 = 4 nm 2..14) got
    # zeros around the ones
    assert (after[4:12, 4:12] == 1).all()
    assert after[2:14, 2:14].sum() == 64
    np.testing.assert_array_equal(after[:2], data[0, :2, :, 0])


def test_index_procs_apply_before_resolution_handling() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4),
        resolutions=[R4],
        interpolation_mode="img",
    )
    data = RNG.normal(size=(1, 8, 8, 1)).astype(np.float32)
    fill(layer.backend, R4, data)

    def shift_x(idx: VolumetricIndex) -> VolumetricIndex:
        return idx.translated((1, 0, 0))

    shifted = layer.with_procs(index_procs=[shift_x])
    # one voxel at 8 nm is two at 4 nm
    np.testing.assert_allclose(
        shifted[R8, 0:2, 0:4, 0:1].numpy(),
        block_mean(data[:, 2:6, :, :], (2, 2, 1)),
        rtol=1e-5,
        atol=1e-6,
    )


# --- derived layers, pickling, builder ------------------------------------------------------------
def test_with_changes_frontend_settings() -> None:
    layer = build_mem_layer(bbox=BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4), resolutions=[R4])
    changed = layer.with_changes(
        default_desired_resolution=[8, 8, 40], index_resolution=R4, interpolation_mode="img"
    )
    assert changed.default_desired_resolution == R8 and changed.index_resolution == R4
    assert changed.interpolation_mode == "img" and changed.data_resolution is None
    assert changed.backend is layer.backend and layer.frontend.default_desired_resolution is None
    assert changed[0:8, 0:8, 0:1].shape == (1, 4, 4, 1)
    with pytest.raises(TypeError, match=r"unknown argument.*resolution"):
        layer.with_changes(resolution=R4)
    with pytest.raises(TypeError, match="either `frontend` or"):
        layer.with_changes(frontend=layer.frontend, index_resolution=R4)
    with pytest.raises(ValueError, match="interpolation_mode"):
        layer.with_changes(data_resolution=R4)


def test_layer_and_index_pickle_round_trip() -> None:
    layer = build_mem_layer(
        bbox=BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4),
        resolutions=[R4],
        interpolation_mode="img",
        default_desired_resolution=R8,
        index_resolution=R4,
        read_procs=[ThresholdProcessor(0.5)],
    )
    fill(layer.backend, R4, RNG.normal(size=(1, 8, 8, 1)).astype(np.float32))
    idx = VolumetricIndex.from_coords((0, 0, 0), (4, 4, 1), R8, chunk_id=3)
    copy_idx = pickle.loads(pickle.dumps(idx))
    assert copy_idx == idx
    copy = pickle.loads(pickle.dumps(layer))
    assert isinstance(copy, VolumetricLayer) and copy.frontend == layer.frontend
    torch.testing.assert_close(copy[copy_idx], layer[idx])
    torch.testing.assert_close(copy[0:8, 0:8, 0:1], layer[idx])


def test_builder_specs() -> None:
    spec = {
        "@type": "build_mem_layer",
        "bbox": {
            "@type": "BBox3D.from_coords",
            "start_coord": [0, 0, 0],
            "end_coord": [8, 8, 1],
            "resolution": [4, 4, 40],
        },
        "resolutions": [[4, 4, 40]],
        "index_resolution": [4, 4, 40],
        "default_desired_resolution": [8, 8, 40],
        "interpolation_mode": "img",
    }
    layer = builder.build(spec)
    assert isinstance(layer, VolumetricLayer)
    assert isinstance(layer.index_resolution, Vec3D) and layer.default_desired_resolution == R8
    assert layer[0:8, 0:8, 0:1].shape == (1, 4, 4, 1)

    wrapped = builder.build(
        {
            "@type": "build_volumetric_layer",
            "backend": layer.backend,
            "data_resolution": [4, 4, 40],
            "interpolation_mode": "img",
            "readonly": True,
        }
    )
    assert wrapped.data_resolution == R4 and wrapped.readonly
    with pytest.raises(builder.BuilderError, match="interpolation_mode"):
        builder.build(
            {
                "@type": "build_volumetric_layer",
                "backend": layer.backend,
                "data_resolution": [4, 4, 40],
            }
        )
