"""The demo's Zipf read/write workload (also benchmark 6's), over moto's server and stream.

One reader (through a registered client) and one writer (a plain client: another
process, as far as the cache knows) hit the same table at fixed rates, both
choosing items from the same Zipf distribution, so hot items are read and
written the most. Each write bumps the item's version attribute ``v``. Run under
each cache mode:

* ``none``: no cache (the demo's baseline);
* ``ttl``: read-aside with TTL only: nobody tells the cache about writes;
* ``delete``: a stream tailer runs the stream handler, but each refresh becomes a
  delete (the next read misses and fills);
* ``refresh``: a stream tailer runs the stream handler as shipped: the new image
  is written to the cache.

A read is *stale* when it returns an older version than the last write
acknowledged before the read began. Stale reads are counted twice: of any age,
and beyond the stream-lag allowance ``grace`` (the last write acknowledged
``grace`` seconds before the read began), which is what the stream cannot help.
"""

from __future__ import annotations

import bisect
import importlib
import importlib.util
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.demo.local import ACCOUNT, MotoServer, create_table, new_session, sample_item
from momento_botocore.entries import EntryKind, decode

TABLE = "workload"
MODES = ("none", "ttl", "delete", "refresh")
LABELS = {
    "none": "no cache",
    "ttl": "TTL only (read-aside)",
    "delete": "stream invalidation (delete)",
    "refresh": "stream refresh (new image)",
}
STREAM_MODES = frozenset({"delete", "refresh"})


def stream_support_missing() -> str | None:
    """Why the stream modes cannot run in this build, or None."""
    for module in ("momento_botocore.streams", "momento_botocore.tailer"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not in this build (stream invalidator, issue 4)"
    return None


@dataclass(frozen=True)
class WorkloadSpec:
    items: int = 1000
    seconds: float = 15.0
    read_rate: float = 250.0  # reads per second
    write_rate: float = 25.0  # writes per second
    zipf_s: float = 1.0
    ttl: float = 10.0
    grace: float = 1.0  # stream lag allowance for "stale beyond the stream lag"
    bucket: float = 1.0  # seconds per point of the time series
    poll_interval: float = 0.1  # the tailer's
    seed: int = 7


@dataclass
class Bucket:
    start: float
    reads: int = 0
    hits: int = 0
    stale: int = 0
    stale_any: int = 0
    writes: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.reads if self.reads else 0.0


@dataclass
class WorkloadRun:
    mode: str
    spec: WorkloadSpec
    reads: int = 0
    hits: int = 0
    stale: int = 0
    stale_any: int = 0
    writes: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    hit_latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.mode]

    @property
    def sent(self) -> int:
        """GetItem requests that reached DynamoDB."""
        return self.reads - self.hits

    @property
    def hit_rate(self) -> float:
        return self.hits / self.reads if self.reads else 0.0

    def steady_hit_rate(self) -> float:
        """Hit rate over the second half of the run (after warm-up)."""
        half = self.buckets[len(self.buckets) // 2 :]
        reads = sum(b.reads for b in half)
        return sum(b.hits for b in half) / reads if reads else 0.0

    def latency(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "label": self.label,
            "seconds": round(self.seconds, 2),
            "reads": self.reads,
            "writes": self.writes,
            "hits": self.hits,
            "hit_rate": round(self.hit_rate, 4),
            "steady_hit_rate": round(self.steady_hit_rate(), 4),
            "dynamodb_reads_sent": self.sent,
            "dynamodb_reads_saved": self.hits,
            "stale_reads": self.stale,
            "stale_reads_any_age": self.stale_any,
            "read_p50_ms": round(self.latency(0.50), 3),
            "read_p99_ms": round(self.latency(0.99), 3),
            "stream_lag_p50_ms": round(percentile(self.lag_ms, 0.5), 1) if self.lag_ms else None,
            "stream_lag_p99_ms": round(percentile(self.lag_ms, 0.99), 1) if self.lag_ms else None,
            "series": [
                {
                    "t": round(b.start, 2),
                    "reads": b.reads,
                    "hits": b.hits,
                    "stale": b.stale,
                    "stale_any": b.stale_any,
                    "writes": b.writes,
                }
                for b in self.buckets
            ],
        }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Zipf:
    def __init__(self, count: int, s: float, seed: int) -> None:
        weights = [1.0 / (rank + 1) ** s for rank in range(count)]
        total = 0.0
        self._cumulative = []
        for weight in weights:
            total += weight
            self._cumulative.append(total)
        self._total = total
        self._random = random.Random(seed)
        self._count = count

    def next(self) -> int:
        point = self._random.random() * self._total
        return min(bisect.bisect_left(self._cumulative, point), self._count - 1)


class _Versions:
    """What the writer has had acknowledged: per item, (ack time, version), in order."""

    def __init__(self, items: int) -> None:
        self.current = [0] * items
        self.acks: list[list[tuple[float, int]]] = [[(0.0, 0)] for _ in range(items)]

    def acked_before(self, index: int, moment: float) -> int:
        acks = self.acks[index]
        at = bisect.bisect_right(acks, moment, key=itemgetter(0))
        return acks[at - 1][1] if at else 0

    def ack_time(self, index: int, version: int) -> float | None:
        for moment, acked in reversed(self.acks[index]):
            if acked == version:
                return moment
        return None


class _StreamSide:
    """The backend the stream handler writes to: measures lag; in ``delete`` mode,
    turns every ITEM refresh into a delete."""

    def __init__(
        self, inner: MemoryBackend, mode: str, versions: _Versions, lags: list[float]
    ) -> None:
        self._inner = inner
        self._delete = mode == "delete"
        self._versions = versions
        self._lags = lags

    def get(self, key: str) -> bytes | None:
        return self._inner.get(key)

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return self._inner.add(key, value, ttl_seconds)

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        entry = decode(value)
        if entry is not None and entry.kind is EntryKind.ITEM and entry.item is not None:
            index = int(entry.item["pk"]["S"].removeprefix("item-"))
            acked = self._versions.ack_time(index, int(entry.item["v"]["N"]))
            if acked is not None:
                self._lags.append((time.monotonic() - acked) * 1000)
            if self._delete:
                self._inner.delete(key)
                return
        self._inner.set(key, value, ttl_seconds)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def close(self) -> None:
        pass


def load_items(client: Any, items: int) -> None:
    for start in range(0, items, 25):
        client.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": sample_item(f"item-{n}", 0)}}
                    for n in range(start, min(items, start + 25))
                ]
            }
        )


def run_mode(
    moto: MotoServer,
    spec: WorkloadSpec,
    mode: str,
    progress: Callable[[str], None] | None = None,
) -> WorkloadRun:
    """Run the workload once under ``mode`` on a freshly reset moto server."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in STREAM_MODES and (reason := stream_support_missing()) is not None:
        raise RuntimeError(f"mode {mode!r} needs the stream invalidator: {reason}")
    import momento_botocore

    moto.reset()
    plain = new_session().client("dynamodb", endpoint_url=moto.endpoint)
    create_table(plain, TABLE, stream=True)
    load_items(plain, spec.items)
    writer_client = new_session().client("dynamodb", endpoint_url=moto.endpoint)
    versions = _Versions(spec.items)
    run = WorkloadRun(mode, spec)
    backend = MemoryBackend()
    registration = None
    tailer: Any = None
    reader = plain
    if mode != "none":
        session = new_session()
        registration = momento_botocore.register(
            session, ttl=spec.ttl, backend=backend, account_id=ACCOUNT
        )
        reader = session.client("dynamodb", endpoint_url=moto.endpoint)
    if mode in STREAM_MODES:
        streams: Any = importlib.import_module("momento_botocore.streams")
        tailer_module: Any = importlib.import_module("momento_botocore.tailer")
        handler = streams.make_handler(
            CacheConfig(ttl=spec.ttl), backend=_StreamSide(backend, mode, versions, run.lag_ms)
        )
        tailer = tailer_module.StreamTailer(
            handler,
            table=TABLE,
            client=new_session().client("dynamodbstreams", endpoint_url=moto.endpoint),
            start=tailer_module.LATEST,
            poll_interval=spec.poll_interval,
        )
        tailer.start()
        if not tailer.wait_until_caught_up(timeout=30):
            tailer.stop()
            raise RuntimeError("the stream tailer did not start reading in 30 s")

    stop = threading.Event()
    started = time.monotonic()
    buckets = [Bucket(n * spec.bucket) for n in range(int(spec.seconds / spec.bucket) + 1)]
    errors: list[BaseException] = []

    def bucket_at(moment: float) -> Bucket:
        return buckets[min(len(buckets) - 1, int((moment - started) / spec.bucket))]

    def write_loop() -> None:
        zipf = _Zipf(spec.items, spec.zipf_s, spec.seed + 1)
        interval = 1.0 / spec.write_rate
        due = time.monotonic()
        try:
            while not stop.is_set():
                due = _pace(due, interval)
                index = zipf.next()
                version = versions.current[index] + 1
                writer_client.put_item(TableName=TABLE, Item=sample_item(f"item-{index}", version))
                acked = time.monotonic()
                versions.current[index] = version
                versions.acks[index].append((acked, version))
                bucket_at(acked).writes += 1
                run.writes += 1
        except BaseException as error:  # surfaced after the run
            errors.append(error)

    writer = threading.Thread(target=write_loop, name="workload-writer", daemon=True)
    writer.start()
    zipf = _Zipf(spec.items, spec.zipf_s, spec.seed)
    interval = 1.0 / spec.read_rate
    due = time.monotonic()
    next_report = started + spec.bucket
    try:
        while (now := time.monotonic()) - started < spec.seconds and not errors:
            due = _pace(due, interval)
            index = zipf.next()
            began = time.monotonic()
            answer = reader.get_item(TableName=TABLE, Key={"pk": {"S": f"item-{index}"}})
            elapsed_ms = (time.monotonic() - began) * 1000
            version = int(answer["Item"]["v"]["N"])
            hit = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") == "hit"
            bucket = bucket_at(began)
            bucket.reads += 1
            bucket.latencies_ms.append(elapsed_ms)
            run.reads += 1
            run.latencies_ms.append(elapsed_ms)
            if hit:
                bucket.hits += 1
                run.hits += 1
                run.hit_latencies_ms.append(elapsed_ms)
            if version < versions.acked_before(index, began):
                bucket.stale_any += 1
                run.stale_any += 1
                if version < versions.acked_before(index, began - spec.grace):
                    bucket.stale += 1
                    run.stale += 1
            if progress is not None and now >= next_report:
                next_report += spec.bucket
                progress(
                    f"{LABELS[mode]}: {now - started:4.1f}/{spec.seconds:g} s, "
                    f"{run.reads} reads, hit rate {run.hit_rate:.0%}, stale {run.stale}"
                )
    finally:
        stop.set()
        writer.join(timeout=30)
        run.seconds = time.monotonic() - started
        if tailer is not None:
            tailer.stop()
        if registration is not None:
            registration.unregister()
    if errors:
        raise RuntimeError(f"the workload's writer failed: {errors[0]!r}") from errors[0]
    # Whole buckets only: a last, partial one would plot a few reads as a point.
    run.buckets = [b for b in buckets if b.start + spec.bucket <= run.seconds + 1e-6]
    return run


def _pace(due: float, interval: float) -> float:
    """Sleep until ``due``; the next due time (no bursts to catch up more than 1 s)."""
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    elif now - due > 1.0:
        due = now
    return due + interval


def describe(spec: WorkloadSpec) -> str:
    return (
        f"{spec.items} items, Zipf s={spec.zipf_s:g}, {spec.read_rate:g} reads/s and "
        f"{spec.write_rate:g} writes/s for {spec.seconds:g} s, TTL {spec.ttl:g} s, "
        f"stale = older than the last write acknowledged {spec.grace:g} s before the read"
    )


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
