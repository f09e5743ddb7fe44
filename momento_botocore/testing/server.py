"""A local Momento-protocol gRPC server for tests, with fault injection.

It speaks the wire protocol of ``momento-wire-types`` 0.135 (the version the
``momento`` 1.29 SDK pins), so the real SDK talks to it through
``CredentialProvider.for_momento_local(host, port)``. It implements what this
library uses: ``cache_client.Scs`` Get, GetBatch, Set, Delete, SetIfNotExists,
Increment, and ``control_client.ScsControl`` CreateCache, DeleteCache, ListCaches,
FlushCache. Every other RPC answers UNIMPLEMENTED.

Faithful where it matters: one key space per cache (the ``cache`` metadata
header), millisecond TTLs, NOT_FOUND for a cache that does not exist; ``Increment``
as Momento documents it (a base 10 integer in ASCII, a missing key counting as 0,
FAILED_PRECONDITION for a value that is not one or a sum outside 64 bits) and sets
the request's TTL on every call, an existing key's too.
Faults on demand: :meth:`LocalMomentoServer.fail`, :meth:`~LocalMomentoServer.delay`,
:meth:`~LocalMomentoServer.drop_connections`, :meth:`~LocalMomentoServer.stop`
and :meth:`~LocalMomentoServer.start` (the same port again).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from momento_wire_types import cacheclient_pb2 as cache_pb
from momento_wire_types import cacheclient_pb2_grpc as cache_grpc
from momento_wire_types import controlclient_pb2 as control_pb
from momento_wire_types import controlclient_pb2_grpc as control_grpc

from momento_botocore.backends.base import COUNTER_MAX, COUNTER_MIN, parse_counter

DEFAULT_CACHE = "momento-botocore-test"
#: The RPC names :meth:`LocalMomentoServer.fail` and :meth:`~LocalMomentoServer.delay` accept.
DATA_RPCS = frozenset({"Get", "GetBatch", "Set", "Delete", "SetIfNotExists", "Increment"})
CONTROL_RPCS = frozenset({"CreateCache", "DeleteCache", "ListCaches", "FlushCache"})
RPCS = DATA_RPCS | CONTROL_RPCS

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


class _Handlers:
    """Shared by both servicers: bookkeeping, faults and cache lookup for one RPC."""

    def __init__(self, server: LocalMomentoServer) -> None:
        self.server = server

    def enter(self, rpc: str, context: grpc.ServicerContext, *, data: bool) -> str:
        """Count the call, apply its faults; for data calls, the cache it names."""
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
        cache = dict(context.invocation_metadata()).get("cache")
        if not isinstance(cache, str) or not cache:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing 'cache' metadata header")
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
    Entries survive a stop and start (as the service keeps them through a network
    outage); :meth:`reset` empties everything.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        caches: Iterable[str] = (DEFAULT_CACHE,),
        clock: Clock = time.monotonic,
        max_workers: int = 16,
    ) -> None:
        self.host = host
        self._port = port
        self._initial_caches = tuple(caches)
        self._max_workers = max_workers
        self.store = _Store(clock)
        self.store.clear(self._initial_caches)
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
                    max_workers=self._max_workers, thread_name_prefix="local-momento"
                ),
                options=[("grpc.so_reuseport", 0)],
            )
            handlers = _Handlers(self)
            cache_grpc.add_ScsServicer_to_server(_Scs(handlers), server)  # type: ignore[no-untyped-call]
            control_grpc.add_ScsControlServicer_to_server(  # type: ignore[no-untyped-call]
                _ScsControl(handlers), server
            )
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
        """Stop listening and close every connection (in-flight calls are cancelled)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the entries."""
        self.stop()
        self.start()

    def drop_connections(self) -> None:
        """Cut every client connection at once; the server listens again immediately."""
        self.restart()

    def reset(self) -> None:
        """Empty all caches (back to the initial ones), clear faults and call counts."""
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
