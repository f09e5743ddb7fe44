"""aiobotocore sessions run botocore's initializers too: they must keep working, uncached.

Our handlers are synchronous; on an event loop a cache round trip would block it.
So a registration for every session leaves aiobotocore sessions alone (one notice),
and ``register()`` refuses an aiobotocore session or client outright.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
from typing import Any

import boto3
import pytest
from aiobotocore.session import AioSession, get_session
from conftest import REGION, create_table
from test_activation import run_python

import momento_botocore
from momento_botocore import ConfigurationError


@pytest.fixture
def items(endpoint: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table(client, "items")
    client.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    return endpoint


async def _read_twice(session: AioSession, endpoint: str) -> list[dict[str, Any]]:
    async with session.create_client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        return [await client.get_item(TableName="items", Key={"pk": {"S": "a"}}) for _ in range(2)]


def test_registration_for_every_session_leaves_aiobotocore_working_and_uncached(
    items: str, caplog: pytest.LogCaptureFixture
) -> None:
    momento_botocore.register(None, ttl=60)
    with caplog.at_level(logging.WARNING, logger="momento_botocore"):
        first = asyncio.run(_read_twice(get_session(), items))
        second = asyncio.run(_read_twice(get_session(), items))
    for response in first + second:
        assert response["Item"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
        assert "x-momento-cache" not in response["ResponseMetadata"]["HTTPHeaders"]
    notices = [r for r in caplog.records if "aiobotocore sessions are left uncached" in r.message]
    assert len(notices) <= 1  # once per process (an earlier test may have given it)


def test_register_refuses_an_aiobotocore_session() -> None:
    with pytest.raises(ConfigurationError, match="aiobotocore"):
        momento_botocore.register(get_session(), ttl=60)
    assert momento_botocore.stats() == {}


def test_register_refuses_an_aiobotocore_client(items: str) -> None:
    async def attempt() -> None:
        async with get_session().create_client(
            "dynamodb", endpoint_url=items, region_name=REGION
        ) as client:
            with pytest.raises(ConfigurationError, match="aiobotocore"):
                momento_botocore.register(client, ttl=60)
            response = await client.get_item(TableName="items", Key={"pk": {"S": "a"}})
            assert response["Item"]["pk"] == {"S": "a"}

    asyncio.run(attempt())


def test_zero_code_activation_leaves_aiobotocore_working(items: str) -> None:
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
    assert result.stdout.splitlines() == [
        "async ['1', '1'] [None, None]",
        "sync ['1', '1'] ['miss', 'hit']",
    ]
    assert result.stderr.splitlines() == [
        "momento-botocore: aiobotocore sessions are left uncached"
    ]
