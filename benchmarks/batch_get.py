"""BatchGetItem of 100 keys, all hits, against one GetItem hit: the cost of a batch hit.

Not a test: prints medians (wall clock, and CPU time of the thread, which a busy
machine disturbs less) and their ratios. Run from the repository root:

    python benchmarks/batch_get.py [--rounds 30] [--keys 100]

DynamoDB is moto in-process (mock_aws); it is only touched while warming the
cache, then every measured call is a hit (no request). Both kinds of call are
measured interleaved, round after round, so drift affects both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import boto3
from moto import mock_aws

import momento_botocore


def setup(keys: int) -> Any:
    session = boto3.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    momento_botocore.register(session, ttl=3600)
    client = session.client("dynamodb")
    plain = boto3.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    ).client("dynamodb")
    plain.create_table(
        TableName="bench",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(keys):
        plain.put_item(
            TableName="bench",
            Item={
                "pk": {"S": f"key-{i}"},
                "name": {"S": f"item number {i}"},
                "price": {"N": f"{i}.99"},
                "tags": {"SS": ["a", "b"]},
                "info": {"M": {"color": {"S": "red"}, "sizes": {"L": [{"N": "1"}, {"N": "2"}]}}},
            },
        )
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--calls", type=int, default=20, help="calls per round and kind")
    args = parser.parse_args()
    with mock_aws():
        client = setup(args.keys)
        keys = [{"pk": {"S": f"key-{i}"}} for i in range(args.keys)]
        batch_request = {"bench": {"Keys": keys}}
        client.batch_get_item(RequestItems=batch_request)  # fills all
        client.get_item(TableName="bench", Key=keys[0])
        sent = 0

        def count(**_: Any) -> None:
            nonlocal sent
            sent += 1

        client.meta.events.register("before-send.dynamodb", count)
        times: dict[str, list[float]] = {"get": [], "batch": []}
        cpu: dict[str, list[float]] = {"get": [], "batch": []}

        def get() -> None:
            client.get_item(TableName="bench", Key=keys[0])

        def batch() -> None:
            answer = client.batch_get_item(RequestItems=batch_request)
            assert len(answer["Responses"]["bench"]) == args.keys

        for _ in range(args.rounds):
            for name, call in (("get", get), ("batch", batch)):
                start, start_cpu = time.perf_counter(), time.thread_time()
                for _ in range(args.calls):
                    call()
                cpu[name].append((time.thread_time() - start_cpu) / args.calls)
                times[name].append((time.perf_counter() - start) / args.calls)
        assert sent == 0, f"{sent} requests were sent: not all hits"
    get_median, batch_median = (statistics.median(times[k]) for k in ("get", "batch"))
    get_cpu, batch_cpu = (statistics.median(cpu[k]) for k in ("get", "batch"))
    print(f"{'median of ' + str(args.rounds) + ' rounds':34} {'wall':>10} {'cpu':>10}")
    print(f"{'GetItem, 1 hit':34} {get_median * 1e6:8.1f}us {get_cpu * 1e6:8.1f}us")
    label = f"BatchGetItem, {args.keys} hits"
    print(f"{label:34} {batch_median * 1e6:8.1f}us {batch_cpu * 1e6:8.1f}us")
    print(
        f"{'per key in the batch':34} {batch_median / args.keys * 1e6:8.1f}us "
        f"{batch_cpu / args.keys * 1e6:8.1f}us"
    )
    print(
        f"{'ratio batch / single (goal < 3x)':34} {batch_median / get_median:9.2f}x "
        f"{batch_cpu / get_cpu:9.2f}x"
    )


if __name__ == "__main__":
    main()
