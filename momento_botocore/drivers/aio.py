"""The aiobotocore driver: the engine's decisions, with an async cache backend.

aiobotocore's emitter awaits coroutine handlers, so the cache calls run on the
caller's event loop: a hit costs one awaited lookup, no thread hop. The handlers
have the sync driver's names (hooks.HANDLERS) and the same guards: nothing raises
into a call. The only blocking work a call can need, an STS lookup of a client's
account, runs in a worker thread (accounts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from momento_botocore import hooks
from momento_botocore.backends.base import (
    AsyncBackend,
    Backend,
    CounterEntry,
    Entry,
    async_bulk_add,
    async_bulk_incr,
    async_bulk_set,
    bulk_add,
    bulk_incr,
    bulk_set,
    cache_identity,
    no_counters,
)
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
from momento_botocore.core.engine import CacheWrites, Engine, add_missing_hits
from momento_botocore.core.queries import PAGE_OPERATIONS
from momento_botocore.core.writes import WRITE_OPERATIONS, key_names_of
from momento_botocore.drivers.common import Answer as _Answer
from momento_botocore.drivers.common import DriverBase, one_per_key


class AsyncDriver(DriverBase):
    """aiobotocore's handlers (see hooks.HANDLERS) for one engine and async backend."""

    def __init__(self, engine: Engine, backend: AsyncBackend) -> None:
        self.engine = engine
        self.backend = backend
        self._planners = {
            "GetItem": self._plan_get,
            "BatchGetItem": self._plan_batch,
            **dict.fromkeys(WRITE_OPERATIONS, self._plan_write),
            **dict.fromkeys(PAGE_OPERATIONS, self._plan_page),
        }

    # Handlers --------------------------------------------------------------------

    async def plan_request(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        try:
            planner = self._planners.get(model.name)
            if planner is not None and self.engine.active:
                await planner(model.name, params, context)
        except Exception as error:
            self.engine.failed("planning", "", error)

    async def serve_from_cache(self, context: Any, **_: Any) -> _Answer | None:
        call: GetCall | None = context.get(GET_KEY)
        engine = self.engine
        if call is None or not engine.active:
            return None
        try:
            if engine.pending.active:
                await self._retry_tombstones()
                if engine.skips_cache(call):
                    return None
            try:
                raw = await self.backend.get(call.plan.key)
            except Exception as error:
                engine.lookup_failed(call, error)
                return None
            parsed, garbage = engine.answer_get(call, raw)
            if garbage is not None:
                await self._perform(garbage)
            return None if parsed is None else (hooks.HIT_HTTP_RESPONSE, parsed)
        except Exception as error:
            call.fill = False  # to DynamoDB, and no fill
            self.engine.failed("cache lookup", call.plan.table, error)
            return None

    async def fill_after_miss(
        self, http_response: Any, parsed: Any, context: Any, **_: Any
    ) -> None:
        try:
            call: GetCall | None = context.get(GET_KEY)
            if call is not None and call.sent:  # else a hit (never sent): nothing to do
                writes = self.engine.finish_get(call, http_response.status_code, parsed)
                await self._perform(writes)
        except Exception as error:
            self.engine.failed("cache fill", "", error)

    async def serve_page(self, context: Any, **_: Any) -> _Answer | None:
        """before-call of a Query or Scan: its generations, then its page."""
        call: PageCall | None = context.get(PAGE_KEY)
        engine = self.engine
        if call is None or not engine.active:
            return None
        try:
            if engine.pending.active:
                await self._retry_tombstones()
                if engine.page_skips_cache(call):
                    return None
            try:
                keys = engine.page_keys_to_read(call)
                found = one_per_key(await self.backend.get_many(keys), keys)
            except Exception as error:
                engine.page_lookup_failed(call, error)
                return None
            key, writes = engine.page_to_look_up(call, found)
            await self._perform(writes)
            if key is None:
                return None
            try:
                raw = await self.backend.get(key)
            except Exception as error:
                engine.page_lookup_failed(call, error)
                return None
            parsed, garbage = engine.answer_page(call, raw)
            await self._perform(garbage)
            return None if parsed is None else (hooks.HIT_HTTP_RESPONSE, parsed)
        except Exception as error:
            call.fill = False
            engine.failed("cache lookup", call.plan.table, error)
            return None

    async def fill_page(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        try:
            call: PageCall | None = context.get(PAGE_KEY)
            if call is not None and call.sent:
                await self._perform(
                    self.engine.finish_page(call, http_response.status_code, parsed)
                )
        except Exception as error:
            self.engine.failed("cache fill", "", error)

    async def merge_batch(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        call: BatchCall | None = context.get(BATCH_KEY)
        try:
            if call is not None:
                writes = self.engine.finish_batch(call, http_response.status_code, parsed)
                await self._perform(writes)
        except Exception as error:
            self.engine.failed("merging a batch answer", "", error)
            with contextlib.suppress(Exception):  # DynamoDB answered only the misses
                add_missing_hits(call, parsed)

    async def write_answered(self, http_response: Any, context: Any, **_: Any) -> None:
        call: WriteCall | None = context.get(WRITE_KEY)
        try:
            if call is not None:
                await self._invalidate(self.engine.write_answered(call, http_response.status_code))
        except Exception as error:
            self.engine.failed("cache invalidation", "", error)
            self.engine.invalidation_failed(call)

    async def write_failed(self, context: Any, **_: Any) -> None:
        call: WriteCall | None = context.get(WRITE_KEY)
        try:
            if call is not None:
                await self._invalidate(self.engine.write_failed(call))
        except Exception as error:
            self.engine.failed("cache invalidation", "", error)
            self.engine.invalidation_failed(call)

    # Planning --------------------------------------------------------------------

    async def _plan_get(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        account = await engine.accounts.of_async(context)
        call = engine.plan_get(params, context.get("client_region"), account)
        if call is not None:
            context[GET_KEY] = call  # last: see SyncDriver.plan_request

    async def _plan_page(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        account = await engine.accounts.of_async(context)
        call = engine.plan_page(operation, params, context.get("client_region"), account)
        if call is not None:
            context[PAGE_KEY] = call

    async def _plan_batch(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        account = await engine.accounts.of_async(context)
        call = engine.plan_batch(params, context.get("client_region"), account)
        if call is None:
            return
        if engine.pending.active:
            await self._retry_tombstones()
        found = [await self._look_up(call, table.table, table.keys) for table in call.plan.tables]
        request_items, garbage = engine.batch_found(call, found)
        await self._perform(garbage)
        params["RequestItems"] = request_items
        context[BATCH_KEY] = call

    async def _plan_write(self, operation: str, params: Any, context: Any) -> None:
        engine = self.engine
        try:
            account = await engine.accounts.of_async(context)
        except Exception as error:  # a bug if it happens
            engine.failed("finding the account of a client", "", error)
            account = None
        region = context.get("client_region")
        client = hooks.client_for(context)
        if client is not None:  # the key schemas it needs, asked before planning
            for touch in engine.schemas_to_learn(operation, params, region, account):
                try:
                    # Re-enters this client's handlers, which ignore DescribeTable.
                    answer = client.describe_table(TableName=touch.table_name)
                    if inspect.isawaitable(answer):
                        answer = await answer
                    names = key_names_of(answer)
                except Exception:
                    engine.schemas.failed(touch.region, touch.table, account=touch.account)
                    continue
                engine.schemas.learn(touch.region, touch.table, names, account=touch.account)
        call = engine.plan_write(operation, params, region, account)
        if call is not None:
            context[WRITE_KEY] = call

    # Cache I/O -------------------------------------------------------------------

    async def _look_up(self, call: BatchCall, table: str, keys: list[str]) -> list[bytes | None]:
        """The values of ``keys``; all misses (and no fill) when the lookup fails."""
        try:
            return one_per_key(await self.backend.get_many(keys), keys)
        except Exception as error:
            self.engine.batch_lookup_failed(call, table, error)
            return [None] * len(keys)

    async def _invalidate(self, writes: CacheWrites | None) -> None:
        if writes is None:
            return
        await self._perform(writes)
        if self.engine.pending.active:
            await self._retry_tombstones()

    async def _retry_tombstones(self) -> None:
        await self._perform(self.engine.tombstone_round())

    async def _perform(self, writes: CacheWrites | None) -> None:
        """Make the cache writes the engine asked for, and report how they went."""
        if not writes:
            return
        backend = self.backend
        added = await async_bulk_add(backend, [entry for _, entry in writes.fills])
        written = await async_bulk_set(backend, writes.tombstone_entries())
        deleted: list[Exception | None] = []
        for _, key in writes.garbage:
            try:
                await backend.delete(key)
                deleted.append(None)
            except Exception as error:
                deleted.append(error)
        ttl = self.engine.config.tombstone_ttl_seconds
        marked = await async_bulk_set(backend, writes.marker_entries(ttl))  # before the bumps
        await async_bulk_add(backend, [entry for _, entry in writes.starts])
        bumped = await async_bulk_incr(backend, [(key, ttl) for _, key, ttl in writes.bumps])
        self.engine.settle(writes, added, written, deleted, bumped, marked)


class ThreadedAsyncBackend:
    """A blocking :class:`Backend` for aiobotocore sessions: each call runs in a worker
    thread, so the event loop never waits on it (one thread hop per call)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self.backend.get, key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        get_many = getattr(self.backend, "get_many", None)
        if get_many is not None:
            return list(await asyncio.to_thread(get_many, keys))
        return list(await asyncio.to_thread(lambda: [self.backend.get(key) for key in keys]))

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return await asyncio.to_thread(self.backend.add, key, value, ttl_seconds)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await asyncio.to_thread(self.backend.set, key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.backend.delete, key)

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        return await asyncio.to_thread(bulk_add, self.backend, entries)

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        return await asyncio.to_thread(bulk_set, self.backend, entries)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        incr: Callable[[str, float], int] | None = getattr(self.backend, "incr", None)
        if incr is None:
            raise no_counters(self.backend)
        return await asyncio.to_thread(incr, key, ttl_seconds)

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        return await asyncio.to_thread(bulk_incr, self.backend, entries)

    async def close(self) -> None:
        await asyncio.to_thread(self.backend.close)

    def cache_identity(self) -> Hashable:
        return cache_identity(self.backend)
