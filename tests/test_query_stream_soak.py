"""Concurrency soak of the Query and Scan cache: writers, readers, the tailer, all at once.

A table with a hash and a range key (``PARTITIONS`` x ``SORT_KEYS`` items) and a stream;
writers on a plain client (not registered: the cache learns of their writes from the
stream alone), readers that query partitions (and now and then scan the table) through
registered clients, and the tailer applying the stream in its thread. Every item's
``v`` only grows; a delete takes a version number too (tests/test_stream_soak.py's
ledger, one entry per item).

The checks, per item of every answer (a query answers for its partition's items, a scan
for all):

* every query and scan: no item older than the newest stream record already applied
  to the cache for it when the query started (the floor; a missing item only when a
  delete at or after the floor was acknowledged, or nothing was applied yet);
* sampled points: once the stream has caught up with every write acknowledged at the
  sample, every partition's query answers at least those writes;
* afterwards: every partition reads as its last acknowledged writes, twice (the second
  a hit).

Fills are delayed at random on the readers (after-call), so a write and its stream
record overtake fills often: the generation read before the request must keep such a
page from ever being found.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
import test_stream_soak as soak
from conftest import ACCOUNT, create_table
from stream_world import new_session

import momento_botocore
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.streams import make_handler
from momento_botocore.tailer import TRIM_HORIZON, StreamTailer

TABLE = "qsoak"
PARTITIONS = ("p0", "p1", "p2", "p3")
SORT_KEYS = ("s0", "s1", "s2")
SOAK_SECONDS = 10.0
SOAK_SECONDS_MAX = 40.0
MINIMUM = {"queries": 400, "scans": 20, "hits": 50, "writes": 100, "deletes": 5, "samples": 5}
WRITERS = 2
READERS = 3
READ_PAUSE = 0.002
SCAN_EVERY = 10  # one read in this many is a scan
# Short, so pages expire and queries fill all the time, racing the stream.
PAGE_TTL = 1.0
LAG_LIMIT = 15.0


def item_id(pk: str, sk: str) -> str:
    return f"{pk}/{sk}"


ITEMS = [item_id(pk, sk) for pk in PARTITIONS for sk in SORT_KEYS]


class TrackingHandler:
    """The real invalidator, then the ledger learns which versions it applied."""

    def __init__(self, invalidator: Any, ledger: soak.Ledger) -> None:
        self.invalidator = invalidator
        self.ledger = ledger

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = self.invalidator(event, context)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for record in event["Records"]:
            change = record["dynamodb"]
            if change["SequenceNumber"] in failed:
                continue
            item = item_id(change["Keys"]["pk"]["S"], change["Keys"]["sk"]["S"])
            if "NewImage" in change:
                self.ledger.record_applied(item, int(change["NewImage"]["v"]["N"]))
            elif record["eventName"] == "REMOVE":
                # A delete's version is one more than the item it removed.
                self.ledger.record_applied(item, int(change["OldImage"]["v"]["N"]) + 1)
        return response


def versions(answer: dict[str, Any]) -> dict[str, int]:
    return {item_id(i["pk"]["S"], i["sk"]["S"]): int(i["v"]["N"]) for i in answer["Items"]}


def _fill_delay(rng: random.Random) -> Any:
    def delay(http_response: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            time.sleep(rng.uniform(0, 0.03))

    return delay


MARKER_TTL = 0.05


@pytest.mark.slow
# C901: the threads' bodies are closures over the shared ledger and counters.
def test_soak_no_query_is_older_than_what_the_stream_already_applied(  # noqa: C901
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = soak.Ledger()
    backend = MemoryBackend()
    # A short tombstone TTL: the "written lately" markers of the stream's bumps keep
    # pages from filling for that long, and writes here never stop for 10 s.
    config = CacheConfig(
        ttl=PAGE_TTL,
        tombstone_ttl=MARKER_TTL,
        cache_queries=True,
        cache_scans=True,
        account_id=ACCOUNT,
    )
    reader_session = new_session()
    registration = momento_botocore.register(reader_session, config=config, backend=backend)
    plain = new_session()
    writer = plain.client("dynamodb", endpoint_url=endpoint)
    create_table(writer, TABLE, range_key=("sk", "S"), stream_view="NEW_AND_OLD_IMAGES")
    tailer = StreamTailer(
        TrackingHandler(make_handler(registration.config, backend=backend), ledger),
        table=TABLE,
        client=plain.client("dynamodbstreams", endpoint_url=endpoint),
        start=TRIM_HORIZON,
        poll_interval=0.005,
    )
    readers = [reader_session.client("dynamodb", endpoint_url=endpoint) for _ in range(READERS + 1)]
    for index, client in enumerate(readers[:READERS]):
        for operation in ("Query", "Scan"):
            client.meta.events.register_first(
                f"after-call.dynamodb.{operation}", _fill_delay(random.Random(300 + index))
            )
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = dict.fromkeys(("queries", "scans", "stale", "writes", "deletes", "samples"), 0)
    counts["hits"] = 0
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
    def write(index: int) -> None:
        rng = random.Random(index)
        mine = ITEMS[index::WRITERS]
        version = dict.fromkeys(mine, 1)
        exists = dict.fromkeys(mine, True)
        while not stop.is_set():
            item = rng.choice(mine)
            pk, sk = item.split("/")
            version[item] += 1
            key = {"pk": {"S": pk}, "sk": {"S": sk}}
            if exists[item] and rng.random() < 0.1:
                ledger.deleting(item, version[item])
                writer.delete_item(TableName=TABLE, Key=key)
                exists[item] = False
                ledger.ack(item, version[item], delete=True)
                kind = "deletes"
            else:
                writer.put_item(TableName=TABLE, Item={**key, "v": {"N": str(version[item])}})
                exists[item] = True
                ledger.ack(item, version[item], delete=False)
                kind = "writes"
            with counts_lock:
                counts[kind] += 1

    def check(answer: dict[str, Any], floors: dict[str, int], kind: str) -> None:
        found = versions(answer)
        stale = []
        for item, floor in floors.items():
            value = found.get(item)
            if (value is None and not ledger.none_allowed(item, floor)) or (
                value is not None and value < floor
            ):
                stale.append(f"{item}: read {value}, floor {floor}")
        hit = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") == "hit"
        with counts_lock:
            counts[kind] += 1
            counts["hits"] += hit
            if stale:
                counts["stale"] += 1
                stale_examples.extend(stale[: 5 - len(stale_examples)])

    def query(client: Any, pk: str) -> dict[str, Any]:
        return client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
        )

    @guarded
    def read(index: int) -> None:
        rng = random.Random(100 + index)
        client = readers[index]
        while not stop.is_set():
            if rng.randrange(SCAN_EVERY) == 0:
                floors = {item: ledger.floor(item) for item in ITEMS}
                check(client.scan(TableName=TABLE), floors, "scans")
            else:
                pk = rng.choice(PARTITIONS)
                floors = {item_id(pk, sk): ledger.floor(item_id(pk, sk)) for sk in SORT_KEYS}
                check(query(client, pk), floors, "queries")
            time.sleep(READ_PAUSE)

    @guarded
    def sample() -> None:
        client = readers[READERS]
        while not stop.wait(0.4):
            with ledger.lock:
                targets = dict(ledger.acked)
            started = time.monotonic()
            assert ledger.wait_applied(targets, LAG_LIMIT), "the stream fell behind too far"
            lags.append(time.monotonic() - started)
            for pk in PARTITIONS:
                acked = {i: v for i, v in targets.items() if i.startswith(f"{pk}/")}
                check(query(client, pk), acked, "queries")
            with counts_lock:
                counts["samples"] += 1

    for item in ITEMS:  # every item starts out existing at version 1
        pk, sk = item.split("/")
        writer.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": "1"}})
        ledger.ack(item, 1, delete=False)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    threads += [threading.Thread(target=read, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=sample))
    with tailer:
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
        with ledger.lock:
            final = dict(ledger.acked)
            deleted_last = {i for i, v in final.items() if v in ledger.deleted.get(i, ())}
        assert ledger.wait_applied(final, LAG_LIMIT), "the stream never caught up"
    expected: dict[str, dict[str, int]] = {pk: {} for pk in PARTITIONS}
    for item, version in final.items():
        if item not in deleted_last:
            expected[item.split("/")[0]][item] = version
    time.sleep(MARKER_TTL * 1.5)  # the last bumps' markers are gone: pages fill again
    finals = {pk: [query(readers[READERS], pk) for _ in range(2)] for pk in PARTITIONS}

    stats = momento_botocore.stats().get(TABLE, {})
    with capsys.disabled():
        print(
            f"\nquery soak {elapsed:.0f}s: {counts['queries']} queries + {counts['scans']} "
            f"scans checked ({counts['hits']} hits), {counts['stale']} stale; "
            f"{counts['writes']} puts + {counts['deletes']} deletes; {counts['samples']} "
            f"samples, stream lag max {max(lags, default=0) * 1000:.0f} ms; tailer: "
            f"{tailer.stats.records_read} records, {tailer.stats.batches} batches; "
            f"cache: {stats}"
        )
    assert not errors, errors
    assert counts["stale"] == 0, stale_examples
    for pk, answers in finals.items():  # the second a hit
        assert [versions(a) for a in answers] == [expected[pk]] * 2, pk
        assert answers[1]["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") == "hit"
    assert all(counts[name] >= least for name, least in MINIMUM.items()), (counts, MINIMUM)
