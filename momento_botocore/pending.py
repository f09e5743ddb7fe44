"""Tombstones that could not be written yet: remembered, guarded against, retried.

When a write's tombstone cannot be set (cache down, timed out, circuit breaker
open), the entry it should have replaced may still be in the cache when the cache
comes back, and this process would read its own write back stale. So the key is
remembered here, and until its tombstone is written, reads of that key in this
process skip the cache (no lookup, no fill). Retries are made by the callers, at
most once per ``retry_interval``, from the oldest; the first failure ends a round.

A key stops being needed once no entry it guards against can still exist: the
caller passes that ``horizon`` (seconds from the write) when it remembers a key.
When ``max_keys`` are pending, a further key is not remembered; its whole table
is guarded instead (every read of it skips the cache) until that key's horizon
has passed. Nothing is ever silently forgotten. A write whose key could not be
made at all (:meth:`PendingTombstones.fence_table`) guards its table the same way.

One memory per cache per process (:func:`shared`): every registration in front of
the same cache uses it, so a read through any of them is guarded, any of them can
retry (through its own backend), and what is pending outlives ``unregister()``.

No I/O here: the caller passes the function that writes one tombstone. Thread-safe.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from momento_botocore.identity import SameObject

DEFAULT_MAX_KEYS = 10_000
DEFAULT_RETRY_INTERVAL = 1.0
#: Most tombstones one retry round writes; more wait for the next call (due at once).
ROUND_SIZE = 100

Count = Callable[[str, str, int], None]


@dataclass(slots=True)
class _Pending:
    table: str
    stamp: int  # order of remembering: a write after a retry started has a larger one
    until: float  # after this, no entry the tombstone guards against can exist


class PendingTombstones:
    """The tombstones of this process that are not written yet.

    ``active`` is False when nothing is pending or guarded: the read path checks
    only that attribute. ``count(table, counter, amount)`` receives the counters
    ``tombstones_pending`` (remembered), ``tombstones_retried`` (written late, by a
    retry or by a newer tombstone of the same key), ``tombstones_dropped`` (no
    longer needed, never written), ``tombstones_overflowed`` (not remembered:
    the table was guarded whole instead) and ``tables_fenced`` (a write whose key
    could not be made: the table was guarded whole).
    """

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        count: Count | None = None,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.active = False
        self._max_keys = max_keys
        self._retry_interval = retry_interval
        self._clock = clock
        self._count: Count = count or (lambda table, counter, amount: None)
        self._lock = threading.Lock()
        self._round_full = False  # the last round took ROUND_SIZE keys
        self._keys: OrderedDict[str, _Pending] = OrderedDict()  # oldest write first
        self._tables: dict[str, float] = {}  # table -> guarded whole until
        self._stamp = 0
        self._next_round = 0.0

    @property
    def max_keys(self) -> int:
        return self._max_keys

    @property
    def retry_interval(self) -> float:
        return self._retry_interval

    def widen(self, max_keys: int, retry_interval: float) -> None:
        """Another user with its own settings: keep the larger limit and the shorter
        interval (the safer of each)."""
        with self._lock:
            self._max_keys = max(self._max_keys, max_keys)
            self._retry_interval = min(self._retry_interval, retry_interval)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def guarded_tables(self) -> dict[str, float]:
        """Tables guarded whole (after an overflow), with the clock time it ends."""
        now = self._clock()
        with self._lock:
            return {table: until for table, until in self._tables.items() if until > now}

    def stamp(self) -> int:
        """Taken before writing a tombstone; pass it to :meth:`written` afterwards."""
        with self._lock:
            return self._stamp

    def remember(self, table: str, key: str, horizon: float, count: Count | None = None) -> bool:
        """The tombstone of ``key`` could not be written: guard it for ``horizon``
        seconds. False when it could not be remembered (full): the table is then
        guarded whole for that long. ``count``, here and below, overrides the
        counters given at construction for this call."""
        now = self._clock()
        until = now + horizon
        with self._lock:
            self._stamp += 1
            self.active = True
            # The cache just failed: give it one interval before the next attempt.
            self._next_round = max(self._next_round, now + self._retry_interval)
            known = self._keys.pop(key, None)
            if known is not None:  # pending already: now for a newer write too
                self._keys[key] = _Pending(table, self._stamp, max(until, known.until))
                return True
            if len(self._keys) >= self._max_keys:
                self._tables[table] = max(until, self._tables.get(table, until))
                overflowed = True
            else:
                self._keys[key] = _Pending(table, self._stamp, until)
                overflowed = False
        (count or self._count)(
            table, "tombstones_overflowed" if overflowed else "tombstones_pending", 1
        )
        return not overflowed

    def fence_table(self, table: str, horizon: float, count: Count | None = None) -> None:
        """A write to ``table`` whose cache key could not be made (so its entry, under
        whatever key, could not be tombstoned): every read of the table skips the
        cache for ``horizon`` seconds, after which no entry it left stale exists."""
        until = self._clock() + horizon
        with self._lock:
            self._tables[table] = max(until, self._tables.get(table, until))
            self.active = True
        (count or self._count)(table, "tables_fenced", 1)

    def guards(self, table: str, key: str) -> bool:
        """True when a read of ``key`` must not use the cache (no lookup, no fill)."""
        now = self._clock()
        with self._lock:
            pending = self._keys.get(key)
            if pending is not None and pending.until > now:
                return True
            until = self._tables.get(table)
            return until is not None and until > now

    def written(self, key: str, stamp: int, count: Count | None = None) -> None:
        """A tombstone of ``key`` was just set, after :meth:`stamp` gave ``stamp``:
        whatever was pending for it before then is covered."""
        with self._lock:
            pending = self._keys.get(key)
            if pending is None or pending.stamp > stamp:
                return
            del self._keys[key]
            self._settle()
        (count or self._count)(pending.table, "tombstones_retried", 1)

    def start_round(self, count: Count | None = None) -> tuple[int, list[tuple[str, str]]] | None:
        """If a retry round is due: drop what is no longer needed, and return the stamp
        to pass to :meth:`written` with the (table, key) tombstones to write now, oldest
        first. The next round is due one ``retry_interval`` later, or at once when this
        one had more than it could take and :meth:`written` covered all of them."""
        now = self._clock()
        if now < self._next_round:
            return None
        with self._lock:
            if now < self._next_round:  # another thread started this round
                return None
            self._next_round = now + self._retry_interval
            dropped = self._drop_unneeded(now)
            stamp = self._stamp
            batch = [(p.table, key) for key, p in itertools.islice(self._keys.items(), ROUND_SIZE)]
            self._round_full = len(batch) == ROUND_SIZE
        count = count or self._count
        for table in dropped:
            count(table, "tombstones_dropped", 1)
        return (stamp, batch) if batch else None

    def retry(self, write: Callable[[str], object], count: Count | None = None) -> Exception | None:
        """A retry round (see :meth:`start_round`) with ``write``, key by key until one
        fails (its error is returned)."""
        round_ = self.start_round(count)
        if round_ is None:
            return None
        stamp, batch = round_
        for _, key in batch:
            try:
                write(key)
            except Exception as error:
                return error
            self.written(key, stamp, count)
        self.finish_round(all_written=True)
        return None

    def finish_round(self, *, all_written: bool) -> None:
        """The round :meth:`start_round` gave is over: when the cache took all of it and
        more is pending, the next round is due at once."""
        with self._lock:
            if all_written and self._round_full and self._keys:
                self._next_round = self._clock()

    def _drop_unneeded(self, now: float) -> list[str]:
        """Under the lock: forget keys and tables whose horizon has passed."""
        expired = [key for key, pending in self._keys.items() if pending.until <= now]
        tables = [self._keys.pop(key).table for key in expired]
        for table in [table for table, until in self._tables.items() if until <= now]:
            del self._tables[table]
        self._settle()
        return tables

    def _settle(self) -> None:
        """Under the lock."""
        self.active = bool(self._keys or self._tables)


# One PendingTombstones per cache, for the whole process ------------------------------

_SHARED_LOCK = threading.Lock()
#: Caches named by a value (a backend's ``cache_identity()``): kept for the process
#: (one small object per cache ever used).
_BY_VALUE: dict[Hashable, PendingTombstones] = {}
#: Caches known only by their backend object: id -> (weak reference, memory); gone
#: with the backend (no one can read that cache any more).
_BY_OBJECT: dict[int, tuple[weakref.ReferenceType[Any], PendingTombstones]] = {}


def shared(
    identity: Hashable,
    *,
    max_keys: int = DEFAULT_MAX_KEYS,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> PendingTombstones:
    """The process's PendingTombstones for the cache named ``identity`` (see
    :func:`momento_botocore.identity.cache_identity`), made on first use with
    these settings (and ``clock``); later users widen them: the largest ``max_keys``
    and the shortest ``retry_interval`` win. A :class:`SameObject` identity of a
    backend that cannot be weakly referenced gets a memory of its own, unshared."""
    if max_keys < 1:
        raise ValueError(f"max_keys must be at least 1, got {max_keys}")
    if not isinstance(identity, SameObject):
        with _SHARED_LOCK:
            pending = _BY_VALUE.get(identity)
            if pending is None:
                pending = _BY_VALUE[identity] = PendingTombstones(
                    max_keys=max_keys, retry_interval=retry_interval, clock=clock
                )
                return pending
        pending.widen(max_keys, retry_interval)
        return pending
    target = identity.target()
    if not identity.weak or target is None:
        return PendingTombstones(max_keys=max_keys, retry_interval=retry_interval, clock=clock)
    key = id(target)
    with _SHARED_LOCK:
        known = _BY_OBJECT.get(key)
        if known is None or known[0]() is not target:
            pending = PendingTombstones(
                max_keys=max_keys, retry_interval=retry_interval, clock=clock
            )
            _BY_OBJECT[key] = (weakref.ref(target, _forgetter(key)), pending)
            return pending
        pending = known[1]
    pending.widen(max_keys, retry_interval)
    return pending


def _forgetter(key: int) -> Callable[[weakref.ReferenceType[Any]], None]:
    def forget(ref: weakref.ReferenceType[Any]) -> None:
        # No lock: this may run inside the garbage collector, on a thread that holds
        # _SHARED_LOCK. The id cannot be reused before this runs, so no newer entry
        # can be under ``key`` yet; the check is for a reference already replaced.
        known = _BY_OBJECT.get(key)
        if known is not None and known[0] is ref:
            _BY_OBJECT.pop(key, None)

    return forget


def forget_shared() -> None:
    """Forget every cache's pending tombstones (for tests: a clean process)."""
    with _SHARED_LOCK:
        _BY_VALUE.clear()
        _BY_OBJECT.clear()
