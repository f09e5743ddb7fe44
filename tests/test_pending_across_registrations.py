"""Unwritten tombstones are remembered once per cache for the whole process.

The docs promise that, until a failed tombstone is written, "every read of that key
in this process" skips the cache. So registrations in front of one cache (one
backend object given to several ``register()`` calls, or several Momento backends
on the same Momento cache) share what is pending: a read through any of them is
guarded, any of them retries, and what is pending outlives ``unregister()``.
Registrations on different caches stay independent.
"""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import pytest
from conftest import RequestCounter, new_session
from test_unwritten_tombstones import (
    RETRY,
    FlakyCache,
    cache_key_of,
    counter,
    get,
    item,
    items,
    kind_in,
    kind_of,
    put,
    warm,
)

import momento_botocore
from momento_botocore import CacheConfig, CircuitBreakerBackend, MemoryBackend
from momento_botocore.backends import Backend, cache_identity
from momento_botocore.breaker import CircuitBreaker
from momento_botocore.core.entries import EntryKind
from momento_botocore.counters import Stats
from momento_botocore.drivers.sync import SyncDriver as ReadHooks
from momento_botocore.pending import shared
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

__all__ = ["items"]  # the fixture, used by name


def registration_of(
    endpoint: str, cache: Backend, **settings: Any
) -> tuple[momento_botocore.Registration, Any]:
    config = CacheConfig(**{"ttl": 300, "tombstone_retry_interval": RETRY, **settings})
    session = new_session()
    registration = momento_botocore.register(session, backend=cache, config=config)
    return registration, session.client("dynamodb", endpoint_url=endpoint)


def client_of(endpoint: str, cache: Backend, **settings: Any) -> Any:
    return registration_of(endpoint, cache, **settings)[1]


def wait_until_tombstone(read: Any, is_tombstone: Any, what: str = "a") -> None:
    """Read through ``read`` until a retry has written the tombstone; every read
    along the way must be DynamoDB's new item."""
    deadline = time.monotonic() + 10
    while not is_tombstone():
        assert time.monotonic() < deadline, "the pending tombstone was never written"
        assert get(read, what) == item(what, "new")
        time.sleep(RETRY)


def test_a_write_whose_tombstone_failed_is_not_read_back_stale_through_another_registration(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()  # one cache (think: one Momento cache) shared by both
    writer = client_of(endpoint, cache)
    reader = client_of(endpoint, cache, tombstone_retry_interval=60)
    warm(reader, "a", "b")
    cache.down = True
    put(writer, "a")  # written to DynamoDB; its tombstone fails and is remembered
    cache.down = False
    assert kind_in(cache, "a") is EntryKind.ITEM  # the stale item is still there
    sent = RequestCounter(reader, "GetItem")
    assert get(reader, "a") == item("a", "new")
    assert get(reader, "b") == item("b", "old")  # another key: still a cache hit
    assert sent.count == 1
    assert counter("bypasses") == 1


def test_the_other_registration_retries_the_tombstone(endpoint: str, items: str) -> None:
    cache = FlakyCache()
    writer = client_of(endpoint, cache)
    reader = client_of(endpoint, cache)
    warm(reader, "a")
    cache.down = True
    put(writer, "a")
    cache.down = False
    wait_until_tombstone(reader, lambda: kind_in(cache, "a") is EntryKind.TOMBSTONE)
    assert counter("tombstones_pending") == 1
    assert counter("tombstones_retried") == 1


def test_pending_tombstones_survive_unregister_and_another_registration_writes_them(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()
    writing, writer = registration_of(endpoint, cache)
    reader = client_of(endpoint, cache)
    warm(reader, "a")
    cache.down = True
    put(writer, "a")
    writing.unregister()  # nothing of the writer will ever retry now
    cache.down = False
    sent = RequestCounter(reader, "GetItem")
    assert get(reader, "a") == item("a", "new")
    assert sent.count == 1
    wait_until_tombstone(reader, lambda: kind_in(cache, "a") is EntryKind.TOMBSTONE)
    assert counter("tombstones_retried") == 1


def test_registering_the_same_target_again_with_other_settings_keeps_what_is_pending(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()
    session = new_session()
    config = CacheConfig(ttl=300, tombstone_retry_interval=60)
    momento_botocore.register(session, backend=cache, config=config)
    client = session.client("dynamodb", endpoint_url=endpoint)
    warm(client, "a")
    cache.down = True
    put(client, "a")
    cache.down = False
    momento_botocore.register(session, backend=cache, config=config.replace(ttl=600))
    again = session.client("dynamodb", endpoint_url=endpoint)
    sent = RequestCounter(again, "GetItem")
    assert get(again, "a") == item("a", "new")
    assert sent.count == 1
    assert kind_in(cache, "a") is EntryKind.ITEM  # guarded, not retried yet (60 s)


def test_registrations_on_different_caches_stay_independent(endpoint: str, items: str) -> None:
    first, second = FlakyCache(), FlakyCache()
    writer = client_of(endpoint, first)
    other = client_of(endpoint, second)
    warm(writer, "a")
    warm(other, "a")
    first.down = True
    put(writer, "a")
    first.down = False
    sent = RequestCounter(other, "GetItem")
    assert get(other, "a") == item("a", "old")  # its own cache, which no write touched
    assert sent.count == 0
    time.sleep(RETRY * 2)
    get(other, "a")  # a retry here would have written a tombstone into `second`
    assert kind_in(second, "a") is EntryKind.ITEM
    assert kind_in(first, "a") is EntryKind.ITEM  # nobody in front of `first` read yet
    assert get(writer, "a") == item("a", "new")
    assert kind_in(first, "a") is EntryKind.TOMBSTONE


def test_two_momento_backends_on_one_cache_share_what_is_pending(
    endpoint: str, items: str, momento_server: LocalMomentoServer
) -> None:
    from momento_botocore.backends.momento import MomentoBackend

    provider = momento_server.credential_provider()
    momento_a = MomentoBackend(DEFAULT_CACHE, credential_provider=provider, request_timeout=1.0)
    momento_b = MomentoBackend(DEFAULT_CACHE, credential_provider=provider, request_timeout=1.0)
    writing_backend = CircuitBreakerBackend(momento_a, CircuitBreaker(3, cooldown=0.3))
    try:
        writing, writer = registration_of(endpoint, writing_backend)
        reader = client_of(endpoint, momento_b)
        warm(reader, "a")
        momento_server.stop()
        put(writer, "a")
        assert counter("tombstones_pending") == 1
        writing.unregister()
        momento_server.start()  # the old item is still stored there
        stored = momento_server.store.get
        key = cache_key_of("a").encode()
        assert kind_of(stored(DEFAULT_CACHE, key)) is EntryKind.ITEM
        sent = RequestCounter(reader, "GetItem")
        assert get(reader, "a") == item("a", "new")
        assert sent.count == 1
        wait_until_tombstone(
            reader, lambda: kind_of(stored(DEFAULT_CACHE, key)) is EntryKind.TOMBSTONE
        )
        assert counter("tombstones_retried") == 1
    finally:
        momento_server.start()
        writing_backend.close()
        momento_b.close()


def test_momento_backends_name_their_cache_by_endpoint_and_cache_name(
    momento_server: LocalMomentoServer,
) -> None:
    from momento_botocore.backends.momento import MomentoBackend

    provider = momento_server.credential_provider()
    made = [
        MomentoBackend(DEFAULT_CACHE, credential_provider=provider),
        MomentoBackend(DEFAULT_CACHE, credential_provider=provider),
        MomentoBackend("another-cache", credential_provider=provider),
    ]
    try:
        same, twin, other = made
        assert cache_identity(same) == cache_identity(twin)
        assert cache_identity(same) == ("momento", momento_server.endpoint, DEFAULT_CACHE)
        assert cache_identity(other) != cache_identity(same)
        assert cache_identity(CircuitBreakerBackend(same)) == cache_identity(twin)
    finally:
        for backend in made:
            backend.close()


def test_a_breaker_in_front_of_a_memory_backend_is_the_same_cache_as_the_backend() -> None:
    memory = MemoryBackend()
    assert cache_identity(CircuitBreakerBackend(memory)) == cache_identity(memory)
    assert cache_identity(MemoryBackend()) != cache_identity(memory)
    config = CacheConfig(ttl=60)
    assert (
        ReadHooks(config, memory).pending
        is ReadHooks(config, CircuitBreakerBackend(memory)).pending
    )


def test_shared_settings_take_the_largest_limit_and_the_shortest_interval() -> None:
    identity = ("test", "settings")
    first = shared(identity, max_keys=10, retry_interval=5.0)
    second = shared(identity, max_keys=3, retry_interval=0.5)
    third = shared(identity, max_keys=50, retry_interval=2.0)
    assert first is second is third
    assert (first.max_keys, first.retry_interval) == (50, 0.5)
    assert shared(("test", "elsewhere"), max_keys=3).max_keys == 3


def test_counters_go_to_the_stats_of_the_registration_that_acted(endpoint: str, items: str) -> None:
    cache = FlakyCache()
    # Hooks installed by hand: no client to ask DescribeTable (or STS), so the key
    # schema and the account are given.
    config = CacheConfig(
        ttl=300,
        tombstone_retry_interval=RETRY,
        key_schemas={"items": ("pk",)},
        account_id="123456789012",
    )
    stats_of_writer, stats_of_reader = Stats(), Stats()
    clients = []
    for stats in (stats_of_writer, stats_of_reader):
        client = new_session().client("dynamodb", endpoint_url=endpoint)
        ReadHooks(config, cache, stats=stats).install(client.meta.events)
        clients.append(client)
    writer, reader = clients
    warm(reader, "a")
    cache.down = True
    put(writer, "a")
    cache.down = False
    wait_until_tombstone(reader, lambda: kind_in(cache, "a") is EntryKind.TOMBSTONE)
    assert stats_of_writer.snapshot()["items"]["tombstones_pending"] == 1
    assert "tombstones_retried" not in stats_of_writer.snapshot()["items"]
    assert stats_of_reader.snapshot()["items"]["tombstones_retried"] == 1


def test_the_memory_of_a_dropped_backend_is_freed() -> None:
    backend = MemoryBackend()
    pending = weakref.ref(ReadHooks(CacheConfig(ttl=60), backend).pending)
    gc.collect()
    assert pending() is not None, "kept while its backend lives"
    del backend
    gc.collect()
    assert pending() is None


class _Unreferenceable:
    """A backend that cannot be weakly referenced (``__slots__`` without ``__weakref__``)."""

    __slots__ = ("inner",)

    def __init__(self) -> None:
        self.inner = MemoryBackend()

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self.inner.add(key, value, ttl_seconds)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.inner.set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()


def test_a_backend_that_cannot_be_weakly_referenced_gets_an_unshared_memory() -> None:
    backend = _Unreferenceable()
    with pytest.raises(TypeError):
        weakref.ref(backend)
    config = CacheConfig(ttl=60)
    first, second = ReadHooks(config, backend), ReadHooks(config, backend)
    assert first.pending is not second.pending  # as before: per registration, never leaked


class _Misnamed(MemoryBackend):
    """A backend whose cache_identity() is broken (unhashable)."""

    def cache_identity(self) -> Any:
        return ["not", "hashable"]


def test_a_backend_with_a_broken_cache_identity_is_its_own_cache(endpoint: str, items: str) -> None:
    cache = _Misnamed()
    config = CacheConfig(ttl=60)
    assert ReadHooks(config, cache).pending is ReadHooks(config, cache).pending
    assert ReadHooks(config, cache).pending is not ReadHooks(config, _Misnamed()).pending
    client = client_of(endpoint, cache)
    warm(client, "a")  # registering and reading work as usual
