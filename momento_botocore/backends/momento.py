"""Momento Cache through the official ``momento`` SDK (sync ``CacheClient``).

SDK calls never raise: each one returns a response object, and every response is
checked here. An ``Error`` response raises :class:`BackendError` (the read hooks then
treat the call as a miss, the stream invalidator reports the record as failed); a
miss is None. What this backend shares with the async one
(:class:`~momento_botocore.backends.momento_async.AsyncMomentoBackend`) is in
``_momento_common``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import grpc.experimental
from momento import CacheClient
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
    base_configuration,
    cache_name_of,
    check_delete,
    check_set,
    chunks,
    closed_error,
    credential_provider_for,
    data_channel,
    get_answer,
    get_batch_metadata,
    incr_answer,
    incr_plan,
    log_get_batch_unsupported,
    sdk_configuration,
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

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_ITEM_BYTES",
    "MomentoBackend",
    "base_configuration",
    "credential_provider_for",
    "sdk_configuration",
]

R = TypeVar("R")


class MomentoBackend:
    """The production backend: entries in a Momento cache.

    ``credential_provider`` (a ``momento.CredentialProvider``) wins over ``api_key``
    and ``endpoint``, which win over ``MOMENTO_API_KEY`` / ``MOMENTO_ENDPOINT``.
    ``request_timeout`` is the deadline of each call, retries included.
    Entries larger than ``max_item_bytes`` are not written: ``add`` returns False,
    ``set`` deletes the key instead (so no older value outlives the write), and
    :attr:`oversized` counts them. A stored value over the SDK's receive limit is
    returned as :data:`~momento_botocore.backends.base.UNREADABLE` (garbage, deleted by
    the reader), not as an error; :attr:`unreadable` counts them. ``quiet_sdk_logs``
    drops the SDK's per-request failure warnings (logger ``momentosdk``): the read
    path reports failures itself, at most once a minute per kind.

    ``get_many`` asks for its keys in one call of the protocol's ``GetBatch`` (up to
    100 keys a call; the SDK has no method for it, so it goes over a second channel
    to the same endpoint, opened on first use). Where the server does not implement
    ``GetBatch``, or with ``use_get_batch=False``, it looks keys up one by one,
    concurrently on the one SDK client. ``get_many``, ``add_many`` and ``set_many``
    make at most ``max_concurrency`` calls at a time: the calling thread and a pool of
    ``max_concurrency - 1`` threads, started on first use and stopped by ``close()``.
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
        settings = Settings.checked(
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
        self._settings = settings
        self.cache_name = cache_name
        self.max_item_bytes = max_item_bytes
        self.max_concurrency = max_concurrency
        #: True while ``get_many`` uses ``GetBatch`` (False once the server lacks it).
        self.use_get_batch = use_get_batch
        self.oversized = 0
        self.unreadable = 0
        # Connects lazily: nothing here waits on the network.
        self._client = CacheClient(settings.configuration, settings.provider, DEFAULT_TTL)
        self._pool: ThreadPoolExecutor | None = None
        self._batch_channel: Any = None
        self._batch_stub: Any = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: CacheConfig, *, credential_provider: Any = None) -> MomentoBackend:
        return cls(
            cache_name_of(config),
            credential_provider=credential_provider,
            api_key=config.momento_api_key,
            endpoint=config.momento_endpoint,
            request_timeout=config.momento_request_timeout,
        )

    def cache_identity(self) -> Hashable:
        """``("momento", endpoint, cache_name)``: equal for every backend on the same
        cache (a process keeps one memory of unwritten tombstones per cache)."""
        return self._settings.identity

    def get(self, key: str) -> bytes | None:
        value = get_answer(self._client.get(self.cache_name, key))
        if value is UNREADABLE:
            self.unreadable += 1
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``get`` for every key; raises :class:`BackendError` if the lookup failed.

        With ``GetBatch``: one call per 100 keys, each with the deadline ``get`` has
        (its retry included). One by one: each lookup has that deadline; after the
        first failure no other lookup starts, and the call returns (raises) once the
        lookups in flight have ended. Either way a stalled server costs about one
        deadline; answers slow but within it are not failures.
        """
        if len(keys) <= 1:
            return [self.get(key) for key in keys]
        if self.use_get_batch:
            try:
                return self._get_batched(keys)
            except GetBatchUnsupported as error:
                self.use_get_batch = False
                log_get_batch_unsupported(error)
        batch: Batch[str, bytes | None] = Batch("get_many", keys)
        self._run(batch, self.get)
        return batch.values()

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        """``add`` for every entry, concurrently, as ``get_many`` looks keys up one by
        one: a stalled server costs about one deadline. Per entry: True (stored), False
        (a value was there, or too large), or the error that kept it out (entries not
        tried after the first failure get a :class:`BackendError`). A repeated key:
        only its first entry is sent (the others could not be stored after it)."""
        return self._write_many("add_many", WritePlan(entries, first_wins=True), self.add)

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        """``set`` for every entry, concurrently, as :meth:`add_many`: None where
        written, else the error that kept it out. A repeated key: only its last entry
        is sent (what ``set`` one by one leaves); the earlier ones share its outcome."""
        return self._write_many("set_many", WritePlan(entries, first_wins=False), self.set)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if too_large(key, value, self.max_item_bytes):
            self.oversized += 1
            return False
        return add_answer(
            self._client.set_if_not_exists(self.cache_name, key, value, ttl(ttl_seconds))
        )

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if too_large(key, value, self.max_item_bytes):
            self.oversized += 1
            self.delete(key)
            return
        check_set(self._client.set(self.cache_name, key, value, ttl(ttl_seconds)))

    def incr(self, key: str, ttl_seconds: float) -> int:
        """The SDK's ``increment`` by 1, with ``ttl_seconds``: Momento's ``Increment``
        sets the TTL it is given on every call, so one call counts and refreshes the
        TTL. Not retried (not idempotent): an error means it may or may not have
        counted."""
        return incr_answer(self._client.increment(self.cache_name, key, 1, ttl(ttl_seconds)))

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        """``incr`` for every entry, concurrently, as :meth:`add_many` writes: a stalled
        server costs about one deadline. Per entry the new value, or the error that
        kept it from counting (a value that is not a counter does not stop the
        others; after any other failure no further call starts)."""
        batch: Batch[CounterEntry, int | Exception] = Batch("incr_many", incr_plan(entries))
        self._run(batch, self._incr_outcome)
        return batch.outcomes()

    def delete(self, key: str) -> None:
        check_delete(self._client.delete(self.cache_name, key))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            channel, self._batch_channel, self._batch_stub = self._batch_channel, None, None
        if pool is not None:
            # Calls in flight end within their deadline; none starts on a closed client.
            pool.shutdown(wait=True, cancel_futures=True)
        if channel is not None:
            channel.close()
        self._client.__exit__(None, None, None)

    def _write_many(
        self, name: str, plan: WritePlan, write: Callable[[str, bytes, float], R]
    ) -> list[R | Exception]:
        batch: Batch[Entry, R] = Batch(name, plan.sent)
        self._run(batch, lambda entry: write(*entry))
        return plan.results(batch.outcomes())

    def _incr_outcome(self, entry: CounterEntry) -> int | Exception:
        try:
            return self.incr(*entry)
        except NotACounterError as error:  # an answer: the batch goes on
            return error

    def _get_batched(self, keys: Sequence[str]) -> list[bytes | None]:
        parts = chunks(keys)
        if len(parts) == 1:
            return self._get_batch(keys)
        batch: Batch[Sequence[str], list[bytes | None]] = Batch("get_many", parts)
        self._run(batch, self._get_batch)
        if isinstance(batch.first_error, GetBatchUnsupported):
            raise batch.first_error
        return [value for part in batch.values() for value in part or ()]

    def _get_batch(self, keys: Sequence[str]) -> list[bytes | None]:
        """One ``GetBatch`` lookup (its retry and continuations included)."""
        stub = self._get_batch_stub()
        metadata = get_batch_metadata(self.cache_name, self._settings.provider)
        lookup = GetBatchLookup(
            keys, deadline=self._settings.deadline, retry_strategy=self._settings.retry_strategy
        )
        try:
            while (request := lookup.request()) is not None:
                call = stub.GetBatch(request.message, metadata=metadata, timeout=request.timeout)
                try:
                    for response in call:
                        lookup.answer(response)
                except grpc.RpcError as error:
                    wait = lookup.failed(error)
                    if wait > 0:
                        time.sleep(wait)
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

    def _get_batch_stub(self) -> Any:
        with self._lock:
            if self._closed:
                raise closed_error("get_many")
            if self._batch_stub is None:
                # A stream read in the calling thread (no thread hand-off per answer):
                # about a third less CPU per GetBatch (grpcio 1.85).
                single_thread = (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)
                self._batch_channel = data_channel(self._settings, grpc, [single_thread])
                self._batch_stub = pb_grpc.ScsStub(self._batch_channel)  # type: ignore[no-untyped-call]
            return self._batch_stub

    def _run(self, batch: Batch[Any, R], call: Callable[[Any], R]) -> None:
        """Work ``batch`` off on the calling thread and up to ``max_concurrency - 1``
        pool threads; returns when no call of it is in flight any more."""
        helpers: list[Future[None]] = []
        wanted = min(self.max_concurrency, len(batch)) - 1
        if wanted > 0:
            try:
                pool = self._batch_pool()
                # extend keeps the helpers submitted before a submit that raises
                helpers.extend(pool.submit(batch.work, call) for _ in range(wanted))
            except RuntimeError as error:  # closed, or the interpreter is exiting
                batch.fail(BackendError(f"momento {batch.name} failed: {error}"))
        batch.work(call)  # the calling thread works too: progress even if the pool is busy
        for helper in helpers:
            helper.cancel()  # not started: the items are all taken (or given up)
        for helper in helpers:
            if not helper.cancelled():
                helper.result()  # ends with the call it is making, if any

    def _batch_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the backend is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency - 1, thread_name_prefix="momento-botocore-get"
                )
            return self._pool
