"""Fixtures of the storage-backend tests: an S3-compatible server (moto) on loopback, and
helpers to make small volumes."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def s3_server(
    moto_process: tuple[str, Any], s3_env: Callable[[pytest.MonkeyPatch, str], None]
) -> Iterator[dict[str, Any]]:
    """The session's moto S3 server (tests/conftest.py), with the environment both backends need
    to reach it. Yields ``{"endpoint": ..., "client": boto3 client}``."""
    endpoint = moto_process[0]
    with pytest.MonkeyPatch.context() as mp:
        s3_env(mp, endpoint)
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        yield {"endpoint": endpoint, "client": client}


_BUCKETS = itertools.count()


@pytest.fixture
def s3_bucket(s3_server: dict[str, Any], request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket on the moto server."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"b{next(_BUCKETS)}-{stem}"
    s3_server["client"].create_bucket(Bucket=name)
    return name
