"""What to do with one read request: serve from cache, or pass it through. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from momento_botocore.config import TableSettings
from momento_botocore.fences import FencedRead
from momento_botocore.keys import cache_key, cache_keys, parse_table
from momento_botocore.projection import (
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
    #: Applied to the full item, from the cache or from DynamoDB (asked without it).
    projection: Projection | None = None
    #: The request's Key (wire format): a cached item must have it (integrity.py).
    request_key: Mapping[str, Any] | None = None
    #: Set when the key is fenced by this process's own write (fences.py).
    fence: FencedRead | None = None


@dataclass(frozen=True, slots=True)
class Bypass:
    """A request for a cached table that goes to DynamoDB without the cache."""

    table: str
    reason: str


TableLookup = Callable[[str], "TableSettings | None"]


def plan_get_item(
    params: Mapping[str, Any],
    *,
    account: str | None,
    region: str | None,
    settings_for: TableLookup,
    key_prefix: str,
    now: float,
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
    # Positional: a slots dataclass built with keywords costs ~3x more (~1 us).
    consumed = None if consumed == "NONE" else consumed
    return ReadPlan(table, key, settings, consumed, now, False, False, projection)


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


@dataclass(slots=True)
class BatchPlan:
    """A BatchGetItem with at least one cached table, carried in the call's context."""

    tables: list[BatchTable]
    passthrough: dict[str, Any]  # RequestItems entries left to DynamoDB as they are
    consumed_capacity: str | None
    started: float
    hits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    misses: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    fill: bool = True
    sent: bool = False
    answered: bool = False
    #: Fenced keys (cache key -> the fence as planned; fences.py).
    fenced: dict[str, FencedRead] = field(default_factory=dict)


def plan_batch_get(
    params: Mapping[str, Any],
    *,
    account: str | None,
    region: str | None,
    settings_for: TableLookup,
    key_prefix: str,
    now: float,
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
    return BatchPlan(
        tables=cached,
        passthrough=passthrough,
        consumed_capacity=None if consumed == "NONE" else consumed,
        started=now,
    )
