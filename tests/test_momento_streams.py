"""The stream invalidator writing to Momento (real SDK, local server): entries, and
records reported for retry when Momento is down or the breaker is open."""

from __future__ import annotations

import time
from typing import Any

import grpc
from conftest import ACCOUNT, REGION, RequestCounter, create_table, new_session
from stream_records import failures, lambda_event, lambda_record

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import CircuitBreakerBackend
from momento_botocore.backends.factory import create_backend
from momento_botocore.backends.near import NearCacheBackend
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.core.keys import cache_key
from momento_botocore.streams import make_handler
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

CONFIG = CacheConfig(
    ttl=300,
    backend="momento",
    momento_cache_name=DEFAULT_CACHE,
    momento_request_timeout=1.0,
    breaker_failures=2,
    breaker_cooldown=600,
)
KEYS = {"pk": {"S": "a"}}
OLD = {"pk": {"S": "a"}, "v": {"N": "1"}}
NEW = {"pk": {"S": "a"}, "v": {"N": "2"}}


def momento_backend(server: LocalMomentoServer) -> Any:
    """What the Lambda builds: Momento behind a breaker, publishing invalidations."""
    backend = create_backend(CONFIG, credential_provider=server.credential_provider())
    assert isinstance(backend, NearCacheBackend)
    assert isinstance(backend.backend, CircuitBreakerBackend)
    return backend


def stored_kind(server: LocalMomentoServer) -> EntryKind | None:
    raw = server.get_raw(cache_key(ACCOUNT, REGION, "items", KEYS))
    entry = None if raw is None else decode(raw)
    return None if entry is None else entry.kind


def test_a_modify_refreshes_what_readers_get_from_momento(
    endpoint: str, momento_server: LocalMomentoServer
) -> None:
    writer = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(writer, "items")
    writer.put_item(TableName="items", Item=OLD)
    backend = momento_backend(momento_server)
    session = new_session()
    momento_botocore.register(session, config=CONFIG, backend=backend)
    reader: Any = session.client("dynamodb", endpoint_url=endpoint)
    assert reader.get_item(TableName="items", Key=KEYS)["Item"] == OLD  # filled
    writer.put_item(TableName="items", Item=NEW)  # someone else writes
    handler = make_handler(CONFIG, backend=backend)
    record = lambda_record("MODIFY", KEYS, old=OLD, new=NEW)
    assert handler(lambda_event(record)) == {"batchItemFailures": []}
    sent = RequestCounter(reader, "GetItem")
    assert reader.get_item(TableName="items", Key=KEYS)["Item"] == NEW
    assert sent.count == 0  # served by Momento, refreshed by the stream
    handler(lambda_event(lambda_record("REMOVE", KEYS, old=NEW)))
    assert stored_kind(momento_server) is EntryKind.ABSENT
    backend.close()


def test_records_are_reported_for_retry_while_momento_fails(
    momento_server: LocalMomentoServer,
) -> None:
    backend = momento_backend(momento_server)
    handler = make_handler(CONFIG, backend=backend)
    momento_server.fail("Set", code=grpc.StatusCode.UNAVAILABLE)
    first = lambda_record("MODIFY", KEYS, old=OLD, new=NEW)
    assert handler(lambda_event(first)) == failures(first)
    second = lambda_record("MODIFY", KEYS, old=OLD, new=NEW)
    assert handler(lambda_event(second)) == failures(second)
    calls = momento_server.calls("Set")
    # The breaker is open now: records still fail (for Lambda to retry), at no cost.
    third = lambda_record("MODIFY", KEYS, old=OLD, new=NEW)
    assert handler(lambda_event(third)) == failures(third)
    assert momento_server.calls("Set") == calls
    assert stored_kind(momento_server) is None
    backend.close()


def test_a_batch_waits_for_its_publishes_but_not_for_a_failing_topic(
    momento_server: LocalMomentoServer,
) -> None:
    """A frozen Lambda container publishes nothing: the handler returns once the batch's
    invalidations are published, and at once (they are retried) when publishing fails."""
    backend = momento_backend(momento_server)
    handler = make_handler(CONFIG, backend=backend)
    momento_server.delay("Publish", seconds=0.3, times=1)
    handler(lambda_event(lambda_record("MODIFY", KEYS, old=OLD, new=NEW)))
    assert backend.near.publisher.wait_idle(0)  # published before the handler returned
    momento_server.fail("Publish")
    started = time.monotonic()
    handler(lambda_event(lambda_record("MODIFY", KEYS, old=OLD, new=NEW)))
    assert time.monotonic() - started < 1.5  # not the 2 s a slow topic may take
    assert not backend.near.publisher.wait_idle(0)  # still waiting to be published
    momento_server.clear_faults()
    assert backend.near.publisher.wait_idle(5)  # and retried
    backend.close()
