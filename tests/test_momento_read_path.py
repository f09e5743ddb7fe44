"""register() with backend="momento" reads through the real SDK and the local server.

The whole read-path suite (tests/test_read_path.py) also runs against Momento:
``make test`` runs it a second time with ``--default-backend=momento``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import RequestCounter, create_table, new_session
from test_read_path import ITEM

import momento_botocore
from momento_botocore import CacheConfig
from momento_botocore.backends import Backend, CircuitBreakerBackend
from momento_botocore.backends.factory import create_backend
from momento_botocore.backends.near import NearCacheBackend
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer


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


def test_register_from_configuration_reads_through_momento(
    endpoint: str, table: str, momento_server: LocalMomentoServer
) -> None:
    config = CacheConfig(ttl=60, backend="momento", momento_cache_name=DEFAULT_CACHE)
    backend = create_backend(config, credential_provider=momento_server.credential_provider())
    assert isinstance(backend, NearCacheBackend)  # publishing invalidations (the default)
    assert isinstance(backend.backend, CircuitBreakerBackend)
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert client.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == ITEM
    assert sent.count == 1
    assert momento_server.calls("Get") == 3
    assert momento_server.calls("SetIfNotExists") == 1
    backend.close()
