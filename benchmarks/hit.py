"""Benchmark 1: a cached GetItem hit against botocore's own floor.

The floor is the same kind of client with one ``before-call.dynamodb.GetItem``
handler that returns a prebuilt response and does nothing else: the least any
cache on botocore's event system can cost. For ``Table``, the floor is a
``Table`` whose client has that handler (boto3 still deserializes the item).

The breakdown adds our pieces one at a time on the low-level client, each
variant measured in the same interleaved rounds, so each step's increment is
what that piece costs inside a real call (caches cold from botocore's own work),
next to what the same function costs alone in a tight loop.
"""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

from benchmarks.context import BenchContext
from benchmarks.harness import Samples, Variant, measure, median, ratio
from benchmarks.model import BenchResult, Figure, Goal
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import Entry, EntryKind, encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.counters import STATS
from momento_botocore.demo.local import ACCOUNT, REGION, new_session, sample_item

TABLE = "bench-items"
PK = "user-42"
KEY = {"pk": {"S": PK}}
GOAL = Goal("<=", 1.10)
_NOWHERE = "http://127.0.0.1:9"  # never contacted: every call here is answered by a handler


def floor_handler(item: dict[str, Any]) -> Callable[..., tuple[AWSResponse, dict[str, Any]]]:
    """A before-call handler returning a prebuilt response (a fresh top-level dict each
    time, as boto3's Table layer converts the item in place)."""
    http = AWSResponse(None, 200, {}, None)

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return http, {
            "Item": dict(item),
            "ResponseMetadata": {
                "RequestId": "floor",
                "HTTPStatusCode": 200,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        }

    return answer


def _filled_backend(item: dict[str, Any]) -> MemoryBackend:
    backend = MemoryBackend()
    backend.set(
        cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8"), encode_item(item), 3600
    )
    return backend


def _check_hit(response: dict[str, Any], what: str) -> None:
    if response["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") != "hit":
        raise RuntimeError(f"{what}: expected a cache hit; the benchmark setup is wrong")


def hit_clients(item: dict[str, Any]) -> dict[str, Callable[[], object]]:
    """One GetItem operation per variant: floor and hit, low-level client and Table."""
    import momento_botocore

    handler = floor_handler(item)
    floor_client = new_session().client("dynamodb", endpoint_url=_NOWHERE)
    floor_client.meta.events.register("before-call.dynamodb.GetItem", handler)
    floor_table = new_session().resource("dynamodb", endpoint_url=_NOWHERE).Table(TABLE)
    floor_table.meta.client.meta.events.register("before-call.dynamodb.GetItem", handler)

    session = new_session()
    momento_botocore.register(session, ttl=3600, backend=_filled_backend(item), account_id=ACCOUNT)
    hit_client = session.client("dynamodb", endpoint_url=_NOWHERE)
    hit_table = session.resource("dynamodb", endpoint_url=_NOWHERE).Table(TABLE)
    _check_hit(hit_client.get_item(TableName=TABLE, Key=KEY), "low-level client")
    _check_hit(hit_table.get_item(Key={"pk": PK}), "Table")
    return {
        "client floor": lambda: floor_client.get_item(TableName=TABLE, Key=KEY),
        "client hit": lambda: hit_client.get_item(TableName=TABLE, Key=KEY),
        "Table floor": lambda: floor_table.get_item(Key={"pk": PK}),
        "Table hit": lambda: hit_table.get_item(Key={"pk": PK}),
    }


def run(ctx: BenchContext) -> BenchResult:
    item = sample_item(PK)
    ops = hit_clients(item)
    rounds, block = (15, 40) if ctx.quick else (151, 40)
    samples = measure(
        [Variant(name, op) for name, op in ops.items()],
        rounds=rounds,
        block=block,
        progress=ctx.progress("hit path"),
        clock=time.thread_time,
    )
    result = BenchResult("hit")
    for kind in ("client", "Table"):
        r = ratio(samples, f"{kind} hit", f"{kind} floor")
        result.figures.append(
            Figure(
                "hit",
                f"GetItem hit / floor ({'low-level client' if kind == 'client' else 'Table'})",
                ratio=r.value,
                ratio_q1=r.q1,
                ratio_q3=r.q3,
                unit="us/call",
                absolute={
                    "hit": median(samples, f"{kind} hit") * 1e6,
                    "floor": median(samples, f"{kind} floor") * 1e6,
                },
                goal=GOAL,
            )
        )
    result.details = {
        "rounds": rounds,
        "calls_per_block": block,
        "item_bytes": len(encode_item(item)) - 5,
        "samples_us": _us(samples),
    }
    return result


# The breakdown -------------------------------------------------------------------------


class _NullStats:
    def add(self, table: str, counter: str, amount: int = 1) -> None:
        pass


def _hit_path_events() -> list[tuple[str, bool]]:
    """(event, registered last) of our handlers that run on a GetItem hit, other than
    the before-call one (the floor has one too) and before-send (never on a hit)."""
    from momento_botocore.hooks import HANDLERS

    return [
        (event, last)
        for event, _, _, last in HANDLERS
        if event == "before-parameter-build.dynamodb" or event == "after-call.dynamodb.GetItem"
    ]


def _noop(**_: Any) -> None:
    return None


def _swap(module: Any, name: str, value: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    original = getattr(module, name)

    def enter() -> None:
        setattr(module, name, value)

    def exit_() -> None:
        setattr(module, name, original)

    return enter, exit_


# (label, variant it adds to, variant with it)
STEPS = (
    ("event dispatch (our other handlers, doing nothing)", "floor", "+dispatch"),
    ("plan_request without the key codec", "+dispatch", "+plan (no codec)"),
    ("key codec (cache_key)", "+plan (no codec)", "+plan"),
    ("serve_from_cache less decode and stats (lookup, response)", "+plan", "+serve"),
    ("stats counters", "+serve", "+stats"),
    ("entry decode", "+stats", "hit"),
)


def run_breakdown(ctx: BenchContext) -> BenchResult:
    """Where a hit's extra time goes, inside real calls and alone."""
    from momento_botocore.core import engine, reads
    from momento_botocore.drivers.sync import SyncDriver

    item = sample_item(PK)
    backend = _filled_backend(item)
    config = CacheConfig(ttl=3600, account_id=ACCOUNT)
    key_text = cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8")
    handler = floor_handler(item)

    def client_with(*, plan: bool, serve: bool, stats: bool, noop: bool = False) -> Any:
        client = new_session().client("dynamodb", endpoint_url=_NOWHERE)
        events = client.meta.events
        if noop:  # the same number of handlers on the same events, doing nothing
            for number, (event, last) in enumerate(_hit_path_events()):
                register = events.register_last if last else events.register
                register(event, _noop, unique_id=f"bench-noop-{number}")
        if plan:
            counters: Any = STATS if stats else _NullStats()
            read_hooks = SyncDriver(config, backend, stats=counters)
            read_hooks.install(events)
        if not serve:
            events.register_first("before-call.dynamodb.GetItem", handler)
        return client

    def get(client: Any) -> Callable[[], object]:
        return lambda: client.get_item(TableName=TABLE, Key=KEY)

    def stub_decode(data: bytes | None) -> Entry:
        return Entry(EntryKind.ITEM, dict(item))

    no_codec = _swap(reads, "cache_key", lambda *_, **__: key_text)
    no_decode = _swap(engine, "decode", stub_decode)
    variants = [
        Variant("floor", get(client_with(plan=False, serve=False, stats=False))),
        Variant("+dispatch", get(client_with(plan=False, serve=False, stats=False, noop=True))),
        Variant(
            "+plan (no codec)",
            get(client_with(plan=True, serve=False, stats=False)),
            enter=no_codec[0],
            exit=no_codec[1],
        ),
        Variant("+plan", get(client_with(plan=True, serve=False, stats=False))),
        Variant(
            "+serve",
            get(client_with(plan=True, serve=True, stats=False)),
            enter=no_decode[0],
            exit=no_decode[1],
        ),
        Variant(
            "+stats",
            get(client_with(plan=True, serve=True, stats=True)),
            enter=no_decode[0],
            exit=no_decode[1],
        ),
        Variant("hit", get(client_with(plan=True, serve=True, stats=True))),
    ]
    _check_hit(variants[-1].op(), "breakdown")  # type: ignore[arg-type]
    rounds, block = (9, 30) if ctx.quick else (101, 30)
    samples = measure(
        variants,
        rounds=rounds,
        block=block,
        progress=ctx.progress("breakdown"),
        clock=time.thread_time,
    )
    alone = _alone(config, backend, key_text, item, quick=ctx.quick)
    steps = []
    for label, base, other in STEPS:
        # Paired per round (adjacent blocks), so drift between rounds cancels out.
        differences = [o - b for o, b in zip(samples[other], samples[base], strict=True)]
        steps.append({"piece": label, "in_call_us": statistics.median(differences) * 1e6})
    floor_us = median(samples, "floor") * 1e6
    hit_us = median(samples, "hit") * 1e6
    r = ratio(samples, "hit", "floor")
    result = BenchResult("breakdown")
    result.figures.append(
        Figure(
            "breakdown",
            "GetItem hit / floor (breakdown run, low-level client)",
            ratio=r.value,
            ratio_q1=r.q1,
            ratio_q3=r.q3,
            unit="us/call",
            absolute={"hit": hit_us, "floor": floor_us},
            goal=GOAL,
        )
    )
    result.details = {
        "rounds": rounds,
        "calls_per_block": block,
        "hit_path_handlers": [event for event, _ in _hit_path_events()],
        "steps": steps,
        "alone_us": alone,
        "samples_us": _us(samples),
    }
    return result


def _alone(
    config: CacheConfig,
    backend: MemoryBackend,
    key_text: str,
    item: dict[str, Any],
    *,
    quick: bool,
) -> dict[str, float]:
    """Each piece alone in a tight loop (best of 5 repeats, gc off as timeit does)."""
    from momento_botocore.core.call import GET_KEY
    from momento_botocore.core.fastpath import cache_key as remembered_key
    from momento_botocore.core.fastpath import decode, parse_table
    from momento_botocore.counters import Stats
    from momento_botocore.drivers.sync import SyncDriver

    client = new_session().client("dynamodb", endpoint_url=_NOWHERE)
    model = client.meta.service_model.operation_model("GetItem")
    read_hooks = SyncDriver(config, backend, stats=Stats())
    params = {"TableName": TABLE, "Key": KEY}
    context: dict[str, Any] = {"client_region": REGION}
    read_hooks.plan_request(params=params, model=model, context=context)
    call = context[GET_KEY]
    raw = backend.get(key_text)
    stats = Stats()
    ok = AWSResponse(None, 200, {}, None)

    def plan_request() -> None:
        read_hooks.plan_request(params=params, model=model, context={"client_region": REGION})

    def serve() -> None:
        call.fill = True
        read_hooks.serve_from_cache(context=context)

    pieces: dict[str, Callable[[], object]] = {
        "plan_request": plan_request,
        "  parse_table": lambda: parse_table(TABLE, REGION, ACCOUNT),
        "  cache_key (remembered)": lambda: remembered_key(
            ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8"
        ),
        "serve_from_cache": serve,
        "  backend.get": lambda: backend.get(key_text),
        "  decode": lambda: decode(raw),
        "  stats.add": lambda: stats.add(TABLE, "hits"),
        "fill_after_miss (on a hit)": lambda: read_hooks.fill_after_miss(
            http_response=ok, parsed={}, context=context
        ),
    }
    number = 2000 if quick else 20000
    return {
        name: min(timeit.repeat(piece, number=number, repeat=5)) / number * 1e6
        for name, piece in pieces.items()
    }


def _us(samples: Samples) -> dict[str, list[float]]:
    return {name: [round(v * 1e6, 2) for v in values] for name, values in samples.items()}
