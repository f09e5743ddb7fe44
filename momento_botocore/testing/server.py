"""A local Momento-protocol gRPC server for tests, with fault injection.

It speaks the wire protocol of ``momento-wire-types`` 0.135 (the version the
``momento`` 1.29 SDK pins), so the real SDK talks to it through
``CredentialProvider.for_momento_local(host, port)``. It implements what this
library uses: ``cache_client.Scs`` Get, GetBatch, Set, Delete, SetIfNotExists,
Increment; ``control_client.ScsControl`` CreateCache, DeleteCache, ListCaches,
FlushCache; and topics, ``cache_client.pubsub.Pubsub`` Publish and Subscribe.
Every other RPC answers UNIMPLEMENTED.

Faithful where it matters: one key space per cache (the ``cache`` metadata
header), millisecond TTLs, NOT_FOUND for a cache that does not exist; ``Increment``
as Momento documents it (a base 10 integer in ASCII, a missing key counting as 0,
FAILED_PRECONDITION for a value that is not one or a sum outside 64 bits) and sets
the request's TTL on every call, an existing key's too.
Topics as the service runs them: the cache is named in the request (the SDK sends no
``cache`` header for them); each topic numbers its messages from 1 within a
``sequence_page`` fixed for its lifetime and keeps its last ``topic_history``
messages; a subscription gets a heartbeat first (the SDK's ``subscribe()`` waits for
it), then every message in order, and a heartbeat whenever it has been idle
``heartbeat_interval`` seconds. ``resume_at_topic_sequence_number`` replays what is
kept, with a discontinuity for what is not (or for another page's numbers); 0 means
from now on. A subscriber that falls ``topic_history`` messages behind gets a
discontinuity too.
Faults on demand: :meth:`LocalMomentoServer.fail`, :meth:`~LocalMomentoServer.delay`,
:meth:`~LocalMomentoServer.drop_connections`, :meth:`~LocalMomentoServer.stop`
and :meth:`~LocalMomentoServer.start` (the same port again); for topics also
:meth:`~LocalMomentoServer.skip_messages` (lost messages: a gap in the sequence
numbers), :meth:`~LocalMomentoServer.end_subscriptions` and
:meth:`~LocalMomentoServer.publish_raw`. Stopping ends every subscription (the
client sees UNAVAILABLE) and returns once their handlers have.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from momento_wire_types import cacheclient_pb2 as cache_pb
from momento_wire_types import cacheclient_pb2_grpc as cache_grpc
from momento_wire_types import cachepubsub_pb2 as pubsub_pb
from momento_wire_types import cachepubsub_pb2_grpc as pubsub_grpc
from momento_wire_types import common_pb2 as common_pb
from momento_wire_types import controlclient_pb2 as control_pb
from momento_wire_types import controlclient_pb2_grpc as control_grpc

from momento_botocore.backends.base import COUNTER_MAX, COUNTER_MIN, parse_counter

DEFAULT_CACHE = "momento-botocore-test"
#: The cache data RPCs (``cache_client.Scs``); :meth:`LocalMomentoServer.fail` and
#: :meth:`~LocalMomentoServer.delay` without names apply to these.
DATA_RPCS = frozenset({"Get", "GetBatch", "Set", "Delete", "SetIfNotExists", "Increment"})
CONTROL_RPCS = frozenset({"CreateCache", "DeleteCache", "ListCaches", "FlushCache"})
#: The topic RPCs (``cache_client.pubsub.Pubsub``); faults apply to them when named.
TOPIC_RPCS = frozenset({"Publish", "Subscribe"})
#: Every RPC name :meth:`LocalMomentoServer.fail`, :meth:`~LocalMomentoServer.delay` and
#: :meth:`~LocalMomentoServer.calls` accept.
RPCS = DATA_RPCS | CONTROL_RPCS | TOPIC_RPCS

Clock = Callable[[], float]


@dataclass
class _Fault:
    code: grpc.StatusCode | None = None
    message: str = ""
    delay: float = 0.0
    remaining: int | None = None  # None: every call


class _Store:
    """Per-cache key spaces with millisecond expiry. Thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._caches: dict[str, dict[bytes, tuple[bytes, float]]] = {}

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def create(self, cache: str) -> bool:
        with self._lock:
            if cache in self._caches:
                return False
            self._caches[cache] = {}
            return True

    def drop(self, cache: str) -> bool:
        with self._lock:
            return self._caches.pop(cache, None) is not None

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._caches)

    def exists(self, cache: str) -> bool:
        with self._lock:
            return cache in self._caches

    def flush(self, cache: str) -> bool:
        with self._lock:
            space = self._caches.get(cache)
            if space is None:
                return False
            space.clear()
            return True

    def get(self, cache: str, key: bytes) -> bytes | None:
        with self._lock:
            space = self._caches[cache]
            found = space.get(key)
            if found is None:
                return None
            if found[1] <= self._now_ms():
                del space[key]
                return None
            return found[0]

    def put(self, cache: str, key: bytes, value: bytes, ttl_ms: int, *, only_new: bool) -> bool:
        with self._lock:
            space = self._caches[cache]
            now = self._now_ms()
            found = space.get(key)
            if only_new and found is not None and found[1] > now:
                return False
            space[key] = (value, now + ttl_ms)
            return True

    def increment(self, cache: str, key: bytes, amount: int, ttl_ms: int) -> int | None:
        """Add ``amount`` (a missing or expired key holds 0) and store the sum as ASCII
        decimal with the TTL given; None (nothing changed) if the value there is not an
        integer or the sum leaves 64 bits."""
        with self._lock:
            space = self._caches[cache]
            now = self._now_ms()
            found = space.get(key)
            current = 0 if found is None or found[1] <= now else parse_counter(found[0])
            if current is None or not COUNTER_MIN <= current + amount <= COUNTER_MAX:
                return None
            space[key] = (str(current + amount).encode(), now + ttl_ms)
            return current + amount

    def delete(self, cache: str, key: bytes) -> None:
        with self._lock:
            self._caches[cache].pop(key, None)

    def clear(self, caches: Iterable[str]) -> None:
        with self._lock:
            self._caches = {name: {} for name in caches}


_HEARTBEAT = pubsub_pb._SubscriptionItem(heartbeat=pubsub_pb._Heartbeat())
#: The longest a waiting subscription goes without looking at its call (a safety net:
#: its end, a publish and a stop wake it at once).
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class _Message:
    sequence: int
    item: Any  # the _SubscriptionItem every subscriber receives


class _Topic:
    """One topic of one cache: its numbering, its page and its retained messages."""

    def __init__(self, lock: threading.Lock) -> None:
        # The service gives each topic lifetime a page ("sequence stamp"); a subscriber
        # resuming with another page gets a discontinuity.
        self.page = random.randrange(1, 2**32)
        self.next_sequence = 1
        self.history: deque[_Message] = deque()
        self.evicted_up_to = 0  # every message numbered up to this one is gone
        self.changed = threading.Condition(lock)

    def first_retained(self) -> int:
        return self.history[0].sequence if self.history else self.next_sequence


class _Subscription:
    """A live Subscribe call: where it reads in its topic, and whether it must end."""

    def __init__(self, cache: str, name: str, topic: _Topic, cursor: int) -> None:
        self.cache = cache
        self.name = name
        self.topic = topic
        self.cursor = cursor  # the next sequence number it delivers
        self.announce: Any = None  # a _SubscriptionItem (discontinuity) to send first
        self.ended: tuple[grpc.StatusCode, str] | None = None


class _Topics:
    """Topics per cache, each with a bounded history and its live subscriptions.

    A subscription reads its topic's history from its cursor, so every subscriber sees
    every message in order; one more than ``history_size`` messages behind (or resuming
    from a message no longer kept) gets a discontinuity and goes on from the oldest
    message kept. Thread-safe.
    """

    def __init__(self, history_size: int) -> None:
        if history_size < 1:
            raise ValueError(f"topic history must keep at least 1 message, got {history_size}")
        self._history_size = history_size
        self._lock = threading.Lock()
        self._left = threading.Condition(self._lock)  # notified when a subscription leaves
        self._topics: dict[tuple[str, str], _Topic] = {}
        self._subscriptions: set[_Subscription] = set()

    def _topic(self, cache: str, name: str) -> _Topic:
        topic = self._topics.get((cache, name))
        if topic is None:
            topic = self._topics[(cache, name)] = _Topic(self._lock)
        return topic

    def publish(self, cache: str, name: str, value: Any) -> int:
        """Append ``value`` (a ``_TopicValue``) and wake the topic's subscribers; its number."""
        with self._lock:
            topic = self._topic(cache, name)
            sequence = topic.next_sequence
            topic.next_sequence += 1
            item = pubsub_pb._SubscriptionItem(
                item=pubsub_pb._TopicItem(
                    topic_sequence_number=sequence, value=value, sequence_page=topic.page
                )
            )
            if len(topic.history) >= self._history_size:
                topic.evicted_up_to = topic.history.popleft().sequence
            topic.history.append(_Message(sequence, item))
            topic.changed.notify_all()
            return sequence

    def skip(self, cache: str, name: str, count: int) -> int:
        """Use up ``count`` sequence numbers without a message; the next number."""
        with self._lock:
            topic = self._topic(cache, name)
            topic.next_sequence += count
            return topic.next_sequence

    def subscribe(
        self, cache: str, name: str, resume_at: int, page: int, limit: int
    ) -> _Subscription | None:
        """A new live subscription (None: ``limit`` subscriptions are live already)."""
        with self._lock:
            if len(self._subscriptions) >= limit:
                return None
            topic = self._topic(cache, name)
            subscription = _Subscription(cache, name, topic, topic.next_sequence)
            if resume_at > 0:
                if (page != 0 and page != topic.page) or resume_at > topic.next_sequence:
                    # Numbers of another lifetime of the topic (or never given): go on
                    # live, saying so.
                    subscription.announce = _discontinuity(
                        resume_at - 1, topic.next_sequence, topic.page
                    )
                else:
                    subscription.cursor = resume_at  # replay; _due reports what is gone
            self._subscriptions.add(subscription)
            return subscription

    def take(
        self, subscription: _Subscription, timeout: float, is_active: Callable[[], bool]
    ) -> list[Any] | None:
        """What ``subscription`` has to send next: its discontinuity and messages, as
        soon as there are any; [] after ``timeout`` seconds without any; None once it
        is ended or its call is over."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if subscription.ended is not None or not is_active():
                    return None
                due = self._due(subscription)
                if due:
                    return due
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                subscription.topic.changed.wait(min(left, _POLL_SECONDS))

    def _due(self, subscription: _Subscription) -> list[Any]:
        topic = subscription.topic
        due: list[Any] = []
        if subscription.announce is not None:
            due.append(subscription.announce)
            subscription.announce = None
        if subscription.cursor <= topic.evicted_up_to:
            first = topic.first_retained()
            due.append(_discontinuity(subscription.cursor - 1, first, topic.page))
            subscription.cursor = first
        pending: list[_Message] = []
        for message in reversed(topic.history):
            if message.sequence < subscription.cursor:
                break
            pending.append(message)
        if pending:
            subscription.cursor = pending[0].sequence + 1
            due.extend(message.item for message in reversed(pending))
        return due

    def wake(self, subscription: _Subscription) -> None:
        with self._lock:
            subscription.topic.changed.notify_all()

    def leave(self, subscription: _Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
            self._left.notify_all()

    def end(
        self,
        code: grpc.StatusCode,
        reason: str,
        *,
        cache: str | None = None,
        name: str | None = None,
        drop: bool = False,
    ) -> int:
        """End the live subscriptions (of ``cache``, of its topic ``name``) with ``code``;
        with ``drop``, forget those topics too. How many ended."""
        with self._lock:
            ended = 0
            for subscription in self._subscriptions:
                if cache is not None and subscription.cache != cache:
                    continue
                if name is not None and subscription.name != name:
                    continue
                if subscription.ended is None:
                    subscription.ended = (code, reason)
                    ended += 1
                subscription.topic.changed.notify_all()
            if drop:
                for key in [k for k in self._topics if cache is None or k[0] == cache]:
                    if name is None or key[1] == name:
                        del self._topics[key]
            return ended

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no subscription is live (their handlers have returned)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._subscriptions:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._left.wait(left)
            return True

    def live(self, cache: str | None = None, name: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for s in self._subscriptions
                if (cache is None or s.cache == cache) and (name is None or s.name == name)
            )


def _discontinuity(last: int, new: int, page: int) -> Any:
    return pubsub_pb._SubscriptionItem(
        discontinuity=pubsub_pb._Discontinuity(
            last_topic_sequence=max(last, 0), new_topic_sequence=new, new_sequence_page=page
        )
    )


class _Handlers:
    """Shared by both servicers: bookkeeping, faults and cache lookup for one RPC."""

    def __init__(self, server: LocalMomentoServer) -> None:
        self.server = server

    def enter(
        self, rpc: str, context: grpc.ServicerContext, *, data: bool, cache: str | None = None
    ) -> str:
        """Count the call, apply its faults; for data calls, the cache it names (the
        ``cache`` metadata header, or ``cache``: topic calls name it in the request)."""
        self.server._record(rpc)
        fault = self.server._fault_for(rpc)
        if fault is not None:
            if fault.delay > 0:
                deadline = time.monotonic() + fault.delay
                while context.is_active() and time.monotonic() < deadline:
                    time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
            if fault.code is not None:
                context.abort(fault.code, fault.message or f"injected fault on {rpc}")
        if not data:
            return ""
        if cache is None:
            cache = dict(context.invocation_metadata()).get("cache")
            if not isinstance(cache, str) or not cache:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing 'cache' metadata header")
        elif not cache:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing cache name")
        assert isinstance(cache, str)
        if not self.server.store.exists(cache):
            context.abort(grpc.StatusCode.NOT_FOUND, f"cache not found: {cache}")
        return cache


class _Scs(cache_grpc.ScsServicer):
    def __init__(self, handlers: _Handlers) -> None:
        self._h = handlers
        self._store = handlers.server.store

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._h.enter("Get", context, data=True)
        value = self._store.get(cache, request.cache_key)
        if value is None:
            return cache_pb._GetResponse(result=cache_pb.Miss)
        return cache_pb._GetResponse(result=cache_pb.Hit, cache_body=value)

    def GetBatch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        # One answer per key, in the order of the keys (as the service streams them).
        cache = self._h.enter("GetBatch", context, data=True)
        get = self._store.get
        for item in request.items:
            value = get(cache, item.cache_key)
            if value is None:
                yield cache_pb._GetResponse(result=cache_pb.Miss)
            else:
                yield cache_pb._GetResponse(result=cache_pb.Hit, cache_body=value)

    def Set(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._h.enter("Set", context, data=True)
        ttl = _checked_ttl(request.ttl_milliseconds, context)
        self._store.put(cache, request.cache_key, request.cache_body, ttl, only_new=False)
        return cache_pb._SetResponse(result=cache_pb.Ok)

    def SetIfNotExists(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._h.enter("SetIfNotExists", context, data=True)
        ttl = _checked_ttl(request.ttl_milliseconds, context)
        if self._store.put(cache, request.cache_key, request.cache_body, ttl, only_new=True):
            return cache_pb._SetIfNotExistsResponse(
                stored=cache_pb._SetIfNotExistsResponse._Stored()
            )
        return cache_pb._SetIfNotExistsResponse(
            not_stored=cache_pb._SetIfNotExistsResponse._NotStored()
        )

    def Increment(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._h.enter("Increment", context, data=True)
        ttl = _checked_ttl(request.ttl_milliseconds, context)
        value = self._store.increment(cache, request.cache_key, request.amount, ttl)
        if value is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the value is not a base 10 integer, or the sum is outside 64 bits",
            )
        return cache_pb._IncrementResponse(value=value)

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._h.enter("Delete", context, data=True)
        self._store.delete(cache, request.cache_key)
        return cache_pb._DeleteResponse()


class _Pubsub(pubsub_grpc.PubsubServicer):
    """Topics: the cache is named in the request (the SDK sends no ``cache`` header)."""

    def __init__(self, handlers: _Handlers) -> None:
        self._h = handlers
        self._topics = handlers.server.topics

    def _enter(self, rpc: str, request: Any, context: grpc.ServicerContext) -> str:
        cache = self._h.enter(rpc, context, data=True, cache=request.cache_name)
        if not request.topic:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing topic name")
        return cache

    def Publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        cache = self._enter("Publish", request, context)
        if request.value.WhichOneof("kind") is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a topic value is text or binary")
        self._topics.publish(cache, request.topic, request.value)
        return common_pb._Empty()

    def Subscribe(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        cache = self._enter("Subscribe", request, context)
        return self._stream(cache, request, context)

    def _stream(self, cache: str, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        # A generator: its finally runs once the call is over, however it ends.
        server = self._h.server
        subscription = self._topics.subscribe(
            cache,
            request.topic,
            request.resume_at_topic_sequence_number,
            request.sequence_page,
            server.max_subscriptions,
        )
        if subscription is None:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{server.max_subscriptions} subscriptions are live already",
            )
        assert subscription is not None
        topics = self._topics
        try:
            # The call's end (the client cancels, the server stops) wakes it at once.
            context.add_callback(lambda: topics.wake(subscription))
            yield _HEARTBEAT  # always first: the SDK's subscribe() waits for it
            while True:
                due = topics.take(subscription, server.heartbeat_interval, context.is_active)
                if due is None:
                    break
                yield from due or (_HEARTBEAT,)
            if subscription.ended is not None and context.is_active():
                context.abort(*subscription.ended)
        finally:
            topics.leave(subscription)


class _ScsControl(control_grpc.ScsControlServicer):
    def __init__(self, handlers: _Handlers) -> None:
        self._h = handlers
        self._store = handlers.server.store

    def CreateCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._h.enter("CreateCache", context, data=False)
        if not self._store.create(request.cache_name):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"cache exists: {request.cache_name}")
        return control_pb._CreateCacheResponse()

    def DeleteCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._h.enter("DeleteCache", context, data=False)
        if not self._store.drop(request.cache_name):
            context.abort(grpc.StatusCode.NOT_FOUND, f"cache not found: {request.cache_name}")
        self._h.server.topics.end(
            grpc.StatusCode.NOT_FOUND,
            f"cache deleted: {request.cache_name}",
            cache=request.cache_name,
            drop=True,
        )
        return control_pb._DeleteCacheResponse()

    def ListCaches(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._h.enter("ListCaches", context, data=False)
        return control_pb._ListCachesResponse(
            cache=[control_pb._Cache(cache_name=name) for name in self._store.names()]
        )

    def FlushCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._h.enter("FlushCache", context, data=False)
        if not self._store.flush(request.cache_name):
            context.abort(grpc.StatusCode.NOT_FOUND, f"cache not found: {request.cache_name}")
        return control_pb._FlushCacheResponse()


def _checked_ttl(ttl_ms: int, context: grpc.ServicerContext) -> int:
    if ttl_ms <= 0:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ttl must be positive, got {ttl_ms} ms")
    if ttl_ms > 24 * 60 * 60 * 1000:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ttl exceeds the 24 h limit")
    return ttl_ms


class LocalMomentoServer:
    """A Momento-protocol server on loopback, for tests. Not for production use.

    ``port=0`` picks a free port on the first :meth:`start`; later starts reuse it,
    so a client made before a :meth:`stop` reaches the server again after :meth:`start`.
    Entries and topics survive a stop and start (as the service keeps them through a
    network outage); :meth:`reset` empties everything.

    Topics: each live subscription holds one of the server's threads until it ends, so
    the pool has ``max_workers`` threads for other calls plus ``max_subscriptions`` for
    subscriptions (threads start as needed); a subscription beyond that many answers
    RESOURCE_EXHAUSTED. A subscription is sent a heartbeat first, then every
    ``heartbeat_interval`` seconds it has nothing else to send. Each topic keeps its
    last ``topic_history`` messages for subscribers that resume or fall behind.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        caches: Iterable[str] = (DEFAULT_CACHE,),
        clock: Clock = time.monotonic,
        max_workers: int = 16,
        max_subscriptions: int = 100,
        heartbeat_interval: float = 1.0,
        topic_history: int = 1000,
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}")
        self.host = host
        self._port = port
        self._initial_caches = tuple(caches)
        self._max_workers = max_workers
        self.store = _Store(clock)
        self.store.clear(self._initial_caches)
        self.max_subscriptions = max_subscriptions
        self.heartbeat_interval = heartbeat_interval
        self.topics = _Topics(topic_history)
        self._server: grpc.Server | None = None
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}
        self._calls: Counter[str] = Counter()

    # Lifecycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port, known after the first :meth:`start`."""
        if self._port == 0:
            raise RuntimeError("the server has not been started yet: its port is not chosen")
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LocalMomentoServer:
        """Listen (again); raises RuntimeError if the port cannot be bound."""
        with self._lock:
            if self._server is not None:
                return self
            server = grpc.server(
                futures.ThreadPoolExecutor(
                    max_workers=self._max_workers + self.max_subscriptions,
                    thread_name_prefix="local-momento",
                ),
                options=[("grpc.so_reuseport", 0)],
            )
            handlers = _Handlers(self)
            cache_grpc.add_ScsServicer_to_server(_Scs(handlers), server)  # type: ignore[no-untyped-call]
            control_grpc.add_ScsControlServicer_to_server(  # type: ignore[no-untyped-call]
                _ScsControl(handlers), server
            )
            pubsub_grpc.add_PubsubServicer_to_server(_Pubsub(handlers), server)  # type: ignore[no-untyped-call]
            address = f"{self.host}:{self._port}"
            try:
                bound = server.add_insecure_port(address)
            except RuntimeError as error:
                raise RuntimeError(f"local Momento server cannot bind {address}: {error}") from None
            if bound == 0:
                raise RuntimeError(f"local Momento server cannot bind {address}")
            server.start()
            self._port = bound
            self._server = server
            return self

    def stop(self, grace: float | None = None) -> None:
        """Stop listening and close every connection (in-flight calls are cancelled,
        live subscriptions too: their handlers' threads have returned when it returns)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()
            # grpc has cancelled the calls; wake the subscriptions' handlers to return.
            self.topics.end(grpc.StatusCode.UNAVAILABLE, "the server stopped")
            self.topics.wait_idle(timeout=2.0)

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the entries."""
        self.stop()
        self.start()

    def drop_connections(self) -> None:
        """Cut every client connection at once; the server listens again immediately."""
        self.restart()

    def reset(self) -> None:
        """Empty all caches (back to the initial ones), forget every topic (live
        subscriptions end with UNAVAILABLE), clear faults and call counts."""
        self.topics.end(grpc.StatusCode.UNAVAILABLE, "the server was reset", drop=True)
        self.store.clear(self._initial_caches)
        self.clear_faults()
        with self._lock:
            self._calls.clear()

    def __enter__(self) -> LocalMomentoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # For clients ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def credential_provider(self) -> Any:
        """A ``momento.CredentialProvider`` that reaches this server (plaintext)."""
        from momento import CredentialProvider

        return CredentialProvider.for_momento_local(self.host, self.port)

    # Fault injection ----------------------------------------------------------------

    def fail(
        self,
        *rpcs: str,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "",
        times: int | None = None,
    ) -> None:
        """Answer ``rpcs`` (e.g. ``"Get"``) with ``code``: ``times`` calls, or every call."""
        names = _checked(rpcs)
        with self._lock:
            for rpc in names:
                fault = self._faults.setdefault(rpc, _Fault())
                fault.code, fault.message, fault.remaining = code, message, times

    def delay(self, *rpcs: str, seconds: float, times: int | None = None) -> None:
        """Hold ``rpcs`` for ``seconds`` before answering (or failing, if also failed)."""
        names = _checked(rpcs)
        with self._lock:
            for rpc in names:
                fault = self._faults.setdefault(rpc, _Fault())
                fault.delay, fault.remaining = seconds, times

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # Inspection -------------------------------------------------------------------

    def calls(self, rpc: str | None = None) -> int:
        """How many calls of ``rpc`` (or of any RPC) reached the server."""
        with self._lock:
            return sum(self._calls.values()) if rpc is None else self._calls[rpc]

    def put_raw(
        self, key: str | bytes, value: bytes, *, cache: str = DEFAULT_CACHE, ttl: float = 60.0
    ) -> None:
        """Store ``value`` directly (for example garbage, to test decoding failures)."""
        raw_key = key.encode() if isinstance(key, str) else key
        self.store.put(cache, raw_key, value, int(ttl * 1000), only_new=False)

    def get_raw(self, key: str | bytes, *, cache: str = DEFAULT_CACHE) -> bytes | None:
        raw_key = key.encode() if isinstance(key, str) else key
        return self.store.get(cache, raw_key)

    # Topics -----------------------------------------------------------------------

    def publish_raw(self, topic: str, value: str | bytes, *, cache: str = DEFAULT_CACHE) -> int:
        """Publish ``value`` (text or binary) as a Publish call would, without counting
        a call or applying faults; its topic sequence number."""
        self._check_cache(cache)
        if isinstance(value, str):
            topic_value = pubsub_pb._TopicValue(text=value)
        else:
            topic_value = pubsub_pb._TopicValue(binary=value)
        return self.topics.publish(cache, topic, topic_value)

    def skip_messages(self, topic: str, n: int = 1, *, cache: str = DEFAULT_CACHE) -> int:
        """Lose ``n`` messages of ``topic``: its sequence numbers advance by ``n`` with
        nothing delivered, so subscribers see a gap in ``topic_sequence_number`` at the
        next message (and no discontinuity: a loss nobody noticed). The number the next
        message gets."""
        if n < 1:
            raise ValueError(f"skip at least 1 message, got {n}")
        self._check_cache(cache)
        return self.topics.skip(cache, topic, n)

    def subscriptions(self, topic: str | None = None, *, cache: str | None = None) -> int:
        """How many Subscribe calls are in progress (of ``cache``, of its ``topic``): a
        subscription counts until its handler has returned (at once when the client
        unsubscribes or the server ends it; :meth:`stop` waits for it)."""
        return self.topics.live(cache, topic)

    def end_subscriptions(
        self,
        topic: str | None = None,
        *,
        cache: str | None = None,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = "",
    ) -> int:
        """End the live subscriptions (of ``cache``, of its ``topic``) with ``code``,
        leaving connections and other calls alone; how many ended."""
        return self.topics.end(
            code, message or "subscription ended by the server", cache=cache, name=topic
        )

    def _check_cache(self, cache: str) -> None:
        if not self.store.exists(cache):
            raise KeyError(f"cache not found: {cache}")

    # Internals ----------------------------------------------------------------------

    def _record(self, rpc: str) -> None:
        with self._lock:
            self._calls[rpc] += 1

    def _fault_for(self, rpc: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(rpc)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[rpc]
            return _Fault(fault.code, fault.message, fault.delay, None)


def _checked(rpcs: Iterable[str]) -> list[str]:
    names = list(rpcs) or sorted(DATA_RPCS)
    unknown = [name for name in names if name not in RPCS]
    if unknown:
        raise ValueError(f"unknown RPC {unknown}; choose from {sorted(RPCS)}")
    return names
