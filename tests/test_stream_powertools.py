"""The record handler inside Powertools' BatchProcessor for DynamoDB Streams."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from conftest import ACCOUNT, REGION
from stream_records import failures, lambda_event, lambda_record

from momento_botocore import stream_lambda, streams
from momento_botocore.backends.base import BackendError
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import make_handler

CONFIG = CacheConfig(ttl=300, tables=("items",))


class FailingFor(MemoryBackend):
    def __init__(self, *failing: str) -> None:
        super().__init__()
        self.failing = set(failing)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if key in self.failing:
            raise BackendError("cache unreachable")
        super().set(key, value, ttl_seconds)


def key(pk: str) -> str:
    return cache_key(ACCOUNT, REGION, "items", {"pk": {"S": pk}})


def kind(backend: MemoryBackend, pk: str) -> EntryKind | None:
    found = decode(backend.get(key(pk)))
    return None if found is None else found.kind


def test_powertools_batch_processor_reports_exactly_the_failed_records() -> None:
    backend = FailingFor(key("b"))
    a = lambda_record("INSERT", {"pk": {"S": "a"}}, view="NEW_IMAGE", new={"pk": {"S": "a"}})
    b = lambda_record("MODIFY", {"pk": {"S": "b"}}, view="KEYS_ONLY")
    other = lambda_record("INSERT", {"pk": {"S": "x"}}, view="KEYS_ONLY", table="audit-log")
    c = lambda_record("REMOVE", {"pk": {"S": "c"}}, view="NEW_IMAGE")
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    response = process_partial_response(
        event=lambda_event(a, b, other, c),
        record_handler=make_handler(CONFIG, backend=backend).apply_record,
        processor=processor,
        context=None,
    )

    assert response == failures(b)
    assert (kind(backend, "a"), kind(backend, "b"), kind(backend, "c")) == (
        EntryKind.ITEM,
        None,
        EntryKind.ABSENT,
    )


def test_malformed_records_are_skipped_not_failed_under_powertools() -> None:
    backend = MemoryBackend()
    bad = lambda_record("INSERT", {"pk": {"S": "a"}}, view="KEYS_ONLY")
    del bad["dynamodb"]["Keys"]
    good = lambda_record("INSERT", {"pk": {"S": "b"}}, view="KEYS_ONLY")

    response = process_partial_response(
        event=lambda_event(bad, good),
        record_handler=make_handler(CONFIG, backend=backend).apply_record,
        processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        context=None,
    )

    assert response == failures()
    assert kind(backend, "b") is EntryKind.TOMBSTONE


def test_module_record_handler_is_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_lambda, "_DEFAULT", [])
    monkeypatch.setenv("MOMENTO_BOTOCORE_TTL_SECONDS", "60")
    record = lambda_record("REMOVE", {"pk": {"S": "a"}}, view="NEW_IMAGE")

    response = process_partial_response(
        event=lambda_event(record),
        record_handler=streams.record_handler,
        processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        context=None,
    )

    assert response == failures()
    backend: Any = stream_lambda._DEFAULT[0].backend
    assert kind(backend, "a") is EntryKind.ABSENT


def test_apply_record_rejects_what_it_cannot_read() -> None:
    with pytest.raises(TypeError, match="raw record dict or Powertools' DynamoDBRecord"):
        make_handler(CONFIG, backend=MemoryBackend()).apply_record(42)
