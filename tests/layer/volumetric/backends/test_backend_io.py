"""Reads and writes through TSBackend and CVBackend, on local files (and http for reads)."""

from __future__ import annotations

import functools
import http.server
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import CVBackend
from zetta_utils.layer.volumetric.precomputed import PrecomputedBackend, write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import DTYPE_RULE, random_data, small_info

RES = Vec3D(8, 8, 40)
KINDS = ("ts", "cv")
MakeBackend = Callable[..., PrecomputedBackend]


def backend_class(kind: str) -> type[PrecomputedBackend]:
    return TSBackend if kind == "ts" else CVBackend


@pytest.fixture
def make(tmp_path: Path) -> MakeBackend:
    """``make(kind, name="v", cache_bytes_limit=None, **small_info_args)``: a new local volume."""

    def _make(
        kind: str, name: str = "v", cache_bytes_limit: int | None = None, **info_args: Any
    ) -> PrecomputedBackend:
        path = str(tmp_path / name)
        if not os.path.exists(os.path.join(path, "info")):
            write_info(path, small_info(**info_args))
        return backend_class(kind)(path, cache_bytes_limit=cache_bytes_limit)

    return _make


def idx(
    start: tuple[int, int, int], stop: tuple[int, int, int], res: Vec3D[float] = RES
) -> VolumetricIndex:
    return VolumetricIndex.from_coords(start, stop, res)


FULL = idx((10, 20, 3), (106, 100, 9))  # the whole dataset of small_info()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("data_type", "encoding", "num_channels"),
    [(dt, "raw", 1) for dt in DTYPE_RULE]
    + [
        ("float32", "raw", 3),
        ("uint8", "png", 1),
        ("uint32", "compressed_segmentation", 1),
        ("uint64", "compressed_segmentation", 2),
    ],
)
def test_roundtrip(
    make: MakeBackend, kind: str, data_type: str, encoding: str, num_channels: int
) -> None:
    backend = make(kind, data_type=data_type, encoding=encoding, num_channels=num_channels)
    assert backend.dtype == DTYPE_RULE[data_type]
    assert backend.num_channels == num_channels
    data = random_data(data_type, (num_channels, 96, 80, 6))
    if kind == "cv" and encoding == "compressed_segmentation" and num_channels > 1:
        with pytest.raises(
            ValueError, match="cloud-volume cannot write compressed_segmentation with 2"
        ):
            backend.write(FULL, data)
        make("ts", data_type=data_type, encoding=encoding, num_channels=num_channels).write(
            FULL, data
        )
    else:
        backend.write(FULL, data)
    result = backend.read(FULL)
    assert result.dtype == DTYPE_RULE[data_type]
    assert result.shape == (num_channels, 96, 80, 6)
    torch.testing.assert_close(result, data.to(result.dtype), rtol=0, atol=0)
    part = backend.read(idx((42, 52, 5), (74, 84, 7)))
    torch.testing.assert_close(part, data[:, 32:64, 32:64, 2:4].to(result.dtype), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_read_is_a_view_of_fortran_data(make: MakeBackend, kind: str) -> None:
    backend = make(kind, data_type="float32", num_channels=2)
    backend.write(FULL, torch.ones(2, 96, 80, 6))
    result = backend.read(FULL)
    # CXYZ over an XYZC Fortran-ordered buffer: x is the fastest axis in memory
    assert result.stride() == (96 * 80 * 6, 1, 96, 96 * 80)


@pytest.mark.parametrize("kind", KINDS)
def test_outside_bounds_and_missing_chunks_read_as_zeros(make: MakeBackend, kind: str) -> None:
    backend = make(kind, data_type="int16")
    region = idx((10, 20, 3), (42, 52, 5))  # one chunk
    backend.write(region, torch.full((1, 32, 32, 2), 7, dtype=torch.int16))
    padded = backend.read(idx((0, 0, 0), (60, 60, 12)))
    assert padded.shape == (1, 60, 60, 12)
    assert padded.sum() == 7 * 32 * 32 * 2
    assert (padded[:, 10:42, 20:52, 3:5] == 7).all()
    assert backend.read(idx((-100, -100, -5), (-50, -50, -1))).abs().sum() == 0
    assert backend.read(idx((74, 84, 7), (106, 100, 9))).abs().sum() == 0  # never written


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("data_type", ["uint8", "int16", "float32"])
def test_read_into_fills_a_given_buffer_like_read(
    make: MakeBackend, kind: str, data_type: str
) -> None:
    backend = make(kind, data_type=data_type, num_channels=2)
    data = random_data(data_type, (2, 96, 80, 6))
    backend.write(FULL, data)
    np_type = np.dtype(data_type)
    for region in (
        idx((20, 30, 4), (74, 84, 7)),
        idx((0, 5, 1), (60, 60, 12)),
        idx((-40, -40, 0), (-1, -1, 2)),
    ):
        shape = (2, *region.shape)
        # a strided view of a larger x-fastest buffer, dirty: every voxel must be written
        buffer = np.full((shape[3] + 1, shape[2], shape[1] + 3, 2), 99, dtype=np_type).transpose(
            3, 2, 1, 0
        )
        out = buffer[:, 1 : shape[1] + 1, :, 1:]
        backend.read_into(region, out)
        assert np.array_equal(out, backend.read(region).numpy())
        assert (
            (buffer[:, 0] == 99).all()
            and (buffer[:, shape[1] + 1 :] == 99).all()
            and (buffer[..., 0] == 99).all()
        )
    with pytest.raises(ValueError, match=r"out: expected a .* array of shape \(2, 8, 8, 1\)"):
        backend.read_into(idx((10, 20, 3), (18, 28, 4)), np.zeros((2, 8, 8, 2), np_type))


@pytest.mark.parametrize("kind", KINDS)
def test_misaligned_write_is_refused_and_leaves_neighbours_alone(
    make: MakeBackend, kind: str, tmp_path: Path
) -> None:
    backend = make(kind)
    backend.write(FULL, torch.full((1, 96, 80, 6), 5, dtype=torch.uint8))
    before = {p.name: p.read_bytes() for p in (tmp_path / "v" / "8_8_40").iterdir()}
    with pytest.raises(ValueError) as err:
        backend.write(idx((11, 20, 3), (43, 52, 5)), torch.zeros(1, 32, 32, 2, dtype=torch.uint8))
    message = str(err.value)
    assert "not chunk-aligned in x" in message
    assert "(11, 20, 3) - (43, 52, 5)" in message
    assert "chunks are (32, 32, 2) voxels starting at (10, 20, 3)" in message
    with pytest.raises(ValueError, match="not chunk-aligned in z"):
        backend.write(idx((10, 20, 3), (42, 52, 4)), torch.zeros(1, 32, 32, 1, dtype=torch.uint8))
    after = {p.name: p.read_bytes() for p in (tmp_path / "v" / "8_8_40").iterdir()}
    assert after == before
    assert (backend.read(FULL) == 5).all()


@pytest.mark.parametrize("kind", KINDS)
def test_chunks_clipped_by_the_dataset_end_count_as_aligned(make: MakeBackend, kind: str) -> None:
    backend = make(kind)
    # y: dataset ends at 100, the chunk grid at 84 + 32 = 116; [84, 100) is a whole (clipped) chunk
    region = idx((42, 84, 7), (74, 100, 9))
    assert backend.is_chunk_aligned(region)
    backend.write(region, torch.full((1, 32, 16, 2), 3, dtype=torch.uint8))
    assert backend.read(FULL).sum() == 3 * 32 * 16 * 2


@pytest.mark.parametrize("kind", KINDS)
def test_writes_are_clipped_to_the_dataset(make: MakeBackend, kind: str) -> None:
    backend = make(kind)
    # a chunk-aligned region reaching past the end in y: the part inside is written
    data = torch.arange(32 * 48 * 2, dtype=torch.int64).reshape(1, 32, 48, 2) % 250
    backend.write(idx((42, 84, 7), (74, 132, 9)), data.to(torch.uint8))
    assert (backend.read(idx((42, 84, 7), (74, 100, 9))) == data[:, :, :16].to(torch.uint8)).all()
    with pytest.raises(ValueError, match="lies outside the bounds"):
        backend.write(
            idx((200, 200, 3), (232, 232, 5)), torch.zeros(1, 32, 32, 2, dtype=torch.uint8)
        )


@pytest.mark.parametrize("kind", KINDS)
def test_write_checks_shape_type_and_range(make: MakeBackend, kind: str) -> None:
    backend = make(kind, data_type="uint8", name="u8")
    region = idx((10, 20, 3), (42, 52, 5))
    with pytest.raises(ValueError, match=r"expected shape \(1, 32, 32, 2\)"):
        backend.write(region, torch.zeros(1, 32, 32, 3))
    with pytest.raises(TypeError, match=r"expected a torch.Tensor"):
        backend.write(region, np.zeros((1, 32, 32, 2)))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"values span \[0, 300\], outside the range of the stored uint8"
    ):
        backend.write(
            region,
            torch.full((1, 32, 32, 2), 300, dtype=torch.int32).index_fill(1, torch.tensor([0]), 0),
        )
    with pytest.raises(ValueError, match="NaN cannot be stored as uint8"):
        backend.write(region, torch.full((1, 32, 32, 2), float("nan")))
    backend.write(region, torch.full((1, 32, 32, 2), 254.7))  # in range: cast truncates
    assert (backend.read(region) == 254).all()
    seg = make(kind, data_type="uint64", name="u64")
    with pytest.raises(ValueError, match="outside the range of the stored uint64"):
        seg.write(region, torch.full((1, 32, 32, 2), -1, dtype=torch.int64))
    with pytest.raises(
        ValueError, match=r"resolution \(4, 4, 40\) is not stored in .*stored: \(8, 8, 40\)"
    ):
        seg.read(idx((0, 0, 0), (1, 1, 1), Vec3D(4, 4, 40)))


@pytest.mark.parametrize("kind", KINDS)
def test_locked_scales_are_refused_by_both(kind: str, tmp_path: Path) -> None:
    info = small_info()
    info["scales"][0]["locked"] = True
    write_info(str(tmp_path / "locked"), info)
    backend = backend_class(kind)(str(tmp_path / "locked"))
    with pytest.raises(PermissionError, match=r"scale 8_8_40 of .* is write-locked"):
        backend.write(FULL, torch.zeros(1, 96, 80, 6, dtype=torch.uint8))
    assert backend.read(FULL).sum() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_uint64_labels_above_int64_fail_loudly(
    make: MakeBackend, kind: str, tmp_path: Path
) -> None:
    backend = make(kind, data_type="uint64", name="big")
    store = ts.open(
        {"driver": "neuroglancer_precomputed", "kvstore": f"file://{tmp_path}/big"}
    ).result()
    big = np.full((32, 32, 2, 1), 2**63 + 5, dtype=np.uint64)
    store[10:42, 20:52, 3:5].write(big).result()
    with pytest.raises(ValueError, match="above 2\\*\\*63-1"):
        backend.read(idx((10, 20, 3), (42, 52, 5)))
    labels = torch.full((1, 32, 32, 2), 2**63 - 1, dtype=torch.int64)
    backend.write(idx((42, 20, 3), (74, 52, 5)), labels)
    assert (store[42:74, 20:52, 3:5].read().result() == 2**63 - 1).all()


@pytest.mark.parametrize("reader_kind", KINDS)
@pytest.mark.parametrize("writer_kind", KINDS)
def test_cached_reads_see_writes_of_this_process(
    make: MakeBackend, reader_kind: str, writer_kind: str
) -> None:
    reader = make(reader_kind, cache_bytes_limit=10_000_000)
    writer = make(writer_kind)  # another backend object on the same volume
    region = idx((10, 20, 3), (42, 52, 5))
    writer.write(region, torch.full((1, 32, 32, 2), 1, dtype=torch.uint8))
    assert (reader.read(region) == 1).all()
    writer.write(region, torch.full((1, 32, 32, 2), 2, dtype=torch.uint8))
    assert (reader.read(region) == 2).all()


_WORKER = """
import pickle, sys, torch
from zetta_utils.layer.volumetric import VolumetricIndex
backend = pickle.loads(sys.stdin.buffer.read())
region = VolumetricIndex.from_coords((10, 20, 3), (42, 52, 5), (8, 8, 40))
backend.write(region, torch.full((1, 32, 32, 2), int(sys.argv[1]), dtype=torch.uint8))
print(int(backend.read(backend.get_bounds(backend.get_resolutions()[0])).sum()))
"""


def _write_value_in_new_process(backend_bytes: bytes, value: int) -> int:
    """Unpickle the backend in a fresh interpreter (as a worker would), write ``value`` into one
    chunk there and return the sum of the volume it then reads."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, str(value)],
        input=backend_bytes,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return int(done.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_backends_pickle_and_work_in_another_process(make: MakeBackend, kind: str) -> None:
    backend = make(kind, cache_bytes_limit=1_000_000)
    backend.read(FULL)  # handles opened here must not travel
    data = pickle.dumps(backend)
    assert len(data) < 4000
    clone = pickle.loads(data)
    assert clone == backend and clone.cache_bytes_limit == 1_000_000
    assert _write_value_in_new_process(data, 4) == 4 * 32 * 32 * 2
    if kind == "cv":
        # CloudVolume's LRU is not revalidated against storage (documented): drop it
        backend.clear_cache()
    # TensorStore revalidates its cached chunks, so the other process's write is seen
    assert (backend.read(idx((10, 20, 3), (42, 52, 5))) == 4).all()


@pytest.mark.parametrize("kind", KINDS)
def test_handles_are_reused(make: MakeBackend, kind: str) -> None:
    backend = make(kind)
    opened: list[Any] = []
    original = type(backend)._open

    def counting_open(self: Any, scale: Any) -> Any:
        opened.append(scale["key"])
        return original(self, scale)

    type(backend)._open = counting_open  # type: ignore[method-assign]
    try:
        backend.clear_cache()
        for _ in range(3):
            backend.read(FULL)
            make(kind).read(FULL)  # an equal backend in the same process shares the handle
        assert opened == ["8_8_40"]
    finally:
        type(backend)._open = original  # type: ignore[method-assign]


@pytest.mark.parametrize("compress, suffix", [("gzip", ".gz"), ("br", ".br"), ("zstd", ".zstd")])
def test_ts_refuses_volumes_with_gzipped_chunks(tmp_path: Path, compress: str, suffix: str) -> None:
    from cloudvolume import CloudVolume

    path = str(tmp_path / "gz")
    write_info(path, small_info())
    cv = CloudVolume(f"file://{path}", compress=compress, progress=False)
    cv[10:42, 20:52, 3:5] = np.ones((32, 32, 2, 1), np.uint8)
    assert any(n.endswith(suffix) for n in os.listdir(f"{path}/8_8_40"))
    with pytest.raises(ValueError, match=r"compressed chunk files .*read it with build_cv_layer"):
        TSBackend(path).read(FULL)
    assert (CVBackend(path).read(idx((10, 20, 3), (42, 52, 5))) == 1).all()


def test_cv_settings_that_would_lose_data_are_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info())
    with pytest.raises(ValueError, match="compress='gzip' is refused for file:// paths"):
        CVBackend(path, compress="gzip")
    rgb = str(tmp_path / "rgb")
    write_info(rgb, small_info(encoding="jpeg", num_channels=3))
    with pytest.raises(ValueError, match=r"cloud-volume decodes wrongly.*use build_ts_layer"):
        CVBackend(rgb)
    TSBackend(rgb).write(FULL, torch.zeros(3, 96, 80, 6, dtype=torch.uint8))


def test_multichannel_jpeg_through_ts(tmp_path: Path) -> None:
    path = str(tmp_path / "rgb")
    write_info(path, small_info(encoding="jpeg", num_channels=3))
    backend = TSBackend(path)
    x = torch.linspace(0, 1, 96)[None, :, None, None]
    data = torch.cat([x * 200, x * 100 + 50, 255 - x * 200]).expand(3, 96, 80, 6).to(torch.uint8)
    backend.write(FULL, data.contiguous())
    assert (backend.read(FULL).int() - data.int()).abs().max() <= 8


# --- http ----------------------------------------------------------------------------------------


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", KINDS)
def test_http_volumes_are_read_only(http_root: tuple[str, Path], kind: str) -> None:
    url, root = http_root
    write_info(str(root / "vol"), small_info(data_type="float32"))
    local = TSBackend(str(root / "vol"))
    data = random_data("float32", (1, 64, 32, 2))
    local.write(idx((10, 20, 3), (74, 52, 5)), data)
    backend = backend_class(kind)(f"{url}/vol")
    assert not backend.is_local
    result = backend.read(idx((10, 20, 3), (106, 52, 5)))
    torch.testing.assert_close(result[:, :64], data, rtol=0, atol=0)
    assert result[:, 64:].abs().sum() == 0  # chunks never written (404) read as zeros
    with pytest.raises(PermissionError, match="read-only"):
        backend.write(idx((10, 20, 3), (42, 52, 5)), torch.zeros(1, 32, 32, 2))


@pytest.mark.parametrize("kind", KINDS)
def test_info_reference_over_http(http_root: tuple[str, Path], kind: str, tmp_path: Path) -> None:
    from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    url, root = http_root
    write_info(
        str(root / "ref"), small_info(data_type="float32", resolutions=((4, 4, 40), (8, 8, 40)))
    )
    build = build_ts_layer if kind == "ts" else build_cv_layer
    layer = build(
        str(tmp_path / "new"),
        info_reference_path=f"{url}/ref",
        info_scales=[(8, 8, 40), (16, 16, 40)],
        info_chunk_size=(16, 16, 2),
    )
    assert layer.backend.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(16, 16, 2)
    # derived from the finest reference scale: x [40, 424) nm -> [2.5, 26.5) -> [2, 27) voxels
    assert layer.backend.get_voxel_offset(Vec3D(16, 16, 40)) == Vec3D(2, 5, 3)
    assert layer.backend.get_dataset_size(Vec3D(16, 16, 40)) == Vec3D(25, 20, 6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk_files", ["1", "0"])
@pytest.mark.parametrize(
    ("data_type", "encoding", "num_channels"),
    [("float32", "raw", 3), ("uint64", "compressed_segmentation", 2)],
)
def test_one_voxel_of_several_channels(
    make: MakeBackend,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    chunk_files: str,
    data_type: str,
    encoding: str,
    num_channels: int,
) -> None:
    # cloud-volume 12.x returns one voxel of a multi-channel volume as (C, 1, 1, 1), not XYZC
    monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", chunk_files)
    data = random_data(data_type, (num_channels, 96, 80, 6))
    make("ts", data_type=data_type, encoding=encoding, num_channels=num_channels).write(FULL, data)
    backend = make(kind, data_type=data_type, encoding=encoding, num_channels=num_channels)
    for start in [(10, 20, 3), (57, 61, 6), (105, 99, 8)]:
        stop = (start[0] + 1, start[1] + 1, start[2] + 1)
        o = (start[0] - 10, start[1] - 20, start[2] - 3)
        expected = data[:, o[0] : o[0] + 1, o[1] : o[1] + 1, o[2] : o[2] + 1]
        result = backend.read(idx(start, stop))
        assert result.shape == (num_channels, 1, 1, 1)
        torch.testing.assert_close(result, expected.to(result.dtype), rtol=0, atol=0)
