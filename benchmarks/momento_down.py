"""What a read costs while Momento is down or slow, against no cache at all.

    PYTHONPATH=. python benchmarks/momento_down.py [--rounds 400]

Every read goes to DynamoDB (moto's server on loopback) in all cases; the figure is
the time the cache path adds to it. Scenarios:

* refused: nothing listens on Momento's port (connection refused: fails fast);
* slow: every Get is held past the deadline (a blackholed or stalled service);
each without a breaker (every read tries Momento) and with the default breaker
(after 5 failures, reads skip Momento; one probe per cool-down).
Reads of the scenarios alternate one by one; the figures are medians per read.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

import momento_botocore
from momento_botocore.backends import Backend, CircuitBreakerBackend
from momento_botocore.backends.momento import MomentoBackend
from momento_botocore.breaker import CircuitBreaker
from momento_botocore.config import (
    DEFAULT_BREAKER_COOLDOWN,
    DEFAULT_BREAKER_FAILURES,
    DEFAULT_MOMENTO_REQUEST_TIMEOUT,
)
from momento_botocore.testing import DEFAULT_CACHE, LocalMomentoServer

REGION = "us-east-1"
KEY = {"pk": {"S": "a"}}
ITEM = {"pk": {"S": "a"}, "v": {"S": "x" * 200}}


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def batch_mean(call: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


# C901: a benchmark script: its scenarios' setup and timing loops in order, with local factories.
def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--slow-reads", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("momento_botocore").setLevel(logging.ERROR)  # expected failures

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    plain = session().client("dynamodb", endpoint_url=endpoint)
    plain.create_table(
        TableName="items",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    plain.put_item(TableName="items", Item=ITEM)

    down = LocalMomentoServer().start()
    down.stop()  # a port nobody listens on
    slow = LocalMomentoServer().start()
    slow.delay("Get", seconds=5.0)

    def momento(server: LocalMomentoServer) -> MomentoBackend:
        return MomentoBackend(
            DEFAULT_CACHE,
            credential_provider=server.credential_provider(),
            request_timeout=DEFAULT_MOMENTO_REQUEST_TIMEOUT,
        )

    def no_breaker(backend: Backend) -> Backend:
        return CircuitBreakerBackend(backend, CircuitBreaker(10**9, 1.0))

    def default_breaker(backend: Backend) -> Backend:
        return CircuitBreakerBackend(
            backend, CircuitBreaker(DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_COOLDOWN)
        )

    def reader(backend: Backend | None) -> Callable[[], Any]:
        s = session()
        if backend is not None:
            momento_botocore.register(s, ttl=60, backend=backend, account_id="123456789012")
        client = s.client("dynamodb", endpoint_url=endpoint)

        def read() -> Any:
            answer = client.get_item(TableName="items", Key=KEY)
            assert answer["Item"] == ITEM
            return answer

        return read

    fast = {
        "no cache": reader(None),
        "refused, no breaker": reader(no_breaker(momento(down))),
        "refused, breaker": reader(default_breaker(momento(down))),
        "slow, breaker (open)": reader(default_breaker(momento(slow))),
    }
    for read in fast.values():  # connect, and let the breakers open
        for _ in range(DEFAULT_BREAKER_FAILURES + 1):
            read()
    # One read of each in turn (shuffled), round after round: load changes hit all alike.
    results: dict[str, list[float]] = {name: [] for name in fast}
    names = list(fast)
    order = list(names)
    shuffler = random.Random(7)
    for _ in range(args.rounds):
        shuffler.shuffle(order)  # no scenario always follows the same neighbour
        for name in order:
            started = time.perf_counter()
            fast[name]()
            results[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(v) * 1e3 for name, v in results.items()}

    slow_no_breaker = reader(no_breaker(momento(slow)))
    slow_reads = [batch_mean(slow_no_breaker, 1) * 1e3 for _ in range(args.slow_reads)]

    slow_default = reader(default_breaker(momento(slow)))
    window = DEFAULT_BREAKER_COOLDOWN * 2 + 0.5
    started, reads = time.perf_counter(), 0
    while time.perf_counter() - started < window:
        slow_default()
        reads += 1
    amortized = (time.perf_counter() - started) / reads * 1e3
    # The cache path's own cost while the breaker is open, without DynamoDB's noise.
    refusing = default_breaker(momento(down))
    for _ in range(DEFAULT_BREAKER_FAILURES):
        with contextlib.suppress(Exception):
            refusing.get("k")
    started = time.perf_counter()
    for _ in range(10_000):
        with contextlib.suppress(Exception):
            refusing.get("k")
    refusal_us = (time.perf_counter() - started) / 10_000 * 1e6
    slow.stop()
    moto.stop()

    base = medians["no cache"]
    print(
        f"deadline {DEFAULT_MOMENTO_REQUEST_TIMEOUT * 1000:.0f} ms, breaker "
        f"{DEFAULT_BREAKER_FAILURES} failures / {DEFAULT_BREAKER_COOLDOWN:.0f} s cool-down; "
        f"medians of {args.rounds} interleaved reads each"
    )
    print(f"  {'no cache (DynamoDB only)':34s} {base:8.2f} ms per read")
    for name in names[1:]:
        print(f"  {name:34s} {medians[name]:8.2f} ms per read ({medians[name] - base:+.2f} ms)")
    median_slow = statistics.median(slow_reads)
    print(
        f"  {'slow, no breaker':34s} {median_slow:8.2f} ms per read "
        f"({median_slow - base:+.2f} ms; every read waits one deadline)"
    )
    print(
        f"  {'slow, breaker, from cold':34s} {amortized:8.2f} ms per read "
        f"({amortized - base:+.2f} ms; mean of {reads} reads over {window:.1f} s, "
        "including the opening failures and the probes)"
    )
    print(f"  a lookup refused by the open breaker costs {refusal_us:.1f} us (backend call alone)")


if __name__ == "__main__":
    main()
