"""PendingTombstones on a fake clock: what is guarded, retried, dropped, and when."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from momento_botocore.pending import ROUND_SIZE, PendingTombstones


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counts:
    """Collects what PendingTombstones counts, per (table, counter)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, table: str, counter: str, amount: int) -> None:
        with self._lock:
            self.counts[(table, counter)] += amount

    def total(self, counter: str) -> int:
        return sum(n for (_, name), n in self.counts.items() if name == counter)


class Cache:
    """Records the tombstones written; fails while ``down``."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.down = False

    def set(self, key: str) -> None:
        if self.down:
            raise ConnectionError("cache is down")
        self.written.append(key)


def make(
    clock: Clock, counts: Counts | None = None, *, max_keys: int = 100, interval: float = 1.0
) -> PendingTombstones:
    return PendingTombstones(max_keys=max_keys, retry_interval=interval, clock=clock, count=counts)


def test_nothing_pending_is_inactive_and_guards_nothing() -> None:
    pending = make(Clock())
    assert pending.active is False
    assert not pending.guards("t", "k")
    assert pending.retry(Cache().set) is None
    assert len(pending) == 0


def test_a_remembered_key_is_guarded_and_only_that_key() -> None:
    counts = Counts()
    pending = make(Clock(), counts)
    assert pending.remember("t", "k", 60) is True
    assert pending.active is True
    assert pending.guards("t", "k")
    assert not pending.guards("t", "other")
    assert counts.counts[("t", "tombstones_pending")] == 1


def test_a_retry_writes_the_oldest_first_and_forgets_what_it_wrote() -> None:
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts)
    for key in ("a", "b", "c"):
        pending.remember("t", key, 60)
    clock.now += 1
    cache = Cache()
    assert pending.retry(cache.set) is None
    assert cache.written == ["a", "b", "c"]
    assert not any(pending.guards("t", key) for key in "abc")
    assert pending.active is False
    assert counts.counts[("t", "tombstones_retried")] == 3


def test_a_failing_cache_is_tried_once_per_interval() -> None:
    clock = Clock()
    pending = make(clock, interval=1.0)
    pending.remember("t", "a", 60)
    pending.remember("t", "b", 60)
    cache = Cache()
    cache.down = True
    calls = 0

    def counting_set(key: str) -> None:
        nonlocal calls
        calls += 1
        cache.set(key)

    assert pending.retry(counting_set) is None  # it just failed: not retried at once
    assert calls == 0
    clock.now += 1.0
    error = pending.retry(counting_set)
    assert isinstance(error, ConnectionError)
    assert calls == 1  # the first failure ends the round
    clock.now += 0.99
    for _ in range(50):
        assert pending.retry(counting_set) is None
    assert calls == 1
    assert pending.guards("t", "a")
    assert pending.guards("t", "b")
    cache.down = False
    clock.now += 0.01
    assert pending.retry(counting_set) is None
    assert cache.written == ["a", "b"]
    assert pending.active is False


def test_a_key_past_its_horizon_is_no_longer_guarded_and_is_dropped_unwritten() -> None:
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts)
    pending.remember("t", "old", 10)
    clock.now += 5
    pending.remember("t", "young", 10)
    clock.now += 5
    assert not pending.guards("t", "old")
    assert pending.guards("t", "young")
    cache = Cache()
    cache.down = True
    pending.retry(cache.set)
    assert counts.counts[("t", "tombstones_dropped")] == 1
    assert len(pending) == 1
    assert pending.active is True
    clock.now += 5
    pending.retry(cache.set)
    assert counts.counts[("t", "tombstones_dropped")] == 2
    assert pending.active is False
    assert counts.total("tombstones_retried") == 0


def test_remembering_a_pending_key_again_keeps_the_later_horizon() -> None:
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts)
    pending.remember("t", "k", 10)
    clock.now += 8
    pending.remember("t", "k", 10)
    clock.now += 9
    assert pending.guards("t", "k")
    assert len(pending) == 1
    assert counts.counts[("t", "tombstones_pending")] == 1  # one key, counted once


def test_when_full_the_table_of_the_next_key_is_guarded_whole_until_its_horizon() -> None:
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts, max_keys=2)
    assert pending.remember("orders", "a", 100)
    assert pending.remember("orders", "b", 100)
    clock.now += 50
    assert pending.remember("users", "c", 30) is False
    assert counts.counts[("users", "tombstones_overflowed")] == 1
    assert pending.guards("users", "c")
    assert pending.guards("users", "anything")
    assert not pending.guards("orders", "anything")
    assert pending.guarded_tables() == {"users": clock.now + 30}
    clock.now += 1
    pending.retry(Cache().set)  # the remembered keys are still written
    assert not pending.guards("orders", "a")
    assert pending.guards("users", "anything")
    clock.now += 29
    assert not pending.guards("users", "anything")
    pending.retry(Cache().set)
    assert pending.active is False
    assert pending.guarded_tables() == {}


def test_an_overflowing_table_is_guarded_until_the_last_overflowed_horizon() -> None:
    clock = Clock()
    pending = make(clock, max_keys=1)
    pending.remember("t", "a", 100)
    pending.remember("t", "b", 10)
    clock.now += 8
    pending.remember("t", "c", 10)
    clock.now += 8
    assert pending.guards("t", "z")
    clock.now += 2
    assert not pending.guards("t", "z")


def test_a_newer_successful_tombstone_covers_a_pending_one() -> None:
    counts = Counts()
    pending = make(Clock(), counts)
    pending.remember("t", "k", 60)
    stamp = pending.stamp()
    pending.written("k", stamp)  # the write path set a tombstone for k after that
    assert not pending.guards("t", "k")
    assert pending.active is False
    assert counts.counts[("t", "tombstones_retried")] == 1


def test_a_tombstone_set_before_a_key_was_remembered_does_not_cover_it() -> None:
    pending = make(Clock())
    stamp = pending.stamp()  # a tombstone of k starts being written here ...
    pending.remember("t", "k", 60)  # ... while another write of k fails its own
    pending.written("k", stamp)
    assert pending.guards("t", "k")


def test_a_key_remembered_again_during_a_retry_stays_pending() -> None:
    clock = Clock()
    pending = make(clock)
    pending.remember("t", "k", 60)
    clock.now += 1

    def set_while_another_write_fails(key: str) -> None:
        pending.remember("t", key, 60)  # a newer write of k, whose tombstone failed

    assert pending.retry(set_while_another_write_fails) is None
    assert pending.guards("t", "k")


def test_one_round_at_a_time_and_others_do_not_wait() -> None:
    clock = Clock()
    pending = make(clock)
    pending.remember("t", "a", 60)
    clock.now += 1
    inner: list[Exception | None] = []
    written: list[str] = []

    def slow_set(key: str) -> None:
        inner.append(pending.retry(written.append))  # a second caller meanwhile
        written.append(key)

    pending.retry(slow_set)
    assert inner == [None]
    assert written == ["a"]


def test_a_round_writes_at_most_round_size_then_the_next_is_due_at_once() -> None:
    clock = Clock()
    pending = make(clock, max_keys=1000, interval=60)
    for n in range(ROUND_SIZE * 2 + 5):
        pending.remember("t", f"k{n}", 600)
    clock.now += 60
    cache = Cache()
    pending.retry(cache.set)
    assert len(cache.written) == ROUND_SIZE
    pending.retry(cache.set)  # no interval to wait: the cache answers
    pending.retry(cache.set)
    assert len(cache.written) == ROUND_SIZE * 2 + 5
    assert cache.written[:3] == ["k0", "k1", "k2"]
    assert pending.active is False


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_keys must be at least 1"):
        PendingTombstones(max_keys=0)


def test_concurrent_writers_and_retriers_lose_nothing() -> None:
    """Every remembered key ends written, dropped or still pending: counters add up."""
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts, max_keys=50, interval=0.0001)
    cache = Cache()
    flaky = threading.local()

    def sometimes_failing(key: str) -> None:
        flaky.n = getattr(flaky, "n", 0) + 1
        if flaky.n % 3 == 0:
            raise ConnectionError("flaky")
        cache.set(key)

    def writer(worker: int) -> None:
        for n in range(300):
            key = f"k{(worker * 7 + n) % 80}"
            stamp = pending.stamp()
            if n % 4 == 0:
                pending.written(key, stamp)
            else:
                pending.remember(f"t{worker % 2}", key, 600)
            pending.retry(sometimes_failing)
            clock.now += 0.001

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    remembered = counts.total("tombstones_pending")
    settled = counts.total("tombstones_retried") + counts.total("tombstones_dropped")
    assert remembered > 0
    assert remembered - settled == len(pending)
    assert pending.active is bool(len(pending) or pending.guarded_tables())


def test_counters_given_to_a_call_go_there_instead_of_the_default() -> None:
    clock = Clock()
    default, writer, retrier = Counts(), Counts(), Counts()
    pending = make(clock, default)
    pending.remember("t", "a", 60, writer)
    pending.remember("t", "b", 1, writer)
    clock.now += 2  # "b" is past its horizon: dropped by the next round
    assert pending.retry(Cache().set, retrier) is None
    assert writer.total("tombstones_pending") == 2
    assert (retrier.total("tombstones_retried"), retrier.total("tombstones_dropped")) == (1, 1)
    assert not default.counts


def test_a_fenced_table_is_guarded_whole_until_its_latest_horizon() -> None:
    clock = Clock()
    counts = Counts()
    pending = make(clock, counts)
    pending.fence_table("users", 30)
    assert pending.active
    assert pending.guards("users", "any key")
    assert not pending.guards("orders", "any key")
    assert counts.counts[("users", "tables_fenced")] == 1
    clock.now += 20
    pending.fence_table("users", 5)  # a shorter fence never shortens the one in place
    assert pending.guarded_tables() == {"users": clock.now + 10}
    pending.fence_table("users", 30)
    clock.now += 29
    assert pending.guards("users", "k")
    clock.now += 1
    assert not pending.guards("users", "k")
    pending.retry(Cache().set)
    assert pending.active is False
    assert pending.guarded_tables() == {}
