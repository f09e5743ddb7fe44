"""A write whose cache key cannot be made (a key spelling the codec refuses, a key
schema that does not name the item's key) cannot tombstone its entry: it fences its
whole table instead, so no read in this process gets the stale entry.

Real components: moto's server for DynamoDB, the memory backend. moto accepts a few
number spellings that the codec refuses (``1_00`` is 100 to moto's PutItem and
GetItem): exactly the writes that used to leave the ``100`` entry stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.backends import Backend

REFUSED = "1_00"  # moto: 100; real DynamoDB: rejected; the codec: no key


def item(pk: str, v: str) -> dict[str, Any]:
    return {"pk": {"N": pk}, "v": {"S": v}}


def registered_client(endpoint: str, backend: Backend, **settings: Any) -> Any:
    session = new_session()
    config = CacheConfig(**{"ttl": 300, **settings})
    momento_botocore.register(session, backend=backend, config=config)
    return session.client("dynamodb", endpoint_url=endpoint)


@pytest.fixture
def uncached(endpoint: str) -> Any:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "nums", hash_key=("pk", "N"))
    for pk in ("100", "200"):
        client.put_item(TableName="nums", Item=item(pk, "old"))
    return client


def get(client: Any, pk: str) -> Any:
    return client.get_item(TableName="nums", Key={"pk": {"N": pk}}).get("Item")


def warm(client: Any) -> None:
    for pk in ("100", "200", "100", "200"):
        get(client, pk)
    assert momento_botocore.stats()["nums"]["hits"] == 2


def fenced() -> int:
    return momento_botocore.stats().get("nums", {}).get("tables_fenced", 0)


def put(client: Any, pk: str) -> None:
    client.put_item(TableName="nums", Item=item(pk, "new"))


def update(client: Any, pk: str) -> None:
    client.update_item(
        TableName="nums",
        Key={"pk": {"N": pk}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
    )


def delete(client: Any, pk: str) -> None:
    client.delete_item(TableName="nums", Key={"pk": {"N": pk}})


def batch_put(client: Any, pk: str) -> None:
    client.batch_write_item(RequestItems={"nums": [{"PutRequest": {"Item": item(pk, "new")}}]})


def transact_delete(client: Any, pk: str) -> None:
    client.transact_write_items(
        TransactItems=[{"Delete": {"TableName": "nums", "Key": {"pk": {"N": pk}}}}]
    )


WRITES: dict[str, Callable[[Any, str], None]] = {
    "PutItem": put,
    "UpdateItem": update,
    "DeleteItem": delete,
    "BatchWriteItem": batch_put,
    "TransactWriteItems": transact_delete,
}


@pytest.mark.parametrize("operation", list(WRITES))
def test_a_write_in_a_spelling_the_codec_refuses_fences_its_table(
    endpoint: str, uncached: Any, operation: str
) -> None:
    client = registered_client(endpoint, MemoryBackend())
    warm(client)
    WRITES[operation](client, REFUSED)
    assert fenced() == 1
    sent = RequestCounter(client, "GetItem")
    for _ in range(2):
        assert get(client, "100") == get(uncached, "100")
        assert get(client, "200") == item("200", "old")
    answer = client.batch_get_item(RequestItems={"nums": {"Keys": [{"pk": {"N": "200"}}]}})
    assert answer["Responses"]["nums"] == [item("200", "old")]
    assert sent.count == 4, "every read of the table skips the cache while it is fenced"


def test_a_write_whose_item_key_cannot_be_found_fences_its_table(
    endpoint: str, uncached: Any
) -> None:
    # A key schema that does not match the table: the written item's key is unknown.
    client = registered_client(endpoint, MemoryBackend(), key_schemas={"nums": ("id",)})
    warm(client)
    put(client, "100")
    assert fenced() == 1
    assert get(client, "100") == item("100", "new")


def test_a_rejected_write_in_a_refused_spelling_fences_nothing(
    endpoint: str, uncached: Any
) -> None:
    client = registered_client(endpoint, MemoryBackend())
    warm(client)
    with pytest.raises(client.exceptions.ClientError):
        put(client, "NaN")
    assert fenced() == 0
    sent = RequestCounter(client, "GetItem")
    assert get(client, "100") == item("100", "old")
    assert sent.count == 0


def test_the_fence_covers_every_registration_in_front_of_the_cache(
    endpoint: str, uncached: Any
) -> None:
    backend = MemoryBackend()
    writer = registered_client(endpoint, backend)
    reader = registered_client(endpoint, backend)
    warm(reader)
    put(writer, REFUSED)
    assert get(reader, "100") == get(uncached, "100")
    assert get(reader, "100")["v"] == {"S": "new"}


def test_the_fence_ends_once_no_stale_entry_can_remain(endpoint: str, uncached: Any) -> None:
    client = registered_client(endpoint, MemoryBackend(), ttl=1, absent_ttl=0.5, tombstone_ttl=0.5)
    warm(client)
    put(client, REFUSED)
    sent = RequestCounter(client, "GetItem")
    assert get(client, "200") == item("200", "old")
    assert sent.count == 1
    time.sleep(1.6)  # the horizon: the longest TTL (1 s) plus the fill window (0.5 s)
    assert get(client, "100") == get(uncached, "100")
    sent = RequestCounter(client, "GetItem")
    # "200" (moto answers "100" with the key spelled "1_00", which is never filled:
    # the codec does not take it for the request's key).
    for _ in range(2):
        assert get(client, "200") == item("200", "old")
    assert sent.count == 1, "after the horizon the table is cached again"


def test_an_answer_whose_key_the_codec_cannot_match_is_not_filled(
    endpoint: str, uncached: Any
) -> None:
    client = registered_client(endpoint, MemoryBackend(), tombstone_ttl=0.2, absent_ttl=0.2)
    uncached.put_item(TableName="nums", Item=item(REFUSED, "moto's own spelling"))
    for _ in range(2):  # moto answers "100" with the key it was written with, "1_00"
        assert get(client, "100") == get(uncached, "100")
    counts = momento_botocore.stats()["nums"]
    assert counts["fills_skipped"] == 2
    assert counts.get("garbage", 0) == 0
