"""MOMENTO_ENDPOINT: http://HOST:PORT is a local Momento-protocol server; a host is
Momento's service for v2 keys; anything else fails at register()."""

from __future__ import annotations

import jwt
import pytest

import momento_botocore
from momento_botocore import CacheConfig, ConfigurationError
from momento_botocore.backends.momento import credential_provider_for
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer
from tests.conftest import create_table, new_session

ITEM = {"pk": {"S": "a"}, "v": {"S": "one"}}


def v2_key() -> str:
    return jwt.encode({"t": "g", "id": "x"}, "s" * 32, algorithm="HS256")


def local_environment(server: LocalMomentoServer) -> dict[str, str]:
    return {
        "MOMENTO_BOTOCORE_TTL_SECONDS": "60",
        "MOMENTO_BOTOCORE_BACKEND": "momento",
        "MOMENTO_CACHE_NAME": DEFAULT_CACHE,
        "MOMENTO_ENDPOINT": f"http://{server.endpoint}",
        "MOMENTO_BOTOCORE_MOMENTO_REQUEST_TIMEOUT_SECONDS": "5",
    }


def test_an_http_endpoint_reaches_a_local_server_without_an_api_key(
    endpoint: str, momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOMENTO_API_KEY", raising=False)
    config = CacheConfig.from_env(local_environment(momento_server))
    writer = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(writer, "local")
    writer.put_item(TableName="local", Item=ITEM)
    session = new_session()
    momento_botocore.register(session, config=config)
    client = session.client("dynamodb", endpoint_url=endpoint)
    client.get_item(TableName="local", Key={"pk": ITEM["pk"]})  # miss: fills
    assert client.get_item(TableName="local", Key={"pk": ITEM["pk"]})["Item"] == ITEM
    assert momento_botocore.stats()["local"]["hits"] == 1
    assert momento_server.calls("SetIfNotExists") == 1
    assert momento_server.calls("Get") == 2


def test_the_environment_endpoint_is_read_when_the_config_has_none(
    momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOMENTO_API_KEY", raising=False)
    monkeypatch.setenv("MOMENTO_ENDPOINT", f"http://{momento_server.endpoint}")
    provider = credential_provider_for()
    host, port = momento_server.endpoint.rsplit(":", 1)
    assert (provider.cache_endpoint, provider.port, provider.auth_token) == (host, int(port), "")


@pytest.mark.parametrize("value", ["cell-1.example.com", "https://cell-1.example.com"])
def test_a_host_is_momentos_service_for_v2_keys(value: str) -> None:
    provider = credential_provider_for(v2_key(), endpoint=value)
    assert (provider.cache_endpoint, provider.port) == ("cache.cell-1.example.com", 443)


@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1",  # no port
        "http://127.0.0.1:443",  # the SDK speaks TLS to 443
        "https://cell-1.example.com:8080",  # the SDK speaks plaintext to other ports
        "cell-1.example.com:8080",
        "ftp://cell-1.example.com",
        "not a host",
        "http://:8080",
    ],
)
def test_a_bad_endpoint_fails_at_register(value: str, momento_server: LocalMomentoServer) -> None:
    environ = {**local_environment(momento_server), "MOMENTO_ENDPOINT": value}
    with pytest.raises(ConfigurationError, match="MOMENTO_ENDPOINT"):
        momento_botocore.register(new_session(), config=CacheConfig.from_env(environ))
    with pytest.raises(ConfigurationError, match="MOMENTO_ENDPOINT"):
        credential_provider_for(v2_key(), endpoint=value)
