"""Contract 3 on the read side, in-process under mock_aws (no network needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session
from moto import mock_aws

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.core.entries import decode, encode_absent, encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.drivers.sync import SyncDriver as ReadHooks


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS")  # STS to AWS's own endpoint: mock_aws answers
    with mock_aws():
        client = new_session().client("dynamodb")
        create_table(client, "items")
        client.put_item(TableName="items", Item={"pk": {"S": "a"}, "v": {"S": "db"}})
        yield client


def test_reads_are_cached_under_mock_aws_too(client: Any) -> None:
    momento_botocore.register(client, ttl=60)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert client.get_item(TableName="items", Key={"pk": {"S": "a"}})["Item"]["v"] == {
            "S": "db"
        }
    assert sent.count == 1


def test_a_fill_never_overwrites_what_is_already_cached(client: Any) -> None:
    backend = MemoryBackend()
    momento_botocore.register(client, ttl=60, backend=backend)
    key = cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "a"}})
    newer = encode_item({"pk": {"S": "a"}, "v": {"S": "newer"}})

    def invalidate_during_the_read(**_: Any) -> None:
        backend.set(key, newer, 60)  # an invalidation lands between the read and the fill

    client.meta.events.register_first("after-call.dynamodb.GetItem", invalidate_during_the_read)
    answer = client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert answer["Item"]["v"] == {"S": "db"}  # the caller still gets what DynamoDB said
    assert backend.get(key) == newer
    assert momento_botocore.stats()["items"]["fills_skipped"] == 1


def test_a_read_slower_than_the_tombstone_ttl_does_not_fill(client: Any) -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    hooks = ReadHooks(
        CacheConfig(ttl=60, tombstone_ttl=5, account_id=ACCOUNT), backend, clock=clock
    )
    hooks.install(client.meta.events)

    def slow_read(**_: Any) -> None:
        clock.now += 5.0

    client.meta.events.register_first("after-call.dynamodb.GetItem", slow_read)
    client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert len(backend) == 0
    client.meta.events.unregister("after-call.dynamodb.GetItem", slow_read)
    client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    entry = decode(backend.get(cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "a"}})))
    assert entry is not None
    assert entry.item == {"pk": {"S": "a"}, "v": {"S": "db"}}


def test_item_and_absent_entries_expire_with_their_own_ttls(client: Any) -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    config = CacheConfig(ttl=60, absent_ttl=10, account_id=ACCOUNT)  # hooks by hand: no client
    ReadHooks(config, backend, clock=clock).install(client.meta.events)
    sent = RequestCounter(client, "GetItem")
    for key in ("a", "missing"):
        client.get_item(TableName="items", Key={"pk": {"S": key}})
    clock.now += 11
    for key in ("a", "missing"):
        client.get_item(TableName="items", Key={"pk": {"S": key}})
    assert sent.count == 3  # the absent entry expired, the item did not
    clock.now += 50
    client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert sent.count == 4


def test_a_read_outliving_a_stream_absent_entry_does_not_fill(client: Any) -> None:
    # A stream REMOVE writes ABSENT for absent_ttl (1 s here), shorter than the
    # tombstone TTL: a read that started before the delete must not fill once it expired.
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    config = CacheConfig(ttl=60, absent_ttl=1, tombstone_ttl=10, account_id=ACCOUNT)
    hooks = ReadHooks(config, backend, clock=clock)
    hooks.install(client.meta.events)
    key = cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "a"}})

    def deleted_during_the_read(**_: Any) -> None:
        backend.set(key, encode_absent(), 1)  # what the stream invalidator writes on REMOVE
        clock.now += 2.0  # the read is slow: the ABSENT entry expires before the fill

    client.meta.events.register_first("after-call.dynamodb.GetItem", deleted_during_the_read)
    client.get_item(TableName="items", Key={"pk": {"S": "a"}})
    assert backend.get(key) is None
