"""The botocore driver: the engine's decisions, with a (blocking) cache backend.

Each handler guards its whole body: nothing raises into a call. A failure is counted
and logged (rate-limited), and the call goes on as if uncached.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from momento_botocore import hooks
from momento_botocore.backends.base import Backend, bulk_add, bulk_incr, bulk_set
from momento_botocore.config import CacheConfig
from momento_botocore.core.call import (
    BATCH_KEY,
    GET_KEY,
    PAGE_KEY,
    WRITE_KEY,
    BatchCall,
    GetCall,
    PageCall,
    WriteCall,
)
from momento_botocore.core.engine import CacheWrites, Engine, add_missing_hits, identity_of
from momento_botocore.core.queries import PAGE_OPERATIONS
from momento_botocore.core.writes import WRITE_OPERATIONS, KeyNames, TouchedItem, key_names_of
from momento_botocore.counters import STATS, Stats
from momento_botocore.drivers.common import Answer as _Answer
from momento_botocore.drivers.common import DriverBase, one_per_key
from momento_botocore.log import ErrorReporter


class SyncDriver(DriverBase):
    """botocore's handlers (see hooks.HANDLERS) for one engine and backend."""

    def __init__(
        self,
        config: CacheConfig,
        backend: Backend,
        *,
        stats: Stats = STATS,
        reporter: ErrorReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
        engine: Engine | None = None,
    ) -> None:
        self.backend = backend
        self.engine = engine or Engine(
            config,
            identity_of(backend),
            find_client=hooks.client_for,
            stats=stats,
            reporter=reporter,
            clock=clock,
        )
        self._planners = {
            "BatchGetItem": self._plan_batch,
            **dict.fromkeys(WRITE_OPERATIONS, self._plan_write),
            **dict.fromkeys(PAGE_OPERATIONS, self._plan_page),
        }

    # Handlers --------------------------------------------------------------------

    def plan_request(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        engine = self.engine
        try:
            if not engine.active:
                return
            if model.name == "GetItem":  # the hot path, inline
                account = engine.accounts.of(context)
                call = engine.plan_get(params, context.get("client_region"), account)
                if call is not None:
                    # Last: a call in the context is looked up and filled, so it must
                    # only be there once the request asks for the full item.
                    context[GET_KEY] = call
                return
            planner = self._planners.get(model.name)
            if planner is not None:
                planner(model.name, params, context)
        except Exception as error:
            engine.failed("planning", "", error)

    def serve_from_cache(self, context: Any, **_: Any) -> _Answer | None:
        call: GetCall | None = context.get(GET_KEY)
        engine = self.engine
        if call is None or not engine.active:
            return None
        try:
            if engine.pending.active:
                self._retry_tombstones()
                if engine.skips_cache(call):
                    return None
            try:
                raw = self.backend.get(call.plan.key)
            except Exception as error:
                engine.lookup_failed(call, error)
                return None
            parsed, garbage = engine.answer_get(call, raw)
            if garbage is not None:
                self._perform(garbage)
            return None if parsed is None else (hooks.HIT_HTTP_RESPONSE, parsed)
        except Exception as error:
            call.fill = False  # to DynamoDB, and no fill
            self.engine.failed("cache lookup", call.plan.table, error)
            return None

    def fill_after_miss(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        try:
            call: GetCall | None = context.get(GET_KEY)
            if call is not None and call.sent:  # else a hit (never sent): nothing to do
                self._perform(self.engine.finish_get(call, http_response.status_code, parsed))
        except Exception as error:
            self.engine.failed("cache fill", "", error)

    def serve_page(self, context: Any, **_: Any) -> _Answer | None:
        """before-call of a Query or Scan: its generations, then its page."""
        call: PageCall | None = context.get(PAGE_KEY)
        engine = self.engine
        if call is None or not engine.active:
            return None
        try:
            if engine.pending.active:
                self._retry_tombstones()
                if engine.page_skips_cache(call):
                    return None
            try:
                found = self._get_many(engine.page_keys_to_read(call))
            except Exception as error:
                engine.page_lookup_failed(call, error)
                return None
            key, writes = engine.page_to_look_up(call, found)
            self._perform(writes)
            if key is None:
                return None
            try:
                raw = self.backend.get(key)
            except Exception as error:
                engine.page_lookup_failed(call, error)
                return None
            parsed, garbage = engine.answer_page(call, raw)
            self._perform(garbage)
            return None if parsed is None else (hooks.HIT_HTTP_RESPONSE, parsed)
        except Exception as error:
            call.fill = False
            engine.failed("cache lookup", call.plan.table, error)
            return None

    def fill_page(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        try:
            call: PageCall | None = context.get(PAGE_KEY)
            if call is not None and call.sent:
                self._perform(self.engine.finish_page(call, http_response.status_code, parsed))
        except Exception as error:
            self.engine.failed("cache fill", "", error)

    def merge_batch(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        call: BatchCall | None = context.get(BATCH_KEY)
        try:
            if call is not None:
                self._perform(self.engine.finish_batch(call, http_response.status_code, parsed))
        except Exception as error:
            self.engine.failed("merging a batch answer", "", error)
            with contextlib.suppress(Exception):  # DynamoDB answered only the misses
                add_missing_hits(call, parsed)

    def write_answered(self, http_response: Any, context: Any, **_: Any) -> None:
        call: WriteCall | None = context.get(WRITE_KEY)
        try:
            if call is not None:
                self._invalidate(self.engine.write_answered(call, http_response.status_code))
        except Exception as error:
            self.engine.failed("cache invalidation", "", error)
            self.engine.invalidation_failed(call)

    def write_failed(self, context: Any, **_: Any) -> None:
        call: WriteCall | None = context.get(WRITE_KEY)
        try:
            if call is not None:
                self._invalidate(self.engine.write_failed(call))
        except Exception as error:
            self.engine.failed("cache invalidation", "", error)
            self.engine.invalidation_failed(call)

    # Planning --------------------------------------------------------------------

    def _plan_page(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        call = engine.plan_page(
            operation, params, context.get("client_region"), engine.accounts.of(context)
        )
        if call is not None:
            context[PAGE_KEY] = call

    def _plan_batch(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        call = engine.plan_batch(params, context.get("client_region"), engine.accounts.of(context))
        if call is None:
            return
        if engine.pending.active:
            self._retry_tombstones()
        found = [self._look_up(call, table.table, table.keys) for table in call.plan.tables]
        request_items, garbage = engine.batch_found(call, found)
        self._perform(garbage)
        params["RequestItems"] = request_items
        context[BATCH_KEY] = call

    def _plan_write(self, operation: str, params: Any, context: Any) -> None:
        client = hooks.client_for(context)

        def describe(touch: TouchedItem) -> KeyNames:
            # Re-enters this client's handlers, which ignore DescribeTable.
            return key_names_of(client.describe_table(TableName=touch.table_name))

        engine = self.engine
        try:
            account = engine.accounts.of(context)
        except Exception as error:  # a bug if it happens
            engine.failed("finding the account of a client", "", error)
            account = None
        call = engine.plan_write(
            operation,
            params,
            context.get("client_region"),
            account,
            describe if client is not None else None,
        )
        if call is not None:
            context[WRITE_KEY] = call

    # Cache I/O -------------------------------------------------------------------

    def _look_up(self, call: BatchCall, table: str, keys: list[str]) -> list[bytes | None]:
        """The values of ``keys``; all misses (and no fill) when the lookup fails."""
        get_many = getattr(self.backend, "get_many", None)
        if get_many is None:
            return self._get_each(call, table, keys)
        try:
            return one_per_key(get_many(keys), keys)
        except Exception as error:
            self.engine.batch_lookup_failed(call, table, error)
            return [None] * len(keys)

    def _get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``; raises when the lookup fails."""
        get_many = getattr(self.backend, "get_many", None)
        if get_many is None:
            return [self.backend.get(key) for key in keys]
        return one_per_key(get_many(keys), keys)

    def _get_each(self, call: BatchCall, table: str, keys: list[str]) -> list[bytes | None]:
        """Per-key get, for backends without get_many: a failed key is a miss."""
        found: list[bytes | None] = []
        for key in keys:
            try:
                found.append(self.backend.get(key))
            except Exception as error:
                self.engine.batch_lookup_failed(call, table, error)
                found.append(None)
        return found

    def _invalidate(self, writes: CacheWrites | None) -> None:
        if writes is None:
            return
        self._perform(writes)
        if self.engine.pending.active:
            self._retry_tombstones()

    def _retry_tombstones(self) -> None:
        self._perform(self.engine.tombstone_round())

    def _perform(self, writes: CacheWrites | None) -> None:
        """Make the cache writes the engine asked for, and report how they went."""
        if not writes:
            return
        backend = self.backend
        added = bulk_add(backend, [entry for _, entry in writes.fills])
        written = bulk_set(backend, writes.tombstone_entries())
        deleted: list[Exception | None] = []
        for _, key in writes.garbage:
            try:
                backend.delete(key)
                deleted.append(None)
            except Exception as error:
                deleted.append(error)
        marked = bulk_set(backend, writes.marker_entries(self.engine.config.tombstone_ttl_seconds))
        bulk_add(backend, [entry for _, entry in writes.starts])  # markers, starts, bumps
        bumped = bulk_incr(backend, [(key, ttl) for _, key, ttl in writes.bumps])
        self.engine.settle(writes, added, written, deleted, bumped, marked)
