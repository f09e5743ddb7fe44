"""The circuit breaker: a pure state machine on a fake clock, and the backend wrapper."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from momento_botocore.backends import (
    BackendError,
    CircuitBreakerBackend,
    CircuitOpenError,
    MemoryBackend,
)
from momento_botocore.backends.base import NotACounterError, bulk_incr
from momento_botocore.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def failing(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_calls_go_through_until_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 5.0, clock=Clock())
    failing(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow() is False
    assert breaker.times_opened == 1
    assert breaker.rejected == 1


def test_a_success_resets_the_run_of_failures() -> None:
    breaker = CircuitBreaker(3, 5.0, clock=Clock())
    for _ in range(10):
        failing(breaker, 2)
        assert breaker.allow()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.times_opened == 0


def test_after_the_cooldown_exactly_one_probe_goes_out() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 5.0, clock=clock)
    failing(breaker, 2)
    clock.now += 4.99
    assert breaker.allow() is False
    clock.now += 0.01
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() is True  # the probe
    assert breaker.allow() is False  # others wait for its answer
    assert breaker.allow() is False


def test_a_successful_probe_closes_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 5.0, clock=clock)
    failing(breaker, 2)
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))
    failing(breaker, 1)  # a fresh run of failures is needed to open again
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_opens_the_breaker_for_another_full_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 5.0, clock=clock)
    failing(breaker, 2)
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.times_opened == 2
    clock.now += 4.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.allow() is True


def test_a_probe_that_never_answers_is_replaced_after_a_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    failing(breaker, 1)
    clock.now += 5
    assert breaker.allow()  # this probe's caller never reports back
    clock.now += 4
    assert breaker.allow() is False
    clock.now += 1
    assert breaker.allow() is True


@pytest.mark.parametrize(
    ("threshold", "cooldown", "refused"),
    [
        (0, 1.0, "failure_threshold must be at least 1"),
        (True, 1.0, "failure_threshold must be at least 1"),
        (1, 0.0, "cooldown must be positive"),
        (1, -1.0, "cooldown must be positive"),
    ],
)
def test_bad_settings_are_refused(threshold: int, cooldown: float, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        CircuitBreaker(threshold, cooldown)


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.broken = False

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.broken:
            raise BackendError("down")
        return super().get(key)


def test_the_wrapper_refuses_calls_without_touching_the_backend_while_open() -> None:
    clock = Clock()
    inner = CountingBackend()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(2, 5.0, clock=clock))
    inner.broken = True
    for _ in range(2):
        with pytest.raises(BackendError, match="down"):
            backend.get("k")
    for _ in range(10):
        with pytest.raises(CircuitOpenError):
            backend.get("k")
    assert inner.calls == 2
    inner.broken = False
    clock.now += 5
    assert backend.get("k") is None  # the probe: a miss is a healthy answer
    assert backend.breaker.state is BreakerState.CLOSED
    assert inner.calls == 3


def test_the_wrapper_passes_every_operation_through() -> None:
    inner = MemoryBackend()
    backend = CircuitBreakerBackend(inner)
    assert backend.add("k", b"1", 60) is True
    assert backend.add("k", b"2", 60) is False
    backend.set("j", b"3", 60)
    backend.delete("k")
    assert (backend.get("k"), backend.get("j")) == (None, b"3")
    backend.close()
    assert len(inner) == 0


def test_opening_is_logged_once_and_closing_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="momento_botocore")
    clock = Clock()
    inner = CountingBackend()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(2, 5.0, clock=clock))
    inner.broken = True
    for _ in range(3):  # opens, then a refusal
        with pytest.raises(BackendError):
            backend.get("k")
    for _ in range(3):  # failed probes reopen it quietly
        clock.now += 5
        with pytest.raises(BackendError, match="down"):
            backend.get("k")
    inner.broken = False
    clock.now += 5
    backend.get("k")
    backend.get("k")
    messages = [r.getMessage() for r in caplog.records if r.name == "momento_botocore"]
    assert len(messages) == 2
    assert "open after 2 consecutive" in messages[0]
    assert "closed" in messages[1]


class PerKeyBackend:
    """A backend without get_many (as third-party backends may be): counts its gets."""

    def __init__(self) -> None:
        self.memory = MemoryBackend()
        self.gets = 0
        self.broken = False

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        if self.broken:
            raise BackendError("down")
        return self.memory.get(key)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self.memory.add(key, value, ttl_seconds)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.memory.set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self.memory.delete(key)

    def close(self) -> None:
        self.memory.close()


def test_get_many_falls_back_to_get_per_key_as_one_call() -> None:
    inner = PerKeyBackend()
    breaker = CircuitBreaker(2, 5.0, clock=Clock())
    backend = CircuitBreakerBackend(inner, breaker)
    backend.set("a", b"1", 60)
    assert backend.get_many(["a", "b", "a"]) == [b"1", None, b"1"]
    assert inner.gets == 3
    inner.broken = True
    with pytest.raises(BackendError, match="down"):
        backend.get_many(["a", "b", "c"])
    assert inner.gets == 4  # the first failure ends the call
    assert breaker.state is BreakerState.CLOSED  # and counts once
    with pytest.raises(BackendError, match="down"):
        backend.get_many(["a", "b", "c"])
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        backend.get_many(["a", "b", "c"])
    assert inner.gets == 5


def test_an_empty_get_many_leaves_a_half_open_breaker_to_a_real_probe() -> None:
    clock = Clock()
    inner = PerKeyBackend()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(1, 5.0, clock=clock))
    inner.broken = True
    with pytest.raises(BackendError):
        backend.get("k")
    clock.now += 5
    assert backend.get_many([]) == []
    assert backend.breaker.state is BreakerState.HALF_OPEN  # not closed by a call never made
    with pytest.raises(BackendError, match="down"):
        backend.get_many(["k"])  # this is the probe, and it fails
    assert backend.breaker.state is BreakerState.OPEN


class OneKeyBackend:
    """Only the five one-key methods (no add_many/set_many); every write fails while broken."""

    def __init__(self) -> None:
        self.memory = MemoryBackend()
        self.writes = 0
        self.broken = True

    def get(self, key: str) -> bytes | None:
        return self.memory.get(key)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        self._write()
        return self.memory.add(key, value, ttl_seconds)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._write()
        self.memory.set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self.memory.delete(key)

    def close(self) -> None:
        pass

    def _write(self) -> None:
        self.writes += 1
        if self.broken:
            raise BackendError("down")


@pytest.mark.parametrize("method", ["add_many", "set_many"])
def test_bulk_writes_to_a_backend_without_them_count_key_by_key(method: str) -> None:
    # Such a backend writes one key after another: counted once, a stalled one
    # would cost one deadline per key however many keys failed.
    inner = OneKeyBackend()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(3, 60.0))
    outcome = getattr(backend, method)([(f"k{n}", b"v", 60.0) for n in range(10)])
    assert inner.writes == 3  # then the breaker opened: the others never reached it
    assert all(isinstance(error, BackendError) for error in outcome)
    assert all(isinstance(error, CircuitOpenError) for error in outcome[3:])
    inner.broken = False
    backend.breaker.record_success()
    outcome = getattr(backend, method)([("a", b"v", 60.0), ("b", b"v", 60.0)])
    assert outcome == ([True, True] if method == "add_many" else [None, None])


class CountingCounters(MemoryBackend):
    """Counters whose calls fail while broken, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.incrs = 0
        self.broken = False

    def incr(self, key: str, ttl_seconds: float) -> int:
        self.incrs += 1
        if self.broken:
            raise BackendError("down")
        return super().incr(key, ttl_seconds)

    def incr_many(self, entries: Sequence[tuple[str, float]]) -> list[int | Exception]:
        if self.broken:  # per entry, as a bulk call answers a partial failure
            self.incrs += 1
            rest = [MemoryBackend.incr(self, key, ttl) for key, ttl in entries[1:]]
            return [BackendError("down"), *rest]
        return super().incr_many(entries)


def test_counters_go_through_the_breaker_and_failures_open_it() -> None:
    clock = Clock()
    inner = CountingCounters()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(2, 5.0, clock=clock))
    assert [backend.incr("g", 60) for _ in range(3)] == [1, 2, 3]
    assert backend.incr_many([("g", 60.0), ("h", 60.0)]) == [4, 1]
    inner.broken = True
    with pytest.raises(BackendError, match="down"):
        backend.incr("g", 60)
    outcome = backend.incr_many([("g", 60.0), ("h", 60.0)])  # one entry failed: one failure
    assert isinstance(outcome[0], BackendError)
    assert outcome[1] == 2
    assert backend.breaker.state is BreakerState.OPEN
    calls = inner.incrs
    with pytest.raises(CircuitOpenError):
        backend.incr("g", 60)
    with pytest.raises(CircuitOpenError):
        backend.incr_many([("g", 60.0)])
    assert inner.incrs == calls
    inner.broken = False
    clock.now += 5
    assert backend.incr("g", 60) == 5  # the probe
    assert backend.breaker.state is BreakerState.CLOSED


def test_a_value_that_is_not_a_counter_is_an_answer_not_a_failure() -> None:
    backend = CircuitBreakerBackend(MemoryBackend(), CircuitBreaker(1, 5.0, clock=Clock()))
    backend.set("garbage", b"not a number", 60)
    for _ in range(3):
        with pytest.raises(NotACounterError):
            backend.incr("garbage", 60)
        outcome = backend.incr_many([("garbage", 60.0), ("g", 60.0)])
        assert isinstance(outcome[0], NotACounterError)
    assert backend.breaker.state is BreakerState.CLOSED
    assert backend.get("g") == b"3"


def test_a_backend_without_counters_cannot_count_and_the_breaker_is_not_asked() -> None:
    clock = Clock()
    inner = PerKeyBackend()
    backend = CircuitBreakerBackend(inner, CircuitBreaker(1, 5.0, clock=clock))
    for call in (lambda: backend.incr("g", 60), lambda: backend.incr_many([("g", 60.0)])):
        with pytest.raises(BackendError, match="keeps no counters"):
            call()
    assert backend.breaker.state is BreakerState.CLOSED
    assert isinstance(bulk_incr(backend, [("g", 60.0)])[0], BackendError)  # never raises


def test_incr_many_in_front_of_a_backend_with_incr_only_is_one_call_per_key() -> None:
    class IncrOnly(PerKeyBackend):
        def incr(self, key: str, ttl_seconds: float) -> int:
            return self.memory.incr(key, ttl_seconds)

    backend = CircuitBreakerBackend(IncrOnly())
    assert backend.incr_many([("g", 60.0), ("g", 60.0), ("h", 60.0)]) == [1, 2, 1]
