"""Garbage in the cache is deleted, counted and read from DynamoDB; never served, never
an outage: an item under another item's key, a value too large to receive (the real
momento SDK against the local server), a value that is not an entry."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.backends import Backend, CircuitBreakerBackend
from momento_botocore.backends.momento import MomentoBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.core.entries import EntryKind, decode, encode_item
from momento_botocore.core.integrity import key_matches
from momento_botocore.core.keys import cache_key
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

TABLE = "items"
TOO_LARGE = b"x" * (6 * 1024 * 1024)  # over the SDK's receive limit (5,243,000 bytes)


def item(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": f"value of {pk}"}}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def key_of(pk: str) -> str:
    return cache_key(ACCOUNT, REGION, TABLE, key(pk))


@pytest.fixture
def table(endpoint: str) -> str:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, TABLE)
    for pk in ("a", "b"):
        client.put_item(TableName=TABLE, Item=item(pk))
    return TABLE


def cached_client(endpoint: str, backend: Backend) -> Any:
    session = new_session()
    momento_botocore.register(session, config=CacheConfig(ttl=60), backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def header(answer: dict[str, Any]) -> str | None:
    return answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def counter(name: str) -> int:
    return momento_botocore.stats().get(TABLE, {}).get(name, 0)


def kind_in(backend: Backend, pk: str) -> EntryKind | None:
    entry = decode(backend.get(key_of(pk)))
    return None if entry is None else entry.kind


def guarded(server: LocalMomentoServer) -> CircuitBreakerBackend:
    momento = MomentoBackend(
        DEFAULT_CACHE, credential_provider=server.credential_provider(), request_timeout=2.0
    )
    return CircuitBreakerBackend(momento, CircuitBreaker(5, 60.0))


# An item under another item's key ----------------------------------------------------


def test_an_item_under_another_items_key_is_not_served_and_is_replaced(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    any_backend.set(key_of("a"), encode_item(item("b")), 60)
    client = cached_client(endpoint, any_backend)
    sent = RequestCounter(client, "GetItem")
    first = client.get_item(TableName=TABLE, Key=key("a"))
    assert first["Item"] == item("a")
    assert header(first) == "miss"
    assert counter("garbage") == 1
    assert counter("errors") == 0
    entry = decode(any_backend.get(key_of("a")))  # deleted, then filled with a's item
    assert entry is not None
    assert entry.item == item("a")
    second = client.get_item(TableName=TABLE, Key=key("a"))
    assert second["Item"] == item("a")
    assert header(second) == "hit"
    assert sent.count == 1


def test_a_batch_never_serves_an_item_under_another_items_key(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    client = cached_client(endpoint, any_backend)
    request = {TABLE: {"Keys": [key("a"), key("b")]}}
    for _ in range(2):  # filled, then hits: the entries' builders are remembered
        client.batch_get_item(RequestItems=request)
    assert counter("hits") == 2
    any_backend.set(key_of("a"), any_backend.get(key_of("b")) or b"", 60)  # b's entry under a
    sent = RequestCounter(client, "BatchGetItem")
    answer = client.batch_get_item(RequestItems=request)
    assert sorted(answer["Responses"][TABLE], key=lambda i: i["pk"]["S"]) == [
        item("a"),
        item("b"),
    ]
    assert sent.count == 1
    assert counter("garbage") == 1
    entry = decode(any_backend.get(key_of("a")))
    assert entry is not None
    assert entry.item == item("a")


def test_a_key_spelled_differently_from_the_cached_item_is_still_a_hit(endpoint: str) -> None:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "numbers", hash_key=("n", "N"))
    client.put_item(TableName="numbers", Item={"n": {"N": "1"}, "v": {"S": "one"}})
    cached = cached_client(endpoint, MemoryBackend())
    cached.get_item(TableName="numbers", Key={"n": {"N": "1"}})
    answer = cached.get_item(TableName="numbers", Key={"n": {"N": "1.0"}})
    assert header(answer) == "hit"
    assert answer["Item"]["v"] == {"S": "one"}
    assert momento_botocore.stats()["numbers"].get("garbage", 0) == 0


@pytest.mark.parametrize(
    ("cached", "request_key", "matches"),
    [
        ({"pk": {"S": "a"}, "x": {"S": "1"}}, {"pk": {"S": "a"}}, True),
        ({"pk": {"S": "b"}}, {"pk": {"S": "a"}}, False),
        ({"pk": {"N": "10"}}, {"pk": {"N": "1E1"}}, True),
        ({"pk": {"N": "10"}}, {"pk": {"N": "11"}}, False),
        ({"pk": {"S": "10"}}, {"pk": {"N": "10"}}, False),
        ({"pk": {"B": b"ab"}}, {"pk": {"B": "ab"}}, True),  # a str blob is its UTF-8
        ({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "sk": {"N": "1"}}, False),
        ({"pk": {"S": "a"}, "sk": {"N": "1.0"}}, {"sk": {"N": "1"}, "pk": {"S": "a"}}, True),
    ],
)
def test_key_matches_compares_as_the_key_codec_does(
    cached: dict[str, Any], request_key: dict[str, Any], matches: bool
) -> None:
    assert key_matches(cached, request_key) is matches


# Values that are not entries: never a breaker failure ----------------------------------


def test_a_value_too_large_to_receive_is_garbage_and_never_opens_the_breaker(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    for _ in range(6):  # more than the breaker's threshold of five
        momento_server.put_raw(key_of("a"), TOO_LARGE)
        answer = client.get_item(TableName=TABLE, Key=key("a"))
        assert answer["Item"] == item("a")
        assert header(answer) == "miss"
        stored = momento_server.get_raw(key_of("a"))  # deleted, then filled
        assert stored is not None
        assert decode(stored) is not None
    assert backend.breaker.state is BreakerState.CLOSED
    assert backend.breaker.times_opened == 0
    assert counter("garbage") == 6
    assert counter("errors") == 0
    assert isinstance(backend.backend, MomentoBackend)
    assert backend.backend.unreadable == 6
    hit = client.get_item(TableName=TABLE, Key=key("a"))
    assert header(hit) == "hit"
    backend.close()


def test_a_batch_with_a_value_too_large_to_receive_serves_every_key(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    request = {TABLE: {"Keys": [key("a"), key("b")]}}
    client.batch_get_item(RequestItems=request)  # b (and a) filled
    for _ in range(6):
        momento_server.put_raw(key_of("a"), TOO_LARGE)
        answer = client.batch_get_item(RequestItems=request)
        assert sorted(answer["Responses"][TABLE], key=lambda i: i["pk"]["S"]) == [
            item("a"),
            item("b"),
        ]
    assert backend.breaker.state is BreakerState.CLOSED
    assert backend.breaker.times_opened == 0
    assert counter("garbage") == 6
    assert counter("errors") == 0
    assert kind_in(backend, "a") is EntryKind.ITEM
    backend.close()


def test_undecodable_values_are_garbage_not_failures(endpoint: str, table: str) -> None:
    cache = MemoryBackend()
    backend = CircuitBreakerBackend(cache, CircuitBreaker(5, 60.0))
    client = cached_client(endpoint, backend)
    for _ in range(6):
        cache.set(key_of("a"), b"mbe1I{not json", 60)
        assert client.get_item(TableName=TABLE, Key=key("a"))["Item"] == item("a")
    assert backend.breaker.times_opened == 0
    assert counter("garbage") == 6
    assert counter("errors") == 0
