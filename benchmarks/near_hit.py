"""A GetItem hit from the near cache, against a memory hit, a Momento hit and botocore's
floor; what the near cache adds to a write; how long a push takes to evict elsewhere.

Run from the repository's root: ``python -m benchmarks.near_hit [--quick]
[--get-delay-ms MS]`` prints Markdown tables and writes nothing; ``python -m
benchmarks --only near_hit`` (and ``make bench``) runs it with the others.

- **Hits**: four low-level clients answer the same ``GetItem`` for a 9-attribute item
  at an endpoint never contacted (as in ``benchmarks/hit.py``): botocore's floor (one
  ``before-call`` handler returning a prebuilt answer) and three registered clients
  whose cache holds the entry: the memory backend, the Momento backend
  (``create_backend`` with ``invalidation_topic=""``: the SDK behind the circuit
  breaker, nothing published) and the Momento backend with the near cache
  (``near_cache_items=1000``). Momento is the local Momento-protocol server in another
  process, reached over real gRPC on loopback, every ``Get`` held ``--get-delay-ms``
  (default 0: loopback only, as the ``momento`` benchmark measures it). The near
  client's first read fills its store from Momento; every later one must be a near
  hit: the run checks that ``stats()``'s ``near_hits`` grew by each of its calls and
  that the server saw exactly one ``Get`` per Momento call, none from the near client.
- **Writes**: ``set`` of the item by the plain Momento backend (nothing published),
  by the default Momento backend without a near cache (which publishes every write's
  key all the same: a ``NearCacheBackend`` without a store) and by the near cache's
  backend; the caller's time. The publish happens in the publisher's thread: back to
  back, during the next calls; one at a time, each ``set`` is timed alone after the
  previous one's publish was done and delivered.
- **Push**: a second near backend in this process, with its own store and
  subscription, holds a key; the near backend above writes it; the time from that
  ``set`` returning until the second's ``near.store.get(key)`` is None (polled every
  50 us), one write at a time.

Times are wall time (``time.perf_counter``): a round trip is waiting, not CPU. Each
block also records this thread's CPU time (``time.thread_time``) and this process's
(``time.process_time``: the publisher's and subscriber's threads, gRPC's), shown
beside it. Hits and writes run in interleaved rounds (``benchmarks/harness.py``): a
ratio is the median of the per-round ratios, quartiles in brackets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.harness import Ratio, Samples, Variant, measure, median, ratio
from benchmarks.model import BenchResult, Figure, unavailable

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench-items"
PK = "user-42"
KEY = {"pk": {"S": PK}}
NOWHERE = "http://127.0.0.1:9"  # never contacted: every call is answered by a cache
NEAR_ITEMS = 1000
#: Longer than the run, so that every near read after the first is a near hit (the
#: default, 5 s, would add one Momento Get per key every 5 s).
NEAR_TTL = 600.0
#: A busy machine must not turn a slow call into a failure.
TIMEOUT = 5.0
POLL = 50e-6
PUSH_TIMEOUT = 2.0

FLOOR, MEMORY, MOMENTO, NEAR = "botocore floor", "memory hit", "Momento hit", "near hit"
HITS = (FLOOR, MEMORY, MOMENTO, NEAR)
HIT_RATIOS = ((MOMENTO, MEMORY), (NEAR, MEMORY), (NEAR, MOMENTO), (MEMORY, FLOOR), (NEAR, FLOOR))
UNPUBLISHED = "Momento set, nothing published"
PUBLISHED = "Momento set, published (the default)"
NEAR_SET = "near cache's set (published)"
SETS = (UNPUBLISHED, PUBLISHED, NEAR_SET)
SHORT = {UNPUBLISHED: "unpublished set", PUBLISHED: "published set", NEAR_SET: "near set"}
SET_RATIOS = ((NEAR_SET, UNPUBLISHED), (PUBLISHED, UNPUBLISHED), (NEAR_SET, PUBLISHED))

Progress = Callable[[str], Callable[[int, int], None]]


# The server, in a process of its own ------------------------------------------------------


class ServerProcess:
    """The local Momento-protocol server in a child process (``--serve``), which
    answers a line ``calls RPC`` on its stdin with how many calls of RPC reached it."""

    def __init__(self, get_delay_ms: float) -> None:
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"}
        self._process = subprocess.Popen(
            [
                *(sys.executable, "-m", "benchmarks.near_hit", "--serve"),
                *("--get-delay-ms", str(get_delay_ms)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=ROOT,
        )
        line = self._read()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"local Momento server did not start: {line!r}")
        host, _, port = line.removeprefix("listening on ").rpartition(":")
        from momento import CredentialProvider

        self.provider: Any = CredentialProvider.for_momento_local(host, int(port))

    def calls(self, rpc: str) -> int:
        assert self._process.stdin is not None
        self._process.stdin.write(f"calls {rpc}\n")
        self._process.stdin.flush()
        return int(self._read())

    def _read(self) -> str:
        assert self._process.stdout is not None
        return self._process.stdout.readline().strip()

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the server stops at the end of its input
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def serve(get_delay_ms: float) -> int:
    """The child's side: serve until stdin ends, answering ``calls RPC`` lines."""
    from momento_botocore.testing import LocalMomentoServer

    server = LocalMomentoServer()
    if get_delay_ms > 0:
        server.delay("Get", "GetBatch", seconds=get_delay_ms / 1000)
    server.start()
    print(f"listening on {server.endpoint}", flush=True)
    try:
        for line in sys.stdin:
            command, _, rpc = line.strip().partition(" ")
            if command == "calls":
                print(server.calls(rpc), flush=True)
    finally:
        server.stop()
    return 0


# Timing ------------------------------------------------------------------------------------


@dataclass
class Timed:
    """Seconds per call of each variant, one value per round: wall time, this thread's
    CPU time and this process's CPU time."""

    rounds: int
    block: int
    wall: Samples
    thread: Samples
    process: Samples


def timed(
    ops: dict[str, Callable[[], object]],
    *,
    rounds: int,
    block: int,
    progress: Callable[[int, int], None] | None,
    before: Callable[[], object] | None = None,
    after: Callable[[], object] | None = None,
) -> Timed:
    """``measure`` in wall time, each block's CPU times beside it. ``before`` and
    ``after`` run around each block, untimed; this process's CPU time is read after
    ``after`` (the block's background work, once waited for, is in it)."""
    thread: Samples = {name: [] for name in ops}
    process: Samples = {name: [] for name in ops}

    def variant(name: str, op: Callable[[], object]) -> Variant:
        started = [0.0, 0.0]

        def enter() -> None:
            if before is not None:
                before()
            started[:] = time.thread_time(), time.process_time()

        def exit_() -> None:
            thread[name].append((time.thread_time() - started[0]) / block)
            if after is not None:
                after()
            process[name].append((time.process_time() - started[1]) / block)

        return Variant(name, op, enter=enter, exit=exit_)

    wall = measure(
        [variant(name, op) for name, op in ops.items()],
        rounds=rounds,
        block=block,
        progress=progress,
        clock=time.perf_counter,
    )
    # The harness's warm-up round ran the blocks too: keep the measured rounds.
    return Timed(
        rounds,
        block,
        wall,
        {name: values[-rounds:] for name, values in thread.items()},
        {name: values[-rounds:] for name, values in process.items()},
    )


# Measuring -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run measured, in seconds."""

    get_delay_ms: float
    hits: Timed
    sets: Timed
    sets_alone: Timed
    pushes: list[float]
    checks: dict[str, int] = field(default_factory=dict)


def _near_counter(name: str) -> int:
    import momento_botocore
    from momento_botocore.backends.near import NEAR_STATS

    return momento_botocore.stats().get(NEAR_STATS, {}).get(name, 0)


def run_all(*, quick: bool, get_delay_ms: float = 0.0, progress: Progress | None = None) -> Outcome:
    """Start the server, measure hits, writes and pushes, stop everything."""
    server = ServerProcess(get_delay_ms)
    closing: list[Callable[[], object]] = []
    try:
        return _run(server, closing, quick=quick, get_delay_ms=get_delay_ms, progress=progress)
    finally:
        for close in reversed(closing):
            close()
        server.stop()


def _run(
    server: ServerProcess,
    closing: list[Callable[[], object]],
    *,
    quick: bool,
    get_delay_ms: float,
    progress: Progress | None,
) -> Outcome:
    from momento_botocore.backends.factory import create_backend
    from momento_botocore.backends.near import NearCacheBackend
    from momento_botocore.config import CacheConfig
    from momento_botocore.core.entries import encode_item
    from momento_botocore.demo.local import ACCOUNT, sample_item
    from momento_botocore.testing import DEFAULT_CACHE

    config = CacheConfig(
        ttl=3600,
        backend="momento",
        momento_cache_name=DEFAULT_CACHE,
        momento_request_timeout=TIMEOUT,
        account_id=ACCOUNT,
    )
    configs = {
        "plain": config.replace(invalidation_topic=""),
        "publishing": config,
        "near": config.replace(near_cache_items=NEAR_ITEMS, near_cache_ttl=NEAR_TTL),
    }

    def backend(kind: str) -> Any:
        made = create_backend(configs[kind], credential_provider=server.provider)
        closing.append(made.close)
        if isinstance(made, NearCacheBackend) != (kind != "plain"):
            raise RuntimeError(f"near_hit benchmark: {kind}: create_backend gave {made!r}")
        subscriber = getattr(getattr(made, "near", None), "subscriber", None)
        if (kind == "near") != (subscriber is not None):
            raise RuntimeError(f"near_hit benchmark: {kind}: subscription {subscriber!r}")
        if subscriber is not None and not subscriber.wait_live(5):
            raise RuntimeError("near_hit benchmark: the subscription was not live within 5 s")
        return made

    plain, publishing, near = backend("plain"), backend("publishing"), backend("near")
    progress = progress or (lambda _: lambda _done, _total: None)
    checks: dict[str, int] = {}
    hits = _hits(server, plain, configs["plain"], near, configs["near"], checks, quick, progress)
    value = encode_item(sample_item(PK))
    sets, sets_alone = _sets(
        server, {UNPUBLISHED: plain, PUBLISHED: publishing, NEAR_SET: near}, value, checks, quick
    )
    pushes = _pushes(near, backend("near"), plain, value, count=40 if quick else 200)
    return Outcome(get_delay_ms, hits, sets, sets_alone, pushes, checks)


def _hits(
    server: ServerProcess,
    plain: Any,
    plain_config: Any,
    near: Any,
    near_config: Any,
    checks: dict[str, int],
    quick: bool,
    progress: Progress,
) -> Timed:
    import momento_botocore
    from benchmarks.hit import floor_handler
    from momento_botocore.backends.memory import MemoryBackend
    from momento_botocore.core.entries import encode_item
    from momento_botocore.core.keys import cache_key
    from momento_botocore.demo.local import ACCOUNT, REGION, new_session, sample_item

    item = sample_item(PK)
    entry_key = cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8")
    memory = MemoryBackend()
    memory.set(entry_key, encode_item(item), 3600)
    plain.set(entry_key, encode_item(item), 3600)  # in Momento, nothing published

    def client(backend: Any, config: Any) -> Any:
        session = new_session()
        if config is None:
            momento_botocore.register(session, ttl=3600, backend=backend, account_id=ACCOUNT)
        else:
            momento_botocore.register(session, config=config, backend=backend)
        return session.client("dynamodb", endpoint_url=NOWHERE)

    floor = new_session().client("dynamodb", endpoint_url=NOWHERE)
    floor.meta.events.register("before-call.dynamodb.GetItem", floor_handler(item))
    clients = {
        FLOOR: floor,
        MEMORY: client(memory, None),
        MOMENTO: client(plain, plain_config),
        NEAR: client(near, near_config),
    }
    for name, each in clients.items():  # the near client's first read fills its store
        answer = each.get_item(TableName=TABLE, Key=KEY)
        header = answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache")
        if answer.get("Item") != item or (name != FLOOR and header != "hit"):
            raise RuntimeError(f"near_hit benchmark: {name}: the first read did not hit")
    if near.near.store.get(entry_key) != encode_item(item):
        raise RuntimeError("near_hit benchmark: the near client's first read did not fill it")

    ops: dict[str, Callable[[], object]] = {
        name: (lambda c: lambda: c.get_item(TableName=TABLE, Key=KEY))(each)
        for name, each in clients.items()
    }
    gets, hits = server.calls("Get"), _near_counter("near_hits")
    for _ in range(100):
        ops[NEAR]()
    checks["near reads alone"] = 100
    checks["near_hits counted for them"] = _near_counter("near_hits") - hits
    checks["server Gets during them"] = server.calls("Get") - gets

    rounds, block = (11, 20) if quick else (151, 40)
    gets, batches = server.calls("Get"), server.calls("GetBatch")
    hits = _near_counter("near_hits")
    samples = timed(ops, rounds=rounds, block=block, progress=progress("hits"))
    checks["calls of each hit variant in the rounds (warm-up round included)"] = calls = (
        rounds + 1
    ) * block
    checks["near_hits counted in the rounds"] = _near_counter("near_hits") - hits
    checks["server Gets in the rounds (one per Momento hit)"] = server.calls("Get") - gets
    checks["server GetBatches in the rounds"] = server.calls("GetBatch") - batches
    if (
        checks["near_hits counted for them"] != 100
        or checks["server Gets during them"] != 0
        or checks["near_hits counted in the rounds"] != calls
        or checks["server Gets in the rounds (one per Momento hit)"] != calls
        or checks["server GetBatches in the rounds"] != 0
    ):
        raise RuntimeError(f"near_hit benchmark: near reads that were not near hits: {checks}")
    return samples


def _sets(
    server: ServerProcess,
    backends: dict[str, Any],
    value: bytes,
    checks: dict[str, int],
    quick: bool,
) -> tuple[Timed, Timed]:
    """``set`` by each backend, back to back (blocks timed together, CPU beside) and one
    at a time (each timed alone: per-call medians, after the last publish was done)."""
    keys = _keys("write", 1000)
    publishers = [each for each in backends.values() if hasattr(each, "wait_published")]

    def settle(delivery: float) -> None:
        for each in publishers:
            each.wait_published(5.0)
        time.sleep(delivery)  # the pushes, delivered to the near backend's subscription

    ops: dict[str, Callable[[], object]] = {
        name: (lambda b: lambda: b.set(next(keys), value, 3600))(each)
        for name, each in backends.items()
    }
    publishes, publish_calls = _near_counter("publishes"), server.calls("Publish")
    rounds, block = (7, 10) if quick else (51, 20)
    back_to_back = timed(
        ops,
        rounds=rounds,
        block=block,
        progress=None,
        before=lambda: settle(0.005),
        after=lambda: settle(0.02),
    )
    checks["sets that publish, back to back (warm-up round included)"] = 2 * (rounds + 1) * block
    checks["messages published for them"] = _near_counter("publishes") - publishes
    checks["server Publish calls during them"] = server.calls("Publish") - publish_calls
    rounds, block = (5, 10) if quick else (25, 20)
    alone = measure(
        [Variant(name, op, prepare=lambda: settle(0.003)) for name, op in ops.items()],
        rounds=rounds,
        block=block,
        per_call=True,
        clock=time.perf_counter,
    )
    settle(0.02)
    return back_to_back, Timed(rounds, block, alone, {}, {})


def _keys(prefix: str, count: int) -> Iterator[str]:
    number = 0
    while True:
        yield f"{prefix}-{number % count}"
        number += 1


def _pushes(writer: Any, reader: Any, plain: Any, value: bytes, *, count: int) -> list[float]:
    """Seconds from ``writer.set`` returning until ``reader``'s near store no longer
    holds the key, one write at a time (``PUSH_TIMEOUT`` and more: never arrived)."""
    keys = [f"push-{number}" for number in range(count)]
    for key in keys:
        plain.set(key, value, 3600)
    changed = value + b" "  # what the writer writes: any other bytes
    latencies = []
    for key in keys:
        if reader.get(key) != value or reader.near.store.get(key) != value:
            raise RuntimeError(f"near_hit benchmark: the reader's near store did not take {key}")
        writer.set(key, changed, 3600)
        returned = time.perf_counter()
        while reader.near.store.get(key) is not None:
            if time.perf_counter() - returned > PUSH_TIMEOUT:
                break
            time.sleep(POLL)
        latencies.append(time.perf_counter() - returned)
        writer.wait_published(5.0)
        time.sleep(0.005)
    return latencies


# Reporting -------------------------------------------------------------------------------


def _us(samples: Samples, name: str) -> float:
    return median(samples, name) * 1e6


def _ratio_text(r: Ratio) -> str:
    return f"{r.value:.3f}x ({r.q1:.2f}-{r.q3:.2f})"


def table(outcome: Outcome) -> str:
    """Markdown: the hits, their ratios, the writes, the pushes, the checks."""
    hits, sets, alone = outcome.hits, outcome.sets, outcome.sets_alone
    lines = [
        f"GetItem hits, low-level client: {hits.rounds} rounds x {hits.block} calls; local "
        f"Momento server in another process, Get held {outcome.get_delay_ms:g} ms. Wall "
        "time (`time.perf_counter`); CPU: this thread's (`time.thread_time`), this "
        "process's (`time.process_time`, all its threads).",
        "",
        "| variant | wall us/call | thread CPU us/call | process CPU us/call |",
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {_us(hits.wall, name):,.1f} | {_us(hits.thread, name):,.1f} "
            f"| {_us(hits.process, name):,.1f} |"
            for name in HITS
        ),
        "",
        "| ratio | wall time: median of per-round ratios (q1-q3) | thread CPU |",
        "| --- | --- | --- |",
        *(
            f"| {other} / {base} | {_ratio_text(ratio(hits.wall, other, base))} "
            f"| {ratio(hits.thread, other, base).value:.3f}x |"
            for other, base in HIT_RATIOS
        ),
        "",
        f"Writes: `set` of the item (1,000 keys in turn), the caller's time. Back to back: "
        f"{sets.rounds} rounds x {sets.block} calls timed together (process CPU: until "
        f"the block's publishes were done and delivered). One at a time: {alone.rounds} "
        f"rounds x {alone.block} calls, each timed alone after the previous one's publish "
        "was done and delivered (median per block).",
        "",
        "| write | back to back: wall us/call | thread CPU | process CPU "
        "| one at a time: wall us/call |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {_us(sets.wall, name):,.1f} | {_us(sets.thread, name):,.1f} "
            f"| {_us(sets.process, name):,.1f} | {_us(alone.wall, name):,.1f} |"
            for name in SETS
        ),
        *(
            f"| {SHORT[other]} / {SHORT[base]} | {_ratio_text(ratio(sets.wall, other, base))} "
            f"| {ratio(sets.thread, other, base).value:.3f}x "
            f"| {ratio(sets.process, other, base).value:.3f}x "
            f"| {_ratio_text(ratio(alone.wall, other, base))} |"
            for other, base in SET_RATIOS
        ),
    ]
    push = push_summary(outcome.pushes)
    lines += [
        "",
        "| push: writer's `set` returned -> evicted from another near store "
        "| median ms | p90 ms | max ms | writes | never arrived |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| two near backends in this process, loopback | {push['median_ms']:.2f} "
        f"| {push['p90_ms']:.2f} | {push['max_ms']:.2f} | {len(outcome.pushes)} "
        f"| {push['never']:g} |",
        "",
        "Checks: " + "; ".join(f"{name}: {count:,}" for name, count in outcome.checks.items()),
    ]
    return "\n".join(lines)


def push_summary(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered) * 1e3,
        "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1e3,
        "max_ms": ordered[-1] * 1e3,
        "never": sum(1 for latency in ordered if latency > PUSH_TIMEOUT),
    }


def _figure(name: str, samples: Samples, other: str, base: str, note: str) -> Figure:
    """``other / base``; the absolutes under their short names."""
    r = ratio(samples, other, base)
    return Figure(
        "near_hit",
        name,
        ratio=r.value,
        ratio_q1=r.q1,
        ratio_q3=r.q3,
        unit="us/call",
        absolute={
            SHORT.get(other, other): _us(samples, other),
            SHORT.get(base, base): _us(samples, base),
        },
        note=note,
    )


def run(ctx: BenchContext) -> BenchResult:
    from benchmarks.momento_sdk import missing

    reason = missing()
    if reason is not None:
        return unavailable("near_hit", "GetItem near hit / memory hit", reason)
    outcome = run_all(quick=ctx.quick, progress=ctx.progress)
    note = "wall time; local Momento server in another process, loopback gRPC"
    hits, sets, alone = outcome.hits, outcome.sets, outcome.sets_alone
    result = BenchResult("near_hit")
    result.figures += [
        _figure(f"GetItem {other} / {base}", hits.wall, other, base, note)
        for other, base in HIT_RATIOS[:3]
    ]
    result.figures += [
        _figure(f"back to back: {SHORT[other]} / {SHORT[base]}", sets.wall, other, base, note)
        for other, base in SET_RATIOS[:2]
    ]
    result.figures += [
        _figure(f"one at a time: {SHORT[other]} / {SHORT[base]}", alone.wall, other, base, note)
        for other, base in SET_RATIOS[:2]
    ]
    push = push_summary(outcome.pushes)
    result.figures.append(
        Figure(
            "near_hit",
            "push: writer's set returned -> evicted from another near store (median)",
            value=push["median_ms"],
            unit="ms",
            absolute={"p90": push["p90_ms"], "max": push["max_ms"]},
            note="two near backends in one process, loopback",
        )
    )
    result.details = {
        "get_delay_ms": outcome.get_delay_ms,
        "table": table(outcome),
        "push_ms": [round(latency * 1e3, 3) for latency in outcome.pushes],
        "checks": outcome.checks,
        **{
            f"{part}_{clock}_us": {name: _us(samples, name) for name in samples}
            for part, each in (("hits", hits), ("sets", sets), ("sets_one_at_a_time", alone))
            for clock, samples in (
                ("wall", each.wall),
                ("thread_cpu", each.thread),
                ("process_cpu", each.process),
            )
            if samples
        },
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.near_hit")
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds")
    parser.add_argument(
        "--get-delay-ms",
        type=float,
        default=0.0,
        help="the server holds every Get this long (default 0: loopback only)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.get_delay_ms)
    ctx = BenchContext(quick=args.quick, out_dir=ROOT / "benchmarks" / "results", out=sys.stderr)
    started = time.monotonic()
    outcome = run_all(quick=args.quick, get_delay_ms=args.get_delay_ms, progress=ctx.progress)
    ctx.log(f"near_hit: {time.monotonic() - started:.0f} s")
    print(table(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
