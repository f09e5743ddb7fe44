"""The backend protocol: bytes in, bytes out, every entry with a TTL."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

# Re-exported for older imports: object identity lives in momento_botocore.identity.
from momento_botocore.identity import SameObject as SameObject
from momento_botocore.identity import cache_identity as cache_identity

#: One entry of a bulk write: (key, value, ttl_seconds).
Entry = tuple[str, bytes, float]
#: One entry of :meth:`CounterBackend.incr_many`: (key, ttl_seconds).
CounterEntry = tuple[str, float]
_R = TypeVar("_R")
_E = TypeVar("_E")

#: The values a counter may hold: a signed 64-bit integer (Momento's limit).
COUNTER_MIN, COUNTER_MAX = -(2**63), 2**63 - 1
_COUNTER = re.compile(rb"[+-]?[0-9]+")

#: What ``get`` returns for a value that is stored but cannot be received (larger than
#: the client's receive limit). Never a valid entry: readers treat it as garbage and
#: delete it. Not an error either: the cache answered (a circuit breaker counts a success).
UNREADABLE = b"momento-botocore: stored value could not be received"


class BackendError(Exception):
    """A cache operation failed (unreachable, timed out, refused).

    Backends raise it (or any exception); the read path treats every failure as
    a miss, and the stream invalidator reports the record as failed.
    """


class NotACounterError(BackendError):
    """``incr`` found a value under its key that is not an integer (or adding 1 would
    leave the signed 64-bit range): nothing was counted and the value is left as it
    is. The cache answered: a circuit breaker counts it as a success, not a failure."""


def parse_counter(value: bytes) -> int | None:
    """The integer a counter's stored value holds (ASCII decimal, optionally signed, as
    Momento's ``Increment`` reads and writes it: ``b"5"``), or None if it holds none."""
    if _COUNTER.fullmatch(value) is None:
        return None
    number = int(value)
    return number if COUNTER_MIN <= number <= COUNTER_MAX else None


def next_counter(key: str, value: bytes | None) -> int:
    """What ``incr`` stores over ``value`` (None: no live value, counted as 0). Raises
    :class:`NotACounterError` for a value that is not a counter, or at the top of the
    range."""
    if value is None:
        return 1
    number = parse_counter(value)
    if number is None:
        raise NotACounterError(f"incr of {key!r}: the value there is not an integer")
    if number >= COUNTER_MAX:
        raise NotACounterError(f"incr of {key!r}: the counter is at its largest value")
    return number + 1


@runtime_checkable
class Backend(Protocol):
    """What the read hooks and the stream invalidator need from a cache."""

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None when there is none."""
        ...

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Store only if ``key`` holds nothing; True when this call stored it."""
        ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store unconditionally."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A backend that can look many keys up in one call (optional: the read path
    falls back to :meth:`Backend.get` per key for backends without it)."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values stored under ``keys``, in the same order (None where there is
        none). Raises when the lookup failed: then every key counts as a miss."""
        ...


@runtime_checkable
class BulkWriteBackend(Backend, Protocol):
    """A backend that can write many entries in one call (optional: without these
    methods, entries are written one call per key, as before).

    Each answers per entry, in order: what :meth:`Backend.add` would have returned
    (or None for ``set``), or the exception that says the entry was not written
    (the call failed, or was not tried after another one of the batch failed).
    They may also raise: then no entry counts as written. A ttl that is not
    positive raises ValueError before anything is written.
    """

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        """``add`` for every ``(key, value, ttl_seconds)``: True where stored."""
        ...

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        """``set`` for every ``(key, value, ttl_seconds)``: None where written."""
        ...


def bulk_add(backend: Backend, entries: Sequence[Entry]) -> list[bool | Exception]:
    """``backend.add_many(entries)`` if it has it, else ``add`` per entry. Never
    raises: an exception stands for an entry not stored (a failed call, every entry)."""
    return _bulk(backend, "add_many", entries, lambda entry: backend.add(*entry))


def bulk_set(backend: Backend, entries: Sequence[Entry]) -> list[Exception | None]:
    """``backend.set_many(entries)`` if it has it, else ``set`` per entry. Never
    raises: an exception stands for an entry not written (a failed call, every entry)."""
    return _bulk(backend, "set_many", entries, lambda entry: backend.set(*entry))


@runtime_checkable
class CounterBackend(Backend, Protocol):
    """A backend that keeps atomic counters (optional: the generations of the Query and
    Scan cache need it, docs/backends.md#counters-incr-and-incr_many).

    A counter is an ordinary entry whose value is the integer in ASCII decimal
    (``b"5"``, what Momento's ``Increment`` stores), so readers read it with
    :meth:`Backend.get` (:func:`parse_counter`); a missing key stands for 0.
    """

    def incr(self, key: str, ttl_seconds: float) -> int:
        """Atomically add 1 to the counter under ``key`` and return its new value; a
        missing or expired key counts as 0 (so the first ``incr`` answers 1). Every call
        sets the key's TTL to ``ttl_seconds``, an existing key's too.

        A value there that is not an integer raises :class:`NotACounterError` and is
        left as it is. A TTL that is not positive raises ValueError. Any other error
        (:class:`BackendError`): the increment may or may not have happened (a call
        that timed out may have reached the cache), and it is never retried.
        """
        ...

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        """``incr`` for every ``(key, ttl_seconds)``: per entry, in order, the new
        value or the exception that kept it from counting (as :meth:`incr` raises it;
        entries not tried after another one failed get a :class:`BackendError`). A
        repeated key counts once per occurrence. It may also raise: then no entry
        counts as counted. A TTL that is not positive raises ValueError before
        anything is counted."""
        ...


def bulk_incr(backend: Backend, entries: Sequence[CounterEntry]) -> list[int | Exception]:
    """``backend.incr_many(entries)`` if it has it, else ``incr`` per entry. Never
    raises: an exception stands for an entry not counted (a failed call, every entry;
    a backend without counters, every entry a :class:`BackendError`)."""
    if not (hasattr(backend, "incr") or hasattr(backend, "incr_many")):
        return [no_counters(backend)] * len(entries)
    counters: Any = backend
    return _bulk(backend, "incr_many", entries, lambda entry: counters.incr(*entry))


def no_counters(backend: object) -> BackendError:
    """The error of asking ``backend``, which keeps no counters, to count."""
    return BackendError(f"{type(backend).__name__} has no incr: it keeps no counters")


def write_each(entries: Sequence[_E], write: Callable[[_E], _R]) -> list[_R | Exception]:
    """``write`` every entry in turn; a failed one is its exception, the others go on."""
    results: list[_R | Exception] = []
    for entry in entries:
        try:
            results.append(write(entry))
        except Exception as error:
            results.append(error)
    return results


def _bulk(
    backend: Backend, name: str, entries: Sequence[_E], write: Callable[[_E], _R]
) -> list[_R | Exception]:
    if not entries:
        return []
    many = getattr(backend, name, None)
    if many is None:
        return write_each(entries, write)
    try:
        results = list(many(entries))
    except Exception as error:
        return [error] * len(entries)
    return _one_per_entry(name, entries, results)


def _one_per_entry(
    name: str, entries: Sequence[object], results: list[_R | Exception]
) -> list[_R | Exception]:
    """``results``, if there is one per entry; else every entry failed."""
    if len(results) != len(entries):
        wrong = BackendError(f"{name} gave {len(results)} results for {len(entries)} entries")
        return [wrong] * len(entries)
    return results


@runtime_checkable
class AsyncBackend(Protocol):
    """The asynchronous backend (for aiobotocore): :class:`Backend`, :class:`BatchBackend`
    and :class:`BulkWriteBackend` as coroutines, every method required, and
    :meth:`IdentifiedBackend.cache_identity` (not a coroutine).

    Each method means what its synchronous namesake means: ``get_many`` raises when the
    lookup failed; ``add_many`` and ``set_many`` answer per entry, in order, and may
    raise (then no entry counts as written); a ttl that is not positive raises
    ValueError before anything is written. ``incr`` and ``incr_many`` are
    :class:`CounterBackend`'s.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]: ...

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]: ...

    async def incr(self, key: str, ttl_seconds: float) -> int: ...

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]: ...

    async def close(self) -> None: ...

    def cache_identity(self) -> Hashable: ...


async def async_bulk_add(backend: AsyncBackend, entries: Sequence[Entry]) -> list[bool | Exception]:
    """``await backend.add_many(entries)``, as :func:`bulk_add`: never raises (an
    exception stands for an entry not stored; a failed call, every entry)."""
    if not entries:
        return []
    try:
        results = list(await backend.add_many(entries))
    except Exception as error:
        return [error] * len(entries)
    return _one_per_entry("add_many", entries, results)


async def async_bulk_set(backend: AsyncBackend, entries: Sequence[Entry]) -> list[Exception | None]:
    """``await backend.set_many(entries)``, as :func:`bulk_set`: never raises (an
    exception stands for an entry not written; a failed call, every entry)."""
    if not entries:
        return []
    try:
        results = list(await backend.set_many(entries))
    except Exception as error:
        return [error] * len(entries)
    return _one_per_entry("set_many", entries, results)


async def async_bulk_incr(
    backend: AsyncBackend, entries: Sequence[CounterEntry]
) -> list[int | Exception]:
    """``await backend.incr_many(entries)``, as :func:`bulk_incr`: never raises (an
    exception stands for an entry not counted; a failed call, every entry)."""
    if not entries:
        return []
    try:
        results = list(await backend.incr_many(entries))
    except Exception as error:
        return [error] * len(entries)
    return _one_per_entry("incr_many", entries, results)


@runtime_checkable
class IdentifiedBackend(Backend, Protocol):
    """A backend that can say which cache it stores in (optional). Two backends with
    equal identities share one cache: a process keeps one memory of unwritten
    tombstones per cache (docs/writes-batch-projections.md)."""

    def cache_identity(self) -> Hashable:
        """A hashable value naming the cache, equal for every backend in front of it."""
        ...
