"""bench/s3_latency_server.py: moto's S3 application behind a middleware that delays each
request, as ``bench_matrix.py --s3-latency-ms`` starts it (a real server on 127.0.0.1). The
delay is checked through an injected sleep, and as a lower bound on a real request's time (a
sleep lasts at least what it was asked), never as an upper bound."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench_modules() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


def test_each_request_sleeps_before_the_app_answers(bench_modules: None) -> None:
    import s3_latency_server

    calls: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(("app", environ["PATH_INFO"]))
        return [b"ok"]

    wrapped = s3_latency_server.delayed(app, 0.02, sleep=lambda s: calls.append(("sleep", s)))
    start_response = lambda *args: None  # noqa: E731
    assert wrapped({"PATH_INFO": "/a"}, start_response) == [b"ok"]
    assert wrapped({"PATH_INFO": "/b"}, start_response) == [b"ok"]
    assert calls == [("sleep", 0.02), ("app", "/a"), ("sleep", 0.02), ("app", "/b")]
    no_delay = s3_latency_server.delayed(app, 0, sleep=lambda s: calls.append(("sleep", s)))
    no_delay({"PATH_INFO": "/c"}, start_response)
    assert calls[-1] == ("app", "/c")


@pytest.mark.slow
@pytest.mark.skipif(
    not (
        os.path.exists(os.path.join(os.path.dirname(sys.executable), "moto_server"))
        or shutil.which("moto_server")
    ),
    reason="moto_server not installed (pip install 'moto[server]')",
)
def test_the_delayed_server_serves_s3_and_logs_requests(
    bench_modules: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench_matrix as bm
    import boto3

    for var in (
        "ZETTA_S3_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
    ):  # s3_server sets them: restored after the test
        monkeypatch.setenv(var, os.environ.get(var, ""))
    log = tmp_path / "server.log"
    latency_ms = 30  # declared: each request below waits at least this long
    with bm.s3_server(str(log), latency_ms=latency_ms) as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.put_object(Bucket="bench", Key="k", Body=b"x" * 100)
        start = time.perf_counter()
        body = s3.get_object(Bucket="bench", Key="k")["Body"].read()
        took = time.perf_counter() - start
    assert body == b"x" * 100
    assert took >= latency_ms / 1000  # a lower bound only
    text = log.read_text()
    assert '"PUT /bench/k HTTP/1.1" 200' in text and '"GET /bench/k HTTP/1.1" 200' in text
