"""fences.py on its own: fencing, verifying under a stamp, expiry, overflow, sharing."""

from __future__ import annotations

import gc

import pytest

from momento_botocore.fences import Fences, for_cache, same_item
from momento_botocore.pending import PendingTombstones


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_nothing_fenced_is_inactive_and_looks_up_nothing(clock: Clock) -> None:
    fences = Fences(clock=clock)
    assert not fences.active
    assert fences.look("t", "k") is None


def test_a_fenced_key_must_be_verified_and_other_keys_are_free(clock: Clock) -> None:
    fences = Fences(clock=clock)
    assert fences.fence("t", "k", 30)
    assert fences.active
    read = fences.look("t", "k")
    assert read is not None
    assert read.verified is None
    assert fences.look("t", "other") is None


def test_verified_bytes_are_trusted_until_the_next_write(clock: Clock) -> None:
    fences = Fences(clock=clock)
    fences.fence("t", "k", 30)
    read = fences.look("t", "k")
    assert read is not None
    assert fences.verify("k", read.stamp, b"v2")
    again = fences.look("t", "k")
    assert again is not None
    assert again.verified == b"v2"
    fences.fence("t", "k", 30)  # a newer write: what was verified no longer is
    renewed = fences.look("t", "k")
    assert renewed is not None
    assert renewed.verified is None
    assert renewed.stamp > read.stamp


def test_a_read_planned_before_a_newer_write_cannot_verify(clock: Clock) -> None:
    fences = Fences(clock=clock)
    fences.fence("t", "k", 30)
    read = fences.look("t", "k")
    assert read is not None
    fences.fence("t", "k", 30)  # acknowledged while the read was in flight
    assert not fences.verify("k", read.stamp, b"v1")
    now = fences.look("t", "k")
    assert now is not None
    assert now.verified is None


def test_fences_expire_after_their_horizon(clock: Clock) -> None:
    fences = Fences(clock=clock)
    fences.fence("t", "k", 30)
    clock.now += 29.9
    assert fences.look("t", "k") is not None
    clock.now += 0.1
    assert fences.look("t", "k") is None
    assert not fences.active
    assert len(fences) == 0


def test_a_renewed_fence_lasts_from_the_newer_write(clock: Clock) -> None:
    fences = Fences(clock=clock)
    fences.fence("t", "k", 30)
    clock.now += 20
    fences.fence("t", "k", 30)
    clock.now += 20
    assert fences.look("t", "k") is not None


def test_past_the_limit_a_write_fences_its_whole_table_until_its_horizon(clock: Clock) -> None:
    fences = Fences(max_keys=2, clock=clock)
    assert fences.fence("t", "a", 30)
    assert fences.fence("t", "b", 30)
    assert not fences.fence("t", "c", 30)
    for key in ("c", "never-written"):
        read = fences.look("t", key)
        assert read is not None
        assert read.verified is None
        assert not fences.verify(key, read.stamp, b"x")  # nothing is verified meanwhile
    assert fences.look("other-table", "c") is None
    clock.now += 30
    assert fences.look("t", "c") is None
    assert not fences.active


def test_expired_fences_make_room_before_a_table_is_fenced_whole(clock: Clock) -> None:
    fences = Fences(max_keys=2, clock=clock)
    fences.fence("long", "a", 100)  # first, and outlives the next one
    fences.fence("short", "b", 10)
    clock.now += 10
    assert fences.fence("t", "c", 30)  # b's expired fence made room
    assert fences.look("t", "other") is None


def test_one_set_of_fences_per_cache() -> None:
    cache, other = PendingTombstones(), PendingTombstones()
    assert for_cache(cache) is for_cache(cache)
    assert for_cache(cache) is not for_cache(other)
    for_cache(cache).fence("t", "k", 30)
    assert for_cache(other).look("t", "k") is None
    fences = for_cache(cache)
    del cache
    gc.collect()
    assert fences.look("t", "k") is not None  # kept alive by its user, forgotten by the map


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"pk": {"S": "a"}}, {"pk": {"S": "a"}}, True),
        ({"pk": {"S": "a"}, "v": {"N": "1"}}, {"pk": {"S": "a"}, "v": {"N": "2"}}, False),
        ({"s": {"SS": ["x", "y"]}}, {"s": {"SS": ["y", "x"]}}, True),
        ({"m": {"M": {"s": {"NS": ["1", "2"]}}}}, {"m": {"M": {"s": {"NS": ["2", "1"]}}}}, True),
        ({"l": {"L": [{"S": "x"}, {"S": "y"}]}}, {"l": {"L": [{"S": "y"}, {"S": "x"}]}}, False),
        ({"b": {"BS": [b"\x01", b"\x02"]}}, {"b": {"BS": [b"\x02", b"\x01"]}}, True),
        (None, None, True),
        (None, {"pk": {"S": "a"}}, False),
        ({"pk": {"S": "a"}}, None, False),
    ],
)
def test_same_item_compares_states(a: object, b: object, same: bool) -> None:
    assert same_item(a, b) is same  # type: ignore[arg-type]
