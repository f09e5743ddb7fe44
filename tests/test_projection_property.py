"""Property: a projection answered from the cache equals DynamoDB's (moto's) own answer.

Items are random (every attribute type, nested maps and lists); projections are
random valid document paths. moto (in-process, for speed) stands in for DynamoDB.
moto's projection code has known gaps where real DynamoDB is documented to differ,
so the generated projections stay clear of them (tested in test_projection.py):
two paths into one list (moto keeps only the last), ``#name[0]`` (moto does not
resolve a placeholder followed by an index), list-in-list indexes, and paths
through a scalar (moto fails the request).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws

import momento_botocore
from momento_botocore.core.projection import InvalidProjection, parse_expression

NAMES = ["a", "b", "c", "d"]  # usable as they are
ODD_NAMES = ["name", "x-y", "1st"]  # need a #placeholder

numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(
        lambda d: str(d.normalize()) if d != 0 else "0"
    ),
).filter(lambda text: "E" not in text)

scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": n}, numbers),
    st.builds(lambda b: {"B": b}, st.binary(max_size=4)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=3), min_size=1, max_size=3)),
    st.builds(
        lambda s: {"NS": sorted(str(n) for n in s)},
        st.sets(st.integers(-99, 99), min_size=1, max_size=3),
    ),
    st.builds(
        lambda s: {"BS": sorted(s)},
        st.sets(st.binary(min_size=1, max_size=3), min_size=1, max_size=3),
    ),
)
attribute_names = st.sampled_from(NAMES + ODD_NAMES)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(attribute_names, inner, max_size=3)),
    ),
    max_leaves=8,
)
items = st.dictionaries(attribute_names, values, min_size=1, max_size=4)

# A path: a name, then up to three steps, each a map name or a list index (never two in a row).
steps = st.lists(st.one_of(attribute_names, st.integers(0, 3)), max_size=3)


@st.composite
def projections(draw: Any) -> tuple[str, dict[str, str]]:
    paths = draw(st.lists(st.tuples(attribute_names, steps), min_size=1, max_size=4))
    names: dict[str, str] = {}
    rendered = []
    indexed = 0
    for first, rest in paths:
        path: list[str | int] = [first, *rest]
        if any(isinstance(x, int) and isinstance(y, int) for x, y in itertools.pairwise(path)):
            assume(False)
        indexed += any(isinstance(x, int) for x in path)
        text = ""
        for position, step in enumerate(path):
            if isinstance(step, int):
                text += f"[{step}]"
                continue
            followed_by_index = position + 1 < len(path) and isinstance(path[position + 1], int)
            plain = step in NAMES and (followed_by_index or draw(st.booleans()))
            if not plain:
                assume(not followed_by_index)  # moto cannot do "#name[0]"
                placeholder = (
                    f"#n{NAMES.index(step) if step in NAMES else 9 + ODD_NAMES.index(step)}"
                )
                names[placeholder] = step
                step = placeholder
            text += ("." if position else "") + step
        rendered.append(text)
    assume(indexed <= 1)  # moto keeps one list path only
    expression = ", ".join(rendered)
    try:
        parse_expression(expression, names or None)
    except InvalidProjection:
        assume(False)  # overlapping or conflicting paths: DynamoDB rejects them
    return expression, names


def canonical(value: Any) -> Any:
    """Sets compare unordered; everything else exactly."""
    if isinstance(value, dict):
        return {
            k: sorted(map(repr, v)) if k in ("SS", "NS", "BS") else canonical(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[Any, Any]]:
    # STS to AWS's own endpoint, where mock_aws answers (the client's account).
    with mock.patch.dict(os.environ), mock_aws():
        os.environ.pop("AWS_ENDPOINT_URL_STS", None)
        plain = boto3.Session(region_name="us-east-1").client(
            "dynamodb", config=Config(retries={"total_max_attempts": 1})
        )
        plain.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        session = boto3.Session(region_name="us-east-1")
        registration = momento_botocore.register(session, ttl=300)
        yield plain, session.client("dynamodb")
        registration.unregister()


COUNTER = iter(range(10**9))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(item=items, projection=projections())
def test_cached_projection_equals_dynamodbs(
    clients: tuple[Any, Any], item: dict[str, Any], projection: tuple[str, dict[str, str]]
) -> None:
    plain, cached = clients
    key = {"pk": {"S": f"item-{next(COUNTER)}"}}
    plain.put_item(TableName="items", Item={**item, **key})
    expression, names = projection
    extra: dict[str, Any] = {"ProjectionExpression": expression}
    if names:
        extra["ExpressionAttributeNames"] = names
    try:
        expected = plain.get_item(TableName="items", Key=key, **extra)
    except Exception:
        # moto crashes on a path through a scalar ("a.b" where a is a number):
        # DynamoDB leaves such paths out, as test_projection.py checks.
        assume(False)
    miss = cached.get_item(TableName="items", Key=key, **extra)
    hit = cached.get_item(TableName="items", Key=key, **extra)
    assert hit["ResponseMetadata"]["HTTPHeaders"]["x-momento-cache"] == "hit"
    assert canonical(miss["Item"]) == canonical(expected["Item"])
    assert canonical(hit["Item"]) == canonical(expected["Item"])
    batch = cached.batch_get_item(RequestItems={"items": {"Keys": [key], **extra}})
    assert [canonical(i) for i in batch["Responses"]["items"]] == [canonical(expected["Item"])]
