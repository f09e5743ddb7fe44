"""MomentoBackend.get_many by the protocol's GetBatch: one call per 100 keys, with the
deadline, retry, errors and UNREADABLE answers of ``get``.

Real components: the momento SDK's channel settings and gRPC to the local
Momento-protocol server, which injects the faults. The order/absent/duplicate/expiry
contract is in test_backend_contract.py; one key at a time in test_momento_get_many.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from momento.config import Configuration
from momento.config.transport.transport_strategy import (
    StaticGrpcConfiguration,
    StaticTransportStrategy,
)
from momento_wire_types import cacheclient_pb2 as pb

from momento_botocore.backends import BackendError, CircuitBreakerBackend
from momento_botocore.backends._momento_common import GetBatchLookup, OneRetryWithinDeadline
from momento_botocore.backends.base import UNREADABLE
from momento_botocore.backends.momento import MomentoBackend
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

KEYS = [f"key-{n}" for n in range(100)]


def backend_for(server: LocalMomentoServer, **kwargs: Any) -> MomentoBackend:
    kwargs.setdefault("request_timeout", 2.0)  # healthy calls never time out on a busy machine
    return MomentoBackend(DEFAULT_CACHE, credential_provider=server.credential_provider(), **kwargs)


def filled(server: LocalMomentoServer, keys: list[str] = KEYS) -> None:
    for key in keys:
        server.put_raw(key, key.encode())


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


def small_receive_limit(limit: int, timeout: float = 2.0) -> Configuration:
    """Our deadline and retry, with a receive limit small enough to test cheaply."""
    transport = StaticTransportStrategy(
        StaticGrpcConfiguration(
            deadline=timedelta(seconds=timeout), max_receive_message_length=limit
        )
    )
    return Configuration(transport, OneRetryWithinDeadline())


def test_one_call_answers_a_hundred_keys_in_order(momento_server: LocalMomentoServer) -> None:
    filled(momento_server, KEYS[::2])
    backend = backend_for(momento_server)
    expected = [key.encode() if n % 2 == 0 else None for n, key in enumerate(KEYS)]
    assert backend.get_many(KEYS) == expected
    assert momento_server.calls("GetBatch") == 1
    assert momento_server.calls("Get") == 0
    backend.close()


def test_more_than_a_hundred_keys_take_one_call_per_hundred(
    momento_server: LocalMomentoServer,
) -> None:
    keys = [f"k{n}" for n in range(250)]
    filled(momento_server, keys[::3])
    backend = backend_for(momento_server)
    expected = [key.encode() if n % 3 == 0 else None for n, key in enumerate(keys)]
    assert backend.get_many(keys) == expected
    assert momento_server.calls("GetBatch") == 3
    backend.close()


def test_a_stalled_get_batch_fails_after_about_one_deadline(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, request_timeout=0.3)
    backend.get("warm-up")  # connected
    momento_server.delay("GetBatch", seconds=5.0)
    outcome, took = timed(lambda: backend.get_many(KEYS))
    assert isinstance(outcome, BackendError)
    assert "TIMEOUT" in str(outcome)
    assert took < 1.5  # the deadline decides (0.3 s), not the server (5 s)
    assert momento_server.calls("GetBatch") == 1  # a timeout is not retried
    backend.close()


def test_answers_slow_but_within_the_deadline_are_returned(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, request_timeout=1.0)
    momento_server.delay("GetBatch", seconds=0.2)
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
    backend.close()


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE])
def test_one_transient_failure_is_retried_within_the_deadline(
    momento_server: LocalMomentoServer, code: grpc.StatusCode
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server)
    momento_server.fail("GetBatch", code=code, times=1)
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
    assert momento_server.calls("GetBatch") == 2
    momento_server.fail("GetBatch", code=code)
    with pytest.raises(BackendError, match=code.name if code.name == "INTERNAL" else "UNAVAIL"):
        backend.get_many(KEYS)
    assert momento_server.calls("GetBatch") == 4  # one retry, no more
    backend.close()


def test_an_unknown_cache_is_an_error(momento_server: LocalMomentoServer) -> None:
    backend = MomentoBackend(
        "no-such-cache", credential_provider=momento_server.credential_provider()
    )
    with pytest.raises(BackendError, match="NOT_FOUND_ERROR"):
        backend.get_many(KEYS)
    backend.close()


def test_a_server_that_is_down_fails_the_lookup_at_once() -> None:
    server = LocalMomentoServer().start()
    server.stop()  # nothing listens on its port now
    backend = backend_for(server)
    outcome, took = timed(lambda: backend.get_many(KEYS))
    assert isinstance(outcome, BackendError)
    assert "SERVER_UNAVAILABLE" in str(outcome)
    assert took < 2.0  # did not wait for the 2 s deadline
    backend.close()


def test_values_over_the_receive_limit_are_unreadable_and_the_other_keys_are_read(
    momento_server: LocalMomentoServer,
) -> None:
    keys = KEYS[:10]
    filled(momento_server, keys)
    for big in (3, 4, 9):
        momento_server.put_raw(keys[big], b"x" * 5000)
    backend = backend_for(momento_server, configuration=small_receive_limit(2000))
    expected = [UNREADABLE if n in (3, 4, 9) else key.encode() for n, key in enumerate(keys)]
    assert backend.get_many(keys) == expected
    assert backend.unreadable == 3
    # The stream breaks at each one, and the keys after it are asked for again (none
    # after the last key).
    assert momento_server.calls("GetBatch") == 3
    assert backend.get(keys[3]) is UNREADABLE  # as get answers it
    backend.close()


def test_a_server_without_get_batch_is_read_one_key_at_a_time_from_then_on(
    momento_server: LocalMomentoServer, caplog: pytest.LogCaptureFixture
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server)
    momento_server.fail("GetBatch", code=grpc.StatusCode.UNIMPLEMENTED)
    with caplog.at_level("INFO", logger="momento_botocore"):
        assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
        assert backend.get_many(KEYS[:5]) == [key.encode() for key in KEYS[:5]]
    assert backend.use_get_batch is False
    assert momento_server.calls("GetBatch") == 1
    assert momento_server.calls("Get") == 105
    assert len([r for r in caplog.records if "GetBatch" in r.getMessage()]) == 1
    backend.close()


def test_a_backend_told_not_to_use_get_batch_never_does(
    momento_server: LocalMomentoServer,
) -> None:
    filled(momento_server)
    backend = backend_for(momento_server, use_get_batch=False)
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
    assert momento_server.calls("GetBatch") == 0
    assert momento_server.calls("Get") == 100
    backend.close()


def test_after_close_a_lookup_fails(momento_server: LocalMomentoServer) -> None:
    filled(momento_server)
    backend = backend_for(momento_server)
    assert backend.get_many(KEYS) == [key.encode() for key in KEYS]
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.get_many(KEYS)
    assert momento_server.calls("GetBatch") == 1


def test_a_failed_lookup_counts_once_for_the_breaker(momento_server: LocalMomentoServer) -> None:
    filled(momento_server)
    breaker = CircuitBreaker(2, 60.0)
    backend = CircuitBreakerBackend(backend_for(momento_server), breaker)
    momento_server.fail("GetBatch", code=grpc.StatusCode.INTERNAL)
    with pytest.raises(BackendError, match="INTERNAL"):
        backend.get_many(KEYS)
    assert breaker.state is BreakerState.CLOSED  # one failure, not one per key
    with pytest.raises(BackendError, match="INTERNAL"):
        backend.get_many(KEYS)
    assert breaker.state is BreakerState.OPEN
    backend.close()


# The lookup without its I/O: what the streamed answers mean ---------------------------------


def hit(value: bytes) -> Any:
    return pb._GetResponse(result=pb.Hit, cache_body=value)


MISS = pb._GetResponse(result=pb.Miss)


def lookup_of(keys: list[str], **kwargs: Any) -> GetBatchLookup:
    kwargs.setdefault("deadline", 1.0)
    kwargs.setdefault("retry_strategy", OneRetryWithinDeadline())
    return GetBatchLookup(keys, **kwargs)


def test_the_request_names_the_keys_not_answered_yet() -> None:
    lookup = lookup_of(["a", "b", "c"])
    request = lookup.request()
    assert request is not None
    assert 0 < request.timeout <= 1.0
    assert [item.cache_key for item in request.message.items] == [b"a", b"b", b"c"]
    lookup.answer(hit(b"1"))
    error = grpc.RpcError()
    error.code = lambda: grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    error.details = lambda: "gone"  # type: ignore[attr-defined]
    error.trailing_metadata = lambda: ()  # type: ignore[attr-defined]
    assert lookup.failed(error) == 0.0  # retried at once
    again = lookup.request()
    assert again is not None
    assert [item.cache_key for item in again.message.items] == [b"b", b"c"]
    lookup.answer(MISS)
    lookup.answer(hit(b"3"))
    lookup.ended()
    assert lookup.request() is None
    assert lookup.values == [b"1", None, b"3"]
    with pytest.raises(BackendError, match="UNAVAILABLE"):
        lookup.failed(error)  # a second failure: no second retry


def test_too_few_too_many_or_unknown_answers_fail_the_lookup() -> None:
    short = lookup_of(["a", "b"])
    short.request()
    short.answer(MISS)
    with pytest.raises(BackendError, match="answered 1 of 2 keys"):
        short.ended()
    long = lookup_of(["a"])
    long.request()
    long.answer(MISS)
    with pytest.raises(BackendError, match="more than 1 keys"):
        long.answer(MISS)
    odd = lookup_of(["a"])
    odd.request()
    with pytest.raises(BackendError, match="UNKNOWN_ERROR"):
        odd.answer(pb._GetResponse(result=pb.Invalid, message="what"))


def test_no_request_is_made_once_the_deadline_has_passed() -> None:
    now = [100.0]
    lookup = lookup_of(["a", "b"], deadline=0.5, clock=lambda: now[0])
    assert lookup.request() is not None
    now[0] += 0.6
    with pytest.raises(BackendError, match="TIMEOUT_ERROR"):
        lookup.request()
