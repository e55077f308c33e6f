"""Info-file management shared by both backends (zetta_utils.layer.volumetric.precomputed)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.layer.volumetric.precomputed import (
    InfoMismatchError,
    InfoSpec,
    diff_infos,
    ensure_info,
    get_info,
    parse_path,
    read_info,
    write_info,
)

from .helpers import fafb_like_info, small_info, write_info_file

# --- paths ---------------------------------------------------------------------------------------


def test_parse_path_forms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert parse_path("file://~/vol").url == f"file://{tmp_path}/vol"
    assert parse_path("~/vol/").url == f"file://{tmp_path}/vol"
    assert parse_path("rel/vol").url == f"file://{tmp_path}/rel/vol"
    assert parse_path("precomputed://gs://bucket/a/b/").url == "gs://bucket/a/b"
    s3 = parse_path("s3://bucket/x/y")
    assert (s3.scheme, s3.location, s3.key) == ("s3", "bucket", "x/y")
    https = parse_path("https://storage.googleapis.com/fafb/v0/img")
    assert (https.scheme, https.location, https.key, https.is_writable) == (
        "https",
        "storage.googleapis.com",
        "fafb/v0/img",
        False,
    )
    with pytest.raises(ValueError, match="unsupported scheme 'ftp'"):
        parse_path("ftp://host/x")
    with pytest.raises(ValueError, match="no bucket"):
        parse_path("gs:///x")


def test_s3_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ZETTA_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    vpath = parse_path("s3://bkt/vol")
    assert "endpoint" not in precomputed.tensorstore_kvstore_spec(vpath)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    assert precomputed.tensorstore_kvstore_spec(vpath)["endpoint"] == "http://generic:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3specific:2")
    assert precomputed.get_s3_endpoint() == "http://s3specific:2"
    monkeypatch.setenv("ZETTA_S3_ENDPOINT", "http://ours:3/")
    spec = precomputed.tensorstore_kvstore_spec(vpath)
    assert spec == {
        "driver": "s3",
        "bucket": "bkt",
        "path": "vol/",
        "endpoint": "http://ours:3",
        "aws_region": precomputed.get_s3_region(),
    }


def test_s3_credentials_from_environment_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in the environment: TensorStore takes them from there (no lookup of profile files);
    otherwise its default chain (profiles, instance metadata) is left to find them."""
    vpath = parse_path("s3://bkt/vol")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert "aws_credentials" not in precomputed.tensorstore_kvstore_spec(vpath)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    assert "aws_credentials" not in precomputed.tensorstore_kvstore_spec(vpath)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    spec = precomputed.tensorstore_kvstore_spec(vpath)
    assert spec["aws_credentials"] == {"type": "environment"}
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert "aws_credentials" not in precomputed.tensorstore_kvstore_spec(vpath)


# --- computing infos -----------------------------------------------------------------------------


def test_guide_example_inherits_reference(tmp_path: Path) -> None:
    ref = write_info_file(str(tmp_path / "ref"), fafb_like_info())
    info = ensure_info(
        f"file://{tmp_path}/new",
        InfoSpec(
            reference_path=ref,
            chunk_size=(128, 128, 1),
            scales=[(8, 8, 40)],
            inherit_all_params=True,
        ),
    )
    assert info["mesh"] == "mesh_dir"
    assert info["data_type"] == "float32"
    assert [s["key"] for s in info["scales"]] == ["8_8_40"]
    scale = info["scales"][0]
    assert scale["chunk_sizes"] == [[128, 128, 1]]
    assert scale["size"] == [131072, 65536, 7064]
    assert scale["extra_param"] == "kept"  # every scale parameter inherited
    assert get_info(str(tmp_path / "new")) == info


def test_reference_alone_is_copied_whole(tmp_path: Path) -> None:
    # the original's info_reference_path without info_scales: every key of the reference
    ref_info = fafb_like_info()
    ref_info["scales"][0]["sharding"] = {"@type": "neuroglancer_uint64_sharded_v1"}
    info = InfoSpec(reference_path="unused").make_info(None, ref_info)
    assert info == ref_info


def test_scales_without_inherit_take_only_the_essentials() -> None:
    ref_info = fafb_like_info()
    ref_info["scales"][0]["sharding"] = {"@type": "neuroglancer_uint64_sharded_v1"}
    info = InfoSpec(reference_path="r", scales=[(8, 8, 40)]).make_info(None, ref_info)
    assert "mesh" not in info
    assert set(info) == {"@type", "type", "data_type", "num_channels", "scales"}
    assert [set(s) for s in info["scales"]] == [
        {"key", "resolution", "voxel_offset", "size", "chunk_sizes", "encoding"}
    ]
    kept = InfoSpec(reference_path="r", scales=[(8, 8, 40)], inherit_all_params=True).make_info(
        None, ref_info
    )
    assert kept["mesh"] == "mesh_dir"
    assert kept["scales"][0]["extra_param"] == "kept"
    assert "sharding" not in kept["scales"][0]  # never inherited (NON_INHERITABLE_SCALE_KEYS)


def test_new_scale_is_derived_by_resolution_ratio() -> None:
    base = small_info(
        offset=(3, 5, 0), size=(10, 11, 4), chunk=(4, 4, 1), resolutions=((4, 4, 40),)
    )
    info = InfoSpec(scales=[(4, 4, 40), (8, 8, 40)], inherit_all_params=True).make_info(base)
    s8 = precomputed.find_scale(info, (8, 8, 40))
    assert s8 is not None
    # physical [12, 52) nm in x at 8 nm: floor(1.5) = 1 .. ceil(6.5) = 7
    assert s8["voxel_offset"] == [1, 2, 0]
    assert s8["size"] == [6, 6, 4]
    assert s8["chunk_sizes"] == [[4, 4, 1]]
    assert s8["key"] == "8_8_40"
    # the existing scales are kept (info_keep_existing_scales), a reference's are not
    assert [s["key"] for s in InfoSpec(scales=[(8, 8, 40)]).make_info(base)["scales"]] == [
        "4_4_40",
        "8_8_40",
    ]
    only8 = InfoSpec(scales=[(8, 8, 40)], keep_existing_scales=False).make_info(base)
    assert [s["key"] for s in only8["scales"]] == ["8_8_40"]
    from_ref = InfoSpec(reference_path="r", scales=[(8, 8, 40)]).make_info(None, base)
    assert [s["key"] for s in from_ref["scales"]] == ["8_8_40"]


def test_add_scales_forms_and_reference_scale() -> None:
    base = small_info(
        offset=(0, 0, 0), size=(64, 64, 8), chunk=(16, 16, 8), resolutions=((4, 4, 40), (8, 8, 40))
    )
    base["scales"][1]["chunk_sizes"] = [[8, 8, 4]]
    info = InfoSpec(
        add_scales=[(16, 16, 40), {"resolution": (32, 32, 80), "chunk_size": (2, 2, 2)}],
        add_scales_ref="8_8_40",
    ).make_info(base)
    assert [s["key"] for s in info["scales"]] == ["4_4_40", "8_8_40", "16_16_40", "32_32_80"]
    s16 = info["scales"][2]
    # derived from the reference scale (8 nm: 64 voxels = 512 nm), not the finest (4 nm: 256 nm)
    assert s16["chunk_sizes"] == [[8, 8, 4]]
    assert s16["size"] == [32, 32, 8]
    s32 = info["scales"][3]
    assert s32["chunk_sizes"] == [[2, 2, 2]]
    assert s32["size"] == [16, 16, 4]
    by_res = InfoSpec(add_scales=[(16, 16, 40)], add_scales_ref=(4, 4, 40)).make_info(base)
    assert by_res["scales"][2]["chunk_sizes"] == [[16, 16, 8]]
    assert by_res["scales"][2]["size"] == [16, 16, 8]
    with pytest.raises(
        ValueError, match=r"info_add_scales_ref: no scale '2_2_40'.*4_4_40 \(4, 4, 40\)"
    ):
        InfoSpec(add_scales=[(16, 16, 40)], add_scales_ref="2_2_40").make_info(base)


def test_overrides_apply_to_every_scale() -> None:
    base = small_info(
        data_type="uint64", resolutions=((8, 8, 40), (16, 16, 40)), layer_type="segmentation"
    )
    info = InfoSpec(
        encoding="compressed_segmentation",
        chunk_size=(64, 64, 1),
        voxel_offset=(100, 200, 3),
        dataset_size=(1000, 999, 7),
        num_channels=1,
    ).make_info(base)
    s8, s16 = info["scales"]
    # as the original's: the same voxel numbers in every scale (info_*_map sets one scale)
    for s in (s8, s16):
        assert s["voxel_offset"] == [100, 200, 3] and s["size"] == [1000, 999, 7]
    for s in (s8, s16):
        assert s["encoding"] == "compressed_segmentation"
        assert s["compressed_segmentation_block_size"] == [8, 8, 8]
        assert s["chunk_sizes"] == [[64, 64, 1]]
    mapped = InfoSpec(dataset_size_map={"16_16_40": (500, 500, 7)}).make_info(info)
    assert [s["size"] for s in mapped["scales"]] == [[1000, 999, 7], [500, 500, 7]]


def test_from_scratch_needs_the_essentials(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="needs info_type, info_data_type, info_num_channels, info_scales"
    ):
        ensure_info(str(tmp_path / "v"), InfoSpec(chunk_size=(8, 8, 8)))
    info = ensure_info(
        str(tmp_path / "v"),
        InfoSpec(
            type="segmentation",
            data_type="uint32",
            num_channels=1,
            scales=[(16, 16, 40), (8, 8, 40)],
            chunk_size=(32, 32, 4),
            dataset_size=(100, 100, 10),
            encoding="compressed_segmentation",
        ),
    )
    assert [s["key"] for s in info["scales"]] == ["8_8_40", "16_16_40"]
    assert info["scales"][1]["size"] == [50, 50, 10]
    assert info["scales"][0]["voxel_offset"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (InfoSpec(type="images"), "info_type: expected one of"),
        (InfoSpec(data_type="float64"), "info_data_type: expected one of"),
        (InfoSpec(encoding="jpg"), "info_encoding: expected one of"),
        (InfoSpec(chunk_size=(0, 1, 1)), "info_chunk_size: expected three positive integers"),
        (InfoSpec(num_channels=0), "info_num_channels: expected a positive integer"),
        (InfoSpec(scales=[(1, 2)]), r"info_scales\[0\]: expected three numbers"),
        (InfoSpec(encoding="jpeg", data_type="uint32"), "'jpeg' cannot store data_type 'uint32'"),
        (InfoSpec(encoding="compressed_segmentation"), "cannot store data_type 'uint8'"),
        (InfoSpec(add_scales_mode="extend"), "info_add_scales_mode: expected one of"),
        (InfoSpec(chunk_size_map={"8_8_40": (1, 2)}), r"info_chunk_size_map\['8_8_40'\]: expected"),
        (InfoSpec(field_overrides=[1]), "info_field_overrides: expected a dict"),  # type: ignore[arg-type]
        (
            InfoSpec(only_retain_scales=[(2, 2, 2)]),
            r"info_only_retain_scales: no scale \(2, 2, 2\)",
        ),
    ],
)
def test_bad_arguments_are_named(spec: InfoSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec.make_info(small_info())


# --- existing infos ------------------------------------------------------------------------------


def test_expect_same_names_the_differing_keys(tmp_path: Path) -> None:
    ref = write_info_file(str(tmp_path / "ref"), fafb_like_info())
    path = f"file://{tmp_path}/dst"
    args: dict[str, Any] = {
        "reference_path": ref,
        "scales": [(8, 8, 40)],
        "inherit_all_params": True,
    }
    ensure_info(path, InfoSpec(chunk_size=(64, 64, 1), **args))
    with pytest.raises(InfoMismatchError) as err:
        ensure_info(path, InfoSpec(chunk_size=(128, 128, 1), **args))
    assert "scales[8_8_40].chunk_sizes: existing [[64,64,1]] vs requested [[128,128,1]]" in str(
        err.value
    )
    assert "on_info_exists='overwrite'" in str(err.value)
    # unchanged on disk
    assert get_info(path)["scales"][0]["chunk_sizes"] == [[64, 64, 1]]
    ensure_info(path, InfoSpec(chunk_size=(128, 128, 1), **args), on_info_exists="overwrite")
    assert get_info(path)["scales"][0]["chunk_sizes"] == [[128, 128, 1]]


def test_diff_lists_every_difference() -> None:
    a = small_info(resolutions=((8, 8, 40), (16, 16, 40)))
    b = small_info(data_type="float32", resolutions=((8, 8, 40), (32, 32, 40)))
    b["scales"][0]["size"] = [1, 2, 3]
    lines = diff_infos(a, b)
    assert lines == [
        'data_type: existing "uint8" vs requested "float32"',
        "scales[8_8_40].size: existing [96,80,6] vs requested [1,2,3]",
        'scales[32_32_40]: existing (absent) vs requested '
        '{"chunk_sizes":[[32,32,2]],"encoding":"raw",'
        '"key":"32_32_40","resolution":[32,32,40],"size":[96,80,6],"voxel_offset":[10,20,3]}',
        'scales[16_16_40]: existing {"chunk_sizes":[[32,32,2]],"encoding":"raw","key":"16_16_40",'
        '"resolution":[16,16,40],"size":[96,80,6],"voxel_offset":[10,20,3]} vs requested (absent)',
    ]


def test_same_info_is_not_rewritten(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    os.utime(os.path.join(path, "info"), (1, 1))
    info = ensure_info(path, InfoSpec(data_type="uint8", chunk_size=(32, 32, 2)))
    assert info == small_info()
    assert os.stat(os.path.join(path, "info")).st_mtime == 1


def test_no_info_and_no_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no info file at .*pass info_reference_path"):
        ensure_info(str(tmp_path / "nothing"))


def test_readonly_never_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    ref = write_info_file(str(tmp_path / "r"), small_info())
    with pytest.raises(PermissionError, match="does not exist, and the layer is readonly"):
        ensure_info(path, InfoSpec(reference_path=ref), readonly=True)
    assert read_info(path) is None
    write_info(path, small_info())
    with pytest.raises(
        PermissionError, match="differs from the requested one, and the layer is readonly"
    ):
        ensure_info(path, InfoSpec(chunk_size=(8, 8, 8)), on_info_exists="overwrite", readonly=True)


def test_bad_on_info_exists(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match="on_info_exists: expected one of 'expect_same', 'extend', 'overwrite', got 'replace'",
    ):
        ensure_info(str(tmp_path), InfoSpec(), on_info_exists="replace")  # type: ignore[arg-type]


def test_info_file_is_readable_json_with_ints(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    text = (tmp_path / "v" / "info").read_text()
    assert json.loads(text)["scales"][0]["resolution"] == [8, 8, 40]
    assert "8.0" not in text
    assert oct(os.stat(tmp_path / "v" / "info").st_mode & 0o777) == oct(0o644)
    assert not [n for n in os.listdir(tmp_path / "v") if n != "info"]  # no temporary left


# --- concurrency ---------------------------------------------------------------------------------


def _create_many(args: tuple[str, int]) -> int:
    root, n = args
    for i in range(n):
        ensure_info(
            f"{root}/v{i}",
            InfoSpec(
                type="image",
                data_type="uint8",
                num_channels=1,
                scales=[(4, 4, 40), (8, 8, 40)],
                chunk_size=(64, 64, 1),
                dataset_size=(640, 640, 10),
            ),
        )
    return n


def test_concurrent_creation_with_expect_same_succeeds_everywhere(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        assert pool.map(_create_many, [(str(tmp_path), 40)] * 4) == [40] * 4
    for i in range(40):
        assert get_info(str(tmp_path / f"v{i}"))["scales"][1]["size"] == [320, 320, 10]


def _rewrite_loop(args: tuple[str, int]) -> int:
    path, n = args
    big = small_info()
    big["padding"] = "x" * 200_000  # a large info makes a torn read likely if writes were in place
    small = small_info(data_type="float32")
    for i in range(n):
        write_info(path, big if i % 2 else small)
    return n


def test_readers_never_see_a_partial_info(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        pending = pool.map_async(_rewrite_loop, [(path, 300)])
        reads = 0
        while not pending.ready() or reads < 50:
            info = read_info(path)  # raises on half-written JSON
            assert info is not None and info["data_type"] in ("uint8", "float32")
            reads += 1
        assert pending.get() == [300]


def test_guide_get_bounds_output(tmp_path: Path) -> None:
    from zetta_utils.layer.volumetric.tensorstore import TSBackend

    backend = TSBackend(write_info_file(str(tmp_path / "fafb"), fafb_like_info()))
    assert repr(backend.get_bounds(Vec3D(4, 4, 40))) == (
        "VolumetricIndex(resolution=Vec3D(4, 4, 40), bbox=BBox3D(bounds=((0, 1048576), (0, "
        "524288), "
        "(0, 282560)), unit='nm', pprint_px_resolution=(1, 1, 1)), chunk_id=0, "
        "allow_slice_rounding=False)"
    )
    assert repr(backend.get_chunk_size(Vec3D(4, 4, 40))) == "Vec3D(1024, 1024, 1)"
    assert repr(backend.get_voxel_offset(Vec3D(4, 4, 40))) == "Vec3D(0, 0, 0)"
    assert repr(backend.get_dataset_size(Vec3D(4, 4, 40))) == "Vec3D(262144, 131072, 7064)"
