"""Fixtures of the storage-backend tests: an S3-compatible server (moto) on loopback, and
helpers to make small volumes."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_server_executable() -> str | None:
    beside_python = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if os.path.exists(beside_python):
        return beside_python
    return shutil.which("moto_server")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1, with the environment both backends need to reach it:
    ``ZETTA_S3_ENDPOINT`` and AWS keys (with ``AWS_SESSION_TOKEN``, which cloud-files needs for
    environment credentials). Yields ``{"endpoint": ..., "client": boto3 client}``."""
    exe = _moto_server_executable()
    if exe is None:
        pytest.skip("moto_server not found (pip install 'moto[server]') - S3 tests need it")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log_file, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a safety net, not a speed assumption
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).read()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ZETTA_S3_ENDPOINT", endpoint)
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_SESSION_TOKEN", "testing")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.delenv("AWS_ENDPOINT_URL", raising=False)
            mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
            mp.delenv("AWS_PROFILE", raising=False)
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            yield {"endpoint": endpoint, "client": client}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_BUCKETS = itertools.count()


@pytest.fixture
def s3_bucket(s3_server: dict[str, Any], request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket on the moto server."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"b{next(_BUCKETS)}-{stem}"
    s3_server["client"].create_bucket(Bucket=name)
    return name
