"""MomentoBackend.get_many one key at a time (a server without GetBatch, or
use_get_batch=False): concurrent lookups on one SDK client, bounded by the deadline.
GetBatch, the default, is in test_momento_get_batch.py.

Real components: the momento SDK over gRPC to the local Momento-protocol server,
which injects the faults. The order/absent/duplicate/expiry contract is in
test_backend_contract.py, for every backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from momento_botocore import ConfigurationError
from momento_botocore.backends import BackendError, CircuitBreakerBackend, CircuitOpenError
from momento_botocore.backends.momento import DEFAULT_MAX_CONCURRENCY, MomentoBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

KEYS = [f"key-{n}" for n in range(100)]
POOL_THREAD = "momento-botocore-get"


def backend_for(server: LocalMomentoServer, **kwargs: Any) -> MomentoBackend:
    kwargs.setdefault("request_timeout", 2.0)  # healthy calls never time out on a busy machine
    kwargs.setdefault("use_get_batch", False)
    return MomentoBackend(DEFAULT_CACHE, credential_provider=server.credential_provider(), **kwargs)


def filled(server: LocalMomentoServer, keys: list[str] = KEYS) -> None:
    for key in keys:
        server.put_raw(key, key.encode())


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(POOL_THREAD)]


def timed(call: Callable[[], object], *, give_up_after: float = 20.0) -> tuple[object, float]:
    """(what ``call`` returned or raised, seconds it took); fails the test if it hangs."""
    outcome: list[object] = []
    started = time.perf_counter()

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(give_up_after)
    if thread.is_alive():
        pytest.fail(f"get_many still running after {give_up_after} s")
    return outcome[0], time.perf_counter() - started


def test_keys_are_looked_up_concurrently(momento_server: LocalMomentoServer) -> None:
    filled(momento_server)
    backend = backend_for(momento_server)
    momento_server.delay("Get", seconds=0.1)
    values, took = timed(lambda: backend.get_many(KEYS[:16]))
    assert values == [key.encode() for key in KEYS[:16]]
    assert took < 1.0  # one after another: at least 1.6 s
    backend.close()


def test_concurrency_is_bounded(momento_server: LocalMomentoServer) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, max_concurrency=4)
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
    assert len(pool_threads()) <= 3  # plus the calling thread
    backend.close()
    serial = backend_for(momento_server, max_concurrency=1)
    assert serial.get_many(KEYS) == [key.encode() for key in KEYS]
    assert pool_threads() == []
    serial.close()


def test_the_default_concurrency_is_sixteen(momento_server: LocalMomentoServer) -> None:
    assert DEFAULT_MAX_CONCURRENCY == 16
    backend = backend_for(momento_server)
    assert backend.max_concurrency == 16
    backend.close()


@pytest.mark.parametrize("value", [0, -1, True, 2.5])
def test_a_bad_max_concurrency_is_a_configuration_error(
    momento_server: LocalMomentoServer, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        backend_for(momento_server, max_concurrency=value)


def test_close_stops_the_lookup_threads_and_later_calls_fail(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server)
    assert pool_threads() == []  # started on first use
    backend.get_many(KEYS)
    assert pool_threads() != []
    backend.close()
    assert pool_threads() == []
    with pytest.raises(BackendError, match="closed"):
        backend.get_many(KEYS)


def test_a_server_that_is_down_fails_the_batch_at_once() -> None:
    server = LocalMomentoServer().start()
    server.stop()  # nothing listens on its port now
    backend = backend_for(server)
    outcome, took = timed(lambda: backend.get_many(KEYS))
    assert isinstance(outcome, BackendError)
    assert "SERVER_UNAVAILABLE" in str(outcome)
    assert took < 2.0  # did not wait for the 2 s deadline
    backend.close()


def test_one_get_stalled_past_the_deadline_fails_the_batch_after_one_deadline(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, request_timeout=0.3)
    backend.get("warm-up")  # connected
    momento_server.delay("Get", seconds=5.0, times=1)
    outcome, took = timed(lambda: backend.get_many(KEYS))
    assert isinstance(outcome, BackendError)
    assert "TIMEOUT" in str(outcome)
    assert took < 1.5  # about one deadline (0.3 s); the stall was 5 s
    backend.close()


def test_every_get_stalled_costs_one_deadline_not_one_per_wave_of_lookups(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, request_timeout=0.3)
    backend.get("warm-up")
    momento_server.reset()
    momento_server.delay("Get", seconds=5.0)
    outcome, took = timed(lambda: backend.get_many(KEYS))
    assert isinstance(outcome, BackendError)
    # The first lookups (one per thread) time out together; the others never start.
    assert momento_server.calls("Get") <= DEFAULT_MAX_CONCURRENCY
    assert took < 1.5  # 100 keys in waves of 16 stalled lookups: at least 2.1 s
    backend.close()


def test_answers_slow_but_within_the_deadline_are_returned_however_long_the_batch(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, request_timeout=0.3, max_concurrency=2)
    backend.get("warm-up")
    momento_server.delay("Get", seconds=0.1)
    # Five waves of two lookups (0.5 s): longer than one deadline, yet none failed.
    assert backend.get_many(KEYS[:10]) == [key.encode() for key in KEYS[:10]]
    backend.close()


def test_a_failed_batch_counts_once_and_an_open_breaker_refuses_without_a_call(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    breaker = CircuitBreaker(2, 60.0)
    backend = CircuitBreakerBackend(backend_for(momento_server), breaker)
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError, match="INTERNAL"):
        backend.get_many(KEYS)
    assert breaker.state is BreakerState.CLOSED  # one failure, not one per key
    with pytest.raises(BackendError, match="INTERNAL"):
        backend.get_many(KEYS)
    assert breaker.state is BreakerState.OPEN
    momento_server.reset()
    with pytest.raises(CircuitOpenError):
        backend.get_many(KEYS)
    assert momento_server.calls() == 0
    assert breaker.rejected == 1
    backend.close()


def test_a_healthy_batch_through_the_breaker_is_one_success(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server, KEYS[:50])
    breaker = CircuitBreaker(2, 60.0)
    backend = CircuitBreakerBackend(backend_for(momento_server), breaker)
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError):
        backend.get("k")
    momento_server.clear_faults()
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS[:50]] + [None] * 50
    momento_server.fail("Get", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError):
        backend.get("k")
    assert breaker.state is BreakerState.CLOSED  # the batch broke the run of failures
    backend.close()
