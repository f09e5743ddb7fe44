"""The async backends (for aiobotocore): the AsyncBackend protocol and its bulk helpers,
AsyncMemoryBackend over a shared MemoryBackend, AsyncMomentoBackend on the caller's
event loop (the real SDK against the local Momento-protocol server), the async circuit
breaker and create_async_backend.

The backend contract (order, absence, TTLs, bulk writes) runs over the async backends
in test_backend_contract.py; these are what only async backends have.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import grpc
import pytest
from momento.config import Configuration
from momento.config.transport.transport_strategy import (
    StaticGrpcConfiguration,
    StaticTransportStrategy,
)

from momento_botocore import CacheConfig, ConfigurationError
from momento_botocore.backends import (
    AsyncBackend,
    AsyncCircuitBreakerBackend,
    AsyncMemoryBackend,
    BackendError,
    CircuitBreakerBackend,
    CircuitOpenError,
    MemoryBackend,
    cache_identity,
)
from momento_botocore.backends._momento_common import OneRetryWithinDeadline
from momento_botocore.backends.base import (
    UNREADABLE,
    CounterEntry,
    Entry,
    NotACounterError,
    async_bulk_add,
    async_bulk_incr,
    async_bulk_set,
)
from momento_botocore.backends.factory import create_async_backend
from momento_botocore.backends.momento import MomentoBackend
from momento_botocore.backends.momento_async import AsyncMomentoBackend
from momento_botocore.backends.near import AsyncNearCacheBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.drivers.aio import ThreadedAsyncBackend
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

T = TypeVar("T")
KEYS = [f"key-{n}" for n in range(100)]


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def momento(server: LocalMomentoServer, **kwargs: Any) -> AsyncMomentoBackend:
    kwargs.setdefault("request_timeout", 2.0)  # healthy calls never time out on a busy machine
    return AsyncMomentoBackend(
        str(kwargs.pop("cache", DEFAULT_CACHE)),
        credential_provider=server.credential_provider(),
        **kwargs,
    )


def filled(server: LocalMomentoServer, keys: list[str] = KEYS) -> None:
    for key in keys:
        server.put_raw(key, key.encode())


def small_receive_limit(limit: int) -> Configuration:
    transport = StaticTransportStrategy(
        StaticGrpcConfiguration(deadline=timedelta(seconds=2), max_receive_message_length=limit)
    )
    return Configuration(transport, OneRetryWithinDeadline())


# The protocol and its helpers ---------------------------------------------------------------


class Refusing:
    """add_many/set_many raise, or answer the wrong number of results."""

    def __init__(self, *, wrong_length: bool = False) -> None:
        self.wrong_length = wrong_length

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        if self.wrong_length:
            return [True]
        raise BackendError("down")

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        if self.wrong_length:
            return []
        raise BackendError("down")

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        if self.wrong_length:
            return [1]
        raise BackendError("down")


def test_the_async_backends_are_async_backends(momento_server: LocalMomentoServer) -> None:
    memory = AsyncMemoryBackend(MemoryBackend())
    remote = momento(momento_server)
    for backend in (memory, remote, AsyncCircuitBreakerBackend(remote)):
        assert isinstance(backend, AsyncBackend)
        names = ("get", "get_many", "add", "set", "delete", "add_many", "set_many", "close")
        for name in (*names, "incr", "incr_many"):
            assert asyncio.iscoroutinefunction(getattr(backend, name)), name
        assert not asyncio.iscoroutinefunction(backend.cache_identity)
    run(remote.close())


def test_async_bulk_helpers_never_raise() -> None:
    entries = [("a", b"v", 60.0), ("b", b"v", 60.0)]
    refusing: Any = Refusing()
    added = run(async_bulk_add(refusing, entries))
    assert len(added) == 2
    assert all(isinstance(e, BackendError) for e in added)
    written = run(async_bulk_set(refusing, entries))
    assert len(written) == 2
    assert all(isinstance(e, BackendError) for e in written)
    wrong: Any = Refusing(wrong_length=True)
    for outcome in (run(async_bulk_add(wrong, entries)), run(async_bulk_set(wrong, entries))):
        assert len(outcome) == 2
        assert all(isinstance(e, BackendError) for e in outcome)
        assert "results for 2 entries" in str(outcome[0])
    assert run(async_bulk_add(refusing, [])) == [] == run(async_bulk_set(refusing, []))
    memory = AsyncMemoryBackend(MemoryBackend())
    assert run(async_bulk_set(memory, entries)) == [None, None]
    assert run(async_bulk_add(memory, [("a", b"w", 60.0), ("c", b"w", 60.0)])) == [False, True]
    bad_ttl = run(async_bulk_add(memory, [("d", b"v", 60.0), ("e", b"v", 0.0)]))
    assert all(isinstance(error, ValueError) for error in bad_ttl)


def test_async_bulk_incr_never_raises() -> None:
    entries = [("a", 60.0), ("b", 60.0)]
    for backend in (Refusing(), Refusing(wrong_length=True)):
        refusing: Any = backend
        counted = run(async_bulk_incr(refusing, entries))
        assert len(counted) == 2
        assert all(isinstance(error, BackendError) for error in counted)
    assert run(async_bulk_incr(Refusing(), [])) == []
    memory = AsyncMemoryBackend(MemoryBackend())
    assert run(async_bulk_incr(memory, [*entries, ("a", 60.0)])) == [1, 1, 2]
    bad_ttl = run(async_bulk_incr(memory, [("a", 60.0), ("c", 0.0)]))
    assert all(isinstance(error, ValueError) for error in bad_ttl)
    assert run(memory.get("a")) == b"2"  # the bad TTL counted nothing


def test_a_blocking_backend_counts_in_worker_threads() -> None:
    class NoCounters:
        get = MemoryBackend.get

    async def main() -> None:
        memory = MemoryBackend()
        threaded = ThreadedAsyncBackend(memory)
        assert [await threaded.incr("g", 60) for _ in range(2)] == [1, 2]
        assert await threaded.incr_many([("g", 60.0), ("h", 60.0)]) == [3, 1]
        memory.set("bad", b"x", 60)
        with pytest.raises(NotACounterError):
            await threaded.incr("bad", 60)
        plain: Any = NoCounters()
        without = ThreadedAsyncBackend(plain)
        with pytest.raises(BackendError, match="keeps no counters"):
            await without.incr("g", 60)
        outcome = await without.incr_many([("g", 60.0)])  # never raises (bulk_incr)
        assert isinstance(outcome[0], BackendError)

    run(main())


# AsyncMemoryBackend ---------------------------------------------------------------------------


def test_a_sync_and_an_async_memory_backend_share_one_store_and_one_identity() -> None:
    memory = MemoryBackend()
    shared = AsyncMemoryBackend(memory)
    memory.set("a", b"from sync", 60)
    assert run(shared.get("a")) == b"from sync"
    assert run(shared.add("b", b"from async", 60)) is True
    assert memory.get("b") == b"from async"
    assert memory.add("b", b"fill", 60) is False
    run(shared.delete("a"))
    assert memory.get("a") is None
    assert shared.cache_identity() == cache_identity(memory) == memory.cache_identity()
    assert shared.cache_identity() == cache_identity(CircuitBreakerBackend(memory))
    assert shared.cache_identity() != AsyncMemoryBackend(MemoryBackend()).cache_identity()
    run(shared.close())  # the store belongs to whoever made it
    assert memory.get("b") == b"from async"
    run(AsyncMemoryBackend(memory, close_memory=True).close())
    assert len(memory) == 0


# AsyncMomentoBackend ----------------------------------------------------------------------------


def test_it_names_the_cache_the_sync_backend_names_and_shares_its_entries(
    momento_server: LocalMomentoServer,
) -> None:
    remote, sync = (
        momento(momento_server),
        MomentoBackend(DEFAULT_CACHE, credential_provider=momento_server.credential_provider()),
    )
    assert remote.cache_identity() == sync.cache_identity()
    assert hash(remote.cache_identity()) == hash(sync.cache_identity())
    momento_server.store.create("other")
    assert momento(momento_server, cache="other").cache_identity() != sync.cache_identity()

    async def main() -> None:
        sync.set("a", b"from sync", 60)
        assert await remote.get("a") == b"from sync"
        assert await remote.add("a", b"fill", 60) is False
        await remote.set("b", b"from async", 60)
        assert sync.get("b") == b"from async"
        await remote.close()

    run(main())
    sync.close()


def test_get_many_is_one_get_batch_call(momento_server: LocalMomentoServer) -> None:
    filled(momento_server, KEYS[::2])
    backend = momento(momento_server)
    expected = [key.encode() if n % 2 == 0 else None for n, key in enumerate(KEYS)]

    async def main() -> None:
        assert await backend.get_many(KEYS) == expected
        assert await backend.get_many([f"k{n}" for n in range(250)]) == [None] * 250
        await backend.close()

    run(main())
    assert momento_server.calls("GetBatch") == 4
    assert momento_server.calls("Get") == 0


def test_one_key_at_a_time_the_lookups_are_concurrent_tasks(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = momento(momento_server, use_get_batch=False)
    momento_server.delay("Get", seconds=0.1)

    async def main() -> float:
        started = time.perf_counter()
        assert await backend.get_many(KEYS[:16]) == [key.encode() for key in KEYS[:16]]
        took = time.perf_counter() - started
        await backend.close()
        return took

    assert run(main()) < 1.0  # one after another: at least 1.6 s
    assert momento_server.calls("Get") == 16


def test_a_server_without_get_batch_is_read_one_key_at_a_time(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = momento(momento_server)
    momento_server.fail("GetBatch", code=grpc.StatusCode.UNIMPLEMENTED)

    async def main() -> None:
        assert await backend.get_many(KEYS) == [key.encode() for key in KEYS]
        assert await backend.get_many(KEYS[:3]) == [key.encode() for key in KEYS[:3]]
        await backend.close()

    run(main())
    assert backend.use_get_batch is False
    assert (momento_server.calls("GetBatch"), momento_server.calls("Get")) == (1, 103)


@pytest.mark.parametrize("rpc", ["GetBatch", "Get"])
def test_a_stalled_lookup_fails_after_about_one_deadline(
    momento_server: LocalMomentoServer, rpc: str
) -> None:
    filled(momento_server)
    backend = momento(momento_server, request_timeout=0.3, use_get_batch=rpc == "GetBatch")

    async def main() -> tuple[BaseException, float]:
        await backend.get("warm-up")
        momento_server.delay(rpc, seconds=5.0)
        started = time.perf_counter()
        with pytest.raises(BackendError, match="TIMEOUT") as raised:
            await backend.get_many(KEYS)
        took = time.perf_counter() - started
        momento_server.clear_faults()
        await backend.close()
        return raised.value, took

    _, took = run(main())
    assert took < 1.5  # the deadline decides (0.3 s), not the server (5 s)


def test_a_server_that_is_down_is_a_backend_error_at_once() -> None:
    server = LocalMomentoServer().start()
    server.stop()
    backend = momento(server)

    async def main() -> None:
        started = time.perf_counter()
        for call in (
            lambda: backend.get("k"),
            lambda: backend.get_many(KEYS),
            lambda: backend.add("k", b"v", 60),
            lambda: backend.set("k", b"v", 60),
            lambda: backend.delete("k"),
        ):
            with pytest.raises(BackendError, match="SERVER_UNAVAILABLE"):
                await call()
        assert time.perf_counter() - started < 2.0 * 5  # no call waited out its deadline
        outcome = await backend.set_many([("a", b"v", 60.0), ("b", b"v", 60.0)])
        assert all(isinstance(error, BackendError) for error in outcome)
        await backend.close()

    run(main())


def test_one_transient_failure_is_retried_within_the_deadline(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento(momento_server)

    async def main() -> None:
        await backend.set("k", b"v", 60)
        momento_server.fail("Get", code=grpc.StatusCode.UNAVAILABLE, times=1)
        assert await backend.get("k") == b"v"
        momento_server.fail("GetBatch", code=grpc.StatusCode.INTERNAL, times=1)
        assert await backend.get_many(["k", "j"]) == [b"v", None]
        await backend.close()

    run(main())
    assert (momento_server.calls("Get"), momento_server.calls("GetBatch")) == (2, 2)


def test_an_unknown_cache_is_an_error_on_every_operation(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento(momento_server, cache="no-such-cache")

    async def main() -> None:
        for call in (
            lambda: backend.get("k"),
            lambda: backend.get_many(["k", "j"]),
            lambda: backend.add("k", b"v", 60),
            lambda: backend.set("k", b"v", 60),
            lambda: backend.delete("k"),
        ):
            with pytest.raises(BackendError, match="NOT_FOUND_ERROR"):
                await call()
        await backend.close()

    run(main())


def test_limits_oversized_entries_and_unreadable_values(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento(momento_server, max_item_bytes=1000, configuration=small_receive_limit(2000))
    momento_server.put_raw("big", b"x" * 5000)

    async def main() -> None:
        assert await backend.add("large", b"x" * 1000, 60) is False
        assert await backend.add("small", b"x" * 10, 60) is True
        await backend.set("small", b"y" * 1000, 60)  # too large: the key is deleted instead
        assert await backend.get("small") is None
        assert await backend.get("big") is UNREADABLE
        assert await backend.get_many(["a", "big", "a"]) == [None, UNREADABLE, None]
        await backend.close()

    run(main())
    assert momento_server.get_raw("large") is None
    assert (backend.oversized, backend.unreadable) == (2, 2)


def test_each_event_loop_gets_its_own_client(momento_server: LocalMomentoServer) -> None:
    backend = momento(momento_server)
    ready, finish = threading.Barrier(3), threading.Event()
    answers: list[object] = []

    def in_a_thread(n: int) -> None:
        async def main() -> None:
            await backend.set(f"t{n}", str(n).encode(), 60)
            answers.append(await backend.get_many([f"t{n}", "nothing"]))
            ready.wait(10)
            finish.wait(10)

        asyncio.run(main())

    threads = [threading.Thread(target=in_a_thread, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    ready.wait(10)
    assert len(backend._clients) == 2  # two loops alive, a client each
    finish.set()
    for thread in threads:
        thread.join(10)
    assert sorted(map(str, answers)) == ["[b'0', None]", "[b'1', None]"]
    # Loops that are gone are forgotten when a new loop comes.
    assert run(backend.get("t0")) == b"0"
    assert len(backend._clients) == 1
    run(backend.close())


def test_after_close_every_call_fails(momento_server: LocalMomentoServer) -> None:
    backend = momento(momento_server)

    async def main() -> None:
        await backend.set("k", b"v", 60)
        await backend.close()
        for call in (
            lambda: backend.get("k"),
            lambda: backend.get_many(["k", "j"]),
            lambda: backend.add("k", b"v", 60),
        ):
            with pytest.raises(BackendError, match="closed"):
                await call()
        outcome = await backend.set_many([("k", b"v", 60.0)])  # per entry, as ever
        assert isinstance(outcome[0], BackendError)
        assert "closed" in str(outcome[0])

    run(main())


def test_bulk_writes_go_out_concurrently_and_a_stall_costs_one_deadline(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento(momento_server, request_timeout=0.3)
    entries = [(f"k{n}", b"v", 60.0) for n in range(16)]

    async def main() -> None:
        await backend.get("warm-up")
        momento_server.delay("Set", seconds=0.1)
        started = time.perf_counter()
        assert await backend.set_many(entries) == [None] * 16
        assert time.perf_counter() - started < 1.0  # one after another: 1.6 s
        momento_server.delay("SetIfNotExists", seconds=5.0)
        started = time.perf_counter()
        outcome = await backend.add_many([(f"j{n}", b"v", 60.0) for n in range(100)])
        assert time.perf_counter() - started < 1.5  # about one deadline, not one per wave
        assert all(isinstance(error, BackendError) for error in outcome)
        momento_server.clear_faults()
        await backend.close()

    run(main())


# The async circuit breaker --------------------------------------------------------------------


class Broken:
    """An AsyncBackend over memory that fails while ``broken``, counting calls."""

    def __init__(self) -> None:
        self.memory = AsyncMemoryBackend(MemoryBackend())
        self.broken = False
        self.calls = 0

    async def _go(self, call: Awaitable[T]) -> T:
        self.calls += 1
        if self.broken:
            if asyncio.iscoroutine(call):
                call.close()
            raise BackendError("down")
        return await call

    async def get(self, key: str) -> bytes | None:
        return await self._go(self.memory.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._go(self.memory.get_many(keys))

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return await self._go(self.memory.add(key, value, ttl_seconds))

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._go(self.memory.set(key, value, ttl_seconds))

    async def delete(self, key: str) -> None:
        await self._go(self.memory.delete(key))

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        return await self._go(self.memory.add_many(entries))

    async def incr(self, key: str, ttl_seconds: float) -> int:
        return await self._go(self.memory.incr(key, ttl_seconds))

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        return await self._go(self.memory.incr_many(entries))

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        if self.broken:  # per entry, as a bulk write answers a partial failure
            self.calls += 1
            return [BackendError("down")] + [None] * (len(entries) - 1)
        return await self._go(self.memory.set_many(entries))

    async def close(self) -> None:
        await self.memory.close()

    def cache_identity(self) -> object:
        return self.memory.cache_identity()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_async_breaker_opens_refuses_without_a_call_and_probes() -> None:
    clock = Clock()
    inner = Broken()
    backend = AsyncCircuitBreakerBackend(inner, CircuitBreaker(2, 5.0, clock=clock))

    async def main() -> None:
        assert await backend.add("k", b"v", 60) is True
        inner.broken = True
        with pytest.raises(BackendError, match="down"):
            await backend.get_many(["k", "j"])  # one call, one failure
        assert backend.breaker.state is BreakerState.CLOSED
        assert await backend.get_many([]) == []  # no call: nothing for the breaker
        outcome = await backend.set_many([("a", b"v", 60.0), ("b", b"v", 60.0)])
        assert isinstance(outcome[0], BackendError)
        assert outcome[1] is None
        assert backend.breaker.state is BreakerState.OPEN  # the partial failure counted
        calls = inner.calls
        for call in (
            lambda: backend.get("k"),
            lambda: backend.add_many([("a", b"v", 60.0)]),
            lambda: backend.delete("k"),
        ):
            with pytest.raises(CircuitOpenError):
                await call()
        assert inner.calls == calls
        inner.broken = False
        clock.now += 5
        assert await backend.get("k") == b"v"  # the probe
        assert backend.breaker.state is BreakerState.CLOSED
        assert backend.cache_identity() == inner.cache_identity()
        await backend.close()

    run(main())


def test_counters_through_the_async_breaker_a_value_that_is_not_one_is_an_answer() -> None:
    clock = Clock()
    inner = Broken()
    backend = AsyncCircuitBreakerBackend(inner, CircuitBreaker(2, 5.0, clock=clock))

    async def main() -> None:
        assert await backend.incr("g", 60) == 1
        assert await backend.incr_many([("g", 60.0), ("h", 60.0)]) == [2, 1]
        await backend.set("garbage", b"x", 60)
        for _ in range(3):
            with pytest.raises(NotACounterError):
                await backend.incr("garbage", 60)
            outcome = await backend.incr_many([("garbage", 60.0)])
            assert isinstance(outcome[0], NotACounterError)
        assert backend.breaker.state is BreakerState.CLOSED
        inner.broken = True
        with pytest.raises(BackendError, match="down"):
            await backend.incr("g", 60)
        with pytest.raises(BackendError, match="down"):
            await backend.incr_many([("g", 60.0)])
        assert backend.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await backend.incr("g", 60)
        assert await backend.incr_many([]) == []  # no call: nothing for the breaker
        inner.broken = False
        clock.now += 5
        assert await backend.incr("g", 60) == 3  # the probe
        assert backend.breaker.state is BreakerState.CLOSED

    run(main())


def test_the_async_breaker_in_front_of_momento_counts_a_failed_lookup_once(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    breaker = CircuitBreaker(2, 60.0)
    backend = AsyncCircuitBreakerBackend(momento(momento_server), breaker)
    momento_server.fail("GetBatch", code=grpc.StatusCode.INTERNAL)

    async def main() -> None:
        with pytest.raises(BackendError, match="INTERNAL"):
            await backend.get_many(KEYS)
        assert breaker.state is BreakerState.CLOSED
        with pytest.raises(BackendError, match="INTERNAL"):
            await backend.get_many(KEYS)
        assert breaker.state is BreakerState.OPEN
        momento_server.reset()
        with pytest.raises(CircuitOpenError):
            await backend.get_many(KEYS)
        await backend.close()

    run(main())
    assert momento_server.calls() == 0


# create_async_backend ---------------------------------------------------------------------------


def test_the_factory_makes_memory_backends_shared_or_their_own() -> None:
    config = CacheConfig(ttl=60, memory_max_entries=10)
    memory = MemoryBackend()
    shared = create_async_backend(config, shared_memory=memory)
    assert isinstance(shared, AsyncMemoryBackend)
    assert shared.memory is memory
    assert shared.cache_identity() == cache_identity(memory)
    own = create_async_backend(config)
    assert isinstance(own, AsyncMemoryBackend)
    assert own.memory is not memory

    async def main() -> None:
        await own.set_many([(f"k{n}", b"v", 60.0) for n in range(20)])
        assert len(own.memory) == 10  # the configured size
        await own.close()
        assert len(own.memory) == 0  # its own store: emptied
        await shared.set("k", b"v", 60)
        await shared.close()

    run(main())
    assert memory.get("k") == b"v"


def test_the_factory_puts_momento_behind_a_breaker(momento_server: LocalMomentoServer) -> None:
    config = CacheConfig(
        ttl=60,
        backend="momento",
        momento_cache_name=DEFAULT_CACHE,
        breaker_failures=3,
        breaker_cooldown=2.5,
    )
    near = create_async_backend(config, credential_provider=momento_server.credential_provider())
    assert isinstance(near, AsyncNearCacheBackend)  # publishing invalidations (the default)
    asyncio.run(near.close())
    config = config.replace(invalidation_topic="")
    backend = create_async_backend(config, credential_provider=momento_server.credential_provider())
    assert isinstance(backend, AsyncCircuitBreakerBackend)
    assert isinstance(backend.backend, AsyncMomentoBackend)
    assert (backend.breaker.failure_threshold, backend.breaker.cooldown) == (3, 2.5)
    sync = MomentoBackend(DEFAULT_CACHE, credential_provider=momento_server.credential_provider())
    assert backend.cache_identity() == sync.cache_identity()

    async def main() -> None:
        await backend.set("k", b"v", 60)
        await backend.close()

    run(main())
    assert momento_server.get_raw("k") == b"v"
    sync.close()


def test_the_factory_reaches_a_local_server_through_momento_endpoint(
    momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOMENTO_API_KEY", raising=False)
    monkeypatch.setenv("MOMENTO_ENDPOINT", f"http://{momento_server.endpoint}")
    monkeypatch.setenv("MOMENTO_CACHE_NAME", DEFAULT_CACHE)
    backend = create_async_backend(CacheConfig(ttl=60, backend="momento"))

    async def main() -> None:
        await backend.set("k", b"v", 60)
        assert await backend.get_many(["k", "j"]) == [b"v", None]
        await backend.close()

    run(main())
    assert momento_server.get_raw("k") == b"v"


def test_the_factory_refuses_bad_momento_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOMENTO_API_KEY", "MOMENTO_ENDPOINT", "MOMENTO_CACHE_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="MOMENTO_CACHE_NAME"):
        create_async_backend(CacheConfig(ttl=60, backend="momento"))
    with pytest.raises(ConfigurationError, match="MOMENTO_API_KEY"):
        create_async_backend(CacheConfig(ttl=60, backend="momento", momento_cache_name="c"))
