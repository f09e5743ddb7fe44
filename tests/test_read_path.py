"""The read path over moto's real HTTP server: what a user of register() notices."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import boto3
import botocore.session
import pytest
from backend_wrappers import RecordingBackend, WrappingBackend
from boto3.dynamodb.types import Binary
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import ACCOUNT, REGION, RequestCounter, canned_response, create_table, new_session

import momento_botocore
from momento_botocore.backends import Backend
from momento_botocore.core.entries import decode, encode_tombstone
from momento_botocore.core.keys import cache_key

ITEM = {
    "pk": {"S": "a"},
    "n": {"N": "1.5"},
    "b": {"B": b"\x00\xff"},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01"]},
    "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
}


def cached_client(endpoint: str, backend: Backend | None = None, **kwargs: Any) -> Any:
    session = new_session()
    momento_botocore.register(session, ttl=60, backend=backend, **kwargs)
    return session.client("dynamodb", endpoint_url=endpoint)


def plain_client(endpoint: str) -> Any:
    return new_session().client("dynamodb", endpoint_url=endpoint)


@pytest.fixture
def table(endpoint: str) -> str:
    client = plain_client(endpoint)
    create_table(client, "items")
    client.put_item(TableName="items", Item=ITEM)
    return "items"


def header(response: dict[str, Any]) -> str | None:
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


def key_of(table: str, pk: str = "a") -> str:
    return cache_key(ACCOUNT, REGION, table, {"pk": {"S": pk}})


def test_second_read_is_served_from_cache_without_a_request(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    sent = RequestCounter(client, "GetItem")
    first = client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    second = client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert sent.count == 1
    assert header(first) == "miss"
    assert header(second) == "hit"
    assert first["Item"] == second["Item"] == ITEM
    assert second["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert momento_botocore.stats()[table] == {
        "hits": 1,
        "misses": 1,
        "fills": 1,
        "fills_skipped": 0,
        "bypasses": 0,
        "errors": 0,
    }


def test_table_resource_returns_python_types_identical_to_an_uncached_call(
    endpoint: str, table: str
) -> None:
    uncached = (
        new_session()
        .resource("dynamodb", endpoint_url=endpoint)
        .Table(table)
        .get_item(Key={"pk": "a"})
    )
    session = new_session()
    momento_botocore.register(session, ttl=60)
    cached_table = session.resource("dynamodb", endpoint_url=endpoint).Table(table)
    sent = RequestCounter(cached_table.meta.client, "GetItem")
    answers = [cached_table.get_item(Key={"pk": "a"}) for _ in range(20)]
    assert sent.count == 1
    assert [header(a) for a in answers] == ["miss"] + ["hit"] * 19
    for answer in answers:
        assert answer["Item"] == uncached["Item"]
        assert answer["Item"]["n"] == Decimal("1.5")
        assert answer["Item"]["ss"] == {"x", "y"}
        assert answer["Item"]["b"] == Binary(b"\x00\xff")
        assert answer["Item"]["m"] == {"l": [True, None]}


def test_number_keys_written_differently_share_one_entry(endpoint: str) -> None:
    client = cached_client(endpoint)
    create_table(client, "nums", hash_key=("id", "N"))
    # Written by someone else: a write through `client` would tombstone the entry.
    plain_client(endpoint).put_item(TableName="nums", Item={"id": {"N": "1"}, "v": {"S": "one"}})
    sent = RequestCounter(client, "GetItem")
    answers = [client.get_item(TableName="nums", Key={"id": {"N": n}}) for n in ("1", "1.0", "1e0")]
    assert sent.count == 1
    assert all(a["Item"]["v"] == {"S": "one"} for a in answers)


def test_missing_item_is_answered_from_an_absent_entry(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    sent = RequestCounter(client, "GetItem")
    first = client.get_item(TableName=table, Key={"pk": {"S": "nope"}})
    second = client.get_item(TableName=table, Key={"pk": {"S": "nope"}})
    assert "Item" not in first
    assert "Item" not in second
    assert sent.count == 1
    assert header(second) == "hit"


def test_consistent_reads_never_read_or_fill_the_cache(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    backend = RecordingBackend(default_backend)
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        answer = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
        assert answer["Item"] == ITEM
        assert header(answer) is None
    assert sent.count == 3
    assert backend.calls == {}
    assert momento_botocore.stats()[table]["bypasses"] == 3
    # Nothing was filled: the first eventually consistent read is a miss.
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "miss"


def test_a_hit_still_answers_consistent_reads_from_dynamodb(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    plain_client(endpoint).put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"S": "new"}})
    strong = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
    assert strong["Item"] == {"pk": {"S": "a"}, "v": {"S": "new"}}


def test_projections_are_served_from_the_cached_full_item(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    client = cached_client(endpoint, default_backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(2):
        answer = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ProjectionExpression="n")
        assert answer["Item"] == {"n": {"N": "1.5"}}
    assert sent.count == 1
    raw = default_backend.get(key_of(table))
    entry = None if raw is None else decode(raw)
    assert entry is not None
    assert entry.item == ITEM  # the full item, not the projection


def test_consumed_capacity_on_a_hit_is_zero_for_that_table(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    total = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="TOTAL")
    assert total["ConsumedCapacity"]["TableName"] == table
    assert total["ConsumedCapacity"]["CapacityUnits"] == 0.0
    indexes = client.get_item(
        TableName=table, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="INDEXES"
    )
    assert indexes["ConsumedCapacity"]["Table"]["CapacityUnits"] == 0.0
    none = client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in none
    assert header(none) == "hit"


def shape(value: Any) -> Any:
    """The keys of a (nested) dict, without the values."""
    return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None


@pytest.mark.parametrize("mode", ["TOTAL", "INDEXES"])
def test_consumed_capacity_on_a_hit_has_exactly_dynamodbs_keys(
    endpoint: str, table: str, mode: str
) -> None:
    client = cached_client(endpoint)
    key = {"pk": {"S": "a"}}
    client.get_item(TableName=table, Key=key)
    expected = plain_client(endpoint).get_item(
        TableName=table, Key=key, ReturnConsumedCapacity=mode
    )["ConsumedCapacity"]
    answer = client.get_item(TableName=table, Key=key, ReturnConsumedCapacity=mode)
    assert header(answer) == "hit"
    assert shape(answer["ConsumedCapacity"]) == shape(expected)
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 0.0


def test_table_arn_and_plain_name_share_one_entry(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    arn = client.describe_table(TableName=table)["Table"]["TableArn"]
    sent = RequestCounter(client, "GetItem")
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    by_arn = client.get_item(TableName=arn, Key={"pk": {"S": "a"}})
    assert sent.count == 1
    assert by_arn["Item"] == ITEM


def test_validation_errors_reach_the_caller_unchanged_and_are_not_cached(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    backend = RecordingBackend(default_backend)
    client = cached_client(endpoint, backend)
    uncached = plain_client(endpoint)
    for bad_key in ({"wrong": {"S": "a"}}, {"pk": {"S": "a"}, "extra": {"S": "x"}}):
        with pytest.raises(ClientError) as expected:
            uncached.get_item(TableName=table, Key=bad_key)
        for _ in range(2):
            with pytest.raises(ClientError) as got:
                client.get_item(TableName=table, Key=bad_key)
            assert got.value.response["Error"] == expected.value.response["Error"]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}})
    assert backend.writes == 0
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "miss"


@pytest.mark.cache_free(reason="botocore rejects the parameters before the cache is asked")
def test_parameter_errors_caught_by_botocore_are_unchanged(endpoint: str, table: str) -> None:
    client = cached_client(endpoint)
    with pytest.raises(botocore.exceptions.ParamValidationError):
        client.get_item(TableName=table, Key={"pk": {"N": 1}})
    with pytest.raises(botocore.exceptions.ParamValidationError):
        client.get_item(TableName=table)


@pytest.mark.cache_free(reason="a request the cache does not understand is never looked up")
def test_a_get_item_with_a_parameter_the_cache_does_not_know_passes_through(
    endpoint: str, table: str
) -> None:
    """Not understood: untouched, counted as a bypass; botocore's own error stands."""
    client = cached_client(endpoint)
    with pytest.raises(botocore.exceptions.ParamValidationError, match="NotAParameter"):
        client.get_item(TableName=table, Key={"pk": {"S": "a"}}, NotAParameter=1)
    assert momento_botocore.stats()[table]["bypasses"] == 1
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "miss"


def test_throttling_reaches_the_caller_unchanged_and_is_not_cached(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    backend = RecordingBackend(default_backend)
    session = new_session()
    momento_botocore.register(session, ttl=60, backend=backend)
    client = session.client(
        "dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1})
    )
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "Rate exceeded",
        }
    ).encode()

    def throttled(request: Any, **_: Any) -> Any:
        return canned_response(
            request.url, 400, body, {"Content-Type": "application/x-amz-json-1.0"}
        )

    client.meta.events.register("before-send.dynamodb.GetItem", throttled)
    with pytest.raises(ClientError) as error:
        client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert error.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert backend.writes == 0
    client.meta.events.unregister("before-send.dynamodb.GetItem", throttled)
    answer = client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert header(answer) == "miss"
    assert answer["Item"] == ITEM


class BrokenBackend:
    """A cache that fails every call."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *_: Any) -> Any:
        self.calls += 1
        raise ConnectionError("cache is down")

    get = add = set = delete = _fail

    def close(self) -> None:
        pass


@pytest.mark.cache_free(reason="its backend is one of its own, failing every call")
def test_a_backend_that_raises_on_every_call_leaves_every_read_correct(
    endpoint: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = BrokenBackend()
    client = cached_client(endpoint, backend)  # type: ignore[arg-type]
    for _ in range(5):
        assert client.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == ITEM
        assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": "zz"}})
    assert backend.calls == 10
    assert momento_botocore.stats()[table]["errors"] == 10
    warnings = [r for r in caplog.records if r.name == "momento_botocore"]
    assert len(warnings) == 1  # rate-limited: one line per kind per minute


class GarbageBackend(WrappingBackend):
    """Whatever the cache holds comes back with garbage in front of it."""

    def get(self, key: str) -> bytes | None:
        value = super().get(key)
        return None if value is None else b"\x00garbage" + value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None if v is None else b"\x00garbage" + v for v in super().get_many(keys)]


def test_garbage_in_the_cache_is_a_miss_and_is_deleted(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    backend = RecordingBackend(GarbageBackend(default_backend))
    client = cached_client(endpoint, backend)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert client.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == ITEM
    assert sent.count == 3
    assert momento_botocore.stats()[table]["hits"] == 0
    assert backend.calls["delete"] == 2  # the garbage of each fill, read by the next read


def test_a_tombstone_sends_reads_to_dynamodb_and_blocks_fills(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    backend = default_backend
    client = cached_client(endpoint, backend)
    key = key_of(table)
    backend.set(key, encode_tombstone(), 10)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        assert client.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == ITEM
    assert sent.count == 3
    assert backend.get(key) == encode_tombstone()
    assert momento_botocore.stats()[table]["fills_skipped"] == 3


def test_uncached_tables_are_left_alone(endpoint: str, default_backend: Backend) -> None:
    backend = RecordingBackend(default_backend)
    client = cached_client(endpoint, backend, tables=("orders-*",))
    writer = plain_client(endpoint)
    for name in ("other", "orders-1"):
        create_table(writer, name)
        writer.put_item(TableName=name, Item={"pk": {"S": "a"}})
    sent = RequestCounter(client, "GetItem")
    for _ in range(2):
        answer = client.get_item(TableName="other", Key={"pk": {"S": "a"}})
        assert header(answer) is None
    assert sent.count == 2
    assert backend.calls == {}
    assert momento_botocore.stats() == {}
    # A table of the set, on the same client and cache, is cached: the cache works.
    answers = [client.get_item(TableName="orders-1", Key={"pk": {"S": "a"}}) for _ in range(2)]
    assert [header(answer) for answer in answers] == ["miss", "hit"]
    assert backend.keys == {key_of("orders-1")}


@pytest.mark.cache_free(reason="the Stubber answers before the cache is asked")
def test_stubber_still_works_on_a_registered_client(endpoint: str) -> None:
    client = cached_client(endpoint)
    stubbed = {"Item": {"pk": {"S": "a"}, "v": {"S": "stub"}}}
    with Stubber(client) as stubber:
        for _ in range(2):
            stubber.add_response(
                "get_item", stubbed, {"TableName": "stubbed", "Key": {"pk": {"S": "a"}}}
            )
        assert (
            client.get_item(TableName="stubbed", Key={"pk": {"S": "a"}})["Item"] == stubbed["Item"]
        )
        assert (
            client.get_item(TableName="stubbed", Key={"pk": {"S": "a"}})["Item"] == stubbed["Item"]
        )
        stubber.assert_no_pending_responses()
        stubber.add_client_error("get_item", "ResourceNotFoundException")
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            client.get_item(TableName="stubbed", Key={"pk": {"S": "a"}})


def test_many_threads_on_one_client_read_what_an_uncached_client_reads(endpoint: str) -> None:
    writer = plain_client(endpoint)
    create_table(writer, "load", hash_key=("id", "N"))
    for n in range(40):
        if n % 5:  # every fifth item is missing
            writer.put_item(TableName="load", Item={"id": {"N": str(n)}, "v": {"S": f"value-{n}"}})
    expected = {
        n: writer.get_item(TableName="load", Key={"id": {"N": str(n)}}).get("Item")
        for n in range(40)
    }
    client = cached_client(endpoint)
    wrong: list[tuple[int, Any]] = []
    start = threading.Barrier(32)

    def read(thread: int) -> None:
        start.wait()
        for i in range(1000):
            n = (thread * 7 + i) % 40
            got = client.get_item(TableName="load", Key={"id": {"N": str(n)}}).get("Item")
            if got != expected[n]:
                wrong.append((n, got))

    threads = [threading.Thread(target=read, args=(t,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    counters = momento_botocore.stats()["load"]
    assert counters["hits"] + counters["misses"] == 32_000
    assert counters["errors"] == 0
    assert counters["hits"] >= 32_000 - 32 * 40


def test_unregister_removes_the_cache_from_sessions_and_their_clients(
    endpoint: str, table: str
) -> None:
    session = new_session()
    registration = momento_botocore.register(session, ttl=60)
    client = session.client("dynamodb", endpoint_url=endpoint)
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "hit"
    registration.unregister()
    registration.unregister()  # harmless
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) is None
    later = session.client("dynamodb", endpoint_url=endpoint)
    assert header(later.get_item(TableName=table, Key={"pk": {"S": "a"}})) is None


def test_registering_twice_is_harmless(endpoint: str, table: str) -> None:
    session = new_session()
    first = momento_botocore.register(session, ttl=60)
    assert momento_botocore.register(session, ttl=60) is first
    client = session.client("dynamodb", endpoint_url=endpoint)
    sent = RequestCounter(client, "GetItem")
    for _ in range(3):
        client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert sent.count == 1
    assert momento_botocore.stats()[table]["hits"] == 2


def test_registering_with_other_settings_replaces_the_first(
    endpoint: str, table: str, default_backend: Backend
) -> None:
    session = new_session()
    first_backend = RecordingBackend(default_backend)
    second_backend = RecordingBackend(default_backend)
    first = momento_botocore.register(session, ttl=60, backend=first_backend)
    second = momento_botocore.register(session, ttl=30, backend=second_backend)
    assert second is not first
    client = session.client("dynamodb", endpoint_url=endpoint)
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert first_backend.calls == {}
    assert second_backend.writes == 1  # the fill
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "hit"


def test_registering_a_client_caches_only_that_client(endpoint: str, table: str) -> None:
    session = new_session()
    client = session.client("dynamodb", endpoint_url=endpoint)
    other = session.client("dynamodb", endpoint_url=endpoint)
    momento_botocore.register(client, ttl=60)
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "hit"
    assert header(other.get_item(TableName=table, Key={"pk": {"S": "a"}})) is None


def test_register_without_target_covers_every_new_session(endpoint: str, table: str) -> None:
    registration = momento_botocore.register(ttl=60)
    low_level = botocore.session.get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=endpoint
    )
    high_level = boto3.Session(region_name=REGION).client("dynamodb", endpoint_url=endpoint)
    for client in (low_level, high_level):
        client.get_item(TableName=table, Key={"pk": {"S": "a"}})
        assert header(client.get_item(TableName=table, Key={"pk": {"S": "a"}})) == "hit"
    registration.unregister()
    after = boto3.Session(region_name=REGION).client("dynamodb", endpoint_url=endpoint)
    assert header(after.get_item(TableName=table, Key={"pk": {"S": "a"}})) is None


@pytest.mark.cache_free(reason="register() refuses before any backend is built")
def test_register_rejects_bad_input_with_clear_errors() -> None:
    with pytest.raises(momento_botocore.ConfigurationError, match="ttl"):
        momento_botocore.register(new_session())
    with pytest.raises(momento_botocore.ConfigurationError, match="24 h"):
        momento_botocore.register(new_session(), ttl=100_000)
    with pytest.raises(momento_botocore.ConfigurationError, match="'s3'"):
        momento_botocore.register(new_session().client("s3"), ttl=60)
    with pytest.raises(
        momento_botocore.ConfigurationError,
        match="takes a boto3, botocore, aioboto3 or aiobotocore Session",
    ):
        momento_botocore.register(object(), ttl=60)
    with pytest.raises(momento_botocore.ConfigurationError, match="lacks"):
        momento_botocore.register(new_session(), ttl=60, backend=object())  # type: ignore[arg-type]
