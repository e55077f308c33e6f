"""Authenticated messages: an HMAC-SHA256 seal over payload, kind, run id, time and metadata.

Anyone who can write to a queue could otherwise make workers unpickle (and so run) code of their
choosing. Each run has a random key, known only to its producer and its workers; a receiver checks
the seal with :func:`hmac.compare_digest` *before* it decodes the payload, and refuses anything
that is not sealed with the run's key for the run's id.

A message body is JSON: ``{"v": 1, "run": ..., "kind": ..., "ts": ..., "meta": {...},
"payload": <base64>, "sig": <hex>}``; the signature covers every field but ``sig``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Any

import attrs

__all__ = [
    "KEY_BYTES",
    "RUN_KEY_ENV",
    "MessageSigner",
    "OpenedMessage",
    "SignatureError",
    "decode_key",
    "encode_key",
    "key_from_env",
    "new_run_key",
]

RUN_KEY_ENV = "ZETTA_RUN_KEY"
KEY_BYTES = 32
_VERSION = 1


class SignatureError(ValueError):
    """A message that is malformed, not sealed with this run's key, or meant for another run."""


def new_run_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"run key: expected url-safe base64 of {KEY_BYTES} bytes: {e}") from None
    if len(key) < 16:
        raise ValueError(
            f"run key: expected at least 16 bytes (normally {KEY_BYTES}), got {len(key)}"
        )
    return key


def key_from_env(var: str = RUN_KEY_ENV) -> bytes:
    text = os.environ.get(var)
    if not text:
        raise ValueError(
            f"no run key: set ${var} to the run's key (url-safe base64); the producer passes it to "
            "its workers"
        )
    return decode_key(text)


@attrs.frozen
class OpenedMessage:
    kind: str
    payload: bytes
    meta: dict[str, Any]
    timestamp: float


def _signed_bytes(
    run_id: str, kind: str, ts: float, meta: dict[str, Any], payload_b64: str
) -> bytes:
    return json.dumps(
        [_VERSION, run_id, kind, repr(ts), meta, payload_b64], sort_keys=True, separators=(",", ":")
    ).encode()


class MessageSigner:
    """Seals and opens the messages of run ``run_id`` with ``key``."""

    def __init__(self, key: bytes, run_id: str):
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("`key` must be at least 16 random bytes")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"`run_id` must be a non-empty string, got {run_id!r}")
        self._key = key
        self.run_id = run_id

    def __repr__(self) -> str:  # never show the key
        return f"MessageSigner(run_id={self.run_id!r})"

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def seal(self, kind: str, payload: bytes, meta: dict[str, Any] | None = None) -> str:
        """A message body carrying ``payload`` (bytes) and ``meta`` (JSON-able)."""
        meta = dict(meta or {})
        ts = time.time()
        payload_b64 = base64.b64encode(payload).decode()
        sig = self._mac(_signed_bytes(self.run_id, kind, ts, meta, payload_b64))
        return json.dumps(
            {
                "v": _VERSION,
                "run": self.run_id,
                "kind": kind,
                "ts": ts,
                "meta": meta,
                "payload": payload_b64,
                "sig": sig,
            },
            separators=(",", ":"),
        )

    def open(self, body: str) -> OpenedMessage:
        """Check ``body``'s seal and return its contents; :class:`SignatureError` otherwise.
        Nothing in the payload is decoded before the seal is verified."""
        try:
            doc = json.loads(body)
        except (ValueError, TypeError):
            raise SignatureError("not a sealed message (not JSON)") from None
        if not isinstance(doc, dict):
            raise SignatureError("not a sealed message (not a JSON object)")
        run_id, kind, ts, meta = doc.get("run"), doc.get("kind"), doc.get("ts"), doc.get("meta")
        payload_b64, sig = doc.get("payload"), doc.get("sig")
        if (
            doc.get("v") != _VERSION
            or not isinstance(run_id, str)
            or not isinstance(kind, str)
            or not isinstance(ts, (int, float))
            or not isinstance(meta, dict)
            or not isinstance(payload_b64, str)
            or not isinstance(sig, str)
        ):
            raise SignatureError("not a sealed message (missing or mistyped fields)")
        expected = self._mac(_signed_bytes(run_id, kind, float(ts), meta, payload_b64))
        if not hmac.compare_digest(expected, sig):
            raise SignatureError("bad signature: the message was not sealed with this run's key")
        if run_id != self.run_id:
            raise SignatureError(f"the message belongs to run {run_id!r}, not {self.run_id!r}")
        try:
            payload = base64.b64decode(payload_b64.encode(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("sealed message with an undecodable payload") from None
        return OpenedMessage(kind=kind, payload=payload, meta=meta, timestamp=float(ts))
