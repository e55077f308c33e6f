"""VolumetricLayer end to end over real precomputed volumes on disk, through both storage
backends (TensorStore and CloudVolume)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.layer_set import build_layer_set
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

pytestmark = pytest.mark.slow

BUILDERS = {"ts": build_ts_layer, "cv": build_cv_layer}
Builder = Callable[..., VolumetricLayer]


@pytest.fixture(params=sorted(BUILDERS))
def build(request: pytest.FixtureRequest) -> Builder:
    return BUILDERS[request.param]


def new_volume(build: Builder, path: Path, **kwargs: Any) -> VolumetricLayer:
    info = {
        "info_type": "image",
        "info_data_type": "float32",
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
    }
    info.update(kwargs)
    return build(path=f"file://{path}", **info)


class ThresholdProcessor:
    def __init__(self, threshold: float = 0):
        self.threshold = threshold

    def __call__(self, data: Any) -> Any:
        data[data < self.threshold] = self.threshold
        return data


def test_guide_write_then_read(build: Builder, tmp_path: Path) -> None:
    layer = new_volume(
        build,
        tmp_path / "vol",
        info_chunk_size=(128, 128, 1),
        info_scales=[(8, 8, 40)],
        info_dataset_size=(256, 256, 2),
    )
    idx = VolumetricIndex.from_coords(Vec3D(0, 0, 0), Vec3D(128, 128, 1), Vec3D(8, 8, 40))
    layer[idx] = torch.ones((1, 128, 128, 1), dtype=torch.float32)
    assert layer[idx].shape == (1, 128, 128, 1) and bool((layer[idx] == 1).all())
    assert not layer[Vec3D(8, 8, 40), 128:256, 0:128, 0:1].any()


def test_guide_independent_resolutions(build: Builder, tmp_path: Path) -> None:
    writer = new_volume(
        build,
        tmp_path / "fafb",
        info_chunk_size=(100, 100, 1),
        info_scales=[(64, 64, 40)],
        info_voxel_offset=(13200, 4050, 2000),
        info_dataset_size=(300, 300, 2),
    )
    data = np.random.default_rng(0).normal(size=(1, 300, 300, 2)).astype(np.float32)
    writer[Vec3D(64, 64, 40), 13200:13500, 4050:4350, 2000:2002] = data
    cvl = build(
        path=f"file://{tmp_path / 'fafb'}",
        default_desired_resolution=Vec3D(192, 192, 80),
        index_resolution=Vec3D(4, 4, 40),
        data_resolution=Vec3D(64, 64, 40),
        interpolation_mode="img",
    )
    result = cvl[211200:216000, 64800:69600, 2000:2002]
    assert result.shape == (1, 100, 100, 1)
    expected = data.reshape(1, 100, 3, 100, 3, 1, 2).mean(axis=(2, 4, 6))
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5, atol=1e-6)
    # stored-resolution read through a VolumetricIndex, and a read processor
    idx = VolumetricIndex.from_coords((13200, 4050, 2000), (13300, 4150, 2001), (64, 64, 40))
    assert cvl[idx].shape == (1, 100, 100, 1)
    thresholded = cvl.with_procs(read_procs=[ThresholdProcessor(0)])[idx]
    assert cvl[idx].min() < 0 and thresholded.min() == 0.0


def test_resampled_write_and_pickled_layer(build: Builder, tmp_path: Path) -> None:
    layer = new_volume(
        build,
        tmp_path / "seg",
        info_type="segmentation",
        info_data_type="uint32",
        info_chunk_size=(8, 8, 1),
        info_scales=[(8, 8, 40)],
        info_dataset_size=(32, 32, 1),
    ).with_changes(data_resolution=(8, 8, 40), interpolation_mode="segmentation")
    labels = np.arange(16, dtype=np.int64).reshape(1, 4, 4, 1) + 70_000
    layer[(16, 16, 40), 0:4, 0:4, 0:1] = labels  # upsampled to 8 nm on write
    at8 = layer[(8, 8, 40), 0:8, 0:8, 0:1].numpy()
    np.testing.assert_array_equal(at8, labels.repeat(2, axis=1).repeat(2, axis=2))
    copy = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(copy[(16, 16, 40), 0:4, 0:4, 0:1].numpy(), labels)
    np.testing.assert_array_equal(
        copy[(4, 4, 40), 2:6, 0:2, 0:1].numpy()[0, :, 0, 0], [70_000, 70_000, 70_004, 70_004]
    )


def test_layer_set_over_both_backends(tmp_path: Path) -> None:
    img = new_volume(
        build_ts_layer,
        tmp_path / "img",
        info_chunk_size=(16, 16, 1),
        info_scales=[(4, 4, 40)],
        info_dataset_size=(32, 32, 1),
    )
    mask = new_volume(
        build_cv_layer,
        tmp_path / "mask",
        info_data_type="uint8",
        info_chunk_size=(16, 16, 1),
        info_scales=[(8, 8, 40)],
        info_dataset_size=(16, 16, 1),
    )
    layer_set = build_layer_set(
        layers={
            "img": img.with_changes(interpolation_mode="img"),
            "mask": mask.with_changes(interpolation_mode="mask"),
        }
    )
    layer_set[(4, 4, 40), 0:32, 0:32, 0:1] = {"img": torch.full((1, 32, 32, 1), 2.0)}
    mask[(8, 8, 40), 0:16, 0:16, 0:1] = np.ones((1, 16, 16, 1), dtype=np.uint8)
    out = layer_set[(8, 8, 40), 0:16, 0:16, 0:1]
    assert out["img"].shape == out["mask"].shape == (1, 16, 16, 1)
    assert bool((out["img"] == 2).all()) and bool((out["mask"] == 1).all())
    out4 = layer_set[(4, 4, 40), 0:32, 0:32, 0:1]
    assert out4["mask"].shape == (1, 32, 32, 1) and bool((out4["mask"] == 1).all())
