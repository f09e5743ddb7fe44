"""BatchGetItem through the cache: hits answered locally, only the misses sent, one request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from backend_wrappers import RecordingBackend
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import ACCOUNT, RequestCounter, canned_response, create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend
from momento_botocore.backends import Backend
from momento_botocore.core.keys import cache_key

N = 10
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users"


def registered_client(url: str, backend: Any = None) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=backend)
    return session.client("dynamodb", endpoint_url=url)


def plain_client(url: str) -> Any:
    return new_session().client("dynamodb", endpoint_url=url)


def users_key(i: int) -> dict[str, Any]:
    return {"id": {"S": f"u{i}"}}


def orders_key(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"c{i % 3}"}, "sk": {"N": str(i)}}


@pytest.fixture
def tables(endpoint: str) -> None:
    client = plain_client(endpoint)
    create_table(client, "users", hash_key=("id", "S"))
    create_table(client, "orders", range_key=("sk", "N"))
    for i in range(N):
        client.put_item(
            TableName="users",
            Item={**users_key(i), "name": {"S": f"user {i}"}, "tags": {"SS": ["a", f"t{i}"]}},
        )
        client.put_item(
            TableName="orders",
            Item={
                **orders_key(i),
                "total": {"N": f"{i}.5"},
                "entries": {"L": [{"M": {"sku": {"S": f"s{i}"}, "qty": {"N": "1"}}}]},
            },
        )


def request(keys: range, **per_table: Any) -> dict[str, Any]:
    """RequestItems over both tables, with a missing key in each."""
    users = [users_key(i) for i in keys] + [users_key(999)]
    orders = [orders_key(i) for i in keys] + [orders_key(999)]
    return {
        "users": {"Keys": users, **per_table.get("users", {})},
        "orders": {"Keys": orders, **per_table.get("orders", {})},
    }


def canonical(answer: dict[str, Any]) -> dict[str, list[str]]:
    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return sorted((norm(v) for v in value), key=repr)
        if isinstance(value, bytes):
            return value.hex()
        return value

    return {
        table: sorted(json.dumps(norm(item), sort_keys=True) for item in items)
        for table, items in answer["Responses"].items()
    }


@pytest.mark.parametrize("warm_fraction", [0.0, 0.5, 1.0])
def test_batch_answers_like_dynamodb_with_one_request_at_most(
    endpoint: str, tables: None, warm_fraction: float
) -> None:
    client = registered_client(endpoint)
    expected = canonical(plain_client(endpoint).batch_get_item(RequestItems=request(range(N))))
    warm = int(N * warm_fraction)
    if warm:  # cache the first keys (and, at 100 %, the missing ones) with GetItem
        for i in range(warm):
            client.get_item(TableName="users", Key=users_key(i))
            client.get_item(TableName="orders", Key=orders_key(i))
        if warm == N:
            client.get_item(TableName="users", Key=users_key(999))
            client.get_item(TableName="orders", Key=orders_key(999))
    sent = RequestCounter(client, "BatchGetItem")
    answer = client.batch_get_item(RequestItems=request(range(N)))
    assert canonical(answer) == expected
    assert answer["UnprocessedKeys"] == {}
    assert sent.count == (0 if warm == N else 1)
    # The misses were filled: the same batch again sends nothing.
    again = client.batch_get_item(RequestItems=request(range(N)))
    assert canonical(again) == expected
    assert sent.count == (0 if warm == N else 1)


def test_only_the_misses_are_sent(endpoint: str, tables: None) -> None:
    client = registered_client(endpoint)
    client.get_item(TableName="users", Key=users_key(0))
    bodies: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-send.dynamodb.BatchGetItem",
        lambda request, **_: bodies.append(json.loads(request.body)),
    )
    client.batch_get_item(
        RequestItems={"users": {"Keys": [users_key(0), users_key(1)], "ProjectionExpression": "id"}}
    )
    assert bodies == [{"RequestItems": {"users": {"Keys": [users_key(1)]}}}]


def test_projections_per_table_match_dynamodb(endpoint: str, tables: None) -> None:
    per_table = {
        "users": {"ProjectionExpression": "#n, tags", "ExpressionAttributeNames": {"#n": "name"}},
        "orders": {
            "ProjectionExpression": "entries[0].sku, #t",
            "ExpressionAttributeNames": {"#t": "total"},
        },
    }
    expected = canonical(
        plain_client(endpoint).batch_get_item(RequestItems=request(range(N), **per_table))
    )
    client = registered_client(endpoint)
    sent = RequestCounter(client, "BatchGetItem")
    for _ in range(3):  # miss, then hits
        answer = client.batch_get_item(RequestItems=request(range(N), **per_table))
        assert canonical(answer) == expected
    assert sent.count == 1, momento_botocore.stats()
    # The full items were cached: a plain GetItem is a hit too.
    gets = RequestCounter(client, "GetItem")
    item = client.get_item(TableName="orders", Key=orders_key(4))["Item"]
    assert item["entries"]["L"][0]["M"]["qty"] == {"N": "1"}
    assert gets.count == 0


def test_attributes_to_get_matches_dynamodb(endpoint: str, tables: None) -> None:
    per_table = {"users": {"AttributesToGet": ["name", "nope"]}}
    expected = canonical(
        plain_client(endpoint).batch_get_item(RequestItems=request(range(3), **per_table))
    )
    client = registered_client(endpoint)
    for _ in range(2):
        assert (
            canonical(client.batch_get_item(RequestItems=request(range(3), **per_table)))
            == expected
        )


def test_consistent_read_tables_always_go_to_dynamodb(endpoint: str, tables: None) -> None:
    client = registered_client(endpoint)
    items = request(range(3), users={"ConsistentRead": True})
    client.batch_get_item(RequestItems=items)
    plain_client(endpoint).put_item(TableName="users", Item={**users_key(0), "name": {"S": "x"}})
    bodies: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-send.dynamodb.BatchGetItem",
        lambda request, **_: bodies.append(json.loads(request.body)),
    )
    answer = client.batch_get_item(RequestItems=items)
    assert {"id": {"S": "u0"}, "name": {"S": "x"}} in answer["Responses"]["users"]
    assert list(bodies[0]["RequestItems"]) == ["users"]  # orders came from the cache
    assert len(answer["Responses"]["orders"]) == 3


def test_consumed_capacity_counts_only_what_dynamodb_read(endpoint: str, tables: None) -> None:
    client = registered_client(endpoint)
    for i in range(3):
        client.get_item(TableName="users", Key=users_key(i))
    client.get_item(TableName="users", Key=users_key(999))
    answer = client.batch_get_item(RequestItems=request(range(3)), ReturnConsumedCapacity="TOTAL")
    consumed = {c["TableName"]: c["CapacityUnits"] for c in answer["ConsumedCapacity"]}
    assert consumed["users"] == 0.0
    assert consumed["orders"] > 0
    all_hits = client.batch_get_item(RequestItems=request(range(3)), ReturnConsumedCapacity="TOTAL")
    assert sorted(c["TableName"] for c in all_hits["ConsumedCapacity"]) == ["orders", "users"]
    assert all(c["CapacityUnits"] == 0.0 for c in all_hits["ConsumedCapacity"])


def test_consumed_capacity_of_fully_cached_tables_has_dynamodbs_keys(
    endpoint: str, tables: None
) -> None:
    client = registered_client(endpoint)
    client.batch_get_item(RequestItems=request(range(3)))
    expected = plain_client(endpoint).batch_get_item(
        RequestItems=request(range(3)), ReturnConsumedCapacity="TOTAL"
    )["ConsumedCapacity"]
    answer = client.batch_get_item(RequestItems=request(range(3)), ReturnConsumedCapacity="TOTAL")
    assert sorted(map(sorted, answer["ConsumedCapacity"])) == sorted(map(sorted, expected))
    # INDEXES adds each table's own figure, as DynamoDB documents (moto leaves it out).
    indexes = client.batch_get_item(
        RequestItems=request(range(3)), ReturnConsumedCapacity="INDEXES"
    )["ConsumedCapacity"]
    assert all(
        c.keys() == {"TableName", "CapacityUnits", "Table"} and c["Table"] == {"CapacityUnits": 0.0}
        for c in indexes
    )


def test_unprocessed_keys_are_returned_as_asked_and_not_filled(
    endpoint: str, tables: None, default_backend: Backend
) -> None:
    client = registered_client(endpoint, default_backend)
    client.get_item(TableName="users", Key=users_key(0))  # one hit

    def partial_answer(request: Any, **_: Any) -> Any:
        sent = json.loads(request.body)["RequestItems"]["users"]
        assert "ProjectionExpression" not in sent  # full items are fetched
        body = {
            "Responses": {"users": [{**users_key(1), "name": {"S": "user 1"}}]},
            "UnprocessedKeys": {"users": sent | {"Keys": [users_key(2)]}},
        }
        return canned_response(request.url, 200, json.dumps(body).encode())

    client.meta.events.register("before-send.dynamodb.BatchGetItem", partial_answer)
    asked = {"Keys": [users_key(0), users_key(1), users_key(2)], "ProjectionExpression": "id"}
    answer = client.batch_get_item(RequestItems={"users": asked})
    assert sorted(i["id"]["S"] for i in answer["Responses"]["users"]) == ["u0", "u1"]
    assert all(set(i) == {"id"} for i in answer["Responses"]["users"])
    assert answer["UnprocessedKeys"] == {
        "users": {"Keys": [users_key(2)], "ProjectionExpression": "id"}
    }
    client.meta.events.unregister("before-send.dynamodb.BatchGetItem", partial_answer)
    sent = RequestCounter(client, "BatchGetItem")
    retry = client.batch_get_item(RequestItems={"users": {"Keys": [users_key(1), users_key(2)]}})
    assert sent.count == 1  # u1 was filled, u2 (unprocessed) was not
    assert sorted(i["id"]["S"] for i in retry["Responses"]["users"]) == ["u1", "u2"]


def test_the_table_resource_batch_gets_python_values(endpoint: str, tables: None) -> None:
    session = new_session()
    momento_botocore.register(session, ttl=300)
    resource = session.resource("dynamodb", endpoint_url=endpoint)
    sent = RequestCounter(resource.meta.client, "BatchGetItem")
    keys = [{"id": f"u{i}"} for i in range(3)]
    answers = [
        resource.batch_get_item(RequestItems={"users": {"Keys": keys}})["Responses"]["users"]
        for _ in range(3)
    ]
    assert sent.count == 1
    for answer in answers:
        assert sorted(item["name"] for item in answer) == ["user 0", "user 1", "user 2"]
        assert all(isinstance(item["tags"], set) for item in answer)


@pytest.mark.cache_free(reason="an invalid projection is not understood: never looked up")
def test_an_invalid_projection_gets_dynamodbs_own_error(endpoint: str, tables: None) -> None:
    client = registered_client(endpoint)
    plain = plain_client(endpoint)
    items = request(range(2), users={"ProjectionExpression": "name"})  # reserved word
    with pytest.raises(ClientError) as expected:
        plain.batch_get_item(RequestItems=items)
    with pytest.raises(ClientError) as cached:
        client.batch_get_item(RequestItems=items)
    assert cached.value.response["Error"] == expected.value.response["Error"]


def test_duplicate_keys_get_dynamodbs_own_error(endpoint: str, tables: None) -> None:
    client = registered_client(endpoint)
    client.get_item(TableName="users", Key=users_key(0))
    with pytest.raises(ClientError, match="duplicates"):
        client.batch_get_item(RequestItems={"users": {"Keys": [users_key(0), users_key(0)]}})


class DownBackend(MemoryBackend):
    def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache is down")

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        raise ConnectionError("cache is down")


@pytest.mark.cache_free(reason="its own cache, which is down")
def test_a_failing_cache_still_answers_every_key(endpoint: str, tables: None) -> None:
    expected = canonical(plain_client(endpoint).batch_get_item(RequestItems=request(range(N))))
    client = registered_client(endpoint, DownBackend())
    assert canonical(client.batch_get_item(RequestItems=request(range(N)))) == expected
    assert momento_botocore.stats()["users"]["errors"] > 0


def test_garbage_in_the_cache_is_a_miss_and_is_removed(
    endpoint: str, tables: None, default_backend: Backend
) -> None:
    backend = default_backend
    client = registered_client(endpoint, backend)
    key = cache_key(ACCOUNT, "us-east-1", "users", users_key(0))
    backend.set(key, b"not an entry", 60)
    answer = client.batch_get_item(RequestItems={"users": {"Keys": [users_key(0)]}})
    assert answer["Responses"]["users"][0]["name"] == {"S": "user 0"}
    assert backend.get(key) != b"not an entry"  # removed, then filled
    assert momento_botocore.stats()["users"]["garbage"] == 1


@pytest.mark.sync_only  # botocore's Stubber
def test_answers_that_did_not_come_over_the_wire_are_not_cached(
    endpoint: str, tables: None, default_backend: Backend
) -> None:
    backend = RecordingBackend(default_backend)
    client = registered_client(endpoint, backend)
    with Stubber(client) as stubber:
        stubber.add_response(
            "batch_get_item",
            {"Responses": {"users": [{"id": {"S": "u0"}, "name": {"S": "stubbed"}}]}},
        )
        answer = client.batch_get_item(RequestItems={"users": {"Keys": [users_key(0)]}})
    assert answer["Responses"]["users"] == [{"id": {"S": "u0"}, "name": {"S": "stubbed"}}]
    assert backend.writes == 0  # looked up (a miss), never filled


def _answer_with(body: dict[str, Any]) -> Any:
    def answer(request: Any, **_: Any) -> Any:
        return canned_response(request.url, 200, json.dumps(body).encode())

    return answer


@pytest.mark.parametrize("answered_as", [ARN, "users"])
def test_a_table_given_by_arn_gets_its_hits_where_dynamodb_put_the_rest(
    endpoint: str, tables: None, answered_as: str
) -> None:
    client = registered_client(endpoint)
    client.get_item(TableName="users", Key=users_key(0))  # a hit for the batch
    fetched = [{**users_key(1), "name": {"S": "user 1"}}]
    client.meta.events.register(
        "before-send.dynamodb.BatchGetItem",
        _answer_with({"Responses": {answered_as: fetched}, "UnprocessedKeys": {}}),
    )
    answer = client.batch_get_item(RequestItems={ARN: {"Keys": [users_key(0), users_key(1)]}})
    assert list(answer["Responses"]) == [answered_as]
    assert sorted(i["id"]["S"] for i in answer["Responses"][answered_as]) == ["u0", "u1"]
