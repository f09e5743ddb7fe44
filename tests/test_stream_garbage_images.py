"""Stream records whose images DynamoDB could never have sent (nested far deeper than
its 32 levels, wrong types, not a mapping): the handler never raises, the batch goes
on, and no such image is ever served. With valid keys the record still invalidates
its item (TOMBSTONE); a record that cannot be read at all is logged and skipped.
A deeply nested item read from DynamoDB never breaks the read either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import ACCOUNT, create_table, new_session
from stream_records import failures, lambda_event, lambda_record

import momento_botocore
from momento_botocore import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import EntryKind, decode, encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import MAX_NESTING, make_handler

CONFIG = CacheConfig(ttl=300, tables=("items",))
KEYS = {"pk": {"S": "a"}}


def nested(levels: int, tag: str = "M") -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(levels):
        value = {"M": {"a": value}} if tag == "M" else {"L": [value]}
    return value


def kind_of(backend: MemoryBackend, keys: dict[str, Any] = KEYS) -> EntryKind | None:
    found = decode(backend.get(cache_key(ACCOUNT, "us-east-1", "items", keys)))
    return None if found is None else found.kind


GARBAGE_IMAGES: dict[str, Any] = {
    "600 levels of maps": {**KEYS, "v": nested(600)},
    "600 levels of lists": {**KEYS, "v": nested(600, "L")},
    "5000 levels": {**KEYS, "v": nested(5000)},
    "one level too deep": {**KEYS, "v": nested(MAX_NESTING + 1)},
    "a number that is a JSON number": {**KEYS, "v": {"N": 5}},
    "an unknown type": {**KEYS, "v": {"X": "y"}},
    "a map that is a string": {**KEYS, "v": {"M": "not a map"}},
    "a list that is a number": {**KEYS, "v": {"L": 5}},
    "a string set that is a number": {**KEYS, "v": {"SS": 5}},
    "a binary set that is null": {**KEYS, "v": {"BS": None}},
    "bad base64": {**KEYS, "v": {"B": "not base64!"}},
    "two types in one value": {**KEYS, "v": {"S": "a", "N": "1"}},
    "a map with a non-str name": {**KEYS, "v": {"M": {1: {"S": "x"}}}},
    "an image that is a list": [KEYS],
    "an image that is a string": "pk=a",
}


@pytest.mark.parametrize("name", list(GARBAGE_IMAGES))
def test_an_image_dynamodb_cannot_send_invalidates_and_the_batch_goes_on(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = MemoryBackend()
    backend.set(
        cache_key(ACCOUNT, "us-east-1", "items", KEYS), encode_item({**KEYS, "v": {"S": "old"}}), 60
    )
    bad = lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new=KEYS)
    bad["dynamodb"]["NewImage"] = GARBAGE_IMAGES[name]  # no JSON round trip: any shape
    after = lambda_record("INSERT", {"pk": {"S": "b"}}, view="NEW_IMAGE", new={"pk": {"S": "b"}})
    handler = make_handler(CONFIG, backend=backend)
    with caplog.at_level(logging.WARNING, logger="momento_botocore.streams"):
        assert handler(lambda_event(bad, after)) == failures()
    assert kind_of(backend) is EntryKind.TOMBSTONE, "never the stale item, never the garbage"
    assert kind_of(backend, {"pk": {"S": "b"}}) is EntryKind.ITEM
    assert "wrote a TOMBSTONE" in caplog.text
    assert max(len(record.getMessage()) for record in caplog.records) < 1000


def test_an_image_at_dynamodbs_depth_limit_is_cached() -> None:
    backend = MemoryBackend()
    image = {**KEYS, "v": nested(MAX_NESTING), "w": nested(MAX_NESTING, "L")}
    record = lambda_record("MODIFY", KEYS, view="NEW_IMAGE", new=image)
    assert make_handler(CONFIG, backend=backend)(lambda_event(record)) == failures()
    found = decode(backend.get(cache_key(ACCOUNT, "us-east-1", "items", KEYS)))
    assert found is not None
    assert found.item == image


class Exploding(Mapping[str, Any]):
    """A record that raises when read (a broken event source mapping, say)."""

    def __getitem__(self, key: str) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    def __iter__(self) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "bad",
    [
        Exploding(),
        {"eventName": "MODIFY", "eventSourceARN": Exploding(), "dynamodb": {"SequenceNumber": "1"}},
        {
            "eventName": "MODIFY",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/x",
            "dynamodb": {"SequenceNumber": "7", "Keys": {"pk": nested(5000)}},
        },
    ],
    ids=["record", "event source", "deep keys"],
)
def test_a_record_that_cannot_be_read_is_skipped_and_logged(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = MemoryBackend()
    after = lambda_record("REMOVE", {"pk": {"S": "b"}}, view="KEYS_ONLY")
    handler = make_handler(CONFIG, backend=backend)
    with caplog.at_level(logging.ERROR, logger="momento_botocore.streams"):
        result = handler.process([bad, after])
    assert result.response() == failures()
    assert len(result.skipped) == 1
    assert result.writes == 1
    assert kind_of(backend, {"pk": {"S": "b"}}) is EntryKind.ABSENT
    assert "skipped malformed stream record" in caplog.text
    assert handler.apply_record(bad) is None  # the per-record entry point too


def test_encoding_a_too_deep_item_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deep"):
        encode_item({**KEYS, "v": nested(5000)})


def test_a_deeply_nested_item_read_from_dynamodb_never_breaks_the_read(endpoint: str) -> None:
    uncached = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(uncached, "items")
    item = {**KEYS, "v": nested(140), "w": nested(140, "L")}  # botocore fails from ~160
    uncached.put_item(TableName="items", Item=item)
    session = new_session()
    momento_botocore.register(session, backend=MemoryBackend(), ttl=300)
    client = session.client("dynamodb", endpoint_url=endpoint)
    for _ in range(3):
        assert client.get_item(TableName="items", Key=KEYS)["Item"] == item
        answer = client.batch_get_item(RequestItems={"items": {"Keys": [KEYS]}})
        assert answer["Responses"]["items"] == [item]
