"""Key values, attribute names and table names given as str subclasses (a ``(str, Enum)``
member, say): botocore sends their text, so their cache key is the plain text's."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest
from conftest import ACCOUNT, create_table, new_session

import momento_botocore
from momento_botocore import MemoryBackend
from momento_botocore.core import fastpath, keys
from momento_botocore.core.fastpath import cache_key, cache_keys, parse_table


class Status(str, Enum):  # the classic pattern: format() gives "Status.ACTIVE", not the text
    ACTIVE = "active"
    BLOCKED = "blocked"


class Names(str, Enum):
    PK = "pk"


class Tables(str, Enum):
    USERS = "users"


def fresh_memos() -> None:
    fastpath.forget()


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    fresh_memos()
    yield
    fresh_memos()


def plain_key(key: dict[str, Any], table: str = "t", binary_text: Any = "base64") -> str:
    """The key of plain text, from the pure codec (the remembering one is under test)."""
    return keys.cache_key(ACCOUNT, "r", table, key, binary_text=binary_text)


def test_str_enum_key_value_has_the_key_of_its_text() -> None:
    expected = plain_key({"pk": {"S": "active"}})
    fresh_memos()
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"S": Status.ACTIVE}}) == expected


def test_str_enum_attribute_name_has_the_key_of_its_text() -> None:
    expected = plain_key({"pk": {"S": "a"}})
    fresh_memos()
    assert cache_key(ACCOUNT, "r", "t", {Names.PK: {"S": "a"}}) == expected


def test_str_enum_table_name_is_the_table_in_the_key() -> None:
    expected = plain_key({"pk": {"S": "a"}}, table="users")
    fresh_memos()
    account, region, table = parse_table(Tables.USERS, "r", ACCOUNT)
    assert (account, region, table) == (ACCOUNT, "r", "users")
    assert type(table) is str
    assert cache_key(ACCOUNT, region, table, {"pk": {"S": "a"}}) == expected


def test_batch_keys_of_str_enum_values_match_the_plain_text_keys() -> None:
    expected = [plain_key({"pk": {"S": "active"}}, binary_text="utf-8")]
    fresh_memos()
    assert (
        cache_keys(ACCOUNT, "r", "t", [{"pk": {"S": Status.ACTIVE}}], binary_text="utf-8")
        == expected
    )
    # And the other way round: a plain-text lookup after the enum's is not answered
    # from a memo entry made by the enum (equal, same hash) with a different key.
    assert cache_keys(ACCOUNT, "r", "t", [{"pk": {"S": "active"}}], binary_text="utf-8") == expected


def test_batch_get_with_str_enum_keys_never_caches_an_existing_item_as_absent(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fill computes keys from DynamoDB's answer (plain text): they must be the keys
    the request's enum values were looked up under, or the found item is filled ABSENT.
    (A busy process forgets keys often; a memo of one key per table shows it at once.)"""
    monkeypatch.setattr(fastpath, "MEMO_SIZE", 1)
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(plain, "users", hash_key=("pk", "S"))
    for status in Status:
        plain.put_item(TableName="users", Item={"pk": {"S": status.value}, "v": {"S": "x"}})
    session = new_session()
    momento_botocore.register(session, ttl=300, backend=MemoryBackend())
    client = session.client("dynamodb", endpoint_url=endpoint)
    request = {"users": {"Keys": [{"pk": {"S": status}} for status in Status]}}

    first = client.batch_get_item(RequestItems=request)["Responses"]["users"]
    second = client.batch_get_item(RequestItems=request)["Responses"]["users"]

    assert sorted(item["pk"]["S"] for item in first) == ["active", "blocked"]
    assert sorted(item["pk"]["S"] for item in second) == ["active", "blocked"]
