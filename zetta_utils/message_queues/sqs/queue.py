"""An SQS queue as a :class:`~zetta_utils.message_queues.base.MessageQueue`.

Sends go out in batches of 10 (``send_message_batch``), receives long-poll (``WaitTimeSeconds``)
and deletes are batched (``delete_message_batch``): one request moves up to 10 messages.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from ..base import MessageTooLargeError, QueueError, QueueNotFoundError, ReceivedMessage
from .client import resolve_endpoint, resolve_region, sqs_client

__all__ = ["SQS_MAX_MESSAGE_BYTES", "SQSQueue", "create_sqs_queue", "delete_sqs_queue"]

logger = logging.getLogger(__name__)

SQS_MAX_MESSAGE_BYTES = 262_144
"""256 KiB: the classic SQS limit on a message and on a whole batch (AWS has since raised it
to 1 MiB, but SQS-compatible servers keep 256 KiB; pass ``max_message_bytes`` to use more)."""

_BATCH = 10
_MAX_WAIT_S = 20  # SQS caps WaitTimeSeconds at 20
_MISSING_CODES = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
}
_SEND_RETRIES = 5


def _is_url(name_or_url: str) -> bool:
    return name_or_url.startswith(("http://", "https://"))


def _error_code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return str(err.get("QueryErrorCode") or err.get("Code") or "")
    return ""


def _is_missing(e: Exception) -> bool:
    return _error_code(e) in _MISSING_CODES or type(e).__name__ == "QueueDoesNotExist"


class SQSQueue:
    """An existing SQS queue, named by ``name`` or ``url``.

    :param name_or_url: a queue name (looked up in the region) or a queue URL.
    :param region_name, endpoint_url: see :mod:`.client` for the environment fallbacks.
    :param max_message_bytes: the largest body ``send`` accepts.
    """

    def __init__(
        self,
        name_or_url: str,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        max_message_bytes: int = SQS_MAX_MESSAGE_BYTES,
    ):
        if not isinstance(name_or_url, str) or not name_or_url:
            raise ValueError(f"`name_or_url` must be a queue name or URL, got {name_or_url!r}")
        if (
            isinstance(max_message_bytes, bool)
            or not isinstance(max_message_bytes, int)
            or max_message_bytes < 1024
        ):
            raise ValueError(
                f"`max_message_bytes` must be an integer >= 1024, got {max_message_bytes!r}"
            )
        self.region_name = resolve_region(region_name)
        self.endpoint_url = resolve_endpoint(endpoint_url)
        self._max_message_bytes = max_message_bytes
        if _is_url(name_or_url):
            self._url: str | None = name_or_url
            self._name = name_or_url.rstrip("/").rsplit("/", 1)[-1]
        else:
            self._url = None
            self._name = name_or_url

    def __repr__(self) -> str:
        return (
            f"SQSQueue({self._name!r}, region_name={self.region_name!r}, "
            f"endpoint_url={self.endpoint_url!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self.region_name, self.endpoint_url, self._max_message_bytes))

    @property
    def client(self) -> Any:
        return sqs_client(self.region_name, self.endpoint_url)

    @property
    def name(self) -> str:
        return self._name

    @property
    def max_message_bytes(self) -> int:
        return self._max_message_bytes

    @property
    def url(self) -> str:
        if self._url is None:
            try:
                self._url = str(self.client.get_queue_url(QueueName=self._name)["QueueUrl"])
            except Exception as e:
                if _is_missing(e):
                    raise QueueNotFoundError(f"SQS queue {self._name!r} does not exist") from e
                raise
        return self._url

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(QueueUrl=self.url, **kwargs)
        except Exception as e:
            if _is_missing(e):
                raise QueueNotFoundError(f"SQS queue {self._name!r} does not exist") from e
            raise

    # ---- MessageQueue -------------------------------------------------------------------------

    def send(self, bodies: Sequence[str]) -> None:
        limit = self._max_message_bytes
        sizes = [len(b.encode()) for b in bodies]
        for size in sizes:
            if size > limit:
                raise MessageTooLargeError(size, limit, self._name)
        # Batches of at most 10 messages and at most `limit` bytes in total.
        batch: list[str] = []
        batch_bytes = 0
        for body, size in zip(bodies, sizes, strict=True):
            if batch and (len(batch) == _BATCH or batch_bytes + size > limit):
                self._send_batch(batch)
                batch, batch_bytes = [], 0
            batch.append(body)
            batch_bytes += size
        if batch:
            self._send_batch(batch)

    def _send_batch(self, bodies: list[str]) -> None:
        pending = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(_SEND_RETRIES):
            entries = [{"Id": i, "MessageBody": body} for i, body in pending.items()]
            response = self._call("send_message_batch", Entries=entries)
            failed = response.get("Failed") or []
            if not failed:
                return
            retry = {}
            for f in failed:
                if f.get("SenderFault"):
                    raise QueueError(
                        f"SQS refused a message for queue {self._name!r}: {f.get('Code')}: "
                        f"{f.get('Message')}"
                    )
                retry[f["Id"]] = pending[f["Id"]]
            pending = retry
            time.sleep(0.1 * 2**attempt)
        raise QueueError(
            f"SQS kept failing to accept {len(pending)} message(s) for queue {self._name!r}"
        )

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        if (
            isinstance(max_messages, bool)
            or not isinstance(max_messages, int)
            or not 1 <= max_messages <= _BATCH
        ):
            raise ValueError(
                f"`max_messages` must be an integer from 1 to {_BATCH}, got {max_messages!r}"
            )
        kwargs: dict[str, Any] = {
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": max(0, min(_MAX_WAIT_S, math.ceil(wait_s))),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = int(visibility_timeout_s)
        response = self._call("receive_message", **kwargs)
        return [
            ReceivedMessage(
                body=m["Body"],
                handle=m["ReceiptHandle"],
                message_id=m["MessageId"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[ReceivedMessage]) -> None:
        for start in range(0, len(messages), _BATCH):
            chunk = messages[start : start + _BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": m.handle} for i, m in enumerate(chunk)]
            response = self._call("delete_message_batch", Entries=entries)
            for f in response.get("Failed") or []:
                # An expired receipt handle: the message went back to the queue and will be
                # delivered again; receivers tolerate duplicates.
                logger.warning(
                    "could not delete a message from %s: %s: %s",
                    self._name,
                    f.get("Code"),
                    f.get("Message"),
                )

    def change_visibility(self, message: ReceivedMessage, timeout_s: int) -> None:
        self._call(
            "change_message_visibility",
            ReceiptHandle=message.handle,
            VisibilityTimeout=int(timeout_s),
        )

    # ---- extras -------------------------------------------------------------------------------

    def approximate_counts(self) -> tuple[int, int]:
        """(messages waiting, messages received and not yet deleted), approximately."""
        attrs = self._call(
            "get_queue_attributes",
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def exists(self) -> bool:
        try:
            self._call("get_queue_attributes", AttributeNames=["QueueArn"])
        except QueueNotFoundError:
            return False
        return True

    def delete_queue(self) -> bool:
        """Delete the queue; False if it did not exist."""
        try:
            self._call("delete_queue")
        except QueueNotFoundError:
            return False
        return True


def _rebuild(
    url: str, region_name: str, endpoint_url: str | None, max_message_bytes: int
) -> SQSQueue:
    return SQSQueue(
        url, region_name=region_name, endpoint_url=endpoint_url, max_message_bytes=max_message_bytes
    )


def create_sqs_queue(
    name: str,
    *,
    visibility_timeout_s: int = 60,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    tags: dict[str, str] | None = None,
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES,
) -> SQSQueue:
    """Create (or open, if it exists with the same attributes) a standard SQS queue.

    Messages are kept for the maximum 14 days, so a long run never loses queued work.
    """
    _check_queue_name(name)
    if (
        isinstance(visibility_timeout_s, bool)
        or not isinstance(visibility_timeout_s, int)
        or not 0 <= visibility_timeout_s <= 43_200
    ):
        raise ValueError(
            "`visibility_timeout_s` must be an integer from 0 to 43200, got "
            f"{visibility_timeout_s!r}"
        )
    client = sqs_client(region_name, endpoint_url)
    kwargs: dict[str, Any] = {
        "QueueName": name,
        "Attributes": {
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": "1209600",
            "ReceiveMessageWaitTimeSeconds": "0",
        },
    }
    if tags:
        kwargs["tags"] = dict(tags)
    url = client.create_queue(**kwargs)["QueueUrl"]
    return SQSQueue(
        url, region_name=region_name, endpoint_url=endpoint_url, max_message_bytes=max_message_bytes
    )


def delete_sqs_queue(
    name_or_url: str, *, region_name: str | None = None, endpoint_url: str | None = None
) -> bool:
    """Delete a queue by name or URL; False if it did not exist."""
    return SQSQueue(name_or_url, region_name=region_name, endpoint_url=endpoint_url).delete_queue()


def _check_queue_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 80
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    ):
        raise ValueError(
            f"SQS queue name must be 1-80 characters of letters, digits, '-' and '_', got {name!r}"
        )
