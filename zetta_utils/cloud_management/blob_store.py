"""Small named blobs in a folder or a bucket: run records, oversized task payloads.

``open_blob_store(location)`` takes a local path (``~`` expanded), ``file://``, ``s3://bucket/prefix``
(boto3; endpoint from ``ZETTA_S3_ENDPOINT``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``) or
``gs://bucket/prefix`` (google-cloud-storage, default credentials). Keys are ``/``-separated names.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

__all__ = ["BlobStore", "GCSBlobStore", "LocalBlobStore", "S3BlobStore", "open_blob_store"]


class BlobStore(Protocol):
    @property
    def location(self) -> str:
        """A location string that ``open_blob_store`` turns back into this store."""
        ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The blob's bytes; ``FileNotFoundError`` if there is none."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the blob; False if there was none."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        ...


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(
            f"blob key must be a relative '/'-separated name without '..', got {key!r}"
        )
    return key


class LocalBlobStore:
    """Blobs as files under ``root``; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser()

    @property
    def location(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def put(self, key: str, data: bytes) -> None:
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return (self.root / _check_key(key)).read_bytes()

    def delete(self, key: str) -> bool:
        try:
            (self.root / _check_key(key)).unlink()
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


def _split_bucket(url: str, scheme: str) -> tuple[str, str]:
    rest = url[len(scheme) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"expected {scheme}BUCKET[/PREFIX], got {url!r}")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


class S3BlobStore:
    """Blobs as objects under ``s3://bucket/prefix``."""

    def __init__(self, url: str, endpoint_url: str | None = None, region_name: str | None = None):
        self.bucket, self.prefix = _split_bucket(url, "s3://")
        self.endpoint_url = endpoint_url or next(
            (
                os.environ[v]
                for v in ("ZETTA_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
                if os.environ.get(v)
            ),
            None,
        )
        self.region_name = (
            region_name
            or os.environ.get("AWS_DEFAULT_REGION")
            or os.environ.get("AWS_REGION")
            or "us-east-1"
        )
        self._client: Any = None

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.location!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region_name
            )
        return self._client

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + _check_key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _check_key(key))
        except Exception as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self.location}{key}") from e
            raise
        return bytes(response["Body"].read())

    def delete(self, key: str) -> bool:
        full = self.prefix + _check_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
        except Exception as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=full)
        return True

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        return sorted(keys)


class GCSBlobStore:
    """Blobs as objects under ``gs://bucket/prefix`` (application default credentials)."""

    def __init__(self, url: str):
        self.bucket_name, self.prefix = _split_bucket(url, "gs://")
        self._bucket: Any = None

    @property
    def location(self) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}"

    def __repr__(self) -> str:
        return f"GCSBlobStore({self.location!r})"

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            from google.cloud import storage

            self._bucket = storage.Client().bucket(self.bucket_name)
        return self._bucket

    def put(self, key: str, data: bytes) -> None:
        self.bucket.blob(self.prefix + _check_key(key)).upload_from_string(data)

    def get(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return bytes(self.bucket.blob(self.prefix + _check_key(key)).download_as_bytes())
        except NotFound as e:
            raise FileNotFoundError(f"{self.location}{key}") from e

    def delete(self, key: str) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self.prefix + _check_key(key)).delete()
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        return sorted(
            b.name[len(self.prefix) :] for b in self.bucket.list_blobs(prefix=self.prefix + prefix)
        )


def open_blob_store(
    location: str | os.PathLike[str],
) -> LocalBlobStore | S3BlobStore | GCSBlobStore:
    """The store at ``location`` (see the module docstring for the forms accepted)."""
    if isinstance(location, os.PathLike):
        return LocalBlobStore(location)
    if not isinstance(location, str) or not location:
        raise ValueError(f"blob store location must be a path or a URL, got {location!r}")
    if location.startswith("file://"):
        return LocalBlobStore(location[len("file://") :])
    if location.startswith("s3://"):
        return S3BlobStore(location)
    if location.startswith("gs://"):
        return GCSBlobStore(location)
    if "://" in location:
        raise ValueError(
            f"blob store location {location!r}: unsupported scheme; use a local path, file://, "
            "s3:// or gs://"
        )
    return LocalBlobStore(location)
