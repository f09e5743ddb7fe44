"""The tailer's shard handling, on recorded-shape responses (moto has one shard forever)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from conftest import ACCOUNT, REGION, new_session
from fake_streams import ARN, FakeStreams, client_error, stream_record

from momento_botocore.backends.base import BackendError
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import make_handler
from momento_botocore.tailer import (
    LATEST,
    TRIM_HORIZON,
    StreamNotFoundError,
    StreamTailer,
    to_lambda_record,
)

CONFIG = CacheConfig(ttl=300, tables=("items",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A Lambda-style handler that records what it was given, then applies it to a cache."""

    def __init__(self, backend: MemoryBackend | None = None) -> None:
        self.backend = MemoryBackend() if backend is None else backend
        self.invalidator = make_handler(CONFIG, backend=self.backend)
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.invalidator(event, context)

    @property
    def delivered(self) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for e in self.events for r in e["Records"]]

    def version(self, pk: str) -> int | None:
        found = decode(self.backend.get(cache_key(ACCOUNT, REGION, "items", {"pk": {"S": pk}})))
        if found is None or found.item is None:
            return None
        return int(found.item["v"]["N"])


def numbers(*records: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def tailer(fake: FakeStreams, handler: Any, **options: Any) -> StreamTailer:
    options.setdefault("start", TRIM_HORIZON)
    options.setdefault("clock", Clock())
    return StreamTailer(handler, table="items", client=fake, **options)


def test_child_shards_are_read_after_their_parent_is_read_to_its_end() -> None:
    fake = FakeStreams()
    parent = [stream_record("a", 1), stream_record("a", 2), stream_record("b", 1)]
    left, right = [stream_record("a", 3)], [stream_record("b", 2)]
    # Listed children first, as a page of describe_stream may: lineage decides, not order.
    fake.add_shard("shard-left", "shard-parent", *left)
    fake.add_shard("shard-right", "shard-parent", *right)
    fake.add_shard("shard-parent", None, *parent)
    fake.close("shard-parent")
    recorder = Recorder()
    tail = tailer(fake, recorder, batch_size=2)

    tail.drain()

    assert recorder.delivered[:3] == numbers(*parent)
    assert sorted(recorder.delivered[3:]) == sorted(numbers(*left, *right))
    assert (recorder.version("a"), recorder.version("b")) == (3, 2)
    assert tail.stats.shards_finished == 1
    reads = [c["ShardIterator"].split("|")[0] for c in fake.calls_of("get_records")]
    first_child_read = min(reads.index("shard-left"), reads.index("shard-right"))
    assert "shard-parent" not in reads[first_child_read:]


def test_closed_shard_is_not_read_again_after_its_end() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    fake.close("shard-1")
    fake.add_shard("shard-2", "shard-1")
    tail = tailer(fake, Recorder())
    tail.drain()
    before = len(fake.calls_of("get_records"))
    tail.poll_once()
    tail.poll_once()
    reads = [c["ShardIterator"] for c in fake.calls_of("get_records")[before:]]
    assert reads
    assert all(r.startswith("shard-2|") for r in reads)


def test_shards_that_appear_later_are_found_and_read_from_their_start() -> None:
    fake = FakeStreams()
    clock = Clock()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    recorder = Recorder()
    tail = tailer(fake, recorder, clock=clock, shard_refresh_interval=5)
    tail.drain()
    # The shard is split: it closes, a child takes over with records already in it.
    fake.put("shard-1", stream_record("a", 2))
    fake.close("shard-1")
    fake.add_shard("shard-2", "shard-1", stream_record("a", 3), stream_record("a", 4))

    tail.drain()

    assert recorder.version("a") == 4
    assert len(recorder.delivered) == 4
    iterators = fake.calls_of("get_shard_iterator")
    assert {"ShardId": "shard-2", "ShardIteratorType": TRIM_HORIZON} in [
        {k: c[k] for k in ("ShardId", "ShardIteratorType")} for c in iterators
    ]


def test_latest_skips_history_but_not_shards_born_after_the_start() -> None:
    fake = FakeStreams()
    old = [stream_record("a", 1)]
    fake.add_shard("shard-old", None, *old)
    fake.close("shard-old")
    fake.add_shard("shard-open", "shard-old", stream_record("a", 2))
    recorder = Recorder()
    tail = tailer(fake, recorder, start=LATEST)

    assert tail.drain() == 0  # nothing written since the start
    new = stream_record("a", 3)
    fake.put("shard-open", new)
    fake.close("shard-open")
    born_later = [stream_record("a", 4), stream_record("b", 1)]
    fake.add_shard("shard-born-later", "shard-open", *born_later)
    tail.drain()

    assert recorder.delivered == numbers(new, *born_later)
    assert all(c["ShardId"] != "shard-old" for c in fake.calls_of("get_shard_iterator")), (
        "a shard closed before the start was read under LATEST"
    )
    assert recorder.version("a") == 4


def test_describe_stream_is_followed_across_pages() -> None:
    fake = FakeStreams(page_size=2)
    for index in range(5):
        fake.add_shard(f"shard-{index}", None, stream_record(f"k{index}", 1))
    recorder = Recorder()
    tailer(fake, recorder).drain()
    assert sorted(recorder.version(f"k{i}") or 0 for i in range(5)) == [1] * 5
    starts = [c.get("ExclusiveStartShardId") for c in fake.calls_of("describe_stream")]
    assert starts[:3] == [None, "shard-1", "shard-3"]


def test_failed_records_are_redelivered_from_the_lowest_failure_before_newer_ones() -> None:
    class FlakyBackend(MemoryBackend):
        fail = True

        def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
            if self.fail and key == cache_key(ACCOUNT, REGION, "items", {"pk": {"S": "b"}}):
                raise BackendError("down")
            super().set(key, value, ttl_seconds)

    fake = FakeStreams()
    first = [stream_record("a", 1), stream_record("b", 1), stream_record("c", 1)]
    fake.add_shard("shard-1", None, *first)
    backend = FlakyBackend()
    recorder = Recorder(backend)
    clock = Clock()
    tail = tailer(fake, recorder, clock=clock, retry_delay=2)

    tail.poll_once()
    later = stream_record("b", 2)
    fake.put("shard-1", later)
    result = tail.poll_once()  # backing off: nothing read, nothing delivered
    assert (result.records_read, result.records_pending) == (0, 2)
    clock.now += 2
    tail.poll_once()  # retried, failed again: backoff doubles
    clock.now += 2
    assert tail.poll_once().records_read == 0, "backoff should have doubled to 4 s"
    backend.fail = False
    clock.now += 2
    tail.drain()

    batches = [[r["dynamodb"]["SequenceNumber"] for r in e["Records"]] for e in recorder.events]
    assert batches == [numbers(*first), numbers(*first[1:]), numbers(*first[1:]), numbers(later)]
    assert recorder.version("b") == 2
    assert tail.stats.failed_batches == 2


def test_a_handler_that_raises_gets_the_whole_batch_again() -> None:
    fake = FakeStreams()
    records = [stream_record("a", 1), stream_record("b", 1)]
    fake.add_shard("shard-1", None, *records)
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    clock = Clock()
    tail = tailer(fake, handler, clock=clock, retry_delay=1)
    tail.poll_once()
    clock.now += 1
    tail.poll_once()
    assert calls == [numbers(*records), numbers(*records)]


def test_an_unknown_item_identifier_fails_the_whole_batch_like_lambda() -> None:
    fake = FakeStreams()
    records = [stream_record("a", 1), stream_record("b", 1)]
    fake.add_shard("shard-1", None, *records)
    responses = [{"batchItemFailures": [{"itemIdentifier": "nope"}]}, {}]
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(len(event["Records"]))
        return responses[len(calls) - 1]

    clock = Clock()
    tail = tailer(fake, handler, clock=clock, retry_delay=1)
    tail.poll_once()
    clock.now += 1
    tail.poll_once()
    assert calls == [2, 2]


def test_an_expired_iterator_resumes_after_the_last_record_read() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    recorder = Recorder()
    tail = tailer(fake, recorder)
    tail.drain()
    later = [stream_record("a", 2), stream_record("a", 3)]
    fake.put("shard-1", *later)
    fake.failures["get_records"] = _once(client_error("ExpiredIteratorException", "GetRecords"))

    tail.drain()

    assert recorder.delivered[1:] == numbers(*later)
    resumed = fake.calls_of("get_shard_iterator")[-1]
    assert resumed["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert resumed["SequenceNumber"] == recorder.delivered[0]


def _once(error: Exception) -> Any:
    left = [error]
    return lambda kwargs: left.pop() if left else None


def test_trimmed_position_restarts_at_trim_horizon_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    recorder = Recorder()
    tail = tailer(fake, recorder)
    tail.drain()
    fake.failures["get_records"] = _once(client_error("TrimmedDataAccessException", "GetRecords"))
    with caplog.at_level(logging.WARNING, logger="momento_botocore.tailer"):
        tail.drain()
    assert "records were lost, restarting at TRIM_HORIZON" in caplog.text
    assert fake.calls_of("get_shard_iterator")[-1]["ShardIteratorType"] == TRIM_HORIZON


def test_throttling_backs_off_and_then_reads_on() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    fake.failures["get_records"] = _once(client_error("LimitExceededException", "GetRecords"))
    clock = Clock()
    recorder = Recorder()
    tail = tailer(fake, recorder, clock=clock, retry_delay=3)
    assert tail.poll_once().records_read == 0
    assert tail.poll_once().shards_read == 0  # still backing off
    clock.now += 3
    assert tail.poll_once().records_read == 1
    assert tail.stats.errors == 1


def test_a_table_without_a_stream_is_a_clear_error() -> None:
    tail = StreamTailer(lambda e, c: None, table="no-stream-here", client=FakeStreams())
    with pytest.raises(StreamNotFoundError, match="has no stream: enable one"):
        tail.start()


def test_run_ends_when_the_stream_is_disabled_and_fully_read() -> None:
    fake = FakeStreams(status="DISABLED")
    fake.add_shard("shard-1", None, stream_record("a", 1))
    fake.close("shard-1")
    recorder = Recorder()
    tailer(fake, recorder, poll_interval=0.01).run()
    assert recorder.version("a") == 1


def test_lambda_shape_has_the_stream_arn_base64_binary_and_epoch_time() -> None:
    record = stream_record(b"\x00\xff", 5)
    record["dynamodb"]["NewImage"]["tags"] = {"BS": [b"\x01"]}
    record["dynamodb"]["NewImage"]["nested"] = {"M": {"l": {"L": [{"B": b"\x02"}]}}}

    shaped = to_lambda_record(record, ARN)

    json.dumps(shaped)  # plain JSON, like Lambda's
    assert shaped["eventSourceARN"] == ARN
    assert shaped["dynamodb"]["Keys"] == {"pk": {"B": "AP8="}}
    assert shaped["dynamodb"]["NewImage"]["tags"] == {"BS": ["AQ=="]}
    assert shaped["dynamodb"]["NewImage"]["nested"] == {"M": {"l": {"L": [{"B": "Ag=="}]}}}
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1795734605.0
    assert isinstance(record["dynamodb"]["Keys"]["pk"]["B"], bytes), "input left untouched"


def test_binary_keys_read_from_the_stream_api_refresh_the_same_entry_as_lambda_json() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record(b"\x00\xff", 5))
    backend = MemoryBackend()
    tailer(fake, make_handler(CONFIG, backend=backend)).drain()
    found = decode(backend.get(cache_key(ACCOUNT, REGION, "items", {"pk": {"B": b"\x00\xff"}})))
    assert found is not None
    assert found.kind is EntryKind.ITEM
    assert found.item == {"pk": {"B": b"\x00\xff"}, "v": {"N": "5"}}


def test_stopping_a_running_tailer_ends_its_thread() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None)
    recorder = Recorder()
    tail = tailer(fake, recorder, poll_interval=0.01, clock=time.monotonic)
    tail.start()
    assert tail.wait_until_caught_up(10)
    fake.put("shard-1", stream_record("a", 7))
    assert tail.wait_until_caught_up(10)
    assert recorder.version("a") == 7
    tail.stop()
    assert not any(t.name == "momento-botocore-tail" for t in threading.enumerate())
    assert tail.wait_until_caught_up(0.1) is False


def test_requests_match_the_real_service_model() -> None:
    """The same flow against botocore's Stubber, which validates every request."""
    client = new_session().client("dynamodbstreams")
    parent, child = stream_record("a", 1), stream_record("a", 2)
    with Stubber(client) as stub:
        stub.add_response(
            "list_streams",
            {"Streams": [{"StreamArn": ARN, "TableName": "items", "StreamLabel": "x"}]},
            {"TableName": "items"},
        )
        stub.add_response(
            "describe_stream",
            {
                "StreamDescription": {
                    "StreamArn": ARN,
                    "StreamStatus": "ENABLED",
                    "Shards": [
                        {
                            "ShardId": "shardId-00000001700000000000-parent",
                            "SequenceNumberRange": {
                                "StartingSequenceNumber": "100000000000000000001",
                                "EndingSequenceNumber": "100000000000000000009",
                            },
                        },
                        {
                            "ShardId": "shardId-00000001700000000001-child1",
                            "ParentShardId": "shardId-00000001700000000000-parent",
                            "SequenceNumberRange": {
                                "StartingSequenceNumber": "100000000000000000010"
                            },
                        },
                    ],
                }
            },
            {"StreamArn": ARN},
        )
        stub.add_response(
            "get_shard_iterator",
            {"ShardIterator": "iterator-parent-0"},
            {
                "StreamArn": ARN,
                "ShardId": "shardId-00000001700000000000-parent",
                "ShardIteratorType": TRIM_HORIZON,
            },
        )
        stub.add_response(
            "get_records",
            {"Records": [parent]},  # no NextShardIterator: the parent is closed and read
            {"ShardIterator": "iterator-parent-0", "Limit": 1000},
        )
        stub.add_response(
            "get_shard_iterator",
            {"ShardIterator": "iterator-child-0"},
            {
                "StreamArn": ARN,
                "ShardId": "shardId-00000001700000000001-child1",
                "ShardIteratorType": ANY,
            },
        )
        stub.add_response(
            "get_records",
            {"Records": [child], "NextShardIterator": "iterator-child-1"},
            {"ShardIterator": "iterator-child-0", "Limit": 1000},
        )
        recorder = Recorder()
        tail = StreamTailer(recorder, table="items", client=client, start=TRIM_HORIZON)
        tail.poll_once()
        stub.assert_no_pending_responses()
    assert recorder.delivered == numbers(parent, child)
    assert recorder.version("a") == 2


def test_drain_waits_out_a_backoff_instead_of_calling_it_caught_up() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    fake.failures["get_records"] = _once(client_error("LimitExceededException", "GetRecords"))
    recorder = Recorder()
    tail = StreamTailer(recorder, table="items", client=fake, start=TRIM_HORIZON, retry_delay=0.01)
    assert tail.drain() == 1
    assert recorder.version("a") == 1


def test_a_parent_that_ends_on_an_empty_page_still_leads_to_its_children() -> None:
    fake = FakeStreams()
    fake.add_shard("shard-1", None, stream_record("a", 1))
    recorder = Recorder()
    tail = tailer(fake, recorder, shard_refresh_interval=3600)
    tail.drain()
    fake.close("shard-1")  # nothing more in the parent: its next page is empty and final
    fake.add_shard("shard-2", "shard-1", stream_record("a", 2))

    tail.drain()

    assert recorder.version("a") == 2
