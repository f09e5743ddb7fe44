"""unregister() while a call is in flight (another thread, say): that call still
gets the answer DynamoDB would give, whatever the plan had changed in its request."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend

KEYS = [{"pk": {"S": f"k{i}"}} for i in range(6)]


@pytest.fixture
def table(endpoint: str) -> str:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "inflight")
    for i, key in enumerate(KEYS):
        client.put_item(TableName="inflight", Item={**key, "n": {"N": str(i)}, "x": {"S": "y"}})
    return "inflight"


def _client_registered_then_unregistered_mid_call(endpoint: str) -> Any:
    """A client registered directly (its own emitter holds our handlers) whose
    registration is undone after planning (at endpoint resolution, between
    before-parameter-build and before-call), before the cache would answer."""
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    registration = momento_botocore.register(client, ttl=300, backend=MemoryBackend())
    armed = {"on": False}

    def unregister_now(**_: Any) -> None:
        if armed["on"]:
            armed["on"] = False
            registration.unregister()

    client.meta.events.register("before-endpoint-resolution.dynamodb", unregister_now)
    client.arm = lambda: armed.update(on=True)  # type: ignore[attr-defined]
    return client


def _items(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(answer["Responses"]["inflight"], key=lambda item: item["pk"]["S"])


def test_an_all_hit_batch_in_flight_is_still_answered(endpoint: str, table: str) -> None:
    client = _client_registered_then_unregistered_mid_call(endpoint)
    request = {table: {"Keys": KEYS}}
    expected = _items(client.batch_get_item(RequestItems=request))  # fills every key
    client.arm()
    assert _items(client.batch_get_item(RequestItems=request)) == expected


def test_a_partial_batch_in_flight_returns_every_item(endpoint: str, table: str) -> None:
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    expected = _items(plain.batch_get_item(RequestItems={table: {"Keys": KEYS}}))
    client = _client_registered_then_unregistered_mid_call(endpoint)
    client.batch_get_item(RequestItems={table: {"Keys": KEYS[:3]}})  # hits for the first 3
    client.arm()
    answer = client.batch_get_item(RequestItems={table: {"Keys": KEYS}})
    assert _items(answer) == expected
    assert answer["UnprocessedKeys"] == {}


def test_a_projected_get_item_in_flight_is_still_projected(endpoint: str, table: str) -> None:
    client = _client_registered_then_unregistered_mid_call(endpoint)
    client.arm()
    answer = client.get_item(TableName=table, Key=KEYS[0], ProjectionExpression="n")
    assert answer["Item"] == {"n": {"N": "0"}}


def test_after_unregister_the_client_is_uncached(endpoint: str, table: str) -> None:
    client = _client_registered_then_unregistered_mid_call(endpoint)
    client.get_item(TableName=table, Key=KEYS[0])
    client.arm()
    client.get_item(TableName=table, Key=KEYS[0])
    answer = client.get_item(TableName=table, Key=KEYS[0])
    assert "x-momento-cache" not in answer["ResponseMetadata"]["HTTPHeaders"]
