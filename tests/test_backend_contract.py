"""One contract for every backend: run against memory and Momento (local server, real
SDK), sync and async (AsyncMemoryBackend, AsyncMomentoBackend, through SyncOverAsync)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import SyncOverAsync

from momento_botocore.backends import Backend, BatchBackend, BulkWriteBackend
from momento_botocore.backends.base import (
    BackendError,
    CounterBackend,
    NotACounterError,
    bulk_add,
    bulk_incr,
    bulk_set,
    parse_counter,
)

ALL_BYTES = bytes(range(256))


@pytest.fixture
def any_backend(contract_backend: Backend) -> Backend:
    """Every backend in turn, the async ones too."""
    return contract_backend


def test_an_unknown_key_is_none(any_backend: Backend) -> None:
    assert any_backend.get("never-written") is None


def test_set_then_get_returns_the_exact_bytes(any_backend: Backend) -> None:
    any_backend.set("k", ALL_BYTES, 60)
    assert any_backend.get("k") == ALL_BYTES


@pytest.mark.parametrize(
    "value",
    [b"\x00", b"\xff\xfe\x00\x01", "é€😀".encode(), b"\x80" * 1000, ALL_BYTES * 400],
    ids=["nul", "non-utf8", "utf8", "high-bytes", "100k"],
)
def test_values_are_binary_safe(any_backend: Backend, value: bytes) -> None:
    any_backend.set("k", value, 60)
    assert any_backend.get("k") == value
    assert any_backend.add("other", value, 60) is True
    assert any_backend.get("other") == value


def test_keys_are_distinct_and_any_text(any_backend: Backend) -> None:
    keys = ["a", "A", "a ", "é", "😀", "k/1", "k:1", "x" * 1000]
    for index, key in enumerate(keys):
        any_backend.set(key, str(index).encode(), 60)
    assert [any_backend.get(key) for key in keys] == [str(i).encode() for i in range(len(keys))]


def test_set_overwrites(any_backend: Backend) -> None:
    any_backend.set("k", b"one", 60)
    any_backend.set("k", b"two", 60)
    assert any_backend.get("k") == b"two"


def test_add_stores_only_when_the_key_is_empty(any_backend: Backend) -> None:
    assert any_backend.add("k", b"first", 60) is True
    assert any_backend.add("k", b"second", 60) is False
    assert any_backend.get("k") == b"first"


def test_add_never_overwrites_a_set_value(any_backend: Backend) -> None:
    any_backend.set("k", b"invalidation", 60)
    assert any_backend.add("k", b"fill", 60) is False
    assert any_backend.get("k") == b"invalidation"


def test_delete_removes_and_then_add_stores_again(any_backend: Backend) -> None:
    any_backend.set("k", b"v", 60)
    any_backend.delete("k")
    assert any_backend.get("k") is None
    assert any_backend.add("k", b"again", 60) is True
    assert any_backend.get("k") == b"again"


def test_deleting_a_missing_key_is_not_an_error(any_backend: Backend) -> None:
    any_backend.delete("never-written")
    assert any_backend.get("never-written") is None


def test_entries_expire_after_their_ttl(any_backend: Backend) -> None:
    any_backend.set("short", b"v", 0.5)
    any_backend.set("long", b"v", 60)
    assert any_backend.get("short") == b"v"
    time.sleep(0.6)
    assert any_backend.get("short") is None
    assert any_backend.get("long") == b"v"


def test_add_stores_over_an_expired_entry(any_backend: Backend) -> None:
    assert any_backend.add("k", b"old", 0.05) is True
    time.sleep(0.1)
    assert any_backend.add("k", b"new", 60) is True
    assert any_backend.get("k") == b"new"


def test_a_ttl_that_is_not_positive_is_refused(any_backend: Backend) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be"):
        any_backend.set("k", b"v", 0)
    assert any_backend.get("k") is None


# get_many (optional BatchBackend method): both built-in backends have it.


def batch(backend: Backend) -> BatchBackend:
    assert isinstance(backend, BatchBackend)
    return backend


def test_get_many_keeps_the_order_of_the_keys_with_none_where_absent(
    any_backend: Backend,
) -> None:
    keys = [f"k{n}" for n in range(100)]
    for n, key in enumerate(keys):
        if n % 3:
            any_backend.set(key, ALL_BYTES[n:] + key.encode(), 60)
    expected = [None if n % 3 == 0 else ALL_BYTES[n:] + key.encode() for n, key in enumerate(keys)]
    assert batch(any_backend).get_many(keys) == expected
    assert batch(any_backend).get_many(list(reversed(keys))) == list(reversed(expected))


def test_get_many_answers_every_occurrence_of_a_repeated_key(any_backend: Backend) -> None:
    any_backend.set("a", b"1", 60)
    any_backend.set("b", b"2", 60)
    assert batch(any_backend).get_many(["a", "x", "a", "b", "x", "a"]) == [
        b"1",
        None,
        b"1",
        b"2",
        None,
        b"1",
    ]


def test_get_many_of_no_key_or_one_key(any_backend: Backend) -> None:
    any_backend.set("k", b"v", 60)
    assert batch(any_backend).get_many([]) == []
    assert batch(any_backend).get_many(["k"]) == [b"v"]
    assert batch(any_backend).get_many(("never-written",)) == [None]


def test_get_many_does_not_return_expired_entries(any_backend: Backend) -> None:
    any_backend.set("short", b"s", 0.3)
    any_backend.set("long", b"l", 60)
    assert batch(any_backend).get_many(["short", "long"]) == [b"s", b"l"]
    time.sleep(0.4)
    assert batch(any_backend).get_many(["short", "long", "short"]) == [None, b"l", None]
    assert any_backend.add("short", b"again", 60) is True


# add_many / set_many (optional BulkWriteBackend methods): both built-in backends
# have them; bulk_add / bulk_set fall back to one call per key for backends without.


def bulk(backend: Backend) -> BulkWriteBackend:
    assert isinstance(backend, BulkWriteBackend)
    return backend


class OneKeyAtATime:
    """A backend with only the five one-key methods, in front of ``backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.get, self.add, self.set = backend.get, backend.add, backend.set
        self.delete, self.close = backend.delete, backend.close


def test_add_many_stores_only_where_the_key_is_empty_and_answers_in_order(
    any_backend: Backend,
) -> None:
    any_backend.set("b", b"there", 60)
    entries = [("a", b"1", 60.0), ("b", b"2", 60.0), ("c", ALL_BYTES, 60.0), ("a", b"4", 60.0)]
    # The repeated key: the first occurrence stores, the second finds it there.
    assert bulk(any_backend).add_many(entries) == [True, False, True, False]
    assert batch(any_backend).get_many(["a", "b", "c"]) == [b"1", b"there", ALL_BYTES]


def test_set_many_overwrites_every_key_and_the_last_occurrence_wins(
    any_backend: Backend,
) -> None:
    any_backend.set("a", b"old", 60)
    entries = [("a", b"1", 60.0), ("b", ALL_BYTES, 60.0), ("a", b"3", 60.0)]
    assert bulk(any_backend).set_many(entries) == [None, None, None]
    assert batch(any_backend).get_many(["a", "b"]) == [b"3", ALL_BYTES]
    assert bulk(any_backend).add_many([("a", b"fill", 60.0)]) == [False]


def test_bulk_writes_of_many_keys_match_one_key_at_a_time(any_backend: Backend) -> None:
    keys = [f"k{n}" for n in range(100)]
    assert bulk(any_backend).set_many([(k, k.encode(), 60.0) for k in keys[::2]]) == [None] * 50
    added = bulk(any_backend).add_many([(k, b"fill", 60.0) for k in keys])
    assert added == [n % 2 == 1 for n in range(100)]
    assert batch(any_backend).get_many(keys) == [
        k.encode() if n % 2 == 0 else b"fill" for n, k in enumerate(keys)
    ]


def test_bulk_writes_of_nothing_answer_nothing(any_backend: Backend) -> None:
    assert bulk(any_backend).add_many([]) == []
    assert bulk(any_backend).set_many([]) == []


def test_each_entry_of_a_bulk_write_has_its_own_ttl(any_backend: Backend) -> None:
    bulk(any_backend).set_many([("s", b"v", 0.3), ("l", b"v", 60.0)])
    bulk(any_backend).add_many([("as", b"v", 0.3), ("al", b"v", 60.0)])
    time.sleep(0.4)
    assert batch(any_backend).get_many(["s", "l", "as", "al"]) == [None, b"v", None, b"v"]
    assert bulk(any_backend).add_many([("s", b"again", 60.0), ("l", b"x", 60.0)]) == [True, False]


@pytest.mark.parametrize("method", ["add_many", "set_many"])
def test_a_bulk_write_with_a_ttl_that_is_not_positive_writes_nothing(
    any_backend: Backend, method: str
) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be"):
        getattr(bulk(any_backend), method)([("a", b"v", 60.0), ("b", b"v", 0.0)])
    assert batch(any_backend).get_many(["a", "b"]) == [None, None]


def test_bulk_helpers_write_one_key_at_a_time_where_a_backend_has_no_bulk_methods(
    any_backend: Backend,
) -> None:
    plain = OneKeyAtATime(any_backend)
    assert not isinstance(plain, BulkWriteBackend)
    assert bulk_set(plain, [("a", b"1", 60.0), ("b", b"2", 60.0)]) == [None, None]
    assert bulk_add(plain, [("a", b"x", 60.0), ("c", b"3", 60.0)]) == [False, True]
    assert batch(any_backend).get_many(["a", "b", "c"]) == [b"1", b"2", b"3"]
    outcome = bulk_set(plain, [("d", b"v", 60.0), ("e", b"v", -1.0), ("f", b"v", 60.0)])
    assert outcome[0] is None
    assert isinstance(outcome[1], ValueError)
    assert outcome[2] is None


def test_bulk_helpers_never_raise(any_backend: Backend) -> None:
    # The backend's own method raises (a bad TTL): every entry comes back as its error.
    outcome = bulk_add(any_backend, [("a", b"v", 60.0), ("b", b"v", 0.0)])
    assert len(outcome) == 2
    assert all(isinstance(error, ValueError) for error in outcome)
    assert bulk_set(any_backend, []) == []


# Counters (optional CounterBackend methods, AsyncBackend's required ones): every
# built-in backend has them. The generations of the Query/Scan cache (issue 13).


def counting(backend: Backend) -> CounterBackend:
    assert isinstance(backend, CounterBackend)
    return backend


def test_a_counter_starts_at_1_and_counts_up(any_backend: Backend) -> None:
    assert [counting(any_backend).incr("g", 60) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert counting(any_backend).incr("other", 60) == 1


def test_get_reads_a_counter_as_its_ascii_decimal(any_backend: Backend) -> None:
    assert any_backend.get("g") is None  # a missing counter: generation 0
    for _ in range(12):
        counting(any_backend).incr("g", 60)
    assert any_backend.get("g") == b"12"
    assert parse_counter(b"12") == 12
    assert batch(any_backend).get_many(["g", "h"]) == [b"12", None]


@pytest.mark.parametrize(("stored", "then"), [(b"41", 42), (b"0", 1), (b"-2", -1), (b"-1", 0)])
def test_an_integer_written_by_set_is_counted_on(
    any_backend: Backend, stored: bytes, then: int
) -> None:
    any_backend.set("g", stored, 60)
    assert counting(any_backend).incr("g", 60) == then
    assert any_backend.get("g") == str(then).encode()


def test_a_counter_restarts_at_1_after_it_expires(any_backend: Backend) -> None:
    assert counting(any_backend).incr("g", 0.3) == 1
    assert counting(any_backend).incr("g", 0.3) == 2
    time.sleep(0.5)
    assert any_backend.get("g") is None
    assert counting(any_backend).incr("g", 60) == 1


def test_every_incr_sets_the_ttl_it_is_given(any_backend: Backend) -> None:
    counting(any_backend).incr("refreshed", 1.0)
    counting(any_backend).incr("shortened", 60)
    any_backend.set("set-short", b"7", 0.4)
    time.sleep(0.6)
    counting(any_backend).incr("refreshed", 1.0)  # 0.6 s in: good for another 1.0 s
    counting(any_backend).incr("shortened", 0.3)  # shortened too, not only extended
    counting(any_backend).incr("set-short", 60)  # expired: counts from 0 again
    time.sleep(0.6)  # 1.2 s after the first incr, 0.6 s after the second
    assert any_backend.get("refreshed") == b"2"
    assert any_backend.get("shortened") is None
    assert any_backend.get("set-short") == b"1"
    time.sleep(0.6)
    assert any_backend.get("refreshed") is None


@pytest.mark.parametrize(
    "value",
    [b"abc", b"", b"1.5", b" 1", b"1 ", b"0x10", b"\xff", ALL_BYTES, b"9223372036854775807"],
    ids=["text", "empty", "decimal", "space-before", "space-after", "hex", "byte", "binary", "max"],
)
def test_incr_of_a_value_that_is_not_a_counter_raises_and_leaves_it(
    any_backend: Backend, value: bytes
) -> None:
    any_backend.set("g", value, 60)
    with pytest.raises(NotACounterError):
        counting(any_backend).incr("g", 60)
    assert any_backend.get("g") == value
    assert issubclass(NotACounterError, BackendError)  # a failed call, to any caller


def test_many_concurrent_increments_of_one_key_each_get_their_own_value(
    any_backend: Backend,
) -> None:
    if isinstance(any_backend, SyncOverAsync):  # an event loop: tasks, not threads
        counters: Any = any_backend.backend

        async def all_at_once() -> list[int]:
            return list(await asyncio.gather(*(counters.incr("g", 60) for _ in range(200))))

        values = any_backend.run(all_at_once())
    else:
        values = in_threads(lambda: counting(any_backend).incr("g", 60), threads=8, each=25)
    assert sorted(values) == list(range(1, 201))  # no increment lost, none answered twice
    assert any_backend.get("g") == b"200"


def in_threads(call: Callable[[], int], *, threads: int, each: int) -> list[int]:
    """``call`` ``each`` times in each of ``threads`` threads started together, with the
    interpreter switching threads as often as it can (so a missing lock shows)."""
    start = threading.Barrier(threads)
    values: list[int] = []

    def work() -> None:
        start.wait()
        mine = [call() for _ in range(each)]
        values.extend(mine)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(work) for _ in range(threads)]:
                done.result()
    finally:
        sys.setswitchinterval(interval)
    return values


def test_incr_many_answers_per_entry_and_counts_a_repeated_key_each_time(
    any_backend: Backend,
) -> None:
    any_backend.set("bad", b"not a number", 60)
    any_backend.set("b", b"10", 60)
    entries = [("a", 60.0), ("bad", 60.0), ("b", 60.0), ("a", 60.0), ("c", 0.3)]
    results = counting(any_backend).incr_many(entries)
    assert len(results) == 5
    assert isinstance(results[1], NotACounterError)  # the others are counted all the same
    assert {results[0], results[3]} == {1, 2}  # once per occurrence, in some order
    assert (results[2], results[4]) == (11, 1)
    assert batch(any_backend).get_many(["a", "bad", "b", "c"]) == [
        b"2",
        b"not a number",
        b"11",
        b"1",
    ]
    time.sleep(0.5)
    assert any_backend.get("c") is None  # each entry has its own TTL


def test_incr_many_of_many_keys_matches_incr_one_key_at_a_time(any_backend: Backend) -> None:
    keys = [f"g{n}" for n in range(100)]
    assert counting(any_backend).incr_many([(k, 60.0) for k in keys[::2]]) == [1] * 50
    assert counting(any_backend).incr_many([(k, 60.0) for k in keys]) == [
        2 if n % 2 == 0 else 1 for n in range(100)
    ]
    assert counting(any_backend).incr_many([]) == []


def test_a_ttl_that_is_not_positive_counts_nothing(any_backend: Backend) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be"):
        counting(any_backend).incr("g", 0)
    with pytest.raises(ValueError, match="ttl_seconds must be"):
        counting(any_backend).incr_many([("a", 60.0), ("b", -1.0)])
    assert batch(any_backend).get_many(["g", "a", "b"]) == [None, None, None]


class CountsOneByOne(OneKeyAtATime):
    """A backend with ``incr`` but no ``incr_many``."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.incr = counting(backend).incr


def test_bulk_incr_counts_one_key_at_a_time_where_a_backend_has_no_incr_many(
    any_backend: Backend,
) -> None:
    any_backend.set("bad", b"x", 60)
    outcome = bulk_incr(CountsOneByOne(any_backend), [("a", 60.0), ("bad", 60.0), ("a", 60.0)])
    assert outcome[0::2] == [1, 2]
    assert isinstance(outcome[1], NotACounterError)


def test_bulk_incr_never_raises(any_backend: Backend) -> None:
    entries = [("a", 60.0), ("b", 0.0)]
    outcome = bulk_incr(any_backend, entries)  # the backend's incr_many raises: bad TTL
    assert len(outcome) == 2
    assert all(isinstance(error, ValueError) for error in outcome)
    without = bulk_incr(OneKeyAtATime(any_backend), entries)  # keeps no counters
    assert len(without) == 2
    assert all(isinstance(error, BackendError) for error in without)
    assert "keeps no counters" in str(without[0])
    assert bulk_incr(any_backend, []) == []
    assert any_backend.get("a") is None
