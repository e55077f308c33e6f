"""The original's index and data processors (zetta_utils.layer.volumetric.tools), built from
specs by their registered names, on a real precomputed volume written by CloudVolume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer

R8 = Vec3D(8, 8, 40)
R16 = Vec3D(16, 16, 40)


@pytest.fixture
def volume(tmp_path: Path) -> tuple[str, np.ndarray]:
    """A uint8 volume written by plain CloudVolume: 64 x 64 x 4 at 8 nm from (0, 0, 0)."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=[8, 8, 40],
        voxel_offset=[0, 0, 0],
        volume_size=[64, 64, 4],
        chunk_size=[32, 32, 4],
    )
    path = f"file://{tmp_path}/v"
    cv = CloudVolume(path, info=info, compress=False, progress=False)
    cv.commit_info()
    data = np.random.default_rng(0).integers(0, 255, size=(64, 64, 4, 1), dtype=np.uint8)
    cv[cv.bounds] = data
    return path, data[..., 0]


def _layer(path: str, **procs: Any) -> Any:
    return builder.build({"@type": "build_cv_layer", "path": path, **procs})


def test_index_translator_overrider_padder(volume: tuple[str, np.ndarray]) -> None:
    path, data = volume
    idx = VolumetricIndex.from_coords((0, 0, 0), (8, 8, 1), R8)
    translated = builder.build(
        {"@type": "VolumetricIndexTranslator", "offset": [2, 4, 0], "resolution": [4, 4, 40]}
    )(idx)
    assert (translated.start, translated.stop) == (Vec3D(1, 2, 0), Vec3D(9, 10, 1))
    # 2 and 4 voxels at 4 nm are 1 and 2 voxels at 8 nm
    translator = {
        "@type": "VolumetricIndexTranslator",
        "offset": [2, 4, 0],
        "resolution": [4, 4, 40],
    }
    moved = _layer(path, index_procs=[translator])
    assert np.array_equal(moved[R8, 0:8, 0:8, 0:1][0, :, :, 0].numpy(), data[1:9, 2:10, 0])
    overrider = builder.build(
        {
            "@type": "VolumetricIndexOverrider",
            "override_offset": [10, None, None],
            "override_size": [None, 4, None],
        }
    )
    over = overrider(idx)
    assert (over.start, over.shape, over.resolution) == (Vec3D(10, 0, 0), Vec3D(8, 4, 1), R8)
    to16 = builder.build(
        {"@type": "VolumetricIndexOverrider", "override_resolution": [16, 16, None]}
    )(idx)
    assert to16.resolution == R16 and to16.shape == Vec3D(8, 8, 1)
    padded = builder.build({"@type": "VolumetricIndexPadder", "pad": [1, 2, 0]})(idx)
    assert (padded.start, padded.stop) == (Vec3D(-1, -2, 0), Vec3D(9, 10, 1))


def test_data_resolution_interpolator(volume: tuple[str, np.ndarray]) -> None:
    path, _ = volume
    proc = {
        "@type": "DataResolutionInterpolator",
        "data_resolution": [8, 8, 40],
        "interpolation_mode": "img",
    }
    layer = _layer(path, read_procs=[proc])
    got = layer[R16, 0:4, 0:4, 0:1]
    direct = build_cv_layer(path, interpolation_mode="img")[R16, 0:4, 0:4, 0:1]
    assert got.shape == (1, 4, 4, 1)
    assert torch.equal(got, direct)


def test_invert_processor(volume: tuple[str, np.ndarray]) -> None:
    path, data = volume
    layer = _layer(path, read_procs=[{"@type": "InvertProcessor", "invert": True}])
    got = layer[R8, 0:64, 0:64, 0:4][0].numpy()
    assert np.array_equal(got, ((255 - data.astype(np.int64) + 2) % 256).astype(np.uint8))
    same = _layer(path, read_procs=[{"@type": "InvertProcessor", "invert": False}])
    assert np.array_equal(same[R8, 0:64, 0:64, 0:4][0].numpy(), data)


def test_roi_mask_processor(volume: tuple[str, np.ndarray]) -> None:
    path, _ = volume
    layer_set = builder.build(
        {
            "@type": "build_volumetric_layer_set",
            "layers": {"img": {"@type": "build_cv_layer", "path": path}},
            "read_procs": [
                {
                    "@type": "ROIMaskProcessor",
                    "start_coord": [4, 4, 0],
                    "end_coord": [12, 8, 4],
                    "resolution": [8, 8, 40],
                    "targets": ["img"],
                }
            ],
        }
    )
    got = layer_set[R8, 0:16, 0:16, 0:1]
    mask = got["img_mask"]
    assert mask.shape == got["img"].shape
    expected = torch.zeros_like(mask)
    expected[:, 4:12, 4:8, :] = 1
    assert torch.equal(mask, expected)


def test_clahe_is_refused_with_the_replacement() -> None:
    with pytest.raises(
        builder.UnsupportedTypeError, match=r"CLAHEProcessor' is not supported here: .*OpenCV"
    ):
        builder.build({"@type": "CLAHEProcessor"})


def test_constant_layer_reads_its_value_at_any_resolution() -> None:
    layer = builder.build(
        {"@type": "build_constant_volumetric_layer", "value": 2.5, "num_channels": 2}
    )
    for res in (R8, Vec3D(3, 7, 45)):
        got = layer[res, 0:4, 1:3, 0:1]
        assert got.shape == (2, 4, 2, 1) and bool((got == 2.5).all())
    with pytest.raises(Exception, match=r"(?i)read.?only|cannot be written"):
        layer[R8, 0:4, 0:4, 0:1] = torch.zeros(2, 4, 4, 1)


@pytest.mark.parametrize(
    "name",
    [
        "build_db_layer",
        "build_datastore_layer",
        "build_firestore_layer",
        "build_annotation_layer",
        "build_property_spec",
        "build_relationship",
        "build_volumetric_tabular_layer",
        "build_contact_layer",
        "build_seg_contact_layer",
        "build_seg_contact_info_spec",
        "normalize_pointclouds",
        "randomize_segment_identity",
    ],
)
def test_layers_of_the_original_not_included_say_so(name: str) -> None:
    with pytest.raises(
        builder.UnsupportedTypeError, match=rf"'{name}' is not supported here: .{{30,}}"
    ):
        builder.build({"@type": name})
