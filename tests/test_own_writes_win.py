"""Own writes win over older stream records (docs/consistency.md).

Deterministic interleavings: writes through a registered client against moto's
server, stream records applied by hand with the stream invalidator (records shaped
as Lambda delivers them), in the orders and batchings a stream may deliver them.
A process that wrote v2 must never read v1 afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session
from stream_records import lambda_event, lambda_record

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.drivers.sync import SyncDriver as ReadHooks
from momento_botocore.streams import StreamInvalidator

TABLE = "items"
CONFIG = CacheConfig(ttl=60, tombstone_ttl=10, key_schemas={TABLE: ("pk",)}, account_id=ACCOUNT)


def item(pk: str, version: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"N": str(version)}}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def cache_key_of(pk: str) -> str:
    return cache_key(ACCOUNT, REGION, TABLE, key(pk))


def record_of(pk: str, version: int) -> dict[str, Any]:
    """The stream record of the write that made ``item(pk, version)``."""
    return lambda_record(
        "MODIFY", key(pk), new=item(pk, version), old=item(pk, version - 1), table=TABLE
    )


@pytest.fixture
def plain(endpoint: str) -> Any:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, TABLE)
    for pk in ("a", "b"):
        client.put_item(TableName=TABLE, Item=item(pk, 0))
    return client


class World:
    """One cache, a writer registered on it, and the stream applied by hand."""

    def __init__(self, endpoint: str, backend: MemoryBackend | None = None) -> None:
        self.endpoint = endpoint
        self.cache = backend if backend is not None else MemoryBackend()
        self.writer = self.client()
        self.stream = StreamInvalidator(CONFIG, self.cache)

    def client(self) -> Any:
        session = new_session()
        momento_botocore.register(session, config=CONFIG, backend=self.cache)
        return session.client("dynamodb", endpoint_url=self.endpoint)

    def write(self, pk: str, version: int, client: Any = None) -> None:
        (client or self.writer).put_item(TableName=TABLE, Item=item(pk, version))

    def deliver(self, *records: dict[str, Any]) -> None:
        """One batch of the stream, applied to the cache."""
        result = self.stream(lambda_event(*records))
        assert result == {"batchItemFailures": []}

    def version_read(self, pk: str, client: Any = None) -> int:
        answer = (client or self.writer).get_item(TableName=TABLE, Key=key(pk))
        return int(answer["Item"]["v"]["N"])

    def cached(self, pk: str) -> dict[str, Any] | EntryKind | None:
        entry = decode(self.cache.get(cache_key_of(pk)))
        if entry is None or entry.kind is not EntryKind.ITEM:
            return None if entry is None else entry.kind
        return entry.item


class SentBodies:
    """The JSON bodies of the requests a client sends for one operation."""

    def __init__(self, client: Any, operation: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._keep)

    def _keep(self, request: Any, **_: Any) -> None:
        self.bodies.append(json.loads(request.body))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counter(name: str) -> int:
    return momento_botocore.stats().get(TABLE, {}).get(name, 0)


def test_an_older_record_after_two_own_writes_is_never_read(endpoint: str, plain: Any) -> None:
    world = World(endpoint)
    assert world.version_read("a") == 0
    assert world.version_read("a") == 0  # a hit on v0
    world.write("a", 1)
    world.write("a", 2)
    world.deliver(record_of("a", 1))  # v2's record comes in a later batch
    assert world.cached("a") == item("a", 1)
    sent = SentBodies(world.writer, "GetItem")
    for _ in range(3):
        assert world.version_read("a") == 2
    assert len(sent.bodies) == 3
    assert all(body["ConsistentRead"] for body in sent.bodies)
    assert counter("stale_entries") == 1
    assert world.cached("a") is EntryKind.TOMBSTONE  # the stale entry is gone for everyone
    world.deliver(record_of("a", 2))
    # Hits: v2's entry holds the very bytes a read verified after the writes.
    assert [world.version_read("a") for _ in range(3)] == [2, 2, 2]
    assert len(sent.bodies) == 3


def test_a_record_older_than_a_verified_entry_is_caught_again(endpoint: str, plain: Any) -> None:
    world = World(endpoint)
    world.version_read("a")
    world.write("a", 1)
    world.write("a", 2)
    world.deliver(record_of("a", 2))  # in order first...
    sent = RequestCounter(world.writer, "GetItem")
    assert [world.version_read("a") for _ in range(3)] == [2, 2, 2]
    assert sent.count == 1  # verified, then hits
    world.deliver(record_of("a", 1))  # ...then v1's record, redelivered late
    assert [world.version_read("a") for _ in range(3)] == [2, 2, 2]
    assert counter("stale_entries") == 1


def test_records_in_one_batch_in_stream_order_end_on_the_newest(endpoint: str, plain: Any) -> None:
    world = World(endpoint)
    world.write("a", 1)
    world.write("a", 2)
    world.deliver(record_of("a", 1), record_of("a", 2))
    sent = RequestCounter(world.writer, "GetItem")
    assert [world.version_read("a") for _ in range(3)] == [2, 2, 2]
    assert sent.count == 1
    assert counter("stale_entries") == 0


def test_a_fill_after_the_own_write_is_served_without_another_check(
    endpoint: str, plain: Any
) -> None:
    clock = Clock()
    world = World(endpoint, MemoryBackend(clock=clock))
    world.write("a", 1)
    clock.now += CONFIG.tombstone_ttl_seconds  # the tombstone is gone: the next read fills
    sent = SentBodies(world.writer, "GetItem")
    assert [world.version_read("a") for _ in range(3)] == [1, 1, 1]
    assert len(sent.bodies) == 1
    assert sent.bodies[0]["ConsistentRead"] is True
    assert world.cached("a") == item("a", 1)


def test_keys_nobody_wrote_are_read_as_before(endpoint: str, plain: Any) -> None:
    world = World(endpoint)
    world.version_read("b")
    world.write("a", 1)
    sent = SentBodies(world.writer, "GetItem")
    assert world.version_read("b") == 0
    assert sent.bodies == []  # a hit, unaffected by a's fence


def test_a_batch_never_reads_an_older_record_after_own_writes(endpoint: str, plain: Any) -> None:
    world = World(endpoint)
    request = {TABLE: {"Keys": [key("a"), key("b")]}}

    def versions() -> dict[str, int]:
        answer = world.writer.batch_get_item(RequestItems=request)
        return {i["pk"]["S"]: int(i["v"]["N"]) for i in answer["Responses"][TABLE]}

    assert versions() == {"a": 0, "b": 0}
    world.write("a", 1)
    world.write("a", 2)
    world.deliver(record_of("a", 1))
    sent = SentBodies(world.writer, "BatchGetItem")
    assert versions() == {"a": 2, "b": 0}
    assert len(sent.bodies) == 1
    asked = sent.bodies[0]["RequestItems"][TABLE]
    assert asked["Keys"] == [key("a")]  # b was a hit
    assert asked["ConsistentRead"] is True
    assert world.cached("a") is EntryKind.TOMBSTONE
    assert counter("stale_entries") == 1
    world.deliver(record_of("a", 2))
    assert versions() == {"a": 2, "b": 0}  # verified...
    assert versions() == {"a": 2, "b": 0}  # ...then all hits
    assert len(sent.bodies) == 2
    world.deliver(record_of("a", 1))  # redelivered late
    assert versions() == {"a": 2, "b": 0}
    assert counter("stale_entries") == 2


def test_another_registration_on_the_same_cache_respects_the_fence(
    endpoint: str, plain: Any
) -> None:
    world = World(endpoint)
    reader = world.client()  # its own session and registration, one cache
    assert world.version_read("a", reader) == 0
    world.write("a", 1)
    world.write("a", 2)
    world.deliver(record_of("a", 1))
    assert [world.version_read("a", reader) for _ in range(2)] == [2, 2]
    world.deliver(record_of("a", 2))
    sent = RequestCounter(reader, "GetItem")
    assert [world.version_read("a", reader) for _ in range(3)] == [2, 2, 2]
    assert sent.count == 0  # the bytes the reader verified: hits
    world.deliver(record_of("a", 1))
    assert [world.version_read("a", reader) for _ in range(2)] == [2, 2]
    assert counter("stale_entries") == 2


@pytest.mark.sync_only  # a handler that writes synchronously in the middle of a call
def test_a_read_in_flight_during_a_newer_write_does_not_verify_an_older_entry(
    endpoint: str, plain: Any
) -> None:
    world = World(endpoint)
    world.write("a", 1)
    world.deliver(record_of("a", 1))
    writes = iter([2])

    def write_meanwhile(**_: Any) -> None:
        # After DynamoDB answered v1, before the answer is compared with the entry
        # (v1 too): v2 is written and acknowledged. v1 must not be verified.
        for version in writes:
            world.write("a", version)
            world.deliver(record_of("a", 1))  # and the stream puts v1 back

    world.writer.meta.events.register_first("after-call.dynamodb.GetItem", write_meanwhile)
    assert world.version_read("a") == 1  # what DynamoDB said when it was asked
    assert [world.version_read("a") for _ in range(2)] == [2, 2]


def test_the_fence_ends_after_the_guard_horizon(endpoint: str, plain: Any) -> None:
    clock = Clock()
    cache = MemoryBackend(clock=clock)
    session = new_session()
    client = session.client("dynamodb", endpoint_url=endpoint)
    ReadHooks(CONFIG, cache, clock=clock).install(client.meta.events)
    stream = StreamInvalidator(CONFIG, cache)
    client.put_item(TableName=TABLE, Item=item("a", 1))
    stream(lambda_event(record_of("a", 1)))
    client.put_item(TableName=TABLE, Item=item("a", 2))
    stream(lambda_event(record_of("a", 1)))  # stale, and within the horizon
    assert int(client.get_item(TableName=TABLE, Key=key("a"))["Item"]["v"]["N"]) == 2
    horizon = CONFIG.ttl_seconds + min(CONFIG.tombstone_ttl_seconds, 60.0)
    clock.now += horizon - 1
    stream(lambda_event(record_of("a", 1)))
    assert int(client.get_item(TableName=TABLE, Key=key("a"))["Item"]["v"]["N"]) == 2
    clock.now += 1
    stream(lambda_event(record_of("a", 1)))  # only a record later than the horizon...
    sent = RequestCounter(client, "GetItem")
    client.get_item(TableName=TABLE, Key=key("a"))
    assert sent.count == 0  # ...is served: the fence is gone, reads are plain again
