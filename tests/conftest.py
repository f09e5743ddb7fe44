"""Shared fixtures: a real moto server over HTTP, sessions, tables, clean state."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import urllib.request
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

import boto3
import botocore
import pytest
from moto.server import ThreadedMotoServer

import momento_botocore
from momento_botocore.accounts import forget_accounts
from momento_botocore.backends import AsyncBackend, AsyncMemoryBackend, Backend, MemoryBackend
from momento_botocore.backends.base import CounterEntry, Entry
from momento_botocore.pending import forget_shared

pytest_plugins = ("momento_botocore.testing.pytest_plugin",)

T = TypeVar("T")
REGION = "us-east-1"
#: moto's account for plain dummy credentials (found through STS: see moto_endpoint).
ACCOUNT = "123456789012"

# aiobotocore pins an older botocore than users get, so the main test environment has
# none: this suite runs on the newest botocore, and `make test` runs
# tests/test_aiobotocore.py in its own environment (.venv-aio); so does
# tests/test_async_example.py (docs/async.md's aioboto3 example) and
# tests/test_near_cache_aio.py. Named on the command
# line, a module is collected anyway, and fails loudly without aiobotocore.
if importlib.util.find_spec("aiobotocore") is None:
    collect_ignore = ["test_aiobotocore.py", "test_async_example.py", "test_near_cache_aio.py"]


def pytest_report_header() -> str:
    aio = importlib.util.find_spec("aiobotocore")
    return (
        f"botocore {botocore.__version__}, boto3 {boto3.__version__}, "
        f"aiobotocore {'installed' if aio else 'not installed'}"
    )


# Never reach real AWS from the tests, whatever the machine's environment says.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = REGION
os.environ.pop("MOMENTO_BOTOCORE_ENABLED", None)
for _name in ("AWS_ACCOUNT_ID", "MOMENTO_BOTOCORE_ACCOUNT_ID"):
    os.environ.pop(_name, None)
# A client's account is found with STS GetCallerIdentity, as a user's would be: sent
# to moto once its server runs (moto_endpoint), to nothing listening before.
os.environ["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9"
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # grpc's C core: no INFO lines on stderr


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port; fails (never skips) if it cannot start."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with urllib.request.urlopen(f"{url}/moto-api/", timeout=10) as response:
        assert response.status == 200, "moto server did not answer"
    os.environ["AWS_ENDPOINT_URL_STS"] = url  # botocore's own setting: STS goes to moto
    forget_accounts()
    yield url
    os.environ["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9"
    server.stop()


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    """The moto server, emptied before the test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return moto_endpoint


@pytest.fixture(autouse=True)
def _clean_registrations() -> Iterator[None]:
    momento_botocore.stats(reset=True)
    yield
    momento_botocore.unregister_all()
    forget_shared()  # pending tombstones outlive unregister(): not from test to test
    forget_accounts(failures_only=True)  # moto's answers stay true; a failure would not
    momento_botocore.stats(reset=True)


#: "sync" (botocore) or "async" (aiobotocore, in .venv-aio): set by --driver.
DRIVER = ["sync"]


def new_session(*, from_environment: bool = False, **credentials: str) -> Any:
    """A boto3 Session (with the test credentials unless given, or the environment's);
    with ``--driver=async``, an aioboto3 session that looks like one
    (tests/aio_facade.py): the same test then runs through the async driver."""
    if not credentials and not from_environment:
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if DRIVER[0] == "async":
        from aio_facade import AioSessionFacade

        return AioSessionFacade(region_name=REGION, **credentials)
    return boto3.Session(region_name=REGION, **credentials)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --driver=async, tests marked sync_only (they hand botocore's own objects
    to botocore's emitter, a Stubber say) are deselected, not skipped."""
    if config.getoption("--driver") != "async":
        return
    kept = [item for item in items if item.get_closest_marker("sync_only") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(autouse=True)
def driver(request: pytest.FixtureRequest) -> Iterator[str]:
    """The driver under test; after an async test, its clients are closed and any
    callback of ours that blocked the event loop fails it."""
    DRIVER[0] = request.config.getoption("--driver")
    yield DRIVER[0]
    if DRIVER[0] == "async":
        from aio_facade import close_clients, slow_callbacks

        close_clients()
        slow = slow_callbacks()
        assert not slow, f"the event loop was blocked: {slow}"


def create_table(
    client: Any,
    name: str = "items",
    *,
    hash_key: tuple[str, str] = ("pk", "S"),
    range_key: tuple[str, str] | None = None,
    stream_view: str | None = None,
) -> None:
    """Create a pay-per-request table, optionally with a stream."""
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    attributes = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
    if range_key is not None:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
    extra: dict[str, Any] = {}
    if stream_view is not None:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    client.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def canned_response(
    url: str, status: int, body: bytes, headers: dict[str, str] | None = None
) -> Any:
    """What a before-send handler returns to answer instead of DynamoDB: botocore's
    AWSResponse, or aiobotocore's (whose body is awaited) with --driver=async."""
    headers = headers or {}
    if DRIVER[0] == "async":
        from aiobotocore.awsrequest import AioAWSResponse

        class AsyncRaw:
            async def read(self) -> bytes:
                return body

        return AioAWSResponse(url, status, headers, AsyncRaw())
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    return AWSResponse(url, status, headers, Raw())


class RequestCounter:
    """Counts GetItem (or any) requests that botocore actually sends over the wire."""

    def __init__(self, client: Any, operation: str = "*") -> None:
        self.count = 0
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._count)

    def _count(self, **_: Any) -> None:
        self.count += 1


BACKENDS = ("memory", "momento")
#: The async backends (AsyncBackend), driven through SyncOverAsync where a test is sync.
ASYNC_BACKENDS = ("async-memory", "async-momento")


class SyncOverAsync:
    """An :class:`~momento_botocore.backends.base.AsyncBackend` with the sync backend's
    methods: each call runs to completion on the adapter's own event loop (one loop
    for the backend's life, as an aiobotocore program has). ``close()`` closes the
    backend, then the loop."""

    def __init__(self, backend: AsyncBackend) -> None:
        self.backend = backend
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def get(self, key: str) -> bytes | None:
        return self.run(self.backend.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.run(self.backend.get_many(keys))

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self.run(self.backend.add(key, value, ttl_seconds))

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.run(self.backend.set(key, value, ttl_seconds))

    def delete(self, key: str) -> None:
        self.run(self.backend.delete(key))

    def add_many(self, entries: Sequence[Entry]) -> list[bool | Exception]:
        return self.run(self.backend.add_many(entries))

    def set_many(self, entries: Sequence[Entry]) -> list[Exception | None]:
        return self.run(self.backend.set_many(entries))

    def incr(self, key: str, ttl_seconds: float) -> int:
        return self.run(self.backend.incr(key, ttl_seconds))

    def incr_many(self, entries: Sequence[CounterEntry]) -> list[int | Exception]:
        return self.run(self.backend.incr_many(entries))

    def close(self) -> None:
        if not self.loop.is_closed():
            try:
                self.run(self.backend.close())
            finally:
                self.loop.close()

    def cache_identity(self) -> Hashable:
        return self.backend.cache_identity()


def made_backend(kind: str, request: pytest.FixtureRequest, **kwargs: Any) -> Backend:
    """A fresh backend of ``kind`` (BACKENDS or ASYNC_BACKENDS; an async one behind
    SyncOverAsync): memory, or momento through the real SDK against the local
    Momento-protocol server."""
    if kind == "memory":
        return MemoryBackend(**kwargs)
    if kind == "async-memory":
        return SyncOverAsync(AsyncMemoryBackend(MemoryBackend(**kwargs), close_memory=True))
    from momento_botocore.testing import DEFAULT_CACHE

    server = request.getfixturevalue("momento_server")
    kwargs.setdefault("request_timeout", 2.0)  # loaded machines (fault tests: short)
    if kind == "momento":
        from momento_botocore.backends.momento import MomentoBackend

        return MomentoBackend(
            DEFAULT_CACHE, credential_provider=server.credential_provider(), **kwargs
        )
    assert kind == "async-momento", kind
    from momento_botocore.backends.momento_async import AsyncMomentoBackend

    return SyncOverAsync(
        AsyncMomentoBackend(
            DEFAULT_CACHE, credential_provider=server.credential_provider(), **kwargs
        )
    )


def _factory(kind: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Backend]]:
    made: list[Backend] = []

    def make(**kwargs: Any) -> Backend:
        backend = made_backend(kind, request, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture(params=BACKENDS)
def backend_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Backend]]:
    """Makes fresh backends of one kind per parameter: memory, and momento through
    the real SDK against the local Momento-protocol server. Closed after the test."""
    yield from _factory(request.param, request)


@pytest.fixture(params=BACKENDS + ASYNC_BACKENDS)
def contract_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """One fresh backend of every kind in turn, the async ones through SyncOverAsync
    (the backend contract suite). Closed after the test."""
    factory = _factory(request.param, request)
    yield next(factory)()
    next(factory, None)


@pytest.fixture
def any_backend(backend_factory: Callable[..., Backend]) -> Backend:
    """One fresh backend, of each kind in turn."""
    return backend_factory()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--driver",
        choices=("sync", "async"),
        default="sync",
        help="sessions of the behavioural suites: botocore (sync driver) or aiobotocore "
        "(async driver; needs aiobotocore: the .venv-aio environment)",
    )
    parser.addoption(
        "--default-backend",
        choices=BACKENDS,
        default="memory",
        help="backend that register() builds when none is given: run the read-path "
        "tests unchanged against Momento (real SDK, local Momento-protocol server)",
    )
    parser.addoption(
        "--near-cache",
        action="store_true",
        help="with --default-backend=momento: a near cache in front of Momento in every "
        "backend built (its subscription live before the test goes on)",
    )


def pytest_configure(config: pytest.Config) -> None:
    NEAR_CACHE[0] = bool(config.getoption("--near-cache"))
    config.addinivalue_line(
        "markers",
        "cache_free(reason): the test never reaches a cache by design (with "
        "--default-backend=momento, every other test must reach Momento)",
    )


NEAR_CACHE = [False]  # --near-cache


def _momento_config(config: momento_botocore.CacheConfig) -> momento_botocore.CacheConfig:
    """``config`` on the local server's cache; with --near-cache, a near cache too."""
    from momento_botocore.testing import DEFAULT_CACHE

    # A long deadline: 32-thread tests share two cores with the in-process server.
    config = config.replace(
        backend="momento", momento_cache_name=DEFAULT_CACHE, momento_request_timeout=5.0
    )
    if NEAR_CACHE[0]:
        config = config.replace(near_cache_items=10_000, near_cache_ttl=60)
    return config


def _live(backend: Any) -> Any:
    near = getattr(backend, "near", None)
    if near is not None and near.subscriber is not None:
        assert near.subscriber.wait_live(10), f"no live subscription: {near.subscriber.last_error}"
    return backend


def _default_momento_backend(server: Any, config: momento_botocore.CacheConfig) -> Backend:
    """What register() builds for ``config`` with --default-backend=momento."""
    from momento_botocore.backends.factory import create_backend

    backend = create_backend(
        _momento_config(config), credential_provider=server.credential_provider()
    )
    return _live(backend)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _default_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.config.getoption("--default-backend") != "momento":
        yield
        return
    from momento_botocore import registration
    from momento_botocore.testing.server import DATA_RPCS

    server = request.getfixturevalue("momento_server")
    monkeypatch.setattr(
        registration, "create_backend", lambda config: _default_momento_backend(server, config)
    )

    def momento_async_backend(config: momento_botocore.CacheConfig, **options: Any) -> Any:
        from momento_botocore.backends.factory import create_async_backend

        backend = create_async_backend(
            _momento_config(config),
            credential_provider=server.credential_provider(),
            shared_near=options.get("shared_near"),
        )
        return _live(backend)

    monkeypatch.setattr(registration, "create_async_backend", momento_async_backend)
    yield
    # A test run with --default-backend=momento that never reached Momento tested memory,
    # or nothing: say so, unless it is marked as never reaching a cache.
    if request.node.get_closest_marker("cache_free") is None:
        assert sum(server.calls(rpc) for rpc in DATA_RPCS) > 0, (
            f"{request.node.name} ran with --default-backend=momento but never reached Momento"
        )


@pytest.fixture
def default_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend of the kind register() builds when it is given none (--default-backend),
    for tests that look into the cache or wrap it: they run on Momento too."""
    from momento_botocore.backends.factory import create_backend

    config = momento_botocore.CacheConfig(ttl=60)
    backend: Backend
    if request.config.getoption("--default-backend") == "momento":
        backend = _default_momento_backend(request.getfixturevalue("momento_server"), config)
    else:
        backend = create_backend(config)
    yield backend
    backend.close()
