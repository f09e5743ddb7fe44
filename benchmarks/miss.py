"""Benchmark 2: a miss that fills, against the same GetItem with no cache at all.

Both clients talk to the same moto server. Before each cached call the entry is
deleted (untimed), so every cached call is a real miss: lookup, HTTP round trip,
then add-if-absent of the answer.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.harness import Variant, measure, median, ratio_figure
from benchmarks.model import BenchResult, Figure, Goal
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.core.keys import cache_key
from momento_botocore.demo.local import ACCOUNT, REGION, create_table, new_session, sample_item

TABLE = "bench-miss"
PK = "user-7"
KEY = {"pk": {"S": PK}}
GOAL = Goal("<=", 1.05)


def run(ctx: BenchContext) -> BenchResult:
    import momento_botocore

    moto = ctx.moto
    moto.reset()
    plain = new_session().client("dynamodb", endpoint_url=moto.endpoint)
    create_table(plain, TABLE)
    plain.put_item(TableName=TABLE, Item=sample_item(PK))

    backend = MemoryBackend()
    session = new_session()
    registration = momento_botocore.register(session, ttl=3600, backend=backend, account_id=ACCOUNT)
    cached = session.client("dynamodb", endpoint_url=moto.endpoint)
    entry_key = cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8")
    try:
        first = cached.get_item(TableName=TABLE, Key=KEY)
        if first["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") != "miss":
            raise RuntimeError("miss benchmark: the first cached call was not a miss")
        if backend.get(entry_key) is None:
            raise RuntimeError("miss benchmark: the miss did not fill the cache")

        spare = MemoryBackend()

        def forget() -> None:
            backend.delete(entry_key)

        def same_pause() -> None:  # the uncached side does the same untimed work
            spare.delete(entry_key)

        cpu: dict[str, list[float]] = {"uncached": [], "miss+fill": []}

        def get(client: Any, name: str) -> Any:
            spent = cpu[name]

            def call() -> None:
                started = time.thread_time()
                client.get_item(TableName=TABLE, Key=KEY)
                spent.append(time.thread_time() - started)

            return call

        rounds, calls = (6, 10) if ctx.quick else (40, 15)
        samples = measure(
            [
                Variant("uncached", get(plain, "uncached"), prepare=same_pause),
                Variant("miss+fill", get(cached, "miss+fill"), prepare=forget),
            ],
            rounds=rounds,
            block=calls,
            per_call=True,
            progress=ctx.progress("miss path"),
        )
    finally:
        registration.unregister()
    result = BenchResult("miss")
    result.figures.append(
        ratio_figure(
            "miss",
            "GetItem miss that fills / uncached GetItem (moto server)",
            samples,
            "miss+fill",
            "uncached",
            scale=1e3,
            unit="ms/call",
            goal=GOAL,
        )
    )
    # The cache's own work on a miss runs in the calling thread: its CPU time there,
    # unlike the round trip's wall time, is not blurred by the server and the machine.
    added_us = (statistics.median(cpu["miss+fill"]) - statistics.median(cpu["uncached"])) * 1e6
    uncached_us = median(samples, "uncached") * 1e6
    result.figures.append(
        Figure(
            "miss",
            "GetItem miss that fills / uncached, from the caller's CPU time",
            ratio=(uncached_us + added_us) / uncached_us,
            unit="us/call",
            absolute={
                "added CPU": added_us,
                "caller CPU, miss+fill": statistics.median(cpu["miss+fill"]) * 1e6,
                "caller CPU, uncached": statistics.median(cpu["uncached"]) * 1e6,
            },
            goal=GOAL,
            note="(uncached wall time + added caller CPU) / uncached wall time",
        )
    )
    result.details = {
        "rounds": rounds,
        "calls_per_block": calls,
        "samples_ms": {k: [round(v * 1e3, 3) for v in vs] for k, vs in samples.items()},
    }
    return result
