"""The async driver under the behavioural suites: ``pytest --driver=async``.

``AioSessionFacade`` stands where a boto3 Session stands in the tests: it is an
aiobotocore session (``register()`` sees one, and installs the async driver), and
its clients are aiobotocore clients whose coroutine methods each run to completion
on one event loop in a background thread. A test written with ``client.get_item(...)``
runs unchanged, and every handler of ours runs on that loop, awaited by aiobotocore.

The loop runs in asyncio's debug mode: a callback of ours that blocks it longer
than ``SLOW_CALLBACK_SECONDS`` is recorded, and the run fails (see conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Coroutine
from typing import Any

#: A step of the loop this long is a blocking call (a sync network call: an STS lookup,
#: DescribeTable, a cache call with its deadline). Coarse on purpose: a whole suite on a
#: loaded machine, with moto's server in this process, has slow steps of botocore's own;
#: tests/test_aiobotocore.py checks our handlers at 0.1 s, with a control that blocks.
SLOW_CALLBACK_SECONDS = 1.0


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if (
            "took" in message
            and "seconds" in message
            and not any(setup in message for setup in _NOT_OURS)
        ):
            self.seen.append(message)


#: Steps that block the loop without us: making and closing clients (aiobotocore loads
#: service models from disk synchronously).
_NOT_OURS = ("ClientCreatorContext", "ResourceCreatorContext", "__aenter__", "__aexit__")


class LoopThread:
    """One event loop, in debug mode, running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_debug(True)
        self.loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
        self.slow = _SlowCallbacks()
        logging.getLogger("asyncio").addHandler(self.slow)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="aio-loop")
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def on_loop(self) -> bool:
        return threading.current_thread() is self.thread


_LOOP: list[LoopThread] = []


def loop_thread() -> LoopThread:
    if not _LOOP:
        _LOOP.append(LoopThread())
    return _LOOP[0]


class Blocking:
    """An aiobotocore client or aioboto3 resource whose coroutines block until done
    (on the loop); objects they return that have their own coroutines are wrapped too."""

    def __init__(self, target: Any, runner: LoopThread) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name == "meta" or not callable(value) or inspect.isclass(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if not inspect.isawaitable(result):
                return _wrapped(result, self._runner)
            if self._runner.on_loop():  # called by our handlers (DescribeTable): await it
                return result
            return _wrapped(self._runner.run(_awaited(result)), self._runner)

        return call

    def __enter__(self) -> Any:  # aioboto3's batch_writer() is an async context manager
        return _wrapped(self._runner.run(self._target.__aenter__()), self._runner)

    def __exit__(self, *exc: Any) -> Any:
        return self._runner.run(self._target.__aexit__(*exc))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _wrapped(value: Any, runner: LoopThread) -> Any:
    """aioboto3's resources (a Table) have coroutine methods: wrap them."""
    if type(value).__module__.startswith("aioboto3") or hasattr(
        value, "get_available_subresources"
    ):
        return Blocking(value, runner)
    return value


class AioSessionFacade:
    """An aioboto3 session (so an aiobotocore one inside) with boto3.Session's
    ``client()`` and ``resource()``, whose objects block on the loop."""

    def __init__(self, *, region_name: str, **credentials: Any) -> None:
        import aioboto3

        self._runner = loop_thread()
        self.session = aioboto3.Session(region_name=region_name, **credentials)

    @property
    def events(self) -> Any:
        return self.session.events

    @property
    def _session(self) -> Any:  # what register() looks for on a boto3-style session
        return self.session._session

    def client(self, service: str, **kwargs: Any) -> Blocking:
        return Blocking(self._enter(self.session.client(service, **kwargs)), self._runner)

    def resource(self, service: str, **kwargs: Any) -> Blocking:
        return Blocking(self._enter(self.session.resource(service, **kwargs)), self._runner)

    def _enter(self, context: Any) -> Any:
        entered = self._runner.run(context.__aenter__())
        _OPEN.append((context, self._runner))
        return entered


_OPEN: list[tuple[Any, LoopThread]] = []


def close_clients() -> None:
    """Close every client made since the last call (at the end of each test)."""
    while _OPEN:
        context, runner = _OPEN.pop()
        with contextlib.suppress(Exception):
            runner.run(context.__aexit__(None, None, None))


def slow_callbacks() -> list[str]:
    """The slow-callback reports since the last call (and forget them)."""
    if not _LOOP:
        return []
    seen = list(_LOOP[0].slow.seen)
    _LOOP[0].slow.seen.clear()
    return seen
