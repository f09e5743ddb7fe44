"""The stream invalidator on recorded-shape Lambda events: entries, keys, failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session
from stream_records import b64, failures, lambda_event, lambda_record

import momento_botocore
from momento_botocore import stream_lambda, streams
from momento_botocore.backends.base import BackendError
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.core.entries import Entry, EntryKind, decode, encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import MalformedRecordError, make_handler

CONFIG = CacheConfig(ttl=300, absent_ttl=30, tombstone_ttl=7, tables=("items", "orders-*"))

OLD = {"pk": {"S": "a"}, "v": {"N": "1"}}
NEW = {"pk": {"S": "a"}, "v": {"N": "2"}, "blob": {"B": b64(b"\x00\xff")}}
KEYS = {"pk": {"S": "a"}}


class RecordingBackend(MemoryBackend):
    """A memory backend that remembers each set's TTL, and fails sets on chosen keys."""

    def __init__(self) -> None:
        super().__init__()
        self.sets: list[tuple[str, float]] = []
        self.failing: set[str] | None = set()  # None: every set fails

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if self.failing is None or key in self.failing:
            raise BackendError("cache unreachable")
        self.sets.append((key, ttl_seconds))
        super().set(key, value, ttl_seconds)


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


def key_of(keys: dict[str, Any], table: str = "items") -> str:
    return cache_key(ACCOUNT, REGION, table, keys)


def entry(backend: MemoryBackend, keys: dict[str, Any] = KEYS, table: str = "items") -> Entry:
    found = decode(backend.get(key_of(keys, table)))
    assert found is not None, "no entry"
    return found


# What each event name and view type leaves in the cache --------------------------------

VIEWS = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY", "OLD_IMAGE")
EXPECTED = {
    ("INSERT", "NEW_IMAGE"): EntryKind.ITEM,
    ("INSERT", "NEW_AND_OLD_IMAGES"): EntryKind.ITEM,
    ("INSERT", "KEYS_ONLY"): EntryKind.TOMBSTONE,
    ("INSERT", "OLD_IMAGE"): EntryKind.TOMBSTONE,
    ("MODIFY", "NEW_IMAGE"): EntryKind.ITEM,
    ("MODIFY", "NEW_AND_OLD_IMAGES"): EntryKind.ITEM,
    ("MODIFY", "KEYS_ONLY"): EntryKind.TOMBSTONE,
    ("MODIFY", "OLD_IMAGE"): EntryKind.TOMBSTONE,
    ("REMOVE", "NEW_IMAGE"): EntryKind.ABSENT,
    ("REMOVE", "NEW_AND_OLD_IMAGES"): EntryKind.ABSENT,
    ("REMOVE", "KEYS_ONLY"): EntryKind.ABSENT,
    ("REMOVE", "OLD_IMAGE"): EntryKind.ABSENT,
}
TTL_OF = {EntryKind.ITEM: 300.0, EntryKind.ABSENT: 30.0, EntryKind.TOMBSTONE: 7.0}


@pytest.mark.parametrize(("event_name", "view"), list(EXPECTED), ids=lambda v: str(v))
def test_each_event_name_and_view_type_overwrites_with_its_entry(
    backend: RecordingBackend, event_name: str, view: str
) -> None:
    backend.set(key_of(KEYS), encode_item(OLD), 300)  # a filled entry, to be overwritten
    backend.sets.clear()
    record = lambda_record(event_name, KEYS, view=view, new=NEW, old=OLD)

    response = make_handler(CONFIG, backend=backend)(lambda_event(record), None)

    assert response == {"batchItemFailures": []}
    kind = EXPECTED[(event_name, view)]
    found = entry(backend)
    assert found.kind is kind
    assert backend.sets == [(key_of(KEYS), TTL_OF[kind])]
    if kind is EntryKind.ITEM:
        assert found.item == {"pk": {"S": "a"}, "v": {"N": "2"}, "blob": {"B": b"\x00\xff"}}


def test_ttl_expiry_delete_leaves_absent(backend: RecordingBackend) -> None:
    record = lambda_record("REMOVE", KEYS, view="NEW_IMAGE", old=OLD, ttl_expiry=True)
    make_handler(CONFIG, backend=backend)(lambda_event(record))
    assert entry(backend).kind is EntryKind.ABSENT


def test_per_table_ttl_applies_to_stream_refreshes(backend: RecordingBackend) -> None:
    config = CONFIG.replace(table_ttls={"orders-*": 45})
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW, table="orders-eu")
    make_handler(config, backend=backend)(lambda_event(record))
    assert backend.sets == [(key_of(KEYS, "orders-eu"), 45.0)]


def test_records_of_tables_outside_the_configuration_are_ignored(
    backend: RecordingBackend,
) -> None:
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW, table="audit-log")
    result = make_handler(CONFIG, backend=backend).process([record])
    assert result.ignored == 1
    assert result.writes == 0
    assert len(backend) == 0


def test_region_comes_from_the_stream_arn(backend: RecordingBackend) -> None:
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW, region="eu-west-1")
    make_handler(CONFIG, backend=backend)(lambda_event(record))
    assert decode(backend.get(cache_key(ACCOUNT, "eu-west-1", "items", KEYS))) is not None
    assert backend.get(key_of(KEYS)) is None


def test_key_prefix_is_applied(backend: RecordingBackend) -> None:
    config = CONFIG.replace(key_prefix="app1:")
    make_handler(config, backend=backend)(
        lambda_event(lambda_record("REMOVE", KEYS, view="KEYS_ONLY"))
    )
    assert backend.get(cache_key(ACCOUNT, REGION, "items", KEYS, prefix="app1:")) is not None


# Keys: numbers, binary, composite ------------------------------------------------------


def test_number_keys_in_any_spelling_map_to_one_entry(backend: RecordingBackend) -> None:
    handler = make_handler(CONFIG, backend=backend)
    handler(lambda_event(lambda_record("REMOVE", {"pk": {"N": "1"}}, view="KEYS_ONLY")))
    for spelling in ("1", "1.0", "01", "1e0", "1.00E+0"):
        assert key_of({"pk": {"N": spelling}}) == backend.sets[0][0]


def test_binary_keys_as_lambda_base64_and_as_stream_api_bytes_give_the_same_entry() -> None:
    raw = b"\x00\x01\xfe\xff"
    as_json = lambda_record(
        "INSERT",
        {"pk": {"B": b64(raw)}, "sk": {"N": "7"}},
        view="NEW_IMAGE",
        new={"pk": {"B": b64(raw)}, "sk": {"N": "7"}, "data": {"BS": [b64(b"x"), b64(b"\x00")]}},
    )
    as_bytes = lambda_record("INSERT", {"pk": {"S": "placeholder"}}, view="NEW_IMAGE")
    as_bytes["dynamodb"]["Keys"] = {"pk": {"B": raw}, "sk": {"N": "7"}}
    as_bytes["dynamodb"]["NewImage"] = {
        "pk": {"B": raw},
        "sk": {"N": "7"},
        "data": {"BS": [b"x", b"\x00"]},
    }
    from_json, from_bytes = MemoryBackend(), MemoryBackend()
    make_handler(CONFIG, backend=from_json)(lambda_event(as_json))
    make_handler(CONFIG, backend=from_bytes)(lambda_event(as_bytes))
    key = key_of({"pk": {"B": raw}, "sk": {"N": "7"}})
    assert from_json.get(key) is not None
    assert from_json.get(key) == from_bytes.get(key)
    found = decode(from_json.get(key))
    assert found is not None
    assert found.item is not None
    assert found.item["pk"] == {"B": raw}
    assert found.item["data"] == {"BS": [b"x", b"\x00"]}


def test_stream_record_with_number_1_refreshes_what_a_get_item_for_1_0_reads(
    endpoint: str,
) -> None:
    """ "1.0" in a GetItem request and "1" in a stream record are the same entry."""
    backend = MemoryBackend()
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=backend)
    client = session.client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items", hash_key=("id", "N"), range_key=("sk", "B"))
    sent = RequestCounter(client, "GetItem")
    record = lambda_record(
        "MODIFY",
        {"id": {"N": "1"}, "sk": {"B": b64(b"\x01\x02")}},
        view="NEW_IMAGE",
        new={"id": {"N": "1"}, "sk": {"B": b64(b"\x01\x02")}, "v": {"S": "from the stream"}},
    )

    assert make_handler(CONFIG, backend=backend)(lambda_event(record)) == failures()
    got = client.get_item(TableName="items", Key={"id": {"N": "1.0"}, "sk": {"B": b"\x01\x02"}})

    assert sent.count == 0, "the read went to DynamoDB instead of the refreshed entry"
    assert got["Item"]["v"] == {"S": "from the stream"}
    assert got["Item"]["sk"] == {"B": b"\x01\x02"}


# Collapsing, replays ---------------------------------------------------------------------


def test_records_of_one_item_collapse_to_the_last_in_stream_order(
    backend: RecordingBackend,
) -> None:
    records = [
        lambda_record("INSERT", KEYS, view="NEW_IMAGE", new={"pk": {"S": "a"}, "v": {"N": "1"}}),
        lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new={"pk": {"S": "a"}, "v": {"N": "2"}}),
        lambda_record("REMOVE", {"pk": {"S": "b"}}, view="NEW_IMAGE"),
        lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new={"pk": {"S": "a"}, "v": {"N": "3"}}),
    ]
    result = make_handler(CONFIG, backend=backend).process(records)

    assert (result.writes, result.collapsed, result.failed) == (2, 2, [])
    assert [key for key, _ in backend.sets].count(key_of(KEYS)) == 1
    assert entry(backend).item == {"pk": {"S": "a"}, "v": {"N": "3"}}
    assert entry(backend, {"pk": {"S": "b"}}).kind is EntryKind.ABSENT


def test_remove_then_insert_in_one_batch_ends_with_the_item(backend: RecordingBackend) -> None:
    records = [
        lambda_record("REMOVE", KEYS, view="NEW_IMAGE"),
        lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW),
    ]
    make_handler(CONFIG, backend=backend)(lambda_event(*records))
    assert entry(backend).kind is EntryKind.ITEM


def test_replaying_a_batch_leaves_the_same_entries(backend: RecordingBackend) -> None:
    records = [
        lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=OLD),
        lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new=NEW),
        lambda_record("REMOVE", {"pk": {"S": "gone"}}, view="NEW_IMAGE"),
    ]
    handler = make_handler(CONFIG, backend=backend)
    handler(lambda_event(*records))
    first = {k: backend.get(k) for k in (key_of(KEYS), key_of({"pk": {"S": "gone"}}))}
    # Lambda retries from a failed record onwards: a suffix, then the whole batch.
    handler(lambda_event(*records[1:]))
    handler(lambda_event(*records))
    assert {k: backend.get(k) for k in first} == first


# Backend failures -> exact batchItemFailures -------------------------------------------


def test_a_failed_cache_write_reports_every_record_of_that_item(
    backend: RecordingBackend,
) -> None:
    a1 = lambda_record("INSERT", {"pk": {"S": "a"}}, view="NEW_IMAGE", new=OLD)
    b1 = lambda_record("INSERT", {"pk": {"S": "b"}}, view="KEYS_ONLY")
    c1 = lambda_record("REMOVE", {"pk": {"S": "c"}}, view="NEW_IMAGE")
    b2 = lambda_record("MODIFY", {"pk": {"S": "b"}}, view="KEYS_ONLY")
    a2 = lambda_record("MODIFY", {"pk": {"S": "a"}}, view="NEW_IMAGE", new=NEW)
    backend.failing = {key_of({"pk": {"S": "b"}})}

    response = make_handler(CONFIG, backend=backend)(lambda_event(a1, b1, c1, b2, a2))

    assert response == failures(b1, b2)
    assert entry(backend, {"pk": {"S": "a"}}).kind is EntryKind.ITEM
    assert entry(backend, {"pk": {"S": "c"}}).kind is EntryKind.ABSENT


def test_a_cache_outage_fails_every_applicable_record_and_nothing_else(
    backend: RecordingBackend, caplog: pytest.LogCaptureFixture
) -> None:
    applicable = [
        lambda_record("INSERT", {"pk": {"S": "a"}}, view="NEW_IMAGE", new=OLD),
        lambda_record("REMOVE", {"pk": {"S": "b"}}, view="NEW_IMAGE"),
        lambda_record("MODIFY", {"pk": {"S": "a"}}, view="NEW_IMAGE", new=NEW),
    ]
    other_table = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW, table="audit-log")
    malformed = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW)
    del malformed["dynamodb"]["Keys"]
    backend.failing = None

    with caplog.at_level(logging.WARNING, logger="momento_botocore.streams"):
        response = make_handler(CONFIG, backend=backend)(
            lambda_event(applicable[0], other_table, applicable[1], malformed, applicable[2])
        )

    assert response == failures(*applicable)
    assert "2 cache write(s) failed, 3 record(s) reported for retry" in caplog.text
    assert "cache unreachable" in caplog.text


def test_failed_records_succeed_when_retried_after_the_cache_is_back(
    backend: RecordingBackend,
) -> None:
    records = [lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new=NEW)]
    handler = make_handler(CONFIG, backend=backend)
    backend.failing = None
    assert handler(lambda_event(*records)) == failures(*records)
    backend.failing = set()
    assert handler(lambda_event(*records)) == failures()
    assert entry(backend).kind is EntryKind.ITEM


# Malformed records -----------------------------------------------------------------------


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW)
    target = record
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return record


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW)
    target = record
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return record


MALFORMED = {
    "no keys": (_without(("dynamodb", "Keys")), "no dynamodb.Keys"),
    "empty keys": (_with(("dynamodb", "Keys"), {}), "no dynamodb.Keys"),
    "no dynamodb section": (_without(("dynamodb",)), "no 'dynamodb' section"),
    "no sequence number": (_without(("dynamodb", "SequenceNumber")), "SequenceNumber"),
    "no event source arn": (_without(("eventSourceARN",)), "no eventSourceARN"),
    "not a dynamodb arn": (
        _with(("eventSourceARN",), "arn:aws:kinesis:us-east-1:1:stream/x"),
        "not a DynamoDB table ARN",
    ),
    "key of a non-key type": (
        _with(("dynamodb", "Keys"), {"pk": {"BOOL": True}}),
        "keys are S, N or B",
    ),
    "bad base64 key": (_with(("dynamodb", "Keys"), {"pk": {"B": "not base64!"}}), "base64"),
    "bad number key": (_with(("dynamodb", "Keys"), {"pk": {"N": "one"}}), "not a DynamoDB number"),
    "not a mapping": ("INSERT", "must be a mapping"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_records_are_logged_and_skipped_without_stopping_the_batch(
    backend: RecordingBackend, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    bad, reason = MALFORMED[name]
    before = lambda_record("REMOVE", {"pk": {"S": "before"}}, view="KEYS_ONLY")
    after = lambda_record("REMOVE", {"pk": {"S": "after"}}, view="KEYS_ONLY")

    with caplog.at_level(logging.ERROR, logger="momento_botocore.streams"):
        result = make_handler(CONFIG, backend=backend).process([before, bad, after])

    assert result.response() == failures()
    assert result.writes == 2
    assert len(result.skipped) == 1
    assert reason in result.skipped[0].reason
    assert entry(backend, {"pk": {"S": "after"}}).kind is EntryKind.ABSENT
    assert "skipped malformed stream record" in caplog.text
    assert reason in caplog.text
    if isinstance(bad, dict) and "SequenceNumber" in bad.get("dynamodb", {}):
        assert bad["dynamodb"]["SequenceNumber"] in caplog.text


def test_unknown_event_name_with_valid_keys_writes_a_tombstone(
    backend: RecordingBackend, caplog: pytest.LogCaptureFixture
) -> None:
    record = lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new=NEW)
    record["eventName"] = "UPSERT"
    with caplog.at_level(logging.WARNING, logger="momento_botocore.streams"):
        assert make_handler(CONFIG, backend=backend)(lambda_event(record)) == failures()
    assert entry(backend).kind is EntryKind.TOMBSTONE
    assert "unknown eventName 'UPSERT'" in caplog.text


def test_new_image_that_cannot_be_cached_writes_a_tombstone(backend: RecordingBackend) -> None:
    record = lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new={"pk": {"XX": "?"}})
    assert make_handler(CONFIG, backend=backend)(lambda_event(record)) == failures()
    assert entry(backend).kind is EntryKind.TOMBSTONE


def test_an_event_without_records_is_an_error(backend: RecordingBackend) -> None:
    with pytest.raises(MalformedRecordError, match="Records"):
        make_handler(CONFIG, backend=backend)({"detail": {}}, None)


def test_an_empty_batch_succeeds(backend: RecordingBackend) -> None:
    assert make_handler(CONFIG, backend=backend)(lambda_event()) == failures()


# The environment-configured Lambda handler -------------------------------------------


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_lambda, "_DEFAULT", [])


@pytest.mark.usefixtures("fresh_default")
def test_lambda_handler_is_configured_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOMENTO_BOTOCORE_TTL_SECONDS", "120")
    monkeypatch.setenv("MOMENTO_BOTOCORE_TABLES", "items")
    monkeypatch.setenv("MOMENTO_BOTOCORE_KEY_PREFIX", "env:")
    record = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW)
    ignored = lambda_record("INSERT", KEYS, view="NEW_IMAGE", new=NEW, table="orders-1")

    assert streams.handler(lambda_event(record, ignored), object()) == failures()
    first = stream_lambda._DEFAULT[0]
    assert streams.handler(lambda_event(record), object()) == failures()

    assert [first] == stream_lambda._DEFAULT
    assert first.config.ttl_seconds == 120.0
    assert first.config.tables == ("items",)
    stored = decode(first.backend.get(cache_key(ACCOUNT, REGION, "items", KEYS, prefix="env:")))
    assert stored is not None
    assert stored.kind is EntryKind.ITEM
    assert isinstance(first.backend, MemoryBackend)
    assert len(first.backend) == 1


def test_a_handler_is_given_its_backend_never_builds_one() -> None:
    with pytest.raises(TypeError, match="backend"):
        make_handler(CONFIG)  # type: ignore[call-arg]


@pytest.mark.usefixtures("fresh_default")
def test_lambda_handler_without_a_ttl_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOMENTO_BOTOCORE_TTL_SECONDS", raising=False)
    with pytest.raises(ConfigurationError, match="MOMENTO_BOTOCORE_TTL_SECONDS"):
        streams.handler(lambda_event(), None)
