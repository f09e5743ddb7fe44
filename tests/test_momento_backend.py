"""MomentoBackend specifics: errors, limits, deadline, credentials, selection."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import grpc
import jwt
import pytest
from conftest import made_backend, new_session
from momento import Configurations
from momento.config import Configuration

import momento_botocore
from momento_botocore import CacheConfig, ConfigurationError
from momento_botocore.backends import BackendError, CircuitBreakerBackend
from momento_botocore.backends.factory import create_backend
from momento_botocore.backends.momento import (
    MomentoBackend,
    base_configuration,
    credential_provider_for,
    sdk_configuration,
)
from momento_botocore.backends.near import NearCacheBackend
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer


def backend_for(server: LocalMomentoServer, **kwargs: object) -> MomentoBackend:
    kwargs.setdefault("request_timeout", 2.0)
    return MomentoBackend(
        str(kwargs.pop("cache", DEFAULT_CACHE)),
        credential_provider=server.credential_provider(),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _no_momento_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOMENTO_API_KEY", "MOMENTO_ENDPOINT", "MOMENTO_CACHE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)


def test_an_unknown_cache_is_an_error_on_every_operation(
    momento_server: LocalMomentoServer,
) -> None:
    backend = backend_for(momento_server, cache="no-such-cache")
    for call in (
        lambda: backend.get("k"),
        lambda: backend.add("k", b"v", 60),
        lambda: backend.set("k", b"v", 60),
        lambda: backend.delete("k"),
        lambda: backend.incr("k", 60),
    ):
        with pytest.raises(BackendError, match="NOT_FOUND_ERROR"):
            call()
    backend.close()


def test_caches_are_separate_key_spaces(momento_server: LocalMomentoServer) -> None:
    momento_server.store.create("other")
    first, second = backend_for(momento_server), backend_for(momento_server, cache="other")
    first.set("k", b"first", 60)
    assert second.get("k") is None
    assert second.add("k", b"second", 60) is True
    assert (first.get("k"), second.get("k")) == (b"first", b"second")


def test_entries_carry_millisecond_ttls(momento_server: LocalMomentoServer) -> None:
    backend = backend_for(momento_server)
    backend.set("k", b"v", 0.0004)  # rounds up to 1 ms, never to "no TTL"
    time.sleep(0.01)
    assert backend.get("k") is None
    with pytest.raises(ValueError, match=r"ttl_seconds must be in \(0, 86400\]"):
        backend.set("k", b"v", 86_401)


def test_a_server_that_is_down_is_a_backend_error() -> None:
    server = LocalMomentoServer().start()
    server.stop()
    backend = backend_for(server)
    with pytest.raises(BackendError, match="SERVER_UNAVAILABLE"):
        backend.get("k")
    with pytest.raises(BackendError):
        backend.add("k", b"v", 60)


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE])
def test_one_transient_get_failure_is_retried_within_the_deadline(
    momento_server: LocalMomentoServer, code: grpc.StatusCode
) -> None:
    backend = backend_for(momento_server)
    backend.set("k", b"v", 60)
    momento_server.fail("Get", code=code, times=1)
    assert backend.get("k") == b"v"
    assert momento_server.calls("Get") == 2
    momento_server.fail("Get", code=code)
    with pytest.raises(BackendError):
        backend.get("k")
    assert momento_server.calls("Get") == 4  # one retry, no more


def test_a_slow_server_costs_one_deadline_and_no_more(momento_server: LocalMomentoServer) -> None:
    backend = backend_for(momento_server, request_timeout=0.1)
    backend.get("warm-up")
    momento_server.delay("Get", seconds=10.0)
    started = time.perf_counter()
    with pytest.raises(BackendError, match="TIMEOUT"):
        backend.get("k")
    assert time.perf_counter() - started < 5.0  # the deadline decides, not the server
    assert momento_server.calls("Get") == 2  # the warm-up and this one: no retry


def test_a_failed_increment_is_never_retried(momento_server: LocalMomentoServer) -> None:
    # Not idempotent: a retry after a call that did reach the cache would count twice.
    backend = backend_for(momento_server)
    momento_server.fail("Increment", code=grpc.StatusCode.UNAVAILABLE, times=1)
    with pytest.raises(BackendError, match="SERVER_UNAVAILABLE"):
        backend.incr("g", 60)
    assert momento_server.calls("Increment") == 1
    assert backend.incr("g", 60) == 1
    with pytest.raises(ValueError, match=r"ttl_seconds must be in \(0, 86400\]"):
        backend.incr("g", 86_401)
    backend.close()


@pytest.mark.parametrize("kind", ["momento", "async-momento"])
def test_a_stalled_incr_many_costs_one_deadline_and_no_more(
    momento_server: LocalMomentoServer, request: pytest.FixtureRequest, kind: str
) -> None:
    backend: Any = made_backend(kind, request, request_timeout=0.2)
    backend.incr("warm-up", 60)
    momento_server.delay("Increment", seconds=10.0)
    started = time.perf_counter()
    results = backend.incr_many([(f"g{n}", 60.0) for n in range(40)])
    assert time.perf_counter() - started < 3.0  # about one deadline, not 40
    assert len(results) == 40
    assert all(isinstance(error, BackendError) for error in results)
    assert momento_server.calls("Increment") <= 1 + backend_concurrency(backend)
    backend.close()


def backend_concurrency(backend: Any) -> int:
    inner = getattr(backend, "backend", backend)  # through SyncOverAsync
    return int(inner.max_concurrency)


def test_entries_over_the_item_limit_are_not_written(momento_server: LocalMomentoServer) -> None:
    backend = backend_for(momento_server, max_item_bytes=1000)
    assert backend.add("big", b"x" * 1000, 60) is False
    assert momento_server.get_raw("big") is None
    assert backend.add("small", b"x" * 10, 60) is True
    # An invalidation that is too large removes the older value instead of leaving it.
    backend.set("small", b"y" * 1000, 60)
    assert backend.get("small") is None
    assert backend.oversized == 2
    assert momento_server.calls("SetIfNotExists") == 1


def grpc_of(configuration: Configuration) -> Any:
    return configuration.get_transport_strategy().get_grpc_configuration()


def test_the_configuration_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(base_configuration(), Configurations.InRegion.Default)
    configuration = sdk_configuration(0.2)
    deadline = configuration.get_transport_strategy().get_grpc_configuration().get_deadline()
    assert deadline == timedelta(milliseconds=200)
    assert grpc_of(configuration).get_keepalive_time() == timedelta(seconds=5)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    assert isinstance(base_configuration(), Configurations.Lambda)
    in_lambda = grpc_of(sdk_configuration(0.2))
    assert in_lambda.get_deadline() == timedelta(milliseconds=200)
    # Lambda's preset keeps no idle connection alive while the function is frozen.
    assert in_lambda.get_keepalive_time() is None
    assert in_lambda.get_keepalive_permit_without_calls() == 0


def v2_key() -> str:
    return jwt.encode({"t": "g", "id": "x"}, "s" * 32, algorithm="HS256")


def test_credentials_from_v2_key_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTO_API_KEY", v2_key())
    monkeypatch.setenv("MOMENTO_ENDPOINT", "cell-1.example.com")
    provider = credential_provider_for()
    assert provider.cache_endpoint == "cache.cell-1.example.com"
    assert provider.port == 443


def test_credentials_from_a_legacy_key_that_carries_its_endpoint() -> None:
    key = base64.b64encode(json.dumps({"endpoint": "e.example.com", "api_key": "k"}).encode())
    provider = credential_provider_for(key.decode())
    assert provider.cache_endpoint == "cache.e.example.com"
    # An endpoint set for v2 keys does not get in the way of an older key.
    provider = credential_provider_for(key.decode(), endpoint="cell-1.example.com")
    assert provider.cache_endpoint == "cache.e.example.com"


def test_bad_credentials_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="MOMENTO_API_KEY"):
        credential_provider_for()
    with pytest.raises(ConfigurationError, match="not a usable"):
        credential_provider_for("not-a-key")
    with pytest.raises(ConfigurationError, match="MOMENTO_ENDPOINT"):
        credential_provider_for(v2_key())


@pytest.mark.parametrize(
    "decoded",
    [b'{"api_key":"x"}', b"[1]", b"null", b'"text"', b'{"endpoint":"e.example.com"}', b"{}"],
)
@pytest.mark.parametrize("endpoint", [None, "cell-1.example.com"])
def test_malformed_api_keys_are_configuration_errors_that_do_not_echo_the_key(
    decoded: bytes, endpoint: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(decoded).decode()
    monkeypatch.setenv("MOMENTO_API_KEY", key)
    if endpoint is None:
        monkeypatch.delenv("MOMENTO_ENDPOINT", raising=False)
    else:
        monkeypatch.setenv("MOMENTO_ENDPOINT", endpoint)
    config = CacheConfig(ttl=60, backend="momento", momento_cache_name="c")
    with pytest.raises(ConfigurationError, match="not a usable Momento API key") as raised:
        momento_botocore.register(new_session(), config=config)
    message = str(raised.value)
    assert key not in message
    assert decoded.decode() not in message


def test_register_with_momento_and_no_api_key_fails_at_once() -> None:
    config = CacheConfig(ttl=60, backend="momento", momento_cache_name="c")
    with pytest.raises(ConfigurationError, match="MOMENTO_API_KEY"):
        momento_botocore.register(new_session(), config=config)


def test_register_with_momento_and_no_cache_name_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOMENTO_API_KEY", v2_key())
    monkeypatch.setenv("MOMENTO_ENDPOINT", "cell-1.example.com")
    with pytest.raises(ConfigurationError, match="MOMENTO_CACHE_NAME"):
        momento_botocore.register(new_session(), config=CacheConfig(ttl=60, backend="momento"))


def test_the_environment_selects_momento_behind_a_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
        "MOMENTO_BOTOCORE_BACKEND": "momento",
        "MOMENTO_CACHE_NAME": "orders",
        "MOMENTO_API_KEY": v2_key(),
        "MOMENTO_ENDPOINT": "cell-1.example.com",
        "MOMENTO_BOTOCORE_MOMENTO_REQUEST_TIMEOUT_SECONDS": "0.05",
        "MOMENTO_BOTOCORE_BREAKER_FAILURES": "3",
        "MOMENTO_BOTOCORE_BREAKER_COOLDOWN_SECONDS": "2.5",
    }
    config = CacheConfig.from_env(environ)
    assert (config.momento_request_timeout, config.breaker_failures) == (0.05, 3)
    backend = create_backend(config)  # builds a client; connects to nothing
    assert isinstance(backend, NearCacheBackend)  # publishing invalidations (the default)
    assert backend.near.store is None  # no near cache unless asked for
    breaker = backend.backend
    assert isinstance(breaker, CircuitBreakerBackend)
    assert isinstance(breaker.backend, MomentoBackend)
    assert breaker.backend.cache_name == "orders"
    assert (breaker.breaker.failure_threshold, breaker.breaker.cooldown) == (3, 2.5)
    backend.close()
    silent = create_backend(config.replace(invalidation_topic=""))
    assert isinstance(silent, CircuitBreakerBackend)  # publishing off: nothing in front
    silent.close()


def test_the_factory_accepts_a_credential_provider(momento_server: LocalMomentoServer) -> None:
    config = CacheConfig(ttl=60, backend="momento", momento_cache_name=DEFAULT_CACHE)
    backend = create_backend(config, credential_provider=momento_server.credential_provider())
    backend.set("k", b"v", 60)
    assert momento_server.get_raw("k") == b"v"
    backend.close()


@pytest.mark.parametrize(
    "changes",
    [
        {"momento_request_timeout": 0},
        {"momento_request_timeout": 11},
        {"momento_request_timeout": "fast"},
        {"breaker_failures": 0},
        {"breaker_failures": 2.5},
        {"breaker_cooldown": 0},
        {"ttl": 86_401},
    ],
)
def test_bad_momento_settings_fail_when_configured(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CacheConfig(**{"ttl": 60, "backend": "momento", **changes})  # type: ignore[arg-type]


def test_the_momento_sdk_is_not_imported_until_used() -> None:
    import subprocess
    import sys

    code = "import sys, momento_botocore; print('momento' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
