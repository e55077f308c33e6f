"""CVBackend's deferred writes to object storage: several PUTs in flight at once, overlapping
writes in the order they were made, against a real moto S3 server on 127.0.0.1 started here.

The server holds each PUT until ``want`` PUTs are in flight at once, or until ``hold_s`` passed
(a declared latency of 0.3 s for a PUT that never gets company, so that a write that must run
alone still finishes): the assertions are on what the server saw at once and on the bytes
stored, never on how long anything took."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import write_behind
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
from zetta_utils.layer.volumetric.cloudvol.backend import REMOTE_WRITE_THREADS_ENV

RES = Vec3D(8, 8, 40)
CHUNK = (32, 32, 1)
HOLD_S = 0.3  # the longest a PUT is held waiting for company (the declared latency)


class Gate:
    """WSGI middleware counting the PUTs in flight and holding each until ``want`` are."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.cond = threading.Condition()
        self.in_flight = 0
        self.most = 0
        self.want = 1

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "PUT":
            return self.app(environ, start_response)
        with self.cond:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.in_flight >= self.want, timeout=HOLD_S)
        try:
            return self.app(environ, start_response)
        finally:
            with self.cond:
                self.in_flight -= 1

    def reset(self, want: int) -> None:
        with self.cond:
            self.want, self.most = want, 0


@pytest.fixture(scope="module")
def gated_s3(s3_env: Callable[[pytest.MonkeyPatch, str], None]) -> Iterator[Gate]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    gate = Gate(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, gate, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.port}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            s3_env(mp, endpoint)
            import boto3

            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
                Bucket="gated"
            )
            yield gate
    finally:
        server.shutdown()
        thread.join()


def _layer(name: str, chunks_x: int) -> Any:
    return build_cv_layer(
        f"s3://gated/{name}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[RES],
        info_chunk_size=CHUNK,
        info_dataset_size=(CHUNK[0] * chunks_x, CHUNK[1], 1),
        info_encoding="raw",
        cv_kwargs={"compress": "gzip"},
    )


def _chunk(i: int) -> VolumetricIndex:
    return VolumetricIndex.from_coords((CHUNK[0] * i, 0, 0), (CHUNK[0] * (i + 1), CHUNK[1], 1), RES)


def test_writes_to_s3_are_in_flight_together(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    monkeypatch.delenv(REMOTE_WRITE_THREADS_ENV, raising=False)  # the default: 4
    layer = _layer("together", 8)
    rng = np.random.default_rng(0)
    data = [torch.from_numpy(rng.integers(0, 255, (1, *CHUNK), dtype=np.uint8)) for _ in range(8)]
    gated_s3.reset(want=4)
    with write_behind.task_scope(on=True) as scope:
        for i, d in enumerate(data):
            layer[_chunk(i)] = d
    scope.wait()
    assert gated_s3.most >= 4  # 4 PUTs were at the server at once
    for i, d in enumerate(data):
        assert torch.equal(layer[_chunk(i)], d)


def test_one_write_thread_writes_one_at_a_time(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    monkeypatch.setenv(REMOTE_WRITE_THREADS_ENV, "1")
    layer = _layer("one", 4)
    gated_s3.reset(want=2)
    with write_behind.task_scope(on=True) as scope:
        for i in range(4):
            layer[_chunk(i)] = torch.full((1, *CHUNK), i + 1, dtype=torch.uint8)
    scope.wait()
    assert gated_s3.most == 1
    for i in range(4):
        assert int(layer[_chunk(i)].unique().item()) == i + 1


def test_overlapping_writes_land_in_order(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    # the same chunk written 6 times, and another chunk meanwhile: each write of the first waits
    # for the one before it; the other chunk's write goes alongside
    monkeypatch.delenv(REMOTE_WRITE_THREADS_ENV, raising=False)
    layer = _layer("order", 2)
    gated_s3.reset(want=2)
    with write_behind.task_scope(on=True) as scope:
        for value in range(1, 7):
            layer[_chunk(0)] = torch.full((1, *CHUNK), value, dtype=torch.uint8)
        layer[_chunk(1)] = torch.full((1, *CHUNK), 9, dtype=torch.uint8)
    scope.wait()
    assert int(layer[_chunk(0)].unique().item()) == 6
    assert int(layer[_chunk(1)].unique().item()) == 9
    assert gated_s3.most == 2  # never two writes of chunk 0 at once


def test_a_read_waits_for_the_pending_writes(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    monkeypatch.delenv(REMOTE_WRITE_THREADS_ENV, raising=False)
    layer = _layer("read", 3)
    gated_s3.reset(want=3)
    with write_behind.task_scope(on=True) as scope:
        for i in range(3):
            layer[_chunk(i)] = torch.full((1, *CHUNK), 7, dtype=torch.uint8)
        # in the same task, before its writes are known to be done
        assert bool((layer[_chunk(2)] == 7).all())
    scope.wait()


def test_bad_thread_count_is_refused(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    layer = _layer("bad", 1)
    monkeypatch.setenv(REMOTE_WRITE_THREADS_ENV, "zero")
    with (
        write_behind.task_scope(on=True),
        pytest.raises(ValueError, match=REMOTE_WRITE_THREADS_ENV),
    ):
        layer[_chunk(0)] = torch.zeros((1, *CHUNK), dtype=torch.uint8)


def test_a_write_of_several_chunks_and_an_edge_lands_whole(
    gated_s3: Gate, monkeypatch: pytest.MonkeyPatch, write_behind_default_bound: None
) -> None:
    # one write over 3 x 2 chunks whose last column is cut by the dataset's edge (80 = 2.5
    # chunks of 32), at an offset: written chunk by chunk, read back whole
    monkeypatch.delenv(REMOTE_WRITE_THREADS_ENV, raising=False)
    layer = build_cv_layer(
        "s3://gated/several",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[RES],
        info_chunk_size=CHUNK,
        info_voxel_offset=(16, 0, 0),
        info_dataset_size=(80, 64, 2),
        info_encoding="raw",
        cv_kwargs={"compress": "gzip"},
    )
    idx = VolumetricIndex.from_coords((16, 0, 0), (96, 64, 2), RES)
    data = torch.from_numpy(np.random.default_rng(1).integers(0, 255, (1, 80, 64, 2), np.uint8))
    gated_s3.reset(want=1)
    with write_behind.task_scope(on=True) as scope:
        layer[idx] = data
    scope.wait()
    assert torch.equal(layer[idx], data)
