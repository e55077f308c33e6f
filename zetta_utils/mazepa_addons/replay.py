"""Replay protection for queue workers: a task message whose task already finished is not run again.

A sealed message cannot be forged without the run's key, but anyone who can read and write the
queues can *resend* one it saw (or the queue can deliver a message again after its outcome was
sent, when the worker died before deleting it). Every sealing is unique (it covers a timestamp),
so a message is identified by the SHA-256 of its body: a producer's retry of a task is a new
message, a replay is the same one.

A worker remembers the messages it finished. When the run has a payload store (the message's
``payloads``, readable and writable by all its workers), finished messages are also marked there
(``<run_id>/done/<digest>``) after their outcome was sent, so a replay is refused by every worker
of the run, not only by the one that ran it.
"""

from __future__ import annotations

import hashlib
import logging

from zetta_utils.cloud_management.blob_store import BlobStore, open_blob_store

__all__ = ["ReplayGuard", "message_digest"]

logger = logging.getLogger(__name__)

_MEMORY = 100_000  # digests a worker remembers (about 10 MB)


def message_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


class ReplayGuard:
    """What one worker of run ``run_id`` knows about finished messages."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._finished: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._stores: dict[str, BlobStore] = {}

    def _store(self, location: str) -> BlobStore:
        if location not in self._stores:
            self._stores[location] = open_blob_store(location)
        return self._stores[location]

    def _key(self, digest: str) -> str:
        return f"{self.run_id}/done/{digest}"

    def finished(self, digest: str, location: str | None) -> bool:
        """Whether the message with ``digest`` was finished by this worker or, with a payload
        store at ``location``, by any worker of the run."""
        if digest in self._finished:
            return True
        if location is None:
            return False
        try:
            self._store(location).get(self._key(digest))
        except FileNotFoundError:
            return False
        except (
            Exception
        ) as e:  # the store is unreachable: running twice is safe, never running is not
            logger.warning("could not check whether message %s already ran: %s", digest[:12], e)
            return False
        return True

    def mark(self, digest: str, location: str | None) -> None:
        """Record a message whose outcome was sent."""
        self._finished[digest] = None
        if len(self._finished) > _MEMORY:
            del self._finished[next(iter(self._finished))]
        if location is None:
            return
        try:
            self._store(location).put(self._key(digest), b"")
        except Exception as e:
            logger.warning(
                "could not mark message %s as finished in %s: %s", digest[:12], location, e
            )
