"""Deleting many objects of an S3 bucket in few requests (``DeleteObjects``: up to 1000 keys a
request), for the intermediaries: TensorStore's key-value store deletes one key per request.

The client reaches the same server as TensorStore's ``s3`` driver (the endpoint and region of
:func:`~zetta_utils.layer.volumetric.precomputed.tensorstore_kvstore_spec`), with boto3's usual
credential chain.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from typing import Any

from zetta_utils.layer.volumetric import precomputed

MAX_KEYS = 1000
"""The most keys one ``DeleteObjects`` request takes."""


@functools.lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str, pid: int) -> Any:  # pid: not shared across forks
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region)


def client() -> Any:
    """A boto3 S3 client for the endpoint and region TensorStore uses (one per process)."""
    return _client(precomputed.get_s3_endpoint(), precomputed.get_s3_region(), os.getpid())


def _batches(keys: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == MAX_KEYS:
            yield batch
            batch = []
    if batch:
        yield batch


def delete_keys(bucket: str, keys: Iterable[str]) -> int:
    """Delete objects ``keys`` of ``bucket`` (missing ones are no error), ``MAX_KEYS`` a request;
    the number of requests made. Raises OSError naming the first key S3 failed to delete."""
    s3 = client()
    requests = 0
    for batch in _batches(keys):
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        requests += 1
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise OSError(
                f"s3://{bucket}/{first.get('Key')}: not deleted ({first.get('Code')}: "
                f"{first.get('Message')}), and {len(errors) - 1} more key(s) of the batch"
            )
    return requests


def delete_prefix(bucket: str, prefix: str) -> int:
    """Delete every object of ``bucket`` whose key starts with ``prefix`` (which should end with
    ``/``); the number of delete requests made (the listing adds one request per 1000 keys)."""
    s3 = client()

    def listed() -> Iterator[str]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents") or []:
                yield item["Key"]

    return delete_keys(bucket, listed())
