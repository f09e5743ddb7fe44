"""Projected GetItem reads over moto's server: served from the one full-item entry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend

ITEM = {
    "pk": {"S": "a"},
    "profile": {"M": {"city": {"S": "Oslo"}, "langs": {"L": [{"S": "no"}, {"S": "en"}]}}},
    "score": {"N": "7"},
}
KEY = {"pk": {"S": "a"}}


def registered_client(url: str, backend: Any = None) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=backend)
    return session.client("dynamodb", endpoint_url=url)


@pytest.fixture
def plain(endpoint: str) -> Any:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item=ITEM)
    return client


PROJECTIONS: list[dict[str, Any]] = [
    {"ProjectionExpression": "score"},
    {"ProjectionExpression": "profile.city, score"},
    {"ProjectionExpression": "#p.langs[1]", "ExpressionAttributeNames": {"#p": "profile"}},
    {"ProjectionExpression": "absentee"},
    {"AttributesToGet": ["score"]},
]


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: json.dumps(p))
def test_a_projected_read_fetches_the_full_item_once_then_hits(
    endpoint: str, plain: Any, projection: dict[str, Any]
) -> None:
    backend = MemoryBackend()
    client = registered_client(endpoint, backend)
    if "AttributesToGet" in projection:  # moto ignores AttributesToGet on GetItem
        expected = {name: ITEM[name] for name in projection["AttributesToGet"] if name in ITEM}
    else:
        expected = plain.get_item(TableName="items", Key=KEY, **projection)["Item"]
    sent = RequestCounter(client, "GetItem")
    bodies: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-send.dynamodb.GetItem", lambda request, **_: bodies.append(json.loads(request.body))
    )
    answers = [client.get_item(TableName="items", Key=KEY, **projection) for _ in range(3)]
    assert [a["Item"] for a in answers] == [expected] * 3
    assert sent.count == 1
    assert bodies == [{"TableName": "items", "Key": KEY}]  # the full item was fetched
    # ... and cached: a full read is a hit too.
    assert client.get_item(TableName="items", Key=KEY)["Item"] == ITEM
    assert sent.count == 1


def test_a_projected_read_of_a_missing_item_has_no_item(endpoint: str, plain: Any) -> None:
    client = registered_client(endpoint)
    for _ in range(2):
        answer = client.get_item(
            TableName="items", Key={"pk": {"S": "zz"}}, ProjectionExpression="score"
        )
        assert "Item" not in answer


def test_the_table_resource_gets_projected_python_values(endpoint: str, plain: Any) -> None:
    session = new_session()
    momento_botocore.register(session, ttl=300)
    table = session.resource("dynamodb", endpoint_url=endpoint).Table("items")
    sent = RequestCounter(table.meta.client, "GetItem")
    for _ in range(3):
        answer = table.get_item(Key={"pk": "a"}, ProjectionExpression="profile.langs[0]")
        assert answer["Item"] == {"profile": {"langs": ["no"]}}
    assert sent.count == 1


def test_an_invalid_projection_gets_dynamodbs_own_error(endpoint: str, plain: Any) -> None:
    client = registered_client(endpoint)
    client.get_item(TableName="items", Key=KEY)  # cached
    with pytest.raises(ClientError) as expected:
        plain.get_item(TableName="items", Key=KEY, ProjectionExpression="score, name")
    with pytest.raises(ClientError) as cached:
        client.get_item(TableName="items", Key=KEY, ProjectionExpression="score, name")
    assert cached.value.response["Error"] == expected.value.response["Error"]
    assert momento_botocore.stats()["items"]["bypasses"] == 1


class DownBackend(MemoryBackend):
    def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache is down")


def test_a_failing_cache_still_returns_the_projection(endpoint: str, plain: Any) -> None:
    client = registered_client(endpoint, DownBackend())
    answer = client.get_item(TableName="items", Key=KEY, ProjectionExpression="profile.city")
    assert answer["Item"] == {"profile": {"M": {"city": {"S": "Oslo"}}}}
