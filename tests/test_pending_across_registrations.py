"""Unwritten tombstones with two registrations on one shared cache in one process.

The docs promise that, until a failed tombstone is written, "every read of that key
in this process" skips the cache. Pending tombstones are kept per registration
(ReadHooks.pending), so a read through another registration sharing the cache is
not guarded, and nothing retries the tombstone until the writing registration makes
its next cache call.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import RequestCounter, new_session
from test_unwritten_tombstones import RETRY, FlakyCache, get, item, items, put, warm

import momento_botocore
from momento_botocore import CacheConfig

__all__ = ["items"]  # the fixture, used by name


def client_of(endpoint: str, cache: FlakyCache) -> Any:
    config = CacheConfig(ttl=300, tombstone_retry_interval=RETRY)
    session = new_session()
    momento_botocore.register(session, backend=cache, config=config)
    return session.client("dynamodb", endpoint_url=endpoint)


@pytest.mark.xfail(
    strict=True, reason="pending tombstones are per registration, not per process/cache"
)
def test_a_write_whose_tombstone_failed_is_read_back_through_another_registration(
    endpoint: str, items: str
) -> None:
    cache = FlakyCache()  # one cache (think: one Momento cache) shared by both
    writer = client_of(endpoint, cache)
    reader = client_of(endpoint, cache)
    warm(reader, "a")
    cache.down = True
    put(writer, "a")  # written to DynamoDB; its tombstone fails and is remembered
    cache.down = False
    sent = RequestCounter(reader, "GetItem")
    assert get(reader, "a") == item("a", "new")
    assert sent.count == 1
