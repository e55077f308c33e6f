"""boto3 SQS clients configured from arguments or the environment.

The endpoint decides which service answers: Amazon SQS by default, or any SQS-compatible server
(moto, ElasticMQ, LocalStack) when one of these is set, first match wins:

    argument ``endpoint_url`` > ``ZETTA_SQS_ENDPOINT`` > ``AWS_ENDPOINT_URL_SQS``
    > ``AWS_ENDPOINT_URL``

The region: argument > ``AWS_DEFAULT_REGION`` > ``AWS_REGION`` > ``us-east-1``. Credentials come
from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, roles).
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["resolve_endpoint", "resolve_region", "sqs_client"]

_ENDPOINT_VARS = ("ZETTA_SQS_ENDPOINT", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL")
_DEFAULT_REGION = "us-east-1"

_clients: dict[tuple[str, str | None, int], Any] = {}
_lock = threading.Lock()


def resolve_endpoint(endpoint_url: str | None = None) -> str | None:
    """The SQS endpoint to talk to (None: Amazon's, from the region)."""
    if endpoint_url:
        return endpoint_url
    for var in _ENDPOINT_VARS:
        value = os.environ.get(var)
        if value:
            return value
    return None


def resolve_region(region_name: str | None = None) -> str:
    if region_name:
        return region_name
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or _DEFAULT_REGION


def sqs_client(region_name: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 SQS client (shared per region, endpoint and process; clients are thread-safe)."""
    region = resolve_region(region_name)
    endpoint = resolve_endpoint(endpoint_url)
    key = (region, endpoint, os.getpid())
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 8, "mode": "standard"},
                connect_timeout=10,
                read_timeout=40,  # longer than the longest long poll (20 s)
                max_pool_connections=20,
            )
            session = boto3.session.Session()
            client = session.client("sqs", region_name=region, endpoint_url=endpoint, config=config)
            _clients[key] = client
        return client
