"""The near cache for aiobotocore (backends/near.py): an async backend shares the near
store and subscription of a sync one. Runs in the aiobotocore environment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiobotocore.session import get_session
from conftest import REGION
from test_near_cache import (  # noqa: F401 (fixtures)
    CREDENTIALS,
    KEY,
    items,
    make_backend,
    near_config,
    registered_client,
)

import momento_botocore
from momento_botocore.backends.factory import create_async_backend
from momento_botocore.testing import LocalMomentoServer


def test_an_aiobotocore_client_shares_the_near_cache_of_a_sync_backend(
    items: str,  # noqa: F811 (the fixture, imported)
    momento_server: LocalMomentoServer,
    make_backend: Callable[..., Any],  # noqa: F811
) -> None:
    writer = registered_client(items, make_backend())
    config = near_config()
    sync_backend = make_backend()
    async_backend = create_async_backend(
        config,
        credential_provider=momento_server.credential_provider(),
        shared_near=sync_backend.near,
    )
    session = get_session()
    momento_botocore.register(session, config=config, backend=async_backend)

    async def main() -> list[Any]:
        async with session.create_client(
            "dynamodb", endpoint_url=items, region_name=REGION, **CREDENTIALS
        ) as client:
            got: list[Any] = [
                (await client.get_item(TableName="items", Key=KEY))["Item"]["n"] for _ in range(3)
            ]
            gets = momento_server.calls("Get")
            await client.get_item(TableName="items", Key=KEY)
            got.append(momento_server.calls("Get") - gets)
            writer.put_item(TableName="items", Item={"pk": {"S": "a"}, "n": {"N": "7"}})
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                answer = await client.get_item(TableName="items", Key=KEY)
                if answer["Item"]["n"] == {"N": "7"}:
                    got.append("fresh")
                    break
                await asyncio.sleep(0.01)
            return got

    try:
        got = asyncio.run(main())
    finally:
        asyncio.run(async_backend.close())
    assert got[:3] == [{"N": "1"}] * 3
    assert got[3] == 0  # a near hit: the sync backend's store serves the async client
    assert got[4:] == ["fresh"]
