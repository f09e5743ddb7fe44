"""The near cache's store (backends/near.py): bounded, expiring, used only while live,
and never filled from a lookup that an invalidation or a flush came after."""

from __future__ import annotations

import threading

import pytest

from momento_botocore.backends.near import (
    MAX_MESSAGE_BYTES,
    NearStore,
    decode_message,
    encode_keys,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def live_store(clock: Clock, **options: int) -> NearStore:
    store = NearStore(options.get("items", 100), options.get("bytes", 1 << 20), 5.0, clock=clock)
    store.flush(live=True)
    return store


def test_nothing_is_held_or_served_before_the_subscription_is_live(clock: Clock) -> None:
    store = NearStore(100, 1 << 20, 5.0, clock=clock)
    token = store.token()
    assert not store.fill("k", b"v", token)
    store.flush(live=True)
    assert not store.fill("k", b"v", token)  # the lookup began before it was live
    assert store.fill("k", b"v", store.token())
    assert store.get("k") == b"v"


def test_entries_expire_after_the_near_ttl(clock: Clock) -> None:
    store = live_store(clock)
    store.fill("k", b"v", store.token())
    clock.now += 4.9
    assert store.get("k") == b"v"
    clock.now += 0.2
    assert store.get("k") is None


def test_a_fill_from_a_lookup_an_invalidation_came_after_is_refused(clock: Clock) -> None:
    store = live_store(clock)
    token = store.token()  # the lookup begins
    store.invalidate(["k"])  # a write's push arrives before the lookup's answer
    assert not store.fill("k", b"old", token)
    assert store.get("k") is None
    assert store.fill("other", b"v", token)  # another key's invalidation does not matter
    assert store.fill("k", b"new", store.token())  # a lookup begun after it


def test_an_invalidation_after_the_fill_evicts(clock: Clock) -> None:
    store = live_store(clock)
    store.fill("k", b"old", store.token())
    assert store.invalidate(["k", "never-held"]) == 1
    assert store.get("k") is None


def test_a_flush_empties_and_refuses_fills_from_before_it(clock: Clock) -> None:
    store = live_store(clock)
    store.fill("a", b"v", store.token())
    token = store.token()
    store.flush(live=True)  # a gap in the topic: anything may have been missed
    assert store.get("a") is None
    assert not store.fill("b", b"v", token)
    store.flush(live=False)  # the subscription is lost
    assert not store.fill("b", b"v", store.token())
    assert store.get("b") is None


def test_forgotten_invalidations_refuse_every_fill_from_before_them(clock: Clock) -> None:
    store = NearStore(100, 1 << 20, 5.0, clock=clock, remembered_invalidations=2)
    store.flush(live=True)
    token = store.token()
    store.invalidate(["k"])
    store.invalidate(["x"])
    store.invalidate(["y"])  # "k" is forgotten: its seq is remembered as the floor
    assert not store.fill("k", b"old", token)
    assert not store.fill("z", b"v", token)  # conservative: any key
    assert store.fill("k", b"new", store.token())


def test_the_store_is_bounded_by_items_and_bytes(clock: Clock) -> None:
    store = live_store(clock, items=3, bytes=1000)
    for n in range(5):
        store.fill(f"k{n}", b"v", store.token())
    assert len(store) == 3
    assert store.get("k0") is None
    assert store.get("k4") == b"v"
    store.fill("big", b"x" * 996, store.token())  # 999 bytes with its key
    assert store.get("big") is not None
    assert len(store) == 1  # the older entries made room
    assert not store.fill("huge", b"x" * 2000, store.token())


def test_fills_and_invalidations_race_without_a_stale_entry(clock: Clock) -> None:
    """Readers fill "k" with the version they looked up while a writer moves it on and
    invalidates: whatever the interleaving, a held value is never older than the last
    invalidation's version once that invalidation is done."""
    store = live_store(clock)
    version = [0]
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            token = store.token()
            seen = version[0]
            store.fill("k", str(seen).encode(), token)

    def writer() -> None:
        for _ in range(2000):
            version[0] += 1
            current = version[0]
            store.invalidate(["k"])
            held = store.get("k")
            if held is not None and int(held) < current:
                errors.append(f"held {held!r} after version {current} was invalidated")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    writer()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []


def test_messages_carry_every_key_and_their_sender_in_bounded_pieces() -> None:
    keys = [f"mbc2:123456789012:us-east-1:orders:{n:060d}" for n in range(300)]
    messages = encode_keys(keys, "0123456789abcdef")
    assert len(messages) > 1
    assert all(len(message) <= MAX_MESSAGE_BYTES for message in messages)
    decoded = [decode_message(message) for message in messages]
    assert {found[0] for found in decoded if found} == {"0123456789abcdef"}
    assert [key for found in decoded if found for key in found[1]] == keys
    assert decode_message(b"mbi1*") is None  # empty every near cache
    assert decode_message(b"something else") is None
    assert decode_message(b'mbi10000000000000000["a", 1]') is None
    with pytest.raises(ValueError, match="sender"):
        encode_keys(keys, "short")
