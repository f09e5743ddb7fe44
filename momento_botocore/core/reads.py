"""Read decisions: what a GetItem or BatchGetItem asks of the cache, and the answers
built from it. Pure: no botocore, no backend, no clock of its own.

A plan is a frozen decision made from the request alone; the progress of one call
(was it sent, may it fill) lives in core/call.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from momento_botocore.config import CacheConfig, TableSettings
from momento_botocore.core.fastpath import cache_key, cache_keys, parse_table
from momento_botocore.core.projection import (
    PROJECTION_PARAMS,
    InvalidProjection,
    Projection,
    parse_projection,
)

#: GetItem parameters the cache understands fully. Any other parameter sends the
#: request to DynamoDB untouched.
_GET_ITEM_PARAMS = frozenset(
    {"TableName", "Key", "ConsistentRead", "ReturnConsumedCapacity", *PROJECTION_PARAMS}
)
_CONSUMED_CAPACITY = frozenset({"NONE", "TOTAL", "INDEXES"})


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """A cacheable GetItem: where its entry is, and how to answer from it."""

    table: str
    key: str
    settings: TableSettings
    consumed_capacity: str | None
    #: Applied to the full item, from the cache or from DynamoDB (asked without it).
    projection: Projection | None
    #: The request's Key (wire format): a cached item must have it (integrity.py).
    request_key: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Bypass:
    """A request for a cached table that goes to DynamoDB without the cache."""

    table: str
    reason: str


TableLookup = Callable[[str], "TableSettings | None"]


# C901: one guard per reason a GetItem is not cached, inline: every read is planned.
def plan_get_item(  # noqa: C901
    params: Mapping[str, Any],
    *,
    account: str | None,
    region: str | None,
    settings_for: TableLookup,
    key_prefix: str,
) -> ReadPlan | Bypass | None:
    """A plan for a cacheable GetItem, a Bypass, or None when the table is not ours.

    ``account`` is the client's (None when unknown: then nothing is cached).
    """
    try:
        owner, region_name, table = parse_table(
            params.get("TableName"),  # type: ignore[arg-type]
            region,
            account,
        )
    except ValueError:
        return None  # DynamoDB will reject it with its own error
    settings = settings_for(table)
    if settings is None:
        return None
    if account is None:
        return Bypass(table, "account")
    if owner != account:
        return Bypass(table, "foreign-account")
    if not _GET_ITEM_PARAMS.issuperset(params):
        return Bypass(table, "parameters")
    consistent = params.get("ConsistentRead", False)
    if consistent is not False:
        return Bypass(table, "consistent-read")
    consumed = params.get("ReturnConsumedCapacity")
    if consumed is not None and consumed not in _CONSUMED_CAPACITY:
        return Bypass(table, "parameters")
    key_attributes = params.get("Key")
    # type() first: an isinstance() against an ABC costs ~0.7 us on every read.
    if type(key_attributes) is not dict and not isinstance(key_attributes, Mapping):
        return Bypass(table, "parameters")
    try:
        key = cache_key(  # the table owner's key (the client's own, checked above)
            owner, region_name, table, key_attributes, prefix=key_prefix, binary_text="utf-8"
        )
    except ValueError:
        return Bypass(table, "key")
    try:
        projection = parse_projection(params)
    except InvalidProjection:
        return Bypass(table, "projection")
    consumed = None if consumed == "NONE" else consumed
    return ReadPlan(table, key, settings, consumed, projection, key_attributes)


def consumed_capacity_of_hit(table: str, mode: str) -> dict[str, Any]:
    """DynamoDB's ConsumedCapacity for a read that cost nothing, with the keys DynamoDB
    gives for ``mode``: TOTAL has TableName and CapacityUnits; INDEXES adds the table's
    own figure (a GetItem or BatchGetItem reads no index)."""
    consumed: dict[str, Any] = {"TableName": table, "CapacityUnits": 0.0}
    if mode == "INDEXES":
        consumed["Table"] = {"CapacityUnits": 0.0}
    return consumed


# BatchGetItem ----------------------------------------------------------------

_BATCH_GET_PARAMS = frozenset({"RequestItems", "ReturnConsumedCapacity"})
_BATCH_TABLE_PARAMS = frozenset({"Keys", "ConsistentRead", *PROJECTION_PARAMS})
_BATCH_GET_MAX_KEYS = 100


@dataclass(slots=True)
class BatchTable:
    """One cached table of a BatchGetItem: its keys, in request order."""

    name: str  # as given in RequestItems (a name or an ARN)
    table: str
    account: str
    region: str
    settings: TableSettings
    projection: Projection | None
    key_names: frozenset[str]
    keys: list[str]  # cache keys, in request order
    key_attributes: list[Mapping[str, Any]]  # the request's keys, in the same order
    #: The table's request without Keys, restored on UnprocessedKeys.
    request_extras: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """A BatchGetItem with at least one cached table."""

    tables: list[BatchTable]
    passthrough: dict[str, Any]  # RequestItems entries left to DynamoDB as they are
    consumed_capacity: str | None


# C901: one check per part of a BatchGetItem request (and per reason it is not cached).
def plan_batch_get(  # noqa: C901
    params: Mapping[str, Any],
    *,
    account: str | None,
    region: str | None,
    settings_for: TableLookup,
    key_prefix: str,
) -> BatchPlan | Bypass | None:
    """A plan when some table of the batch is cached; Bypass when the batch is not understood.

    Tables that are not cached, read with ConsistentRead, or of another account than
    ``account`` (the client's) are passed through; anything odd anywhere (unknown
    parameters, a bad key, an invalid projection, duplicate keys, too many keys)
    leaves the whole request untouched; a client of unknown account, too.
    """
    request_items = params.get("RequestItems")
    if not isinstance(request_items, Mapping) or not request_items:
        return None
    cached: list[BatchTable] = []
    passthrough: dict[str, Any] = {}
    first_cached = ""
    total_keys = 0
    for name, request in request_items.items():
        try:
            owner, region_name, table = parse_table(name, region, account)
        except ValueError:
            return None
        settings = settings_for(table)
        if settings is not None and account is None:
            return Bypass(table, "account")
        if settings is not None and not first_cached:
            first_cached = table
        if not isinstance(request, Mapping) or not _BATCH_TABLE_PARAMS.issuperset(request):
            return Bypass(first_cached or table, "parameters") if first_cached else None
        keys = request.get("Keys")
        if not isinstance(keys, list) or not keys:
            return Bypass(first_cached, "parameters") if first_cached else None
        total_keys += len(keys)
        if (
            settings is None
            or owner != account
            or request.get("ConsistentRead", False) is not False
        ):
            passthrough[name] = request
            continue
        assert owner is not None
        try:
            projection = parse_projection(request)
            coded = cache_keys(
                owner, region_name, table, keys, prefix=key_prefix, binary_text="utf-8"
            )
        except InvalidProjection:
            return Bypass(table, "projection")
        except (ValueError, AttributeError, TypeError):
            return Bypass(table, "key")
        if len(set(coded)) != len(coded):
            return Bypass(table, "parameters")  # DynamoDB rejects duplicate keys
        names = frozenset(keys[0])  # cache_keys checked that every key has these
        extras = {k: v for k, v in request.items() if k != "Keys"}
        cached.append(
            BatchTable(
                name, table, owner, region_name, settings, projection, names, coded, keys, extras
            )
        )
    if not cached:
        return None
    if not _BATCH_GET_PARAMS.issuperset(params) or total_keys > _BATCH_GET_MAX_KEYS:
        return Bypass(first_cached, "parameters")
    consumed = params.get("ReturnConsumedCapacity")
    if consumed is not None and consumed not in _CONSUMED_CAPACITY:
        return Bypass(first_cached, "parameters")
    return BatchPlan(cached, passthrough, None if consumed == "NONE" else consumed)


# Answers built from the cache ------------------------------------------------------

#: The response headers and request id of an answer built from the cache.
CACHE_HEADER = "x-momento-cache"
HIT_REQUEST_ID = "momento-botocore-cache-hit"
#: What an all-hit batch's request holds instead of its keys: it is never sent, and
#: DynamoDB would reject it (no table has this key attribute).
NEVER_SENT = "momento-botocore: all keys were cache hits; this request is never sent"


def hit_metadata() -> dict[str, Any]:
    """ResponseMetadata of an answer from the cache (a new dict: callers may change it)."""
    return {
        "RequestId": HIT_REQUEST_ID,
        "HTTPStatusCode": 200,
        "HTTPHeaders": {CACHE_HEADER: "hit"},
        "RetryAttempts": 0,
    }


def get_item_answer(plan: ReadPlan, item: dict[str, Any] | None) -> dict[str, Any]:
    """GetItem's parsed answer for ``item`` (None: not found), as DynamoDB gives it."""
    if item is not None and plan.projection is not None:
        item = plan.projection.apply(item)
    if plan.consumed_capacity is None:  # the usual case: one dict literal
        if item is None:
            return {"ResponseMetadata": hit_metadata()}
        return {"Item": item, "ResponseMetadata": hit_metadata()}
    parsed: dict[str, Any] = {} if item is None else {"Item": item}
    parsed["ConsumedCapacity"] = consumed_capacity_of_hit(plan.table, plan.consumed_capacity)
    parsed["ResponseMetadata"] = hit_metadata()
    return parsed


def batch_answer(plan: BatchPlan, hits: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """BatchGetItem's parsed answer when the cache held every key."""
    parsed: dict[str, Any] = {
        "Responses": {table.name: hits[table.name] for table in plan.tables},
        "UnprocessedKeys": {},
    }
    if plan.consumed_capacity is not None:
        parsed["ConsumedCapacity"] = [
            consumed_capacity_of_hit(table.table, plan.consumed_capacity) for table in plan.tables
        ]
    parsed["ResponseMetadata"] = hit_metadata()
    return parsed


def answered_as(table: BatchTable, responses: Any, unprocessed: Any) -> str:
    """The key under which DynamoDB answered for ``table``: the name or ARN the
    request gave, as documented; the plain table name should an answer to an ARN
    use that instead (so the cached items join DynamoDB's, never a second entry)."""
    name = table.name
    if name in responses or name in unprocessed or name == table.table:
        return name
    if table.table in responses or table.table in unprocessed:
        return table.table
    return name


def misses_request(plan: BatchPlan, misses: Mapping[str, Mapping[str, Any]], fenced: Any) -> Any:
    """The RequestItems left for DynamoDB: the passed-through tables, and the missed keys
    of cached ones without projections (full items, to fill); strongly consistent for a
    table with a fenced key (fences.py). When nothing is left: a placeholder, never sent
    (botocore then spares validating and serializing every key)."""
    if not misses and not plan.passthrough:
        return {plan.tables[0].name: {"Keys": [{NEVER_SENT: {"S": "-"}}]}}
    request_items = dict(plan.passthrough)
    for table in plan.tables:
        missed = misses.get(table.name)
        if missed:
            request = {
                name: value
                for name, value in table.request_extras.items()
                if name not in PROJECTION_PARAMS
            }
            request["Keys"] = list(missed.values())
            if fenced and any(key in fenced for key in missed):
                request["ConsistentRead"] = True
            request_items[table.name] = request
    return request_items


# Timing rules (Contract 3) ------------------------------------------------------------


def fill_window(config: CacheConfig, settings: TableSettings) -> float:
    """How long after a read started its fill is still safe: no invalidation entry
    (TOMBSTONE, or a stream's ABSENT/ITEM, which lives at least absent_ttl) has expired."""
    return min(config.tombstone_ttl_seconds, settings.absent_ttl)


def guard_horizon(config: CacheConfig, settings: TableSettings) -> float:
    """How long after a write an entry its tombstone was to replace can still be in the
    cache: one stored before lives at most the longest TTL; a fill racing the write (its
    read started before) comes within the fill window and lives as long."""
    return max(settings.ttl, settings.absent_ttl) + fill_window(config, settings)
