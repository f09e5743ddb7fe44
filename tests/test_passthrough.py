"""Reads the cache does not serve go to DynamoDB untouched: they see fresh data every time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import RequestCounter, create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend

KEY = {"pk": {"S": "a"}}


def transact_get(c: Any) -> Any:
    answer = c.transact_get_items(TransactItems=[{"Get": {"TableName": "items", "Key": KEY}}])
    return answer["Responses"][0]["Item"]


def query(c: Any) -> Any:
    answer = c.query(
        TableName="items",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "a"}},
    )
    return answer["Items"][0]


def scan(c: Any) -> Any:
    return c.scan(TableName="items")["Items"][0]


def select(c: Any) -> Any:
    return c.execute_statement(Statement="""SELECT * FROM "items" WHERE pk = 'a'""")["Items"][0]


def batch_select(c: Any) -> Any:
    answer = c.batch_execute_statement(
        Statements=[{"Statement": "SELECT * FROM items WHERE pk = 'a'"}]
    )
    return answer["Responses"][0]["Item"]


def transaction_select(c: Any) -> Any:
    answer = c.execute_transaction(
        TransactStatements=[{"Statement": """SELECT * FROM "items" WHERE pk = 'a'"""}]
    )
    return answer["Responses"][0]["Item"]


READS: dict[str, Callable[[Any], Any]] = {
    "TransactGetItems": transact_get,
    "Query": query,
    "Scan": scan,
    "ExecuteStatement": select,
    "BatchExecuteStatement": batch_select,
    "ExecuteTransaction": transaction_select,
}


@pytest.mark.parametrize("operation", list(READS))
def test_uncached_reads_reach_dynamodb_every_time(endpoint: str, operation: str) -> None:
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(plain, "items")
    plain.put_item(TableName="items", Item={**KEY, "v": {"S": "old"}})
    backend = MemoryBackend()
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=backend)
    client = session.client("dynamodb", endpoint_url=endpoint)
    client.get_item(TableName="items", Key=KEY)  # the cache now holds "old"
    cached = len(backend)
    sent = RequestCounter(client, operation)
    read = READS[operation]
    assert read(client)["v"] == {"S": "old"}
    plain.put_item(TableName="items", Item={**KEY, "v": {"S": "new"}})
    assert read(client)["v"] == {"S": "new"}
    assert sent.count == 2
    assert len(backend) == cached
    assert momento_botocore.stats()["items"]["hits"] == 0
