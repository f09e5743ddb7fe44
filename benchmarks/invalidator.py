"""Benchmark 5: stream records per second through the invalidator, memory backend.

Lambda-shaped events (``{"Records": [...]}``) of MODIFY records with new and old
images, each record a different item, in batches of 100 and 1,000, handed to
``momento_botocore.streams.make_handler(config, backend=MemoryBackend())``. Side
by side: the floor, the same 1,000 cache writes as bare ``backend.set`` calls.
Timed in this thread's CPU time (what one core sustains).
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.harness import Variant, measure, median, ratio
from benchmarks.model import BenchResult, Figure, Goal
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.demo.local import ACCOUNT, REGION, sample_item

TABLE = "bench-stream"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"
GOAL = Goal(">=", 20_000, on="value")
BATCHES = (100, 1000)


def missing() -> str | None:
    if importlib.util.find_spec("momento_botocore.streams") is None:
        return "not available: momento_botocore.streams is not in this build (issue 4)"
    return None


def stream_record(number: int, pk: str, version: int) -> dict[str, Any]:
    """One Lambda-delivered DynamoDB Streams record: a MODIFY with both images."""
    return {
        "eventID": f"event-{number}",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": 1767225600,
            "Keys": {"pk": {"S": pk}},
            "NewImage": sample_item(pk, version),
            "OldImage": sample_item(pk, version - 1),
            "SequenceNumber": f"{100000000000000000000 + number}",
            "SizeBytes": 420,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def run(ctx: BenchContext) -> BenchResult:
    reason = missing()
    if reason is not None:
        return BenchResult(
            "invalidator",
            [
                Figure("invalidator", f"stream records/s, batches of {size}", unavailable=reason)
                for size in BATCHES
            ],
        )
    streams: Any = importlib.import_module("momento_botocore.streams")
    config = CacheConfig(ttl=3600)
    handler = streams.make_handler(config, backend=MemoryBackend())
    events = {
        size: {"Records": [stream_record(n, f"item-{n}", 2) for n in range(size)]}
        for size in BATCHES
    }
    for size, event in events.items():
        answer = handler(event)
        if answer.get("batchItemFailures"):
            raise RuntimeError(f"invalidator benchmark: batch of {size} reported failures")
    floor_backend = MemoryBackend()
    writes = [
        (
            cache_key(ACCOUNT, REGION, TABLE, {"pk": {"S": f"item-{n}"}}),
            encode_item(sample_item(f"item-{n}", 2)),
        )
        for n in range(max(BATCHES))
    ]

    def bare_sets() -> None:
        for key, value in writes:
            floor_backend.set(key, value, 3600.0)

    variants = [
        Variant(f"handler {size}", (lambda e: lambda: handler(e))(event))
        for size, event in events.items()
    ]
    variants.append(Variant("backend.set x1000", bare_sets))
    rounds = 5 if ctx.quick else 25
    samples = measure(
        variants,
        rounds=rounds,
        block=1,
        progress=ctx.progress("invalidator"),
        clock=time.thread_time,
    )
    result = BenchResult("invalidator")
    floor_rate = max(BATCHES) / median(samples, "backend.set x1000")
    for size in BATCHES:
        rate = size / median(samples, f"handler {size}")
        figure = Figure(
            "invalidator",
            f"stream records/s, batches of {size}",
            value=rate,
            unit="records/s",
            absolute={"handler": rate, "bare backend.set": floor_rate},
            goal=GOAL,
        )
        if size == max(BATCHES):
            r = ratio(samples, f"handler {size}", "backend.set x1000")
            figure.ratio, figure.ratio_q1, figure.ratio_q3 = r.value, r.q1, r.q3
            figure.note = "ratio: time per batch, handler / bare backend.set of the same writes"
        result.figures.append(figure)
    result.details = {"rounds": rounds, "records": list(BATCHES)}
    return result
