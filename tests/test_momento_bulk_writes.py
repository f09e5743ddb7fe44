"""Cache writes of a batch are bounded as its lookups are: with Momento stalled, the
fills of a BatchGetItem and the tombstones of a BatchWriteItem (or the refreshes of
a stream batch) cost about one deadline together, not one per key.

Real components: moto's server for DynamoDB, the real momento SDK over gRPC to the
local Momento-protocol server, which stalls the calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session
from stream_records import lambda_record

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import Backend, BackendError, CircuitBreakerBackend
from momento_botocore.backends.momento import DEFAULT_MAX_CONCURRENCY, MomentoBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import StreamInvalidator
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

DEADLINE = 0.3  # the backends' request timeout here
STALL = 5.0  # how long the server holds a stalled call
RETRY = 0.05  # tombstone_retry_interval
TABLES = ("users", "orders")
KINDS = ("bare", "breaker")


def momento(server: LocalMomentoServer, timeout: float = DEADLINE) -> MomentoBackend:
    backend = MomentoBackend(
        DEFAULT_CACHE, credential_provider=server.credential_provider(), request_timeout=timeout
    )
    backend.get("warm-up")  # connected: the timings below are not the first connection's
    return backend


def backend_of_kind(kind: str, server: LocalMomentoServer) -> Backend:
    """A bare MomentoBackend, or one behind the default circuit breaker."""
    bare = momento(server)
    return bare if kind == "bare" else CircuitBreakerBackend(bare, CircuitBreaker())


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def item(pk: str, v: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "v": {"S": v}}


def plain_client(endpoint: str) -> Any:
    return new_session().client("dynamodb", endpoint_url=endpoint)


def cached_client(endpoint: str, backend: Backend) -> Any:
    session = new_session()
    config = CacheConfig(ttl=300, tombstone_retry_interval=RETRY)
    momento_botocore.register(session, config=config, backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def stat(table: str, name: str) -> int:
    return momento_botocore.stats().get(table, {}).get(name, 0)


def kind_stored(server: LocalMomentoServer, table: str, pk: str) -> EntryKind | None:
    raw = server.get_raw(cache_key(ACCOUNT, REGION, table, key(pk), binary_text="utf-8"))
    entry = None if raw is None else decode(raw)
    return None if entry is None else entry.kind


@pytest.fixture
def tables(endpoint: str) -> None:
    """Two tables; half of the 50 keys read from each exist, half do not."""
    client = plain_client(endpoint)
    for table in TABLES:
        create_table(client, table)
        for start in range(0, 50, 25):
            puts = [
                {"PutRequest": {"Item": item(f"k{n}", "old")}} for n in range(start, start + 25)
            ]
            client.batch_write_item(RequestItems={table: puts[::2]})


def hundred_keys() -> dict[str, Any]:
    return {table: {"Keys": [key(f"k{n}") for n in range(50)]} for table in TABLES}


def answer_of(response: dict[str, Any]) -> dict[str, list[str]]:
    return {
        table: sorted(found["pk"]["S"] + found["v"]["S"] for found in items)
        for table, items in response["Responses"].items()
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_get_of_100_misses_with_fills_stalled_costs_about_one_deadline(
    endpoint: str, tables: None, momento_server: LocalMomentoServer, kind: str
) -> None:
    plain = plain_client(endpoint)
    plain.batch_get_item(RequestItems=hundred_keys())  # warm: the timing is the call alone
    expected, uncached = timed(lambda: plain.batch_get_item(RequestItems=hundred_keys()))
    backend = backend_of_kind(kind, momento_server)
    client = cached_client(endpoint, backend)
    momento_server.delay("SetIfNotExists", seconds=STALL)
    answer, took = timed(lambda: client.batch_get_item(RequestItems=hundred_keys()))
    print(
        f"\n{kind}: BatchGetItem of 100 misses, fills stalled: {took * 1000:.0f} ms "
        f"(uncached {uncached * 1000:.0f} ms, deadline {DEADLINE * 1000:.0f} ms)"
    )
    assert answer_of(answer) == answer_of(expected)
    assert took - uncached < 3 * DEADLINE  # one add per key, one after another: 30 s
    # Both tables' fills in one bulk write: one wave of stalled calls, the rest not tried.
    assert momento_server.calls("SetIfNotExists") <= DEFAULT_MAX_CONCURRENCY
    for table in TABLES:
        assert stat(table, "errors") == 50  # every fill counted, as one by one
        assert stat(table, "fills") == 0
    if isinstance(backend, CircuitBreakerBackend):
        assert backend.breaker.state is BreakerState.CLOSED  # one failure, not one per key
    momento_server.clear_faults()
    client.batch_get_item(RequestItems=hundred_keys())  # fills what is missing now
    sent = RequestCounter(client, "BatchGetItem")
    assert answer_of(client.batch_get_item(RequestItems=hundred_keys())) == answer_of(expected)
    assert sent.count == 0  # all 100 served from the cache
    backend.close()


def batch_put(client: Any, pks: list[str], v: str) -> None:
    puts = [{"PutRequest": {"Item": item(pk, v)}} for pk in pks]
    answer = client.batch_write_item(RequestItems={"users": puts})
    assert answer["UnprocessedItems"] == {}


def read_users(client: Any, pks: list[str]) -> dict[str, str]:
    answer = client.batch_get_item(RequestItems={"users": {"Keys": [key(pk) for pk in pks]}})
    return {found["pk"]["S"]: found["v"]["S"] for found in answer["Responses"]["users"]}


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_write_of_25_items_with_tombstones_stalled_costs_about_one_deadline(
    endpoint: str, tables: None, momento_server: LocalMomentoServer, kind: str
) -> None:
    pks = [f"k{n}" for n in range(0, 50, 2)]  # 25 items that exist
    plain = plain_client(endpoint)
    batch_put(plain, pks, "old")  # warm: the timing is the call alone
    _, uncached = timed(lambda: batch_put(plain, pks, "old"))
    backend = backend_of_kind(kind, momento_server)
    client = cached_client(endpoint, backend)
    read_users(client, pks)  # cached: the old items are in Momento
    assert all(kind_stored(momento_server, "users", pk) is EntryKind.ITEM for pk in pks)
    momento_server.delay("Set", seconds=STALL)
    _, took = timed(lambda: batch_put(client, pks, "new"))
    print(
        f"\n{kind}: BatchWriteItem of 25 items, tombstones stalled: {took * 1000:.0f} ms "
        f"(uncached {uncached * 1000:.0f} ms, deadline {DEADLINE * 1000:.0f} ms)"
    )
    assert took - uncached < 3 * DEADLINE  # one set per key, one after another: 7.5 s
    assert momento_server.calls("Set") <= DEFAULT_MAX_CONCURRENCY
    assert stat("users", "tombstones_pending") == 25  # none lost
    assert stat("users", "errors") == 25
    assert stat("users", "invalidations") == 0
    # The old items are still in Momento, but reads of those keys skip the cache.
    sent = RequestCounter(client, "BatchGetItem")
    assert read_users(client, pks) == dict.fromkeys(pks, "new")
    assert sent.count == 1
    momento_server.clear_faults()
    deadline = time.monotonic() + 20
    while stat("users", "tombstones_retried") < 25:  # the next reads retry them
        assert time.monotonic() < deadline, "the pending tombstones were never written"
        time.sleep(RETRY)
        assert read_users(client, pks) == dict.fromkeys(pks, "new")
    assert all(kind_stored(momento_server, "users", pk) is EntryKind.TOMBSTONE for pk in pks)
    assert read_users(client, pks) == dict.fromkeys(pks, "new")
    backend.close()


def test_a_failed_bulk_write_counts_once_and_an_open_breaker_refuses_without_a_call(
    momento_server: LocalMomentoServer,
) -> None:
    breaker = CircuitBreaker(2, 60.0)
    backend = CircuitBreakerBackend(momento(momento_server, timeout=2.0), breaker)
    entries = [(f"k{n}", b"v", 60.0) for n in range(100)]
    momento_server.fail("Set", code=grpc.StatusCode.INTERNAL)
    outcome = backend.set_many(entries)
    assert all(isinstance(error, BackendError) for error in outcome)
    assert "INTERNAL" in str(outcome[0])
    assert breaker.state is BreakerState.CLOSED  # one failure, not one per key
    momento_server.fail("SetIfNotExists", code=grpc.StatusCode.INTERNAL)
    assert all(isinstance(error, BackendError) for error in backend.add_many(entries))
    assert breaker.state is BreakerState.OPEN
    momento_server.reset()
    with pytest.raises(BackendError, match="circuit breaker is open"):
        backend.set_many(entries)
    assert momento_server.calls() == 0
    backend.close()


def test_a_healthy_bulk_write_through_the_breaker_is_one_success(
    momento_server: LocalMomentoServer,
) -> None:
    breaker = CircuitBreaker(2, 60.0)
    backend = CircuitBreakerBackend(momento(momento_server, timeout=2.0), breaker)
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError):
        backend.get("k")
    momento_server.clear_faults()
    assert backend.set_many([(f"k{n}", b"v", 60.0) for n in range(50)]) == [None] * 50
    assert (
        backend.add_many([(f"k{n}", b"w", 60.0) for n in range(40, 60)])
        == [False] * 10 + [True] * 10
    )
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError):
        backend.get("k")
    assert breaker.state is BreakerState.CLOSED  # the bulk writes broke the run of failures
    backend.close()


def test_bulk_writes_go_out_concurrently(momento_server: LocalMomentoServer) -> None:
    backend = momento(momento_server, timeout=2.0)
    momento_server.delay("Set", "SetIfNotExists", seconds=0.1)
    entries = [(f"k{n}", b"v", 60.0) for n in range(16)]
    outcome, took = timed(lambda: backend.set_many(entries))
    assert outcome == [None] * 16
    assert took < 1.0  # one after another: at least 1.6 s
    outcome, took = timed(lambda: backend.add_many(entries))
    assert outcome == [False] * 16
    assert took < 1.0
    backend.close()


def test_a_stream_batch_with_writes_stalled_costs_about_one_deadline_and_is_retried(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento(momento_server)
    invalidator = StreamInvalidator(CacheConfig(ttl=300), backend)
    records = [
        lambda_record("MODIFY", key(f"k{n}"), new=item(f"k{n}", "new"), old=item(f"k{n}", "old"))
        for n in range(50)
    ]
    momento_server.delay("Set", seconds=STALL)
    result, took = timed(lambda: invalidator.process(records))
    print(f"\nstream batch of 50 records, writes stalled: {took * 1000:.0f} ms")
    assert took < 3 * DEADLINE  # one set per record, one after another: 15 s
    assert len(result.failed) == 50  # all reported for retry
    assert result.writes == 0
    momento_server.clear_faults()
    result = invalidator.process(records)
    assert result.failed == []
    assert result.writes == 50
    assert kind_stored(momento_server, "items", "k7") is EntryKind.ITEM
    backend.close()
