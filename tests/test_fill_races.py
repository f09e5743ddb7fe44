"""Contract 3 on every fill path, over moto's server, on each backend: GetItem and
BatchGetItem, each filling an ITEM, an ABSENT entry, and a projected read's full item.

* A held reader: the read is paused between its cache lookup and its fill (in the
  backend's write, whichever one the fill uses), an invalidation lands, then the fill
  goes on. A fill only adds: the invalidation's entry stays.
* A slow read: DynamoDB answers, then the read takes longer than the fill window,
  during which an invalidation comes and goes (a tombstone lives tombstone_ttl).
  A read that started that long ago does not fill: its answer may be older than the
  write the expired tombstone stood for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from backend_wrappers import HeldBackend, HeldCall
from conftest import ACCOUNT, REGION, create_table, new_session

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import Backend
from momento_botocore.core.entries import EntryKind, decode, encode_item, encode_tombstone
from momento_botocore.core.keys import cache_key

TABLE = "items"
KEY = {"pk": {"S": "a"}}  # the key the race is about
OTHER = {"pk": {"S": "b"}}  # always there: a batch reads it too
CACHE_KEY = cache_key(ACCOUNT, REGION, TABLE, KEY)
#: The fill window of the slow-read tests (tombstone_ttl; absent_ttl stays 60 s).
WINDOW = 0.3


def item(key: dict[str, Any], version: int) -> dict[str, Any]:
    return {**key, "v": {"N": str(version)}, "extra": {"S": "not projected"}}


@dataclass(frozen=True)
class FillPath:
    """One way a read fills the cache; :meth:`read` answers the version of KEY it got."""

    operation: str
    item_exists: bool  # False: DynamoDB finds nothing, the fill is an ABSENT entry
    projection: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        what = "item" if self.item_exists else "absent"
        return f"{self.operation}-{what}{'-projected' if self.projection else ''}"

    def read(self, client: Any) -> int | None:
        if self.operation == "GetItem":
            found = client.get_item(TableName=TABLE, Key=KEY, **self.projection).get("Item")
        else:
            answer = client.batch_get_item(
                RequestItems={TABLE: {"Keys": [KEY, OTHER], **self.projection}}
            )
            assert answer["UnprocessedKeys"] == {}
            ours = [i for i in answer["Responses"][TABLE] if i["pk"] == KEY["pk"]]
            assert len(ours) <= 1
            found = ours[0] if ours else None
        if found is None:
            return None
        if self.projection:
            assert "extra" not in found, "the answer was not projected"
        return int(found["v"]["N"])


PATHS = [
    FillPath("GetItem", item_exists=True),
    FillPath("GetItem", item_exists=False),
    FillPath("GetItem", item_exists=True, projection={"ProjectionExpression": "v"}),
    FillPath("BatchGetItem", item_exists=True),
    FillPath("BatchGetItem", item_exists=False),
    FillPath("BatchGetItem", item_exists=True, projection={"ProjectionExpression": "pk, v"}),
]


class World:
    """A table with OTHER (and KEY, for paths that fill an item) at version 1; a reader
    and a writer on one registration over a held backend; a plain client."""

    def __init__(
        self, endpoint: str, backend: Backend, path: FillPath, config: CacheConfig
    ) -> None:
        self.plain = new_session().client("dynamodb", endpoint_url=endpoint)
        create_table(self.plain, TABLE)
        self.plain.put_item(TableName=TABLE, Item=item(OTHER, 1))
        if path.item_exists:
            self.plain.put_item(TableName=TABLE, Item=item(KEY, 1))
        self.backend = HeldBackend(backend)
        session = new_session()
        momento_botocore.register(session, config=config, backend=self.backend)
        self.reader = session.client("dynamodb", endpoint_url=endpoint)
        self.writer = session.client("dynamodb", endpoint_url=endpoint)
        self.path = path

    @property
    def cache(self) -> Backend:
        """The backend itself, past the wrapper: what the stream invalidator writes to."""
        return self.backend.inner

    def entry(self) -> Any:
        raw = self.cache.get(CACHE_KEY)
        return None if raw is None else decode(raw)

    def read(self) -> int | None:
        return self.path.read(self.reader)


def write_through_a_registered_client(world: World) -> tuple[EntryKind, int | None]:
    world.writer.put_item(TableName=TABLE, Item=item(KEY, 2))
    return EntryKind.TOMBSTONE, None


def stream_refresh(world: World) -> tuple[EntryKind, int | None]:
    """A write elsewhere, and the stream invalidator's NEW_IMAGE refresh of the entry."""
    world.plain.put_item(TableName=TABLE, Item=item(KEY, 2))
    world.cache.set(CACHE_KEY, encode_item(item(KEY, 2)), 60)
    return EntryKind.ITEM, 2


INVALIDATIONS: list[Callable[[World], tuple[EntryKind, int | None]]] = [
    write_through_a_registered_client,
    stream_refresh,
]


@pytest.mark.parametrize("invalidate", INVALIDATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("path", PATHS, ids=str)
def test_an_invalidation_during_a_read_is_not_overwritten_by_its_fill(
    endpoint: str,
    backend_factory: Callable[..., Backend],
    path: FillPath,
    invalidate: Callable[[World], tuple[EntryKind, int | None]],
) -> None:
    world = World(endpoint, backend_factory(), path, CacheConfig(ttl=60))
    read = HeldCall(world.read)
    world.backend.on_write = read.hold

    read.start()  # looked up (a miss), DynamoDB answered; held at the fill's write
    kind, version = invalidate(world)
    assert read.finish() == (1 if path.item_exists else None)  # what DynamoDB said

    entry = world.entry()
    assert entry is not None, f"the {kind.name} is gone"
    assert entry.kind is kind, f"the fill overwrote the {kind.name}"
    if version is not None:
        assert entry.item == item(KEY, version)
    assert world.read() == 2
    assert world.read() == 2


@pytest.mark.parametrize("path", PATHS, ids=str)
def test_a_read_slower_than_the_fill_window_does_not_fill(
    endpoint: str, backend_factory: Callable[..., Backend], path: FillPath, driver: str
) -> None:
    world = World(endpoint, backend_factory(), path, CacheConfig(ttl=60, tombstone_ttl=WINDOW))
    slowed: list[bool] = []

    def outlived_by_an_invalidation(**_: Any) -> None:
        if slowed:
            return  # only the first read is slow
        slowed.append(True)
        # DynamoDB has answered version 1 (or nothing). A write elsewhere, whose
        # stream record tombstones the key (KEYS_ONLY view) for tombstone_ttl...
        world.plain.put_item(TableName=TABLE, Item=item(KEY, 2))
        world.cache.set(CACHE_KEY, encode_tombstone(), WINDOW)
        time.sleep(WINDOW * 1.5)  # ...and the read outlives the tombstone

    async def outlived_on_the_loop(**_: Any) -> None:  # the same, for the async driver
        if slowed:
            return
        slowed.append(True)
        await world.plain.put_item(TableName=TABLE, Item=item(KEY, 2))  # (awaitable here)
        world.cache.set(CACHE_KEY, encode_tombstone(), WINDOW)
        await asyncio.sleep(WINDOW * 1.5)

    world.reader.meta.events.register(
        f"response-received.dynamodb.{path.operation}",
        outlived_on_the_loop if driver == "async" else outlived_by_an_invalidation,
    )
    assert world.read() == (1 if path.item_exists else None)
    assert slowed, "the read never got DynamoDB's answer"

    assert world.entry() is None, "a read older than the fill window filled the cache"
    assert world.read() == 2
