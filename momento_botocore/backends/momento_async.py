"""Momento Cache through the official ``momento`` SDK's ``CacheClientAsync``, on the
caller's event loop.

The async twin of :class:`~momento_botocore.backends.momento.MomentoBackend`: the same
arguments, the same answers and errors (both read the SDK through
``_momento_common``), the same cache identity. A gRPC ``aio`` channel belongs to the
event loop that made it, so the backend keeps one SDK client per running loop, made
on first use inside that loop: a hit is one ``await`` on the caller's loop, with no
thread in between.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

import grpc
from momento import CacheClientAsync
from momento.config import Configuration
from momento_wire_types import cacheclient_pb2_grpc as pb_grpc

from momento_botocore.backends._momento_common import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ITEM_BYTES,
    DEFAULT_TTL,
    Batch,
    GetBatchLookup,
    GetBatchUnsupported,
    Settings,
    WritePlan,
    add_answer,
    cache_name_of,
    check_delete,
    check_set,
    chunks,
    closed_error,
    data_channel,
    get_answer,
    get_batch_metadata,
    incr_answer,
    incr_plan,
    log_get_batch_unsupported,
    too_large,
    ttl,
)
from momento_botocore.backends.base import (
    UNREADABLE,
    BackendError,
    CounterEntry,
    Entry,
    NotACounterError,
)
from momento_botocore.config import DEFAULT_MOMENTO_REQUEST_TIMEOUT, CacheConfig

R = TypeVar("R")


class _LoopClient:
    """The SDK client (and the ``GetBatch`` channel) of one event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Connects lazily: nothing here waits on the network.
        self.sdk = CacheClientAsync(settings.configuration, settings.provider, DEFAULT_TTL)
        self._channel: Any = None
        self._stub: Any = None

    def get_batch_stub(self) -> Any:
        if self._stub is None:
            self._channel = data_channel(self.settings, grpc.aio)
            self._stub = pb_grpc.ScsStub(self._channel)  # type: ignore[no-untyped-call]
        return self._stub

    async def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        try:
            await self.sdk.__aexit__(None, None, None)
        finally:
            if channel is not None:
                await channel.close()


class AsyncMomentoBackend:
    """The :class:`~momento_botocore.backends.base.AsyncBackend` on a Momento cache.

    Arguments, limits, counters (:attr:`oversized`, :attr:`unreadable`) and answers as
    :class:`~momento_botocore.backends.momento.MomentoBackend`; ``get_many`` also asks
    for its keys with ``GetBatch`` (one call per 100 keys), or one key at a time
    (``max_concurrency`` lookups at once, as tasks) where the server does not implement
    it or with ``use_get_batch=False``; ``add_many`` and ``set_many`` make at most
    ``max_concurrency`` calls at once.

    Usable from any number of event loops (one at a time per loop, or many threads
    with a loop each): each loop gets its own SDK client, made on first use inside it.
    ``close()`` closes the client of the loop it runs on and schedules the closing of
    the others on their loops if they are running (a loop already closed took its
    channels with it); afterwards every call raises :class:`BackendError`.
    """

    def __init__(
        self,
        cache_name: str,
        *,
        credential_provider: Any = None,
        api_key: str | None = None,
        endpoint: str | None = None,
        request_timeout: float = DEFAULT_MOMENTO_REQUEST_TIMEOUT,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        configuration: Configuration | None = None,
        quiet_sdk_logs: bool = True,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        use_get_batch: bool = True,
    ) -> None:
        self._settings = Settings.checked(
            cache_name,
            credential_provider=credential_provider,
            api_key=api_key,
            endpoint=endpoint,
            request_timeout=request_timeout,
            max_item_bytes=max_item_bytes,
            configuration=configuration,
            quiet_sdk_logs=quiet_sdk_logs,
            max_concurrency=max_concurrency,
        )
        self.cache_name = cache_name
        self.max_item_bytes = max_item_bytes
        self.max_concurrency = max_concurrency
        #: True while ``get_many`` uses ``GetBatch`` (False once the server lacks it).
        self.use_get_batch = use_get_batch
        self.oversized = 0
        self.unreadable = 0
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(
        cls, config: CacheConfig, *, credential_provider: Any = None
    ) -> AsyncMomentoBackend:
        return cls(
            cache_name_of(config),
            credential_provider=credential_provider,
            api_key=config.momento_api_key,
            endpoint=config.momento_endpoint,
            request_timeout=config.momento_request_timeout,
        )

    def cache_identity(self) -> Hashable:
        """``("momento", endpoint, cache_name)``: the sync backend's for the same cache."""
        return self._settings.identity

    async def get(self, key: str) -> bytes | None:
        value = get_answer(await self._client("get").sdk.get(self.cache_name, key))
        if value is UNREADABLE:
            self.unreadable += 1
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``get`` for every key; raises :class:`BackendError` if the lookup failed
        (as the sync backend's ``get_many``: about one deadline at most)."""
        if len(keys) <= 1:
            return [await self.get(key) for key in keys]
        client = self._client("get_many")
        if self.use_get_batch:
            try:
                return await self._get_batched(client, keys)
            except GetBatchUnsupported as error:
                self.use_get_batch = False
                log_get_batch_unsupported(error)
        batch: Batch[str, bytes | None] = Batch("get_many", keys)
        await batch.run_async(self.get, self.max_concurrency)
        return batch.values()

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if too_large(key, value, self.max_item_bytes):
            self.oversized += 1
            return False
        client = self._client("add")
        return add_answer(
            await client.sdk.set_if_not_exists(self.cache_name, key, value, ttl(ttl_seconds))
        )

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if too_large(key, value, self.max_item_bytes):
            self.oversized += 1
            await self.delete(key)
            return
        client = self._client("set")
        check_set(await client.sdk.set(self.cache_name, key, value, ttl(ttl_seconds)))

    async def delete(self, key: str) -> None:
        check_delete(await self._client("delete").sdk.delete(self.cache_name, key))

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """As the sync backend's: one ``increment`` by 1, which also sets the TTL."""
        client = self._client("incr")
        return incr_answer(await client.sdk.increment(self.cache_name, key, 1, ttl(ttl_seconds)))

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        """As the sync backend's: per entry the new value or the error."""
        batch: Batch[CounterEntry, int | Exception] = Batch("incr_many", incr_plan(entries))
        await batch.run_async(self._incr_outcome, self.max_concurrency)
        return batch.outcomes()

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        """As the sync backend's: per entry True, False or the error that kept it out."""
        plan = WritePlan(entries, first_wins=True)
        return await self._write_many("add_many", plan, self.add)

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        """As the sync backend's: per entry None where written, else the error."""
        plan = WritePlan(entries, first_wins=False)
        return await self._write_many("set_many", plan, self.set)

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            clients = list(self._clients.items())
            self._clients.clear()
        running = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is running:
                await client.close()
            elif loop.is_running():
                closing = client.close()
                try:
                    asyncio.run_coroutine_threadsafe(closing, loop)
                except RuntimeError:  # closed meanwhile: its channels went with it
                    closing.close()

    async def _write_many(
        self, name: str, plan: WritePlan, write: Callable[[str, bytes, float], Awaitable[R]]
    ) -> list[R | Exception]:
        batch: Batch[Entry, R] = Batch(name, plan.sent)
        await batch.run_async(lambda entry: write(*entry), self.max_concurrency)
        return plan.results(batch.outcomes())

    async def _incr_outcome(self, entry: CounterEntry) -> int | Exception:
        try:
            return await self.incr(*entry)
        except NotACounterError as error:  # an answer: the batch goes on
            return error

    async def _get_batched(self, client: _LoopClient, keys: Sequence[str]) -> list[bytes | None]:
        parts = chunks(keys)
        if len(parts) == 1:
            return await self._get_batch(client, keys)
        batch: Batch[Sequence[str], list[bytes | None]] = Batch("get_many", parts)
        await batch.run_async(lambda part: self._get_batch(client, part), self.max_concurrency)
        if isinstance(batch.first_error, GetBatchUnsupported):
            raise batch.first_error
        return [value for part in batch.values() for value in part or ()]

    async def _get_batch(self, client: _LoopClient, keys: Sequence[str]) -> list[bytes | None]:
        """One ``GetBatch`` lookup (its retry and continuations included)."""
        stub = client.get_batch_stub()
        metadata = get_batch_metadata(self.cache_name, self._settings.provider)
        lookup = GetBatchLookup(
            keys, deadline=self._settings.deadline, retry_strategy=self._settings.retry_strategy
        )
        try:
            while (request := lookup.request()) is not None:
                call = stub.GetBatch(request.message, metadata=metadata, timeout=request.timeout)
                try:
                    async for response in call:
                        lookup.answer(response)
                except grpc.RpcError as error:
                    wait = lookup.failed(error)
                    if wait > 0:
                        await asyncio.sleep(wait)
                else:
                    lookup.ended()
                finally:
                    call.cancel()  # a call left early (an answer we cannot read) ends here
        except BackendError:
            raise
        except Exception as error:  # the channel closed under the call, ...
            raise BackendError(f"momento get_many failed: {error!r}") from error
        finally:
            self.unreadable += lookup.unreadable
        return lookup.values

    def _client(self, operation: str) -> _LoopClient:
        """The running loop's client, made on first use inside it."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise closed_error(operation)
            # A loop that is closed cannot close its client, and its channels are gone
            # with it: forget them (the client keeps its loop alive while it is held).
            for gone in [known for known in self._clients if known.is_closed()]:
                del self._clients[gone]
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = _LoopClient(self._settings)
            return client
