"""Shared fixtures: a real moto server over HTTP, sessions, tables, clean state."""

from __future__ import annotations

import importlib.util
import os
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore
import pytest
from moto.server import ThreadedMotoServer

import momento_botocore
from momento_botocore.accounts import forget_accounts
from momento_botocore.backends import Backend, MemoryBackend
from momento_botocore.pending import forget_shared

pytest_plugins = ("momento_botocore.testing.pytest_plugin",)

REGION = "us-east-1"
#: moto's account for plain dummy credentials (found through STS: see moto_endpoint).
ACCOUNT = "123456789012"

# aiobotocore pins an older botocore than users get, so the main test environment has
# none: this suite runs on the newest botocore, and `make test` runs
# tests/test_aiobotocore.py in its own environment (.venv-aio). Named on the command
# line, the module is collected anyway, and fails loudly without aiobotocore.
if importlib.util.find_spec("aiobotocore") is None:
    collect_ignore = ["test_aiobotocore.py"]


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


def new_session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


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


class RequestCounter:
    """Counts GetItem (or any) requests that botocore actually sends over the wire."""

    def __init__(self, client: Any, operation: str = "*") -> None:
        self.count = 0
        client.meta.events.register(f"before-send.dynamodb.{operation}", self._count)

    def _count(self, **_: Any) -> None:
        self.count += 1


BACKENDS = ("memory", "momento")


@pytest.fixture(params=BACKENDS)
def backend_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Backend]]:
    """Makes fresh backends of one kind per parameter: memory, and momento through
    the real SDK against the local Momento-protocol server. Closed after the test."""
    made: list[Backend] = []

    def make(**kwargs: Any) -> Backend:
        backend: Backend
        if request.param == "memory":
            backend = MemoryBackend(**kwargs)
        else:
            from momento_botocore.backends.momento import MomentoBackend
            from momento_botocore.testing import DEFAULT_CACHE

            server = request.getfixturevalue("momento_server")
            kwargs.setdefault("request_timeout", 2.0)  # loaded machines (fault tests: short)
            backend = MomentoBackend(
                DEFAULT_CACHE, credential_provider=server.credential_provider(), **kwargs
            )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def any_backend(backend_factory: Callable[..., Backend]) -> Backend:
    """One fresh backend, of each kind in turn."""
    return backend_factory()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--default-backend",
        choices=BACKENDS,
        default="memory",
        help="backend that register() builds when none is given: run the read-path "
        "tests unchanged against Momento (real SDK, local Momento-protocol server)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cache_free(reason): the test never reaches a cache by design (with "
        "--default-backend=momento, every other test must reach Momento)",
    )


def _default_momento_backend(server: Any, config: momento_botocore.CacheConfig) -> Backend:
    """What register() builds for ``config`` with --default-backend=momento."""
    from momento_botocore.backends.factory import create_backend
    from momento_botocore.testing import DEFAULT_CACHE

    # A long deadline: 32-thread tests share two cores with the in-process server.
    config = config.replace(
        backend="momento", momento_cache_name=DEFAULT_CACHE, momento_request_timeout=5.0
    )
    return create_backend(config, credential_provider=server.credential_provider())


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
