"""The demo volume: its info (the guide's FAFB facts), content, determinism, and writer rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zetta_utils.demo import tissue, volume
from zetta_utils.demo.tissue import TissueParams, render_section
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.tensor_ops import interpolate

pytestmark = pytest.mark.slow

GUIDE_BOUNDS = (
    "VolumetricIndex(resolution=Vec3D(4, 4, 40), bbox=BBox3D(bounds=((0, 1048576), (0, 524288), "
    "(0, 282560)), unit='nm', pprint_px_resolution=(1, 1, 1)), chunk_id=0, "
    "allow_slice_rounding=False)"
)


def layer(demo_dir: Path, name: str, backend: str = "ts") -> object:
    build = build_ts_layer if backend == "ts" else build_cv_layer
    return build(path=f"file://{demo_dir}/{name}")


@pytest.mark.parametrize("backend", ["ts", "cv"])
def test_info_states_the_guide_facts(demo_dir: Path, backend: str) -> None:
    for name, dtype in (("img_norm", torch.float32), ("img", torch.uint8)):
        lay = layer(demo_dir, name, backend)
        b = lay.backend  # type: ignore[attr-defined]
        assert repr(b.get_bounds(Vec3D(4, 4, 40))) == GUIDE_BOUNDS
        assert b.get_chunk_size(Vec3D(4, 4, 40)) == Vec3D(1024, 1024, 1)
        assert b.get_voxel_offset(Vec3D(4, 4, 40)) == Vec3D(0, 0, 0)
        assert b.get_dataset_size(Vec3D(4, 4, 40)) == Vec3D(262144, 131072, 7064)
        assert b.get_dataset_size(Vec3D(64, 64, 40)) == Vec3D(16384, 8192, 7064)
        assert [tuple(r) for r in b.get_resolutions()] == [
            (4, 4, 40),
            (8, 8, 40),
            (16, 16, 40),
            (32, 32, 40),
            (64, 64, 40),
        ]
        assert b.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(1024, 1024, 1)
        assert b.dtype == dtype


def test_img_norm_is_normalised_img(demo_dir: Path) -> None:
    idx = VolumetricIndex.from_coords((29696, 16384, 2000), (30720, 17408, 2010), (16, 16, 40))
    norm = layer(demo_dir, "img_norm")[idx].numpy()  # type: ignore[index]
    img = layer(demo_dir, "img")[idx].numpy()  # type: ignore[index]
    np.testing.assert_array_equal(norm, volume.normalise_img(img))
    assert abs(float(norm.mean())) < 0.15
    assert abs(float(norm.std()) - 1) < 0.15
    assert -4.7 < norm.min() < -2.5 and 1.5 < norm.max() < 3.2
    assert np.mean((norm > -3) & (norm < 3)) > 0.98


def test_guide_regions_hold_tissue_and_the_rest_reads_zeros(demo_dir: Path) -> None:
    img = layer(demo_dir, "img")
    for region in volume.DEMO_REGIONS:
        if region.name not in ("guide_64nm", "subchunkable", "layer_set"):
            continue
        for res in region.scales():
            start, stop = region.box_at(res)
            probe = VolumetricIndex.from_coords(start, (stop[0], stop[1], start[2] + 1), res)
            data = img[probe].numpy()  # type: ignore[index]
            assert data.std() > 10, (region.name, res)
            assert data.min() < 80 < 180 < data.max(), (
                region.name,
                res,
            )  # dark membranes, light cells
    outside = VolumetricIndex.from_coords((5000, 5000, 2000), (5256, 5256, 2001), (64, 64, 40))
    assert not img[outside].numpy().any()  # type: ignore[index]
    other_section = VolumetricIndex.from_coords(
        (12800, 3840, 1999), (13056, 4096, 2000), (64, 64, 40)
    )
    assert not img[other_section].numpy().any()  # type: ignore[index]


def test_pyramid_is_the_downsampled_rendering(demo_dir: Path) -> None:
    img = layer(demo_dir, "img")
    fine = img[
        VolumetricIndex.from_coords((29696, 16384, 2003), (30720, 17408, 2004), (16, 16, 40))
    ]  # type: ignore[index]
    coarse = img[VolumetricIndex.from_coords((7424, 4096, 2003), (7680, 4352, 2004), (64, 64, 40))]  # type: ignore[index]
    torch.testing.assert_close(
        coarse, interpolate(fine, scale_factor=(0.25, 0.25, 1), mode="img"), rtol=0, atol=0
    )
    # and the stored 64 nm data equals the rendering of that region
    expected = render_section(TissueParams(), (16, 16), (29696, 16384), (1024, 1024), 2003)
    np.testing.assert_array_equal(fine.numpy()[0, :, :, 0], expected)


def test_sections_repeat_with_the_period_through_links(demo_dir: Path) -> None:
    img_norm = layer(demo_dir, "img_norm")
    a = img_norm[VolumetricIndex.from_coords((768, 768, 2003), (2048, 2048, 2004), (64, 64, 40))]  # type: ignore[index]
    b = img_norm[VolumetricIndex.from_coords((768, 768, 2093), (2048, 2048, 2094), (64, 64, 40))]  # type: ignore[index]
    c = img_norm[VolumetricIndex.from_coords((768, 768, 2004), (2048, 2048, 2005), (64, 64, 40))]  # type: ignore[index]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # neighbouring sections are related: strongly correlated, not identical
    corr = np.corrcoef(a.numpy().ravel(), c.numpy().ravel())[0, 1]
    assert 0.3 < corr < 0.99
    src = demo_dir / "img_norm" / "64_64_40" / "768-1024_768-1024_2003-2004"
    copy = demo_dir / "img_norm" / "64_64_40" / "768-1024_768-1024_2093-2094"
    assert os.path.samefile(src, copy)  # one file on disk
    on_disk, apparent = volume.disk_usage(str(demo_dir))
    assert apparent > 3 * on_disk


def test_same_seed_same_bytes_and_regions_are_independent(demo_dir: Path, tmp_path: Path) -> None:
    """Writing one region alone gives byte-identical chunk files (and info) to the shared demo
    written with other regions, so tests may write subsets."""
    # An interrupted run left the demo's infos and no manifest: the writer takes the volume over.
    for name, dtype in (("img", "uint8"), ("img_norm", "float32")):
        build_ts_layer(path=f"file://{tmp_path / 'alone' / name}", **volume._info_kwargs(dtype))
    result = volume.write_demo_volume(str(tmp_path / "alone"), regions=["guide_64nm"], threads=1)
    assert result.generated and result.regions == ("guide_64nm",)
    for name in volume.LAYER_NAMES:
        scale_dir = Path(result.directory) / name / "64_64_40"
        files = sorted(p.name for p in scale_dir.iterdir())
        assert len(files) == 4 * 3 * 4  # x chunks * y chunks * sections
        for f in files:
            assert (scale_dir / f).read_bytes() == (
                demo_dir / name / "64_64_40" / f
            ).read_bytes(), f
        assert (Path(result.directory) / name / "info").read_bytes() == (
            demo_dir / name / "info"
        ).read_bytes()
    again = volume.write_demo_volume(str(tmp_path / "alone"), regions=["guide_64nm"])
    assert not again.generated  # the manifest says it is there


def test_rendering_is_deterministic_chunk_independent_and_seeded() -> None:
    p = TissueParams()
    whole = render_section(p, (16, 16), (1000, 2000), (96, 80), 2001)
    np.testing.assert_array_equal(whole, render_section(p, (16, 16), (1000, 2000), (96, 80), 2001))
    parts = np.block(
        [
            [render_section(p, (16, 16), (1000 + x, 2000 + y), (48, 40), 2001) for y in (0, 40)]
            for x in (0, 48)
        ]
    )
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(
        whole, render_section(p, (16, 16), (1000, 2000), (96, 80), 2001 + p.z_period)
    )
    other_seed = render_section(TissueParams(seed=1), (16, 16), (1000, 2000), (96, 80), 2001)
    assert np.mean(other_seed != whole) > 0.5
    assert whole.dtype == np.uint8


def test_hash_uniform_is_uniform_and_keyed() -> None:
    u = tissue.hash_uniform(7, np.arange(100_000))
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - (1 / 12) ** 0.5) < 0.01
    assert not np.array_equal(u, tissue.hash_uniform(8, np.arange(100_000)))


def test_writer_refuses_bad_input_and_foreign_volumes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown region 'nope'"):
        volume.write_demo_volume(str(tmp_path / "a"), regions=["nope"])
    with pytest.raises(ValueError, match="regions: expected a list"):
        volume.write_demo_volume(str(tmp_path / "a"), regions="guide_64nm")
    with pytest.raises(ValueError, match="seed"):
        volume.write_demo_volume(str(tmp_path / "a"), seed=-1)
    with pytest.raises(ValueError, match="local directory"):
        volume.write_demo_volume("gs://bucket/demo")
    with pytest.raises(ValueError, match="threads"):
        volume.write_demo_volume(str(tmp_path / "a"), threads=0)
    mine = build_ts_layer(
        path=f"file://{tmp_path / 'mine' / 'img'}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_chunk_size=(64, 64, 1),
        info_scales=[(64, 64, 40)],
        info_dataset_size=(64, 64, 1),
    )
    mine[(64, 64, 40), 0:64, 0:64, 0:1] = np.full((1, 64, 64, 1), 7, dtype=np.uint8)
    info_before = (tmp_path / "mine" / "img" / "info").read_bytes()
    with pytest.raises(FileExistsError, match="not made by write_demo_volume"):
        volume.write_demo_volume(str(tmp_path / "mine"), regions=["guide_64nm"])
    assert (tmp_path / "mine" / "img" / "info").read_bytes() == info_before
    assert (mine[(64, 64, 40), 0:64, 0:64, 0:1] == 7).all()
    broken = tmp_path / "broken" / "img_norm"
    broken.mkdir(parents=True)
    (broken / "info").write_text(json.dumps({"not": "an info"}))
    with pytest.raises(FileExistsError, match="not made by write_demo_volume"):
        volume.write_demo_volume(str(tmp_path / "broken"), regions=["guide_64nm"])
    assert json.loads((broken / "info").read_text()) == {"not": "an info"}
    assert not (tmp_path / "broken" / "img").exists()  # nothing written before the refusal


def test_demo_layer_path() -> None:
    assert volume.demo_layer_path() == "file://~/.zetta_utils/demo/fafb_v15/img_norm"
    assert volume.demo_layer_path("img", "/data/demo/") == "file:///data/demo/img"
    with pytest.raises(ValueError, match="layer"):
        volume.demo_layer_path("seg")


def test_regions_do_not_overlap_and_are_chunk_aligned() -> None:
    volume._check_disjoint(volume.DEMO_REGIONS)
    tiles = volume._plan(volume.DEMO_REGIONS, TissueParams().z_period)  # checks every tile
    assert {t.region.name for t in tiles} == set(volume.REGION_NAMES)
    layer_set = [t for t in tiles if t.region.name == "layer_set"]
    assert {t.z for t in layer_set} == set(range(2000, 2010))
    assert all(len(t.copies) == 9 for t in layer_set)
