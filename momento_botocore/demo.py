"""The demo: embedded DynamoDB (moto's server, in-process) + the memory backend.

A read-heavy workload runs twice, uncached and cached, over the same items; the
demo prints hit rate and latency percentiles. moto comes from the ``demo`` extra.
"""

from __future__ import annotations

import logging
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

TABLE = "demo-items"


@dataclass(frozen=True)
class RunResult:
    label: str
    latencies_ms: list[float]
    hits: int
    reads: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def hit_rate(self) -> float:
        return self.hits / self.reads if self.reads else 0.0


def _start_moto() -> tuple[Any, str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:  # pragma: no cover - depends on the install
        raise SystemExit("the demo needs moto: pip install 'momento-botocore[demo]'") from error
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _zipf_keys(count: int, reads: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(count)]
    return rng.choices(range(count), weights=weights, k=reads)


def _run(label: str, client: Any, keys: list[int], out: TextIO) -> RunResult:
    latencies: list[float] = []
    hits = 0
    step = max(1, len(keys) // 10)
    for done, n in enumerate(keys, 1):
        started = time.perf_counter()
        answer = client.get_item(TableName=TABLE, Key={"id": {"S": f"item-{n}"}})
        latencies.append((time.perf_counter() - started) * 1000)
        hits += answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") == "hit"
        if done % step == 0:
            out.write(f"\r  {label:<9} {done * 100 // len(keys):3d}%")
            out.flush()
    out.write("\n")
    return RunResult(label, latencies, hits, len(keys))


def run_demo(
    *, items: int = 500, reads: int = 4000, seed: int = 7, out: TextIO = sys.stdout
) -> int:
    """Run the demo; returns a process exit code."""
    import boto3

    import momento_botocore

    out.write("momento-botocore demo: embedded DynamoDB (moto) + memory backend\n")
    server, endpoint = _start_moto()
    try:
        session_args = {
            "aws_access_key_id": "demo",
            "aws_secret_access_key": "demo",
            "region_name": "us-east-1",
        }
        plain = boto3.Session(**session_args).client("dynamodb", endpoint_url=endpoint)
        plain.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        out.write(f"  loading {items} items into table {TABLE!r} at {endpoint}\n")
        for n in range(items):
            plain.put_item(
                TableName=TABLE,
                Item={
                    "id": {"S": f"item-{n}"},
                    "price": {"N": str(n * 1.25)},
                    "tags": {"SS": ["demo", f"group-{n % 7}"]},
                },
            )
        keys = _zipf_keys(items, reads, seed)
        uncached = _run("uncached", plain, keys, out)
        session = boto3.Session(**session_args)
        registration = momento_botocore.register(session, ttl=300)
        cached_client = session.client("dynamodb", endpoint_url=endpoint)
        cached = _run("cached", cached_client, keys, out)
        registration.unregister()
    finally:
        server.stop()

    out.write(f"\n  {reads} GetItem calls over {items} items (Zipf-distributed keys)\n\n")
    out.write(f"  {'':<10}{'hit rate':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}\n")
    for result in (uncached, cached):
        out.write(
            f"  {result.label:<10}{result.hit_rate:>10.1%}{result.percentile(0.50):>10.3f}"
            f"{result.percentile(0.99):>10.3f}{statistics.fmean(result.latencies_ms):>10.3f}\n"
        )
    speedup = statistics.fmean(uncached.latencies_ms) / statistics.fmean(cached.latencies_ms)
    out.write(f"\n  mean read is {speedup:.1f}x faster with the cache\n")
    return 0
