"""Contract 1: the key codec, pinned by vectors and checked by properties."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCOUNT
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from momento_botocore.core.keys import CODEC_VERSION, cache_key, normalize_number, parse_table

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keys.json").read_text("utf-8"))


def key_of(vector: dict[str, Any]) -> str:
    account, region, table = parse_table(
        vector["table"], vector["default_region"], vector["default_account"]
    )
    assert account is not None
    return cache_key(account, region, table, vector["key"], prefix=vector["prefix"])


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_pinned_vectors_give_their_expected_keys(vector: dict[str, Any]) -> None:
    assert key_of(vector) == vector["expected"]


def test_vectors_are_for_this_codec_version() -> None:
    assert VECTORS["codec_version"] == CODEC_VERSION
    assert all(
        v["expected"].split(":")[-5].endswith(f"mbc{CODEC_VERSION}") for v in VECTORS["vectors"]
    )


def test_vectors_hold_the_account_of_the_table() -> None:
    accounts = {v["expected"].split(":")[-4] for v in VECTORS["vectors"]}
    assert accounts == {"123456789012", "111111111111", "222222222222"}


def test_one_table_and_key_in_two_accounts_give_two_keys() -> None:
    key = {"pk": {"S": "a"}}
    assert cache_key("111111111111", "r", "orders", key) != cache_key(
        "222222222222", "r", "orders", key
    )


def test_a_table_arn_of_the_own_account_gives_the_plain_names_key() -> None:
    arn = "arn:aws:dynamodb:us-east-1:111111111111:table/orders"
    own = parse_table(arn, "us-east-1", "111111111111")
    assert own == parse_table("orders", "us-east-1", "111111111111")
    foreign = parse_table(
        "arn:aws:dynamodb:us-east-1:222222222222:table/orders", "us-east-1", "111111111111"
    )
    assert foreign == ("222222222222", "us-east-1", "orders")


@pytest.mark.parametrize("account", [None, "", "12345678901", "1234567890123", "abcdefghijkl", 1])
def test_a_key_needs_a_twelve_digit_account(account: Any) -> None:
    with pytest.raises(ValueError, match="not a 12-digit AWS account"):
        cache_key(account, "r", "t", {"pk": {"S": "a"}})


def test_a_plain_name_without_a_default_account_has_no_account() -> None:
    assert parse_table("orders", "us-east-1") == (None, "us-east-1", "orders")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.0", "1"),
        ("01", "1"),
        ("1e0", "1"),
        ("1.00E+0", "1"),
        ("-0", "0"),
        ("0.000", "0"),
        ("-12.50", "-12.5"),
        ("1E2", "100"),
        ("0.0010", "0.001"),
        ("+100", "100"),
        ("100.", "100"),
        (".5", "0.5"),
        ("+.5", "0.5"),
        ("-.5", "-0.5"),
        ("5.e0", "5"),
        ("1E+05", "100000"),
        ("+1e-2", "0.01"),
        ("+0", "0"),
        ("0e999", "0"),
        ("123456789012345678901234567890123456.78", "123456789012345678901234567890123456.78"),
    ],
)
def test_numbers_normalize_the_way_dynamodb_stores_them(text: str, canonical: str) -> None:
    assert normalize_number(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "NaN",
        "Infinity",
        "1_000",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "\u00a01",
        "1 0",
        "+ 1",
        "++1",
        "+-1",
        "-+1",
        "--1",
        "0x10",
        "1,000",
        "-Infinity",
        "inf",
        "\u0661\u0660\u0660",  # Arabic-Indic digits: moto takes them, DynamoDB is not known to
        "\uff11",  # a fullwidth digit
        ".",
        "+",
        "-",
        "e2",
        ".e2",
        "+e2",
        "1.2.3",
        "1e2.0",
        "1e+",
        "1e",
        "1" * 39,
        "1e126",
        "1e-131",
    ],
)
def test_numbers_dynamodb_would_reject_raise(text: str) -> None:
    refused = "not a DynamoDB number|more than 38 significant digits|out of DynamoDB's range"
    with pytest.raises(ValueError, match=refused):
        normalize_number(text)


def test_a_surrogate_pair_has_the_key_of_the_character_it_encodes() -> None:
    # botocore's JSON serializer sends both as "\\ud83d\\ude00": one item in DynamoDB.
    emoji = cache_key(ACCOUNT, "r", "t", {"pk": {"S": "a\U0001f600b"}})
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"S": "a\ud83d\ude00b"}}) == emoji
    assert cache_key(ACCOUNT, "r", "t", {"\ud83d\ude00": {"S": "x"}}) == cache_key(
        ACCOUNT, "r", "t", {"\U0001f600": {"S": "x"}}
    )


# PT014 takes "\ud83d" and "\ude00" for one case: ruff reads any lone surrogate as U+FFFD.
@pytest.mark.parametrize("text", ["\ud83d", "\ude00", "a\ude00\ud83d", "\ud83d\ud83d"])  # noqa: PT014
def test_a_lone_surrogate_gets_no_key(text: str) -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        cache_key(ACCOUNT, "r", "t", {"pk": {"S": text}})
    with pytest.raises(ValueError, match="lone surrogate"):
        cache_key(ACCOUNT, "r", "t", {text: {"S": "a"}})


def test_two_attribute_names_that_are_one_name_on_the_wire_get_no_key() -> None:
    with pytest.raises(ValueError, match="two key attributes have one name on the wire"):
        cache_key(ACCOUNT, "r", "t", {"\ud83d\ude00": {"S": "a"}, "\U0001f600": {"S": "b"}})


def test_binary_as_bytes_and_as_base64_text_are_one_key() -> None:
    raw = bytes(range(256))
    as_text = base64.b64encode(raw).decode()
    assert cache_key(ACCOUNT, "r", "t", {"pk": {"B": raw}}) == cache_key(
        ACCOUNT, "r", "t", {"pk": {"B": as_text}}
    )


def test_binary_text_can_mean_utf8_as_botocore_sends_it() -> None:
    as_utf8 = cache_key(ACCOUNT, "r", "t", {"pk": {"B": "abc"}}, binary_text="utf-8")
    assert as_utf8 == cache_key(ACCOUNT, "r", "t", {"pk": {"B": b"abc"}})


def test_table_arn_maps_to_the_plain_name_in_its_region() -> None:
    arn = "arn:aws:dynamodb:eu-west-1:111111111111:table/orders"
    assert parse_table(arn, "us-east-1", ACCOUNT) == ("111111111111", "eu-west-1", "orders")
    assert parse_table("orders", "us-east-1", ACCOUNT) == (ACCOUNT, "us-east-1", "orders")


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ({}, "an item key needs at least one attribute"),
        ({"pk": {"SS": ["a"]}}, "key attribute 'pk' has type 'SS'; keys are S, N or B"),
        ({"pk": {"S": 1}}, "S value of 'pk' must be a str"),
        ({"pk": {"S": "a", "N": "1"}}, "key attribute 'pk' is not a single-typed attribute value"),
        ({"pk": "a"}, "key attribute 'pk' is not a single-typed attribute value"),
    ],
)
def test_malformed_keys_raise(key: dict[str, Any], refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        cache_key(ACCOUNT, "r", "t", key)


@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ("a:b", "not a DynamoDB table name"),
        ("", "not a DynamoDB table name"),
        ("arn:aws:s3:::bucket", "not a DynamoDB table ARN"),
        ("arn:aws:dynamodb:r:123456789012:index/x", "not a DynamoDB table ARN"),
        ("arn:aws:dynamodb:r:1:table/x", "not a 12-digit account in ARN"),
        ("arn:aws:dynamodb:r::table/x", "not a 12-digit account in ARN"),
    ],
)
def test_bad_table_names_raise(table: str, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        parse_table(table, "us-east-1")


# Properties -----------------------------------------------------------------------

finite_decimals = st.builds(
    lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
    st.integers(-(10**30), 10**30),
    st.integers(-90, 90),
)


def renderings(value: Decimal) -> st.SearchStrategy[str]:
    """Different texts DynamoDB reads as the same number."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    minus = "-" if sign else ""
    plus = minus or "+"
    return st.sampled_from(
        [
            f"{minus}{mantissa}e{exponent}",
            f"{minus}0{mantissa}E{exponent:+d}",
            f"{minus}{mantissa}00e{exponent - 2}",
            f"{minus}{mantissa}.000e{exponent}",
            f"{plus}{mantissa}.e{exponent}",
            f"{minus}.{mantissa}E{exponent + len(mantissa)}",
            f"{plus}.{mantissa}0e{exponent + len(mantissa):+d}",
        ]
    )


@settings(deadline=None)  # correctness, not speed: loaded CI machines miss 200 ms
@given(st.data(), finite_decimals)
def test_equivalent_numbers_give_one_key(data: st.DataObject, value: Decimal) -> None:
    first = data.draw(renderings(value))
    second = data.draw(renderings(value))
    assert cache_key(ACCOUNT, "r", "t", {"n": {"N": first}}) == cache_key(
        ACCOUNT, "r", "t", {"n": {"N": second}}
    )


@given(finite_decimals, finite_decimals)
def test_different_numbers_give_different_keys(a: Decimal, b: Decimal) -> None:
    assume(a != b)
    key_a = cache_key(ACCOUNT, "r", "t", {"n": {"N": f"{a:e}"}})
    key_b = cache_key(ACCOUNT, "r", "t", {"n": {"N": f"{b:e}"}})
    assert key_a != key_b


scalar_values = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(min_size=1)),
    st.builds(lambda i: {"N": str(i)}, st.integers()),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1)),
)
table_names = st.from_regex(r"[A-Za-z0-9_.-]{3,20}", fullmatch=True)
item_keys = st.dictionaries(
    st.sampled_from(["pk", "sk", "id", "p:k"]), scalar_values, min_size=1, max_size=2
)


def canonical(key: dict[str, Any]) -> frozenset[tuple[str, str, str]]:
    out = set()
    for name, value in key.items():
        ((tag, raw),) = value.items()
        if tag == "N":
            raw = normalize_number(raw)
        elif tag == "B":
            raw = base64.b64encode(raw).decode()
        out.add((name, tag, raw))
    return frozenset(out)


@given(table_names, item_keys, table_names, item_keys)
def test_different_table_or_key_give_different_cache_keys(
    table_a: str, key_a: dict[str, Any], table_b: str, key_b: dict[str, Any]
) -> None:
    assume(table_a != table_b or canonical(key_a) != canonical(key_b))
    assert cache_key(ACCOUNT, "r", table_a, key_a) != cache_key(ACCOUNT, "r", table_b, key_b)


@given(item_keys)
def test_attribute_order_does_not_matter(key: dict[str, Any]) -> None:
    reordered = dict(reversed(list(key.items())))
    assert cache_key(ACCOUNT, "r", "t", key) == cache_key(ACCOUNT, "r", "t", reordered)
