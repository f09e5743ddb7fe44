"""The local Momento-protocol server, seen through the real SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from momento import CacheClient, Configurations, TopicClient, TopicConfigurations
from momento.errors import MomentoErrorCode
from momento.responses import (
    CacheFlush,
    CacheGet,
    CacheIncrement,
    CacheIncrementResponse,
    CacheListFetch,
    CacheSet,
    CreateCache,
    DeleteCache,
    ListCaches,
    TopicPublish,
)

from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer


@pytest.fixture
def client(momento_server: LocalMomentoServer) -> Iterator[CacheClient]:
    configuration = Configurations.Laptop.latest().with_client_timeout(timedelta(seconds=5))
    made = CacheClient(configuration, momento_server.credential_provider(), timedelta(seconds=60))
    yield made
    made.__exit__(None, None, None)


def test_control_calls_create_list_flush_and_delete_caches(client: CacheClient) -> None:
    assert isinstance(client.create_cache("orders"), CreateCache.Success)
    assert isinstance(client.create_cache("orders"), CreateCache.CacheAlreadyExists)
    listed = client.list_caches()
    assert isinstance(listed, ListCaches.Success)
    assert sorted(c.name for c in listed.caches) == sorted([DEFAULT_CACHE, "orders"])
    client.set("orders", "k", b"v")
    assert isinstance(client.flush_cache("orders"), CacheFlush.Success)
    assert isinstance(client.get("orders", "k"), CacheGet.Miss)
    assert isinstance(client.delete_cache("orders"), DeleteCache.Success)
    assert isinstance(client.delete_cache("orders"), DeleteCache.Error)
    missing = client.get("orders", "k")
    assert isinstance(missing, CacheGet.Error)
    assert missing.error_code.name == "NOT_FOUND_ERROR"


def test_calls_it_does_not_implement_answer_unimplemented(client: CacheClient) -> None:
    response = client.list_fetch(DEFAULT_CACHE, "a-list")
    assert isinstance(response, CacheListFetch.Error)
    assert "UNIMPLEMENTED" in str(response.inner_exception.transport_details)


def test_increment_adds_any_amount_to_a_base_10_integer_and_sets_the_ttl(
    client: CacheClient, momento_server: LocalMomentoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def increment(amount: int, ttl: float = 60) -> CacheIncrementResponse:
        return client.increment(DEFAULT_CACHE, "n", amount, timedelta(seconds=ttl))

    assert increment(5) == CacheIncrement.Success(5)  # a missing key holds 0
    assert increment(-7) == CacheIncrement.Success(-2)
    assert increment(0) == CacheIncrement.Success(-2)
    assert momento_server.get_raw("n") == b"-2"
    store = momento_server.store
    monkeypatch.setattr(store, "_clock", lambda: 1e9)  # far in the future: "n" expired
    assert increment(1, ttl=5) == CacheIncrement.Success(1)
    assert increment(1, ttl=5) == CacheIncrement.Success(2)
    monkeypatch.setattr(store, "_clock", lambda: 1e9 + 4.9)
    assert increment(1, ttl=5) == CacheIncrement.Success(3)  # its TTL set again
    monkeypatch.setattr(store, "_clock", lambda: 1e9 + 9.8)
    assert momento_server.get_raw("n") == b"3"
    monkeypatch.setattr(store, "_clock", lambda: 1e9 + 9.9)
    assert momento_server.get_raw("n") is None


@pytest.mark.parametrize(
    ("stored", "amount"),
    [(b"abc", 1), (b"1.0", 1), (b"9223372036854775807", 1), (b"-9223372036854775808", -1)],
)
def test_increment_of_a_value_it_cannot_count_fails_its_precondition(
    client: CacheClient, momento_server: LocalMomentoServer, stored: bytes, amount: int
) -> None:
    momento_server.put_raw("n", stored)
    response = client.increment(DEFAULT_CACHE, "n", amount)
    assert isinstance(response, CacheIncrement.Error)
    assert response.error_code is MomentoErrorCode.FAILED_PRECONDITION_ERROR
    assert momento_server.get_raw("n") == stored


def test_faults_can_be_limited_to_a_number_of_calls(
    client: CacheClient, momento_server: LocalMomentoServer
) -> None:
    momento_server.fail("Set", code=grpc.StatusCode.PERMISSION_DENIED, times=2)
    results = [client.set(DEFAULT_CACHE, "k", b"v") for _ in range(3)]
    assert [type(r).__name__ for r in results] == ["Error", "Error", "Success"]
    with pytest.raises(ValueError, match="unknown RPC"):
        momento_server.fail("Nope")


def test_a_restarted_server_listens_on_the_same_port_and_keeps_entries(
    client: CacheClient, momento_server: LocalMomentoServer
) -> None:
    port = momento_server.port
    client.set(DEFAULT_CACHE, "k", b"v")
    momento_server.stop()
    assert isinstance(client.get(DEFAULT_CACHE, "k"), CacheGet.Error)
    momento_server.start()
    assert momento_server.port == port
    assert momento_server.get_raw("k") == b"v"


def test_a_taken_port_fails_loudly(momento_server: LocalMomentoServer) -> None:
    with pytest.raises(RuntimeError, match="cannot bind"):
        LocalMomentoServer(port=momento_server.port).start()


def test_it_runs_in_another_process() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "momento_botocore.testing",
            "--port",
            "0",
            "--cache",
            "c1",
            "--heartbeat-interval",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        host, port = line.split()[-1].rsplit(":", 1)
        server = LocalMomentoServer(host, int(port))  # only for its credential provider
        with CacheClient(
            Configurations.Laptop.latest(), server.credential_provider(), timedelta(seconds=60)
        ) as remote:
            assert isinstance(remote.set("c1", "k", b"v"), CacheSet.Success)
            hit = remote.get("c1", "k")
            assert isinstance(hit, CacheGet.Hit)
            assert hit.value_bytes == b"v"
        with TopicClient(TopicConfigurations.Default.v1(), server.credential_provider()) as topics:
            assert isinstance(topics.publish("c1", "t", "x"), TopicPublish.Success)
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_get_batch_answers_every_key_in_order(momento_server: LocalMomentoServer) -> None:
    # The SDK has no method for GetBatch: the raw stub, as MomentoBackend.get_many calls it.
    from momento_wire_types import cacheclient_pb2 as pb
    from momento_wire_types import cacheclient_pb2_grpc as pb_grpc

    momento_server.put_raw("a", b"1")
    momento_server.put_raw("c", b"\x00\xff")
    with grpc.insecure_channel(momento_server.endpoint) as channel:
        stub = pb_grpc.ScsStub(channel)  # type: ignore[no-untyped-call]

        def get_batch(*keys: str, cache: str = DEFAULT_CACHE) -> list[bytes | None]:
            request = pb._GetBatchRequest(
                items=[pb._GetRequest(cache_key=k.encode()) for k in keys]
            )
            answers = stub.GetBatch(request, metadata=[("cache", cache)], timeout=5)
            return [a.cache_body if a.result == pb.Hit else None for a in answers]

        assert get_batch("a", "b", "c", "a") == [b"1", None, b"\x00\xff", b"1"]
        assert get_batch() == []
        with pytest.raises(grpc.RpcError) as missing:
            get_batch("a", cache="no-such-cache")
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        momento_server.fail("GetBatch", code=grpc.StatusCode.INTERNAL, times=1)
        with pytest.raises(grpc.RpcError) as failed:
            get_batch("a")
        assert failed.value.code() is grpc.StatusCode.INTERNAL
        assert momento_server.calls("GetBatch") == 4
        assert momento_server.calls("Get") == 0
