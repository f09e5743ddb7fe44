"""BatchGetItem of 100 keys, all hits, against one GetItem hit: the cost of a batch hit.

Not a test: prints medians and their ratio. Run from the repository root:

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
        get_times: list[float] = []
        batch_times: list[float] = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.calls):
                client.get_item(TableName="bench", Key=keys[0])
            get_times.append((time.perf_counter() - start) / args.calls)
            start = time.perf_counter()
            for _ in range(args.calls):
                answer = client.batch_get_item(RequestItems=batch_request)
            batch_times.append((time.perf_counter() - start) / args.calls)
            assert len(answer["Responses"]["bench"]) == args.keys
        assert sent == 0, f"{sent} requests were sent: not all hits"
    get_median = statistics.median(get_times)
    batch_median = statistics.median(batch_times)
    print(f"GetItem hit, median:               {get_median * 1e6:8.1f} us")
    print(f"BatchGetItem {args.keys} hits, median:     {batch_median * 1e6:8.1f} us")
    print(f"per key in the batch:              {batch_median / args.keys * 1e6:8.1f} us")
    print(f"ratio batch / single:              {batch_median / get_median:8.2f}x (goal < 3x)")


if __name__ == "__main__":
    main()
