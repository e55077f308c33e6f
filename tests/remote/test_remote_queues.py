"""SQS queue adapter against a real SQS-compatible server, message sealing, run ids."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from zetta_utils.mazepa_addons.run_ids import check_run_id, generate_run_id
from zetta_utils.message_queues import (
    MessageSigner,
    MessageTooLargeError,
    QueueNotFoundError,
    SignatureError,
    SQSQueue,
    create_sqs_queue,
)
from zetta_utils.message_queues.signing import decode_key, encode_key, new_run_key


def test_send_receive_delete_in_batches(sqs_env: str) -> None:
    q = create_sqs_queue("zt-batches", visibility_timeout_s=30)
    try:
        bodies = [f"message {i}" for i in range(23)]  # 3 send batches
        q.send(bodies)
        got = []
        for _ in range(10):
            msgs = q.receive(10, wait_s=1)
            got.extend(msgs)
            if len(got) == len(bodies):
                break
        assert sorted(m.body for m in got) == sorted(bodies)
        assert all(m.receive_count == 1 for m in got)
        q.delete(got)
        assert q.receive(10, wait_s=0) == []
        assert q.approximate_counts() == (0, 0)
    finally:
        q.delete_queue()


def test_visibility_release_and_redelivery_count(sqs_env: str) -> None:
    q = create_sqs_queue("zt-visibility", visibility_timeout_s=30)
    try:
        q.send(["only"])
        (first,) = q.receive(1, wait_s=1)
        assert q.receive(1, wait_s=0) == []  # hidden while leased
        q.change_visibility(first, 0)  # released at once
        (again,) = q.receive(1, wait_s=1)
        assert again.body == "only" and again.receive_count == 2
        q.delete([again])
    finally:
        q.delete_queue()


def test_message_size_limit_and_batch_bytes(sqs_env: str) -> None:
    q = create_sqs_queue("zt-sizes", visibility_timeout_s=30)
    try:
        limit = q.max_message_bytes
        with pytest.raises(MessageTooLargeError, match=str(limit)):
            q.send(["x" * (limit + 1)])
        # Three messages near the limit must go in separate requests (a batch is capped too).
        big = ["a" * (limit // 2 + 10), "b" * (limit // 2 + 10), "c" * (limit // 2 + 10)]
        q.send(big)
        got = []
        for _ in range(10):
            got += q.receive(10, wait_s=1)
            if len(got) == 3:
                break
        assert sorted(m.body for m in got) == sorted(big)
        q.delete(got)
    finally:
        q.delete_queue()


def test_missing_queue_is_a_clear_error(
    sqs_env: str, list_queues: Callable[[str], list[str]]
) -> None:
    q = create_sqs_queue("zt-deleted")
    url = q.url
    assert q.delete_queue() is True
    assert "zt-deleted" not in list_queues("zt-")
    with pytest.raises(QueueNotFoundError):
        SQSQueue(url).receive(1)
    with pytest.raises(QueueNotFoundError, match="zt-never"):
        SQSQueue("zt-never").send(["x"])
    assert SQSQueue(url).delete_queue() is False


def test_bad_arguments_are_named(sqs_env: str) -> None:
    with pytest.raises(ValueError, match="queue name"):
        create_sqs_queue("bad name!")
    with pytest.raises(ValueError, match="visibility_timeout_s"):
        create_sqs_queue("zt-ok", visibility_timeout_s=-1)
    with pytest.raises(ValueError, match="max_messages"):
        SQSQueue("zt-ok").receive(11)


def test_sealed_messages_open_only_with_the_run_key() -> None:
    key = new_run_key()
    signer = MessageSigner(key, "brave-otter-0001")
    body = signer.seal("task", b"\x00payload\xff", {"task_id": "t1", "attempt": 2})
    opened = signer.open(body)
    assert opened.kind == "task" and opened.payload == b"\x00payload\xff"
    assert opened.meta == {"task_id": "t1", "attempt": 2}

    other_key = MessageSigner(new_run_key(), "brave-otter-0001")
    with pytest.raises(SignatureError, match="bad signature"):
        other_key.open(body)
    other_run = MessageSigner(key, "calm-heron-0002")
    with pytest.raises(SignatureError, match="brave-otter-0001"):
        other_run.open(body)

    doc = json.loads(body)
    for field, value in (
        ("payload", "AAAA"),
        ("kind", "outcomes"),
        ("ts", doc["ts"] + 1),
        ("meta", {"task_id": "t2", "attempt": 2}),
    ):
        tampered = json.dumps({**doc, field: value})
        with pytest.raises(SignatureError, match="bad signature"):
            signer.open(tampered)
    for junk in (
        "",
        "not json",
        "[1, 2]",
        json.dumps({k: v for k, v in doc.items() if k != "sig"}),
    ):
        with pytest.raises(SignatureError):
            signer.open(junk)
    assert "key" not in repr(signer).lower().replace("run_id", "")


def test_run_key_round_trip_and_errors() -> None:
    key = new_run_key()
    assert len(key) == 32 and decode_key(encode_key(key)) == key
    with pytest.raises(ValueError, match="at least 16 bytes"):
        decode_key(encode_key(b"short"))


def test_run_ids_are_memorable_and_valid_names() -> None:
    ids = {generate_run_id() for _ in range(200)}
    assert len(ids) > 190
    for run_id in ids:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{4}", run_id)
        assert check_run_id(run_id) == run_id
    for bad in (
        "Upper-case-1",
        "-leading",
        "trailing-",
        "a",
        "x" * 41,
        "double--dash",
        "under_score",
    ):
        with pytest.raises(ValueError, match="run_id"):
            check_run_id(bad)
