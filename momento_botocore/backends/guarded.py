"""A backend wrapper that puts a circuit breaker in front of any backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from momento_botocore.backends.base import (
    AsyncBackend,
    Backend,
    BackendError,
    BatchBackend,
    CounterEntry,
    Entry,
    NotACounterError,
    no_counters,
    write_each,
)
from momento_botocore.breaker import BreakerState, CircuitBreaker
from momento_botocore.identity import cache_identity
from momento_botocore.log import logger

T = TypeVar("T")
E = TypeVar("E")


class CircuitOpenError(BackendError):
    """The breaker is open: the call was refused without touching the network."""


class _BreakerGate:
    """What the sync and the async wrapper share: asking the breaker before a call,
    telling it how the call went, and logging when it opens or closes."""

    breaker: CircuitBreaker

    def _check(self, name: str) -> None:
        if not self.breaker.allow():
            raise CircuitOpenError(
                f"{name} refused: the circuit breaker is open after "
                f"{self.breaker.failure_threshold} consecutive cache failures"
            )

    def _judge_many(self, results: Sequence[object]) -> None:
        """A bulk write is one call: a failure if any entry failed (a value that is not
        a counter is an answer, not a failure)."""
        failed = next((result for result in results if _failed(result)), None)
        if isinstance(failed, Exception):
            self._failure(failed)
        else:
            self._success()

    def _judge_error(self, error: Exception) -> None:
        """A call that raised: a failure, unless the cache answered (not a counter)."""
        if isinstance(error, NotACounterError):
            self._success()
        else:
            self._failure(error)

    def _failure(self, error: Exception) -> None:
        was_closed = self.breaker.state is BreakerState.CLOSED
        opened = self.breaker.times_opened
        self.breaker.record_failure()
        if was_closed and self.breaker.times_opened > opened:
            logger.warning(
                "momento-botocore: circuit breaker open after %d consecutive cache "
                "failures (last: %s); cache calls are skipped, probed every %.3g s",
                self.breaker.failure_threshold,
                error,
                self.breaker.cooldown,
            )

    def _success(self) -> None:
        if self.breaker.state is not BreakerState.CLOSED:
            self.breaker.record_success()
            logger.info("momento-botocore: circuit breaker closed: the cache answers again")
        else:
            self.breaker.record_success()


class CircuitBreakerBackend(_BreakerGate):
    """Every call goes through ``breaker``: failures count, and while it is open,
    calls raise :class:`CircuitOpenError` at once.

    Any exception from the wrapped backend is a failure; a miss (None) or a refused
    add (False) is a success: the backend answered. A ``get_many`` is one call:
    one check, one success or failure, however many keys it has. So are an
    ``add_many``, a ``set_many`` and an ``incr_many`` when the wrapped backend has
    them (one failure if any entry failed); without them, each entry is one call, as
    ``add``/``set``/``incr``. An ``incr`` that finds a value that is not a counter
    (:class:`~momento_botocore.backends.base.NotACounterError`) is an answer too. In
    front of a backend without counters, ``incr`` and ``incr_many`` raise
    :class:`BackendError` without asking the breaker.
    """

    def __init__(self, backend: Backend, breaker: CircuitBreaker | None = None) -> None:
        self.backend = backend
        self.breaker = breaker if breaker is not None else CircuitBreaker()

    def get(self, key: str) -> bytes | None:
        return self._call("get", lambda: self.backend.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []  # no call to make: leave the breaker (and a half-open probe) alone
        backend = self.backend
        if isinstance(backend, BatchBackend):
            return self._call("get_many", lambda: backend.get_many(keys))
        get = backend.get
        return self._call("get_many", lambda: [get(key) for key in keys])

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self._call("add", lambda: self.backend.add(key, value, ttl_seconds))

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._call("set", lambda: self.backend.set(key, value, ttl_seconds))

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        add_many = getattr(self.backend, "add_many", None)
        if add_many is None:
            return write_each(entries, lambda entry: self.add(*entry))
        return self._call_many("add_many", entries, add_many)

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        set_many = getattr(self.backend, "set_many", None)
        if set_many is None:
            return write_each(entries, lambda entry: self.set(*entry))
        return self._call_many("set_many", entries, set_many)

    def incr(self, key: str, ttl_seconds: float) -> int:
        incr: Callable[[str, float], int] | None = getattr(self.backend, "incr", None)
        if incr is None:  # nothing to ask the cache: the breaker is left alone
            raise no_counters(self.backend)
        return self._call("incr", lambda: incr(key, ttl_seconds))

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        incr_many = getattr(self.backend, "incr_many", None)
        if incr_many is None:
            if not hasattr(self.backend, "incr"):
                raise no_counters(self.backend)
            return write_each(entries, lambda entry: self.incr(*entry))
        return self._call_many("incr_many", entries, incr_many)

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self.backend.delete(key))

    def close(self) -> None:
        self.backend.close()

    def cache_identity(self) -> Hashable:
        """The wrapped backend's cache: the breaker does not change where entries live."""
        return cache_identity(self.backend)

    def _call(self, name: str, call: Callable[[], T]) -> T:
        self._check(name)
        try:
            result = call()
        except Exception as error:
            self._judge_error(error)
            raise
        self._success()
        return result

    def _call_many(
        self, name: str, entries: Sequence[E], call: Callable[[Sequence[E]], list[T]]
    ) -> list[T]:
        """One breaker call for a bulk write: a failure if it raised or any entry failed."""
        if not entries:
            return []  # no call to make: leave the breaker (and a half-open probe) alone
        self._check(name)
        try:
            results = call(entries)
        except Exception as error:
            self._failure(error)
            raise
        self._judge_many(results)
        return results


class AsyncCircuitBreakerBackend(_BreakerGate):
    """:class:`CircuitBreakerBackend` in front of an
    :class:`~momento_botocore.backends.base.AsyncBackend`: the same rules (one check
    and one outcome per call, ``get_many`` and bulk writes included; nothing asked of
    the breaker for an empty batch). A call cancelled while it runs tells the breaker
    nothing (a half-open probe that never answers is replaced after a cool-down).
    """

    def __init__(self, backend: AsyncBackend, breaker: CircuitBreaker | None = None) -> None:
        self.backend = backend
        self.breaker = breaker if breaker is not None else CircuitBreaker()

    async def get(self, key: str) -> bytes | None:
        return await self._call("get", lambda: self.backend.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []  # no call to make: leave the breaker (and a half-open probe) alone
        return await self._call("get_many", lambda: self.backend.get_many(keys))

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return await self._call("add", lambda: self.backend.add(key, value, ttl_seconds))

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._call("set", lambda: self.backend.set(key, value, ttl_seconds))

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda: self.backend.delete(key))

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        return await self._call_many("add_many", entries, self.backend.add_many)

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        return await self._call_many("set_many", entries, self.backend.set_many)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        return await self._call("incr", lambda: self.backend.incr(key, ttl_seconds))

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        return await self._call_many("incr_many", entries, self.backend.incr_many)

    async def close(self) -> None:
        await self.backend.close()

    def cache_identity(self) -> Hashable:
        """The wrapped backend's cache: the breaker does not change where entries live."""
        return cache_identity(self.backend)

    async def _call(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        self._check(name)
        try:
            result = await call()
        except Exception as error:
            self._judge_error(error)
            raise
        self._success()
        return result

    async def _call_many(
        self,
        name: str,
        entries: Sequence[E],
        call: Callable[[Sequence[E]], Awaitable[list[T]]],
    ) -> list[T]:
        """One breaker call for a bulk write: a failure if it raised or any entry failed."""
        if not entries:
            return []  # no call to make: leave the breaker (and a half-open probe) alone
        self._check(name)
        try:
            results = await call(entries)
        except Exception as error:
            self._failure(error)
            raise
        self._judge_many(results)
        return results


def _failed(result: object) -> bool:
    """An entry's outcome that counts against the cache: an error other than a value
    that is not a counter (the cache answered that)."""
    return isinstance(result, Exception) and not isinstance(result, NotACounterError)
