"""CVBackend moves the chunks of local raw, unsharded scales as files itself (plain or gzipped):
every region must read what CloudVolume reads from files CloudVolume wrote, the files written
must be byte for byte CloudVolume's, and whatever the chunk-file path cannot read (other
compressions, missing chunks without fill_missing) must behave as CloudVolume does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cloudvolume import CloudVolume

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import CVBackend
from zetta_utils.layer.volumetric.precomputed import write_info

from .helpers import expected_region, random_data, small_info, stored_array

RES = Vec3D(8, 8, 40)
# dataset (10, 20, 3) - (106, 100, 9) with chunks of (32, 32, 2): the last chunks in y are clipped
FULL = VolumetricIndex.from_coords((10, 20, 3), (106, 100, 9), RES)
SHAPE = (96, 80, 6)
REGIONS = [
    ((10, 20, 3), (106, 100, 9)),  # everything
    ((42, 52, 5), (74, 84, 7)),  # one whole chunk
    ((30, 40, 4), (90, 99, 8)),  # parts of many chunks, partial rows, planes and x ranges
    ((11, 21, 3), (12, 22, 4)),  # one voxel
    ((70, 90, 8), (106, 100, 9)),  # up to the dataset end, in a clipped chunk
    ((0, 0, 0), (120, 110, 12)),  # past the bounds on every side (zeros there)
]
MIDDLE = "42-74_52-84_5-7"  # a chunk file in the middle of the dataset


def plain_cloudvolume(path: str, **kwargs: Any) -> Any:
    return CloudVolume(f"file://{path}", progress=False, fill_missing=True, **kwargs)


def chunk_dir(path: str) -> str:
    return os.path.join(path, "8_8_40")


def chunk_file_bytes(path: str) -> dict[str, bytes]:
    result = {}
    for name in sorted(os.listdir(chunk_dir(path))):
        with open(os.path.join(chunk_dir(path), name), "rb") as f:
            result[name] = f.read()
    return result


def _not_cloudvolume(*args: Any) -> Any:
    raise AssertionError("read through CloudVolume")


@pytest.mark.parametrize(
    ("data_type", "num_channels", "chunk", "compress"),
    [
        ("uint8", 1, (32, 32, 2), "gzip"),
        ("uint8", 1, (32, 32, 2), False),
        ("int16", 1, (32, 32, 2), "gzip"),
        ("uint64", 1, (16, 32, 4), "gzip"),
        ("float32", 3, (32, 16, 2), "gzip"),
        ("float32", 2, (32, 32, 1), False),
    ],
)
def test_chunk_file_reads_equal_cloudvolume_reads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_type: str,
    num_channels: int,
    chunk: tuple[int, int, int],
    compress: Any,
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type=data_type, num_channels=num_channels, chunk=chunk))
    data = stored_array(random_data(data_type, (num_channels, *SHAPE), seed=5), data_type)
    plain_cloudvolume(path, compress=compress)[10:106, 20:100, 3:9] = data
    names = os.listdir(chunk_dir(path))
    assert all(n.endswith(".gz") for n in names) is (compress == "gzip")
    os.unlink(os.path.join(chunk_dir(path), sorted(names)[0]))  # never written: zeros
    whole = np.asarray(plain_cloudvolume(path)[10:106, 20:100, 3:9])
    assert not (whole == 0).all()
    for mode in ("1", "0"):
        monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", mode)
        backend = CVBackend(path)
        assert backend._uses_chunk_files(backend._scale(RES))
        if mode == "1":  # every chunk from its file (the missing one too: zeros)
            monkeypatch.setattr(backend, "_read_cloudvolume", _not_cloudvolume)
        for start, stop in REGIONS:
            if mode == "0" and num_channels > 1 and stop[0] - start[0] == 1:
                continue  # cloud-volume 12.15 returns one voxel of several channels misshaped
            idx = VolumetricIndex.from_coords(start, stop, RES)
            expected = expected_region(whole, start, stop)
            got = stored_array(backend.read(idx), data_type).transpose(3, 0, 1, 2)
            np.testing.assert_array_equal(
                got, expected, err_msg=f"read {start}-{stop}, chunk files {mode}"
            )
            # into a buffer with other strides (x slowest), as the flows' prefetch does
            out = np.full(expected.shape[::-1], 7, dtype=expected.dtype).transpose(3, 2, 1, 0)
            backend.read_into(idx, out)
            np.testing.assert_array_equal(
                out, expected, err_msg=f"read_into {start}-{stop}, chunk files {mode}"
            )


@pytest.mark.parametrize(
    ("data_type", "num_channels"), [("uint8", 1), ("uint32", 1), ("uint64", 1), ("float32", 3)]
)
def test_chunk_files_written_are_those_of_cloudvolume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_type: str, num_channels: int
) -> None:
    data = random_data(data_type, (num_channels, *SHAPE), seed=3)
    files = {}
    for mode in ("1", "0"):  # chunk files, then CloudVolume
        monkeypatch.setenv("ZETTA_RAW_CHUNK_WRITES", mode)
        path = str(tmp_path / f"v{mode}")
        write_info(path, small_info(data_type=data_type, num_channels=num_channels))
        backend = CVBackend(path)
        # whole volume in one write, then one chunk in the middle and one clipped at the end
        backend.write(FULL, data)
        for start, stop in (((42, 52, 5), (74, 84, 7)), ((74, 84, 7), (106, 100, 9))):
            part = data[
                :,
                start[0] - 10 : stop[0] - 10,
                start[1] - 20 : stop[1] - 20,
                start[2] - 3 : stop[2] - 3,
            ]
            backend.write(VolumetricIndex.from_coords(start, stop, RES), part.flip(1).contiguous())
        files[mode] = chunk_file_bytes(path)
        assert len(files[mode]) == 3 * 3 * 3
    assert files["1"] == files["0"]
    # and CloudVolume reads them back
    path = str(tmp_path / "v1")
    expected = stored_array(data, data_type).copy()
    for start, stop in (((42, 52, 5), (74, 84, 7)), ((74, 84, 7), (106, 100, 9))):
        sl = tuple(slice(a - o, b - o) for a, b, o in zip(start, stop, (10, 20, 3)))
        expected[sl] = expected[sl][::-1]
    np.testing.assert_array_equal(
        np.asarray(plain_cloudvolume(path)[10:106, 20:100, 3:9]), expected
    )


def test_a_write_deletes_the_compressed_copy_of_its_chunk(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    plain_cloudvolume(path, compress="gzip")[10:106, 20:100, 3:9] = np.ones((*SHAPE, 1), np.uint8)
    idx = VolumetricIndex.from_coords((42, 52, 5), (74, 84, 7), RES)
    CVBackend(path).write(idx, random_data("uint8", (1, 32, 32, 2), seed=1))
    names = os.listdir(chunk_dir(path))
    assert MIDDLE in names and MIDDLE + ".gz" not in names
    assert len(names) == 27
    # CloudVolume that has just read gzipped chunks (it then tries .gz first) sees the new data
    cv = plain_cloudvolume(path)
    assert (np.asarray(cv[10:42, 20:52, 3:5]) == 1).all()
    np.testing.assert_array_equal(
        np.asarray(cv[42:74, 52:84, 5:7])[..., 0],
        random_data("uint8", (1, 32, 32, 2), seed=1).numpy()[0],
    )


def test_chunks_compressed_otherwise_are_read_by_cloudvolume(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    data = stored_array(random_data("uint8", (1, *SHAPE), seed=2), "uint8")
    plain_cloudvolume(path, compress="br")[10:106, 20:100, 3:9] = data
    assert all(n.endswith(".br") for n in os.listdir(chunk_dir(path)))
    backend = CVBackend(path)
    assert backend._uses_chunk_files(backend._scale(RES))
    got = stored_array(backend.read(FULL), "uint8")
    np.testing.assert_array_equal(got, data)


def test_missing_chunks_without_fill_missing_are_cloudvolumes_error(tmp_path: Path) -> None:
    from cloudvolume.exceptions import EmptyVolumeException

    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    backend = CVBackend(path, cv_kwargs={"fill_missing": False})
    assert backend._uses_chunk_files(backend._scale(RES))
    backend.write(FULL, random_data("uint8", (1, *SHAPE)))
    os.unlink(os.path.join(chunk_dir(path), MIDDLE))
    with pytest.raises(EmptyVolumeException):
        backend.read(VolumetricIndex.from_coords((40, 50, 5), (50, 60, 6), RES))
    assert (
        CVBackend(path).read(VolumetricIndex.from_coords((42, 52, 5), (74, 84, 7), RES)) == 0
    ).all()


def test_empty_and_wrong_size_chunk_files(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    backend = CVBackend(path)
    backend.write(FULL, random_data("uint8", (1, *SHAPE)) | 1)
    middle = VolumetricIndex.from_coords((42, 52, 5), (74, 84, 7), RES)
    name = os.path.join(chunk_dir(path), MIDDLE)
    open(name, "wb").close()  # empty: background, as CloudVolume decodes it
    assert (backend.read(middle) == 0).all()
    assert (np.asarray(plain_cloudvolume(path)[42:74, 52:84, 5:7]) == 0).all()
    with open(name, "wb") as f:
        f.write(b"x" * 100)
    with pytest.raises(
        ValueError,
        match=r"raw chunk file .*42-74_52-84_5-7 holds 100 bytes; a chunk of 32 x 32 x 2 voxels "
        r"and 1 channel\(s\) of uint8 holds 2048",
    ):
        backend.read(VolumetricIndex.from_coords((40, 50, 5), (50, 60, 6), RES))
    os.unlink(name)
    import gzip

    with open(name + ".gz", "wb") as f:
        f.write(gzip.compress(b"x" * 100))
    with pytest.raises(
        ValueError,
        match=r"chunk file .*42-74_52-84_5-7.gz holds 100 bytes once decompressed; a chunk of "
        r"32 x 32 x 2 voxels and 1 channel\(s\) of uint8 holds 2048",
    ):
        backend.read(middle)


def test_chunk_files_only_where_cloudvolume_would_do_the_same(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    scale = CVBackend(path)._scale(RES)
    assert CVBackend(path, cv_kwargs={"secrets": {}, "use_https": True})._uses_chunk_files(scale)
    assert CVBackend(path, cache_bytes_limit=10**6)._uses_chunk_files(scale)
    # CloudVolume options whose effect on reads and writes is not known here
    assert not CVBackend(path, cv_kwargs={"max_redirects": 2})._uses_chunk_files(scale)
    jpeg = str(tmp_path / "jpeg")
    write_info(jpeg, small_info(data_type="uint8", encoding="jpeg"))
    backend = CVBackend(jpeg)
    assert not backend._uses_chunk_files(backend._scale(RES))
    assert not CVBackend(path)._uses_chunk_files(scale | {"sharding": {"@type": "x"}})


@pytest.mark.parametrize("compress", ["gzip", False])
def test_the_chunk_cache_behaves_as_cloudvolumes_lru(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: Any
) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    ones = np.ones((*SHAPE, 1), np.uint8)
    plain_cloudvolume(path, compress=compress)[10:106, 20:100, 3:9] = ones
    chunk = 32 * 32 * 2
    reader = CVBackend(path, cache_bytes_limit=4 * chunk)
    cache = reader._chunk_cache(reader._scale(RES))
    assert cache is not None
    region = VolumetricIndex.from_coords((30, 40, 3), (60, 70, 5), RES)  # 4 chunks
    assert (reader.read(region) == 1).all()
    assert cache.nbytes == 4 * chunk
    # another writer (not through a backend of this process): the cached chunks are served, as
    # CloudVolume's LRU serves them, until the cache is dropped
    plain_cloudvolume(path, compress=compress)[10:106, 20:100, 3:9] = ones * 2
    monkeypatch.setattr(reader, "_read_cloudvolume", _not_cloudvolume)
    assert (reader.read(region) == 1).all()
    reader.clear_cache()
    assert (reader.read(region) == 2).all()
    # a write by a backend of this process clears it
    CVBackend(path).write(FULL, random_data("uint8", (1, *SHAPE)) * 0 + 3)
    assert cache.nbytes == 0 or reader._chunk_cache(reader._scale(RES)) is not cache
    assert (reader.read(region) == 3).all()
    # bounded: a larger region (27 chunks, some clipped) keeps the last ones read that fit
    assert (reader.read(FULL) == 3).all()
    cache = reader._chunk_cache(reader._scale(RES))
    assert cache is not None and 3 * chunk < cache.nbytes <= 4 * chunk
