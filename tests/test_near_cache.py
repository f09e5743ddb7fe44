"""The near cache in front of Momento (backends/near.py, docs/near-cache.md): memory-speed
hits kept fresh by invalidations pushed over Momento Topics. Real SDK, real gRPC, the
local Momento-protocol server with its Topics; DynamoDB on moto's server.

Two "processes" are two backends built from one configuration: each has its own near
store and its own subscription, and they share the Momento cache and its topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from conftest import ACCOUNT, REGION, create_table

import momento_botocore
from momento_botocore.backends.factory import create_backend
from momento_botocore.backends.momento_topics import near_cache_for
from momento_botocore.backends.near import NEAR_STATS, NearCacheBackend
from momento_botocore.config import CacheConfig
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

TOPIC = "momento-botocore-invalidations"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
KEY = {"pk": {"S": "a"}}


def near_config(**changes: Any) -> CacheConfig:
    settings: dict[str, Any] = {
        "ttl": 60,
        "backend": "momento",
        "momento_cache_name": DEFAULT_CACHE,
        "momento_request_timeout": 5.0,
        "near_cache_items": 1000,
        "near_cache_ttl": 30,
        "account_id": ACCOUNT,
    }
    settings.update(changes)
    return CacheConfig(**settings)


@pytest.fixture
def make_backend(momento_server: LocalMomentoServer) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(**changes: Any) -> Any:
        """A backend as create_backend builds it, with a near cache of its own (as in
        another process: one process shares one near cache per cache and topic)."""
        config = near_config(**changes)
        provider = momento_server.credential_provider()
        backend = create_backend(
            config.replace(invalidation_topic="", near_cache_items=0), credential_provider=provider
        )
        near = near_cache_for(config, provider, shared=False)
        if near is not None:
            backend = NearCacheBackend(backend, near)
        made.append(backend)
        near = getattr(backend, "near", None)
        if near is not None and near.subscriber is not None:
            assert near.subscriber.wait_live(5), near.subscriber.last_error
        return backend

    yield make
    for backend in made:
        backend.close()


def eventually(check: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def held(reader: Any, key: str, value: bytes, *writers: Any) -> bool:
    """Once the ``writers``' pushes so far are delivered, read ``key`` until the reader's
    near store holds ``value`` (an earlier write's push evicts what it fills before)."""
    for writer in writers:
        assert writer.near.publisher.wait_idle()
    time.sleep(0.1)  # published: delivered by now on loopback
    return eventually(lambda: reader.get(key) == value and reader.near.store.get(key) == value)


def near_stats() -> dict[str, int]:
    return momento_botocore.stats().get(NEAR_STATS, {})


# The backend alone ------------------------------------------------------------------------


def test_a_near_hit_reaches_no_server_and_a_write_elsewhere_evicts_it(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    reader, writer = make_backend(), make_backend()
    assert isinstance(reader, NearCacheBackend)
    writer.set("k", b"v1", 60)
    assert held(reader, "k", b"v1", writer)  # from Momento, then held
    gets = momento_server.calls("Get") + momento_server.calls("GetBatch")
    assert [reader.get("k") for _ in range(5)] == [b"v1"] * 5
    assert momento_server.calls("Get") + momento_server.calls("GetBatch") == gets
    writer.set("k", b"v2", 60)  # another process: only the push tells the reader
    assert eventually(lambda: reader.get("k") == b"v2")
    assert near_stats()["near_hits"] >= 5
    assert near_stats()["evictions"] >= 1  # by the push


def test_every_kind_of_write_is_pushed(make_backend: Callable[..., Any]) -> None:
    reader, writer = make_backend(), make_backend()
    writer.set("s", b"1", 60)
    writer.set("d", b"1", 60)
    writer.set("c", b"1", 60)
    writer.set("m", b"1", 60)
    for key in ("s", "d", "c", "m"):
        assert held(reader, key, b"1", writer)
    writer.set_many([("s", b"2", 60)])
    writer.delete("d")
    writer.incr("c", 60)
    writer.incr_many([("m", 60)])
    assert eventually(
        lambda: [reader.get(key) for key in ("s", "d", "c", "m")] == [b"2", None, b"2", b"2"]
    )


def test_get_many_serves_near_hits_and_looks_the_rest_up(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    backend = make_backend()
    backend.set_many([("a", b"1", 60), ("b", b"2", 60)])
    assert backend.get("a") == b"1"  # held near
    before = momento_server.calls("GetBatch") + momento_server.calls("Get")
    assert backend.get_many(["a", "b", "c"]) == [b"1", b"2", None]
    assert momento_server.calls("GetBatch") + momento_server.calls("Get") == before + 1
    assert backend.near.store.get("b") == b"2"  # filled from the lookup
    assert backend.get_many(["a", "b"]) == [b"1", b"2"]  # both near: no call
    assert momento_server.calls("GetBatch") + momento_server.calls("Get") == before + 1


def test_an_own_write_evicts_at_once(make_backend: Callable[..., Any]) -> None:
    backend = make_backend()
    backend.set("k", b"v1", 60)
    assert backend.get("k") == b"v1"
    backend.set("k", b"v2", 60)
    assert backend.get("k") == b"v2"  # no wait: evicted before set returned


def test_a_miss_filled_by_this_process_is_held(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    backend = make_backend()
    assert backend.get("k") is None
    assert backend.add("k", b"from dynamodb", 60)
    gets = momento_server.calls("Get")
    assert backend.get("k") == b"from dynamodb"
    assert momento_server.calls("Get") == gets


class _SlowAnswer:
    """A backend whose get answers 0.5 s after it read: a write and its push can come
    in between."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def get(self, key: str) -> bytes | None:
        value = self.backend.get(key)
        time.sleep(0.5)
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


def test_a_lookup_a_push_overtakes_is_not_held(make_backend: Callable[..., Any]) -> None:
    """The reader's lookup reads "old"; before it answers another process writes "new"
    and its push arrives: "old" is not held (the race of fill-after-invalidate, one
    tier up)."""
    reader, writer = make_backend(), make_backend()
    slow_reader = NearCacheBackend(_SlowAnswer(reader.backend), reader.near, owns_near=False)
    writer.set("k", b"old", 60)
    assert writer.near.publisher.wait_idle()
    time.sleep(0.1)  # its push has reached the reader
    found: list[bytes | None] = []
    slow = threading.Thread(target=lambda: found.append(slow_reader.get("k")))
    slow.start()
    time.sleep(0.1)  # the lookup has read "old"
    writer.set("k", b"new", 60)
    slow.join()
    assert found == [b"old"]  # what the lookup read (DynamoDB's rule: it began before)
    assert reader.near.store.get("k") is None  # but not held
    assert reader.get("k") == b"new"
    assert eventually(lambda: reader.near.store.get("k") == b"new")


def test_a_lost_subscription_empties_the_near_cache_until_it_is_live_again(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    reader, writer = make_backend(), make_backend()
    writer.set("k", b"v1", 60)
    assert held(reader, "k", b"v1", writer)
    flushes = near_stats().get("flushes", 0)
    momento_server.fail("Subscribe")  # it cannot subscribe again for a while
    momento_server.end_subscriptions()
    assert eventually(lambda: reader.near.state == "reconnecting")
    gets = momento_server.calls("Get")
    assert reader.get("k") == b"v1"
    assert momento_server.calls("Get") == gets + 1  # not from the near store
    assert reader.near.store.get("k") is None
    assert near_stats()["flushes"] > flushes
    writer.set("k", b"v2", 60)  # published while the reader is not subscribed
    momento_server.clear_faults()
    assert eventually(lambda: reader.near.state == "live", within=5)
    assert reader.get("k") == b"v2"


def test_a_gap_in_the_topic_empties_the_near_cache(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    reader, writer = make_backend(), make_backend()
    writer.set("k", b"v1", 60)
    writer.set("other", b"x", 60)  # messages the reader sees: numbering begins
    assert held(reader, "k", b"v1", writer)
    momento_server.skip_messages(TOPIC, 1, cache=DEFAULT_CACHE)  # a message lost
    writer.set("unrelated", b"x", 60)  # the next one shows the gap
    assert eventually(lambda: reader.near.store.get("k") is None)


def test_a_failed_publish_is_retried_not_lost(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    reader, writer = make_backend(), make_backend()
    writer.set("k", b"v1", 60)
    assert held(reader, "k", b"v1", writer)
    momento_server.fail("Publish", times=2)
    writer.set("k", b"v2", 60)
    assert eventually(lambda: reader.get("k") == b"v2", within=5)
    assert near_stats()["publish_failures"] >= 2


def test_writes_do_not_hurry_the_retries_of_a_failing_topic(
    make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    writer = make_backend(near_cache_items=0)
    momento_server.fail("Publish")
    started = momento_server.calls("Publish")
    for n in range(30):
        writer.set(f"k{n}", b"v", 60)
        time.sleep(0.02)
    tries = momento_server.calls("Publish") - started
    assert 1 <= tries <= 8  # backing off (0.1 s doubling), not one try per write
    momento_server.clear_faults()
    assert writer.near.publisher.wait_idle(5)  # and nothing was dropped


def test_tombstones_and_markers_are_not_held_near(make_backend: Callable[..., Any]) -> None:
    """Their meaning ends with their short TTL in Momento, which a near copy would
    outlive (a marker held near would keep a partition's pages unfilled)."""
    from momento_botocore.core.entries import encode_tombstone

    backend = make_backend()
    backend.set("marker", encode_tombstone(), 0.2)
    for _ in range(3):
        assert backend.get("marker") == encode_tombstone()
    assert backend.near.store.get("marker") is None
    time.sleep(0.25)
    assert backend.get("marker") is None


def test_near_entries_live_at_most_the_near_ttl_when_nothing_is_pushed(
    make_backend: Callable[..., Any],
) -> None:
    reader = make_backend(near_cache_ttl=0.3)
    silent = make_backend(near_cache_items=0, invalidation_topic="")  # publishes nothing
    silent.set("k", b"v1", 60)
    assert held(reader, "k", b"v1")
    silent.set("k", b"v2", 60)
    assert reader.get("k") == b"v1"  # stale: no push came
    time.sleep(0.35)
    assert reader.get("k") == b"v2"  # the near TTL is the bound


@pytest.mark.cache_free(reason="builds backends, reads and writes nothing")
def test_one_process_shares_one_near_cache_per_cache_and_topic(
    momento_server: LocalMomentoServer,
) -> None:
    """Two registrations of one configuration (or a sync and an async backend) share one
    store and one subscription; it stops with the last of them."""
    provider = momento_server.credential_provider()
    first = create_backend(near_config(), credential_provider=provider)
    second = create_backend(near_config(), credential_provider=provider)
    other = create_backend(near_config(near_cache_items=5), credential_provider=provider)
    assert first.near is second.near
    assert other.near is not first.near
    assert first.near.subscriber.wait_live(5)
    assert other.near.subscriber.wait_live(5)
    assert momento_server.subscriptions(TOPIC, cache=DEFAULT_CACHE) == 2
    first.close()
    assert not second.near.closed
    second.close()
    assert second.near.closed
    other.close()
    third = create_backend(near_config(), credential_provider=provider)
    assert third.near is not first.near  # a closed one is not handed out again
    third.close()


def test_publishing_only_keeps_no_store(make_backend: Callable[..., Any]) -> None:
    writer = make_backend(near_cache_items=0)
    assert isinstance(writer, NearCacheBackend)
    assert writer.near.store is None
    assert writer.near.state == "off (publishing only)"
    plain = make_backend(near_cache_items=0, invalidation_topic="")
    assert not isinstance(plain, NearCacheBackend)


# Through botocore and aiobotocore, against DynamoDB -----------------------------------------


@pytest.fixture
def items(endpoint: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    return endpoint


def registered_client(endpoint: str, backend: Any) -> Any:
    session = boto3.Session(region_name=REGION, **CREDENTIALS)
    momento_botocore.register(session, config=near_config(), backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def header(answer: dict[str, Any]) -> str | None:
    return answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def test_a_write_through_another_process_is_seen_by_this_ones_near_cache(
    items: str, make_backend: Callable[..., Any], momento_server: LocalMomentoServer
) -> None:
    reader = registered_client(items, make_backend())
    writer = registered_client(items, make_backend())
    for _ in range(3):
        reader.get_item(TableName="items", Key=KEY)
    gets = momento_server.calls("Get")
    assert header(reader.get_item(TableName="items", Key=KEY)) == "hit"
    assert momento_server.calls("Get") == gets  # a near hit
    writer.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "2"}})
    assert eventually(
        lambda: reader.get_item(TableName="items", Key=KEY)["Item"]["n"] == {"N": "2"}
    )


def test_the_query_caches_generations_are_pushed_too(
    items: str, make_backend: Callable[..., Any]
) -> None:
    config = near_config(cache_queries=True, key_schemas={"items": ("pk",)})

    def client() -> Any:
        session = boto3.Session(region_name=REGION, **CREDENTIALS)
        momento_botocore.register(session, config=config, backend=make_backend())
        return session.client("dynamodb", endpoint_url=items)

    reader, writer = client(), client()

    def query() -> dict[str, Any]:
        return reader.query(  # type: ignore[no-any-return]
            TableName="items",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        )

    for _ in range(3):
        query()
    assert header(query()) == "hit"
    writer.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "5"}})
    assert eventually(lambda: query()["Items"][0]["n"] == {"N": "5"}, within=15)
