"""A near cache: an in-process tier in front of Momento, kept fresh by invalidations
pushed over Momento Topics (docs/near-cache.md).

Three parts, one :class:`NearCache` per backend built from a configuration:

* :class:`NearStore`, the tier itself: a bounded LRU of entries that live at most
  ``near_cache_ttl`` seconds, used only while the subscription is live;
* :class:`Publisher`: every write that changes what a key means (a set, a delete, a
  counter's increment) publishes the key on the topic after the shared cache took it,
  batched, from a thread of its own; failed publishes are retried, and keys that
  cannot be kept are replaced by one message that empties every near cache;
* :class:`Subscriber`: one subscription per process, in a thread, that evicts what
  it is told of, and empties the store whenever it is not live (before the first
  subscription, after a drop, across a gap in the topic's sequence numbers).

The race of fill-after-invalidate, one tier up: a near entry is made only from a
value the shared cache (or a fill of it) answered for a lookup that began while the
subscription was live, and only when no invalidation of that key, and no flush, came
after the lookup began (:meth:`NearStore.token` and :meth:`NearStore.fill`). A write
that the lookup did not see is published after the write, so it arrives after the
lookup began: either before the fill (refused) or after it (evicted).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from momento_botocore.backends.base import (
    AsyncBackend,
    Backend,
    BackendError,
    CounterEntry,
    Entry,
    bulk_add,
    bulk_incr,
    bulk_set,
)
from momento_botocore.core.entries import encode_tombstone
from momento_botocore.counters import STATS, Stats

logger = logging.getLogger("momento_botocore.near")

#: What ``stats()`` files the near cache's process-wide counters under: no DynamoDB
#: table can have this name.
NEAR_STATS = "(near cache)"
#: Not held near: a tombstone (or a generation's "written lately" marker) means what
#: it means only until its short TTL ends, which a near copy would outlive.
_TOMBSTONE = encode_tombstone()
_MESSAGE = b"mbi1"
_FLUSH_ALL = _MESSAGE + b"*"
#: Largest message published (the keys are split over several messages).
MAX_MESSAGE_BYTES = 4096
#: Keys waiting to be published (after failures) before they are replaced by one
#: message that empties every near cache.
MAX_PENDING_KEYS = 10_000
#: Seconds between two warnings of failed publishes.
WARN_EVERY = 60.0


# Messages -----------------------------------------------------------------------------


#: A message: the tag, its publisher's id (16 hex digits: a process skips its own
#: messages, whose keys it evicted when it wrote them), then the keys as a JSON list.
_SENDER_LENGTH = 16
NO_SENDER = "0" * _SENDER_LENGTH


def encode_keys(keys: Sequence[str], sender: str = NO_SENDER) -> list[bytes]:
    """The messages that name ``keys``, at most MAX_MESSAGE_BYTES each."""
    if len(sender) != _SENDER_LENGTH:
        raise ValueError(f"a sender id is {_SENDER_LENGTH} characters")
    head = _MESSAGE + sender.encode()
    messages: list[bytes] = []
    batch: list[str] = []
    size = len(head) + 2
    for key in keys:
        cost = len(json.dumps(key, ensure_ascii=False).encode()) + 1
        if batch and size + cost > MAX_MESSAGE_BYTES:
            messages.append(_message(head, batch))
            batch, size = [], len(head) + 2
        batch.append(key)
        size += cost
    if batch:
        messages.append(_message(head, batch))
    return messages


def _message(head: bytes, keys: list[str]) -> bytes:
    return head + json.dumps(keys, ensure_ascii=False, separators=(",", ":")).encode()


def decode_message(value: bytes | str) -> tuple[str, list[str]] | None:
    """(its publisher's id, the keys) of a message; None for "empty every near cache"
    and for anything that is not one of our messages (it could mean any key)."""
    raw = value.encode() if isinstance(value, str) else value
    if not raw.startswith(_MESSAGE) or raw == _FLUSH_ALL:
        return None
    body = raw[len(_MESSAGE) :]
    try:
        sender = body[:_SENDER_LENGTH].decode("ascii")
        keys = json.loads(body[_SENDER_LENGTH:])
    except (ValueError, UnicodeDecodeError):
        return None
    if type(keys) is not list or not all(type(key) is str for key in keys):
        return None
    return sender, keys


# The store ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """Taken before a shared-cache lookup: what a fill from its answer must still match."""

    epoch: int
    seq: int


class NearStore:
    """Entries by key, at most ``max_items`` and ``max_bytes`` (values and keys), each
    for at most ``ttl`` seconds; usable only while :attr:`live`. Thread-safe."""

    def __init__(
        self,
        max_items: int,
        max_bytes: int,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        remembered_invalidations: int = 65_536,
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._live = False
        self._epoch = 0  # +1 at every flush: no fill crosses one
        self._seq = 0  # +1 at every invalidation
        #: key -> seq of its last invalidation (bounded; the oldest are forgotten, and
        #: the highest seq forgotten makes every fill from an older lookup refused).
        self._invalidated: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0
        self._remembered = remembered_invalidations

    @property
    def live(self) -> bool:
        return self._live

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        """The value held for ``key``, if live and not expired."""
        if not self._live:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            value, expires = found
            if expires <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return value

    def token(self) -> Token:
        return Token(self._epoch, self._seq)

    def fill(self, key: str, value: bytes, token: Token) -> bool:
        """Hold ``value`` (what a lookup that took ``token`` found) unless the store was
        flushed, or ``key`` invalidated, since; True when it is held."""
        size = len(value) + len(key)
        if size > self.max_bytes:
            return False
        with self._lock:
            if not self._live or token.epoch != self._epoch or token.seq < self._forgotten:
                return False
            last = self._invalidated.get(key)
            if last is not None and last > token.seq:
                return False
            self._drop(key)
            self._entries[key] = (value, self._clock() + self.ttl)
            self._bytes += size
            while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
            return True

    def invalidate(self, keys: Iterable[str]) -> int:
        """Forget ``keys`` and refuse fills from lookups that began before; how many
        entries were held."""
        evicted = 0
        with self._lock:
            self._seq += 1
            seq = self._seq
            invalidated = self._invalidated
            for key in keys:
                if key in self._entries:
                    self._drop(key)
                    evicted += 1
                invalidated[key] = seq
                invalidated.move_to_end(key)
            while len(invalidated) > self._remembered:
                _, forgotten = invalidated.popitem(last=False)
                self._forgotten = max(self._forgotten, forgotten)
        return evicted

    def flush(self, *, live: bool) -> None:
        """Empty the store (no fill from an earlier lookup lands after) and say whether
        it may be used from now on."""
        with self._lock:
            self._epoch += 1
            self._live = live
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[0]) + len(key)


# Topics ------------------------------------------------------------------------------------


class Subscription(Protocol):
    """A live subscription: items as (sequence page, sequence number, value); iteration
    raises or ends when the subscription is lost."""

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]: ...

    def close(self) -> None: ...


class Topic(Protocol):
    """One topic of one cache (:class:`MomentoTopic`, or a test's)."""

    def publish(self, value: bytes) -> None:
        """Raises when the message was not accepted."""
        ...

    def subscribe(self) -> Subscription:
        """Returns once the subscription is live (every message published after this
        returns is delivered); raises when it cannot subscribe."""
        ...

    def close(self) -> None: ...


class Publisher:
    """Publishes invalidated keys from a thread of its own, in order, batched; a failed
    publish is retried (1 s apart at most) and never silently dropped: past
    MAX_PENDING_KEYS keys, one message that empties every near cache replaces them."""

    def __init__(
        self,
        topic: Topic,
        *,
        stats: Stats = STATS,
        retry_delay: float = 0.1,
        sender: str = NO_SENDER,
    ) -> None:
        self._topic = topic
        self._sender = sender
        self._stats = stats
        self._retry_delay = retry_delay
        self._condition = threading.Condition()
        self._keys: dict[str, None] = {}  # waiting, in order, each once
        self._flush_all = False
        self._closed = False
        self._busy = False
        self._failures = 0
        self._warned_at = -WARN_EVERY
        self._thread = threading.Thread(
            target=self._run, name="momento-botocore-publisher", daemon=True
        )
        self._thread.start()

    def publish(self, keys: Iterable[str]) -> None:
        """Queue ``keys`` for publishing (returns at once)."""
        with self._condition:
            pending = self._keys
            pending.update(dict.fromkeys(keys))
            if len(pending) > MAX_PENDING_KEYS:
                pending.clear()
                self._flush_all = True
            self._condition.notify()

    def wait_idle(self, timeout: float = 5.0, *, until_failure: bool = False) -> bool:
        """True once nothing is waiting; False after ``timeout`` seconds, or (with
        ``until_failure``) as soon as a publish fails: it is retried in the background."""
        deadline = time.monotonic() + timeout
        with self._condition:
            failures = self._failures
            while self._keys or self._flush_all or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or (until_failure and self._failures != failures):
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Publish what waits (for up to ``timeout`` seconds), then stop."""
        self.wait_idle(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = self._retry_delay
        retry_at = 0.0  # after a failure: not before (new keys do not hurry a retry)
        while True:
            with self._condition:
                while not self._closed:
                    wait = retry_at - time.monotonic()
                    if wait <= 0 and (self._keys or self._flush_all):
                        break
                    self._condition.wait(wait if wait > 0 else None)
                if self._closed:
                    return
                flush_all, keys = self._flush_all, list(self._keys)
                self._flush_all = False
                self._keys.clear()
                self._busy = True
            messages = [_FLUSH_ALL] if flush_all else encode_keys(keys, self._sender)
            sent = self._send(messages)
            with self._condition:
                self._busy = False
                self._failures += sent < len(messages)
                if sent < len(messages):  # back to the front of the queue, in order
                    if flush_all:
                        self._flush_all = True
                    else:
                        self._keys = {**dict.fromkeys(keys), **self._keys}
                        if len(self._keys) > MAX_PENDING_KEYS:
                            self._keys.clear()
                            self._flush_all = True
                self._condition.notify_all()
            if sent == len(messages):
                delay, retry_at = self._retry_delay, 0.0
            else:
                retry_at = time.monotonic() + delay
                delay = min(delay * 2, 1.0)

    def _send(self, messages: list[bytes]) -> int:
        """How many of ``messages`` were published (they go in order; the first
        failure stops)."""
        for number, message in enumerate(messages):
            try:
                self._topic.publish(message)
            except Exception as error:
                self._stats.tally(NEAR_STATS, "publish_failures")
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY:  # retried every second at most
                    self._warned_at = now
                    logger.warning(
                        "momento-botocore: publishing invalidations failed (retried; "
                        "this is said once a minute at most): %s",
                        error,
                    )
                return number
            self._stats.tally(NEAR_STATS, "publishes")
        return len(messages)


class Subscriber:
    """The process's subscription, in a thread: evicts what it is told of; empties
    the store whenever the subscription is not live, and across a gap in sequence
    numbers."""

    def __init__(
        self,
        topic: Topic,
        store: NearStore,
        *,
        stats: Stats = STATS,
        retry_delay: float = 0.2,
        max_retry_delay: float = 5.0,
        sender: str | None = None,
    ) -> None:
        self._topic = topic
        self._store = store
        self._sender = sender  # its own messages are skipped
        self._stats = stats
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._stop = threading.Event()
        self._subscription: Subscription | None = None
        self._lock = threading.Lock()
        #: What ``doctor`` shows: "starting", "live", "reconnecting" or "closed".
        self.state = "starting"
        self.last_error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name="momento-botocore-subscriber", daemon=True
        )
        self._thread.start()

    def wait_live(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._store.live:
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            subscription = self._subscription
        if subscription is not None:
            try:
                subscription.close()
            except Exception as error:  # closing a broken subscription: nothing to save
                logger.debug("momento-botocore: closing the subscription: %s", error)
        self._store.flush(live=False)
        self.state = "closed"
        self._thread.join(2.0)

    def _run(self) -> None:
        delay = self._retry_delay
        while not self._stop.is_set():
            try:
                subscription = self._topic.subscribe()
            except Exception as error:
                self._lost(error)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            with self._lock:
                self._subscription = subscription
            if self._stop.is_set():
                subscription.close()
                return
            # Live from here: every message published from now on is delivered.
            self._store.flush(live=True)
            self.state = "live"
            delay = self._retry_delay
            ended = self._follow(subscription)
            with self._lock:
                self._subscription = None
            if not self._stop.is_set():
                self._lost(ended)

    def _follow(self, subscription: Subscription) -> BaseException | None:
        """Apply items until the subscription ends; what ended it."""
        last: tuple[int, int] | None = None
        try:
            for page, number, value in subscription:
                if last is not None and (page != last[0] or number != last[1] + 1):
                    self._store.flush(live=True)  # messages were lost: forget everything
                    self._stats.tally(NEAR_STATS, "flushes")
                last = (page, number)
                self._apply(value)
        except Exception as error:
            return error
        return None

    def _apply(self, value: bytes) -> None:
        message = decode_message(value)
        if message is None:
            self._store.flush(live=True)
            self._stats.tally(NEAR_STATS, "flushes")
            return
        sender, keys = message
        if sender == self._sender:  # evicted when this process wrote them
            return
        evicted = self._store.invalidate(keys)
        if evicted:
            self._stats.tally(NEAR_STATS, "evictions", evicted)

    def _lost(self, error: BaseException | None) -> None:
        was_live = self._store.live
        self._store.flush(live=False)
        self.state = "reconnecting"
        self.last_error = None if error is None else f"{type(error).__name__}: {error}"
        if was_live:
            self._stats.tally(NEAR_STATS, "flushes")
            logger.warning(
                "momento-botocore: near cache subscription lost (%s): emptied, not used "
                "until it is live again",
                self.last_error or "the stream ended",
            )


# The cache in front of a backend ---------------------------------------------------------


class NearCache:
    """A store and its subscription (None when ``store`` is), and a publisher (None
    when publishing is off), shared by the sync and async backends of one
    registration."""

    def __init__(
        self,
        topic: Topic,
        store: NearStore | None,
        *,
        publish: bool = True,
        stats: Stats = STATS,
    ) -> None:
        self.topic = topic
        self.store = store
        self.stats = stats
        #: This near cache's id in its messages.
        self.sender = secrets.token_hex(_SENDER_LENGTH // 2)
        self.publisher = Publisher(topic, stats=stats, sender=self.sender) if publish else None
        self.subscriber = (
            Subscriber(topic, store, stats=stats, sender=self.sender) if store is not None else None
        )
        self._closed = False
        self._users = 1
        self._users_lock = threading.Lock()
        #: Called once the last user closed it (the process-wide registry forgets it).
        self.on_close: Callable[[], None] | None = None
        #: Keys a lookup missed, with its token: a fill of the shared cache that follows
        #: (what DynamoDB answered) may be held here too.
        self._misses: OrderedDict[str, Token] = OrderedDict()
        self._misses_lock = threading.Lock()

    @property
    def state(self) -> str:
        """The subscription's state, for ``doctor``."""
        if self.subscriber is None:
            return "off (publishing only)" if self.publisher is not None else "off"
        return self.subscriber.state

    def before_lookup(self, key: str) -> tuple[bytes | None, Token | None]:
        """A near hit (value, None), or (None, the token to fill with after the lookup)."""
        store = self.store
        if store is None:
            return None, None
        value = store.get(key)
        if value is not None:
            self.stats.tally(NEAR_STATS, "near_hits")
            return value, None
        return None, store.token()

    def after_lookup(self, key: str, value: bytes | None, token: Token | None) -> None:
        if token is None or self.store is None:
            return
        if value is not None:
            if value != _TOMBSTONE:
                self.store.fill(key, value, token)
            return
        with self._misses_lock:
            self._misses[key] = token
            self._misses.move_to_end(key)
            if len(self._misses) > self.store.max_items:
                self._misses.popitem(last=False)

    def before_lookups(
        self, keys: Sequence[str]
    ) -> tuple[list[tuple[bytes | None, Token | None]], list[str]]:
        """:meth:`before_lookup` of each key, and the keys to look up in Momento."""
        found = [self.before_lookup(key) for key in keys]
        missing = [key for key, (value, _) in zip(keys, found, strict=True) if value is None]
        return found, missing

    def after_lookups(
        self,
        keys: Sequence[str],
        found: list[tuple[bytes | None, Token | None]],
        missing: list[str],
        looked_up: Sequence[bytes | None],
    ) -> list[bytes | None]:
        """The values of ``keys``: near hits, and what Momento answered for ``missing``
        (:meth:`after_lookup` of each)."""
        if len(looked_up) != len(missing):
            raise BackendError(f"get_many gave {len(looked_up)} values for {len(missing)} keys")
        answers = iter(looked_up)
        values: list[bytes | None] = []
        for key, (value, token) in zip(keys, found, strict=True):
            if value is None:
                value = next(answers)
                self.after_lookup(key, value, token)
            values.append(value)
        return values

    def added(self, key: str, value: bytes) -> None:
        """The shared cache took ``value`` for ``key`` (add-if-absent): hold it here
        too when this process missed the key and nothing invalidated it since."""
        if self.store is None:
            return
        with self._misses_lock:
            token = self._misses.pop(key, None)
        if token is not None:
            self.store.fill(key, value, token)

    def written(self, keys: Sequence[str]) -> None:
        """``keys`` changed in the shared cache (or may have): evict here, tell the others."""
        if not keys:
            return
        if self.store is not None:
            self.store.invalidate(keys)
        if self.publisher is not None:
            self.publisher.publish(keys)

    @property
    def closed(self) -> bool:
        return self._closed

    def share(self) -> NearCache | None:
        """This near cache for one more user (each calls :meth:`close`); None once closed."""
        with self._users_lock:
            if self._closed:
                return None
            self._users += 1
            return self

    def close(self) -> None:
        """One user is done with it; the last one stops its threads."""
        with self._users_lock:
            if self._closed:
                return
            self._users -= 1
            if self._users > 0:
                return
            self._closed = True
        if self.on_close is not None:
            self.on_close()
        if self.subscriber is not None:
            self.subscriber.close()
        if self.publisher is not None:
            self.publisher.close()
        self.topic.close()


class NearCacheBackend:
    """A :class:`Backend` in front of another (Momento's): reads try the near store
    first; writes go to the backend, then evict here and are published."""

    def __init__(self, backend: Backend, near: NearCache, *, owns_near: bool = True) -> None:
        self.backend = backend
        self.near = near
        self._owns_near = owns_near

    def get(self, key: str) -> bytes | None:
        value, token = self.near.before_lookup(key)
        if value is not None:
            return value
        value = self.backend.get(key)
        self.near.after_lookup(key, value, token)
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found, missing = self.near.before_lookups(keys)
        if not missing:
            return [value for value, _ in found]
        many = getattr(self.backend, "get_many", None)
        looked_up = many(missing) if many is not None else [self.backend.get(k) for k in missing]
        return self.near.after_lookups(keys, found, missing, looked_up)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        stored = self.backend.add(key, value, ttl_seconds)
        if stored:
            self.near.added(key, value)
        return stored

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        results = bulk_add(self.backend, entries)
        for (key, value, _), stored in zip(entries, results, strict=True):
            if stored is True:
                self.near.added(key, value)
        return results

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        try:
            self.backend.set(key, value, ttl_seconds)
        finally:  # a failed write may have happened
            self.near.written([key])

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        try:
            return bulk_set(self.backend, entries)
        finally:
            self.near.written([key for key, _, _ in entries])

    def delete(self, key: str) -> None:
        try:
            self.backend.delete(key)
        finally:
            self.near.written([key])

    def incr(self, key: str, ttl_seconds: float) -> int:
        try:
            counter: Any = self.backend
            return int(counter.incr(key, ttl_seconds))
        finally:
            self.near.written([key])

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        try:
            return bulk_incr(self.backend, entries)
        finally:
            self.near.written([key for key, _ in entries])

    def wait_published(self, timeout: float = 2.0) -> bool:
        """True once every invalidation so far is published (a Lambda returns only
        then: a frozen container publishes nothing); False at once when a publish
        fails (it is retried), or after ``timeout`` seconds."""
        publisher = self.near.publisher
        return publisher is None or publisher.wait_idle(timeout, until_failure=True)

    def close(self) -> None:
        try:
            if self._owns_near:
                self.near.close()
        finally:
            self.backend.close()

    def cache_identity(self) -> Hashable:
        identity = getattr(self.backend, "cache_identity", None)
        return identity() if identity is not None else ("object", id(self.backend))


class AsyncNearCacheBackend:
    """:class:`NearCacheBackend` for an :class:`AsyncBackend` (the near store is not
    I/O: it is used on the loop; publishing happens in the publisher's thread)."""

    def __init__(self, backend: AsyncBackend, near: NearCache, *, owns_near: bool = True) -> None:
        self.backend = backend
        self.near = near
        self._owns_near = owns_near

    async def get(self, key: str) -> bytes | None:
        value, token = self.near.before_lookup(key)
        if value is not None:
            return value
        value = await self.backend.get(key)
        self.near.after_lookup(key, value, token)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found, missing = self.near.before_lookups(keys)
        if not missing:
            return [value for value, _ in found]
        looked_up = await self.backend.get_many(missing)
        return self.near.after_lookups(keys, found, missing, looked_up)

    async def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        stored = await self.backend.add(key, value, ttl_seconds)
        if stored:
            self.near.added(key, value)
        return stored

    async def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        results = await self.backend.add_many(entries)
        for (key, value, _), stored in zip(entries, results, strict=False):
            if stored is True:
                self.near.added(key, value)
        return results

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        try:
            await self.backend.set(key, value, ttl_seconds)
        finally:
            self.near.written([key])

    async def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        try:
            return await self.backend.set_many(entries)
        finally:
            self.near.written([key for key, _, _ in entries])

    async def delete(self, key: str) -> None:
        try:
            await self.backend.delete(key)
        finally:
            self.near.written([key])

    async def incr(self, key: str, ttl_seconds: float) -> int:
        try:
            return await self.backend.incr(key, ttl_seconds)
        finally:
            self.near.written([key])

    async def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        try:
            return await self.backend.incr_many(entries)
        finally:
            self.near.written([key for key, _ in entries])

    async def close(self) -> None:
        try:
            if self._owns_near:
                await _in_thread(self.near.close)
        finally:
            await self.backend.close()

    def cache_identity(self) -> Hashable:
        return self.backend.cache_identity()


async def _in_thread(work: Callable[[], None]) -> None:
    import asyncio

    await asyncio.to_thread(work)
