"""A real SQS-compatible server (moto's server mode) on loopback, one per test session."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a safety net, not a speed assumption
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start on {url}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def sqs_env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points the SQS code (and worker processes, which inherit the environment) at the server,
    with dummy credentials and a fresh run-records folder."""
    monkeypatch.setenv("ZETTA_SQS_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("ZETTA_RUN_RECORDS", str(tmp_path / "runs"))
    return moto_endpoint


def _list_queue_names(prefix: str = "") -> list[str]:
    from zetta_utils.message_queues.sqs import sqs_client

    urls = sqs_client().list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return sorted(u.rsplit("/", 1)[-1] for u in urls)


@pytest.fixture
def list_queues(sqs_env: str) -> Callable[[str], list[str]]:
    """Names of the queues on the server starting with a prefix."""
    return _list_queue_names


_run_numbers = itertools.count(1)


@pytest.fixture
def run_queues(sqs_env: str) -> Iterator[tuple[str, Any, Any]]:
    """A run id with its work and outcome queues on the server (``SQSQueue``s), deleted after
    the test."""
    from zetta_utils.mazepa_addons.execution import queue_names
    from zetta_utils.message_queues import create_sqs_queue

    run_id = f"test-{os.getpid()}-{next(_run_numbers):04d}"
    work_name, outcome_name = queue_names(run_id)
    work = create_sqs_queue(work_name, visibility_timeout_s=10)
    outcomes = create_sqs_queue(outcome_name, visibility_timeout_s=10)
    yield run_id, work, outcomes
    work.delete_queue()
    outcomes.delete_queue()
