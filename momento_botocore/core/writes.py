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

from momento_botocore.core.fastpath import cache_key, parse_table

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
    #: The table's owner: from its ARN, else the client's; None when unknown.
    account: str | None = None


@dataclass(slots=True)
class WritePlan:
    """The entries one write call invalidates, carried through the call's context."""

    keys: list[tuple[str, str]]  # (table, cache key)
    #: Cached tables written by a client whose account is unknown: nothing invalidated.
    no_account: list[str] = field(default_factory=list)
    sends: int = 0
    done: bool = False
    problems: list[tuple[str, Exception]] = field(default_factory=list)
    #: (account, region, table, primary key) of each keyed item: the generations of
    #: its Query and Scan pages (core/queries.py) are bumped from these.
    item_keys: list[tuple[str, str, str, Mapping[str, Any]]] = field(default_factory=list)

    def keyless_tables(self) -> list[str]:
        """Tables with a written item whose cache key could not be made (a refused key,
        an unknown schema or account), once each: only the whole table can be guarded."""
        return list(dict.fromkeys([*(table for table, _ in self.problems), *self.no_account]))


# C901: one branch per write operation and its request shape (a closed set).
def touched_items(  # noqa: C901
    operation: str, params: Mapping[str, Any], region: str | None, account: str | None
) -> list[TouchedItem]:
    """Every item ``params`` writes; ``region`` and ``account`` are the client's.
    Raises ValueError (or KeyError...) for malformed requests."""
    if operation in ("UpdateItem", "DeleteItem"):
        return [_touch(params["TableName"], region, account, key=params["Key"])]
    if operation == "PutItem":
        return [_touch(params["TableName"], region, account, item=params["Item"])]
    touched: list[TouchedItem] = []
    if operation == "BatchWriteItem":
        for name, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    touched.append(
                        _touch(name, region, account, item=request["PutRequest"]["Item"])
                    )
                if "DeleteRequest" in request:
                    touched.append(
                        _touch(name, region, account, key=request["DeleteRequest"]["Key"])
                    )
        return touched
    if operation == "TransactWriteItems":
        for action in params["TransactItems"]:
            if "Put" in action:
                put = action["Put"]
                touched.append(_touch(put["TableName"], region, account, item=put["Item"]))
            for kind in ("Update", "Delete"):
                if kind in action:
                    spec = action[kind]
                    touched.append(_touch(spec["TableName"], region, account, key=spec["Key"]))
        return touched
    raise ValueError(f"not a write operation: {operation}")


def _touch(
    name: str,
    region: str | None,
    account: str | None,
    *,
    key: Mapping[str, Any] | None = None,
    item: Mapping[str, Any] | None = None,
) -> TouchedItem:
    owner, region_name, table = parse_table(name, region, account)
    return TouchedItem(name, region_name, table, key, item, owner)


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
        if touch.account is None:
            plan.no_account.append(touch.table)
            continue
        try:
            key = touch.key
            if key is None:
                assert touch.item is not None
                key = {name: touch.item[name] for name in key_names(touch)}
            coded = cache_key(
                touch.account,
                touch.region,
                touch.table,
                key,
                prefix=key_prefix,
                binary_text="utf-8",
            )
        except Exception as error:
            plan.problems.append((touch.table, error))
            continue
        if coded not in seen:
            seen.add(coded)
            plan.keys.append((touch.table, coded))
            plan.item_keys.append((touch.account, touch.region, touch.table, key))
    return plan


class KeySchemas:
    """Key attribute names per (account, region, table): configured, or learned once and kept.

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
        self._known: dict[tuple[str | None, str, str], KeyNames] = {}
        self._failed: dict[tuple[str | None, str, str], float] = {}
        self._lock = threading.Lock()

    def learn(
        self, region: str, table: str, names: KeyNames, *, account: str | None = None
    ) -> None:
        with self._lock:
            self._known[(account, region, table)] = names

    def known(self, region: str, table: str, *, account: str | None = None) -> bool:
        """True when the key names are configured, learned, or failed to be learned
        a short while ago (not worth asking again yet)."""
        if self._configured(table) is not None:
            return True
        where = (account, region, table)
        with self._lock:
            if where in self._known:
                return True
            failed_at = self._failed.get(where)
        return failed_at is not None and self._clock() - failed_at < self._retry_after

    def peek(self, region: str, table: str, *, account: str | None = None) -> KeyNames | None:
        """The key attribute names if configured or learned; None (never asks) else."""
        configured = self._configured(table)
        if configured is not None:
            return configured
        with self._lock:
            return self._known.get((account, region, table))

    def failed(self, region: str, table: str, *, account: str | None = None) -> None:
        """Asking DynamoDB for the key schema failed: not asked again for a while."""
        with self._lock:
            self._failed[(account, region, table)] = self._clock()

    def names(
        self,
        region: str,
        table: str,
        describe: Callable[[], KeyNames] | None = None,
        *,
        account: str | None = None,
    ) -> KeyNames:
        """The key attribute names, asking ``describe`` when not known yet. Two
        accounts' tables of one name may have different schemas."""
        configured = self._configured(table)
        if configured is not None:
            return configured
        where = (account, region, table)
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
        self.learn(region, table, names, account=account)
        return names


def key_names_of(description: Mapping[str, Any]) -> KeyNames:
    """Key attribute names from a DescribeTable answer (``{"Table": {...}}``)."""
    names = tuple(part["AttributeName"] for part in description["Table"]["KeySchema"])
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError("DescribeTable answer has no key schema")
    return names
