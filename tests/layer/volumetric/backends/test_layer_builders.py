"""``build_cv_layer`` and ``build_ts_layer``: the guide's usage, identical results, the builder."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import CVBackend, build_cv_layer
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.precomputed import get_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend, build_ts_layer

from .helpers import fafb_like_info, write_info_file

BUILDERS = {"cv": build_cv_layer, "ts": build_ts_layer}


def test_same_arguments() -> None:
    cv_params = inspect.signature(build_cv_layer).parameters
    ts_params = inspect.signature(build_ts_layer).parameters
    # the same arguments, and CloudVolume's own constructor arguments (the original's cv_kwargs)
    assert [n for n in cv_params if n != "cv_kwargs"] == list(ts_params)
    assert all(cv_params[n].default == ts_params[n].default for n in ts_params)
    assert (
        builder.get_matching_entry("build_cv_layer", builder.DEFAULT_VERSION).fn is build_cv_layer
    )  # type: ignore[call-arg]
    assert (
        builder.get_matching_entry("build_ts_layer", builder.DEFAULT_VERSION).fn is build_ts_layer
    )  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", ["cv", "ts"])
def test_guide_write_example(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ref = write_info_file(str(tmp_path / "fafb"), fafb_like_info())
    cvl = BUILDERS[kind](
        path="file://~/zetta_utils_temp/temp",
        info_reference_path=ref,
        info_chunk_size=(128, 128, 1),
        info_scales=[(8, 8, 40)],
        info_inherit_all_params=True,
    )
    assert isinstance(cvl, VolumetricLayer)
    assert isinstance(cvl.backend, CVBackend if kind == "cv" else TSBackend)
    idx = VolumetricIndex.from_coords(
        start_coord=Vec3D(0, 0, 0), end_coord=Vec3D(128, 128, 1), resolution=Vec3D(8, 8, 40)
    )
    tensor = torch.ones((1, 128, 128, 1), dtype=torch.float32)
    cvl[idx] = tensor
    assert os.path.exists(tmp_path / "zetta_utils_temp" / "temp" / "8_8_40" / "0-128_0-128_0-1")
    assert torch.equal(cvl[idx], tensor)
    assert cvl.backend.get_chunk_size(Vec3D(8, 8, 40)) == Vec3D(128, 128, 1)
    # the other builder accepts the same arguments on the existing volume and reads the same
    other = BUILDERS["ts" if kind == "cv" else "cv"](
        path="file://~/zetta_utils_temp/temp",
        info_reference_path=ref,
        info_chunk_size=(128, 128, 1),
        info_scales=[(8, 8, 40)],
        info_inherit_all_params=True,
    )
    assert torch.equal(other[Vec3D(8, 8, 40), 0:130, 0:128, 0:1][:, :128], tensor)


@pytest.fixture
def volume(tmp_path: Path) -> str:
    """A two-scale float32 volume with a gradient written at 8 nm and 16 nm."""
    path = str(tmp_path / "img")
    layer = build_ts_layer(
        path,
        info_type="image",
        info_data_type="float32",
        info_num_channels=1,
        info_scales=[(8, 8, 40), (16, 16, 40)],
        info_chunk_size=(32, 32, 2),
        info_dataset_size=(128, 128, 4),
    )
    x = torch.arange(128, dtype=torch.float32)[:, None, None]
    y = torch.arange(128, dtype=torch.float32)[None, :, None]
    data = (x + 1000 * y + torch.zeros(1, 1, 4)).expand(128, 128, 4)[None].contiguous()
    layer[Vec3D(8, 8, 40), 0:128, 0:128, 0:4] = data
    layer[Vec3D(16, 16, 40), 0:64, 0:64, 0:4] = data[:, ::2, ::2]
    return path


def test_both_builders_give_identical_results(volume: str) -> None:
    kwargs = {
        "default_desired_resolution": (32, 32, 40),
        "index_resolution": (8, 8, 40),
        "interpolation_mode": "img",
    }
    results = {}
    for kind, build in BUILDERS.items():
        layer = build(volume, **kwargs)
        results[kind] = (
            layer[0:128, 0:128, 0:2],  # resampled from the 16 nm scale
            layer[Vec3D(8, 8, 40), 8:40, 0:16, 1:3],
            build(volume, data_resolution=(8, 8, 40), interpolation_mode="img")[
                Vec3D(64, 64, 40), 0:128, 0:128, 0:1
            ],
            layer.backend.get_bounds(Vec3D(16, 16, 40)),
        )
    cv, ts_ = results["cv"], results["ts"]
    assert cv[0].shape == (1, 32, 32, 2)
    for a, b in zip(cv[:3], ts_[:3], strict=True):
        assert torch.equal(a, b)
    assert cv[3] == ts_[3]
    assert cv[1][0, 0, 0, 0] == 8


def test_builder_spec_with_processors(volume: str) -> None:
    layer = builder.build(
        {
            "@type": "build_cv_layer",
            "path": volume,
            "read_procs": [{"@type": "lambda", "lambda_str": "lambda data: data * 2"}],
            "readonly": True,
        }
    )
    assert layer[Vec3D(8, 8, 40), 1:2, 0:1, 0:1].item() == 2.0
    with pytest.raises(Exception, match=r"(?i)read.?only"):
        layer[Vec3D(8, 8, 40), 0:32, 0:32, 0:2] = torch.zeros(1, 32, 32, 2)


def test_readonly_layers_never_write_the_info(volume: str) -> None:
    before = get_info(volume)
    for build in BUILDERS.values():
        with pytest.raises(PermissionError, match="readonly"):
            build(volume, readonly=True, info_chunk_size=(64, 64, 1), on_info_exists="overwrite")
    assert get_info(volume) == before


@pytest.mark.parametrize("kind", ["cv", "ts"])
def test_overwrite_mode_as_in_the_guide_specs(kind: str, volume: str, tmp_path: Path) -> None:
    dst = str(tmp_path / "dst")
    build = BUILDERS[kind]
    layer = build(
        dst, info_reference_path=volume, on_info_exists="overwrite", info_chunk_size=(64, 64, 1)
    )
    assert layer.backend.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(64, 64, 1)
    layer[Vec3D(16, 16, 40), 0:64, 0:64, 0:1] = torch.ones(1, 64, 64, 1)  # opens a handle
    # an existing info is the base (info_extend_if_exists): the reference alone changes nothing
    layer = build(dst, info_reference_path=volume, on_info_exists="overwrite")
    assert layer.backend.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(64, 64, 1)
    layer = build(
        dst, info_reference_path=volume, on_info_exists="overwrite", info_extend_if_exists=False
    )
    assert layer.backend.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(32, 32, 2)
    # the handle opened before the overwrite in this process is not reused: new chunk grid
    layer[Vec3D(16, 16, 40), 0:32, 0:32, 0:2] = torch.full((1, 32, 32, 2), 2.0)
    assert (tmp_path / "dst" / "16_16_40" / "0-32_0-32_0-2").exists()
    assert (layer[Vec3D(16, 16, 40), 0:32, 0:32, 0:2] == 2).all()
