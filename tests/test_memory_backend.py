"""The memory backend: TTLs on an injected clock, add-if-absent, LRU bounds, threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from momento_botocore import MemoryBackend


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"v", 10)
    clock.now += 9.99
    assert backend.get("k") == b"v"
    clock.now += 0.02
    assert backend.get("k") is None
    assert len(backend) == 0


def test_add_never_overwrites_a_live_entry_but_replaces_an_expired_one() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    assert backend.add("k", b"first", 5) is True
    assert backend.add("k", b"second", 5) is False
    assert backend.get("k") == b"first"
    clock.now += 6
    assert backend.add("k", b"third", 5) is True
    assert backend.get("k") == b"third"


def test_set_overwrites_and_delete_removes() -> None:
    backend = MemoryBackend()
    backend.set("k", b"a", 5)
    backend.set("k", b"b", 5)
    assert backend.get("k") == b"b"
    backend.delete("k")
    backend.delete("missing")
    assert backend.get("k") is None


def test_least_recently_used_entries_go_first_when_full_by_count() -> None:
    backend = MemoryBackend(max_entries=2)
    backend.set("a", b"1", 60)
    backend.set("b", b"2", 60)
    assert backend.get("a") == b"1"  # a is now the most recently used
    backend.set("c", b"3", 60)
    assert backend.get("b") is None
    assert backend.get("a") == b"1"
    assert backend.get("c") == b"3"


def test_bytes_bound_evicts_and_oversized_values_are_not_stored() -> None:
    backend = MemoryBackend(max_bytes=100)
    backend.set("a", b"x" * 40, 60)
    backend.set("b", b"y" * 40, 60)
    backend.set("c", b"z" * 40, 60)
    assert backend.get("a") is None
    assert backend.size_bytes <= 100
    assert backend.add("huge", b"h" * 200, 60) is False
    assert backend.get("huge") is None


def test_values_are_binary_safe() -> None:
    backend = MemoryBackend()
    value = bytes(range(256)) * 4
    backend.set("k", value, 60)
    assert backend.get("k") == value


@pytest.mark.parametrize("kwargs", [{"max_entries": 0}, {"max_bytes": -1}])
def test_bad_bounds_are_rejected(kwargs: dict[str, int]) -> None:
    (setting,) = kwargs
    with pytest.raises(ValueError, match=f"{setting} must be positive"):
        MemoryBackend(**kwargs)


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads as often as the interpreter allows: a race that needs a switch
    between a check and its store then happens thousands of times a second."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_one_add_wins_among_many_threads() -> None:
    backend = MemoryBackend()
    threads, keys, step = 8, 10_000, 100
    barrier = threading.Barrier(threads)
    won: dict[int, list[bool]] = {}
    errors: list[BaseException] = []

    def race(n: int) -> None:
        value, added = str(n).encode(), []
        try:  # every thread adds every key, the threads kept abreast: each key is fought over
            for start in range(0, keys, step):
                barrier.wait()
                added.extend(backend.add(f"k{i}", value, 60) for i in range(start, start + step))
        except BaseException as error:
            errors.append(error)
            barrier.abort()
        won[n] = added

    racers = [threading.Thread(target=race, args=(n,)) for n in range(threads)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert errors == []
    winners = [[n for n, added in won.items() if added[i]] for i in range(keys)]
    assert [(i, found) for i, found in enumerate(winners) if len(found) != 1] == []
    # ... and each key holds the value of the one thread that was told it won.
    assert [backend.get(f"k{i}") for i in range(keys)] == [
        str(found[0]).encode() for found in winners
    ]


def _stocked(clock: FakeClock) -> MemoryBackend:
    backend = MemoryBackend(max_entries=4, clock=clock)
    backend.set("live", b"1", 60)
    backend.set("expiring", b"2", 5)
    backend.set("other", b"3", 60)
    backend.set("last", b"4", 60)
    return backend


def test_get_many_answers_what_get_answers_key_by_key_expired_entries_included() -> None:
    clock = FakeClock()
    one_lock, key_by_key = _stocked(clock), _stocked(clock)
    clock.now += 5  # "expiring" is now expired, exactly at its deadline
    asked = ["expiring", "missing", "live", "expiring", "live", "last"]
    answers = one_lock.get_many(asked)
    assert answers == [key_by_key.get(key) for key in asked]
    assert answers == [None, None, b"1", None, b"1", b"4"]
    assert one_lock.get_many([]) == []
    assert one_lock.get_many(["live", "last", "live"]) == [b"1", b"4", b"1"]  # all fresh
    assert len(one_lock) == len(key_by_key) == 3  # the expired entry is gone from both
    assert one_lock.size_bytes == key_by_key.size_bytes


def test_get_many_refreshes_recency_like_get() -> None:
    clock = FakeClock()
    one_lock, key_by_key = _stocked(clock), _stocked(clock)
    one_lock.get_many(["live", "expiring"])
    for key in ["live", "expiring"]:
        key_by_key.get(key)
    for backend in (one_lock, key_by_key):
        backend.set("new", b"5", 60)  # evicts the least recently used: "other"
    for key in ["live", "expiring", "other", "last", "new"]:
        assert one_lock.get(key) == key_by_key.get(key)
    assert one_lock.get("other") is None
