"""A write whose tombstone could not be written is never silently lost: this process
still reads its own write, and the tombstone is written once the cache answers again.

Real components: moto's server for DynamoDB; a memory cache that refuses calls while
told to, the circuit breaker in front of it, and the real momento SDK against the
local Momento-protocol server stopped and restarted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import (
    BackendError,
    CacheConfig,
    CircuitBreakerBackend,
    ConfigurationError,
    MemoryBackend,
)
from momento_botocore.backends import Backend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

RETRY = 0.05  # tombstone_retry_interval in these tests


def item(pk: str, v: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": v}}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def cache_key_of(pk: str) -> str:
    return cache_key(ACCOUNT, REGION, "items", key(pk), binary_text="utf-8")


class FlakyCache(MemoryBackend):
    """A memory cache that fails every call while ``down``, or only ``set`` while
    ``refuse_sets`` (tombstones fail, lookups and fills work)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refuse_sets = False

    def get(self, key: str) -> bytes | None:
        self._check()
        return super().get(key)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        self._check()
        return super().add(key, value, ttl_seconds)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._check()
        if self.refuse_sets:
            raise BackendError("set refused")
        super().set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)

    def _check(self) -> None:
        if self.down:
            raise BackendError("cache is down")


def kind_in(backend: Backend, pk: str) -> EntryKind | None:
    return kind_of(backend.get(cache_key_of(pk)))


def kind_of(raw: bytes | None) -> EntryKind | None:
    entry = None if raw is None else decode(raw)
    return None if entry is None else entry.kind


def registered_client(endpoint: str, backend: Backend, **settings: Any) -> Any:
    config = CacheConfig(**{"ttl": 300, "tombstone_retry_interval": RETRY, **settings})
    session = new_session()
    momento_botocore.register(session, backend=backend, config=config)
    return session.client("dynamodb", endpoint_url=endpoint)


@pytest.fixture
def items(endpoint: str) -> str:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    for pk in "abc":
        client.put_item(TableName="items", Item=item(pk, "old"))
    return "items"


def get(client: Any, pk: str = "a") -> Any:
    return client.get_item(TableName="items", Key=key(pk)).get("Item")


def batch(client: Any, *pks: str) -> dict[str, Any]:
    """BatchGetItem of ``pks``: pk -> item (absent items left out)."""
    answer = client.batch_get_item(RequestItems={"items": {"Keys": [key(pk) for pk in pks]}})
    return {found["pk"]["S"]: found for found in answer["Responses"]["items"]}


def warm(client: Any, *pks: str) -> None:
    """Cache the items and prove the next reads are hits."""
    for pk in pks:
        get(client, pk)
    sent = RequestCounter(client, "GetItem")
    for pk in pks:
        get(client, pk)
    assert sent.count == 0, "the items should be cached before the write"


def counter(name: str) -> int:
    return momento_botocore.stats().get("items", {}).get(name, 0)


def put(client: Any, pk: str = "a", v: str = "new") -> None:
    client.put_item(TableName="items", Item=item(pk, v))


def update(client: Any, pk: str = "a") -> None:
    client.update_item(
        TableName="items",
        Key=key(pk),
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
    )


def delete(client: Any, pk: str = "a") -> None:
    client.delete_item(TableName="items", Key=key(pk))


def batch_put(client: Any, pk: str = "a") -> None:
    client.batch_write_item(RequestItems={"items": [{"PutRequest": {"Item": item(pk, "new")}}]})


def transact_put(client: Any, pk: str = "a") -> None:
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": "items", "Item": item(pk, "new")}}]
    )


WRITES: dict[str, tuple[Callable[..., None], Any]] = {
    "PutItem": (put, item("a", "new")),
    "UpdateItem": (update, item("a", "new")),
    "DeleteItem": (delete, None),
    "BatchWriteItem": (batch_put, item("a", "new")),
    "TransactWriteItems": (transact_put, item("a", "new")),
}


@pytest.mark.parametrize("operation", list(WRITES))
def test_a_write_while_the_cache_is_down_is_read_back_when_it_returns(
    endpoint: str, items: str, operation: str
) -> None:
    write, expected = WRITES[operation]
    cache = FlakyCache()
    client = registered_client(endpoint, cache)
    warm(client, "a")
    cache.down = True
    write(client)
    assert counter("tombstones_pending") == 1
    cache.down = False
    assert kind_in(cache, "a") is EntryKind.ITEM  # the old item survived the outage
    for _ in range(3):
        assert get(client) == expected
        assert batch(client, "a").get("a") == expected


def test_a_projected_read_of_a_pending_item_is_projected_from_dynamodb(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()
    client = registered_client(endpoint, cache, tombstone_retry_interval=60)
    warm(client, "a")
    cache.down = True
    put(client)
    cache.down = False
    answer = client.get_item(TableName="items", Key=key("a"), ProjectionExpression="v")
    assert answer["Item"] == {"v": {"S": "new"}}
    found = client.batch_get_item(
        RequestItems={"items": {"Keys": [key("a"), key("b")], "ProjectionExpression": "v"}}
    )["Responses"]["items"]
    assert sorted(found, key=lambda x: x["v"]["S"]) == [{"v": {"S": "new"}}, {"v": {"S": "old"}}]
    assert kind_in(cache, "a") is EntryKind.ITEM  # not filled, not retried yet


def test_the_tombstone_is_written_by_a_later_lookup_of_any_key(endpoint: str, items: str) -> None:
    cache = FlakyCache()
    client = registered_client(endpoint, cache, tombstone_retry_interval=1.0)  # not due at once
    warm(client, "a", "b")
    cache.down = True
    put(client)
    cache.down = False
    sent = RequestCounter(client, "GetItem")
    assert get(client) == item("a", "new")  # skips the cache: the retry is not due yet
    assert sent.count == 1
    assert counter("bypasses") == 1
    assert kind_in(cache, "a") is EntryKind.ITEM
    time.sleep(1.1)
    assert get(client, "b") == item("b", "old")  # any lookup retries first
    assert kind_in(cache, "a") is EntryKind.TOMBSTONE
    assert counter("tombstones_retried") == 1
    assert counter("tombstones_dropped") == 0
    assert get(client) == item("a", "new")


def test_a_late_tombstone_still_blocks_fills_for_its_window(endpoint: str, items: str) -> None:
    cache = FlakyCache()
    client = registered_client(endpoint, cache)
    warm(client, "a")
    cache.down = True
    put(client)
    cache.down = False
    time.sleep(RETRY * 2)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):  # tombstone written by the first; no fill during its window
        assert get(client) == item("a", "new")
    assert sent.count == 3
    assert kind_in(cache, "a") is EntryKind.TOMBSTONE


def test_batch_get_reads_a_pending_key_from_dynamodb_and_the_others_from_the_cache(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()
    client = registered_client(endpoint, cache, tombstone_retry_interval=60)
    warm(client, "a", "b", "c")
    cache.down = True
    put(client, "b")
    cache.down = False
    sent = RequestCounter(client, "BatchGetItem")
    found = batch(client, "a", "b", "c")
    assert found == {"a": item("a", "old"), "b": item("b", "new"), "c": item("c", "old")}
    assert sent.count == 1
    assert kind_in(cache, "b") is EntryKind.ITEM  # not retried yet (60 s), and not filled
    assert counter("bypasses") == 1


def test_with_the_breaker_open_the_write_is_remembered_and_written_by_the_probe(
    endpoint: str, items: str
) -> None:
    inner = FlakyCache()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(2, cooldown=0.3))
    client = registered_client(endpoint, backend)
    warm(client, "a", "b")
    inner.down = True
    get(client, "b")
    get(client, "b")
    assert backend.breaker.state is BreakerState.OPEN
    inner.down = False  # back, but the breaker does not know yet
    put(client)  # CircuitOpenError: remembered
    assert counter("tombstones_pending") == 1
    sent = RequestCounter(client, "GetItem")
    assert get(client) == item("a", "new")
    assert sent.count == 1
    deadline = time.monotonic() + 10
    while counter("tombstones_retried") == 0:
        assert time.monotonic() < deadline, "the pending tombstone was never written"
        assert get(client) == item("a", "new")
        time.sleep(0.05)
    assert backend.breaker.state is BreakerState.CLOSED
    assert kind_in(inner, "a") is EntryKind.TOMBSTONE


def test_a_cache_that_refuses_tombstones_never_serves_the_stale_item_until_it_expires(
    endpoint: str, items: str
) -> None:
    # ttl 2 s: an entry the tombstone guards against is gone 2.5 s after the write
    # (longest TTL + fill window of min(tombstone_ttl, absent_ttl)).
    cache = FlakyCache()
    client = registered_client(endpoint, cache, ttl=2, absent_ttl=0.5, tombstone_ttl=0.5)
    warm(client, "a")
    cache.refuse_sets = True  # lookups work; the stale item sits there, readable
    put(client)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert get(client) == item("a", "new")
    assert sent.count == 3
    assert counter("fills") == 1  # no fill while pending
    time.sleep(2.6)
    assert get(client) == item("a", "new")  # dropped unwritten: the old entry expired
    assert counter("tombstones_dropped") == 1
    assert counter("tombstones_retried") == 0
    assert get(client) == item("a", "new")
    assert sent.count == 4, "after the horizon, the item is cached again"


def test_past_the_limit_a_table_skips_the_cache_whole_until_its_entries_expire(
    endpoint: str, items: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="momento_botocore")
    cache = FlakyCache()
    client = registered_client(
        endpoint, cache, ttl=2, absent_ttl=0.5, tombstone_ttl=0.5, max_pending_tombstones=1
    )
    warm(client, "a", "b", "c")
    cache.refuse_sets = True
    put(client, "a")  # remembered
    put(client, "b")  # not remembered: the whole table is guarded
    assert counter("tombstones_pending") == 1
    assert counter("tombstones_overflowed") == 1
    warnings = [
        r.getMessage() for r in caplog.records if "tombstones are pending" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "'items'" in warnings[0]
    sent = RequestCounter(client, "GetItem")
    assert get(client, "b") == item("b", "new")
    assert get(client, "c") == item("c", "old")  # untouched, still skips the cache
    assert batch(client, "b", "c") == {"b": item("b", "new"), "c": item("c", "old")}
    assert sent.count == 2
    time.sleep(2.6)
    assert get(client, "b") == item("b", "new")
    assert get(client, "b") == item("b", "new")
    assert sent.count == 3, "after the horizon, the table is cached again"


def test_a_later_tombstone_of_the_same_item_settles_the_pending_one(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()
    client = registered_client(endpoint, cache, tombstone_retry_interval=60)
    warm(client, "a")
    cache.down = True
    put(client, v="first")
    cache.down = False
    put(client, v="second")
    assert counter("tombstones_retried") == 1
    assert kind_in(cache, "a") is EntryKind.TOMBSTONE
    assert get(client) == item("a", "second")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_pending_tombstones", 0),
        ("max_pending_tombstones", 1.5),
        ("tombstone_retry_interval", 0),
        ("tombstone_retry_interval", "1"),
    ],
)
def test_bad_pending_tombstone_settings_fail_at_configuration(setting: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        CacheConfig(ttl=60, **{setting: value})


def test_pending_tombstone_settings_come_from_the_environment() -> None:
    config = CacheConfig.from_env(
        {
            "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
            "MOMENTO_BOTOCORE_MAX_PENDING_TOMBSTONES": "50",
            "MOMENTO_BOTOCORE_TOMBSTONE_RETRY_SECONDS": "0.25",
        }
    )
    assert (config.max_pending_tombstones, config.tombstone_retry_interval) == (50, 0.25)


def test_momento_stopped_during_a_write_then_restarted(
    endpoint: str, items: str, momento_server: LocalMomentoServer
) -> None:
    from momento_botocore.backends.momento import MomentoBackend

    momento = MomentoBackend(
        DEFAULT_CACHE, credential_provider=momento_server.credential_provider(), request_timeout=1.0
    )
    backend = CircuitBreakerBackend(momento, CircuitBreaker(3, cooldown=0.3))
    client = registered_client(endpoint, backend)
    try:
        warm(client, "a")
        momento_server.stop()
        put(client)
        assert counter("tombstones_pending") == 1
        assert get(client) == item("a", "new")
        momento_server.start()  # the old item is still stored there
        stored = momento_server.store.get
        assert kind_of(stored(DEFAULT_CACHE, cache_key_of("a").encode())) is EntryKind.ITEM
        deadline = time.monotonic() + 20
        while counter("tombstones_retried") == 0:
            assert time.monotonic() < deadline, "the pending tombstone was never written"
            assert get(client) == item("a", "new")
            time.sleep(0.05)
        assert kind_of(stored(DEFAULT_CACHE, cache_key_of("a").encode())) is EntryKind.TOMBSTONE
        assert get(client) == item("a", "new")
    finally:
        momento_server.start()
        backend.close()
