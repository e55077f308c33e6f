"""Amazon SQS (or any SQS-compatible server) through boto3."""

from .client import resolve_endpoint, resolve_region, sqs_client
from .queue import SQS_MAX_MESSAGE_BYTES, SQSQueue, create_sqs_queue, delete_sqs_queue

__all__ = [
    "SQS_MAX_MESSAGE_BYTES",
    "SQSQueue",
    "create_sqs_queue",
    "delete_sqs_queue",
    "resolve_endpoint",
    "resolve_region",
    "sqs_client",
]
