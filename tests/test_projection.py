"""Projections applied to the cached full item: DynamoDB's semantics, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from momento_botocore.core.projection import InvalidProjection, parse_expression, parse_projection

ITEM: dict[str, Any] = {
    "pk": {"S": "a"},
    "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"q": {"S": "z"}, "r": {"BOOL": True}}}]},
    "m": {"M": {"b": {"S": "y"}, "c": {"SS": ["1", "2"]}, "d": {"M": {"e": {"NULL": True}}}}},
    "bin": {"B": b"\x00\x01"},
    "odd name": {"S": "spaced"},
}


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        ("pk", None, {"pk": {"S": "a"}}),
        ("m.b", None, {"m": {"M": {"b": {"S": "y"}}}}),
        ("m.b, m.d.e", None, {"m": {"M": {"b": {"S": "y"}, "d": {"M": {"e": {"NULL": True}}}}}}),
        ("l[1]", None, {"l": {"L": [{"N": "1"}]}}),
        # Selected list elements come back compacted, in index order.
        (
            "l[2], l[0]",
            None,
            {"l": {"L": [{"S": "x"}, {"M": {"q": {"S": "z"}, "r": {"BOOL": True}}}]}},
        ),
        ("l[2].q", None, {"l": {"L": [{"M": {"q": {"S": "z"}}}]}}),
        ("#l[1]", {"#l": "l"}, {"l": {"L": [{"N": "1"}]}}),
        ("#o", {"#o": "odd name"}, {"odd name": {"S": "spaced"}}),
        ("#m.#m", {"#m": "m"}, {}),
        ("bin", None, {"bin": {"B": b"\x00\x01"}}),
        # Paths that do not exist are left out; nothing found is an empty item.
        ("nope", None, {}),
        ("l[7], m.b.deeper, pk[0], m.zz, l[0].q", None, {}),
        ("m.c[0]", None, {}),  # sets cannot be indexed
    ],
)
def test_projection_keeps_what_dynamodb_keeps(
    expression: str, names: dict[str, str] | None, expected: dict[str, Any]
) -> None:
    assert parse_expression(expression, names).apply(ITEM) == expected


def test_projection_does_not_change_the_cached_item() -> None:
    before = repr(ITEM)
    parse_expression("m.b, l[0]").apply(ITEM)
    assert repr(ITEM) == before


def test_attributes_to_get_keeps_top_level_names() -> None:
    projection = parse_projection({"AttributesToGet": ["pk", "odd name", "nope"]})
    assert projection is not None
    assert projection.apply(ITEM) == {"pk": {"S": "a"}, "odd name": {"S": "spaced"}}


def test_no_projection_parameters_means_no_projection() -> None:
    assert parse_projection({"TableName": "t", "Key": {}}) is None


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"ProjectionExpression": "name"}, "reserved word"),
        ({"ProjectionExpression": "entries, lines[0]"}, "reserved word inside a path"),
        ({"ProjectionExpression": "a, a.b"}, "overlapping paths"),
        ({"ProjectionExpression": "a, a"}, "duplicate paths"),
        ({"ProjectionExpression": "a.b, a[0]"}, "conflicting paths"),
        ({"ProjectionExpression": "#x"}, "undefined placeholder"),
        ({"ProjectionExpression": "a", "ExpressionAttributeNames": {"#x": "b"}}, "unused name"),
        ({"ProjectionExpression": "a", "ExpressionAttributeNames": {}}, "empty names"),
        ({"ExpressionAttributeNames": {"#x": "b"}}, "names without an expression"),
        ({"ProjectionExpression": ""}, "empty expression"),
        ({"ProjectionExpression": "a,,b"}, "empty path"),
        ({"ProjectionExpression": "a b"}, "space in a name"),
        ({"ProjectionExpression": "1a"}, "starts with a digit"),
        ({"ProjectionExpression": "a[01]"}, "leading zero in an index"),
        ({"ProjectionExpression": "a[-1]"}, "negative index"),
        ({"ProjectionExpression": "[0]"}, "index first"),
        ({"ProjectionExpression": "a..b"}, "empty name"),
        ({"ProjectionExpression": ".".join(["a"] * 33)}, "too deep"),
        ({"ProjectionExpression": ", ".join(f"a{n}" for n in range(800))}, "over 4 KB"),
        ({"ProjectionExpression": "a", "AttributesToGet": ["a"]}, "both kinds"),
        ({"AttributesToGet": []}, "empty AttributesToGet"),
        ({"AttributesToGet": ["a", "a"]}, "duplicate AttributesToGet"),
        ({"AttributesToGet": "a"}, "AttributesToGet not a list"),
    ],
)
def test_what_dynamodb_would_or_might_reject_is_not_answered(
    params: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidProjection):
        parse_projection(params)
