"""Concurrency soak: writers, readers on registered clients, the tailer, all at once.

Half the items get stream refreshes (ITEM, from NEW_AND_OLD_IMAGES), half get
KEYS_ONLY-style invalidations (TOMBSTONE), so fills race stream records often.

Each item's ``v`` only grows; a delete takes a version number too. The checks:

* every read: not older than the newest stream record already applied to the
  cache for that item when the read started (the floor);
* sampled points: once the stream has caught up with every write acknowledged at
  the sample, reads return at least those writes (staleness is bounded by stream lag);
* afterwards: every item reads as its last acknowledged write.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from stream_world import TABLE, World

import momento_botocore
from momento_botocore.config import CacheConfig
from momento_botocore.streams import StreamInvalidator

SOAK_SECONDS = 12.0
# On a loaded machine it runs longer, up to the cap, to check at least this much.
SOAK_SECONDS_MAX = 40.0
MINIMUM = {"reads": 500, "writes": 100, "deletes": 5, "samples": 5}
ITEMS = 12
WRITERS = 3
READERS = 4
READ_PAUSE = 0.001
# Short, so entries expire and reads miss and fill all the time, racing the stream's
# refreshes; long against the time between one read's answer and its fill.
ENTRY_TTL = 1.0
# Half the items take the TOMBSTONE path (KEYS_ONLY-style records): a short tombstone
# TTL makes their reads fill again soon after each write, racing the next write.
TOMBSTONE_TTL = 0.1
FILL_DELAY_MAX = 0.03
LAG_LIMIT = 15.0  # seconds a sample may wait for the stream before the test fails


class Ledger:
    """What was written (acknowledged) and what the stream has applied, per item."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.acked: dict[str, int] = {}  # last acknowledged version
        self.deleted: dict[str, set[int]] = {}  # versions that were deletes
        self.applied: dict[str, int] = {}  # newest version applied to the cache

    def ack(self, pk: str, version: int, *, delete: bool) -> None:
        with self.lock:
            self.acked[pk] = version
            if delete:
                self.deleted.setdefault(pk, set()).add(version)

    def deleting(self, pk: str, version: int) -> None:
        """A delete is about to be sent: from now on a read may see it (DynamoDB may
        apply it before the writer hears back), acknowledged or not."""
        with self.lock:
            self.deleted.setdefault(pk, set()).add(version)

    def floor(self, pk: str) -> int:
        with self.lock:
            return self.applied.get(pk, 0)

    def none_allowed(self, pk: str, floor: int) -> bool:
        """A read may say "no item" when a delete at or after the floor was acknowledged."""
        with self.lock:
            return floor == 0 or any(d >= floor for d in self.deleted.get(pk, ()))

    def record_applied(self, pk: str, version: int) -> None:
        with self.lock:
            if version > self.applied.get(pk, 0):
                self.applied[pk] = version
                self.lock.notify_all()

    def wait_applied(self, targets: dict[str, int], timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(
                lambda: all(self.applied.get(pk, 0) >= v for pk, v in targets.items()), timeout
            )


class TrackingHandler:
    """The real invalidator, then the ledger learns which versions are now in the cache.

    Records of ``keys_only`` items reach the invalidator without their images, as a
    KEYS_ONLY stream delivers them (TOMBSTONE path); the ledger still sees the images.
    """

    def __init__(self, invalidator: StreamInvalidator, ledger: Ledger, keys_only: set[str]) -> None:
        self.invalidator = invalidator
        self.ledger = ledger
        self.keys_only = keys_only

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered = [self._as_delivered(record) for record in event["Records"]]
        response = self.invalidator({"Records": delivered}, context)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for record in event["Records"]:
            change = record["dynamodb"]
            if change["SequenceNumber"] in failed:
                continue
            pk = change["Keys"]["pk"]["S"]
            if "NewImage" in change:
                self.ledger.record_applied(pk, int(change["NewImage"]["v"]["N"]))
            elif record["eventName"] == "REMOVE":
                # A delete's version is one more than the item it removed.
                self.ledger.record_applied(pk, int(change["OldImage"]["v"]["N"]) + 1)
        return response

    def _as_delivered(self, record: dict[str, Any]) -> dict[str, Any]:
        change = record["dynamodb"]
        if change["Keys"]["pk"]["S"] not in self.keys_only:
            return record
        stripped = {k: v for k, v in change.items() if k not in ("NewImage", "OldImage")}
        return {**record, "dynamodb": {**stripped, "StreamViewType": "KEYS_ONLY"}}


def _fill_delay(rng: random.Random) -> Any:
    def delay(http_response: Any, **_: Any) -> None:
        if http_response.status_code == 200 and "x-momento-cache" not in (
            http_response.headers or {}
        ):
            time.sleep(rng.uniform(0, FILL_DELAY_MAX))

    return delay


@pytest.mark.slow
# C901: the threads' bodies are closures over the shared ledger and counters, and C901
# counts their branches in this test's.
def test_soak_no_read_is_older_than_what_the_stream_already_applied(  # noqa: C901
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger()
    config = CacheConfig(ttl=ENTRY_TTL, tombstone_ttl=TOMBSTONE_TTL)
    world = World(endpoint, view="NEW_AND_OLD_IMAGES", config=config, poll_interval=0.005)
    items = [f"item-{n:02d}" for n in range(ITEMS)]
    world.tailer.handler = TrackingHandler(world.invalidator, ledger, set(items[1::2]))
    reader_clients = [world.reader_client() for _ in range(READERS + 1)]
    for index, client in enumerate(reader_clients[:READERS]):
        # A slow network or a GC pause between DynamoDB's answer and the fill: widens
        # the window in which a write and its stream record can overtake the fill.
        client.meta.events.register_first(
            "after-call.dynamodb.GetItem", _fill_delay(random.Random(200 + index))
        )
    writer_clients = [world.writer] * WRITERS
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = {"reads": 0, "stale": 0, "writes": 0, "deletes": 0, "samples": 0}
    stale_examples: list[str] = []
    lags: list[float] = []
    counts_lock = threading.Lock()

    def guarded(body: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                body(*args)
            except BaseException as error:
                errors.append(error)
                stop.set()

        return run

    @guarded
    def writer(index: int) -> None:
        rng = random.Random(index)
        mine = items[index::WRITERS]
        version = dict.fromkeys(mine, 0)
        exists = dict.fromkeys(mine, False)
        client = writer_clients[index]
        while not stop.is_set():
            pk = rng.choice(mine)
            version[pk] += 1
            if exists[pk] and rng.random() < 0.1:
                ledger.deleting(pk, version[pk])
                client.delete_item(TableName=TABLE, Key={"pk": {"S": pk}})
                exists[pk] = False
                ledger.ack(pk, version[pk], delete=True)
                kind = "deletes"
            else:
                client.put_item(
                    TableName=TABLE, Item={"pk": {"S": pk}, "v": {"N": str(version[pk])}}
                )
                exists[pk] = True
                ledger.ack(pk, version[pk], delete=False)
                kind = "writes"
            with counts_lock:
                counts[kind] += 1

    def check(client: Any, pk: str, floor: int) -> None:
        got = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
        value = None if got is None else int(got["v"]["N"])
        stale = not ledger.none_allowed(pk, floor) if value is None else value < floor
        with counts_lock:
            counts["reads"] += 1
            if stale:
                counts["stale"] += 1
                if len(stale_examples) < 5:
                    stale_examples.append(f"{pk}: read {value}, floor {floor}")

    @guarded
    def reader(index: int) -> None:
        rng = random.Random(100 + index)
        client = reader_clients[index]
        while not stop.is_set():
            pk = rng.choice(items)
            check(client, pk, ledger.floor(pk))
            time.sleep(READ_PAUSE)  # leave the GIL to the writers and the tailer too

    @guarded
    def sampler() -> None:
        client = reader_clients[READERS]
        while not stop.wait(0.4):
            with ledger.lock:
                targets = dict(ledger.acked)
            started = time.monotonic()
            assert ledger.wait_applied(targets, LAG_LIMIT), "the stream fell behind too far"
            lags.append(time.monotonic() - started)
            for pk, acked in targets.items():
                check(client, pk, acked)
            with counts_lock:
                counts["samples"] += 1

    for pk in items:  # every item starts out existing at version 1
        world.put(pk, 1)
        ledger.ack(pk, 1, delete=False)
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=sampler))
    with world.tailer:
        for thread in threads:
            thread.start()
        started, elapsed = time.monotonic(), 0.0
        while not stop.wait(0.1):
            elapsed = time.monotonic() - started
            with counts_lock:
                enough = all(counts[name] >= least for name, least in MINIMUM.items())
            if elapsed >= SOAK_SECONDS_MAX or (elapsed >= SOAK_SECONDS and enough):
                break
        stop.set()
        for thread in threads:
            thread.join(LAG_LIMIT + 5)
        # Afterwards: everything acknowledged is applied, and every item reads as its last write.
        with ledger.lock:
            final = dict(ledger.acked)
            deleted_last = {pk for pk, v in final.items() if v in ledger.deleted.get(pk, ())}
        assert ledger.wait_applied(final, LAG_LIMIT), "the stream never caught up"
    for pk, version in final.items():
        for _ in range(2):  # the second read is a cache hit
            got = world.read(pk)
            assert got == (None if pk in deleted_last else version), pk

    stats = momento_botocore.stats().get(TABLE, {})
    with capsys.disabled():
        print(
            f"\nstream soak {elapsed:.0f}s: {counts['reads']} reads checked, "
            f"{counts['stale']} stale; {counts['writes']} puts + {counts['deletes']} deletes; "
            f"{counts['samples']} samples, stream lag max {max(lags, default=0) * 1000:.0f} ms; "
            f"tailer: {world.tailer.stats.records_read} records, "
            f"{world.tailer.stats.batches} batches; cache: {stats}"
        )
    assert not errors, errors
    assert counts["stale"] == 0, stale_examples
    assert all(counts[name] >= least for name, least in MINIMUM.items()), (counts, MINIMUM)
