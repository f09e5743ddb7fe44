"""Which entries a write invalidates, and where key schemas come from (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ACCOUNT

from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.core.keys import cache_key
from momento_botocore.core.writes import (
    KeySchemas,
    KeySchemaUnknown,
    TouchedItem,
    key_names_of,
    plan_write,
    touched_items,
)

A = {"pk": {"S": "a"}}
B = {"pk": {"S": "b"}}


def keys_of(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    plan = plan_write(
        touched_items(operation, params, "us-east-1", ACCOUNT),
        is_cached=lambda table: table != "uncached",
        key_names=lambda touch: ("pk",),
        key_prefix="",
    )
    assert plan.problems == []
    return plan.keys


def key(table: str, attributes: dict[str, Any]) -> tuple[str, str]:
    return table, cache_key(ACCOUNT, "us-east-1", table, attributes, binary_text="utf-8")


def test_every_write_operation_names_its_items() -> None:
    assert keys_of("PutItem", {"TableName": "t", "Item": {**A, "v": {"N": "1"}}}) == [key("t", A)]
    assert keys_of("UpdateItem", {"TableName": "t", "Key": A}) == [key("t", A)]
    assert keys_of("DeleteItem", {"TableName": "t", "Key": A}) == [key("t", A)]
    batch = {
        "RequestItems": {
            "t": [{"PutRequest": {"Item": {**A, "v": {"S": "x"}}}}, {"DeleteRequest": {"Key": B}}],
            "u": [{"DeleteRequest": {"Key": A}}],
            "uncached": [{"DeleteRequest": {"Key": A}}],
        }
    }
    assert keys_of("BatchWriteItem", batch) == [key("t", A), key("t", B), key("u", A)]
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": A}},
            {"Update": {"TableName": "u", "Key": B}},
            {"Delete": {"TableName": "t", "Key": B}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
        ]
    }
    assert keys_of("TransactWriteItems", transaction) == [key("t", A), key("u", B), key("t", B)]


def test_a_table_arn_invalidates_the_plain_names_entry() -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    assert keys_of("DeleteItem", {"TableName": arn, "Key": A}) == [key("t", A)]


def test_a_table_arn_of_another_account_invalidates_that_accounts_entry() -> None:
    arn = "arn:aws:dynamodb:us-east-1:222222222222:table/t"
    foreign = cache_key("222222222222", "us-east-1", "t", A, binary_text="utf-8")
    assert keys_of("DeleteItem", {"TableName": arn, "Key": A}) == [("t", foreign)]


def test_writes_of_a_client_of_unknown_account_invalidate_nothing_and_say_so() -> None:
    plan = plan_write(
        touched_items("DeleteItem", {"TableName": "t", "Key": A}, "us-east-1", None),
        is_cached=lambda table: True,
        key_names=lambda touch: ("pk",),
        key_prefix="",
    )
    assert plan.keys == []
    assert plan.no_account == ["t"]


def test_an_item_whose_key_cannot_be_found_is_reported_not_raised() -> None:
    def unknown(touch: TouchedItem) -> tuple[str, ...]:
        raise KeySchemaUnknown(touch.table)

    plan = plan_write(
        touched_items(
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "t", "Item": A}},
                    {"Delete": {"TableName": "t", "Key": B}},
                ]
            },
            "us-east-1",
            ACCOUNT,
        ),
        is_cached=lambda table: True,
        key_names=unknown,
        key_prefix="",
    )
    assert plan.keys == [key("t", B)]
    assert [table for table, _ in plan.problems] == ["t"]


def test_malformed_writes_raise_so_they_pass_through() -> None:
    with pytest.raises((KeyError, ValueError, TypeError)):
        touched_items("PutItem", {"TableName": "t"}, "us-east-1", ACCOUNT)


def test_key_schemas_are_configured_or_described_once() -> None:
    now = [0.0]
    schemas = KeySchemas(
        CacheConfig(ttl=1, key_schemas={"orders*": ("c", "o")}).key_schema_for,
        clock=lambda: now[0],
    )
    calls: list[str] = []

    def describe() -> tuple[str, ...]:
        calls.append("x")
        return ("id",)

    assert schemas.names("r", "orders-1", describe) == ("c", "o")
    assert schemas.names("r", "users", describe) == ("id",)
    assert schemas.names("r", "users", describe) == ("id",)
    assert calls == ["x"]


def test_a_failed_describe_is_not_retried_for_a_while() -> None:
    now = [0.0]
    schemas = KeySchemas(clock=lambda: now[0], retry_after=60)
    calls: list[int] = []

    def denied() -> tuple[str, ...]:
        calls.append(1)
        raise PermissionError("AccessDenied")

    for _ in range(3):
        with pytest.raises(KeySchemaUnknown):
            schemas.names("r", "t", denied)
    assert len(calls) == 1
    now[0] = 61
    assert schemas.names("r", "t", lambda: ("pk",)) == ("pk",)
    with pytest.raises(KeySchemaUnknown):
        KeySchemas().names("r", "t", None)  # no client to ask


def test_key_names_come_from_describe_tables_answer() -> None:
    answer = {
        "Table": {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ]
        }
    }
    assert key_names_of(answer) == ("pk", "sk")


@pytest.mark.parametrize("bad", [{"t": ()}, {"t": ("a", "b", "c")}, {"t": ("",)}, {"t t": ("a",)}])
def test_bad_key_schemas_fail_at_configuration(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CacheConfig(ttl=1, key_schemas=bad)


def test_key_schemas_from_the_environment() -> None:
    config = CacheConfig.from_env(
        {"MOMENTO_BOTOCORE_TTL_SECONDS": "5", "MOMENTO_BOTOCORE_KEY_SCHEMAS": "o=c:i, u*=id"}
    )
    assert config.key_schema_for("o") == ("c", "i")
    assert config.key_schema_for("users") == ("id",)
    assert config.key_schema_for("x") is None
    with pytest.raises(ConfigurationError):
        CacheConfig.from_env(
            {"MOMENTO_BOTOCORE_TTL_SECONDS": "5", "MOMENTO_BOTOCORE_KEY_SCHEMAS": "o"}
        )
