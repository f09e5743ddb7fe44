"""The async driver's hit and miss against aiobotocore's own floor, side by side.

Run in the aiobotocore environment (``make bench`` does):
``.venv-aio/bin/python -m benchmarks.async_hit [--quick]``.

- **hit / floor**: a registered aiobotocore client answering from the memory cache,
  against the same kind of client with one ``before-call.dynamodb.GetItem`` coroutine
  handler returning a prebuilt answer (the least any cache on aiobotocore's events can
  cost). Both run on one event loop, in interleaved blocks of awaited calls, timed
  with this thread's CPU time.
- **sync hit / floor** in the same run (botocore of this environment), for comparison.

Prints a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
from aiobotocore.session import get_session
from botocore.awsrequest import AWSResponse

import momento_botocore
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.core.entries import encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.demo.local import ACCOUNT, REGION, sample_item

TABLE = "bench-items"
PK = "user-42"
KEY = {"pk": {"S": PK}}
NOWHERE = "http://127.0.0.1:9"  # never contacted: every call is answered by a handler
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
GOALS = {"async": 1.15, "sync": 1.10}


def _answer(item: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse(None, 200, {}, None), {
        "Item": dict(item),
        "ResponseMetadata": {
            "RequestId": "floor",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }


def _filled(item: dict[str, Any]) -> MemoryBackend:
    backend = MemoryBackend()
    key = cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8")
    backend.set(key, encode_item(item), 3600)
    return backend


def _ratio(hit: list[float], floor: list[float]) -> tuple[float, float, float]:
    ratios = sorted(h / f for h, f in zip(hit, floor, strict=True))
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return median, q1, q3


async def _async_samples(rounds: int, block: int) -> dict[str, list[float]]:
    item = sample_item(PK)
    floor_session, hit_session = get_session(), get_session()

    async def floor_handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return _answer(item)

    momento_botocore.register(hit_session, ttl=3600, backend=_filled(item), account_id=ACCOUNT)
    kwargs = {"endpoint_url": NOWHERE, "region_name": REGION, **CREDENTIALS}
    async with (
        floor_session.create_client("dynamodb", **kwargs) as floor,
        hit_session.create_client("dynamodb", **kwargs) as hit,
    ):
        floor.meta.events.register("before-call.dynamodb.GetItem", floor_handler)
        answer = await hit.get_item(TableName=TABLE, Key=KEY)
        if answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") != "hit":
            raise RuntimeError("expected a cache hit: the benchmark setup is wrong")
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "floor": lambda: floor.get_item(TableName=TABLE, Key=KEY),
            "hit": lambda: hit.get_item(TableName=TABLE, Key=KEY),
        }
        samples: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for number in range(-1, rounds):
            for name in order if number % 2 else reversed(order):
                call = calls[name]
                start = time.thread_time()
                for _ in range(block):
                    await call()
                if number >= 0:
                    samples[name].append((time.thread_time() - start) / block)
        return samples


def _sync_samples(rounds: int, block: int) -> dict[str, list[float]]:
    item = sample_item(PK)
    floor = boto3.Session(region_name=REGION, **CREDENTIALS).client(
        "dynamodb", endpoint_url=NOWHERE
    )
    floor.meta.events.register("before-call.dynamodb.GetItem", lambda **_: _answer(item))
    session = boto3.Session(region_name=REGION, **CREDENTIALS)
    momento_botocore.register(session, ttl=3600, backend=_filled(item), account_id=ACCOUNT)
    hit = session.client("dynamodb", endpoint_url=NOWHERE)
    calls: dict[str, Callable[[], Any]] = {
        "floor": lambda: floor.get_item(TableName=TABLE, Key=KEY),
        "hit": lambda: hit.get_item(TableName=TABLE, Key=KEY),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for number in range(-1, rounds):
        for name in list(calls) if number % 2 else reversed(list(calls)):
            call = calls[name]
            start = time.thread_time()
            for _ in range(block):
                call()
            if number >= 0:
                samples[name].append((time.thread_time() - start) / block)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_hit")
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds")
    args = parser.parse_args(argv)
    rounds, block = (15, 40) if args.quick else (101, 40)
    runs = {
        "async": asyncio.run(_async_samples(rounds, block)),
        "sync": _sync_samples(rounds, block),
    }
    print(f"GetItem hit / floor, {rounds} interleaved rounds of {block} calls, thread CPU time")
    print()
    print("| driver | floor us | hit us | hit / floor (q1-q3) | goal |")
    print("| --- | --- | --- | --- | --- |")
    for driver, samples in runs.items():
        median, q1, q3 = _ratio(samples["hit"], samples["floor"])
        floor_us = statistics.median(samples["floor"]) * 1e6
        hit_us = statistics.median(samples["hit"]) * 1e6
        print(
            f"| {driver} | {floor_us:.1f} | {hit_us:.1f} | {median:.3f}x ({q1:.3f}-{q3:.3f}) "
            f"| <= {GOALS[driver]:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
