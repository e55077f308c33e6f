"""Both backends on ``s3://`` paths, against a real S3-compatible server (moto) on loopback,
reached through ``ZETTA_S3_ENDPOINT``."""

from __future__ import annotations

import gc
import json
import os
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import CVBackend, build_cv_layer, cloudvolume_path
from zetta_utils.layer.volumetric.precomputed import InfoMismatchError, parse_path, read_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend, build_ts_layer

from .helpers import random_data

RES = Vec3D(8, 8, 40)
FULL = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 4), RES)
INFO_ARGS: dict[str, Any] = {
    "info_type": "segmentation",
    "info_data_type": "uint64",
    "info_num_channels": 1,
    "info_scales": [(8, 8, 40), (16, 16, 40)],
    "info_chunk_size": (32, 32, 2),
    "info_dataset_size": (64, 64, 4),
    "info_encoding": "compressed_segmentation",
}
BUILDERS = {"ts": build_ts_layer, "cv": build_cv_layer}


@pytest.mark.parametrize("encoding", ["compressed_segmentation", "raw"])
@pytest.mark.parametrize(("writer", "reader"), [("ts", "cv"), ("cv", "ts")])
def test_s3_write_with_one_read_with_the_other(
    s3_server: dict[str, Any], s3_bucket: str, writer: str, reader: str, encoding: str
) -> None:
    # raw: TSBackend writes whole chunk files through TensorStore's key-value store
    info_args = {**INFO_ARGS, "info_encoding": encoding}
    path = f"s3://{s3_bucket}/seg"
    layer = BUILDERS[writer](path, **info_args)
    stored = s3_server["client"].get_object(Bucket=s3_bucket, Key="seg/info")["Body"].read()
    assert json.loads(stored)["scales"][1]["size"] == [32, 32, 4]
    data = random_data("uint64", (1, 64, 64, 4))
    layer[FULL] = data
    keys = {o["Key"] for o in s3_server["client"].list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert "seg/8_8_40/0-32_0-32_0-2" in keys
    # the other backend, with the same info arguments (expect_same passes), reads the same
    other = BUILDERS[reader](path, **info_args)
    assert torch.equal(other[FULL], data)
    assert torch.equal(other.backend.read(FULL.padded((4, 4, 1)))[:, 4:-4, 4:-4, 1:-1], data)
    # plain TensorStore on the same endpoint
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {
            "driver": "s3",
            "bucket": s3_bucket,
            "path": "seg/",
            "endpoint": s3_server["endpoint"],
            "aws_region": "us-east-1",
        },
        "fill_missing_data_reads": False,
    }
    plain = ts.open(spec).result()[0:64, 0:64, 0:4].read().result()
    np.testing.assert_array_equal(plain, data.numpy().view(np.uint64).transpose(1, 2, 3, 0))
    with pytest.raises(
        InfoMismatchError,
        match=r"scales\[8_8_40\].chunk_sizes: existing \[\[32,32,2\]\] "
        r"vs requested \[\[64,64,2\]\]",
    ):
        BUILDERS[reader](path, **{**info_args, "info_chunk_size": (64, 64, 2)})


def test_cloudvolume_gzip_on_s3_is_read_by_tensorstore(
    s3_server: dict[str, Any], s3_bucket: str
) -> None:
    path = f"s3://{s3_bucket}/img"
    build_ts_layer(
        path,
        info_type="image",
        info_data_type="float32",
        info_num_channels=1,
        info_scales=[(8, 8, 40)],
        info_chunk_size=(32, 32, 2),
        info_dataset_size=(64, 64, 4),
    )
    data = random_data("float32", (1, 64, 64, 4))
    CVBackend(path, compress="gzip").write(FULL, data)
    head = s3_server["client"].head_object(Bucket=s3_bucket, Key="img/8_8_40/0-32_0-32_0-2")
    assert head.get("ContentEncoding") == "gzip"
    assert torch.equal(TSBackend(path).read(FULL), data)
    assert torch.equal(CVBackend(path).read(FULL), data)


def test_missing_info_on_s3(s3_server: dict[str, Any], s3_bucket: str) -> None:
    for builder in BUILDERS.values():
        with pytest.raises(FileNotFoundError, match=f"no info file at s3://{s3_bucket}/none/info"):
            builder(f"s3://{s3_bucket}/none")
    assert read_info(f"s3://{s3_bucket}/none") is None


def test_cloudvolume_path_uses_the_endpoint_alias(s3_server: dict[str, Any]) -> None:
    assert cloudvolume_path(parse_path("s3://bkt/a/b")) == "zettas3://bkt/a/b"
    assert cloudvolume_path(parse_path("gs://bkt/a")) == "gs://bkt/a"


# cloud-files leaves a half-built connection pool behind, whose __del__ then fails
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cloud_files_session_token_quirk_gets_a_clear_error(
    s3_server: dict[str, Any], s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_secret = os.path.expanduser("~/.cloudvolume/secrets/zettas3-secret.json")
    if os.path.exists(home_secret):
        pytest.skip(f"{home_secret} exists and would be used instead of the environment")
    build_ts_layer(f"s3://{s3_bucket}/v", **INFO_ARGS)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    with pytest.raises(RuntimeError, match="AWS_SESSION_TOKEN; set it, or put"):
        CVBackend(f"s3://{s3_bucket}/v")
    gc.collect()


def test_cloudvolume_default_gzip_objects_read_through_both(
    s3_server: dict[str, Any], s3_bucket: str
) -> None:
    # plain CloudVolume with its defaults on an object store: no "@type", gzip Content-Encoding
    from cloudvolume import CloudVolume

    path = f"s3://{s3_bucket}/foreign"
    cv_path = cloudvolume_path(parse_path(path))
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="segmentation",
        data_type="uint64",
        encoding="compressed_segmentation",
        resolution=[8, 8, 40],
        voxel_offset=[0, 0, 0],
        volume_size=[64, 64, 4],
        chunk_size=[32, 32, 2],
    )
    cv = CloudVolume(cv_path, info=info, progress=False)
    cv.commit_info()
    data = random_data("uint64", (1, 64, 64, 4), seed=5)
    cv[cv.bounds] = data.numpy().view(np.uint64).transpose(1, 2, 3, 0)
    head = s3_server["client"].head_object(Bucket=s3_bucket, Key="foreign/8_8_40/0-32_0-32_0-2")
    assert head.get("ContentEncoding") == "gzip"
    assert "@type" not in read_info(path)  # type: ignore[operator]
    for build in (build_cv_layer, build_ts_layer):
        assert torch.equal(build(path)[FULL], data), build.__name__


def test_s3_with_keys_in_the_environment_logs_no_credential_file_errors(
    s3_server: dict[str, Any], s3_bucket: str, tmp_path: Any
) -> None:
    """With the keys in the environment and no ``~/.aws`` (a pod, a CI job), a TensorStore layer
    on S3 writes and reads without TensorStore logging, at error level, the profile files it
    did not find (it did, five lines per volume opened, before its spec named environment
    credentials)."""
    import subprocess
    import sys

    script = f"""
import numpy as np, torch
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
idx = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 2), Vec3D(8, 8, 40))
layer = build_ts_layer("s3://{s3_bucket}/img", info_type="image", info_data_type="uint8",
    info_num_channels=1, info_scales=[(8, 8, 40)], info_chunk_size=(32, 32, 1),
    info_dataset_size=(64, 64, 2), info_encoding="jpeg")
data = torch.full((1, 64, 64, 2), 7, dtype=torch.uint8)
layer[idx] = data
assert torch.equal(layer[idx], data)
print("read back")
"""
    env = {**os.environ, "HOME": str(tmp_path)}  # (no ~/.aws there)
    for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "read back" in done.stdout
    assert "AuthCredentialsProvider" not in done.stderr, done.stderr[-2000:]
    assert "Failed to open file" not in done.stderr, done.stderr[-2000:]


def test_cloudvolume_downloads_from_object_storage_run_on_the_process_pool(
    s3_server: dict[str, Any], s3_bucket: str
) -> None:
    """A CloudVolume read of several chunks from S3 that misses the cache downloads them on
    download_pool's threads (not a fresh ThreadedQueue per read): same data; a chunk missing
    (without fill_missing) raises through the pool."""
    from zetta_utils.layer.volumetric.cloudvol import download_pool

    path = f"s3://{s3_bucket}/img"
    info_args = {**INFO_ARGS, "info_encoding": "raw"}
    data = random_data("uint64", (1, 64, 64, 4))
    build_cv_layer(path, **info_args)[FULL] = data  # 2 x 2 x 2 chunks at the first scale
    before = download_pool.jobs_run()
    assert torch.equal(build_cv_layer(path, **info_args)[FULL], data)
    assert download_pool.installed()
    assert download_pool.jobs_run() - before == 8
    s3_server["client"].delete_object(Bucket=s3_bucket, Key="img/8_8_40/0-32_0-32_0-2")
    with pytest.raises(Exception, match="0-32_0-32_0-2"):
        build_cv_layer(path, **info_args, cv_kwargs={"fill_missing": False})[FULL]


def test_cloudvolume_download_pool_switched_off(
    s3_server: dict[str, Any], s3_bucket: str, tmp_path: Any
) -> None:
    """``ZETTA_CV_DOWNLOAD_POOL=0``: CloudVolume's own scheduler (in a child process, where the
    switch is read)."""
    import subprocess
    import sys

    script = f"""
import torch
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer, download_pool
idx = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 2), Vec3D(8, 8, 40))
args = dict(info_type="image", info_data_type="uint8", info_num_channels=1,
    info_scales=[(8, 8, 40)], info_chunk_size=(32, 32, 1), info_dataset_size=(64, 64, 2),
    info_encoding="raw")
layer = build_cv_layer("s3://{s3_bucket}/off", **args)
layer[idx] = torch.full((1, 64, 64, 2), 3, dtype=torch.uint8)
assert torch.equal(build_cv_layer("s3://{s3_bucket}/off", **args)[idx], layer[idx])
print(download_pool.installed(), download_pool.jobs_run())
"""
    env = {**os.environ, download_pool_env(): "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "0"]
    env[download_pool_env()] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    installed, jobs = done.stdout.split()
    assert installed == "True" and int(jobs) > 0


def download_pool_env() -> str:
    from zetta_utils.layer.volumetric.cloudvol import download_pool

    return download_pool.ENV
