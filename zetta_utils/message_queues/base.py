"""What a message queue must offer to carry mazepa tasks and outcomes.

The semantics are those of Amazon SQS standard queues: at-least-once delivery, no ordering, and a
*visibility timeout* (a received message is hidden from other receivers until it is deleted or
the timeout passes, after which it is delivered again). Any queue with these semantics can stand
behind :class:`MessageQueue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "MessageQueue",
    "MessageTooLargeError",
    "QueueError",
    "QueueNotFoundError",
    "ReceivedMessage",
]


class QueueError(RuntimeError):
    """A queue operation failed for a reason other than the queue missing."""


class QueueNotFoundError(QueueError):
    """The queue does not exist (never created, or deleted: e.g. the run ended)."""


class MessageTooLargeError(QueueError, ValueError):
    """A message is larger than the queue accepts."""

    def __init__(self, size: int, limit: int, queue_name: str):
        super().__init__(
            f"message of {size} bytes exceeds the {limit}-byte limit of queue {queue_name!r}"
        )
        self.size = size
        self.limit = limit


@attrs.frozen
class ReceivedMessage:
    """A message taken from a queue, hidden from other receivers until its visibility runs out."""

    body: str
    handle: str
    """Receipt handle: what ``delete`` and ``change_visibility`` need."""
    message_id: str
    receive_count: int = 1
    """How many times the queue has handed this message out (1 on first delivery)."""


@runtime_checkable
class MessageQueue(Protocol):
    """A queue of text messages with at-least-once delivery and visibility timeouts."""

    @property
    def name(self) -> str: ...

    @property
    def max_message_bytes(self) -> int:
        """The largest message body ``send`` accepts, in bytes (UTF-8)."""
        ...

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue messages (batched as the service allows)."""
        ...

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_timeout_s: int | None = None
    ) -> list[ReceivedMessage]:
        """Up to ``max_messages`` messages, waiting up to ``wait_s`` for the first one (long
        polling). Received messages stay hidden for ``visibility_timeout_s`` (default: the
        queue's) unless deleted."""
        ...

    def delete(self, messages: Sequence[ReceivedMessage]) -> None:
        """Acknowledge messages: they will not be delivered again."""
        ...

    def change_visibility(self, message: ReceivedMessage, timeout_s: int) -> None:
        """Hide ``message`` for ``timeout_s`` more seconds from now (0: release it at once)."""
        ...
