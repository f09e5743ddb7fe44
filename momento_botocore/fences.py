"""Own writes win: fences on the keys this process wrote. Pure (no I/O); thread-safe.

A stream refresh is an unconditional set of an item's state at some write. When the
stream delivers an older record after this process's own newer write (v1's record
after the process wrote v2), the entry holds v1, and a plain read would serve it.

So when a write through a registered client is acknowledged, its keys are fenced
for the table's guard horizon (the longest an entry stored around the write can
live). A read of a fenced key trusts only an entry whose exact bytes were verified
after the last fencing write: any other ITEM/ABSENT entry (perhaps an old refresh)
is skipped, DynamoDB is asked with a strongly consistent read, and when its answer
equals the skipped entry, those bytes become the fence's verified value (hits
again); when it differs, the entry is older than the write and the caller replaces
it with a tombstone. A fill made from such a read is verified too. Verifying uses
the stamp the read saw when it was planned: a write acknowledged meanwhile renews
the fence (new stamp, nothing verified) and the older read cannot verify it.

Clock-free in the sense that matters: nothing compares the cache's or the stream's
times with this process's; the clock only expires fences. Bounded: past
``max_keys`` fences, a further write fences its whole table (every read of it is
verified against DynamoDB) until that write's horizon has passed.

One set of fences per cache per process: :func:`for_cache` attaches it to the
cache's :class:`~momento_botocore.pending.PendingTombstones`, which
:func:`momento_botocore.pending.shared` already makes one per cache, so every
registration in front of a cache sees every fence.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_KEYS = 50_000
_PRUNE_INTERVAL = 1.0


@dataclass(slots=True)
class _Fence:
    table: str
    stamp: int
    until: float
    verified: bytes | None = None


@dataclass(slots=True)
class FencedRead:
    """A read of a fenced key, carried in its plan: the fence as the read was planned,
    and the entry it did not trust (with its item; None for ABSENT)."""

    stamp: int
    verified: bytes | None
    entry: bytes | None = None
    item: dict[str, Any] | None = None


class Fences:
    """The fenced keys of one cache. ``active`` is False when nothing is fenced: the
    read path checks only that attribute."""

    def __init__(
        self, *, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.active = False
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Fence] = OrderedDict()  # oldest fencing first
        self._tables: dict[str, tuple[float, int]] = {}  # table -> (until, stamp)
        self._stamps = itertools.count(1)
        self._next_prune = 0.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def fence(self, table: str, key: str, horizon: float) -> bool:
        """A write of ``key`` was acknowledged: fence it for ``horizon`` seconds (a
        fence already there is renewed, and what it verified is forgotten). False when
        full: then the whole table is fenced for that long."""
        now = self._clock()
        until = now + horizon
        with self._lock:
            stamp = next(self._stamps)
            self._prune(now)
            self.active = True
            # Renewed in place, never popped first: ``look`` reads without the lock,
            # and a key missing for an instant would be read as unfenced.
            known = self._keys.get(key)
            if known is None and len(self._keys) >= self.max_keys:
                self._sweep(now)
            if known is not None or len(self._keys) < self.max_keys:
                self._keys[key] = _Fence(table, stamp, max(until, known.until if known else 0.0))
                self._keys.move_to_end(key)
                return True
            old_until = self._tables.get(table, (until, 0))[0]
            self._tables[table] = (max(until, old_until), stamp)
            return False

    def look(self, table: str, key: str) -> FencedRead | None:
        """The fence a read of ``key`` must respect now, or None when there is none."""
        now = self._clock()
        fence = self._keys.get(key)  # no lock: a dict lookup is atomic
        if fence is not None and fence.until <= now:
            fence = None
        whole = self._tables.get(table)
        if whole is not None and whole[0] <= now:
            whole = None
        if fence is None and whole is None:
            if now >= self._next_prune:  # at most once a second: ``active`` turns False
                with self._lock:
                    self._prune(now)
            return None
        if whole is not None:  # the table is fenced whole: nothing is verified
            return FencedRead(max(whole[1], fence.stamp if fence else 0), None)
        assert fence is not None
        return FencedRead(fence.stamp, fence.verified)

    def verify(self, key: str, stamp: int, value: bytes) -> bool:
        """``value`` (an entry's exact bytes) was found equal to DynamoDB's answer to a
        strongly consistent read planned under ``stamp``: trust it from now on, unless
        a newer write renewed the fence meanwhile (then False)."""
        with self._lock:
            fence = self._keys.get(key)
            if fence is None or fence.stamp != stamp or fence.until <= self._clock():
                return False
            fence.verified = value
            return True

    def _prune(self, now: float) -> None:
        """Under the lock: drop expired fences from the oldest (cheap; a fence behind a
        longer-lived one waits, and counts as expired meanwhile)."""
        self._next_prune = now + _PRUNE_INTERVAL
        keys = self._keys
        while keys:
            first = next(iter(keys.values()))
            if first.until > now:
                break
            keys.popitem(last=False)
        if self._tables:
            for table in [t for t, (until, _) in self._tables.items() if until <= now]:
                del self._tables[table]
        self.active = bool(keys or self._tables)

    def _sweep(self, now: float) -> None:
        """Under the lock, when full: drop every expired fence."""
        for key in [k for k, fence in self._keys.items() if fence.until <= now]:
            del self._keys[key]


def same_item(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """True when two items in wire format are the same state: sets compare unordered."""
    if a is None or b is None:
        return a is None and b is None
    return a == b or _canonical_map(a) == _canonical_map(b)


def _canonical_map(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _canonical(value) for name, value in item.items()}


def _canonical(value: Any) -> Any:
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((tag, raw),) = value.items()
    if tag in ("SS", "NS", "BS") and isinstance(raw, list):
        return (tag, frozenset(bytes(v) if isinstance(v, bytearray) else v for v in raw))
    if tag == "M" and isinstance(raw, Mapping):
        return (tag, _canonical_map(raw))
    if tag == "L" and isinstance(raw, list):
        return (tag, [_canonical(v) for v in raw])
    return (tag, raw)


# One set of fences per cache: attached to the cache's PendingTombstones ------------------

_LOCK = threading.Lock()
_BY_CACHE: weakref.WeakKeyDictionary[Any, Fences] = weakref.WeakKeyDictionary()


def for_cache(
    owner: object, *, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic
) -> Fences:
    """The fences of the cache that ``owner`` (its shared PendingTombstones) stands
    for; made on first use with these settings."""
    with _LOCK:
        fences = _BY_CACHE.get(owner)
        if fences is None:
            fences = _BY_CACHE[owner] = Fences(max_keys=max_keys, clock=clock)
        return fences
