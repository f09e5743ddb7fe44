"""The key read-path behaviours, over every backend (memory, and Momento through the
real SDK and the local Momento-protocol server), against moto's server over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from conftest import REGION, RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import Backend, CircuitBreakerBackend
from momento_botocore.backends.factory import create_backend
from momento_botocore.entries import EntryKind, decode
from momento_botocore.keys import cache_key
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

ITEM = {
    "pk": {"S": "a"},
    "n": {"N": "1.5"},
    "b": {"B": b"\x00\xff"},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01"]},
    "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
}


@pytest.fixture
def table(endpoint: str) -> str:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item=ITEM)
    return "items"


def cached_client(endpoint: str, backend: Backend) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=60, backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def header(response: dict[str, Any]) -> str | None:
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def test_second_read_is_served_from_cache_without_a_request(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    client = cached_client(endpoint, any_backend)
    sent = RequestCounter(client, "GetItem")
    first = client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    second = client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert sent.count == 1
    assert (header(first), header(second)) == ("miss", "hit")
    assert first["Item"] == second["Item"] == ITEM
    stored = any_backend.get(cache_key(REGION, table, {"pk": {"S": "a"}}))
    assert stored is not None
    entry = decode(stored)
    assert entry is not None and entry.kind is EntryKind.ITEM


def test_table_resource_returns_python_types_identical_to_an_uncached_call(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    uncached = (
        new_session()
        .resource("dynamodb", endpoint_url=endpoint)
        .Table(table)
        .get_item(Key={"pk": "a"})
    )
    session = new_session()
    momento_botocore.register(session, ttl=60, backend=any_backend)
    cached_table = session.resource("dynamodb", endpoint_url=endpoint).Table(table)
    sent = RequestCounter(cached_table.meta.client, "GetItem")
    answers = [cached_table.get_item(Key={"pk": "a"}) for _ in range(5)]
    assert sent.count == 1
    assert [header(a) for a in answers] == ["miss"] + ["hit"] * 4
    for answer in answers:
        assert answer["Item"] == uncached["Item"]
        assert answer["Item"]["n"] == Decimal("1.5")
        assert answer["Item"]["ss"] == {"x", "y"}
        assert answer["Item"]["b"] == Binary(b"\x00\xff")
        assert answer["Item"]["bs"] == {Binary(b"\x01")}


def test_missing_item_is_answered_from_an_absent_entry(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    client = cached_client(endpoint, any_backend)
    sent = RequestCounter(client, "GetItem")
    first = client.get_item(TableName=table, Key={"pk": {"S": "nope"}})
    second = client.get_item(TableName=table, Key={"pk": {"S": "nope"}})
    assert "Item" not in first and "Item" not in second
    assert sent.count == 1 and header(second) == "hit"
    stored = any_backend.get(cache_key(REGION, table, {"pk": {"S": "nope"}}))
    assert stored is not None
    entry = decode(stored)
    assert entry is not None and entry.kind is EntryKind.ABSENT


def test_consistent_reads_never_read_or_fill_the_cache(
    endpoint: str, table: str, any_backend: Backend
) -> None:
    client = cached_client(endpoint, any_backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        answer = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
        assert answer["Item"] == ITEM and header(answer) is None
    assert sent.count == 3
    assert any_backend.get(cache_key(REGION, table, {"pk": {"S": "a"}})) is None


def test_register_from_configuration_reads_through_momento(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    config = CacheConfig(ttl=60, backend="momento", momento_cache_name=DEFAULT_CACHE)
    backend = create_backend(config, credential_provider=momento_server.credential_provider())
    assert isinstance(backend, CircuitBreakerBackend)
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert client.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == ITEM
    assert sent.count == 1
    assert momento_server.calls("Get") == 3 and momento_server.calls("SetIfNotExists") == 1
    backend.close()
