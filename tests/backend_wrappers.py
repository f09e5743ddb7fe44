"""Backends for tests that wrap a real one (memory, or Momento through the SDK): every
call goes on to it, and the test can watch the calls, or pause one."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from momento_botocore.backends import Backend
from momento_botocore.backends.base import Entry, bulk_add, bulk_set, cache_identity

#: The calls that write to the cache.
WRITES = frozenset({"add", "add_many", "set", "set_many"})
#: How long a held call or a test waits for the other side; reached only when broken.
WAIT = 10.0


class WrappingBackend:
    """Passes every call of the backend protocol (the optional bulk ones included) on to
    ``inner``, after :meth:`before` has seen it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def before(self, name: str, keys: Sequence[str]) -> None:
        """Called with the method's name and the keys it touches, before ``inner`` is."""

    def get(self, key: str) -> bytes | None:
        self.before("get", [key])
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.before("get_many", keys)
        many = getattr(self.inner, "get_many", None)
        return list(many(keys)) if many is not None else [self.inner.get(key) for key in keys]

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        self.before("add", [key])
        return self.inner.add(key, value, ttl_seconds)

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        self.before("add_many", [key for key, _, _ in entries])
        return bulk_add(self.inner, entries)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.before("set", [key])
        self.inner.set(key, value, ttl_seconds)

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        self.before("set_many", [key for key, _, _ in entries])
        return bulk_set(self.inner, entries)

    def delete(self, key: str) -> None:
        self.before("delete", [key])
        self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()

    def cache_identity(self) -> Hashable:
        return cache_identity(self.inner)  # the same cache as the wrapped backend's


class RecordingBackend(WrappingBackend):
    """Counts the calls by method name, and the keys they touched."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()
        self.keys: set[str] = set()

    def before(self, name: str, keys: Sequence[str]) -> None:
        self.calls[name] += 1
        self.keys.update(keys)

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in WRITES)


class HeldBackend(WrappingBackend):
    """Calls ``on_write`` (when set) before each write: a :class:`HeldCall` hold there
    pauses a read between its cache lookup and its fill, whichever write the fill uses."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.on_write: Callable[..., None] | None = None

    def before(self, name: str, keys: Sequence[str]) -> None:
        if name in WRITES and self.on_write is not None:
            self.on_write()


class HeldCall:
    """Runs ``call`` in a thread that stops at the first :meth:`hold` it reaches, until
    the test calls :meth:`finish`. A hold reached from the test's own thread (its
    writes, say) does nothing, so it can be registered on a shared backend or emitter."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._owner = threading.current_thread()  # the test's: its writes are never held
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._armed = True
        self._held = threading.Event()
        self._resume = threading.Event()
        self._result: list[Any] = []

    def hold(self, *_: Any, **__: Any) -> None:
        # The call's own thread; with the async driver, a worker thread of the event loop
        # (a blocking backend runs in those): anything but the test's thread.
        if threading.current_thread() is self._owner or not self._armed:
            return
        self._armed = False
        self._held.set()
        if not self._resume.wait(WAIT):
            raise TimeoutError("the test never resumed the held call")

    def start(self) -> None:
        """Start the call; return once it is held."""
        self._thread.start()
        waited = 0.0
        while not self._held.wait(0.01):
            waited += 0.01
            assert self._thread.is_alive(), "the call finished without reaching its hold"
            assert waited < WAIT, "the call never reached its hold"

    def finish(self) -> Any:
        """Let the call go on; what it returned (or raise what it raised)."""
        self._resume.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the call did not finish"
        (value,) = self._result
        if isinstance(value, BaseException):
            raise value
        return value

    def _run(self) -> None:
        try:
            self._result.append(self._call())
        except BaseException as error:
            self._result.append(error)
