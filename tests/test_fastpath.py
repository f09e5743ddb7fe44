"""core/fastpath.py remembers the key codec's and the entry decoder's answers for hot
inputs: its answers must be the pure functions' (core/keys.py, core/entries.py)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from conftest import ACCOUNT
from hypothesis import given
from hypothesis import strategies as st
from test_entries import attribute_values

from momento_botocore.config import CacheConfig
from momento_botocore.core import entries, fastpath, integrity, keys
from momento_botocore.core.entries import EntryKind, encode_item
from momento_botocore.core.fastpath import (
    BoundedLRU,
    cache_key,
    cache_keys,
    decode,
    decoded_page,
    parse_table,
    remembered_items,
)
from momento_botocore.core.queries import decode_page, encode_page, plan_page

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keys.json").read_text("utf-8"))

NESTED: dict[str, Any] = {
    "pk": {"S": "a"},
    "count": {"N": "1"},
    "blob": {"B": b"\x00\xff"},
    "tags": {"SS": ["x", "y"]},
    "blobs": {"BS": [b"\x01"]},
    "m": {"M": {"inner": {"L": [{"N": "1"}, {"M": {"deep": {"S": "d"}}}]}}},
}


@pytest.fixture(autouse=True)
def _empty_memos() -> None:
    fastpath.forget()


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_pinned_vectors_give_their_keys_again_when_remembered(vector: dict[str, Any]) -> None:
    for _ in range(3):
        account, region, table = parse_table(
            vector["table"], vector["default_region"], vector["default_account"]
        )
        assert account is not None
        key = cache_key(account, region, table, vector["key"], prefix=vector["prefix"])
        assert key == vector["expected"]


def test_binary_key_as_bytes_and_as_text_stay_distinct_in_either_order() -> None:
    raw = b"\x01\x02"
    text = base64.b64encode(raw).decode("ascii")
    as_bytes = cache_key(ACCOUNT, "r", "t", {"pk": {"B": raw}})
    as_base64 = cache_key(ACCOUNT, "r", "t", {"pk": {"B": text}})
    as_utf8 = cache_key(ACCOUNT, "r", "t", {"pk": {"B": text}}, binary_text="utf-8")
    assert as_bytes == as_base64 != as_utf8
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"B": text}}, binary_text="utf-8") == as_utf8
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"B": text}}) == as_bytes


def test_unhashable_binary_key_values_still_get_their_key() -> None:
    expected = cache_key(ACCOUNT, "r", "t", {"pk": {"B": b"ab"}})
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"B": bytearray(b"ab")}}) == expected


def test_invalid_keys_keep_failing_after_valid_ones_are_remembered() -> None:
    cache_key(ACCOUNT, "r", "t", {"pk": {"N": "1"}})
    for _ in range(2):
        with pytest.raises(ValueError, match="not a DynamoDB number"):
            cache_key(ACCOUNT, "r", "t", {"pk": {"N": 1}})
        with pytest.raises(ValueError, match="not a DynamoDB number"):
            cache_key(ACCOUNT, "r", "t", {"pk": {"N": "1x"}})


def test_key_memo_is_bounded() -> None:
    for n in range(fastpath.MEMO_SIZE + 10):
        cache_key(ACCOUNT, "r", "t", {"pk": {"S": str(n)}})
        cache_key(ACCOUNT, "r", "t", {"pk": {"S": str(n)}, "sk": {"N": "1"}})
    table_memo = fastpath._ONE_ATTRIBUTE.get((ACCOUNT, "r", "t", "", "base64", "pk", "S"))
    assert table_memo is not None
    assert len(table_memo) == fastpath.MEMO_SIZE
    assert len(fastpath._TWO_ATTRIBUTES) == fastpath.MEMO_SIZE
    for n in range(fastpath.KEY_MEMO_TABLES + 3):
        cache_key(ACCOUNT, "r", f"t{n}", {"pk": {"S": "a"}})
    assert len(fastpath._ONE_ATTRIBUTE) == fastpath.KEY_MEMO_TABLES


def test_table_names_keep_parsing_the_same_and_bad_ones_keep_failing() -> None:
    arn = "arn:aws:dynamodb:eu-west-1:222222222222:table/orders"
    for _ in range(2):
        assert parse_table(arn, "us-east-1", ACCOUNT) == ("222222222222", "eu-west-1", "orders")
        assert parse_table("orders", "us-east-1", ACCOUNT) == (ACCOUNT, "us-east-1", "orders")
        assert parse_table("orders", "us-east-1", "111111111111")[0] == "111111111111"
        assert parse_table("orders", "us-east-1") == (None, "us-east-1", "orders")
        assert parse_table("orders", None) == (None, "", "orders")
        with pytest.raises(ValueError, match="not a DynamoDB table name"):
            parse_table("bad name", "us-east-1")
        with pytest.raises(ValueError, match="not a 12-digit AWS account"):
            parse_table("orders", "us-east-1", "not-an-account")


def test_remembered_keys_of_one_item_in_two_accounts_stay_apart() -> None:
    key = {"pk": {"S": "a"}}
    for _ in range(2):
        one = cache_key("111111111111", "r", "t", key)
        two = cache_key("222222222222", "r", "t", key)
        assert one != two
        batch = [key, {"pk": {"S": "b"}}]
        assert cache_keys("111111111111", "r", "t", batch)[0] == one
        assert cache_keys("222222222222", "r", "t", batch)[0] == two


@given(
    st.dictionaries(
        st.sampled_from(["pk", "sk"]),
        st.one_of(
            st.builds(lambda s: {"S": s}, st.text(min_size=1, max_size=8)),
            st.builds(lambda n: {"N": str(n)}, st.integers(-(10**6), 10**6)),
            st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=8)),
        ),
        min_size=1,
    )
)
def test_a_remembered_key_equals_a_freshly_computed_one(key: dict[str, Any]) -> None:
    first = keys.cache_key(ACCOUNT, "us-east-1", "items", key)
    fastpath.forget()
    assert cache_key(ACCOUNT, "us-east-1", "items", key) == first
    assert cache_key(ACCOUNT, "us-east-1", "items", key) == first


def test_every_decode_of_an_entry_is_a_new_independent_item() -> None:
    data = encode_item(NESTED)
    first = decode(data)
    assert first is not None
    assert first.item == NESTED
    assert first.item is not None
    first.item["count"]["N"] = "2"
    first.item["tags"]["SS"].append("z")
    first.item["m"]["M"]["inner"]["L"][1]["M"]["deep"]["S"] = "changed"
    del first.item["pk"]
    for _ in range(2):
        again = decode(data)
        assert again is not None
        assert again.kind is EntryKind.ITEM
        assert again.item == NESTED
        assert again.item is not first.item


def test_an_entry_decoded_from_an_equal_bytes_object_is_the_same_item() -> None:
    data = encode_item(NESTED)
    decode(data)
    copy = bytes(bytearray(data))
    assert copy is not data
    entry = decode(copy)
    assert entry is not None
    assert entry.item == NESTED
    assert isinstance(entry.item["blob"]["B"], bytes)


def test_garbage_with_our_prefix_stays_a_miss_every_time() -> None:
    for _ in range(2):
        assert decode(b"mbe1I{not json") is None
        assert decode(b"mbe1I[]") is None


def test_large_entries_are_decoded_every_time_and_not_remembered() -> None:
    big = {"pk": {"S": "a"}, "body": {"S": "x" * (fastpath.ITEM_MEMO_MAX_BYTES + 1)}}
    data = encode_item(big)
    for _ in range(2):
        entry = decode(data)
        assert entry is not None
        assert entry.item == big
    assert data not in fastpath._ITEMS


def test_entry_memo_is_bounded() -> None:
    for n in range(fastpath.MEMO_SIZE + 10):
        decode(encode_item({"pk": {"S": str(n)}}))
    assert len(fastpath._ITEMS) == fastpath.MEMO_SIZE


def test_encoding_gives_the_same_entry_for_parsed_items_and_other_shapes() -> None:
    parsed = {"pk": {"S": "a"}, "tags": {"SS": ["x", "y"]}, "m": {"M": {"n": {"N": "1"}}}}
    other_shapes = {
        "pk": {"S": "a"},
        "tags": {"SS": ("x", "y")},
        "m": {"M": {"n": {"N": "1"}}},
    }
    assert encode_item(parsed) == encode_item(other_shapes)
    entry = decode(encode_item(other_shapes))
    assert entry is not None
    assert entry.item == parsed


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ({"S": 1}, "S value must be a str"),
        ({"N": 1.5}, "N value must be a str"),
        ({"BOOL": "true"}, "BOOL value must be a bool"),
        ({"SS": ["a", 1]}, "SS members must be str"),
        ({"M": {"x": {"S": None}}}, "S value must be a str"),
        ({"Q": "x"}, "unknown attribute type 'Q'"),
    ],
)
def test_encoding_still_rejects_malformed_values(value: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        encode_item({"pk": {"S": "a"}, "bad": value})


def test_a_hot_entry_still_gives_new_independent_items() -> None:
    data = encode_item(NESTED)
    for _ in range(100):
        decode(data)
    first = decode(data)
    assert first is not None
    assert first.item == NESTED
    first.item["tags"]["SS"].append("z")
    first.item["blobs"]["BS"].append(b"\x02")
    first.item["m"]["M"]["inner"]["L"][1]["M"]["deep"]["S"] = "changed"
    first.item["m"]["M"]["inner"]["L"].append({"N": "2"})
    again = decode(data)
    assert again is not None
    assert again.item == NESTED
    assert remembered_items([data, None]) == [NESTED, None]


def test_a_remembered_entry_decodes_as_the_pure_decoder_does() -> None:
    data = encode_item(NESTED)
    decode(data)
    assert decode(data) == entries.decode(data)
    for other in [entries.encode_absent(), entries.encode_tombstone(), b"mbe1X", b"", None]:
        assert decode(other) == entries.decode(other)


BATCH_KEYS = st.lists(
    st.one_of(
        st.builds(lambda s: {"pk": {"S": s}}, st.text(min_size=1, max_size=6)),
        st.builds(lambda n: {"pk": {"N": str(n)}}, st.integers(-50, 50)),
        st.builds(lambda b: {"pk": {"B": b}}, st.binary(min_size=1, max_size=4)),
    ),
    min_size=1,
    max_size=8,
)


def _keys_or_error(batch: list[dict[str, Any]]) -> list[str] | type[Exception]:
    try:
        return cache_keys(ACCOUNT, "r", "t", batch, binary_text="utf-8")
    except ValueError:
        return ValueError


@given(BATCH_KEYS)
def test_batch_cache_keys_equal_key_by_key_ones_remembered_or_not(batch: list[Any]) -> None:
    expected = [keys.cache_key(ACCOUNT, "r", "t", key, binary_text="utf-8") for key in batch]
    fastpath.forget()
    assert cache_keys(ACCOUNT, "r", "t", batch, binary_text="utf-8") == expected
    assert cache_keys(ACCOUNT, "r", "t", batch, binary_text="utf-8") == expected


@pytest.mark.parametrize(
    "odd",
    [
        {"pk": {"S": "b"}, "sk": {"N": "1"}},  # another key shape
        {"other": {"S": "b"}},  # another attribute name
        {"pk": {"S": "b", "N": "1"}},  # two types
        {"pk": {"N": "b"}},  # not a number
        {"pk": "b"},  # not an attribute value
        ["pk"],
    ],
)
def test_odd_keys_fail_in_a_batch_of_remembered_keys(odd: Any) -> None:
    good = [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]
    assert _keys_or_error(good) == [
        cache_key(ACCOUNT, "r", "t", k, binary_text="utf-8") for k in good
    ]
    assert _keys_or_error([*good, odd]) is ValueError
    assert _keys_or_error([odd, *good]) is ValueError


def test_an_unhashable_value_in_a_batch_of_remembered_keys_still_gets_its_key() -> None:
    good = [{"pk": {"B": b"a"}}, {"pk": {"B": b"b"}}]
    remembered = _keys_or_error(good)
    assert _keys_or_error([*good[:1], {"pk": {"B": bytearray(b"b")}}]) == remembered


def test_remembered_items_are_new_items_and_none_for_anything_else() -> None:
    data = encode_item(NESTED)
    assert remembered_items([data, None]) == [None, None]  # not decoded yet
    decode(data)
    first, second, absent, garbage = remembered_items([data, data, None, b"mbe1:garbage"])
    assert first == second == NESTED
    assert first is not second
    assert first is not None
    assert first["m"] is not NESTED["m"]
    assert absent is None
    assert garbage is None


SPELLINGS_OF_100 = ["100", "+100", "100.", "100.0", "1e2", "+1E+02", "0100", ".1e3"]


@pytest.mark.parametrize("first", SPELLINGS_OF_100)
def test_every_spelling_of_a_number_gets_one_key_whichever_is_remembered_first(
    first: str,
) -> None:
    expected = cache_key(ACCOUNT, "r", "t", {"pk": {"N": "100"}})
    fastpath.forget()
    cache_key(ACCOUNT, "r", "t", {"pk": {"N": first}})
    for spelling in [first, *SPELLINGS_OF_100]:
        assert cache_key(ACCOUNT, "r", "t", {"pk": {"N": spelling}}) == expected
    batch = [{"pk": {"N": spelling}} for spelling in SPELLINGS_OF_100]
    assert cache_keys(ACCOUNT, "r", "t", batch) == [expected] * len(batch)
    assert cache_keys(ACCOUNT, "r", "t", batch) == [expected] * len(batch)


@pytest.mark.parametrize("first", ["a\ud83d\ude00", "a\U0001f600"])
def test_a_surrogate_pair_and_its_character_share_a_key_whichever_is_remembered_first(
    first: str,
) -> None:
    cache_key(ACCOUNT, "r", "t", {"pk": {"S": first}})
    cache_key(ACCOUNT, "r", "t", {first: {"S": "v"}})
    for text in ["a\ud83d\ude00", "a\U0001f600"]:
        assert cache_key(ACCOUNT, "r", "t", {"pk": {"S": text}}) == cache_key(
            ACCOUNT, "r", "t", {"pk": {"S": first}}
        )
        assert cache_keys(ACCOUNT, "r", "t", [{"pk": {"S": text}}]) == [
            cache_key(ACCOUNT, "r", "t", {"pk": {"S": first}})
        ]
        assert cache_key(ACCOUNT, "r", "t", {text: {"S": "v"}}) == cache_key(
            ACCOUNT, "r", "t", {first: {"S": "v"}}
        )


def test_refused_spellings_keep_failing_after_their_number_is_remembered() -> None:
    cache_key(ACCOUNT, "r", "t", {"pk": {"N": "100"}})
    cache_keys(ACCOUNT, "r", "t", [{"pk": {"N": "100"}}])
    for refused in [" 100", "100 ", "1_00", "\u0661\u0660\u0660"]:
        for _ in range(2):
            with pytest.raises(ValueError, match="not a DynamoDB number"):
                cache_key(ACCOUNT, "r", "t", {"pk": {"N": refused}})
            with pytest.raises(ValueError, match="not a DynamoDB number"):
                cache_keys(ACCOUNT, "r", "t", [{"pk": {"N": "100"}}, {"pk": {"N": refused}}])
    cache_key(ACCOUNT, "r", "t", {"pk": {"S": "\U0001f600"}})
    for _ in range(2):
        with pytest.raises(ValueError, match="lone surrogate"):
            cache_key(ACCOUNT, "r", "t", {"pk": {"S": "\ud83d"}})


def test_a_bounded_lru_forgets_the_oldest_stored_entry() -> None:
    memo: BoundedLRU[str, int] = BoundedLRU(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 3)  # stored again: now the newest
    memo.put("c", 4)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (3, None, 4)
    assert len(memo) == 2
    assert "b" not in memo
    with pytest.raises(ValueError, match="size must be at least 1"):
        BoundedLRU(0)


def test_plan_tokens_cover_only_plain_one_attribute_get_items() -> None:
    plain = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
    assert fastpath.plan_token(plain, "r", ACCOUNT) == ("t", "r", ACCOUNT, "pk", "S", "a")
    assert fastpath.plan_token(plain, "r", None) is None
    for other in [
        {**plain, "ConsistentRead": False},
        {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}},
        {"TableName": "t", "Key": {"pk": {"N": 1}}},
        {"TableName": "t", "Key": {"pk": {"B": bytearray(b"a")}}},
        {"TableName": Table.T, "Key": {"pk": {"S": "a"}}},
        {"TableName": "t", "Key": {"pk": {"S": Table.T}}},
    ]:
        assert fastpath.plan_token(other, "r", ACCOUNT) is None


class Table(str, Enum):
    T = "t"


def test_str_subclass_table_region_and_prefix_take_the_pure_codec() -> None:
    key = {"pk": {"S": "a"}}
    for _ in range(2):  # after the plain text's answers are remembered (equal, same hash)
        cache_key(ACCOUNT, "r", "t", key)
        cache_key(ACCOUNT, "r", "t", key, prefix="t")
        parse_table("t", "r", ACCOUNT)
        assert cache_key(ACCOUNT, "r", Table.T, key) == keys.cache_key(ACCOUNT, "r", Table.T, key)
        assert cache_key(ACCOUNT, "r", "t", key, prefix=Table.T) == keys.cache_key(
            ACCOUNT, "r", "t", key, prefix=Table.T
        )
        assert parse_table(Table.T, "r", ACCOUNT) == keys.parse_table(Table.T, "r", ACCOUNT)


def test_items_nested_deeper_than_dynamodb_allows_are_decoded_every_time() -> None:
    deep: dict[str, Any] = {"S": "bottom"}
    for _ in range(fastpath.MAX_DEPTH + 1):
        deep = {"L": [deep]}
    item = {"pk": {"S": "a"}, "deep": deep}
    data = encode_item(item)
    for _ in range(2):
        entry = decode(data)
        assert entry is not None
        assert entry.item == item
    assert data not in fastpath._ITEMS
    shallow = {"pk": {"S": "a"}, "deep": deep["L"][0]}  # exactly as deep as allowed
    decode(encode_item(shallow))
    assert encode_item(shallow) in fastpath._ITEMS


@given(st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=5))
def test_random_items_decode_as_the_pure_decoder_does_when_remembered(
    item: dict[str, Any],
) -> None:
    data = encode_item(item)
    expected = entries.decode(data)
    assert expected is not None
    assert expected.item is not None
    first = decode(data)
    assert first == expected
    assert list(first.item) == list(expected.item)  # same order
    again = decode(data)
    assert again == expected
    assert again.item is not first.item
    (remembered,) = remembered_items([data])
    assert remembered == expected.item


@pytest.mark.parametrize(
    ("items", "key_list"),
    [
        ([{"pk": {"S": "a"}, "v": {"N": "1"}}], [{"pk": {"S": "a"}}]),
        ([{"pk": {"N": "1.0"}}], [{"pk": {"N": "1"}}]),  # the codec's equality
        ([{"pk": {"S": "a"}}], [{"pk": {"S": "b"}}]),
        ([{"v": {"S": "a"}}], [{"pk": {"S": "a"}}]),
        ([{"pk": {"S": "a"}, "sk": {"N": "1"}}], [{"sk": {"N": "01"}, "pk": {"S": "a"}}]),
        ([{"pk": {"S": "a"}}, {"pk": {"S": "b"}}], [{"pk": {"S": "a"}}, {"pk": {"S": "c"}}]),
        ([], []),
    ],
)
def test_all_keys_match_as_the_integrity_check_does(items: Any, key_list: Any) -> None:
    assert fastpath.all_keys_match(items, key_list) == integrity.all_keys_match(items, key_list)


# Query and Scan pages -----------------------------------------------------------------

QUERY = {
    "TableName": "t",
    "KeyConditionExpression": "pk = :p",
    "ExpressionAttributeValues": {":p": {"S": "a"}},
}


def test_page_plan_tokens_tell_apart_every_parameter_and_refuse_what_json_cannot_write() -> None:
    variants = [
        QUERY,
        {**QUERY, "Limit": 1},
        {**QUERY, "Limit": 2},
        {**QUERY, "ScanIndexForward": False},
        {**QUERY, "ExpressionAttributeValues": {":p": {"S": "b"}}},
        {**QUERY, "ExpressionAttributeValues": {":p": {"N": "1"}}},
        {**QUERY, "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"S": "1"}}},
        {**QUERY, "ConsistentRead": True},
        {**QUERY, "TableName": "u"},
    ]
    tokens = [fastpath.page_plan_token("Query", params, "r", ACCOUNT) for params in variants]
    assert None not in tokens
    assert len(set(tokens)) == len(variants)
    assert fastpath.page_plan_token("Scan", QUERY, "r", ACCOUNT) not in tokens
    assert fastpath.page_plan_token("Query", QUERY, "s", ACCOUNT) not in tokens
    assert fastpath.page_plan_token("Query", QUERY, "r", "210987654321") not in tokens
    assert fastpath.page_plan_token("Query", QUERY, "r", None) is None
    for odd in [
        {**QUERY, "ExpressionAttributeValues": {":p": {"B": b"a"}}},
        {**QUERY, "Limit": Decimal(1)},
        {**QUERY, "ExpressionAttributeValues": MappingProxyType({":p": {"S": "a"}})},
    ]:
        assert fastpath.page_plan_token("Query", odd, "r", ACCOUNT) is None


def test_a_str_subclass_in_a_page_request_is_planned_as_its_text_is() -> None:
    """The JSON text of a (str, Enum) member is its value, so its request shares a token
    with the plain one: the plans must be equal, as botocore sends the same request."""
    config = CacheConfig(ttl=60, cache_queries=True)
    enum = {**QUERY, "TableName": Table.T, "ExpressionAttributeValues": {":p": {"S": Table.T}}}
    plain = {**QUERY, "ExpressionAttributeValues": {":p": {"S": "t"}}}
    assert fastpath.page_plan_token("Query", enum, "r", ACCOUNT) == fastpath.page_plan_token(
        "Query", plain, "r", ACCOUNT
    )
    plans = [
        plan_page(
            "Query",
            params,
            account=ACCOUNT,
            region="r",
            settings_for=config.settings_for,
            opted_in=config.pages_cached,
            key_prefix="",
        )
        for params in (enum, plain)
    ]
    assert plans[0] == plans[1]


PAGE: dict[str, Any] = {
    "Items": [NESTED, {**NESTED, "pk": {"S": "b"}}],
    "Count": 2,
    "ScannedCount": 3,
    "LastEvaluatedKey": {"pk": {"S": "b"}, "blob": {"B": b"\x01"}},
}


def test_every_decode_of_a_page_is_a_new_independent_page() -> None:
    data = encode_page(PAGE)
    first = decoded_page(data)
    assert first == PAGE
    assert first is not None
    first["Items"][0]["tags"]["SS"].append("z")
    first["Items"][1]["m"]["M"]["inner"]["L"][1]["M"]["deep"]["S"] = "changed"
    first["Items"].pop()
    first["LastEvaluatedKey"]["pk"]["S"] = "changed"
    first["Count"] = 7
    for _ in range(2):
        again = decoded_page(bytes(bytearray(data)))  # an equal bytes object: remembered
        assert again == PAGE
        assert again == decode_page(data)


def test_pages_without_items_large_pages_and_garbage_decode_as_the_pure_decoder_does() -> None:
    count_only = encode_page({"Count": 4, "ScannedCount": 9})
    large = encode_page({"Items": [{"pk": {"S": "x" * fastpath.PAGE_MEMO_MAX_BYTES}}]})
    garbage = b"mbp1{not json"
    for data in (count_only, large, garbage, b"", b"mbp1[]"):
        for _ in range(2):
            assert decoded_page(data) == decode_page(data)
    assert count_only in fastpath._PAGES
    assert large not in fastpath._PAGES
