"""Contract 4: Query and Scan pages, and the generations they are filed under. Pure.

A page (one Query or Scan answer: its items, counts and LastEvaluatedKey) is cached
under a key made of every request parameter that shapes the answer *and* the
current value of the generations it depends on:

* a Query of the base table: the generation ``P`` of one attribute's value, the one
  its key condition says equals (its partition key, or its sort key when both are
  equalities);
* a Query of an index (GSI or LSI) with such an equality: the same ``P`` of the
  index's attribute value, and the table's index generation ``X``; ``X`` is left
  out when the attribute is known to be one of the table's own key attributes (an
  LSI, or a GSI keyed by one), whose values an item never changes;
* every Scan, and a Query whose key condition has no equality understood: the
  generation of the whole table, ``T``.

A write to a table bumps its ``T`` and, for each item it writes, the ``P`` of every
key attribute's value (see :func:`generations_of_write`). A write through a client
cannot know the old index key values of the item it replaces, updates or deletes,
so it bumps ``X`` (every index page of the table). The stream invalidator knows
both images: it bumps the ``P`` of each index key attribute's old and new values,
and ``X`` only when it lacks an image or the index key attributes. Neither side
needs to know which key attribute is the partition key. The generations are
integers stored in the cache (``incr``); one that is missing is started at a random
value (``add``), never at a fixed one, so that a generation evicted and started
again cannot meet the pages of its earlier life.

Requests this module does not fully understand (legacy parameters, placeholders
missing or unused, ``ConsistentRead``) are not cached: DynamoDB answers them, errors
included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from momento_botocore.config import TableSettings
from momento_botocore.core.entries import _from_json, _to_json
from momento_botocore.core.keys import (
    BinaryText,
    binary_value,
    canonical_attribute,
    normalize_number,
    parse_table,
    text_of,
)
from momento_botocore.core.reads import Bypass

#: The operations whose answers are pages.
PAGE_OPERATIONS = ("Query", "Scan")
_PAGE_TAG = "mbq2"
_GENERATION_TAG = "mbg2"
PAGE_FORMAT = b"mbp1"

_COMMON = frozenset(
    {
        "TableName",
        "IndexName",
        "Select",
        "Limit",
        "ConsistentRead",
        "FilterExpression",
        "ProjectionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "ExclusiveStartKey",
        "ReturnConsumedCapacity",
    }
)
QUERY_PARAMS = _COMMON | {"KeyConditionExpression", "ScanIndexForward"}
SCAN_PARAMS = _COMMON | {"Segment", "TotalSegments"}
_EXPRESSIONS = ("KeyConditionExpression", "FilterExpression", "ProjectionExpression")
_SELECT = frozenset({"ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT"})
# INDEXES would need the answer's per-index figures: such requests are not cached.
_CONSUMED = frozenset({"NONE", "TOTAL"})
_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")
# ``name = :value`` or ``:value = name``: the partition key's equality in a key condition.
_EQUALS = re.compile(
    r"(?<![<>=!])(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)\s*=\s*(#?[A-Za-z0-9_]+)"
)


@dataclass(frozen=True, slots=True)
class PagePlan:
    """A cacheable Query or Scan: the generations it is filed under, and the digest of
    everything else that shapes its answer."""

    operation: str
    table: str
    account: str
    region: str
    settings: TableSettings
    #: Generation keys, read before the page (their values complete the page key).
    generations: tuple[str, ...]
    #: sha256 of the request with its placeholders resolved (see :func:`_basis`).
    basis: bytes
    consumed_capacity: str | None
    #: What a lookup reads first: the generations, then their "written lately" markers.
    lookups: tuple[str, ...] = ()


def plan_page(
    operation: str,
    params: Mapping[str, Any],
    *,
    account: str | None,
    region: str | None,
    settings_for: Callable[[str], TableSettings | None],
    opted_in: Callable[[str, str], bool],
    key_prefix: str,
    key_names: Callable[[str, str, str], tuple[str, ...] | None] = lambda *_: None,
) -> PagePlan | Bypass | None:
    """A plan for a cacheable Query or Scan; a Bypass for a cached table's request the
    cache does not take; None when the table is not cached for ``operation``.

    ``opted_in(table, operation)`` says whether queries or scans of the table are cached;
    ``key_names(account, region, table)`` gives the table's key attribute names when
    known (configured or learned), else None.
    """
    try:
        owner, region_name, table = parse_table(params.get("TableName"), region, account)  # type: ignore[arg-type]
    except ValueError:
        return None
    settings = settings_for(table)
    if settings is None or not opted_in(table, operation):
        return None
    if account is None:
        return Bypass(table, "account")
    if owner != account:
        return Bypass(table, "foreign-account")
    allowed = QUERY_PARAMS if operation == "Query" else SCAN_PARAMS
    if not allowed.issuperset(params):
        return Bypass(table, "parameters")
    if params.get("ConsistentRead", False) is not False:
        return Bypass(table, "consistent-read")
    if operation == "Query" and not isinstance(params.get("KeyConditionExpression"), str):
        return Bypass(table, "parameters")
    consumed = params.get("ReturnConsumedCapacity")
    select = params.get("Select")
    if (consumed is not None and consumed not in _CONSUMED) or (
        select is not None and select not in _SELECT
    ):
        return Bypass(table, "parameters")
    try:
        resolved = _resolved_expressions(params)
        basis = _basis(operation, table, params, resolved)
        scope = _scope(operation, params)
    except (ValueError, TypeError, AttributeError, KeyError):
        return Bypass(table, "parameters")
    where = (owner, region_name, table)
    generations = _filed_under(where, scope, "IndexName" in params, key_prefix, key_names)
    consumed = None if consumed == "NONE" else consumed
    lookups = (*generations, *map(marker_key, generations))
    return PagePlan(
        operation, table, owner, region_name, settings, generations, basis, consumed, lookups
    )


def _filed_under(
    where: tuple[str, str, str],
    scope: tuple[str, Any] | None,
    of_an_index: bool,
    key_prefix: str,
    key_names: Callable[[str, str, str], tuple[str, ...] | None],
) -> tuple[str, ...]:
    """The generations a page is filed under (the module's docstring says why)."""
    account, region, table = where
    if scope is None:
        return (generation_key(account, region, table, key_prefix=key_prefix),)
    partition = generation_key(account, region, table, key_prefix=key_prefix, partition=scope)
    if of_an_index and scope[0] not in (key_names(account, region, table) or ()):
        return (index_generation_key(account, region, table, key_prefix), partition)
    return (partition,)


def page_key(plan: PagePlan, generations: Sequence[int], *, key_prefix: str) -> str:
    """The key of the page ``plan`` asks for, under these generation values."""
    digest = hashlib.sha256(plan.basis)
    for value in generations:
        digest.update(b"\x00%d" % value)
    tail = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")
    return f"{key_prefix}{_PAGE_TAG}:{plan.account}:{plan.region}:{plan.table}:{tail}"


def generation_key(
    account: str,
    region: str,
    table: str,
    *,
    key_prefix: str,
    partition: tuple[str, Any] | None = None,
    binary_text: BinaryText = "utf-8",
) -> str:
    """The key of a table's generation ``T``, or of one partition's ``P`` when
    ``partition`` is (partition key name, its value in wire format)."""
    base = f"{key_prefix}{_GENERATION_TAG}:{account}:{region}:{table}"
    if partition is None:
        return f"{base}:T"
    name, value = partition
    canonical = canonical_attribute(name, value, binary_text).encode("utf-8")
    tail = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    return f"{base}:P:{tail.decode('ascii')}"


def index_generation_key(account: str, region: str, table: str, key_prefix: str) -> str:
    """The key of a table's index generation ``X``: every page of its indexes that is
    filed under an attribute value not of the table's own key."""
    return f"{key_prefix}{_GENERATION_TAG}:{account}:{region}:{table}:X"


def generations_of_write(
    account: str,
    region: str,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    key_prefix: str,
    binary_text: BinaryText = "utf-8",
    index_values: Sequence[Mapping[str, Any]] = (),
    whole_indexes: bool = True,
) -> list[str]:
    """The generations a write of the items with these primary keys (wire format) to
    one table bumps: the table's ``T``, its index generation ``X`` unless
    ``whole_indexes`` is False, and the ``P`` of every key attribute's value and of
    every value in ``index_values`` (index key attributes of the item's old and new
    images: the stream knows them). Raises ValueError for a value the codec refuses."""
    bumped = [generation_key(account, region, table, key_prefix=key_prefix)]
    if whole_indexes:
        bumped.append(index_generation_key(account, region, table, key_prefix))
    for key in (*keys, *index_values):
        for name, value in key.items():
            generation = generation_key(
                account,
                region,
                table,
                key_prefix=key_prefix,
                partition=(name, value),
                binary_text=binary_text,
            )
            if generation not in bumped:
                bumped.append(generation)
    return bumped


def index_key_names_of(description: Mapping[str, Any]) -> tuple[str, ...]:
    """The key attribute names of a table's indexes (GSIs and LSIs), from a DescribeTable
    answer (``{"Table": {...}}``); empty for a table without indexes."""
    table = description["Table"]
    names: dict[str, None] = {}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in table.get(kind) or ():
            for part in index["KeySchema"]:
                name = part["AttributeName"]
                if not isinstance(name, str):
                    raise ValueError("DescribeTable answer has an index key that is not a name")
                names[name] = None
    return tuple(names)


def marker_key(generation: str) -> str:
    """The key of a generation's "written lately" marker (set before each bump, for the
    tombstone TTL: pages filed under the generation are not filled while it lives)."""
    return f"{generation}:w"


def random_generation() -> bytes:
    """A generation's first value: random, so that one evicted (or expired) and started
    again does not meet the pages of its earlier life."""
    return str(secrets.randbits(62)).encode("ascii")


def generation_value(raw: bytes | None) -> int | None:
    """A generation as the cache holds it (ASCII digits); None when missing or garbage."""
    if raw is None or not raw.isdigit() or len(raw) > 20:
        return None
    return int(raw)


# The page codec -------------------------------------------------------------------

_PAGE_FIELDS = ("Count", "ScannedCount")


def encode_page(parsed: Mapping[str, Any]) -> bytes:
    """A page entry: the items, counts and LastEvaluatedKey of DynamoDB's answer."""
    page: dict[str, Any] = {}
    if "Items" in parsed:  # not in a Select=COUNT answer
        page["Items"] = [_to_json({"M": item})["M"] for item in parsed["Items"]]
    for field in _PAGE_FIELDS:
        if field in parsed:
            page[field] = int(parsed[field])
    last = parsed.get("LastEvaluatedKey")
    if last is not None:
        page["LastEvaluatedKey"] = _to_json({"M": last})["M"]
    return PAGE_FORMAT + json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()


def decode_page(raw: bytes | None) -> dict[str, Any] | None:
    """The answer fields a page entry holds (fresh objects), or None for anything else."""
    if raw is None or not raw.startswith(PAGE_FORMAT):
        return None
    try:
        page = json.loads(raw[len(PAGE_FORMAT) :])
        if type(page) is not dict or type(page.get("Items", [])) is not list:
            return None
        for item in page.get("Items", []):
            _from_json({"M": item})
        if "LastEvaluatedKey" in page:
            _from_json({"M": page["LastEvaluatedKey"]})
        if any(type(page.get(f, 0)) is not int for f in _PAGE_FIELDS):
            return None
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        return None
    return page


# Understanding the request ----------------------------------------------------------


def _resolved_expressions(params: Mapping[str, Any]) -> dict[str, str]:
    """Each expression with its placeholders replaced by what they stand for, written so
    that no two different requests give the same text. Raises ValueError when a
    placeholder is missing, or given and unused (DynamoDB rejects both)."""
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    if not isinstance(names, Mapping) or not isinstance(values, Mapping):
        raise ValueError("placeholders")
    used: set[str] = set()
    resolved: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        used.add(token)
        if token.startswith("#"):
            name = names[token]
            if not isinstance(name, str):
                raise ValueError("a placeholder's name must be a str")
            return "#" + json.dumps(text_of(name), ensure_ascii=False)
        return ":" + json.dumps(_canonical_value(values[token]), ensure_ascii=False)

    for field in _EXPRESSIONS:
        expression = params.get(field)
        if expression is None:
            continue
        if not isinstance(expression, str) or '"' in expression:
            raise ValueError(field)
        resolved[field] = " ".join(_PLACEHOLDER.sub(replace, expression).split())
    if set(names) | set(values) != used:
        raise ValueError("a placeholder is given but not used")
    return resolved


# C901: one branch per DynamoDB attribute type (a closed set).
def _canonical_value(value: Any) -> Any:  # noqa: C901
    """An attribute value as JSON, equal for equal values (numbers normalized, binary as
    base64 of its bytes)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError("not an attribute value")
    ((tag, raw),) = value.items()
    if tag == "N":
        return {"N": normalize_number(raw)}
    if tag == "NS":
        return {"NS": [normalize_number(member) for member in raw]}
    if tag == "B":
        return {"B": base64.b64encode(binary_value(raw, "utf-8")).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(binary_value(m, "utf-8")).decode() for m in raw]}
    if tag == "M":
        return {"M": {str(k): _canonical_value(v) for k, v in sorted(raw.items())}}
    if tag == "L":
        return {"L": [_canonical_value(member) for member in raw]}
    if tag == "S":
        return {"S": text_of(raw)}  # a surrogate pair: the character botocore sends
    if tag == "SS":
        return {"SS": [text_of(member) for member in raw]}
    if tag in ("BOOL", "NULL"):
        return {tag: raw}
    raise ValueError(f"unknown attribute type {tag!r}")


def _basis(
    operation: str, table: str, params: Mapping[str, Any], resolved: Mapping[str, str]
) -> bytes:
    shape: dict[str, Any] = {"op": operation, "table": table, **resolved}
    for field in ("IndexName", "Select", "ScanIndexForward", "ReturnConsumedCapacity"):
        if field in params:
            shape[field] = params[field]
    for field in ("Limit", "Segment", "TotalSegments"):
        if field in params:
            number = params[field]
            if type(number) is not int:
                raise ValueError(field)
            shape[field] = number
    start = params.get("ExclusiveStartKey")
    if start is not None:
        shape["ExclusiveStartKey"] = _canonical_value({"M": start})
    text = json.dumps(shape, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).digest()


def _scope(operation: str, params: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(key attribute name, value) of the first equality of a Query's key condition (of
    the table or of an index); None for the whole table (a Scan, no equality understood)."""
    if operation != "Query":
        return None
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for match in _EQUALS.finditer(params["KeyConditionExpression"]):
        if match.group(1):
            name, placeholder = match.group(1), match.group(2)
        else:
            name, placeholder = match.group(4), match.group(3)
        value = values[placeholder]
        if not isinstance(value, Mapping) or len(value) != 1:
            raise ValueError("not an attribute value")
        if next(iter(value)) not in ("S", "N", "B"):
            raise ValueError("a key attribute's value is S, N or B")
        resolved = names.get(name, name)
        if not isinstance(resolved, str):
            raise ValueError("a placeholder's name must be a str")
        return resolved, value
    return None
