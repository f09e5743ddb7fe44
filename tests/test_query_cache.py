"""The Query and Scan cache (opt-in, core/queries.py): pages filed under generations
that every write bumps. Over moto's real HTTP server, through both drivers."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import ACCOUNT, RequestCounter, create_table, new_session
from stream_world import TABLE as STREAM_TABLE
from stream_world import World

import momento_botocore
from momento_botocore import MemoryBackend
from momento_botocore.backends import Backend
from momento_botocore.config import CacheConfig
from momento_botocore.core.engine import Engine
from momento_botocore.core.queries import generation_key
from momento_botocore.streams import StreamInvalidator, describe_with_boto3, make_handler
from momento_botocore.tailer import TRIM_HORIZON, StreamTailer

TABLE = "orders"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def plain(endpoint: str) -> Any:
    client = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(client, TABLE, range_key=("sk", "S"))
    for pk in ("a", "b"):
        for sk in ("1", "2"):
            client.put_item(TableName=TABLE, Item=item(pk, sk, "v1"))
    return client


def item(pk: str, sk: str, v: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": v}}


def cached(endpoint: str, backend: Any = None, **settings: Any) -> Any:
    session = new_session()
    settings.setdefault("cache_queries", True)
    settings.setdefault("cache_scans", True)
    config = CacheConfig(ttl=60, key_schemas={TABLE: ("pk", "sk")}, account_id=ACCOUNT, **settings)
    momento_botocore.register(session, config=config, backend=backend)
    return session.client("dynamodb", endpoint_url=endpoint)


def query(client: Any, pk: str, **extra: Any) -> dict[str, Any]:
    return client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}},
        **extra,
    )


def header(answer: dict[str, Any]) -> str | None:
    return answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def values(answer: dict[str, Any]) -> list[str]:
    return [i["v"]["S"] for i in answer["Items"]]


def strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_the_second_identical_query_is_a_hit_equal_to_dynamodbs_answer(
    endpoint: str, plain: Any
) -> None:
    client = cached(endpoint)
    sent = RequestCounter(client, "Query")
    answers = [query(client, "a") for _ in range(3)]
    # The first finds no generation (it is started), the second fills, the third hits.
    assert [header(a) for a in answers] == [None, "miss", "hit"]
    assert sent.count == 2
    assert all(strip(a) == strip(query(plain, "a")) for a in answers)
    assert momento_botocore.stats()[TABLE]["hits"] == 1


def test_a_write_to_the_partition_makes_its_queries_fresh_and_leaves_others_cached(
    endpoint: str, plain: Any
) -> None:
    client = cached(endpoint)
    for _ in range(2):
        query(client, "a"), query(client, "b")
    assert header(query(client, "a")) == "hit"
    assert header(query(client, "b")) == "hit"
    client.put_item(TableName=TABLE, Item=item("a", "1", "v2"))
    after = query(client, "a")
    assert values(after) == ["v2", "v1"]
    assert header(query(client, "b")) == "hit"  # another partition: still cached


def test_a_write_by_another_client_seen_on_no_stream_is_only_bounded_by_the_ttl(
    endpoint: str, plain: Any
) -> None:
    """Without the stream invalidator, a write elsewhere is not seen (as for GetItem)."""
    client = cached(endpoint)
    for _ in range(3):
        query(client, "a")
    plain.put_item(TableName=TABLE, Item=item("a", "1", "v2"))
    assert values(query(client, "a")) == ["v1", "v1"]


def test_scans_are_fresh_after_any_write(endpoint: str, plain: Any) -> None:
    client = cached(endpoint)
    for _ in range(3):
        client.scan(TableName=TABLE)
    assert header(client.scan(TableName=TABLE)) == "hit"
    client.delete_item(TableName=TABLE, Key={"pk": {"S": "b"}, "sk": {"S": "2"}})
    assert len(client.scan(TableName=TABLE)["Items"]) == 3


def pages(client: Any, pk: str) -> list[dict[str, Any]]:
    """Every page of a one-item-a-page query, as a paginator walks them."""
    found, start = [], None
    while True:
        extra = {} if start is None else {"ExclusiveStartKey": start}
        page = query(client, pk, Limit=1, **extra)
        found.append(strip(page))
        start = page.get("LastEvaluatedKey")
        if start is None:
            return found


def test_pages_equal_dynamodbs_page_by_page(endpoint: str, plain: Any) -> None:
    client = cached(endpoint)
    walks = [pages(client, "a") for _ in range(3)]
    assert all(walk == pages(plain, "a") for walk in walks)
    assert len(walks[0]) == 2  # one item a page
    # Walk 1 starts the generation and fills page 2; walk 2 fills page 1, hits page 2.
    assert momento_botocore.stats()[TABLE]["hits"] == 3


@pytest.mark.cache_free(
    reason="queries of tables not opted in, and consistent ones, are not looked up"
)
def test_consistent_reads_and_tables_not_opted_in_go_to_dynamodb(endpoint: str, plain: Any) -> None:
    client = cached(endpoint, cache_queries=("other*",), cache_scans=False)
    sent = RequestCounter(client, "*")
    for _ in range(3):
        query(client, "a")
        client.scan(TableName=TABLE)
    assert sent.count == 6
    client = cached(endpoint)
    sent = RequestCounter(client, "Query")
    for _ in range(3):
        query(client, "a", ConsistentRead=True)
    assert sent.count == 3


# Writes made elsewhere, seen on the stream --------------------------------------------


@pytest.mark.parametrize("view", ["NEW_AND_OLD_IMAGES", "KEYS_ONLY"])
def test_a_write_seen_only_on_the_stream_makes_queries_and_scans_fresh(
    endpoint: str, view: str, default_backend: Backend
) -> None:
    world = World(
        endpoint,
        backend=default_backend,
        view=view,
        config=CacheConfig(
            ttl=60, tombstone_ttl=0.2, cache_queries=True, cache_scans=True, account_id=ACCOUNT
        ),
    )
    world.put("a", 1)
    world.put("b", 1)
    world.tailer.drain()
    time.sleep(0.25)  # the markers of the stream's bumps are gone: pages fill again
    reader = world.reader

    def read() -> tuple[list[int], list[int], int]:
        answer = reader.query(
            TableName=STREAM_TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
        )
        other = reader.query(
            TableName=STREAM_TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "b"}},
        )
        scanned = reader.scan(TableName=STREAM_TABLE)["Count"]
        return (
            [int(i["v"]["N"]) for i in answer["Items"]],
            [int(i["v"]["N"]) for i in other["Items"]],
            scanned,
        )

    for _ in range(3):
        assert read() == ([1], [1], 2)
    sent = RequestCounter(reader, "*")
    assert read() == ([1], [1], 2)
    assert sent.count == 0  # all cached
    world.put("a", 2)  # by a client that is not registered
    world.put("c", 1)
    assert read() == ([1], [1], 2)  # not seen yet: the stream has not been applied
    world.tailer.drain()
    assert read() == ([2], [1], 3)
    assert sent.count == 2  # partition a and the scan asked again; b still cached


def test_a_page_read_slower_than_the_fill_window_is_not_filled(endpoint: str, plain: Any) -> None:
    client = cached(endpoint, tombstone_ttl=0.3)
    query(client, "a")  # starts the generation
    slowed: list[bool] = []

    def slow(**_: Any) -> None:
        if not slowed:
            slowed.append(True)
            time.sleep(0.45)  # a write's invalidation may have come and gone meanwhile

    client.meta.events.register("response-received.dynamodb.Query", slow)
    assert header(query(client, "a")) == "miss"
    assert slowed
    assert header(query(client, "a")) == "miss"  # nothing was filled
    assert momento_botocore.stats()[TABLE]["fills_skipped"] == 1


class CountersDown(MemoryBackend):
    """A cache whose counters fail: no generation can be bumped."""

    def incr_many(self, entries: Any) -> list[int | Exception]:
        raise ConnectionError("counters are down")


@pytest.mark.cache_free(reason="its own cache, whose counters are down")
def test_a_write_whose_generations_cannot_be_bumped_keeps_its_pages_out_of_reach(
    endpoint: str, plain: Any
) -> None:
    client = cached(endpoint, backend=CountersDown())
    for _ in range(3):
        query(client, "a")
        query(client, "b")
    assert header(query(client, "a")) == "hit"
    client.put_item(TableName=TABLE, Item=item("a", "1", "v2"))
    sent = RequestCounter(client, "Query")
    assert values(query(client, "a")) == ["v2", "v1"]
    assert values(query(client, "a")) == ["v2", "v1"]
    assert sent.count == 2  # its generations are pending: their pages skip the cache
    assert momento_botocore.stats()[TABLE]["tombstones_pending"] >= 1


def test_no_page_is_filled_while_its_generation_was_written_lately(
    endpoint: str, plain: Any
) -> None:
    """After a write, DynamoDB's eventually consistent answer may not hold it yet: for
    the tombstone TTL, pages of the written partition are asked for, never filled."""
    client = cached(endpoint, tombstone_ttl=0.3)
    for _ in range(3):
        query(client, "a")
    client.put_item(TableName=TABLE, Item=item("a", "1", "v2"))
    before = momento_botocore.stats()[TABLE]
    assert [header(query(client, "a")) for _ in range(3)] == ["miss"] * 3
    after = momento_botocore.stats()[TABLE]
    assert after["fills"] == before["fills"]
    assert after["fills_skipped"] == before["fills_skipped"] + 3  # counted, not hidden
    time.sleep(0.35)
    assert [header(query(client, "a")) for _ in range(2)] == ["miss", "hit"]


def test_consumed_capacity_on_a_hit_has_dynamodbs_keys_and_indexes_go_to_dynamodb(
    endpoint: str, plain: Any
) -> None:
    client = cached(endpoint)
    answers = [query(client, "a", ReturnConsumedCapacity="TOTAL") for _ in range(3)]
    assert header(answers[2]) == "hit"
    assert answers[2]["ConsumedCapacity"] == {"TableName": TABLE, "CapacityUnits": 0.0}
    assert set(answers[1]["ConsumedCapacity"]) == set(answers[2]["ConsumedCapacity"])
    sent = RequestCounter(client, "Query")
    for _ in range(3):
        query(client, "a", ReturnConsumedCapacity="INDEXES")
    assert sent.count == 3


def test_a_write_whose_bumps_fail_to_be_planned_still_leaves_no_stale_page(
    endpoint: str, plain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in planning the bumps (fault model): the write's fallback guards the table."""
    client = cached(endpoint)
    for _ in range(3):
        query(client, "a")

    def broken(*_: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(Engine, "_bumps_of", broken)
    client.put_item(TableName=TABLE, Item=item("a", "1", "v2"))
    monkeypatch.undo()
    assert values(query(client, "a")) == ["v2", "v1"]


def test_a_count_query_is_answered_from_the_cache_as_dynamodb_answers_it(
    endpoint: str, plain: Any
) -> None:
    client = cached(endpoint)
    answers = [query(client, "a", Select="COUNT") for _ in range(3)]
    assert header(answers[2]) == "hit"
    assert strip(answers[2]) == strip(query(plain, "a", Select="COUNT"))  # no "Items"


# Index queries: the index partition's generation ----------------------------------


def create_tickets(client: Any, *, stream_view: str | None = None) -> None:
    """A table keyed by ``id``, with a GSI by ``status`` (an attribute writes change)."""
    extra: dict[str, Any] = {}
    if stream_view is not None:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    client.create_table(
        TableName="tickets",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    for ticket, status in (("t1", "open"), ("t2", "open"), ("t3", "closed"), ("t4", "held")):
        client.put_item(TableName="tickets", Item={"id": {"S": ticket}, "status": {"S": status}})


def by_status(client: Any, status: str) -> list[str]:
    answer = client.query(
        TableName="tickets",
        IndexName="by_status",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )
    return sorted(i["id"]["S"] for i in answer["Items"])


def move(client: Any, ticket: str, status: str) -> None:
    client.update_item(
        TableName="tickets",
        Key={"id": {"S": ticket}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


@pytest.mark.parametrize(
    ("view", "describe", "asked_again"),
    [
        # Both images and the index keys: only the partitions the item left and joined.
        ("NEW_AND_OLD_IMAGES", True, ["open", "closed"]),
        # No old image: the partition the item left is unknown, so every index page.
        ("NEW_IMAGE", True, ["open", "closed", "held"]),
        # The index keys unknown (no DescribeTable): every index page.
        ("NEW_AND_OLD_IMAGES", False, ["open", "closed", "held"]),
    ],
    ids=["both-images", "new-image-only", "index-keys-unknown"],
)
def test_a_gsi_query_is_fresh_after_a_write_seen_on_the_stream_moves_an_item(
    endpoint: str, default_backend: Backend, view: str, describe: bool, asked_again: list[str]
) -> None:
    """A write elsewhere moves t1 from "open" to "closed"; the stream invalidator bumps
    the index partitions of both images (so "held" stays cached), or every index page
    of the table when it cannot know them."""
    writer = new_session().client("dynamodb", endpoint_url=endpoint)  # not registered
    create_tickets(writer, stream_view=view)
    config = CacheConfig(ttl=60, tombstone_ttl=0.2, cache_queries=True, account_id=ACCOUNT)
    session = new_session()
    momento_botocore.register(session, config=config, backend=default_backend)
    reader = session.client("dynamodb", endpoint_url=endpoint)
    invalidator = make_handler(
        config,
        backend=default_backend,
        describe_table=describe_with_boto3(endpoint, **CREDENTIALS) if describe else None,
    )
    tailer = StreamTailer(
        invalidator,
        table="tickets",
        client=new_session().client("dynamodbstreams", endpoint_url=endpoint),
        start=TRIM_HORIZON,
    )
    tailer.drain()
    time.sleep(0.25)  # the markers of the stream's bumps are gone: pages fill again
    statuses = ["open", "closed", "held"]
    for _ in range(3):
        assert [by_status(reader, s) for s in statuses] == [["t1", "t2"], ["t3"], ["t4"]]
    move(writer, "t1", "closed")
    tailer.drain()
    sent = RequestCounter(reader, "Query")
    asked = []
    for status, expected in zip(statuses, [["t2"], ["t1", "t3"], ["t4"]], strict=True):
        before = sent.count
        assert by_status(reader, status) == expected
        if sent.count > before:
            asked.append(status)
    assert asked == asked_again


def test_a_client_write_makes_every_gsi_partition_fresh(endpoint: str) -> None:
    """An update through the client moves t1 between index partitions; the client cannot
    know the item's old index key values: it bumps every index page of the table (X)."""
    create_tickets(new_session().client("dynamodb", endpoint_url=endpoint))
    client = cached(endpoint)
    statuses = ["open", "closed", "held"]
    for _ in range(3):
        assert [by_status(client, s) for s in statuses] == [["t1", "t2"], ["t3"], ["t4"]]
    move(client, "t1", "closed")
    sent = RequestCounter(client, "Query")
    assert [by_status(client, s) for s in statuses] == [["t2"], ["t1", "t3"], ["t4"]]
    assert sent.count == 3


def test_an_index_query_on_a_key_attribute_of_the_table_is_kept_by_writes_elsewhere(
    endpoint: str,
) -> None:
    """An LSI query's equality is on the table's partition key: pages are filed under
    that value's P alone, and a write to another partition leaves them cached."""
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    plain.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "v", "AttributeType": "S"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_v",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "v", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk in ("a", "b"):
        plain.put_item(TableName=TABLE, Item=item(pk, "1", "v1"))
    client = cached(endpoint)  # key_schemas: the table's key is known

    def by_v(pk: str) -> dict[str, Any]:
        return client.query(  # type: ignore[no-any-return]
            TableName=TABLE,
            IndexName="by_v",
            KeyConditionExpression="pk = :p AND v > :v",
            ExpressionAttributeValues={":p": {"S": pk}, ":v": {"S": "v"}},
        )

    for _ in range(3):
        by_v("a")
    client.put_item(TableName=TABLE, Item=item("b", "1", "v2"))
    assert header(by_v("a")) == "hit"
    client.put_item(TableName=TABLE, Item=item("a", "1", "v3"))
    assert values(by_v("a")) == ["v3"]


def test_records_of_one_item_collapsed_in_a_batch_bump_every_partition_it_passed(
    default_backend: Backend,
) -> None:
    """t1 moves open -> closed -> held in one batch: the collapsed write still bumps
    "open", named only by the first record's old image."""
    backend = default_backend
    config = CacheConfig(ttl=60, cache_queries=True)
    invalidator = StreamInvalidator(
        config,
        backend,
        describe_table=lambda *_: {
            "Table": {"GlobalSecondaryIndexes": [{"KeySchema": [{"AttributeName": "status"}]}]}
        },
    )
    source = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tickets/stream/1"

    def record(number: str, old: str, new: str) -> dict[str, Any]:
        image = {"id": {"S": "t1"}}
        return {
            "eventName": "MODIFY",
            "eventSourceARN": source,
            "dynamodb": {
                "SequenceNumber": number,
                "Keys": image,
                "OldImage": {**image, "status": {"S": old}},
                "NewImage": {**image, "status": {"S": new}},
            },
        }

    def generation(status: str) -> bytes | None:
        key = generation_key(
            ACCOUNT, "us-east-1", "tickets", key_prefix="", partition=("status", {"S": status})
        )
        return backend.get(key)

    result = invalidator.process([record("1", "open", "closed"), record("2", "closed", "held")])
    assert result.collapsed == 1
    assert not result.failed
    assert all(generation(s) is not None for s in ("open", "closed", "held"))
    assert generation("other") is None


def test_a_hit_is_a_new_page_that_the_caller_may_change(endpoint: str, plain: Any) -> None:
    client = cached(endpoint)
    first = [query(client, "a") for _ in range(3)][2]
    assert header(first) == "hit"
    want = strip(query(plain, "a"))
    first["Items"][0]["v"]["S"] = "changed"
    first["Items"].pop()
    again = query(client, "a")
    assert header(again) == "hit"
    assert strip(again) == want
