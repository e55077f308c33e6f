"""The per-process cache of whole raw chunks (``raw_chunks.chunk_cache``): reads through it give
the bytes of reads without it (chunk files and shard files), a chunk file replaced since is read
again, a write by this process to the volume drops its chunks, a new scope drops the previous
one's, and the cache never maps more than it was given."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from zetta_utils.layer.volumetric import VolumetricIndex, raw_chunks
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import random_data, small_info
from .test_ts_raw_chunk_reads import FULL, REGIONS, RES, SHAPE
from .test_ts_sharded_reads import sharded_info

CHUNK_BYTES = 32 * 32 * 2  # a uint8 chunk of small_info


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    raw_chunks.clear_chunk_cache()
    yield
    raw_chunks.clear_chunk_cache()


def _volume(tmp_path: Path, sharded: bool, data_type: str = "uint8", channels: int = 1) -> str:
    path = str(tmp_path / "v")
    info = (
        sharded_info(data_type, channels)
        if sharded
        else small_info(data_type=data_type, num_channels=channels)
    )
    write_info(path, info)
    TSBackend(path).write(FULL, random_data(data_type, (channels, *SHAPE), seed=3))
    return path


def _read(backend: TSBackend, start: tuple[int, ...], stop: tuple[int, ...]) -> np.ndarray:
    """``[start, stop)`` read into a buffer laid out as the flows' prefetch lays it (x fastest),
    filled with 7 first (so that a part left unwritten shows)."""
    shape = (backend.num_channels, *(b - a for a, b in zip(start, stop)))
    out = np.full(shape[::-1], 7, dtype=backend.data_type).transpose(3, 2, 1, 0)
    backend.read_voxels_into(RES, start, stop, out)
    return out


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize(("data_type", "channels"), [("uint8", 1), ("float32", 3)])
def test_cached_reads_equal_uncached_reads(
    tmp_path: Path, sharded: bool, data_type: str, channels: int
) -> None:
    backend = TSBackend(_volume(tmp_path, sharded, data_type, channels))
    assert backend.reads_chunk_files(RES)
    for _round in range(2):  # misses, then hits
        for start, stop in REGIONS:
            expected = _read(backend, start, stop)
            with raw_chunks.chunk_cache("run", 2**20):
                got = _read(backend, start, stop)
            np.testing.assert_array_equal(got, expected, err_msg=f"{start}-{stop}")
    stats = raw_chunks.chunk_cache_stats()
    assert stats.misses > 0 and stats.hits >= stats.misses
    assert stats.scope == "run"


def test_a_chunk_file_replaced_since_is_read_again(tmp_path: Path) -> None:
    path = _volume(tmp_path, sharded=False)
    backend = TSBackend(path)
    start, stop = (30, 40, 4), (90, 99, 8)
    with raw_chunks.chunk_cache("run", 2**20):
        first = _read(backend, start, stop)
    # another process replaces a chunk file (a new file renamed into place, as every writer here
    # does): the mapped chunk still shows the old bytes, its file's stamp does not match
    name = os.path.join(path, "8_8_40", "42-74_52-84_5-7")
    with open(name, "rb") as f:
        old = f.read()
    new = bytes(255 - b for b in old)
    with open(name + ".new", "wb") as f:
        f.write(new)
    os.replace(name + ".new", name)
    with raw_chunks.chunk_cache("run", 2**20):
        again = _read(backend, start, stop)
    assert not np.array_equal(again, first)
    np.testing.assert_array_equal(again, _read(backend, start, stop))  # == an uncached read


def test_a_write_by_this_process_drops_the_volumes_chunks(tmp_path: Path) -> None:
    path = _volume(tmp_path, sharded=False)
    other = str(tmp_path / "other")
    write_info(other, small_info())
    TSBackend(other).write(FULL, random_data("uint8", (1, *SHAPE), seed=4))
    backend, other_backend = TSBackend(path), TSBackend(other)
    with raw_chunks.chunk_cache("run", 2**20):
        _read(backend, (10, 20, 3), (106, 100, 9))
        _read(other_backend, (10, 20, 3), (106, 100, 9))
    chunks = raw_chunks.chunk_cache_stats().chunks
    assert chunks == 2 * 3 * 3 * 3
    # a write to one volume drops its chunks, not the other's
    TSBackend(path).write(
        VolumetricIndex.from_coords((42, 52, 5), (74, 84, 7), RES),
        random_data("uint8", (1, 32, 32, 2), seed=5),
    )
    assert raw_chunks.chunk_cache_stats().chunks == chunks // 2


def test_a_new_scope_drops_the_previous_ones_chunks(tmp_path: Path) -> None:
    backend = TSBackend(_volume(tmp_path, sharded=True))
    with raw_chunks.chunk_cache("run 1", 2**20):
        _read(backend, (10, 20, 3), (106, 100, 9))
    assert raw_chunks.chunk_cache_stats().chunks == 27
    with raw_chunks.chunk_cache("run 2", 2**20):
        pass
    stats = raw_chunks.chunk_cache_stats()
    assert (stats.chunks, stats.nbytes, stats.scope) == (0, 0, "run 2")


@pytest.mark.parametrize("sharded", [False, True])
def test_the_cache_maps_at_most_its_limit(tmp_path: Path, sharded: bool) -> None:
    backend = TSBackend(_volume(tmp_path, sharded))
    # a map starts on a page: a chunk's map is at most a page more than the chunk
    limit = 3 * (CHUNK_BYTES + 4096)
    for start, stop in REGIONS:
        expected = _read(backend, start, stop)
        with raw_chunks.chunk_cache("run", limit):
            np.testing.assert_array_equal(_read(backend, start, stop), expected)
        stats = raw_chunks.chunk_cache_stats()
        assert 0 < stats.nbytes <= limit
    # a chunk larger than the cache is read without it (the smallest, clipped at the dataset
    # end in y, holds 32 x 16 x 2 voxels)
    raw_chunks.clear_chunk_cache()
    expected = _read(backend, (10, 20, 3), (106, 100, 9))
    with raw_chunks.chunk_cache("run", 32 * 16 * 2 - 1):
        np.testing.assert_array_equal(_read(backend, (10, 20, 3), (106, 100, 9)), expected)
    assert raw_chunks.chunk_cache_stats().chunks == 0


def test_outside_chunk_cache_nothing_is_cached(tmp_path: Path) -> None:
    backend = TSBackend(_volume(tmp_path, sharded=False))
    _read(backend, (10, 20, 3), (106, 100, 9))
    assert raw_chunks.chunk_cache_stats().chunks == 0


@pytest.mark.parametrize(
    ("scope", "max_bytes", "match"),
    [
        ("", 1, "scope: expected a non-empty string, got ''"),
        (None, 1, "scope: expected a non-empty string, got None"),
        ("run", 0, "max_bytes: expected a positive integer, got 0"),
        ("run", True, "max_bytes: expected a positive integer, got True"),
    ],
)
def test_chunk_cache_checks_its_arguments(scope: object, max_bytes: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        with raw_chunks.chunk_cache(scope, max_bytes):  # type: ignore[arg-type]
            pass
