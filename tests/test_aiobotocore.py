"""aiobotocore and aioboto3: register() and zero-code activation cache them too, with
the async driver, on the caller's event loop, never blocking it.

The behavioural suites run through the async driver as well (``--driver=async``,
tests/aio_facade.py); these tests cover what is particular to asyncio: the kinds of
targets, one registration for both worlds, and that nothing of ours blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import aioboto3
import boto3
import pytest
from aiobotocore.session import AioSession, get_session
from conftest import ACCOUNT, REGION, create_table
from test_activation import run_python

import momento_botocore
from momento_botocore import ConfigurationError, MemoryBackend
from momento_botocore.accounts import forget_accounts
from momento_botocore.backends.memory import AsyncMemoryBackend

KEY = {"pk": {"S": "a"}}
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def items(endpoint: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    return endpoint


def header(response: dict[str, Any]) -> str | None:
    return response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")


async def _reads(client: Any, times: int = 2) -> list[dict[str, Any]]:
    return [await client.get_item(TableName="items", Key=KEY) for _ in range(times)]


async def _read_twice(session: AioSession, endpoint: str) -> list[dict[str, Any]]:
    async with session.create_client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS
    ) as client:
        return await _reads(client)


def test_a_registered_aiobotocore_session_serves_the_second_read_from_the_cache(
    items: str,
) -> None:
    session = get_session()
    momento_botocore.register(session, ttl=60)
    first, second = asyncio.run(_read_twice(session, items))
    assert (header(first), header(second)) == ("miss", "hit")
    assert first["Item"] == second["Item"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert momento_botocore.stats()["items"]["hits"] == 1


def test_a_registered_aiobotocore_client_is_cached(items: str) -> None:
    async def main() -> list[dict[str, Any]]:
        async with get_session().create_client(
            "dynamodb", endpoint_url=items, region_name=REGION, **CREDENTIALS
        ) as client:
            momento_botocore.register(client, ttl=60)
            return await _reads(client)

    assert [header(r) for r in asyncio.run(main())] == ["miss", "hit"]


def test_an_aioboto3_table_resource_reads_python_types_like_an_uncached_one(
    items: str,
) -> None:
    async def read(register: bool) -> list[dict[str, Any]]:
        session = aioboto3.Session(region_name=REGION, **CREDENTIALS)
        if register:
            momento_botocore.register(session, ttl=60)
        async with session.resource("dynamodb", endpoint_url=items) as dynamodb:
            table = await dynamodb.Table("items")
            return [await table.get_item(Key={"pk": "a"}) for _ in range(2)]

    uncached = asyncio.run(read(False))
    cached = asyncio.run(read(True))
    assert [header(r) for r in cached] == ["miss", "hit"]
    assert [r["Item"] for r in cached] == [r["Item"] for r in uncached]
    assert repr(cached[1]["Item"]) == repr(uncached[1]["Item"])  # Decimal('1'), not 1


def test_one_registration_serves_sync_and_async_clients_over_one_cache(items: str) -> None:
    """A write through botocore invalidates what aiobotocore reads, and the other way
    round: one engine, one store."""
    momento_botocore.register(None, ttl=60, account_id=ACCOUNT)
    sync = boto3.Session(region_name=REGION, **CREDENTIALS).client("dynamodb", endpoint_url=items)

    async def main() -> list[Any]:
        async with get_session().create_client(
            "dynamodb", endpoint_url=items, region_name=REGION, **CREDENTIALS
        ) as client:
            seen = [header(r) for r in await _reads(client)]
            sync.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "2"}})
            after_sync_write = await client.get_item(TableName="items", Key=KEY)
            await client.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "3"}})
            return [seen, after_sync_write["Item"]["n"]]

    seen, after_sync_write = asyncio.run(main())
    assert seen == ["miss", "hit"]
    assert after_sync_write == {"N": "2"}
    assert sync.get_item(TableName="items", Key=KEY)["Item"]["n"] == {"N": "3"}


def test_an_async_backend_cannot_serve_a_botocore_session() -> None:
    backend = AsyncMemoryBackend(MemoryBackend())
    with pytest.raises(ConfigurationError, match="aiobotocore"):
        momento_botocore.register(boto3.Session(region_name=REGION), ttl=60, backend=backend)


def test_an_async_backend_given_to_register_is_used(items: str) -> None:
    memory = MemoryBackend()
    session = get_session()
    momento_botocore.register(session, ttl=60, backend=AsyncMemoryBackend(memory))
    asyncio.run(_read_twice(session, items))
    assert len(memory) == 1


def test_zero_code_activation_caches_aiobotocore_sessions_too(items: str) -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        import boto3
        from aiobotocore.session import get_session

        async def main():
            async with get_session().create_client(
                "dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1"
            ) as client:
                return [await client.get_item(TableName="items", Key={"pk": {"S": "a"}})
                        for _ in range(2)]

        sync = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1")
        sync_reads = [sync.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]
        for label, reads in (("async", asyncio.run(main())), ("sync", sync_reads)):
            print(label, [r["Item"]["n"]["N"] for r in reads],
                  [r["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") for r in reads])
        """
    )
    result = run_python(
        code, items, MOMENTO_BOTOCORE_ENABLED="1", MOMENTO_BOTOCORE_TTL_SECONDS="60"
    )
    assert result.returncode == 0, result.stderr
    # One process-wide cache: the sync reads run first; the async ones hit what they filled.
    assert result.stdout.splitlines() == [
        "async ['1', '1'] ['hit', 'hit']",
        "sync ['1', '1'] ['miss', 'hit']",
    ]


# Nothing of ours blocks the event loop ------------------------------------------------


class _SlowSteps(logging.Handler):
    """asyncio's debug-mode reports of a step that held the loop too long."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "took" in record.getMessage():
            self.steps.append(record.getMessage())


@pytest.fixture
def slow_steps() -> Iterator[_SlowSteps]:
    handler = _SlowSteps()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


#: How long the slow caches below take a call.
SLOW = 1.0
#: A step of ours that holds the loop this long is a blocking call: half of ``SLOW``,
#: so that a loaded machine (CI's steps took up to 0.13 s) is not taken for one. Set
#: once the client is made: making it is not our time.
THRESHOLD = SLOW / 2


def _run_in_debug(coroutine: Any) -> Any:
    async def main() -> Any:
        asyncio.get_running_loop().slow_callback_duration = 3600.0
        return await coroutine

    return asyncio.run(main(), debug=True)


class _SlowAsync(AsyncMemoryBackend):
    """A cache ``SLOW`` seconds away; ``blocking`` waits the wrong way (time.sleep on
    the loop)."""

    def __init__(self, memory: MemoryBackend, *, blocking: bool) -> None:
        super().__init__(memory)
        self.blocking = blocking

    async def get(self, key: str) -> bytes | None:
        if self.blocking:
            time.sleep(SLOW)
        else:
            await asyncio.sleep(SLOW)
        return await super().get(key)


async def _read_after_client(session: AioSession, endpoint: str) -> list[dict[str, Any]]:
    async with session.create_client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS
    ) as client:
        await client.describe_table(TableName="items")  # models loaded: not our time
        asyncio.get_running_loop().slow_callback_duration = THRESHOLD
        return await _reads(client, 3)


@pytest.mark.parametrize("blocking", [False, True], ids=["awaited", "blocking-control"])
def test_a_slow_cache_never_blocks_the_loop(
    items: str, slow_steps: _SlowSteps, blocking: bool
) -> None:
    """The control proves the check: a backend that blocks is caught."""
    session = get_session()
    backend = _SlowAsync(MemoryBackend(), blocking=blocking)
    momento_botocore.register(session, ttl=60, backend=backend)
    reads = _run_in_debug(_read_after_client(session, items))
    assert [header(r) for r in reads] == ["miss", "hit", "hit"]
    assert bool(slow_steps.steps) is blocking, slow_steps.steps


def test_a_blocking_backend_runs_in_worker_threads(items: str, slow_steps: _SlowSteps) -> None:
    class SlowSync(MemoryBackend):
        def get(self, key: str) -> bytes | None:
            time.sleep(SLOW)
            return super().get(key)

    session = get_session()
    momento_botocore.register(session, ttl=60, backend=SlowSync())
    reads = _run_in_debug(_read_after_client(session, items))
    assert [header(r) for r in reads] == ["miss", "hit", "hit"]
    assert slow_steps.steps == []


def test_finding_an_account_with_sts_never_blocks_the_loop(
    items: str, slow_steps: _SlowSteps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STS that never answers (the lookup times out after 2 s) is waited for in a
    worker thread."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{silent.getsockname()[1]}")
    forget_accounts()
    try:
        session = get_session()
        momento_botocore.register(session, ttl=60)
        reads = _run_in_debug(_read_after_client(session, items))
    finally:
        silent.close()
        forget_accounts()
    assert [header(r) for r in reads] == [None, None, None]  # account unknown: uncached
    assert slow_steps.steps == []
