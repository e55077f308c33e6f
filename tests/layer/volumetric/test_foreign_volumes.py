"""Volumes written by other tools open through both backends and read back what their writer
reads: plain CloudVolume with its default settings (no ``"@type"``, gzip chunk files on local
paths), plain TensorStore with its own info (sharded too), and every encoding CloudVolume can
write. An info with keys we do not know survives a ``zetta run`` that adds a scale to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.precomputed import TS_ENCODINGS
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

RES = (8, 8, 40)
OFFSET = (3, 5, 1)
SIZE = (70, 45, 9)  # not a multiple of the chunk: partial chunks at the ends
CHUNK = (32, 32, 4)

# (data type, layer type, encoding) as a user of each writer would choose them
KINDS = [
    ("uint8", "image", "raw"),
    ("float32", "image", "raw"),
    ("uint64", "segmentation", "compressed_segmentation"),
]


def _data(data_type: str, shape: tuple[int, ...], seed: int = 0) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    if data_type in ("float32", "float64"):
        return rng.standard_normal(shape).astype(data_type)
    if data_type == "int64":
        return rng.integers(-(2**40), 2**40, size=shape, dtype=np.int64)
    if data_type == "uint64":
        # large labels in runs, as segmentations have them (reads give int64: labels < 2**63)
        labels = rng.integers(0, 2**63 - 1, size=8, dtype=np.uint64, endpoint=True)
        return labels[rng.integers(0, 8, size=shape)]
    info = np.iinfo(np.dtype(data_type))
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(data_type)


def _stored(t: torch.Tensor, data_type: str) -> npt.NDArray[Any]:
    """A layer's CXYZ read as the stored XYZC array (uint64 labels come back as int64 bits)."""
    a = t.numpy().transpose(1, 2, 3, 0)
    return a.view(np.uint64) if data_type == "uint64" else a


def _read(layer: Any, data_type: str) -> npt.NDArray[Any]:
    lo = Vec3D(*OFFSET)
    hi = lo + Vec3D(*SIZE)
    return _stored(layer[Vec3D(*RES), lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], data_type)


def _cloudvolume(path: str, **kwargs: Any) -> Any:
    from cloudvolume import CloudVolume

    return CloudVolume(path, progress=False, **kwargs)


def _cv_write_default_volume(
    path: str, data_type: str, layer_type: str, encoding: str, compress: bool | None = None
) -> npt.NDArray[Any]:
    """A volume as plain CloudVolume makes it: ``create_new_info``, ``commit_info``, a write; its
    own settings unless ``compress`` is given. Returns what CloudVolume reads back."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type=layer_type,
        data_type=data_type,
        encoding=encoding,
        resolution=list(RES),
        voxel_offset=list(OFFSET),
        volume_size=list(SIZE),
        chunk_size=list(CHUNK),
    )
    kwargs = {} if compress is None else {"compress": compress}
    cv = _cloudvolume(path, info=info, **kwargs)
    cv.commit_info()
    data = _data(data_type, (*SIZE, 1))
    cv[cv.bounds] = data
    back = np.asarray(_cloudvolume(path)[_cloudvolume(path).bounds])
    assert np.array_equal(back, data)
    return back


@pytest.mark.parametrize(("data_type", "layer_type", "encoding"), KINDS)
def test_cloudvolume_defaults_read_back_exactly(
    tmp_path: Path, data_type: str, layer_type: str, encoding: str
) -> None:
    path = f"file://{tmp_path}/cv_default"
    expected = _cv_write_default_volume(path, data_type, layer_type, encoding)
    info = json.loads((tmp_path / "cv_default" / "info").read_text())
    assert "@type" not in info  # what CloudVolume writes: the key is optional
    # CloudVolume's default on local paths: gzip chunk files, which build_cv_layer reads
    assert any(n.endswith(".gz") for n in os.listdir(tmp_path / "cv_default" / "8_8_40"))
    assert np.array_equal(_read(build_cv_layer(path), data_type), expected)
    # TensorStore would see those files as missing chunks (zeros): refused, naming the way out
    with pytest.raises(ValueError, match=r"compressed chunk files.*build_cv_layer"):
        _read(build_ts_layer(path), data_type)


@pytest.mark.parametrize(("data_type", "layer_type", "encoding"), KINDS)
def test_cloudvolume_default_info_reads_through_both_backends(
    tmp_path: Path, data_type: str, layer_type: str, encoding: str
) -> None:
    path = f"file://{tmp_path}/cv"
    expected = _cv_write_default_volume(path, data_type, layer_type, encoding, compress=False)
    for build in (build_cv_layer, build_ts_layer):
        assert np.array_equal(_read(build(path), data_type), expected), build.__name__
    # opening it never rewrites its info
    assert "@type" not in json.loads((tmp_path / "cv" / "info").read_text())


def _ts_create(
    path: Path, data_type: str, layer_type: str, encoding: str, sharding: dict[str, Any] | None
) -> Any:
    import tensorstore as ts

    scale: dict[str, Any] = {
        "resolution": list(RES),
        "encoding": encoding,
        "chunk_size": list(CHUNK),
        "size": list(SIZE),
        "voxel_offset": list(OFFSET),
    }
    if sharding is not None:
        scale["sharding"] = sharding
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": f"{path}/"},
        "multiscale_metadata": {"type": layer_type, "data_type": data_type, "num_channels": 1},
        "scale_metadata": scale,
    }
    return ts.open(spec, create=True).result()


SHARDING = {
    "@type": "neuroglancer_uint64_sharded_v1",
    "preshift_bits": 1,
    "hash": "identity",
    "minishard_bits": 1,
    "shard_bits": 2,
    "minishard_index_encoding": "gzip",
    "data_encoding": "gzip",
}


@pytest.mark.parametrize(
    ("data_type", "layer_type", "encoding", "sharded"),
    [(*kind, False) for kind in KINDS]
    + [
        ("uint64", "segmentation", "compressed_segmentation", True),
        ("uint8", "image", "raw", True),
    ],
)
def test_tensorstore_volumes_read_back_exactly(
    tmp_path: Path, data_type: str, layer_type: str, encoding: str, sharded: bool
) -> None:
    store = _ts_create(
        tmp_path / "ts", data_type, layer_type, encoding, SHARDING if sharded else None
    )
    store.write(_data(data_type, (*SIZE, 1), seed=1)).result()
    expected = store.read().result()
    if sharded:
        assert (tmp_path / "ts" / "8_8_40").is_dir() and any(
            n.endswith(".shard") for n in os.listdir(tmp_path / "ts" / "8_8_40")
        )
    for build in (build_cv_layer, build_ts_layer):
        assert np.array_equal(_read(build(str(tmp_path / "ts")), data_type), expected), (
            build.__name__
        )


def test_sharded_scales_write_through_tensorstore(tmp_path: Path) -> None:
    import tensorstore as ts

    _ts_create(tmp_path / "v", "uint64", "segmentation", "compressed_segmentation", SHARDING)
    path = str(tmp_path / "v")
    data = _data("uint64", (*SIZE, 1), seed=2)
    # a chunk-aligned part, then the rest: the shards are updated, not replaced
    layer = build_ts_layer(path)
    lo = Vec3D(*OFFSET)
    hi = lo + Vec3D(*SIZE)
    half = lo + Vec3D(32, 32, 4)
    first = torch.from_numpy(data[:32, :32, :4].view(np.int64).transpose(3, 0, 1, 2).copy())
    layer[Vec3D(*RES), lo[0] : half[0], lo[1] : half[1], lo[2] : half[2]] = first
    whole = torch.from_numpy(data.view(np.int64).transpose(3, 0, 1, 2).copy())
    layer[Vec3D(*RES), lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = whole
    own = ts.open({"driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/"}).result()
    assert np.array_equal(own.read().result(), data)
    cv = _cloudvolume(f"file://{path}")
    assert np.array_equal(np.asarray(cv[cv.bounds]), data)
    assert np.array_equal(_read(build_cv_layer(path), "uint64"), data)
    # CloudVolume cannot update a shard in place: refused before anything is written
    with pytest.raises(ValueError, match=r"sharded.*build_ts_layer"):
        build_cv_layer(path)[Vec3D(*RES), lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = whole


# (encoding, data type): each encoding CloudVolume writes here, with a type it takes
ENCODING_CASES = [
    ("raw", "uint8"),
    ("jpeg", "uint8"),
    ("png", "uint8"),
    ("compressed_segmentation", "uint64"),
    ("compresso", "uint64"),
    ("crackle", "uint64"),
    ("jxl", "uint8"),
    ("fpzip", "float32"),
    ("zfpc", "float32"),
    ("kempressed", "float32"),
]


@pytest.mark.parametrize(("encoding", "data_type"), ENCODING_CASES)
def test_every_cloudvolume_encoding(tmp_path: Path, encoding: str, data_type: str) -> None:
    layer_type = "segmentation" if data_type == "uint64" else "image"
    path = f"file://{tmp_path}/enc"
    expected = _cv_write_volume_lossy(path, data_type, layer_type, encoding)
    assert np.array_equal(_read(build_cv_layer(path), data_type), expected)
    if encoding in TS_ENCODINGS:
        assert np.array_equal(_read(build_ts_layer(path), data_type), expected)
    else:
        with pytest.raises(
            ValueError, match=rf"'{encoding}'-encoded.*open this volume with build_cv_layer"
        ):
            build_ts_layer(path)
    # and build_cv_layer writes it: what plain CloudVolume reads is what was written (or, for
    # the lossy encodings, what our layer reads back too)
    dst = f"file://{tmp_path}/ours"
    layer = build_cv_layer(dst, info_reference_path=path)
    lo = Vec3D(*OFFSET)
    hi = lo + Vec3D(*SIZE)
    data = _data(data_type, (*SIZE, 1), seed=3)
    tensor = torch.from_numpy(
        (data.view(np.int64) if data_type == "uint64" else data).transpose(3, 0, 1, 2).copy()
    )
    layer[Vec3D(*RES), lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = tensor
    plain = np.asarray(_cloudvolume(dst)[_cloudvolume(dst).bounds])
    assert np.array_equal(_read(build_cv_layer(dst), data_type), plain)
    if encoding not in ("jpeg", "jxl", "kempressed"):
        assert np.array_equal(plain, data)


def _cv_write_volume_lossy(
    path: str, data_type: str, layer_type: str, encoding: str
) -> npt.NDArray[Any]:
    """Like ``_cv_write_default_volume`` (uncompressed files), for any encoding: lossy ones read
    back approximately, so the reference is what CloudVolume itself reads."""
    from cloudvolume import CloudVolume

    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type=layer_type,
        data_type=data_type,
        encoding=encoding,
        resolution=list(RES),
        voxel_offset=list(OFFSET),
        volume_size=list(SIZE),
        chunk_size=list(CHUNK),
    )
    cv = _cloudvolume(path, info=info, compress=False)
    cv.commit_info()
    cv[cv.bounds] = _data(data_type, (*SIZE, 1))
    return np.asarray(_cloudvolume(path)[cv.bounds])


# --- an info with keys we do not know, through the real CLI --------------------------------------

EXTRA_TOP = {
    "mesh": "mesh",
    "skeletons": "skeletons",
    "segment_properties": "segment_properties",
    "zz_unknown": {"nested": [1, 2, 3]},
}


@pytest.mark.slow
def test_extra_keys_survive_a_zetta_run_that_adds_a_scale(tmp_path: Path) -> None:
    path = f"file://{tmp_path}/seg"
    _cv_write_default_volume(path, "uint8", "image", "raw", compress=False)
    info_file = tmp_path / "seg" / "info"
    info = json.loads(info_file.read_text())
    info.update(EXTRA_TOP)
    info["scales"][0]["zz_scale_note"] = "kept"
    info_file.write_text(json.dumps(info))
    before = json.loads(info_file.read_text())
    spec = {
        "@type": "mazepa.execute",
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "bbox": {
                "@type": "BBox3D.from_coords",
                # the bounds of the new scale (the original's rounding: x 1.5 -> 1, size 35 + 1)
                "start_coord": [1, 2, 1],
                "end_coord": [37, 26, 10],
                "resolution": [16, 16, 40],
            },
            "dst_resolution": [16, 16, 40],
            "processing_chunk_sizes": [[36, 24, 9]],
            "skip_intermediaries": True,
            "fn": {"@type": "lambda", "lambda_str": "lambda src: src"},
            "op_kwargs": {
                "src": {
                    "@type": "build_cv_layer",
                    "path": path,
                    "data_resolution": list(RES),
                    "interpolation_mode": "img",
                }
            },
            "dst": {"@type": "build_cv_layer", "path": path, "info_add_scales": [[16, 16, 40]]},
        },
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    after = json.loads(info_file.read_text())
    assert {k: v for k, v in after.items() if k != "scales"} == {
        k: v for k, v in before.items() if k != "scales"
    }
    assert after["scales"][0] == before["scales"][0]  # untouched, its unknown key included
    added = after["scales"][1]
    assert (added["key"], added["resolution"], added["zz_scale_note"]) == (
        "16_16_40",
        [16, 16, 40],
        "kept",
    )
    # the new scale holds the data: what the layer reads downsampled from 8 nm
    src = build_cv_layer(path, data_resolution=RES, interpolation_mode="img")
    written = build_cv_layer(path)
    expected = src[Vec3D(16, 16, 40), 1:37, 2:26, 1:10]
    assert torch.equal(written[Vec3D(16, 16, 40), 1:37, 2:26, 1:10], expected)
    assert expected.any()


@pytest.mark.parametrize("data_type", ["int64", "float64"])
def test_types_only_cloudvolume_stores(tmp_path: Path, data_type: str) -> None:
    path = f"file://{tmp_path}/wide"
    expected = _cv_write_volume_lossy(path, data_type, "image", "raw")
    layer = build_cv_layer(path)
    assert np.array_equal(_read(layer, data_type), expected)
    with pytest.raises(
        ValueError, match=rf"data_type '{data_type}'.*open this volume with build_cv_layer"
    ):
        build_ts_layer(path)
    # written back through the layer, read by plain CloudVolume
    lo = Vec3D(*OFFSET)
    hi = lo + Vec3D(*SIZE)
    layer[Vec3D(*RES), lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = torch.from_numpy(
        (expected * 2).transpose(3, 0, 1, 2).copy()
    )
    assert np.array_equal(np.asarray(_cloudvolume(path)[_cloudvolume(path).bounds]), expected * 2)
