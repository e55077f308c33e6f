"""Message queues that carry tasks to remote workers and outcomes back.

``base.MessageQueue`` is the protocol (SQS semantics: at-least-once delivery, visibility
timeouts); ``sqs`` implements it over boto3 for Amazon SQS or any SQS-compatible server;
``signing`` seals messages with a per-run HMAC key so workers run only their producer's tasks.

Registered builder types: ``SQSQueue``.
"""

from zetta_utils import builder

from .base import (
    MessageQueue,
    MessageTooLargeError,
    QueueError,
    QueueNotFoundError,
    ReceivedMessage,
)
from .signing import MessageSigner, SignatureError
from .sqs import SQSQueue, create_sqs_queue, delete_sqs_queue

builder.register("SQSQueue")(SQSQueue)

__all__ = [
    "MessageQueue",
    "MessageSigner",
    "MessageTooLargeError",
    "QueueError",
    "QueueNotFoundError",
    "ReceivedMessage",
    "SQSQueue",
    "SignatureError",
    "create_sqs_queue",
    "delete_sqs_queue",
]
