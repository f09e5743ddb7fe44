"""Momento failing in every way the tests can arrange: reads stay correct, no exception
reaches the caller, and the circuit breaker opens and closes as documented.

Real components: moto's server for DynamoDB, the real momento SDK over gRPC to the
local Momento-protocol server, which injects the faults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore.backends import CircuitBreakerBackend
from momento_botocore.backends.momento import MomentoBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

ITEM = {"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}, "n": {"N": "7"}}
KEY = {"pk": {"S": "a"}}
FAILURES = 3


@pytest.fixture
def table(endpoint: str) -> str:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item=ITEM)
    return "items"


class ManualClock:
    """The breaker's clock, moved by the test: cool-downs end exactly when it says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guarded(
    server: LocalMomentoServer,
    *,
    timeout: float = 1.0,  # healthy calls never time out, even on a loaded machine
    cooldown: float = 0.3,
    clock: Callable[[], float] = time.monotonic,
) -> CircuitBreakerBackend:
    momento = MomentoBackend(
        DEFAULT_CACHE, credential_provider=server.credential_provider(), request_timeout=timeout
    )
    return CircuitBreakerBackend(momento, CircuitBreaker(FAILURES, cooldown, clock=clock))


def cached_client(endpoint: str, backend: CircuitBreakerBackend) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=60, backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def header(response: dict[str, Any]) -> str | None:
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def read_correctly(client: Any, table: str) -> dict[str, Any]:
    """One GetItem, checked against DynamoDB's answer (any exception fails the test)."""
    answer = client.get_item(TableName=table, Key=KEY)
    assert answer["Item"] == ITEM
    return answer


def reads_until(client: Any, table: str, done: Callable[[dict[str, Any]], bool]) -> int:
    """Read (correctly) until ``done`` holds; fail after 20 s. Returns the reads made."""
    deadline = time.monotonic() + 20
    reads = 0
    while time.monotonic() < deadline:
        reads += 1
        if done(read_correctly(client, table)):
            return reads
        time.sleep(0.05)
    pytest.fail("the cache path did not recover within 20 s")


def is_hit(answer: dict[str, Any]) -> bool:
    return header(answer) == "hit"


def test_momento_down_from_the_start_then_coming_up(endpoint: str, table: str) -> None:
    server = LocalMomentoServer().start()
    server.stop()  # nothing listens on its port now
    backend = guarded(server)
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(20):
        read_correctly(client, table)
    assert sent.count == 20
    assert backend.breaker.times_opened >= 1
    assert backend.breaker.rejected > 0
    assert momento_botocore.stats()[table]["errors"] == 20
    try:
        server.start()
        reads_until(client, table, is_hit)
        assert backend.breaker.state is BreakerState.CLOSED
    finally:
        server.stop()
        backend.close()


def test_momento_stopped_mid_run_then_restarted(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    read_correctly(client, table)
    assert is_hit(read_correctly(client, table))
    momento_server.stop()
    sent = RequestCounter(client, "GetItem")
    for _ in range(20):
        assert header(read_correctly(client, table)) is None  # straight to DynamoDB
    assert sent.count == 20
    assert backend.breaker.state is not BreakerState.CLOSED
    momento_server.start()
    reads_until(client, table, is_hit)  # the entry survived; the breaker closed
    assert backend.breaker.state is BreakerState.CLOSED
    backend.close()


def test_dropped_connections_cost_reads_nothing(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    for _ in range(5):
        read_correctly(client, table)
        momento_server.drop_connections()
    reads_until(client, table, is_hit)
    backend.close()


def test_every_get_delayed_past_the_deadline(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    clock = ManualClock()
    backend = guarded(momento_server, timeout=0.1, cooldown=5.0, clock=clock)
    client = cached_client(endpoint, backend)
    reads_until(client, table, is_hit)  # connected, filled, no failures counted
    momento_server.reset()
    momento_server.delay("Get", seconds=5.0)
    sent = RequestCounter(client, "GetItem")
    for _ in range(10):
        read_correctly(client, table)
    assert sent.count == 10
    # The first FAILURES reads each gave up after one deadline (not the server's 5 s);
    # then the breaker opened and the other reads never touched Momento.
    assert momento_server.calls("Get") == FAILURES
    assert backend.breaker.state is BreakerState.OPEN
    assert momento_server.calls("SetIfNotExists") == 0  # no fill into a failing cache
    clock.now += 5.0  # the cool-down ends: the next read is the probe, and it waits too
    read_correctly(client, table)
    assert momento_server.calls("Get") == FAILURES + 1
    assert backend.breaker.state is BreakerState.OPEN
    momento_server.clear_faults()
    clock.now += 5.0
    read_correctly(client, table)  # a healthy probe closes the breaker
    assert backend.breaker.state is BreakerState.CLOSED
    reads_until(client, table, is_hit)
    backend.close()


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE])
def test_every_get_failing_with_a_server_error(
    endpoint: str, table: str, momento_server: LocalMomentoServer, code: grpc.StatusCode
) -> None:
    clock = ManualClock()
    backend = guarded(momento_server, cooldown=5.0, clock=clock)
    client = cached_client(endpoint, backend)
    reads_until(client, table, is_hit)  # connected, filled, no failures counted
    momento_server.reset()
    momento_server.fail("Get", code=code)
    for _ in range(10):
        read_correctly(client, table)
    assert momento_server.calls("Get") == FAILURES * 2  # each with its one retry
    assert backend.breaker.state is BreakerState.OPEN
    momento_server.clear_faults()
    clock.now += 5.0
    reads_until(client, table, is_hit)
    assert backend.breaker.state is BreakerState.CLOSED
    backend.close()


def test_fills_failing_leave_reads_correct_and_lookups_keep_going(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    momento_server.fail("SetIfNotExists", code=grpc.StatusCode.INTERNAL)
    for _ in range(6):
        assert header(read_correctly(client, table)) == "miss"
    assert momento_server.get_raw(cache_key(ACCOUNT, REGION, table, KEY)) is None
    # Each lookup succeeded (a miss) between the failed fills: no run of failures.
    assert backend.breaker.state is BreakerState.CLOSED
    assert momento_botocore.stats()[table]["errors"] == 6
    momento_server.clear_faults()
    read_correctly(client, table)
    assert is_hit(read_correctly(client, table))
    backend.close()


def test_request_failures_are_not_logged_by_the_sdk_once_per_call(
    endpoint: str,
    table: str,
    momento_server: LocalMomentoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = guarded(momento_server, clock=ManualClock())
    client = cached_client(endpoint, backend)
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    for _ in range(10):
        read_correctly(client, table)
    warnings = [r for r in caplog.records if r.levelno >= 30]
    # One report of the failed lookups and one of the breaker opening; none per call.
    assert {r.name for r in warnings} == {"momento_botocore"}
    assert len(warnings) == 2
    backend.close()


def test_garbage_under_a_key_is_a_miss_and_is_replaced(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    key = cache_key(ACCOUNT, REGION, table, KEY)
    momento_server.put_raw(key, b"\x00\xffnot an entry")
    backend = guarded(momento_server)
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    assert header(read_correctly(client, table)) == "miss"
    stored = momento_server.get_raw(key)
    assert stored is not None
    entry = decode(stored)
    assert entry is not None
    assert entry.kind is EntryKind.ITEM
    assert is_hit(read_correctly(client, table))
    assert sent.count == 1
    assert backend.breaker.state is BreakerState.CLOSED  # bad data is not an outage
    backend.close()
