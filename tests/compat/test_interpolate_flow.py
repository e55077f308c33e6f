"""InterpolateOperation and build_interpolate_flow: downsampling a volume written by CloudVolume
itself, as the original's specs do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cloudvolume import CloudVolume

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.tensor_ops import interpolation

RES = [4, 4, 40]
SIZE = (64, 64, 2)


def _cloudvolume(path: Path, data: np.ndarray) -> str:
    url = f"file://{path}"
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=RES,
        voxel_offset=[0, 0, 0],
        chunk_size=[16, 16, 1],
        volume_size=list(SIZE),
    )
    vol = CloudVolume(url, info=info, progress=False)
    vol.add_scale([2, 2, 1])
    vol.add_scale([4, 4, 1])
    vol.commit_info()
    vol[:, :, :] = np.moveaxis(data, 0, -1)  # CloudVolume takes XYZC
    return url


def _scale(url: str, mip: int) -> np.ndarray:
    return np.moveaxis(np.asarray(CloudVolume(url, mip=mip, progress=False)[:, :, :]), -1, 0)


def _expected(data: np.ndarray, factor: int) -> np.ndarray:
    out = interpolation.interpolate(torch.from_numpy(data), [1 / factor, 1 / factor, 1], "img")
    return out.numpy()


@pytest.fixture
def volume(tmp_path: Path) -> tuple[str, np.ndarray]:
    data = np.random.default_rng(3).integers(0, 256, size=(1, *SIZE), dtype=np.uint8)
    return _cloudvolume(tmp_path / "img", data), data


def _bbox() -> dict[str, Any]:
    return {
        "@type": "BBox3D.from_coords",
        "start_coord": [0, 0, 0],
        "end_coord": list(SIZE),
        "resolution": RES,
    }


def test_build_interpolate_flow_writes_each_scale_from_the_previous(
    volume: tuple[str, np.ndarray],
) -> None:
    url, data = volume
    spec = {
        "@type": "mazepa.execute_locally",
        "show_progress": False,
        "target": {
            "@type": "build_interpolate_flow",
            "src": {"@type": "build_cv_layer", "path": url},
            "dst": None,
            "src_resolution": RES,
            "dst_resolutions": [[16, 16, 40], [8, 8, 40]],  # put in order finest first
            "mode": "img",
            "processing_chunk_sizes": [[16, 16, 1]],
            "skip_intermediaries": True,
            "bbox": _bbox(),
        },
    }
    summary = builder.build(spec)
    assert summary.tasks_done == 2 * 2 * 2 + 2  # 32x32x2 at 8 nm in 16x16x1 chunks, then 16x16x2
    half = _scale(url, 1)
    np.testing.assert_array_equal(half, _expected(data, 2))
    np.testing.assert_array_equal(_scale(url, 2), _expected(half, 2))


def test_interpolate_operation_in_a_subchunkable_flow_with_a_crop(
    volume: tuple[str, np.ndarray],
) -> None:
    url, data = volume
    spec: dict[str, Any] = {
        "@type": "mazepa.execute_locally",
        "show_progress": False,
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "op": {"@type": "InterpolateOperation", "mode": "img", "res_change_mult": [2, 2, 1]},
            "op_kwargs": {"src": {"@type": "build_cv_layer", "path": url}},
            "dst": {"@type": "build_cv_layer", "path": url},
            "dst_resolution": [8, 8, 40],
            "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
            "processing_crop_pads": [[0, 0, 0], [2, 2, 0]],
            "level_intermediaries_dirs": [f"{url}_tmp", None],
            "skip_intermediaries": False,
            "bbox": _bbox(),
        },
    }
    builder.build(spec)
    np.testing.assert_array_equal(_scale(url, 1), _expected(data, 2))


def test_interpolate_operation_arguments() -> None:
    spec = {"@type": "InterpolateOperation", "mode": "segmentation", "res_change_mult": [2, 2, 1]}
    op = builder.build(spec)
    assert op.get_operation_name() == "Interpolate<segmentation>"
    assert tuple(op.get_input_resolution(Vec3D(8, 8, 40))) == (4, 4, 40)
    with pytest.raises(ValueError, match="mode"):
        builder.build({**spec, "mode": "bogus"})
    with pytest.raises(ValueError, match="res_change_mult"):
        builder.build({**spec, "res_change_mult": [0, 2, 1]})
    with pytest.raises(ValueError, match="whole number"):
        builder.build({**spec, "res_change_mult": [0.5, 0.5, 1]}).with_added_crop_pad([1, 1, 0])
    with pytest.raises(ValueError, match="cannot be ordered"):
        builder.build(
            {
                "@type": "build_interpolate_flow",
                "src": None,
                "dst": None,
                "src_resolution": RES,
                "dst_resolutions": [[8, 16, 40], [16, 8, 40]],
                "mode": "img",
                "processing_chunk_sizes": [[8, 8, 1]],
            }
        )
