"""The stale-set race, made to happen on purpose (events, not sleeps).

A reader misses, reads the OLD item from DynamoDB, and is held before its fill.
Meanwhile another client writes and the tailer applies the stream record. Then
the reader fills. Contract 3 says the fill (add-if-absent) loses to the stream's
overwrite, so the old value never lands in the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from stream_world import World

from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.core.entries import EntryKind

WAIT = 10.0  # seconds; only reached when something is broken


class HeldReader:
    """Runs one read in a thread and holds it between DynamoDB's answer and the fill."""

    def __init__(self, world: World, pk: str, mechanism: str, backend: GatedBackend) -> None:
        self.world = world
        self.answered = threading.Event()
        self.resume = threading.Event()
        self.result: list[Any] = []
        self._armed = True
        if mechanism == "after-call hook":
            # Runs before the library's fill handler on the same event.
            world.reader.meta.events.register_first(
                "after-call.dynamodb.GetItem", self._hold, unique_id="test-hold-reader"
            )
        else:
            backend.gate = self._hold_fill
        self._thread = threading.Thread(target=self._read, args=(pk,), daemon=True)

    def _hold(self, **_: Any) -> None:
        if self._armed:
            self._armed = False
            self.answered.set()
            assert self.resume.wait(WAIT), "the test never resumed the reader"

    def _hold_fill(self) -> None:
        self._hold()

    def _read(self, pk: str) -> None:
        try:
            self.result.append(self.world.read(pk))
        except BaseException as error:
            self.result.append(error)

    def start_and_wait_for_answer(self) -> None:
        self._thread.start()
        assert self.answered.wait(WAIT), "the reader never got DynamoDB's answer"

    def finish(self) -> Any:
        self.resume.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive()
        (value,) = self.result
        if isinstance(value, BaseException):
            raise value
        return value


class GatedBackend(MemoryBackend):
    """A memory backend whose add (the fill) can be held, and optionally made to overwrite."""

    def __init__(self, *, fill_overwrites: bool = False) -> None:
        super().__init__()
        self.gate: Callable[[], None] | None = None
        self.fill_overwrites = fill_overwrites

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if self.gate is not None:
            self.gate()
        if self.fill_overwrites:  # a broken cache: what Contract 3 forbids
            self.set(key, value, ttl_seconds)
            return True
        return super().add(key, value, ttl_seconds)


MECHANISMS = ("after-call hook", "backend add")
VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY", "OLD_IMAGE")


def make_world(endpoint: str, view: str, **backend_options: Any) -> tuple[World, GatedBackend]:
    backend = GatedBackend(**backend_options)
    return World(endpoint, view=view, backend=backend), backend


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("view", VIEWS)
def test_a_fill_after_the_stream_refresh_does_not_bring_back_the_old_value(
    endpoint: str, view: str, mechanism: str
) -> None:
    world, backend = make_world(endpoint, view)
    world.put("a", 1)
    reader = HeldReader(world, "a", mechanism, backend)

    reader.start_and_wait_for_answer()  # it read v1 from DynamoDB; its fill is pending
    world.update("a", 2)
    world.tailer.drain()  # INSERT v1 + MODIFY v2, collapsed: the entry is overwritten
    expected = (
        EntryKind.ITEM if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") else EntryKind.TOMBSTONE
    )
    assert world.entry("a").kind is expected  # type: ignore[union-attr]
    assert reader.finish() == 1  # the reader returns what it read...

    entry = world.entry("a")  # ...but its fill did not land
    assert entry is not None
    assert entry.kind is expected
    if expected is EntryKind.ITEM:
        assert entry.item is not None
        assert entry.item["v"] == {"N": "2"}
    assert world.read("a") == 2
    assert world.read("a") == 2


@pytest.mark.parametrize("view", VIEWS)
def test_a_fill_after_a_stream_delete_does_not_bring_the_item_back(
    endpoint: str, view: str
) -> None:
    world, backend = make_world(endpoint, view)
    world.put("a", 1)
    reader = HeldReader(world, "a", "after-call hook", backend)

    reader.start_and_wait_for_answer()
    world.delete("a")
    world.tailer.drain()
    assert reader.finish() == 1

    assert world.entry("a").kind is EntryKind.ABSENT  # type: ignore[union-attr]
    assert world.read("a") is None


@pytest.mark.parametrize("view", VIEWS)
def test_an_absent_fill_after_a_stream_insert_does_not_hide_the_item(
    endpoint: str, view: str
) -> None:
    world, backend = make_world(endpoint, view)
    reader = HeldReader(world, "a", "backend add", backend)

    reader.start_and_wait_for_answer()  # DynamoDB said: no such item
    world.put("a", 1)
    world.tailer.drain()
    assert reader.finish() is None

    assert world.read("a") == 1


@pytest.mark.parametrize("view", VIEWS)
def test_a_stale_fill_that_lands_before_the_stream_record_is_overwritten_by_it(
    endpoint: str, view: str
) -> None:
    world, backend = make_world(endpoint, view)
    world.put("a", 1)
    reader = HeldReader(world, "a", "after-call hook", backend)

    reader.start_and_wait_for_answer()
    world.update("a", 2)
    assert reader.finish() == 1  # the fill lands first: the cache holds v1 for now
    assert world.read("a") == 1
    world.tailer.drain()

    assert world.read("a") == 2


def test_the_race_is_real_a_fill_that_overwrites_would_leave_the_old_value(
    endpoint: str,
) -> None:
    """The same interleaving against a cache whose fill overwrites: the harness catches it."""
    world, backend = make_world(endpoint, "NEW_IMAGE", fill_overwrites=True)
    world.put("a", 1)
    reader = HeldReader(world, "a", "backend add", backend)

    reader.start_and_wait_for_answer()
    world.update("a", 2)
    world.tailer.drain()
    reader.finish()

    assert world.read("a") == 1, "with an overwriting fill the old value should be back"
