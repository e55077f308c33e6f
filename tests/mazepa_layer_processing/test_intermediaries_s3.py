"""The intermediaries on S3 (a moto server on loopback, started here with its request log): how
many requests a small blended flow makes, per kind, and that its output is byte for byte that of
the same flow on local storage."""

from __future__ import annotations

import collections
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import read_ahead
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box, ChunkGrid
from zetta_utils.mazepa_layer_processing.common.intermediaries import PieceStore

from .helpers import BLEND_TWO_LEVELS, RES, random_array, write_array

SIZE = (64, 64, 2)
CHUNK = (16, 16, 1)
CFG = BLEND_TWO_LEVELS
REQUEST = re.compile(r'"([A-Z]+) (/[^ ]*) HTTP/[0-9.]+" (\d+)')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Server:
    def __init__(self, endpoint: str, log: Path):
        self.endpoint = endpoint
        self.log = log
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def mark(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, mark: int, last: str) -> list[tuple[str, str]]:
        """(method, path) of the requests logged since ``mark``; waits (a safety net, not a
        speed assumption) for the request ``last`` (a path) the caller made last, since the
        server logs a request after answering it."""
        deadline = time.monotonic() + 30
        while True:
            with open(self.log, "rb") as f:
                f.seek(mark)
                text = ANSI.sub("", f.read().decode(errors="replace"))
            found = [(m[1], m[2]) for m in REQUEST.finditer(text)]
            if any(path.startswith(last) for _, path in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(
    moto_process: tuple[str, Path], s3_env: Callable[[pytest.MonkeyPatch, str], None]
) -> Iterator[Server]:
    endpoint, log = moto_process
    with pytest.MonkeyPatch.context() as mp:
        s3_env(mp, endpoint)
        yield Server(endpoint, log)


def volume(path: str) -> VolumetricLayer:
    return build_ts_layer(
        path,
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=list(CHUNK),
        info_dataset_size=list(SIZE),
        info_encoding="raw",
    )


def blended_flow(src: VolumetricLayer, dst: VolumetricLayer, tmp: str, **kwargs: Any) -> Any:
    return build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        fn=lambda src: src * 0.5 + src[:, :1, :1, :1] * 0.25,  # overlapping outputs differ
        op_kwargs={"src": src},
        level_intermediaries_dirs=[tmp, tmp],
        verbose=False,
        **CFG,
        **kwargs,
    )


def keys_under(server: Server, bucket: str, prefix: str) -> list[str]:
    pages = server.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents") or [])


def counts(requests: list[tuple[str, str]], tmp_prefix: str) -> dict[str, int]:
    """Requests of the intermediaries per method (the flow's only bulk deletes are theirs)."""
    found: collections.Counter[str] = collections.Counter()
    for method, path in requests:
        if path.split("?")[0].startswith(tmp_prefix) or path.endswith("?delete"):
            found[method] += 1
    return dict(found)


@pytest.mark.parametrize("in_memory", [True, False], ids=["rows-in-memory", "rows-written"])
def test_a_blended_flow_on_s3_makes_few_requests_and_writes_local_bytes(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool
) -> None:
    bucket = f"flow-{in_memory}".lower()
    if not in_memory:
        monkeypatch.setenv("ZETTA_PIECE_ROWS_IN_MEMORY", "0")
    server.client.create_bucket(Bucket=bucket)
    data = random_array((1, *SIZE), "uint8", seed=11)
    src_s3, src_local = volume(f"s3://{bucket}/src"), volume(f"file://{tmp_path}/src")
    write_array(src_s3, data)
    write_array(src_local, data)
    dst_s3, dst_local = volume(f"s3://{bucket}/dst"), volume(f"file://{tmp_path}/dst")

    mark = server.mark()
    # one task at a time: the order of tasks, and so what is kept when, does not depend on
    # how long they take
    mazepa.execute(
        blended_flow(src_s3, dst_s3, f"s3://{bucket}/tmp"), show_progress=False, batch_size=1
    )
    server.client.head_bucket(Bucket=bucket)  # the last request: all before it are logged
    requests = server.requests_since(mark, f"/{bucket}")
    mazepa.execute(
        blended_flow(src_local, dst_local, f"file://{tmp_path}/tmp"), show_progress=False
    )

    # 4 x 4 x 2 top-level chunks, reduced in 2 x 2 x 2 chunks of 32 x 32 x 1: each needs the rows
    # of the 3 x 3 top-level chunks it overlaps (blend pads reach into the next ones), but the
    # rows this process writes are kept for its reductions, as many as a reduction chunk and its
    # blend pads can meet (4 x 4, here all the rows of a z section): the reductions read none.
    # Pieces are deleted once a z section's reductions are done, one request per section, and the
    # rest (infos, the manifest) at the end: one listing and one request.
    # A run in one process writes no row at all: they stay in memory for its reductions.
    if in_memory:
        assert counts(requests, f"/{bucket}/tmp/") == {"PUT": 2, "POST": 1}
    else:
        assert counts(requests, f"/{bucket}/tmp/") == {"PUT": 32 + 2, "POST": 2 + 1}
    assert keys_under(server, bucket, "tmp/") == []
    # and the bytes written to dst are those of the same flow on local storage, chunk for chunk
    stored = keys_under(server, bucket, "dst/")
    local = sorted(
        os.path.relpath(os.path.join(d, f), tmp_path / "dst")
        for d, _, files in os.walk(tmp_path / "dst")
        for f in files
    )
    assert [key.removeprefix("dst/") for key in stored if key != "dst/info"] == [
        name for name in local if name != "info"
    ]
    assert len(stored) == 1 + 4 * 4 * 2
    for key in stored:
        if key == "dst/info":
            continue
        body = server.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (tmp_path / "dst" / key.removeprefix("dst/")).read_bytes(), key


def test_kept_intermediaries_on_s3_keep_every_row(server: Server) -> None:
    bucket = "kept"
    server.client.create_bucket(Bucket=bucket)
    src = volume(f"s3://{bucket}/src")
    write_array(src, random_array((1, *SIZE), "uint8", seed=12))
    flow = blended_flow(
        src, volume(f"s3://{bucket}/dst"), f"s3://{bucket}/tmp", keep_intermediaries=True
    )
    mark = server.mark()
    mazepa.execute(flow, show_progress=False)
    server.client.head_bucket(Bucket=bucket)
    requests = server.requests_since(mark, f"/{bucket}")
    assert [r for r in requests if r[0] in ("POST", "DELETE")] == []
    rows = [k for k in keys_under(server, bucket, "tmp/") if "/pieces/" in k and "info" not in k]
    assert len(rows) == 4 * 4 * 2


@pytest.mark.parametrize(
    ("channels", "chunk", "corner", "gets"),
    # a row's channels in one request, unless that reads more than twice what is needed: with
    # thin frames (64 + 2 x 2 wide chunks), the frames of 3 channels are read apart; but the
    # frames of chunks that a later reduction reduces (after the box at corner 0, none after the
    # box at corner 2) are read with their interiors, whole rows, all channels in one request
    [
        (1, 8, 0, 9),
        (3, 8, 0, 9),
        (1, 64, 0, 9),
        (3, 64, 0, 9),
        (3, 8, 2, 9),
        (3, 64, 2, 4 + 5 * 3),
    ],
)
def test_a_reduction_reads_each_row_it_needs_in_one_request(
    server: Server, tmp_path: Path, channels: int, chunk: int, corner: int, gets: int
) -> None:
    bucket = f"rows-{channels}-{chunk}-{corner}"
    server.client.create_bucket(Bucket=bucket)
    grid = ChunkGrid.over(Box((0, 0, 0), (4 * chunk, 4 * chunk, 1)), (chunk, chunk, 1), (2, 2, 0))
    rng = np.random.default_rng(channels)
    outputs = {
        key: rng.integers(0, 200, (channels, *grid.padded(key).shape)).astype(np.uint8)
        for key in grid.keys()
    }
    stores = [
        PieceStore(path, Vec3D(*RES), grid, "uint8", channels)
        for path in (f"s3://{bucket}/tmp", f"file://{tmp_path}/tmp")
    ]
    for store in stores:
        store.create()
        for key, data in outputs.items():
            store.write_chunk(key, data)
    # 2 x 2 chunks whole, the frames of 5 more
    box = Box((corner * chunk, corner * chunk, 0), ((corner + 2) * chunk, (corner + 2) * chunk, 1))
    mark = server.mark()
    out = stores[0].reduce_box(box, np.uint8, "linear")
    server.client.head_bucket(Bucket=bucket)
    assert len([m for m, _ in server.requests_since(mark, f"/{bucket}") if m == "GET"]) == gets
    assert np.array_equal(out, stores[1].reduce_box(box, np.uint8, "linear"))
    # whole rows, interiors and frames read back as the local files hold them
    s3, local = stores
    wanted = [
        ((1, 1, 0), 0, s3.row_size),
        ((2, 1, 0), s3.interior_size, s3.row_size),
        ((1, 2, 0), 0, s3.interior_size),
    ]
    for remote_values, local_values in zip(
        s3._read_rows(wanted), local._read_rows(wanted), strict=True
    ):
        assert np.array_equal(remote_values, local_values)
    # rows released in one request, again without error; then read no more
    released = [(corner, corner, 0), (corner + 1, corner, 0), (corner, corner + 1, 0)]
    mark = server.mark()
    s3.delete_pieces(released)
    s3.delete_pieces(released)
    server.client.head_bucket(Bucket=bucket)
    assert [m for m, _ in server.requests_since(mark, f"/{bucket}")] == ["POST", "POST", "HEAD"]
    assert len(keys_under(server, bucket, "tmp/pieces/")) == 1 + 16 - 3  # the info and the rest
    with pytest.raises(FileNotFoundError, match="is missing or short"):
        s3.reduce_box(box, np.uint8, "linear")
    s3.delete()
    assert keys_under(server, bucket, "") == []


def test_frames_are_reused_within_an_execution_only(server: Server, tmp_path: Path) -> None:
    bucket = "reuse"
    server.client.create_bucket(Bucket=bucket)
    grid = ChunkGrid.over(Box((0, 0, 0), (32, 32, 1)), (8, 8, 1), (2, 2, 0))
    rng = np.random.default_rng(3)
    left, right = Box((0, 0, 0), (16, 16, 1)), Box((16, 0, 0), (32, 16, 1))
    # two executions over the same path, the second with other outputs; the values expected
    # first, from local stores (a reduction of another store lets go of the frames kept)
    executions = []
    for n in range(2):
        outputs = {
            key: rng.integers(0, 200, (1, *grid.padded(key).shape)).astype(np.uint8)
            for key in grid.keys()
        }
        local = PieceStore(f"file://{tmp_path}/{n}", Vec3D(*RES), grid, "uint8", 1)
        local.create()
        for key, data in outputs.items():
            local.write_chunk(key, data)
        executions.append(
            (outputs, [local.reduce_box(b, np.uint8, "linear") for b in (left, right)])
        )
    s3 = PieceStore(f"s3://{bucket}/tmp", Vec3D(*RES), grid, "uint8", 1)
    for outputs, expected in executions:
        s3.create()
        for key, data in outputs.items():
            s3.write_chunk(key, data)
        for box, values in zip((left, right), expected, strict=True):
            mark = server.mark()
            assert np.array_equal(s3.reduce_box(box, np.uint8, "linear"), values)
            server.client.head_bucket(Bucket=bucket)
            gets = [m for m, _ in server.requests_since(mark, f"/{bucket}") if m == "GET"]
            # the right box takes the rows of the 2 x 3 chunks left of it from the left box
            # (those of the middle column whole: the left box read them for the right one)
            assert len(gets) == (9 if box == left else 3)


def test_the_memory_bound_of_a_reduction_counts_the_frames_kept_on_s3(
    server: Server, tmp_path: Path
) -> None:
    from zetta_utils.mazepa_layer_processing.common import (
        make_subchunkable_plan,
        summary,
        volumetric_apply_flow,
    )

    bucket = "bound"
    server.client.create_bucket(Bucket=bucket)
    bounds = {}
    for where, root in [("s3", f"s3://{bucket}"), ("local", f"file://{tmp_path}")]:
        src, dst = volume(f"{root}/src"), volume(f"{root}/dst")
        plan, _ = make_subchunkable_plan(
            dst=dst,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            fn=lambda src: src,
            op_kwargs={"src": src},
            level_intermediaries_dirs=[f"{root}/tmp", f"{root}/tmp"],
            **CFG,
        )
        assert plan.store is not None and plan.store.keeps_frames  # local storage too
        bounds[where] = summary.reduction_memory(plan)
        # the rows a worker keeps for its reductions, from task to task: as many as a reduction
        # reads at most (summary.estimate counts them in the memory of top-level tasks too)
        kept = volumetric_apply_flow.kept_rows_bytes(plan)
        # a 32 x 32 x 1 reduction chunk and its blend pads (36 voxels) meet at most 4 x 4
        # top-level chunks of 16 x 16 x 1 (bound of any placement), each 20 x 20 x 1 voxels
        # padded, uint8; on S3 one more, where the tasks read their input ahead (the executors
        # keep one task more queued: a top-level task may run before a reduction ready)
        ahead = volumetric_apply_flow.reads_ahead(plan)
        assert ahead == (where == "s3" and read_ahead.mode() != "off")
        assert kept == (4 * 4 + ahead) * 20 * 20 * 1
    assert bounds["s3"] == bounds["local"]


def test_reductions_in_order_read_each_row_once_and_keep_at_most_their_rows(
    server: Server, tmp_path: Path
) -> None:
    from zetta_utils.mazepa_layer_processing.common import intermediaries

    bucket = "once"
    server.client.create_bucket(Bucket=bucket)
    grid = ChunkGrid.over(Box((0, 0, 0), (128, 128, 2)), (32, 32, 1), (2, 2, 0))
    rng = np.random.default_rng(5)
    outputs = {
        key: rng.integers(0, 200, (2, *grid.padded(key).shape)).astype(np.uint8)
        for key in grid.keys()
    }
    s3, local = (
        PieceStore(path, Vec3D(*RES), grid, "uint8", 2)
        for path in (f"s3://{bucket}/tmp", f"file://{tmp_path}/tmp")
    )
    local.create()
    local.run_token = None  # the reference keeps no rows (a process keeps one store's rows)
    for key, data in outputs.items():
        local.write_chunk(key, data)
    s3.create()
    budget = 9 * 2 * s3.row_size  # the 3 x 3 rows a reduction needs

    def kept_bytes() -> int:
        rows = intermediaries._KEPT_ROWS._rows
        return sum(v.nbytes for parts in rows.values() for _, v in parts)

    reduced: list[tuple[int, int, int]] = []
    gets = []
    for z in (0, 1):  # as a run: a z section's rows written, then its reductions, y, then x
        for key, data in outputs.items():
            if key[2] == z:
                s3.write_chunk(key, data)
                assert kept_bytes() <= budget
        mark = server.mark()
        for y, x in [(0, 0), (0, 64), (64, 0), (64, 64)]:
            box = Box((x, y, z), (x + 64, y + 64, z + 1))
            expected = local.reduce_box(box, np.uint8, "quadratic")
            assert np.array_equal(s3.reduce_box(box, np.uint8, "quadratic"), expected)
            reduced += [(x // 32 + i, y // 32 + j, z) for i in (0, 1) for j in (0, 1)]
            # at most the 3 x 3 rows this reduction needed, and no interior reduced already
            assert kept_bytes() <= budget
            kept = intermediaries._KEPT_ROWS._rows
            for key in reduced:
                assert all(start == s3.interior_size for start, _ in kept.get(key, [])), key
        server.client.head_bucket(Bucket=bucket)
        gets.append(len([m for m, _ in server.requests_since(mark, f"/{bucket}") if m == "GET"]))
    # each row once in the first section; in the second, the first 9 rows written were kept
    assert gets == [16, 16 - 9]


def test_local_reductions_take_the_rows_this_process_wrote_from_memory(tmp_path: Path) -> None:
    """On local storage too, a process keeps the rows it writes for its reductions (within the
    same budget as on object storage): with the row files gone, the reductions still combine the
    same values as a store that reads every row back."""
    grid = ChunkGrid.over(Box((0, 0, 0), (128, 128, 1)), (32, 32, 1), (2, 2, 0))
    rng = np.random.default_rng(7)
    outputs = {
        key: rng.integers(0, 200, (2, *grid.padded(key).shape)).astype(np.uint8)
        for key in grid.keys()
    }
    reference, kept = (
        PieceStore(f"file://{tmp_path}/{name}", Vec3D(*RES), grid, "uint8", 2)
        for name in ("reference", "kept")
    )
    reference.create()
    reference.run_token = None  # keeps nothing: reads every row back
    kept.create()
    assert kept.keeps_frames
    kept.keep_bytes = len(outputs) * 2 * kept.row_size
    for key, data in outputs.items():
        reference.write_chunk(key, data)
        kept.write_chunk(key, data)
    row_files = os.path.join(tmp_path, "kept", "pieces", kept._scale_key)
    assert len(os.listdir(row_files)) == len(outputs)
    for name in os.listdir(row_files):
        os.remove(os.path.join(row_files, name))
    for y, x in [(0, 0), (0, 64), (64, 0), (64, 64)]:
        box = Box((x, y, 0), (x + 64, y + 64, 1))
        expected = reference.reduce_box(box, np.uint8, "quadratic")
        assert np.array_equal(kept.reduce_box(box, np.uint8, "quadratic"), expected)
