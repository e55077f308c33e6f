"""TSBackend writes whole raw chunks through TensorStore's key-value store: the files must be
byte for byte those of TensorStore's array interface, and a scale changed on storage is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import write_info
from zetta_utils.layer.volumetric.tensorstore import TSBackend

from .helpers import random_data, small_info, stored_array

RES = Vec3D(8, 8, 40)
# dataset (10, 20, 3) - (106, 100, 9), chunks of (32, 32, 2): the last chunks in y are clipped
FULL = VolumetricIndex.from_coords((10, 20, 3), (106, 100, 9), RES)
SHAPE = (96, 80, 6)


def chunk_files(path: str) -> dict[str, bytes]:
    directory = os.path.join(path, "8_8_40")
    result = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            result[name] = f.read()
    return result


@pytest.mark.parametrize(
    ("data_type", "num_channels"),
    [("uint8", 1), ("int16", 1), ("uint32", 1), ("uint64", 1), ("float32", 1), ("float32", 3)],
)
def test_raw_chunk_files_are_those_of_tensorstore_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_type: str, num_channels: int
) -> None:
    data = random_data(data_type, (num_channels, *SHAPE), seed=3)
    paths = {}
    for mode in ("1", "0"):  # kvstore chunk files, then TensorStore's array interface
        monkeypatch.setenv("ZETTA_RAW_CHUNK_WRITES", mode)
        path = paths[mode] = str(tmp_path / f"v{mode}")
        write_info(path, small_info(data_type=data_type, num_channels=num_channels))
        backend = TSBackend(path)
        # whole volume in one write, then one chunk in the middle and one clipped at the end
        backend.write(FULL, data)
        for start, stop in (((42, 52, 5), (74, 84, 7)), ((74, 84, 7), (106, 100, 9))):
            idx = VolumetricIndex.from_coords(start, stop, RES)
            part = data[
                :,
                start[0] - 10 : stop[0] - 10,
                start[1] - 20 : stop[1] - 20,
                start[2] - 3 : stop[2] - 3,
            ]
            backend.write(idx, part.flip(1).contiguous())
    written, reference = chunk_files(paths["1"]), chunk_files(paths["0"])
    assert list(written) == list(reference)
    assert "74-106_84-100_7-9" in written  # clipped at the dataset end in y
    for name, content in reference.items():
        assert written[name] == content, name
    # and what it wrote reads back through plain TensorStore
    monkeypatch.setenv("ZETTA_RAW_CHUNK_WRITES", "1")
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": f"file://{paths['1']}/",
        "fill_missing_data_reads": False,
    }
    stored = np.asarray(ts.open(spec).result().read().result())
    expected = TSBackend(paths["0"]).read(FULL)
    np.testing.assert_array_equal(stored, stored_array(expected, data_type))


def test_cached_reader_sees_raw_chunk_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZETTA_RAW_CHUNK_READS", "0")  # through TensorStore's cache
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8"))
    reader = TSBackend(path, cache_bytes_limit=2**24)
    writer = TSBackend(path)
    first = random_data("uint8", (1, *SHAPE), seed=1)
    second = random_data("uint8", (1, *SHAPE), seed=2)
    writer.write(FULL, first)
    assert (reader.read(FULL) == first).all()  # now cached
    writer.write(FULL, second)
    assert (reader.read(FULL) == second).all()


def test_synced_raw_chunk_writes_leave_only_chunk_files(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="float32", num_channels=2))
    data = random_data("float32", (2, *SHAPE), seed=4)
    backend = TSBackend(path, file_io_sync=True)
    backend.write(FULL, data)
    assert (TSBackend(path).read(FULL) == data).all()
    names = os.listdir(os.path.join(path, "8_8_40"))
    assert len(names) == 3 * 3 * 3 and not [n for n in names if n.startswith(".")]


def test_raw_chunk_writes_refuse_a_scale_changed_on_storage(tmp_path: Path) -> None:
    path = str(tmp_path / "v")
    write_info(path, small_info(data_type="uint8", chunk=(32, 32, 2)))
    backend = TSBackend(path)
    # another writer re-created the volume with other chunks and the same bounds
    with open(os.path.join(path, "info"), "w") as f:
        json.dump(small_info(data_type="uint8", chunk=(16, 16, 2)), f)
    with pytest.raises(
        ValueError, match=r"changed since this layer was built.*\[32, 32, 2\].*\[16, 16, 2\]"
    ):
        backend.write(FULL, random_data("uint8", (1, *SHAPE)))
    assert not os.path.exists(os.path.join(path, "8_8_40")) or not os.listdir(
        os.path.join(path, "8_8_40")
    )


_KILLED_MIDWAY = """
import os, signal, sys
import numpy as np
from zetta_utils.layer.volumetric import raw_chunks

real_write = os.write

def write_then_die(fd, data):
    real_write(fd, bytes(data[: len(data) // 2]))
    os.kill(os.getpid(), signal.SIGKILL)  # the writer dies with half the chunk written

os.write = write_then_die
raw_chunks.write_chunk_file(sys.argv[1], "0-4_0-4_0-1", np.full(16, 7, dtype=np.uint8), False)
"""


def test_a_chunk_writer_killed_midway_leaves_the_old_chunk_and_nothing_else(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from zetta_utils.layer.volumetric import raw_chunks

    directory = str(tmp_path / "8_8_40")
    raw_chunks.write_chunk_file(directory, "0-4_0-4_0-1", np.full(16, 3, dtype=np.uint8), False)
    proc = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, directory], check=False)
    assert proc.returncode == -9
    assert os.listdir(directory) == ["0-4_0-4_0-1"]
    assert (tmp_path / "8_8_40" / "0-4_0-4_0-1").read_bytes() == bytes([3] * 16)


def test_chunk_writes_without_unnamed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a file system refuses unnamed files, a hidden temporary file is renamed into place."""
    from zetta_utils.layer.volumetric import raw_chunks

    monkeypatch.setattr(raw_chunks, "_UNNAMED_FILES", [False])
    directory = str(tmp_path / "new" / "8_8_40")
    raw_chunks.write_chunk_file(directory, "a", np.arange(8, dtype=np.uint8), True)
    raw_chunks.write_chunk_file(directory, "a", np.arange(8, 16, dtype=np.uint8), False)
    assert os.listdir(directory) == ["a"]
    assert (tmp_path / "new" / "8_8_40" / "a").read_bytes() == bytes(range(8, 16))


@pytest.mark.parametrize("unnamed", [True, False])
def test_a_chunk_write_that_failed_to_land_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    """A chunk file whose place is taken (here by a folder) fails to land and leaves nothing;
    the same writer's retry, once the place is free, succeeds."""
    from zetta_utils.layer.volumetric import raw_chunks

    monkeypatch.setattr(raw_chunks, "_UNNAMED_FILES", [unnamed and raw_chunks._UNNAMED_FILES[0]])
    directory = tmp_path / "8_8_40"
    (directory / "a").mkdir(parents=True)
    with pytest.raises(OSError):
        raw_chunks.write_chunk_file(str(directory), "a", np.arange(8, dtype=np.uint8), False)
    assert os.listdir(directory) == ["a"]
    (directory / "a").rmdir()
    raw_chunks.write_chunk_file(str(directory), "a", np.arange(8, dtype=np.uint8), False)
    assert os.listdir(directory) == ["a"]
    assert (directory / "a").read_bytes() == bytes(range(8))
