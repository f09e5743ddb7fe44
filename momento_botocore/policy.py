"""What to do with one read request: serve from cache, or pass it through. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from momento_botocore.config import TableSettings
from momento_botocore.keys import cache_key, parse_table

#: GetItem parameters the cache understands fully. Any other parameter (a
#: projection, expression names, ...) sends the request to DynamoDB untouched.
_GET_ITEM_PARAMS = frozenset({"TableName", "Key", "ConsistentRead", "ReturnConsumedCapacity"})
_CONSUMED_CAPACITY = frozenset({"NONE", "TOTAL", "INDEXES"})


@dataclass(slots=True)
class ReadPlan:
    """A cacheable GetItem, carried through one call's events in its context."""

    table: str
    key: str
    settings: TableSettings
    consumed_capacity: str | None
    started: float
    hit: bool = False
    sent: bool = False


@dataclass(frozen=True, slots=True)
class Bypass:
    """A request for a cached table that goes to DynamoDB without the cache."""

    table: str
    reason: str


TableLookup = Callable[[str], "TableSettings | None"]


def plan_get_item(
    params: Mapping[str, Any],
    *,
    region: str | None,
    settings_for: TableLookup,
    key_prefix: str,
    now: float,
) -> ReadPlan | Bypass | None:
    """A plan for a cacheable GetItem, a Bypass, or None when the table is not ours."""
    try:
        region_name, table = parse_table(params.get("TableName"), region)  # type: ignore[arg-type]
    except ValueError:
        return None  # DynamoDB will reject it with its own error
    settings = settings_for(table)
    if settings is None:
        return None
    if not _GET_ITEM_PARAMS.issuperset(params):
        return Bypass(table, "parameters")
    consistent = params.get("ConsistentRead", False)
    if consistent is not False:
        return Bypass(table, "consistent-read")
    consumed = params.get("ReturnConsumedCapacity")
    if consumed is not None and consumed not in _CONSUMED_CAPACITY:
        return Bypass(table, "parameters")
    key_attributes = params.get("Key")
    if not isinstance(key_attributes, Mapping):
        return Bypass(table, "parameters")
    try:
        key = cache_key(region_name, table, key_attributes, prefix=key_prefix, binary_text="utf-8")
    except ValueError:
        return Bypass(table, "key")
    return ReadPlan(
        table=table,
        key=key,
        settings=settings,
        consumed_capacity=None if consumed == "NONE" else consumed,
        started=now,
    )


def consumed_capacity_of_hit(table: str, mode: str) -> dict[str, Any]:
    """DynamoDB's ConsumedCapacity shape for a read that cost nothing."""
    consumed: dict[str, Any] = {"TableName": table, "CapacityUnits": 0.0, "ReadCapacityUnits": 0.0}
    if mode == "INDEXES":
        consumed["Table"] = {"CapacityUnits": 0.0, "ReadCapacityUnits": 0.0}
    return consumed
