"""The original's ``info_*`` arguments of ``build_cv_layer`` / ``build_ts_layer`` (both its spec
versions), each against real volumes written by CloudVolume or TensorStore themselves, and read
back by those libraries after our layers wrote through the new infos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import InfoMismatchError
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

BUILDERS = {"cv": build_cv_layer, "ts": build_ts_layer}
KINDS = list(BUILDERS)


def _info(path: Path) -> dict[str, Any]:
    return json.loads((path / "info").read_text())


def _cv_volume(
    path: Path, resolutions: tuple[tuple[int, int, int], ...] = ((8, 8, 40), (16, 16, 40))
) -> None:
    """A two-scale uint8 volume as plain CloudVolume makes one (no "@type"), data in each scale."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=list(resolutions[0]),
        voxel_offset=[4, 8, 2],
        volume_size=[64, 48, 8],
        chunk_size=[32, 32, 4],
    )
    cv = CloudVolume(f"file://{path}", info=info, compress=False, progress=False)
    for res in resolutions[1:]:
        cv.add_scale([r // b for r, b in zip(res, resolutions[0])], chunk_size=[16, 16, 4])
    cv.commit_info()
    rng = np.random.default_rng(0)
    for mip in range(len(resolutions)):
        vol = CloudVolume(f"file://{path}", mip=mip, compress=False, progress=False)
        vol[vol.bounds] = rng.integers(1, 255, size=(*vol.bounds.size3(), 1), dtype=np.uint8)


def _plain_read(path: Path, resolution: tuple[int, int, int]) -> np.ndarray:
    from cloudvolume import CloudVolume

    cv = CloudVolume(f"file://{path}", mip=list(resolution), progress=False, fill_missing=True)
    return np.asarray(cv[cv.bounds])


def _write_all(layer: Any, resolution: tuple[int, int, int], value: int) -> None:
    bounds = layer.backend.get_bounds(Vec3D(*resolution))
    shape = (layer.backend.num_channels, *bounds.shape)
    layer[bounds] = torch.full(shape, value, dtype=layer.backend.dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_info_scales_with_info_bbox_from_scratch(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "new"
    layer = BUILDERS[kind](
        str(path),
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_encoding="raw",
        info_chunk_size=[16, 16, 2],
        info_scales=[[8, 8, 40], [16, 16, 40]],
        info_bbox=BBox3D.from_coords([8, 16, 40], [72, 80, 200], [1, 1, 1]),
    )
    scales = {s["key"]: s for s in _info(path)["scales"]}
    assert (scales["8_8_40"]["voxel_offset"], scales["8_8_40"]["size"]) == ([1, 2, 1], [8, 8, 4])
    # x [8, 72) nm at 16 nm: [0.5, 4.5) -> voxels 0 .. 5, covering the box
    assert (scales["16_16_40"]["voxel_offset"], scales["16_16_40"]["size"]) == (
        [0, 1, 1],
        [5, 4, 4],
    )
    _write_all(layer, (16, 16, 40), 7)
    assert (_plain_read(path, (16, 16, 40)) == 7).all()


@pytest.mark.parametrize("kind", KINDS)
def test_info_overwrite_and_keep_existing_scales(kind: str, tmp_path: Path) -> None:
    _cv_volume(tmp_path / "v")
    path = str(tmp_path / "v")
    build = BUILDERS[kind]
    before = _info(tmp_path / "v")
    # a new scale is an extension (the default); changing an existing scale is not
    build(path, info_scales=[[32, 32, 40]], info_chunk_size=[8, 8, 4])
    after = _info(tmp_path / "v")
    assert [s["key"] for s in after["scales"]] == ["8_8_40", "16_16_40", "32_32_40"]
    assert after["scales"][:2] == before["scales"] and "@type" not in after
    with pytest.raises(
        InfoMismatchError, match=r"scales\[16_16_40\]\.chunk_sizes: existing \[\[16,16,4\]\]"
    ):
        build(path, info_scales=[[16, 16, 40]], info_chunk_size=[8, 8, 4])
    build(path, info_scales=[[16, 16, 40]], info_chunk_size=[8, 8, 4], info_overwrite=True)
    assert _info(tmp_path / "v")["scales"][1]["chunk_sizes"] == [[8, 8, 4]]
    layer = build(
        path,
        info_scales=[[16, 16, 40]],
        info_keep_existing_scales=False,
        info_overwrite=True,
    )
    assert [s["key"] for s in _info(tmp_path / "v")["scales"]] == ["16_16_40"]
    _write_all(layer, (16, 16, 40), 3)
    assert (_plain_read(tmp_path / "v", (16, 16, 40)) == 3).all()


@pytest.mark.parametrize("kind", KINDS)
def test_field_overrides_and_per_scale_maps(kind: str, tmp_path: Path) -> None:
    _cv_volume(tmp_path / "ref")
    dst = tmp_path / "dst"
    layer = BUILDERS[kind](
        str(dst),
        info_reference_path=str(tmp_path / "ref"),
        info_field_overrides={"type": "segmentation", "data_type": "uint32", "mesh": "mesh"},
        info_encoding="compressed_segmentation",
        info_chunk_size_map={"16_16_40": [8, 8, 2]},
        info_voxel_offset_map={"16_16_40": [0, 0, 0]},
        info_dataset_size_map={"16_16_40": [40, 32, 10]},
    )
    info = _info(dst)
    assert (info["type"], info["data_type"], info["mesh"]) == ("segmentation", "uint32", "mesh")
    s8, s16 = info["scales"]
    assert s8["chunk_sizes"] == [[32, 32, 4]] and s8["size"] == [64, 48, 8]
    assert (s16["chunk_sizes"], s16["voxel_offset"], s16["size"]) == (
        [[8, 8, 2]],
        [0, 0, 0],
        [40, 32, 10],
    )
    assert {s["encoding"] for s in (s8, s16)} == {"compressed_segmentation"}
    _write_all(layer, (16, 16, 40), 12345)
    assert (_plain_read(dst, (16, 16, 40)) == 12345).all()


def _ts_sharded(path: Path) -> None:
    import tensorstore as ts

    store = ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": f"file://{path}/",
            "multiscale_metadata": {"type": "image", "data_type": "uint8", "num_channels": 1},
            "scale_metadata": {
                "resolution": [8, 8, 40],
                "encoding": "raw",
                "chunk_size": [16, 16, 4],
                "size": [64, 64, 8],
                "voxel_offset": [0, 0, 0],
                "sharding": {
                    "@type": "neuroglancer_uint64_sharded_v1",
                    "preshift_bits": 0,
                    "hash": "identity",
                    "minishard_bits": 1,
                    "shard_bits": 1,
                    "minishard_index_encoding": "raw",
                    "data_encoding": "gzip",
                },
            },
        },
        create=True,
    ).result()
    store.write(np.full((64, 64, 8, 1), 9, dtype=np.uint8)).result()


@pytest.mark.parametrize("kind", KINDS)
def test_add_scales_ref_mode_and_exclude_fields(kind: str, tmp_path: Path) -> None:
    _ts_sharded(tmp_path / "ref")
    ref = str(tmp_path / "ref")
    build = BUILDERS[kind]
    # the guide-era spec: one unsharded coarser scale, derived from the sharded reference
    layer = build(
        str(tmp_path / "a"),
        info_reference_path=ref,
        info_add_scales=[[16, 16, 40]],
        info_add_scales_ref="8_8_40",
        info_add_scales_mode="replace",
        info_add_scales_exclude_fields=["sharding"],
        info_chunk_size=[16, 16, 2],
        on_info_exists="overwrite",
    )
    (scale,) = _info(tmp_path / "a")["scales"]
    assert (scale["key"], scale["size"], scale["chunk_sizes"]) == (
        "16_16_40",
        [32, 32, 8],
        [[16, 16, 2]],
    )
    assert "sharding" not in scale
    _write_all(layer, (16, 16, 40), 5)  # CloudVolume can write it: it is not sharded
    assert (_plain_read(tmp_path / "a", (16, 16, 40)) == 5).all()
    # merge (the default) keeps the reference's scales; the new one copies the sharding too
    build(
        str(tmp_path / "b"), info_reference_path=ref, info_add_scales=[{"resolution": [16, 16, 40]}]
    )
    scales = _info(tmp_path / "b")["scales"]
    assert [s["key"] for s in scales] == ["8_8_40", "16_16_40"]
    assert scales[1]["sharding"] == scales[0]["sharding"]
    # a whole scale dict as the reference scale
    ref_scale = {**_info(tmp_path / "ref")["scales"][0], "chunk_sizes": [[8, 8, 8]]}
    ref_scale.pop("sharding")
    build(
        str(tmp_path / "c"),
        info_reference_path=ref,
        info_add_scales=[[32, 32, 40]],
        info_add_scales_ref=ref_scale,
    )
    assert _info(tmp_path / "c")["scales"][1]["chunk_sizes"] == [[8, 8, 8]]


@pytest.mark.parametrize("kind", KINDS)
def test_only_retain_scales_and_extend_if_exists(kind: str, tmp_path: Path) -> None:
    _cv_volume(tmp_path / "ref")
    dst = tmp_path / "dst"
    build = BUILDERS[kind]
    build(
        str(dst), info_reference_path=str(tmp_path / "ref"), info_only_retain_scales=[[16, 16, 40]]
    )
    assert [s["key"] for s in _info(dst)["scales"]] == ["16_16_40"]
    # the existing info is the base (info_extend_if_exists): the reference's 8 nm does not return
    build(str(dst), info_reference_path=str(tmp_path / "ref"))
    assert [s["key"] for s in _info(dst)["scales"]] == ["16_16_40"]
    build(
        str(dst),
        info_reference_path=str(tmp_path / "ref"),
        info_extend_if_exists=False,
    )  # the reference's info is a pure extension of the existing one
    assert [s["key"] for s in _info(dst)["scales"]] == ["8_8_40", "16_16_40"]


@pytest.mark.parametrize("kind", KINDS)
def test_extra_scale_data_and_inherit_all_params(kind: str, tmp_path: Path) -> None:
    _cv_volume(tmp_path / "ref")
    ref_info = _info(tmp_path / "ref")
    ref_info["scales"][0]["zz_note"] = "inherited"
    ref_info["segment_properties"] = "props"
    (tmp_path / "ref" / "info").write_text(json.dumps(ref_info))
    build = BUILDERS[kind]
    build(
        str(tmp_path / "a"),
        info_reference_path=str(tmp_path / "ref"),
        info_scales=[[32, 32, 40]],
        info_extra_scale_data={"zz_extra": 1},
        inherit_all_params=True,  # the name one of the original's versions used
    )
    info = _info(tmp_path / "a")
    assert info["segment_properties"] == "props"
    (scale,) = info["scales"]
    assert (scale["zz_note"], scale["zz_extra"], scale["size"]) == ("inherited", 1, [16, 12, 8])
    with pytest.raises(ValueError, match="inherit_all_params=False contradicts"):
        build(str(tmp_path / "b"), info_inherit_all_params=True, inherit_all_params=False)


@pytest.mark.parametrize("kind", KINDS)
def test_on_info_exists_modes(kind: str, tmp_path: Path) -> None:
    _cv_volume(tmp_path / "v")
    path = str(tmp_path / "v")
    with pytest.raises(
        InfoMismatchError, match=r"on_info_exists='expect_same'.*\n  scales\[32_32_40\]"
    ):
        BUILDERS[kind](path, info_add_scales=[[32, 32, 40]], on_info_exists="expect_same")
    BUILDERS[kind](path, info_add_scales=[[32, 32, 40]])  # "extend", the default
    assert len(_info(tmp_path / "v")["scales"]) == 3


def test_mask_value_thr(tmp_path: Path) -> None:
    _cv_volume(tmp_path / "v", resolutions=((8, 8, 40),))
    for thr, expected in ((0, True), (254, False)):
        layer = build_ts_layer(str(tmp_path / "v"), interpolation_mode="mask", mask_value_thr=thr)
        got = layer[Vec3D(16, 16, 40), 2:4, 4:6, 2:3]
        assert bool(got.all()) is expected, thr


def test_cv_kwargs(tmp_path: Path) -> None:
    _cv_volume(tmp_path / "v", resolutions=((8, 8, 40),))
    (tmp_path / "v" / "8_8_40" / "4-36_8-40_2-6").unlink()
    strict = build_cv_layer(str(tmp_path / "v"), cv_kwargs={"fill_missing": False})
    from cloudvolume.exceptions import EmptyVolumeException

    with pytest.raises(EmptyVolumeException, match="4-36_8-40_2-6"):
        strict[Vec3D(8, 8, 40), 4:36, 8:40, 2:6]
    assert not build_cv_layer(str(tmp_path / "v"))[Vec3D(8, 8, 40), 4:36, 8:40, 2:6].any()
    with pytest.raises(ValueError, match=r"cv_kwargs: parallel cannot be set"):
        build_cv_layer(str(tmp_path / "v"), cv_kwargs={"parallel": 2})
    # CloudVolume's compress=True is gzip: *.gz files TensorStore cannot see, refused locally
    with pytest.raises(ValueError, match=r"compress='gzip' is refused for file:// paths"):
        build_cv_layer(str(tmp_path / "v"), cv_kwargs={"compress": True})


def test_a_guide_era_spec_builds(tmp_path: Path) -> None:
    # the original's README-era arguments, as a spec without "@version" (so the default 0.4)
    _cv_volume(tmp_path / "src")
    spec = {
        "@type": "build_cv_layer",
        "path": str(tmp_path / "dst"),
        "info_reference_path": str(tmp_path / "src"),
        "on_info_exists": "overwrite",
        "info_add_scales": [[32, 32, 40]],
        "info_chunk_size": [16, 16, 2],
        "info_add_scales_exclude_fields": ["sharding"],
        "info_add_scales_mode": "replace",
    }
    layer = builder.build(spec)
    assert [s["key"] for s in _info(tmp_path / "dst")["scales"]] == ["32_32_40"]
    assert layer.backend.get_chunk_size(Vec3D(32, 32, 40)) == Vec3D(16, 16, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_scale_from_a_reference_keeps_the_existing_top_level(
    kind: str, tmp_path: Path
) -> None:
    # dst made by CloudVolume (no "@type", extra keys), reference made by TensorStore ("@type")
    _cv_volume(tmp_path / "dst", resolutions=((8, 8, 40),))
    info = _info(tmp_path / "dst")
    info["mesh"] = "mesh"
    (tmp_path / "dst" / "info").write_text(json.dumps(info))
    _ts_sharded(tmp_path / "ref")
    BUILDERS[kind](
        str(tmp_path / "dst"),
        info_reference_path=str(tmp_path / "ref"),
        info_scales=[[32, 32, 40]],
        info_chunk_size=[8, 8, 4],
    )
    after = _info(tmp_path / "dst")
    assert {k: v for k, v in after.items() if k != "scales"} == {
        k: v for k, v in info.items() if k != "scales"
    }
    assert [s["key"] for s in after["scales"]] == ["8_8_40", "32_32_40"]
    assert after["scales"][0] == info["scales"][0]
