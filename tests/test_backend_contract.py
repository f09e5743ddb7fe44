"""One contract for every backend: run against memory and Momento (local server, real SDK)."""

from __future__ import annotations

import time

import pytest

from momento_botocore.backends import Backend, BatchBackend

ALL_BYTES = bytes(range(256))


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
    with pytest.raises(ValueError):
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
