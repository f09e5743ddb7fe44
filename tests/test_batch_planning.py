"""BatchGetItem planning and the batch path's memos (pure)."""

from __future__ import annotations

from typing import Any

from conftest import ACCOUNT

from momento_botocore.config import CacheConfig
from momento_botocore.core.keys import cache_key
from momento_botocore.core.reads import BatchPlan, Bypass, plan_batch_get

CONFIG = CacheConfig(ttl=60, tables=("cached*",))


def plan(
    request_items: dict[str, Any], account: str | None = ACCOUNT, **params: Any
) -> BatchPlan | Bypass | None:
    return plan_batch_get(
        {"RequestItems": request_items, **params},
        account=account,
        region="us-east-1",
        settings_for=CONFIG.settings_for,
        key_prefix="",
    )


def keys(*names: str) -> list[dict[str, Any]]:
    return [{"pk": {"S": name}} for name in names]


def test_cached_tables_are_planned_and_others_passed_through() -> None:
    result = plan(
        {
            "cached": {"Keys": keys("a", "b"), "ProjectionExpression": "v"},
            "cached-strong": {"Keys": keys("a"), "ConsistentRead": True},
            "other": {"Keys": keys("a")},
        },
        ReturnConsumedCapacity="TOTAL",
    )
    assert isinstance(result, BatchPlan)
    assert [t.name for t in result.tables] == ["cached"]
    assert result.tables[0].projection is not None
    assert result.tables[0].request_extras == {"ProjectionExpression": "v"}
    assert result.tables[0].keys == [
        cache_key(ACCOUNT, "us-east-1", "cached", k) for k in keys("a", "b")
    ]
    assert result.tables[0].key_attributes == keys("a", "b")
    assert set(result.passthrough) == {"cached-strong", "other"}
    assert result.consumed_capacity == "TOTAL"


def test_a_table_of_another_account_is_passed_through() -> None:
    foreign = "arn:aws:dynamodb:us-east-1:222222222222:table/cached"
    own = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/cached"
    result = plan({foreign: {"Keys": keys("a")}, own: {"Keys": keys("b")}})
    assert isinstance(result, BatchPlan)
    assert [t.name for t in result.tables] == [own]
    assert result.tables[0].account == ACCOUNT
    assert result.tables[0].keys == [cache_key(ACCOUNT, "us-east-1", "cached", keys("b")[0])]
    assert set(result.passthrough) == {foreign}


def test_a_client_of_unknown_account_leaves_the_batch_untouched() -> None:
    result = plan({"cached": {"Keys": keys("a")}}, account=None)
    assert result == Bypass("cached", "account")
    assert plan({"other": {"Keys": keys("a")}}, account=None) is None


def test_nothing_cached_is_no_plan() -> None:
    assert plan({"other": {"Keys": keys("a")}}) is None


def test_anything_odd_leaves_the_whole_batch_untouched() -> None:
    odd = [
        {"cached": {"Keys": keys("a", "a")}},  # duplicates
        {"cached": {"Keys": [*keys("a"), {"pk": {"S": "b"}, "sk": {"N": "1"}}]}},  # mixed
        {"cached": {"Keys": keys(*[str(n) for n in range(101)])}},  # too many
        {"cached": {"Keys": keys("a"), "ProjectionExpression": "name"}},  # reserved word
        {"cached": {"Keys": keys("a"), "Select": "ALL"}},  # unknown parameter
        {"cached": {"Keys": [{"pk": {"X": "a"}}]}},  # not a key type
    ]
    for request_items in odd:
        assert isinstance(plan(request_items), Bypass), request_items
    assert isinstance(plan({"cached": {"Keys": keys("a")}}, Unknown=1), Bypass)
