"""Which cached items a write request touches, and the key schemas needed to tell. Pure.

A write made through a registered client overwrites the entries of the items it
touches with TOMBSTONE (Contract 3) once DynamoDB has answered. ``UpdateItem``,
``DeleteItem`` and delete requests name their key; ``PutItem`` and put requests
carry a whole item, whose key attributes are picked out with the table's key
schema (from configuration, or learned once per table with ``DescribeTable``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from momento_botocore.keys import cache_key, parse_table

WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")

KeyNames = tuple[str, ...]


class KeySchemaUnknown(LookupError):
    """The key attributes of a table could not be found; its writes cannot be invalidated."""


@dataclass(frozen=True, slots=True)
class TouchedItem:
    """One item a write request names, by key or by its full new image."""

    table_name: str  # as given in the request: a name or an ARN
    region: str
    table: str
    key: Mapping[str, Any] | None = None
    item: Mapping[str, Any] | None = None


@dataclass(slots=True)
class WritePlan:
    """The entries one write call invalidates, carried through the call's context."""

    keys: list[tuple[str, str]]  # (table, cache key)
    sends: int = 0
    done: bool = False
    problems: list[tuple[str, Exception]] = field(default_factory=list)


def touched_items(
    operation: str, params: Mapping[str, Any], region: str | None
) -> list[TouchedItem]:
    """Every item ``params`` writes. Raises ValueError (or KeyError...) for malformed requests."""
    if operation in ("UpdateItem", "DeleteItem"):
        return [_touch(params["TableName"], region, key=params["Key"])]
    if operation == "PutItem":
        return [_touch(params["TableName"], region, item=params["Item"])]
    touched: list[TouchedItem] = []
    if operation == "BatchWriteItem":
        for name, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    touched.append(_touch(name, region, item=request["PutRequest"]["Item"]))
                if "DeleteRequest" in request:
                    touched.append(_touch(name, region, key=request["DeleteRequest"]["Key"]))
        return touched
    if operation == "TransactWriteItems":
        for action in params["TransactItems"]:
            if "Put" in action:
                put = action["Put"]
                touched.append(_touch(put["TableName"], region, item=put["Item"]))
            for kind in ("Update", "Delete"):
                if kind in action:
                    spec = action[kind]
                    touched.append(_touch(spec["TableName"], region, key=spec["Key"]))
        return touched
    raise ValueError(f"not a write operation: {operation}")


def _touch(
    name: str,
    region: str | None,
    *,
    key: Mapping[str, Any] | None = None,
    item: Mapping[str, Any] | None = None,
) -> TouchedItem:
    region_name, table = parse_table(name, region)
    return TouchedItem(name, region_name, table, key, item)


def plan_write(
    touched: list[TouchedItem],
    *,
    is_cached: Callable[[str], bool],
    key_names: Callable[[TouchedItem], KeyNames],
    key_prefix: str,
) -> WritePlan:
    """The cache keys to tombstone; items whose key cannot be made are listed as problems."""
    plan = WritePlan(keys=[])
    seen: set[str] = set()
    for touch in touched:
        if not is_cached(touch.table):
            continue
        try:
            key = touch.key
            if key is None:
                assert touch.item is not None
                key = {name: touch.item[name] for name in key_names(touch)}
            coded = cache_key(
                touch.region, touch.table, key, prefix=key_prefix, binary_text="utf-8"
            )
        except Exception as error:
            plan.problems.append((touch.table, error))
            continue
        if coded not in seen:
            seen.add(coded)
            plan.keys.append((touch.table, coded))
    return plan


class KeySchemas:
    """Key attribute names per (region, table): configured, or learned once and kept.

    ``describe`` (given per lookup) asks DynamoDB; a failed lookup is not retried
    for ``retry_after`` seconds, so a role without ``dynamodb:DescribeTable`` does
    not pay for a failing call on every write.
    """

    def __init__(
        self,
        configured: Callable[[str], KeyNames | None] = lambda _: None,
        *,
        retry_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = configured
        self._retry_after = retry_after
        self._clock = clock
        self._known: dict[tuple[str, str], KeyNames] = {}
        self._failed: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def learn(self, region: str, table: str, names: KeyNames) -> None:
        with self._lock:
            self._known[(region, table)] = names

    def names(
        self, region: str, table: str, describe: Callable[[], KeyNames] | None = None
    ) -> KeyNames:
        """The key attribute names, asking ``describe`` when not known yet."""
        configured = self._configured(table)
        if configured is not None:
            return configured
        where = (region, table)
        with self._lock:
            known = self._known.get(where)
            failed_at = self._failed.get(where)
        if known is not None:
            return known
        if describe is None:
            raise KeySchemaUnknown(f"key schema of {table!r} unknown and no client to ask")
        if failed_at is not None and self._clock() - failed_at < self._retry_after:
            raise KeySchemaUnknown(f"key schema of {table!r} unknown (DescribeTable failed)")
        try:
            names = describe()  # outside the lock: it is a network call
        except Exception as error:
            with self._lock:
                self._failed[where] = self._clock()
            raise KeySchemaUnknown(f"DescribeTable {table!r} failed: {error}") from error
        self.learn(region, table, names)
        return names


def key_names_of(description: Mapping[str, Any]) -> KeyNames:
    """Key attribute names from a DescribeTable answer (``{"Table": {...}}``)."""
    names = tuple(part["AttributeName"] for part in description["Table"]["KeySchema"])
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError("DescribeTable answer has no key schema")
    return names
