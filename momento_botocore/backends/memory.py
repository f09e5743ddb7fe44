"""In-process cache: thread-safe, per-entry TTL, LRU-bounded by count and bytes."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from operator import itemgetter
from typing import cast

from momento_botocore.backends.base import (
    BackendError,
    CounterEntry,
    Entry,
    next_counter,
    write_each,
)
from momento_botocore.identity import SameObject

Clock = Callable[[], float]
_VALUE, _EXPIRES = itemgetter(0), itemgetter(1)


class MemoryBackend:
    """The embedded default backend, for development, tests and the demo.

    ``clock`` returns seconds (monotonic); inject one to test expiry without sleeping.
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at); order is least recently used first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            value, expires_at = found
            if expires_at <= self._clock():
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``[self.get(key) for key in keys]`` under one lock and one clock reading."""
        entries = self._entries
        with self._lock:
            now = self._clock()
            found = list(map(entries.get, keys))
            if None not in found:
                present = cast("list[tuple[bytes, float]]", found)
                if min(map(_EXPIRES, present), default=math.inf) > now:
                    # Every key present and fresh (a batch of hits): only C-level passes.
                    deque(map(entries.move_to_end, keys), maxlen=0)
                    return list(map(_VALUE, present))
            values: list[bytes | None] = []
            for key, entry in zip(keys, found, strict=True):
                if entry is None or key not in entries:  # (a duplicate key, removed)
                    values.append(None)
                elif entry[1] <= now:
                    self._remove(key)
                    values.append(None)
                else:
                    entries.move_to_end(key)
                    values.append(entry[0])
            return values

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        with self._lock:
            return self._add(key, value, ttl_seconds, self._clock())

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        with self._lock:
            self._store(key, value, ttl_seconds)

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        """``add`` for every entry, in order, under one lock and one clock reading."""
        if type(self).add is not MemoryBackend.add:  # a subclass's add decides
            return write_each(entries, lambda entry: self.add(*entry))
        _check_ttls(entries)
        with self._lock:
            now = self._clock()
            return [self._add(key, value, ttl, now) for key, value, ttl in entries]

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        """``set`` for every entry, in order, under one lock and one clock reading."""
        if type(self).set is not MemoryBackend.set:  # a subclass's set decides
            return write_each(entries, lambda entry: self.set(*entry))
        _check_ttls(entries)
        with self._lock:
            now = self._clock()
            for key, value, ttl in entries:
                self._store(key, value, ttl, now)
        return [None] * len(entries)

    def incr(self, key: str, ttl_seconds: float) -> int:
        """Add 1 to the counter under ``key`` (stored as ASCII decimal, TTL set anew),
        under the lock: concurrent calls never lose an increment."""
        with self._lock:
            return self._incr(key, ttl_seconds, self._clock())

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        """``incr`` for every entry, in order, under one lock and one clock reading: per
        entry its new value, or the error of a value that is not a counter."""
        if type(self).incr is not MemoryBackend.incr:  # a subclass's incr decides
            return write_each(entries, lambda entry: self.incr(*entry))
        _check_ttls(entries)
        results: list[int | Exception] = []
        with self._lock:
            now = self._clock()
            for key, ttl in entries:
                try:
                    results.append(self._incr(key, ttl, now))
                except BackendError as error:
                    results.append(error)
        return results

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._entries:
                self._remove(key)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def cache_identity(self) -> Hashable:
        """This object: a memory backend is its own cache (shared by passing it around,
        for example to an :class:`AsyncMemoryBackend`)."""
        return SameObject(self)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held (keys and values)."""
        return self._bytes

    def _add(self, key: str, value: bytes, ttl_seconds: float, now: float) -> bool:
        """Under the lock: store unless a fresh value is there."""
        found = self._entries.get(key)
        if found is not None and found[1] > now:
            return False
        return self._store(key, value, ttl_seconds, now)

    def _incr(self, key: str, ttl_seconds: float, now: float) -> int:
        """Under the lock: the counter's next value, stored with a fresh TTL."""
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        found = self._entries.get(key)
        value = next_counter(key, found[0] if found is not None and found[1] > now else None)
        if not self._store(key, str(value).encode(), ttl_seconds, now):
            # Larger than the whole cache (a huge key): a count that is not kept would
            # answer 1 again next time, so it is an error, not a value.
            raise BackendError(f"incr of a {len(key)}-character key: larger than the cache")
        return value

    def _store(self, key: str, value: bytes, ttl_seconds: float, now: float | None = None) -> bool:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        if now is None:
            now = self._clock()
        if key in self._entries:
            self._remove(key)
        size = len(key) + len(value)
        if size > self._max_bytes:
            return False  # larger than the whole cache: never stored
        self._entries[key] = (bytes(value), now + ttl_seconds)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
        return key in self._entries

    def _remove(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._bytes -= len(key) + len(value)


class AsyncMemoryBackend:
    """The :class:`~momento_botocore.backends.base.AsyncBackend` in front of a
    :class:`MemoryBackend`: a sync and an async client given the same ``memory`` share
    one store (and one :meth:`cache_identity`).

    Each call runs the memory backend's method at once, on the event loop's thread: it
    only takes the store's lock for an in-process operation, so it never waits on I/O.
    ``close()`` empties the store only when ``close_memory`` (when this object made it,
    or was given it to own); a shared store belongs to whoever made it.
    """

    def __init__(self, memory: MemoryBackend, *, close_memory: bool = False) -> None:
        self.memory = memory
        self._close_memory = close_memory

    async def get(self, key: str) -> bytes | None:
        return self.memory.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.memory.get_many(keys)

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self.memory.add(key, value, ttl_seconds)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.memory.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        self.memory.delete(key)

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        return self.memory.add_many(entries)

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        return self.memory.set_many(entries)

    async def incr(self, key: str, ttl_seconds: float) -> int:
        return self.memory.incr(key, ttl_seconds)

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        return self.memory.incr_many(entries)

    async def close(self) -> None:
        if self._close_memory:
            self.memory.close()

    def cache_identity(self) -> Hashable:
        """The memory backend's: the sync and the async side share one cache."""
        return self.memory.cache_identity()


def _check_ttls(entries: Sequence[Entry] | Sequence[CounterEntry]) -> None:
    for entry in entries:
        ttl_seconds = entry[-1]
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
