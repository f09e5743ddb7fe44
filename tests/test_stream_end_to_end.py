"""Writes made by anyone reach the cache through the stream, without waiting for the TTL."""

from __future__ import annotations

import pytest
from stream_world import TABLE, World

from momento_botocore.core.entries import EntryKind
from momento_botocore.tailer import LATEST

IMAGE_VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
ALL_VIEWS = (*IMAGE_VIEWS, "KEYS_ONLY", "OLD_IMAGE")


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_an_update_by_another_client_is_read_after_the_tailer_applies_it(
    endpoint: str, view: str
) -> None:
    world = World(endpoint, view=view)
    world.put("a", 1)
    assert world.read("a") == 1  # miss, fill
    assert world.read("a") == 1
    assert world.sent.count == 1  # served from the cache

    world.update("a", 2)
    assert world.read("a") == 1, "no stream applied yet: the cached value is served"
    world.tailer.drain()

    sent_before = world.sent.count
    assert world.read("a") == 2
    if view in IMAGE_VIEWS:
        assert world.sent.count == sent_before, "a NEW_IMAGE refresh should serve from cache"
        assert world.entry("a").kind is EntryKind.ITEM  # type: ignore[union-attr]
    else:
        assert world.sent.count == sent_before + 1, "a tombstone sends the read to DynamoDB"


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_a_delete_by_another_client_is_read_as_absent(endpoint: str, view: str) -> None:
    world = World(endpoint, view=view)
    world.put("a", 1)
    assert world.read("a") == 1
    world.delete("a")
    world.tailer.drain()

    sent_before = world.sent.count
    assert world.read("a") is None
    assert world.sent.count == sent_before, "the ABSENT entry answers the read"


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_an_insert_after_a_cached_absence_is_read(endpoint: str, view: str) -> None:
    world = World(endpoint, view=view)
    assert world.read("a") is None  # fills ABSENT
    assert world.read("a") is None
    assert world.sent.count == 1
    world.put("a", 1)
    world.tailer.drain()
    assert world.read("a") == 1


def test_table_resource_reads_see_stream_refreshes(endpoint: str) -> None:
    world = World(endpoint, view="NEW_AND_OLD_IMAGES")
    table = world.reader_session.resource("dynamodb", endpoint_url=endpoint).Table(TABLE)
    world.put("a", 1)
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == 1
    world.update("a", 5)
    world.tailer.drain()
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == 5


def test_a_tailer_thread_from_latest_keeps_the_cache_fresh(endpoint: str) -> None:
    world = World(endpoint, view="NEW_IMAGE", start=LATEST, poll_interval=0.02)
    world.put("a", 1)  # before the tailer starts: LATEST does not replay it
    with world.tailer:
        assert world.tailer.wait_until_caught_up(10)
        assert world.read("a") == 1
        for version in (2, 3, 4):
            world.update("a", version)
            assert world.tailer.wait_until_caught_up(10)
            assert world.read("a") == version
        world.delete("a")
        assert world.tailer.wait_until_caught_up(10)
        assert world.read("a") is None
    assert world.tailer.stats.records_read >= 4
