"""The demo's Zipf read/write workload (also benchmark 6's), over moto's server and stream.

One reader (through a registered client) and one writer (a plain client) hit the same
table at fixed rates, both choosing items from the same Zipf distribution, so hot
items are read and written the most. Each write bumps the item's version attribute
``v``. Run under each cache mode:

* ``none``: no cache (the demo's baseline);
* ``ttl``: read-aside with TTL only: nobody tells the cache about writes;
* ``delete``: a stream tailer runs the stream handler, but each refresh becomes a
  delete (the next read misses and fills);
* ``refresh``: a stream tailer runs the stream handler as shipped: the new image
  is written to the cache.
* ``momento`` and ``near``: the Momento backend (the local Momento server, given to
  :func:`run_modes` as a :class:`MomentoTarget`), without and with a near cache; the
  stream tailer runs the stream handler as shipped, over the Momento backend, which
  publishes every refresh's key on the cache's topic (the default): the reader's near
  cache is kept fresh by push. Each mode has a key prefix of its own in the cache, so
  that side by side neither fills the other's entries.

Only the reader runs in the calling process, so that its latencies are its own: the
writer and the stream tailer each run in a process of their own (``spawn``), as they
would in production, and take no share of the reader's interpreter lock. The memory
cache lives in the reader's process; the tailer's cache writes reach it over a pipe
(a stand-in for the network between a tailer and Momento), applied by a thread that
wakes only for them. In the Momento modes nothing is relayed: the tailer writes to
Momento, which the reader reads. Times are ``time.monotonic()``, one clock for every
process of the machine.

A read is *stale* when it returns an older version than the last write
acknowledged before the read began. Stale reads are counted twice: of any age,
and beyond the stream-lag allowance ``grace`` (the last write acknowledged
``grace`` seconds before the read began), which is what the stream cannot help.
They are counted after the run, once the writer has said when each write was
acknowledged. In the Momento modes a read is also checked against the tailer: it is
*behind a push* when it returns an older version than one the tailer had written to
Momento, and published, ``grace`` seconds before the read began. The stream's lag is
not in that allowance, only the push's delivery: a near cache that missed a push (it
keeps an entry at most ``near_cache_ttl``) shows there.
"""

from __future__ import annotations

import bisect
import importlib.util
import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import Any, Protocol

from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import EntryKind, decode
from momento_botocore.demo.local import ACCOUNT, create_table, new_session, sample_item

TABLE = "workload"
MODES = ("none", "ttl", "delete", "refresh", "momento", "near")
LABELS = {
    "none": "no cache",
    "ttl": "TTL only (read-aside)",
    "delete": "stream invalidation (delete)",
    "refresh": "stream refresh (new image)",
    "momento": "Momento (stream refresh)",
    "near": "Momento + near cache (stream refresh)",
}
STREAM_MODES = frozenset({"delete", "refresh", "momento", "near"})
#: The stream modes whose tailer relays its cache writes to the reader's memory backend.
RELAYED_MODES = frozenset({"delete", "refresh"})
#: The stream modes on the Momento backend (a :class:`MomentoTarget`).
MOMENTO_MODES = frozenset({"momento", "near"})


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


@dataclass(frozen=True)
class MomentoTarget:
    """Where the Momento modes' cache is: a local Momento server (``http://HOST:PORT``,
    no API key) and its cache; the ``near`` mode's near cache settings."""

    endpoint: str
    cache_name: str
    near_cache_items: int = 10_000
    near_cache_ttl: float = 5.0
    #: The reader's Momento calls (the default, 0.15 s); the tailer's get 1 s.
    request_timeout: float | None = None

    def config(self, spec: WorkloadSpec, mode: str, *, reader: bool) -> CacheConfig:
        """``mode``'s configuration, for its reader or (without a near cache) its tailer."""
        extra: dict[str, Any] = {}
        if not reader:
            extra["momento_request_timeout"] = 1.0
        elif self.request_timeout is not None:
            extra["momento_request_timeout"] = self.request_timeout
        if reader and mode == "near":
            extra.update(near_cache_items=self.near_cache_items, near_cache_ttl=self.near_cache_ttl)
        return CacheConfig(
            ttl=spec.ttl,
            backend="momento",
            momento_endpoint=self.endpoint,
            momento_cache_name=self.cache_name,
            account_id=ACCOUNT,
            key_prefix=f"demo-{mode}:",
            **extra,
        )


@dataclass(frozen=True)
class StaleRead:
    """A read behind the allowance, told precisely: when (seconds into the run), which
    item, the version read and the one due, how long before the read the first newer
    version was acknowledged and (Momento modes) written and published by the tailer,
    and what answered (``near hit``, ``hit`` or ``miss``)."""

    at: float
    item: int
    version: int
    due: int
    acked_ms_before: float | None
    published_ms_before: float | None
    answer: str

    def describe(self) -> str:
        acked = (
            ""
            if self.acked_ms_before is None
            else f", acknowledged {self.acked_ms_before:.0f} ms before the read"
        )
        published = (
            ""
            if self.published_ms_before is None
            else f", in Momento and published {self.published_ms_before:.0f} ms before"
        )
        return (
            f"at {self.at:.2f} s, item-{self.item}: read v{self.version} ({self.answer}); "
            f"v{self.version + 1}{acked}{published}; v{self.due} was due"
        )


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


class MotoEndpoint(Protocol):
    """moto's server, in this process or another: where it listens, and a reset."""

    endpoint: str

    def reset(self) -> None: ...


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
    miss_latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    #: ``near`` mode: the hits the near cache answered (in ``hits`` too), their latencies.
    near_hits: int = 0
    near_hit_latencies_ms: list[float] = field(default_factory=list)
    #: The other hits (in ``hits`` too): answered by the shared cache, Momento's or memory.
    shared_hit_latencies_ms: list[float] = field(default_factory=list)
    #: Momento modes: reads behind a push (see the module's docstring), and the first
    #: of them told precisely; ``stale_details``: the first reads stale beyond ``grace``.
    behind_push: int = 0
    behind_push_details: list[StaleRead] = field(default_factory=list)
    stale_details: list[StaleRead] = field(default_factory=list)

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
            "read_p999_ms": round(self.latency(0.999), 3),
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


#: One acknowledged write: (item index, version, acknowledged at).
Ack = tuple[int, int, float]
#: One read: (began at, milliseconds, item index, version read, hit, near hit).
Read = tuple[float, float, int, int, bool, bool]
#: One refresh the tailer applied: (item index, version, applied at).
Applied = tuple[int, int, float]
#: How many stale reads a run tells precisely.
DETAILS = 5


class _Versions:
    """What the writer had acknowledged: per item, (ack time, version), in order."""

    def __init__(self, items: int, acks: list[Ack]) -> None:
        self.acks: list[list[tuple[float, int]]] = [[(0.0, 0)] for _ in range(items)]
        for index, version, acked in acks:
            self.acks[index].append((acked, version))

    def acked_before(self, index: int, moment: float) -> int:
        acks = self.acks[index]
        at = bisect.bisect_right(acks, moment, key=itemgetter(0))
        return acks[at - 1][1] if at else 0

    def ack_ms_before(self, index: int, version: int, moment: float) -> float | None:
        acked = self.ack_time(index, version)
        return None if acked is None else (moment - acked) * 1000

    def ack_time(self, index: int, version: int) -> float | None:
        for moment, acked in reversed(self.acks[index]):
            if acked == version:
                return moment
        return None


class _Refreshed:
    """What the tailer had applied: per item, (applied at, the highest version so far)."""

    def __init__(self, items: int, applied: list[Applied]) -> None:
        self.times: list[list[float]] = [[] for _ in range(items)]
        self.versions: list[list[int]] = [[] for _ in range(items)]
        for index, version, moment in sorted(applied, key=itemgetter(2)):
            versions = self.versions[index]
            self.times[index].append(moment)
            versions.append(max(version, versions[-1] if versions else 0))

    def applied_before(self, index: int, moment: float) -> int:
        at = bisect.bisect_right(self.times[index], moment)
        return self.versions[index][at - 1] if at else 0

    def ms_before(self, index: int, version: int, moment: float) -> float | None:
        """How long before ``moment`` a version of at least ``version`` was applied."""
        at = bisect.bisect_left(self.versions[index], version)
        if at == len(self.versions[index]):
            return None
        return (moment - self.times[index][at]) * 1000


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


# The writer's process ---------------------------------------------------------------


def _write(endpoint: str, spec: WorkloadSpec, conn: Connection, go: Any, stop: Any) -> None:
    """Puts at ``spec.write_rate`` from ``go`` to ``stop``; sends back every ack."""
    try:
        client = new_session().client("dynamodb", endpoint_url=endpoint)
        client.describe_table(TableName=TABLE)  # connected before the clock starts
        conn.send(("ready",))
        go.wait()
        zipf = _Zipf(spec.items, spec.zipf_s, spec.seed + 1)
        current = [0] * spec.items
        acks: list[Ack] = []
        interval = 1.0 / spec.write_rate
        due = time.monotonic()
        while not stop.is_set():
            due = _pace(due, interval)
            index = zipf.next()
            version = current[index] + 1
            client.put_item(TableName=TABLE, Item=sample_item(f"item-{index}", version))
            acks.append((index, version, time.monotonic()))
            current[index] = version
        conn.send(("done", acks))
    except BaseException as error:  # said to the reader's process, raised there
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


# The tailer's process ---------------------------------------------------------------


class _Relay:
    """The tailer process's backend: every cache write goes over the pipe to the
    reader's process, with the item's (index, version) for the lag. In ``delete``
    mode an ITEM refresh goes as a delete."""

    def __init__(self, conn: Connection, *, delete: bool) -> None:
        self._conn = conn
        self._delete = delete
        self._lock = threading.Lock()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)

    def get(self, key: str) -> bytes | None:
        return None  # the stream handler only writes

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        self._send(("add", key, value, ttl_seconds, None))
        return True

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        entry = decode(value)
        version: tuple[int, int] | None = None
        if entry is not None and entry.kind is EntryKind.ITEM and entry.item is not None:
            index = int(entry.item["pk"]["S"].removeprefix("item-"))
            version = (index, int(entry.item["v"]["N"]))
            if self._delete:
                self._send(("delete", key, b"", 0.0, version))
                return
        self._send(("set", key, value, ttl_seconds, version))

    def delete(self, key: str) -> None:
        self._send(("delete", key, b"", 0.0, None))

    def close(self) -> None:
        pass


def _run_tailer(
    handler: Any, endpoint: str, spec: WorkloadSpec, conn: Connection, stop: Any
) -> None:
    """Tails the table's stream from now on into ``handler``; says "ready" once it
    reads, and stops when ``stop`` is set."""
    from momento_botocore.tailer import LATEST, StreamTailer

    tailer = StreamTailer(
        handler,
        table=TABLE,
        client=new_session().client("dynamodbstreams", endpoint_url=endpoint),
        start=LATEST,
        poll_interval=spec.poll_interval,
    )
    tailer.start()
    try:
        if not tailer.wait_until_caught_up(timeout=30):
            raise RuntimeError("the stream tailer did not start reading in 30 s")
        conn.send(("ready",))
        stop.wait()
    finally:
        tailer.stop()


def _tail(
    endpoint: str, spec: WorkloadSpec, mode: str, conn: Connection, _go: Any, stop: Any
) -> None:
    """Tails the table's stream from now on, relaying the handler's cache writes."""
    try:
        from momento_botocore.streams import make_handler

        handler = make_handler(
            CacheConfig(ttl=spec.ttl), backend=_Relay(conn, delete=mode == "delete")
        )
        _run_tailer(handler, endpoint, spec, conn, stop)
        conn.send(("done",))
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


def _tail_momento(
    endpoint: str,
    spec: WorkloadSpec,
    configs: dict[str, CacheConfig],
    conn: Connection,
    _go: Any,
    stop: Any,
) -> None:
    """Tails the table's stream from now on into Momento: one stream handler per mode
    (its key prefix), each over a Momento backend that publishes its refreshes' keys.
    Sends back, per mode, when each record's new image was written and published."""
    try:
        from momento_botocore.backends.factory import create_backend
        from momento_botocore.streams import make_handler

        backends: list[Any] = []
        try:
            handlers = {}
            for mode, config in configs.items():
                backends.append(backend := create_backend(config))
                handlers[mode] = make_handler(config, backend=backend)
            applied: dict[str, list[Applied]] = {mode: [] for mode in configs}

            def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
                failed: dict[str, dict[str, str]] = {}
                for mode, each in handlers.items():
                    # Returns once its writes are done and published (up to 2 s).
                    response = each(event, context)
                    done = time.monotonic()
                    failures = response.get("batchItemFailures") or []
                    numbers = {failure["itemIdentifier"] for failure in failures}
                    failed.update((number, {"itemIdentifier": number}) for number in numbers)
                    for record in event["Records"]:
                        if record["dynamodb"]["SequenceNumber"] in numbers:
                            break  # this record and the ones after it come again
                        image = record["dynamodb"].get("NewImage")
                        if image is not None:
                            index = int(image["pk"]["S"].removeprefix("item-"))
                            applied[mode].append((index, int(image["v"]["N"]), done))
                return {"batchItemFailures": list(failed.values())}

            _run_tailer(handler, endpoint, spec, conn, stop)
        finally:
            for backend in backends:
                backend.close()
        conn.send(("done", applied))
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


# The reader's process ---------------------------------------------------------------


class _Helper:
    """A process of the run (writer or tailer), and its end of the pipe."""

    def __init__(self, name: str, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self.name = name
        self.go = context.Event()
        self.stop = context.Event()
        self.conn, child = context.Pipe(duplex=False)
        self.process = context.Process(
            target=target,
            args=(*args, child, self.go, self.stop),
            name=f"workload-{name}",
            daemon=True,
        )
        self.process.start()
        child.close()

    def receive(self, timeout: float) -> tuple[Any, ...]:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the workload's {self.name} said nothing in {timeout:g} s")
        try:
            message: tuple[Any, ...] = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the workload's {self.name} process ended early") from None
        if message[0] == "error":
            raise RuntimeError(f"the workload's {self.name} failed: {message[1]}")
        return message

    def close(self) -> None:
        self.go.set()
        self.stop.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Applier(threading.Thread):
    """In the reader's process: applies the tailer's relayed writes to the cache."""

    def __init__(self, helper: _Helper, backend: MemoryBackend) -> None:
        super().__init__(name="workload-applier", daemon=True)
        self._helper = helper
        self._backend = backend
        self.applied: list[tuple[int, int, float]] = []  # (index, version, applied at)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                message = self._helper.receive(timeout=3600)
                if message[0] == "done":
                    return
                operation, key, value, ttl, version = message
                if operation == "set":
                    self._backend.set(key, value, ttl)
                elif operation == "add":
                    self._backend.add(key, value, ttl)
                else:
                    self._backend.delete(key)
                if version is not None:
                    self.applied.append((*version, time.monotonic()))
        except BaseException as error:
            self.error = error


def run_mode(
    moto: MotoEndpoint,
    spec: WorkloadSpec,
    mode: str,
    progress: Callable[[str], None] | None = None,
) -> WorkloadRun:
    """Run the workload once under ``mode`` on a freshly reset moto server."""
    return run_modes(moto, spec, [mode], progress=progress)[0]


def _check_modes(modes: Sequence[str], momento: MomentoTarget | None) -> None:
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode in STREAM_MODES and (reason := stream_support_missing()) is not None:
            raise RuntimeError(f"mode {mode!r} needs the stream invalidator: {reason}")
        if mode in MOMENTO_MODES and momento is None:
            raise ValueError(f"mode {mode!r} needs a Momento server (momento=MomentoTarget(...))")
    relayed = [mode for mode in modes if mode in RELAYED_MODES]
    on_momento = [mode for mode in modes if mode in MOMENTO_MODES]
    if len(relayed) > 1 or len(set(modes)) != len(modes) or not modes:
        raise ValueError(f"modes must differ, at most one of them a stream mode: {modes}")
    if relayed and on_momento:
        raise ValueError(f"a relayed stream mode and a Momento mode cannot run together: {modes}")


# C901: a run in order: check the modes, a reader per mode, the helper processes, the
# reads, the teardown (one try/finally).
def run_modes(  # noqa: C901
    moto: MotoEndpoint,
    spec: WorkloadSpec,
    modes: Sequence[str],
    progress: Callable[[str], None] | None = None,
    *,
    momento: MomentoTarget | None = None,
) -> list[WorkloadRun]:
    """Run the workload once, with a reader per mode side by side, on a freshly reset
    moto server; at most one relayed stream mode (``delete``, ``refresh``), or any
    Momento modes (``momento``, ``near``: on ``momento``'s cache, one tailer for all).

    Every tick picks one item and reads it through each mode's client in turn, back to
    back, in an order shuffled from tick to tick: the modes share the moment, the
    machine's load, the writer and the tailer, and DynamoDB (moto) as busy for one as
    for the other. ``spec.read_rate`` is each mode's. Starts processes (``spawn``): a
    script calling it needs the ``if __name__ == "__main__":`` guard. A ``near`` reader
    reads only once its subscription is live.
    """
    _check_modes(modes, momento)
    streamed = [mode for mode in modes if mode in RELAYED_MODES]
    on_momento = [mode for mode in modes if mode in MOMENTO_MODES]
    import momento_botocore

    moto.reset()
    plain = new_session().client("dynamodb", endpoint_url=moto.endpoint)
    create_table(plain, TABLE, stream=True)
    load_items(plain, spec.items)
    readers: list[Any] = []
    backends: dict[str, MemoryBackend] = {}
    registrations = []
    closing: list[Callable[[], object]] = []
    helpers: list[_Helper] = []
    applier: _Applier | None = None
    tailer: _Helper | None = None
    applied: dict[str, list[Applied]] = {}
    try:
        for mode in modes:
            if mode == "none":
                readers.append(new_session().client("dynamodb", endpoint_url=moto.endpoint))
                continue
            session = new_session()
            if mode in MOMENTO_MODES:
                assert momento is not None
                config = momento.config(spec, mode, reader=True)
                backend = _momento_reader_backend(config)
                closing.append(backend.close)
                registrations.append(
                    momento_botocore.register(session, config=config, backend=backend)
                )
            else:
                backends[mode] = MemoryBackend()
                registrations.append(
                    momento_botocore.register(
                        session, ttl=spec.ttl, backend=backends[mode], account_id=ACCOUNT
                    )
                )
            readers.append(session.client("dynamodb", endpoint_url=moto.endpoint))
        writer = _Helper("writer", _write, moto.endpoint, spec)
        helpers.append(writer)
        if streamed:
            tailer = _Helper("stream tailer", _tail, moto.endpoint, spec, streamed[0])
            helpers.append(tailer)
            tailer.receive(timeout=120)  # caught up: it sees every write from now on
            applier = _Applier(tailer, backends[streamed[0]])
            applier.start()
        elif on_momento:
            assert momento is not None
            configs = {mode: momento.config(spec, mode, reader=False) for mode in on_momento}
            tailer = _Helper("stream tailer", _tail_momento, moto.endpoint, spec, configs)
            helpers.append(tailer)
            tailer.receive(timeout=120)
        writer.receive(timeout=120)
        for reader in readers:  # connected before the clock starts, too
            reader.describe_table(TableName=TABLE)
        started = time.monotonic()
        writer.go.set()
        reads = _read_loop(readers, modes, spec, started, writer, progress)
        seconds = time.monotonic() - started
        writer.stop.set()
        acks: list[Ack] = writer.receive(timeout=60)[1]
        if on_momento and tailer is not None:
            tailer.stop.set()
            applied = tailer.receive(timeout=60)[1]
    finally:
        for helper in helpers:
            helper.stop.set()
        if applier is not None:
            applier.join(timeout=30)  # the tailer's last writes, then its "done"
        for helper in helpers:
            helper.close()
        for registration in registrations:
            registration.unregister()
        for close in closing:
            close()
    if applier is not None and applier.error is not None:
        raise RuntimeError(f"relaying the stream's writes failed: {applier.error}")
    return [
        _tally(
            mode,
            spec,
            started,
            seconds,
            mode_reads,
            acks,
            applier.applied if applier is not None and mode in STREAM_MODES else [],
            applied.get(mode),
        )
        for mode, mode_reads in zip(modes, reads, strict=True)
    ]


def _momento_reader_backend(config: CacheConfig) -> Any:
    """The Momento backend of a reader (``create_backend``), connected, and with a near
    cache, subscribed: its store is used only once the subscription is live."""
    from momento_botocore.backends.factory import create_backend

    backend = create_backend(config)
    try:
        backend.get("momento-botocore-demo:connect")  # the channel, before the clock
        if config.near_cache_items > 0:
            subscriber = getattr(getattr(backend, "near", None), "subscriber", None)
            if subscriber is None:
                raise RuntimeError(f"create_backend gave no near cache: {backend!r}")
            if not subscriber.wait_live(30):
                raise RuntimeError("the near cache's subscription was not live within 30 s")
    except BaseException:
        backend.close()
        raise
    return backend


def _near_hits() -> int:
    """The near hits of this process so far (``stats()["(near cache)"]``)."""
    import momento_botocore
    from momento_botocore.backends.near import NEAR_STATS

    return momento_botocore.stats().get(NEAR_STATS, {}).get("near_hits", 0)


def _read_loop(
    readers: Sequence[Any],
    modes: Sequence[str],
    spec: WorkloadSpec,
    started: float,
    writer: _Helper,
    progress: Callable[[str], None] | None,
) -> list[list[Read]]:
    """The reader: each tick (``spec.read_rate`` a second, for ``spec.seconds``), one
    GetItem of one item through every reader, in a shuffled order; nothing else is done
    per read but timing it and noting what it returned (for a ``near`` reader, whether
    its near cache answered, from ``stats()`` after the clock). The reads of each reader."""
    zipf = _Zipf(spec.items, spec.zipf_s, spec.seed)
    order = random.Random(spec.seed + 2)
    turns = list(range(len(readers)))
    near_turns = {turn for turn, mode in enumerate(modes) if mode == "near"}
    interval = 1.0 / spec.read_rate
    reads: list[list[Read]] = [[] for _ in readers]
    hits = [0] * len(readers)
    due = time.monotonic()
    next_report = started + spec.bucket
    while (now := time.monotonic()) - started < spec.seconds:
        due = _pace(due, interval)
        key = {"pk": {"S": f"item-{(index := zipf.next())}"}}
        order.shuffle(turns)
        for turn in turns:
            near_before = _near_hits() if turn in near_turns else 0
            began = time.monotonic()
            answer = readers[turn].get_item(TableName=TABLE, Key=key)
            elapsed_ms = (time.monotonic() - began) * 1000
            hit = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") == "hit"
            near = turn in near_turns and _near_hits() > near_before
            hits[turn] += hit
            reads[turn].append((began, elapsed_ms, index, int(answer["Item"]["v"]["N"]), hit, near))
        if now >= next_report:
            next_report += spec.bucket
            if not writer.process.is_alive():
                break  # its error is raised when its acks are asked for
            if progress is not None:
                rates = ", ".join(
                    f"{LABELS[mode]} {count / len(reads[0]):.0%}"
                    for mode, count in zip(modes, hits, strict=True)
                    if mode != "none"
                )
                each = " each" if len(readers) > 1 else ""
                progress(
                    f"{now - started:4.1f}/{spec.seconds:g} s, {len(reads[0])} reads{each}"
                    + (f"; hit rate: {rates}" if rates else "")
                )
    return reads


# C901: one pass over the reads, each counted where it belongs.
def _tally(  # noqa: C901
    mode: str,
    spec: WorkloadSpec,
    started: float,
    seconds: float,
    reads: list[Read],
    acks: list[Ack],
    applied: list[tuple[int, int, float]],
    refreshed: list[Applied] | None = None,
) -> WorkloadRun:
    """The run's figures, from what the reader, the writer and the tailer noted
    (``refreshed``: a Momento mode's refreshes, as the tailer wrote and published them)."""
    run = WorkloadRun(mode, spec, seconds=seconds, writes=len(acks))
    buckets = [Bucket(n * spec.bucket) for n in range(int(spec.seconds / spec.bucket) + 1)]

    def bucket_at(moment: float) -> Bucket:
        return buckets[max(0, min(len(buckets) - 1, int((moment - started) / spec.bucket)))]

    versions = _Versions(spec.items, acks)
    pushed = _Refreshed(spec.items, refreshed) if refreshed is not None else None

    def told(began: float, index: int, version: int, due: int, answer: str) -> StaleRead:
        return StaleRead(
            at=began - started,
            item=index,
            version=version,
            due=due,
            acked_ms_before=versions.ack_ms_before(index, version + 1, began),
            published_ms_before=(
                None if pushed is None else pushed.ms_before(index, version + 1, began)
            ),
            answer=answer,
        )

    for began, elapsed_ms, index, version, hit, near in reads:
        bucket = bucket_at(began)
        bucket.reads += 1
        bucket.latencies_ms.append(elapsed_ms)
        run.reads += 1
        run.latencies_ms.append(elapsed_ms)
        if near:
            run.near_hits += 1
            run.near_hit_latencies_ms.append(elapsed_ms)
        elif hit:
            run.shared_hit_latencies_ms.append(elapsed_ms)
        if hit:
            bucket.hits += 1
            run.hits += 1
            run.hit_latencies_ms.append(elapsed_ms)
        else:
            run.miss_latencies_ms.append(elapsed_ms)
        answer = "near hit" if near else "hit" if hit else "miss"
        if version < versions.acked_before(index, began):
            bucket.stale_any += 1
            run.stale_any += 1
            due = versions.acked_before(index, began - spec.grace)
            if version < due:
                bucket.stale += 1
                run.stale += 1
                if len(run.stale_details) < DETAILS:
                    run.stale_details.append(told(began, index, version, due, answer))
        if pushed is not None:
            due = pushed.applied_before(index, began - spec.grace)
            if version < due:
                run.behind_push += 1
                if len(run.behind_push_details) < DETAILS:
                    run.behind_push_details.append(told(began, index, version, due, answer))
    for _, _, acked in acks:
        bucket_at(acked).writes += 1
    for index, version, applied_at in [*applied, *(refreshed or [])]:
        acked_at = versions.ack_time(index, version)
        if acked_at is not None:
            run.lag_ms.append((applied_at - acked_at) * 1000)
    # Whole buckets only: a last, partial one would plot a few reads as a point.
    run.buckets = [b for b in buckets if b.start + spec.bucket <= seconds + 1e-6]
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
