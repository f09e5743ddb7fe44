"""What the cache holds after a handler's guard caught a fault (the fault model of
tests/test_handler_faults.py, which compares only the answers):

1. A projected GetItem whose planning fails half-way never fills the projected
   answer as the full item.
2. A write by a client of unknown account whose invalidation fails still fences its
   table (the guard's fallback covers items without a key, not only keyed ones).
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from conftest import ACCOUNT, REGION, create_table, new_session

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import MemoryBackend
from momento_botocore.core.engine import Engine

NOWHERE = "http://127.0.0.1:9"


def _boom(*_: Any, **__: Any) -> None:
    raise RuntimeError("a bug in a helper")


def test_a_half_planned_projected_read_never_fills_a_partial_item(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(plain, "items")
    full = {"pk": {"S": "a"}, "secret": {"S": "s"}, "v": {"S": "1"}}
    plain.put_item(TableName="items", Item=full)

    session = new_session()
    config = CacheConfig(ttl=60, key_schemas={"items": ("pk",)}, account_id=ACCOUNT)
    momento_botocore.register(session, config=config, backend=MemoryBackend())
    client = session.client("dynamodb", endpoint_url=endpoint)
    client.put_item(TableName="items", Item={"pk": {"S": "other"}})  # fences are active now

    monkeypatch.setattr(Engine, "_fence_of", _boom)  # a helper raises (fault model)
    projected = client.get_item(
        TableName="items", Key={"pk": {"S": "a"}}, ProjectionExpression="pk, v"
    )  # with the key attribute: the fill's key check does not catch it
    assert projected["Item"] == {
        "pk": {"S": "a"},
        "v": {"S": "1"},
    }  # the caller's answer is right...
    monkeypatch.undo()

    answer = client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    # ...but the projected answer was stored as the full item: observed pk and v only.
    assert answer["Item"] == full, f"a later full read got {answer['Item']}"


def test_a_failed_invalidation_of_an_unknown_account_write_still_fences_the_table(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)  # STS unreachable

    def credentials() -> dict[str, str]:
        return {
            "aws_access_key_id": f"AKIA{uuid.uuid4().hex[:16].upper()}",
            "aws_secret_access_key": "testing",
        }

    backend = MemoryBackend()
    known = boto3.Session(region_name=REGION, **credentials())
    momento_botocore.register(known, ttl=60, backend=backend, account_id=ACCOUNT)
    reader = known.client("dynamodb", endpoint_url=endpoint)
    create_table(reader, "items")
    reader.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"S": "old"}})
    reader.get_item(TableName="items", Key={"pk": {"S": "a"}})  # a tombstone: no fill yet
    backend._entries.clear()  # (as if the tombstone had expired)
    reader.get_item(TableName="items", Key={"pk": {"S": "a"}})  # filled: "old"
    assert reader.get_item(TableName="items", Key={"pk": {"S": "a"}})["Item"]["v"] == {"S": "old"}

    unknown = boto3.Session(region_name=REGION, **credentials())
    momento_botocore.register(unknown, ttl=60, backend=backend)
    writer = unknown.client("dynamodb", endpoint_url=endpoint)
    monkeypatch.setattr(Engine, "_fence_written", _boom)  # a helper raises (fault model)
    writer.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"S": "new"}})
    monkeypatch.undo()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", NOWHERE)

    answer = reader.get_item(TableName="items", Key={"pk": {"S": "a"}})
    # A keyed write in the same fault leaves its key pending (fresh reads); this one
    # leaves nothing: observed "old" for the whole TTL.
    assert answer["Item"]["v"] == {"S": "new"}
