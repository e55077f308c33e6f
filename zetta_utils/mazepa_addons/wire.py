"""The messages between a producer and its queue workers.

Every message is sealed with the run's key (:mod:`zetta_utils.message_queues.signing`).

- ``task`` (work queue): the cloudpickled task; meta ``task_id``, ``attempt``, ``op``,
  ``max_deliveries`` and ``payloads`` (where oversized payloads go).
- ``outcomes`` (outcome queue): pickled :class:`~zetta_utils.mazepa.TaskOutcome` list; meta
  ``attempts`` (task id -> attempt it answers) and ``worker``.
- ``rejected`` (outcome queue): a worker refused a message; meta ``reason``, ``message_id``,
  ``worker``.

A payload too large for a queue message is stored in the run's payload store under its SHA-256;
the message then carries meta ``ref`` = ``{"location", "key", "sha256"}`` and no payload. The
receiver checks the hash before it unpickles anything, so the store need not be trusted either.
"""

from __future__ import annotations

import hashlib
from typing import Any

from zetta_utils.cloud_management.blob_store import open_blob_store
from zetta_utils.message_queues.signing import MessageSigner, OpenedMessage, SignatureError

__all__ = [
    "KIND_OUTCOMES",
    "KIND_REJECTED",
    "KIND_TASK",
    "PayloadTooLargeError",
    "load_payload",
    "seal_payload",
]

KIND_TASK = "task"
KIND_OUTCOMES = "outcomes"
KIND_REJECTED = "rejected"

# JSON envelope + base64: the payload may use about 3/4 of the message limit minus this margin.
_ENVELOPE_MARGIN = 2048


class PayloadTooLargeError(ValueError):
    pass


def seal_payload(
    signer: MessageSigner,
    kind: str,
    payload: bytes,
    meta: dict[str, Any],
    max_message_bytes: int,
    payload_location: str | None,
    what: str,
) -> str:
    """A sealed message body for ``payload``, moved to the payload store if it is too large.

    :param what: names the payload in the error (e.g. "task copy-abc123").
    """
    body = signer.seal(kind, payload, meta)
    if len(body) <= max_message_bytes:
        return body
    if payload_location is None:
        raise PayloadTooLargeError(
            f"{what} is {len(payload):,} bytes serialized ({len(body):,} as a message), more than "
            f"the queue's {max_message_bytes:,}-byte message limit, and the run has no payload "
            "store: pass `large_payload_location` (a folder or bucket URL the workers can read), "
            "or make the task smaller (pass paths or layer specs rather than arrays)"
        )
    digest = hashlib.sha256(payload).hexdigest()
    key = f"{signer.run_id}/{digest}"
    open_blob_store(payload_location).put(key, payload)
    ref = {"location": payload_location, "key": key, "sha256": digest}
    return signer.seal(kind, b"", {**meta, "ref": ref})


def load_payload(opened: OpenedMessage) -> bytes:
    """The payload of an opened message, fetched from the payload store when it was moved there."""
    ref = opened.meta.get("ref")
    if ref is None:
        return opened.payload
    if not isinstance(ref, dict) or not all(
        isinstance(ref.get(k), str) for k in ("location", "key", "sha256")
    ):
        raise SignatureError("malformed payload reference")
    data = open_blob_store(ref["location"]).get(ref["key"])
    if hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise SignatureError(
            f"stored payload {ref['key']} does not match the hash in the sealed message"
        )
    return data
