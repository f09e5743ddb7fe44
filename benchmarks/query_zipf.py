"""Zipf query workload: hit rate and stale pages, TTL-only against generations.

Run from the repository's root: ``python -m benchmarks.query_zipf [--quick]`` (prints a
Markdown table), or through the runner: ``python -m benchmarks --only query_zipf``.

One table on moto's server (real HTTP), hash key ``pk`` (``partitions`` partitions)
and range key ``sk`` (``per_partition`` items each). One sequence of operations, made
once from a seeded ``random.Random``: each picks a partition from a Zipf distribution
(``s``); most are a Query of the whole partition (``pk = :p``) through a registered
client (memory backend, ``cache_queries=True``); a fraction are a PutItem of one of
the partition's items with a new value of ``v``. Every configuration replays that
sequence from the same table state, on a fresh memory backend:

1. **TTL only** (what DAX's query cache does): writes go through a plain client and no
   stream invalidator runs; a page is fresh only by its TTL.
2. **generations, writes through the registered client**: each write bumps the
   generations its item's pages are filed under (docs/queries.md).
3. **generations, writes elsewhere + stream**: writes through a plain client, and the
   stream invalidator (``streams.make_handler`` in a ``tailer.StreamTailer``) applied by
   ``tailer.drain()`` after every write (or every ``--stream-every`` operations).

After each Query a plain client asks the same Query with ``ConsistentRead=True``; an
answer whose ``Items`` differ is a **stale page**. A hit is an answer whose
``x-momento-cache`` header says ``hit``. Operations run one after the other, as fast
as moto answers: the TTL (60 s unless ``--ttl``) outlasts a configuration's run (about
20 s in full), so TTL-only pages do not expire during it.

The tombstone TTL is short (0.2 s): after a write, a generation's "written lately"
marker blocks fills of its pages for that long (docs/queries.md), and the fill window
(a miss is filled only if its query began less than that long ago) is as long.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import momento_botocore
from benchmarks.context import BenchContext
from benchmarks.model import BenchResult, Figure, Goal
from momento_botocore import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.demo.local import ACCOUNT, MotoServer, Progress, new_session

TABLE = "zipf-queries"

TTL_ONLY = "ttl"
CLIENT = "client"
STREAM = "stream"
CONFIGURATIONS = (TTL_ONLY, CLIENT, STREAM)
LABELS = {
    TTL_ONLY: "TTL only",
    CLIENT: "generations, writes via registered client",
    STREAM: "generations, writes elsewhere + stream",
}


@dataclass(frozen=True)
class Spec:
    operations: int = 3000
    partitions: int = 200
    per_partition: int = 4
    zipf_s: float = 1.1
    write_fraction: float = 0.05
    seed: int = 20261202
    stream_every: int = 0  # 0: drain the stream after each write; k: every k operations
    ttl: float = 60.0
    tombstone_ttl: float = 0.2


FULL = Spec()
QUICK = Spec(operations=400, partitions=50)


@dataclass(frozen=True)
class Operation:
    kind: str  # "query" or "put"
    partition: int
    sort: int = 0
    value: int = 0


def operations(spec: Spec) -> list[Operation]:
    """The workload: the same list for every configuration (seeded)."""
    rng = random.Random(spec.seed)
    weights = [1.0 / (rank + 1) ** spec.zipf_s for rank in range(spec.partitions)]
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    found: list[Operation] = []
    version = 0
    for _ in range(spec.operations):
        partition = min(bisect.bisect(cumulative, rng.random() * total), spec.partitions - 1)
        if rng.random() < spec.write_fraction:
            version += 1
            found.append(Operation("put", partition, rng.randrange(spec.per_partition), version))
        else:
            found.append(Operation("query", partition))
    return found


def pk(partition: int) -> dict[str, str]:
    return {"S": f"p-{partition:04d}"}


def item(partition: int, sort: int, value: int) -> dict[str, Any]:
    return {
        "pk": pk(partition),
        "sk": {"S": f"s-{sort:02d}"},
        "v": {"N": str(value)},
        "payload": {"S": "x" * 64},
    }


def query_params(partition: int) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": pk(partition)},
    }


def create_table(client: Any, spec: Spec) -> None:
    """The table with a NEW_AND_OLD_IMAGES stream, every item at ``v = 0``."""
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    puts = [
        {"PutRequest": {"Item": item(p, s, 0)}}
        for p in range(spec.partitions)
        for s in range(spec.per_partition)
    ]
    for start in range(0, len(puts), 25):
        batch: dict[str, Any] = {TABLE: puts[start : start + 25]}
        while batch:
            batch = client.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


@dataclass
class Outcome:
    configuration: str
    queries: int = 0
    writes: int = 0
    hits: int = 0
    misses: int = 0
    uncached: int = 0  # no header: the query that started its partition's generation
    stale: int = 0
    stale_hits: int = 0
    stale_told: int = 0  # stale although the cache was told of every write: a bug
    stale_partitions: set[int] = field(default_factory=set)
    seconds: float = 0.0
    query_ms: list[float] = field(default_factory=list)
    stream_records: int = 0
    stream_lag_ms: list[float] = field(default_factory=list)  # write acknowledged -> applied
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS[self.configuration]

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def not_filled(self) -> int:
        return self.misses - self.stats.get("fills", 0)

    @property
    def stale_rate(self) -> float:
        return self.stale / self.queries if self.queries else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "configuration": self.configuration,
            "label": self.label,
            "queries": self.queries,
            "writes": self.writes,
            "hits": self.hits,
            "misses": self.misses,
            "uncached": self.uncached,
            "misses_not_filled": self.not_filled,
            "hit_rate": round(self.hit_rate, 4),
            "stale": self.stale,
            "stale_hits": self.stale_hits,
            "stale_after_the_cache_was_told": self.stale_told,
            "stale_partitions": len(self.stale_partitions),
            "seconds": round(self.seconds, 2),
            "query_ms_p50": round(_median(self.query_ms), 3),
            "stream_records": self.stream_records,
            "stream_lag_ms_p50": round(_median(self.stream_lag_ms), 1),
            "stream_lag_ms_max": round(max(self.stream_lag_ms, default=0.0), 1),
            "stats": self.stats,
        }


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def run_configuration(
    endpoint: str,
    spec: Spec,
    ops: Sequence[Operation],
    configuration: str,
    *,
    reset: Callable[[], None],
    progress: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Replay ``ops`` from a fresh table and a fresh memory backend."""
    reset()
    plain = new_session().client("dynamodb", endpoint_url=endpoint)
    create_table(plain, spec)
    config = CacheConfig(
        ttl=spec.ttl,
        tombstone_ttl=spec.tombstone_ttl,
        cache_queries=True,
        account_id=ACCOUNT,
        key_schemas={TABLE: ("pk", "sk")},
    )
    backend = MemoryBackend()
    session = new_session()
    registration = momento_botocore.register(session, config=config, backend=backend)
    reader = session.client("dynamodb", endpoint_url=endpoint)
    writer = reader if configuration == CLIENT else plain
    tailer: Any = None
    if configuration == STREAM:
        from momento_botocore.streams import make_handler
        from momento_botocore.tailer import LATEST, StreamTailer

        tailer = StreamTailer(
            make_handler(registration.config, backend=backend),
            table=TABLE,
            client=new_session().client("dynamodbstreams", endpoint_url=endpoint),
            start=LATEST,
        )
        tailer.drain()  # positions the shard iterators after the seeding writes
    momento_botocore.stats(reset=True)
    outcome = Outcome(configuration)
    unapplied: list[float] = []  # when each write not yet applied by the stream was acked
    # Partitions with a write the cache has not been told of: a TTL-only cache is told
    # of none, the registered writer tells it of each at once, the stream when drained.
    untold: set[int] = set()
    started = time.monotonic()
    for n, op in enumerate(ops, 1):
        if op.kind == "put":
            writer.put_item(TableName=TABLE, Item=item(op.partition, op.sort, op.value))
            outcome.writes += 1
            unapplied.append(time.monotonic())
            if configuration != CLIENT:
                untold.add(op.partition)
        else:
            _query(reader, plain, op.partition, outcome, untold=op.partition in untold)
        if (
            tailer is not None
            and unapplied
            and (n % spec.stream_every == 0 if spec.stream_every else op.kind == "put")
        ):
            outcome.stream_records += tailer.drain()
            applied = time.monotonic()
            outcome.stream_lag_ms += [(applied - acked) * 1000 for acked in unapplied]
            unapplied.clear()
            untold.clear()
        if n % 100 == 0:
            progress(f"{LABELS[configuration]}: {n}/{len(ops)} operations")
    outcome.seconds = time.monotonic() - started
    outcome.stats = momento_botocore.stats().get(TABLE, {})
    return outcome


def _query(reader: Any, plain: Any, partition: int, outcome: Outcome, *, untold: bool) -> None:
    """One cached Query, then the same Query with ConsistentRead through a plain client."""
    params = query_params(partition)
    began = time.perf_counter()
    answer = reader.query(**params)
    outcome.query_ms.append((time.perf_counter() - began) * 1000)
    outcome.queries += 1
    header = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")
    if header == "hit":
        outcome.hits += 1
    elif header == "miss":
        outcome.misses += 1
    else:
        outcome.uncached += 1
    truth = plain.query(ConsistentRead=True, **params)
    if answer["Items"] != truth["Items"]:
        outcome.stale += 1
        outcome.stale_hits += header == "hit"
        outcome.stale_told += not untold
        outcome.stale_partitions.add(partition)


def measure(
    endpoint: str,
    spec: Spec,
    *,
    reset: Callable[[], None],
    progress: Callable[[str], None] = lambda _: None,
) -> list[Outcome]:
    ops = operations(spec)
    return [
        run_configuration(endpoint, spec, ops, configuration, reset=reset, progress=progress)
        for configuration in CONFIGURATIONS
    ]


def describe(spec: Spec) -> str:
    stream = (
        "after each write" if not spec.stream_every else f"every {spec.stream_every} operations"
    )
    return (
        f"{spec.operations} operations ({spec.write_fraction:.0%} PutItem), {spec.partitions} "
        f"partitions of {spec.per_partition} items, Zipf s = {spec.zipf_s:g}, seed {spec.seed}; "
        f"TTL {spec.ttl:g} s, tombstone TTL {spec.tombstone_ttl:g} s; stream drained {stream}; "
        "memory backend, moto's server in this process"
    )


def table(outcomes: Sequence[Outcome]) -> str:
    def pct(part: int, whole: int) -> str:
        return f"{part} ({part / whole:.1%})" if whole else str(part)

    def lag(o: Outcome) -> str:
        if o.configuration != STREAM:
            return ""
        return f"{_median(o.stream_lag_ms):.1f} / {max(o.stream_lag_ms, default=0.0):.1f}"

    rows: list[tuple[str, Callable[[Outcome], str]]] = [
        ("queries", lambda o: str(o.queries)),
        ("writes", lambda o: str(o.writes)),
        ("hit rate", lambda o: f"**{o.hit_rate:.1%}**"),
        ("hits / misses / generation started", lambda o: f"{o.hits} / {o.misses} / {o.uncached}"),
        ("misses not filled (written lately, fill window)", lambda o: str(o.not_filled)),
        ("queries sent to DynamoDB", lambda o: str(o.queries - o.hits)),
        ("stale pages (of queries)", lambda o: f"**{pct(o.stale, o.queries)}**"),
        ("stale pages that were hits", lambda o: str(o.stale_hits)),
        ("stale pages after the cache was told of the write (a bug)", lambda o: str(o.stale_told)),
        ("fresh hits (of queries)", lambda o: pct(o.hits - o.stale_hits, o.queries)),
        ("partitions with a stale page", lambda o: str(len(o.stale_partitions))),
        (
            "stats(): hits / fills / fills_skipped",
            lambda o: " / ".join(
                str(o.stats.get(k, 0)) for k in ("hits", "fills", "fills_skipped")
            ),
        ),
        ("registered client's Query p50 ms", lambda o: f"{_median(o.query_ms):.2f}"),
        ("time s (queries, checks, writes, stream)", lambda o: f"{o.seconds:.1f}"),
        (
            "stream records applied",
            lambda o: str(o.stream_records) if o.configuration == STREAM else "",
        ),
        ("stream lag ms p50 / max (write acked -> applied)", lag),
    ]
    lines = [
        "| | " + " | ".join(o.label for o in outcomes) + " |",
        "| --- |" + " --- |" * len(outcomes),
    ]
    lines += [f"| {name} | " + " | ".join(cell(o) for o in outcomes) + " |" for name, cell in rows]
    return "\n".join(lines)


def run(ctx: BenchContext) -> BenchResult:
    """The runner's entry (``python -m benchmarks --only query_zipf``)."""
    spec = QUICK if ctx.quick else FULL
    outcomes = measure(ctx.moto.endpoint, spec, reset=ctx.moto.reset, progress=ctx.console.update)
    result = BenchResult("query_zipf")
    for o in outcomes:
        ctx.log(
            f"query_zipf {o.label}: {o.queries} queries, hit rate {o.hit_rate:.1%}, "
            f"stale pages {o.stale}"
        )
        result.figures.append(
            Figure(
                "query_zipf",
                f"stale pages, {o.label}",
                value=o.stale_rate,
                unit="fraction of queries",
                absolute={
                    "hit rate": round(o.hit_rate, 4),
                    "fresh hits": round((o.hits - o.stale_hits) / max(o.queries, 1), 4),
                },
                note=f"{o.queries} queries, {o.writes} writes, {o.stale} stale pages",
                goal=None if o.configuration == TTL_ONLY else Goal("<=", 0.0, on="value"),
            )
        )
    ctx.log(describe(spec))
    for line in table(outcomes).splitlines():
        ctx.log(line)
    result.details = {
        "spec": describe(spec),
        "outcomes": [o.summary() for o in outcomes],
        "table": table(outcomes),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.query_zipf")
    parser.add_argument("--quick", action="store_true", help="fewer operations: seconds")
    parser.add_argument("--operations", type=int, help="operations per configuration")
    parser.add_argument(
        "--stream-every",
        type=int,
        default=0,
        metavar="K",
        help="drain the stream every K operations (default: after each write)",
    )
    parser.add_argument("--ttl", type=float, help="the pages' TTL, seconds (default 60)")
    parser.add_argument(
        "--tombstone-ttl", type=float, help="the written-lately window, seconds (default 0.2)"
    )
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else FULL
    if args.operations:
        spec = replace(spec, operations=args.operations)
    if args.stream_every:
        spec = replace(spec, stream_every=args.stream_every)
    if args.ttl is not None:
        spec = replace(spec, ttl=args.ttl)
    if args.tombstone_ttl is not None:
        spec = replace(spec, tombstone_ttl=args.tombstone_ttl)
    console = Progress(sys.stderr)
    server = MotoServer()
    try:
        outcomes = measure(server.endpoint, spec, reset=server.reset, progress=console.update)
    finally:
        server.stop()
    console.line("done")
    print(describe(spec))
    print()
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
