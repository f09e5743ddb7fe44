"""Read your own writes: writes through a registered client invalidate what they touch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from conftest import REGION, RequestCounter, create_table, new_session
from lossy_proxy import lossy_proxy

import momento_botocore
from momento_botocore import MemoryBackend

OLD = {"pk": {"S": "a"}, "v": {"S": "old"}}
NEW = {"pk": {"S": "a"}, "v": {"S": "new"}}
KEY = {"pk": {"S": "a"}}


def registered_client(
    url: str, backend: Any = None, config: Config | None = None, **kw: Any
) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=backend, **kw)
    return session.client("dynamodb", endpoint_url=url, config=config)


def plain_client(url: str) -> Any:
    return new_session().client("dynamodb", endpoint_url=url)


def read_both(client: Any, table: str = "items", key: dict[str, Any] = KEY) -> tuple[Any, Any]:
    """What GetItem and BatchGetItem (both through the cache) say about one item."""
    got = client.get_item(TableName=table, Key=key).get("Item")
    batch = client.batch_get_item(RequestItems={table: {"Keys": [key]}})["Responses"][table]
    return got, (batch[0] if batch else None)


def warm(client: Any, table: str = "items", key: dict[str, Any] = KEY) -> None:
    """Cache the current state and prove the next read is a hit."""
    read_both(client, table, key)
    sent = RequestCounter(client, "GetItem")
    client.get_item(TableName=table, Key=key)
    assert sent.count == 0, "the item should be cached before the write"


@pytest.fixture
def items(endpoint: str) -> str:
    client = plain_client(endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item=OLD)
    return "items"


def put(c: Any) -> None:
    c.put_item(TableName="items", Item=NEW)


def update(c: Any) -> None:
    c.update_item(
        TableName="items",
        Key=KEY,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "new"}},
    )


def delete(c: Any) -> None:
    c.delete_item(TableName="items", Key=KEY)


def batch_put(c: Any) -> None:
    c.batch_write_item(RequestItems={"items": [{"PutRequest": {"Item": NEW}}]})


def batch_delete(c: Any) -> None:
    c.batch_write_item(RequestItems={"items": [{"DeleteRequest": {"Key": KEY}}]})


def transact_put(c: Any) -> None:
    c.transact_write_items(TransactItems=[{"Put": {"TableName": "items", "Item": NEW}}])


def transact_update(c: Any) -> None:
    c.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "items",
                    "Key": KEY,
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "new"}},
                }
            }
        ]
    )


def transact_delete(c: Any) -> None:
    c.transact_write_items(TransactItems=[{"Delete": {"TableName": "items", "Key": KEY}}])


WRITES: dict[str, tuple[Callable[[Any], None], Any]] = {
    "PutItem": (put, NEW),
    "UpdateItem": (update, NEW),
    "DeleteItem": (delete, None),
    "BatchWriteItem put": (batch_put, NEW),
    "BatchWriteItem delete": (batch_delete, None),
    "TransactWriteItems put": (transact_put, NEW),
    "TransactWriteItems update": (transact_update, NEW),
    "TransactWriteItems delete": (transact_delete, None),
}


@pytest.mark.parametrize("operation", list(WRITES))
def test_a_write_is_seen_by_the_next_reads(endpoint: str, items: str, operation: str) -> None:
    write, expected = WRITES[operation]
    client = registered_client(endpoint)
    warm(client)
    write(client)
    for _ in range(3):  # every time, not just once
        assert read_both(client) == (expected, expected)
    assert momento_botocore.stats()["items"]["invalidations"] == 1


def test_a_write_by_an_unregistered_client_is_not_seen_until_the_ttl(
    endpoint: str, items: str
) -> None:
    client = registered_client(endpoint)
    warm(client)
    put(plain_client(endpoint))
    assert read_both(client) == (OLD, OLD)  # what the write hooks are for


def test_writes_through_the_table_resource_are_seen(endpoint: str, items: str) -> None:
    session = new_session()
    momento_botocore.register(session, ttl=300)
    resource = session.resource("dynamodb", endpoint_url=endpoint)
    table = resource.Table("items")
    table.get_item(Key={"pk": "a"})
    table.put_item(Item={"pk": "a", "v": "new"})
    assert table.get_item(Key={"pk": "a"})["Item"] == {"pk": "a", "v": "new"}
    with table.batch_writer() as writer:
        writer.put_item(Item={"pk": "a", "v": "newer"})
    assert table.get_item(Key={"pk": "a"})["Item"]["v"] == "newer"
    answer = resource.batch_get_item(RequestItems={"items": {"Keys": [{"pk": "a"}]}})
    assert answer["Responses"]["items"] == [{"pk": "a", "v": "newer"}]


def test_put_on_a_composite_key_table_learns_the_key_schema_once(endpoint: str) -> None:
    create_table(plain_client(endpoint), "pairs", range_key=("sk", "N"))
    client = registered_client(endpoint)
    describes = RequestCounter(client, "DescribeTable")
    for n in range(3):
        key = {"pk": {"S": "a"}, "sk": {"N": str(n)}}
        client.get_item(TableName="pairs", Key=key)  # caches "absent"
        client.put_item(TableName="pairs", Item={**key, "v": {"S": f"v{n}"}})
        assert client.get_item(TableName="pairs", Key=key)["Item"]["v"] == {"S": f"v{n}"}
    assert describes.count == 1


def test_configured_key_schemas_need_no_describe_table(endpoint: str, items: str) -> None:
    client = registered_client(endpoint, key_schemas={"items": ("pk",)})
    describes = RequestCounter(client, "DescribeTable")
    warm(client)
    put(client)
    assert read_both(client) == (NEW, NEW)
    assert describes.count == 0


def test_a_client_registered_directly_is_asked_for_the_key_schema(
    endpoint: str, items: str
) -> None:
    client = plain_client(endpoint)
    momento_botocore.register(client, ttl=300)
    warm(client)
    put(client)
    assert read_both(client) == (NEW, NEW)


def test_globally_registered_sessions_invalidate_puts(endpoint: str, items: str) -> None:
    momento_botocore.register(ttl=300)
    client = boto3.Session(region_name=REGION).client("dynamodb", endpoint_url=endpoint)
    warm(client)
    put(client)
    assert read_both(client) == (NEW, NEW)


# Rejected writes change nothing: the cached entry stays and keeps serving.


def conditional_put(c: Any) -> None:
    c.put_item(TableName="items", Item=NEW, ConditionExpression="attribute_not_exists(pk)")


def cancelled_transaction(c: Any) -> None:
    c.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "items", "Item": {"pk": {"S": "b"}}}},
            {
                "Put": {
                    "TableName": "items",
                    "Item": NEW,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )


def invalid_update(c: Any) -> None:
    c.update_item(TableName="items", Key=KEY, UpdateExpression="SET v = :missing")


REJECTED = {
    "ConditionalCheckFailedException": conditional_put,
    "TransactionCanceledException": cancelled_transaction,
    "ValidationException": invalid_update,
}


@pytest.mark.parametrize("error", list(REJECTED))
def test_a_rejected_write_leaves_the_cache_serving(endpoint: str, items: str, error: str) -> None:
    client = registered_client(endpoint)
    warm(client)
    with pytest.raises(ClientError) as raised:
        REJECTED[error](client)
    assert raised.value.response["Error"]["Code"] == error
    sent = RequestCounter(client)
    assert read_both(client) == (OLD, OLD)
    assert sent.count == 0
    assert momento_botocore.stats()["items"].get("invalidations", 0) == 0


# Unknown outcomes: the request left, the answer did not come back.


@pytest.mark.parametrize("operation", ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"])
def test_a_write_whose_answer_is_lost_is_still_invalidated(
    endpoint: str, items: str, operation: str
) -> None:
    write, expected = {
        "PutItem": WRITES["PutItem"],
        "UpdateItem": WRITES["UpdateItem"],
        "DeleteItem": WRITES["DeleteItem"],
        "BatchWriteItem": WRITES["BatchWriteItem put"],
    }[operation]
    with lossy_proxy(endpoint) as proxy:
        client = registered_client(proxy.url, config=Config(retries={"total_max_attempts": 1}))
        warm(client)
        proxy.drop[operation] = 1
        with pytest.raises(ConnectionClosedError):
            write(client)
        assert read_both(client) == (expected, expected)


def test_a_write_that_times_out_is_still_invalidated(endpoint: str, items: str) -> None:
    with lossy_proxy(endpoint) as proxy:
        config = Config(read_timeout=0.3, retries={"total_max_attempts": 1})
        client = registered_client(proxy.url, config=config)
        warm(client)
        proxy.slow["TransactWriteItems"] = 1
        with pytest.raises(ReadTimeoutError):
            transact_put(client)
        assert read_both(client) == (NEW, NEW)


def test_a_write_answered_with_a_server_error_is_still_invalidated(
    endpoint: str, items: str
) -> None:
    with lossy_proxy(endpoint) as proxy:
        client = registered_client(proxy.url, config=Config(retries={"total_max_attempts": 1}))
        warm(client)
        proxy.fail["UpdateItem"] = 1
        with pytest.raises(ClientError, match="InternalServerError"):
            update(client)
        assert read_both(client) == (NEW, NEW)


def test_a_retried_write_rejected_after_a_lost_answer_is_still_invalidated(
    endpoint: str, items: str
) -> None:
    # Attempt 1 is applied but its answer is lost; attempt 2 then fails its condition.
    with lossy_proxy(endpoint) as proxy:
        config = Config(retries={"total_max_attempts": 2, "mode": "standard"})
        client = registered_client(proxy.url, config=config)
        delete(plain_client(endpoint))
        warm(client)  # caches "absent"
        proxy.drop["PutItem"] = 1
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            conditional_put(client)
        assert read_both(client) == (NEW, NEW)


def test_a_write_that_never_left_invalidates_nothing(endpoint: str, items: str) -> None:
    client = registered_client(endpoint)
    warm(client)
    before = dict(momento_botocore.stats()["items"])

    def refuse(**_: Any) -> None:
        raise ConnectionRefusedError("no network")

    client.meta.events.register_first("request-created.dynamodb.PutItem", refuse)
    with pytest.raises(ConnectionRefusedError):
        put(client)
    assert momento_botocore.stats()["items"] == before
    assert read_both(client) == (OLD, OLD)


# A failing cache never breaks a write.


class BrokenBackend(MemoryBackend):
    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        raise ConnectionError("cache is down")


@pytest.mark.cache_free(reason="its own cache, which is broken")
def test_a_failing_cache_does_not_break_writes(endpoint: str, items: str) -> None:
    client = registered_client(endpoint, BrokenBackend())
    for write, _ in WRITES.values():
        write(client)
    assert plain_client(endpoint).get_item(TableName="items", Key=KEY).get("Item") is None
    assert momento_botocore.stats()["items"]["errors"] == len(WRITES)


def test_partiql_writes_pass_through_untouched(endpoint: str, items: str) -> None:
    client = registered_client(endpoint)
    warm(client)
    client.execute_statement(Statement="UPDATE items SET v='new' WHERE pk='a'")
    assert plain_client(endpoint).get_item(TableName="items", Key=KEY)["Item"] == NEW
    # Only the stream invalidator covers PartiQL writes: the cache still says "old".
    assert read_both(client) == (OLD, OLD)
    assert momento_botocore.stats()["items"].get("invalidations", 0) == 0
