"""Readers through a cache of decoded chunks (``zetta_utils.layer.volumetric.read_cache``), on
real local volumes. "Another process" writing a volume is plain TensorStore or CloudVolume
writing it here: neither tells our backends, as a write by another process would not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex, read_cache
from zetta_utils.layer.volumetric.cloudvol import CVBackend, build_cv_layer
from zetta_utils.layer.volumetric.tensorstore import TSBackend, build_ts_layer

RES = Vec3D(8, 8, 40)
ALL = VolumetricIndex.from_coords((0, 0, 0), (64, 64, 2), RES)
REGION = VolumetricIndex.from_coords((5, 7, 0), (50, 60, 2), RES)  # meets 4 chunks of 4
MIB = 1 << 20


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    read_cache.clear()
    yield
    read_cache.clear()


def _volume(tmp_path: Path, builder: Any, encoding: str) -> tuple[str, torch.Tensor]:
    path = f"file://{tmp_path}/vol"
    dtype = "uint8" if encoding == "raw" else "uint32"
    layer = builder(
        path,
        info_type="image" if encoding == "raw" else "segmentation",
        info_data_type=dtype,
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=[32, 32, 1],
        info_dataset_size=[64, 64, 2],
        info_encoding=encoding,
    )
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, 200, (1, 64, 64, 2), generator=gen).to(layer.backend.dtype)
    layer[ALL] = data
    return path, data


def _behind_our_back(path: str, library: str, value: int) -> None:
    """Overwrite the whole volume with ``value`` as another process would: unannounced."""
    if library == "ts":
        spec = {"driver": "neuroglancer_precomputed", "kvstore": path + "/"}
        store = ts.open(spec).result()
        store.write(np.full(store.shape, value, dtype=store.dtype.numpy_dtype)).result()
    else:
        from cloudvolume import CloudVolume

        cv = CloudVolume(path, compress=False, progress=False, parallel=1)
        cv[:, :, :] = np.full(cv.shape, value, dtype=cv.dtype)


def _read(backend: Any, idx: VolumetricIndex = REGION) -> torch.Tensor:
    out = np.empty((1, *idx.shape.tuple()), dtype=backend.data_type)
    backend.read_voxels_into(idx.resolution, idx.start, idx.stop, out)
    return torch.from_numpy(out.astype(np.int64))


@pytest.mark.parametrize(
    ("builder", "library", "encoding"),
    # compressed_segmentation: TSBackend reads it through TensorStore's cache (raw local chunks
    # are read from the files, by byte range, with no cache at all)
    [(build_ts_layer, "ts", "compressed_segmentation"), (build_cv_layer, "cv", "raw")],
)
def test_a_scoped_reader_serves_its_cache_until_a_write_here_or_a_new_scope(
    tmp_path: Path, builder: Any, library: str, encoding: str
) -> None:
    path, data = _volume(tmp_path, builder, encoding)
    backend = builder(path).backend
    reader = read_cache.cached_reader(backend, 8 * MIB, scope="run-1")
    assert reader is not backend and type(reader) is type(backend)
    expected = data[:, 5:50, 7:60, :].long()
    assert torch.equal(_read(reader), expected)
    # another process rewrites the volume: the run's reader does not ask storage again
    _behind_our_back(path, library, 7)
    assert torch.equal(_read(reader), expected)
    # ... while a plain backend reads what storage holds
    assert bool((_read(builder(path).backend) == 7).all())
    # the same volume unpickled again with the next task: the same reader, the same cache
    assert read_cache.cached_reader(builder(path).backend, 8 * MIB, scope="run-1") is reader
    # a write by this process (through any backend of the volume) drops the cache
    builder(path)[ALL] = data
    _behind_our_back(path, library, 9)
    assert bool((_read(reader) == 9).all())
    # a new run (scope) gets a new reader; the last run's readers and caches are gone
    _behind_our_back(path, library, 11)
    fresh = read_cache.cached_reader(backend, 8 * MIB, scope="run-2")
    assert fresh is not reader and read_cache.readers() == [fresh]
    assert bool((_read(fresh) == 11).all())


def test_a_revalidating_reader_sees_other_processes_writes(tmp_path: Path) -> None:
    path, data = _volume(tmp_path, build_ts_layer, "compressed_segmentation")
    backend = build_ts_layer(path).backend
    reader = read_cache.cached_reader(backend, 8 * MIB)
    assert isinstance(reader, TSBackend) and reader.revalidate_cache
    assert reader.cache_bytes_limit == 8 * MIB
    assert torch.equal(_read(reader), data[:, 5:50, 7:60, :].long())
    _behind_our_back(path, "ts", 5)
    assert bool((_read(reader) == 5).all())
    # CloudVolume's cache is never revalidated: without a scope its volumes are read uncached
    cv = CVBackend(path)
    assert read_cache.cached_reader(cv, 8 * MIB) is cv


def test_one_scoped_cache_per_volume_the_largest_asked_for(tmp_path: Path) -> None:
    path, _ = _volume(tmp_path, build_cv_layer, "raw")
    backend = CVBackend(path)
    small = read_cache.cached_reader(backend, 8 * MIB, scope="s")
    large = read_cache.cached_reader(backend, 16 * MIB, scope="s")
    assert large is not small and large.cache_bytes_limit == 16 * MIB  # type: ignore[attr-defined]
    assert read_cache.readers() == [large]
    # a task at the region's edge asks for less: the larger cache serves it
    assert read_cache.cached_reader(backend, 8 * MIB, scope="s") is large
    # backends with a cache of their own read as they are
    own = CVBackend(path, cache_bytes_limit=MIB)
    assert read_cache.cached_reader(own, 8 * MIB, scope="s") is own
    ts_own = TSBackend(path, cache_bytes_limit=MIB)
    assert read_cache.cached_reader(ts_own, 8 * MIB, scope="s") is ts_own


def test_scoped_readers_read_what_the_backend_reads(tmp_path: Path) -> None:
    path, _ = _volume(tmp_path, build_ts_layer, "compressed_segmentation")
    reader = read_cache.cached_reader(TSBackend(path), 8 * MIB, scope="s")
    assert isinstance(reader, TSBackend) and not reader.revalidate_cache
    for idx in (ALL, REGION, VolumetricIndex.from_coords((-4, 60, 1), (40, 70, 2), RES)):
        assert torch.equal(reader.read(idx), TSBackend(path).read(idx))
        assert torch.equal(_read(reader, idx), TSBackend(path).read(idx).long())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cache_bytes": 0}, "cache_bytes: expected a positive integer, got 0"),
        ({"cache_bytes": True}, "cache_bytes: expected a positive integer, got True"),
        ({"cache_bytes": MIB, "scope": ""}, "scope: expected None or a non-empty string, got ''"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path, _ = _volume(tmp_path, build_ts_layer, "raw")
    with pytest.raises(ValueError, match=message):
        read_cache.cached_reader(TSBackend(path), **kwargs)
    with pytest.raises(ValueError, match="revalidate_cache: expected True or False, got 'no'"):
        TSBackend(path, revalidate_cache="no")  # type: ignore[arg-type]
    assert TSBackend(path, revalidate_cache=False) != TSBackend(path)
