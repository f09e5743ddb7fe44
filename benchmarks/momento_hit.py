"""Hit latency: Momento (real SDK, local Momento-protocol server in another process)
versus the memory backend, through a real botocore client.

    PYTHONPATH=. python benchmarks/momento_hit.py [--reps 15] [--batch 300] [--json out.json]

Interleaved repetitions (memory and Momento batches alternate, order flipped each
repetition); each batch gives a mean per call; the figure is the median over batches.
DynamoDB is moto's server on loopback (only the first read of each client reaches it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from momento import CredentialProvider
from moto.server import ThreadedMotoServer

import momento_botocore
from momento_botocore import CacheConfig, MemoryBackend
from momento_botocore.backends.factory import create_backend
from momento_botocore.keys import cache_key
from momento_botocore.testing import DEFAULT_CACHE

REGION = "us-east-1"
KEY = {"pk": {"S": "user#1"}}
ITEM = {
    "pk": {"S": "user#1"},
    "name": {"S": "Ada Lovelace"},
    "email": {"S": "ada@example.com"},
    "visits": {"N": "1843"},
    "tags": {"SS": ["math", "engines", "poetry"]},
    "avatar": {"B": bytes(range(256))},
}


def start_momento_process() -> tuple[subprocess.Popen[str], str, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "momento_botocore.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"the local Momento server did not start: {line!r}")
    host, port = line.removeprefix("listening on ").rsplit(":", 1)
    return process, host, int(port)


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def batch_mean(call: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


def interleaved(calls: dict[str, Callable[[], Any]], reps: int, n: int) -> dict[str, float]:
    results: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            results[name].append(batch_mean(calls[name], n))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    endpoint = f"http://{moto_host}:{moto_port}"
    process, host, port = start_momento_process()
    try:
        plain = session().client("dynamodb", endpoint_url=endpoint)
        plain.create_table(
            TableName="users",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        plain.put_item(TableName="users", Item=ITEM)

        memory_backend = MemoryBackend()
        momento_backend = create_backend(
            CacheConfig(ttl=3600, backend="momento", momento_cache_name=DEFAULT_CACHE),
            credential_provider=CredentialProvider.for_momento_local(host, port),
        )
        clients = {}
        for name, backend in (("memory", memory_backend), ("momento", momento_backend)):
            s = session()
            momento_botocore.register(s, ttl=3600, backend=backend)
            clients[name] = s.client("dynamodb", endpoint_url=endpoint)
            for _ in range(3):
                answer = clients[name].get_item(TableName="users", Key=KEY)
                assert answer["Item"] == ITEM
            assert answer["ResponseMetadata"]["HTTPHeaders"]["x-momento-cache"] == "hit", name

        key = cache_key(REGION, "users", KEY)
        entry_size = len(memory_backend.get(key) or b"")

        def get_item(name: str) -> Callable[[], Any]:
            client = clients[name]
            return lambda: client.get_item(TableName="users", Key=KEY)

        figures = interleaved(
            {
                "memory GetItem hit": get_item("memory"),
                "momento GetItem hit": get_item("momento"),
                "memory backend.get": lambda: memory_backend.get(key),
                "momento backend.get": lambda: momento_backend.get(key),
            },
            args.reps,
            args.batch,
        )
        figures["uncached GetItem (moto over HTTP)"] = interleaved(
            {"plain": lambda: plain.get_item(TableName="users", Key=KEY)},
            max(3, args.reps // 3),
            max(20, args.batch // 10),
        )["plain"]
        stats = momento_botocore.stats()["users"]
        assert stats["errors"] == 0, stats
    finally:
        process.terminate()
        process.wait(10)
        moto.stop()

    us = {name: value * 1e6 for name, value in figures.items()}
    print(f"entry: {entry_size} bytes; {args.reps} interleaved reps x {args.batch} calls; medians")
    for name, value in us.items():
        print(f"  {name:36s} {value:9.1f} us")
    hit_ratio = us["momento GetItem hit"] / us["memory GetItem hit"]
    get_ratio = us["momento backend.get"] / us["memory backend.get"]
    print(
        f"momento/memory GetItem hit: {hit_ratio:.2f}x "
        f"(+{us['momento GetItem hit'] - us['memory GetItem hit']:.1f} us per hit)"
    )
    print(f"momento/memory backend.get: {get_ratio:.1f}x")
    print(
        "uncached/momento GetItem: "
        f"{us['uncached GetItem (moto over HTTP)'] / us['momento GetItem hit']:.1f}x"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"microseconds": us, "hit_ratio": hit_ratio, "entry_bytes": entry_size}, out)


if __name__ == "__main__":
    main()
