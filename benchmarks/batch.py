"""Benchmark 4: a BatchGetItem of 100 keys, all hits, against one GetItem hit.

Both on the same registered client. The ratio says what a 100-key batch hit
costs in GetItem hits; divided by 100 it is the cost of one key within a batch.
Next to it, what each key beyond the first costs: the 100-key batch against a
1-key batch, measured in the same rounds.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.harness import Samples, Variant, measure, median, quartiles, ratio, ratio_figure
from benchmarks.model import BenchResult, Figure, Goal, unavailable
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.demo.local import ACCOUNT, create_table, new_session, sample_item

TABLE = "bench-batch"
KEYS = 100
NAME = f"BatchGetItem {KEYS} keys all hits / one GetItem hit"
UNCACHED_NAME = f"BatchGetItem {KEYS} keys all hits / the same batch uncached, caller's CPU"
# The goal: "under 3x" (Goal compares with <=, and 3.0 exactly is not met
# in practice: two medians never tie).
GOAL = Goal("<=", 3.0)
PER_KEY_NAME = "all-hit BatchGetItem, cost per key beyond the first"
PER_KEY_GOAL = Goal("<=", 3.0, on="value")


def run(ctx: BenchContext) -> BenchResult:
    import momento_botocore

    moto = ctx.moto
    moto.reset()
    plain = new_session().client("dynamodb", endpoint_url=moto.endpoint)
    create_table(plain, TABLE)
    keys = [{"pk": {"S": f"item-{n}"}} for n in range(KEYS)]
    for start in range(0, KEYS, 25):
        plain.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": sample_item(key["pk"]["S"])}}
                    for key in keys[start : start + 25]
                ]
            }
        )
    session = new_session()
    registration = momento_botocore.register(
        session, ttl=3600, backend=MemoryBackend(), account_id=ACCOUNT
    )
    try:
        client = session.client("dynamodb", endpoint_url=moto.endpoint)
        sent = [0]

        def count(**_: Any) -> None:
            sent[0] += 1

        client.meta.events.register("before-send.dynamodb", count)

        def batch() -> Any:
            return client.batch_get_item(RequestItems={TABLE: {"Keys": keys}})

        def batch_of_one() -> Any:
            return client.batch_get_item(RequestItems={TABLE: {"Keys": keys[:1]}})

        def one() -> Any:
            return client.get_item(TableName=TABLE, Key=keys[0])

        def uncached() -> Any:  # DynamoDB (moto, other threads) answers; we parse
            return plain.batch_get_item(RequestItems={TABLE: {"Keys": keys}})

        for _ in range(3):  # fill (unprocessed keys are possible), then check
            batch()
        one()
        before = sent[0]
        answer = batch()
        one()
        if sent[0] != before:
            return unavailable(
                "batch",
                NAME,
                "not available: BatchGetItem is not served from the cache in this build "
                "(BatchGetItem support, issue 5)",
            )
        if len(answer["Responses"].get(TABLE, [])) != KEYS:
            raise RuntimeError("batch benchmark: the all-hits batch did not return every item")
        rounds, block = (6, 4) if ctx.quick else (30, 6)
        samples = measure(
            [
                Variant("batch hit", batch),
                Variant("GetItem hit", one),
                Variant("1-key batch hit", batch_of_one),
            ],
            rounds=rounds,
            block=block,
            progress=ctx.progress("BatchGetItem"),
            clock=time.thread_time,
        )
        # Apart: the uncached batch's HTTP round trips would disturb the figure above.
        against_uncached = measure(
            [Variant("batch hit", batch), Variant("uncached batch", uncached)],
            rounds=max(3, rounds // 3),
            block=block,
            progress=ctx.progress("BatchGetItem, uncached"),
            clock=time.thread_time,
        )
    finally:
        registration.unregister()
    batch_us = median(samples, "batch hit") * 1e6
    result = BenchResult("batch")
    result.figures.append(
        ratio_figure(
            "batch",
            NAME,
            samples,
            "batch hit",
            "GetItem hit",
            extra={"per key in the batch": batch_us / KEYS},
            goal=GOAL,
            note=f"per key: {ratio(samples, 'batch hit', 'GetItem hit').value / KEYS:.3f} "
            "GetItem hits",
        )
    )
    result.figures.append(_beyond_the_first(samples))
    result.figures.append(
        ratio_figure(
            "batch",
            UNCACHED_NAME,
            against_uncached,
            "batch hit",
            "uncached batch",
            note="CPU time of the calling thread (moto answers in other threads)",
        )
    )
    result.details = {"rounds": rounds, "calls_per_block": block, "keys": KEYS}
    return result


def _beyond_the_first(samples: Samples) -> Figure:
    """(batch of KEYS - batch of 1) / (KEYS - 1), paired per round: what each further
    key of an all-hit batch costs."""
    per_key = [
        (many - one) / (KEYS - 1) * 1e6
        for many, one in zip(samples["batch hit"], samples["1-key batch hit"], strict=True)
    ]
    q1, q3 = quartiles(per_key)
    return Figure(
        "batch",
        PER_KEY_NAME,
        value=statistics.median(per_key),
        unit="us",
        absolute={
            f"batch of {KEYS}": median(samples, "batch hit") * 1e6,
            "batch of 1": median(samples, "1-key batch hit") * 1e6,
        },
        goal=PER_KEY_GOAL,
        note=f"quartiles {q1:.2f}-{q3:.2f} us",
    )
