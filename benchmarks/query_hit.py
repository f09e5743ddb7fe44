"""A cached Query page against botocore's own floor, with GetItem's beside it (issue 13).

Run from the repository's root (``make bench`` does):
``python -m benchmarks.query_hit [--quick]``. Prints a Markdown table; nothing is written.

- **Query hit / floor**: a registered client (memory backend, ``cache_queries=True``)
  answering a Query from the cache, against the same kind of client with one
  ``before-call.dynamodb.Query`` handler returning a prebuilt answer (the least any
  cache on botocore's events can cost: no lookup, no decoding). A hit is two lookups
  (the partition's generation, then the page) and a decoded page. Pages of 1 and of
  10 items (benchmarks/hit.py's 9-attribute item, with a sort key).
- **GetItem hit / floor** in the same rounds (benchmarks/hit.py's comparison), and
  **Query hit (1 item) / GetItem hit**: what the generation lookup and the page's
  shape cost over an item hit.

Every variant runs in the same interleaved rounds (the order rotates from round to
round), timed with this thread's CPU time (``time.thread_time``): a ratio is the median
of the per-round ratios, quartiles in brackets.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.awsrequest import AWSResponse

import momento_botocore
from benchmarks.harness import Samples, Variant, measure, median, ratio
from benchmarks.hit import floor_handler
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig
from momento_botocore.core.entries import encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.core.queries import PagePlan, encode_page, page_key, plan_page
from momento_botocore.demo.local import ACCOUNT, REGION, new_session, sample_item

TABLE = "bench-items"
PK = "user-42"
KEY = {"pk": {"S": PK}}
NOWHERE = "http://127.0.0.1:9"  # never contacted: every call is answered by a handler
PAGE_SIZES = (1, 10)
QUERY_GOAL = 1.20
GET_GOAL = 1.15  # benchmarks/README.md's GetItem goal
GENERATION = 123_456_789  # any value: what a generation started at random holds


def query_params(size: int) -> dict[str, Any]:
    """A Query of one partition; each page size is its own partition (``PK-<size>``)."""
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": f"{PK}-{size}"}},
    }


def page_items(size: int) -> list[dict[str, Any]]:
    return [{**sample_item(f"{PK}-{size}"), "sk": {"S": f"order-{n:04d}"}} for n in range(size)]


def page_floor_handler(items: list[dict[str, Any]]) -> Callable[..., Any]:
    """A before-call handler returning a prebuilt Query answer: a fresh top-level dict
    and list each time (as the floor of GetItem builds a fresh item dict)."""
    http = AWSResponse(None, 200, {}, None)

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return http, {
            "Items": [dict(item) for item in items],
            "Count": len(items),
            "ScannedCount": len(items),
            "ResponseMetadata": {
                "RequestId": "floor",
                "HTTPStatusCode": 200,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        }

    return answer


def filled_backend(config: CacheConfig, pages: dict[int, list[dict[str, Any]]]) -> MemoryBackend:
    """A memory cache holding the GetItem entry, and each page under its generation."""
    backend = MemoryBackend()
    item = sample_item(PK)
    backend.set(
        cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8"), encode_item(item), 3600
    )
    for size, items in pages.items():
        plan = plan_page(
            "Query",
            query_params(size),
            account=ACCOUNT,
            region=REGION,
            settings_for=config.settings_for,
            opted_in=config.pages_cached,
            key_prefix=config.key_prefix,
        )
        if not isinstance(plan, PagePlan):
            raise RuntimeError(f"the benchmark's Query is not cacheable: {plan}")
        for generation in plan.generations:
            backend.set(generation, str(GENERATION).encode(), 3600)
        key = page_key(plan, [GENERATION] * len(plan.generations), key_prefix=config.key_prefix)
        page = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        backend.set(key, encode_page(page), 3600)
    return backend


def _expect_hit(answer: dict[str, Any], what: str) -> None:
    if answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") != "hit":
        raise RuntimeError(f"{what}: expected a cache hit; the benchmark setup is wrong")


def variants() -> list[Variant]:
    pages = {size: page_items(size) for size in PAGE_SIZES}
    config = CacheConfig(ttl=3600, account_id=ACCOUNT, cache_queries=True)
    session = new_session()
    momento_botocore.register(session, config=config, backend=filled_backend(config, pages))
    hit = session.client("dynamodb", endpoint_url=NOWHERE)
    floor = new_session().client("dynamodb", endpoint_url=NOWHERE)
    floor.meta.events.register("before-call.dynamodb.GetItem", floor_handler(sample_item(PK)))
    found: list[Variant] = []
    for size, items in pages.items():
        params = query_params(size)
        # One floor client a page size: its handler answers that page.
        floor_q = new_session().client("dynamodb", endpoint_url=NOWHERE)
        floor_q.meta.events.register("before-call.dynamodb.Query", page_floor_handler(items))
        answer = hit.query(**params)
        _expect_hit(answer, f"Query of {size}")
        if answer["Items"] != items or answer["Count"] != size:
            raise RuntimeError(f"Query of {size}: the hit is not the page filled")
        found += [
            Variant(f"Query floor {size}", partial(floor_q.query, **params)),
            Variant(f"Query hit {size}", partial(hit.query, **params)),
        ]
    _expect_hit(hit.get_item(TableName=TABLE, Key=KEY), "GetItem")
    return [
        Variant("GetItem floor", lambda: floor.get_item(TableName=TABLE, Key=KEY)),
        Variant("GetItem hit", lambda: hit.get_item(TableName=TABLE, Key=KEY)),
        *found,
    ]


def table(samples: Samples, rounds: int, block: int) -> str:
    rows = [
        f"Hits / botocore floor, {rounds} interleaved rounds of {block} calls, "
        "thread CPU time, memory backend",
        "",
        "| figure | hit us | floor us | ratio (q1-q3) | goal | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def row(name: str, other: str, base: str, goal: float | None) -> None:
        r = ratio(samples, other, base)
        met = "" if goal is None else ("yes" if r.value <= goal else "**no**")
        rows.append(
            f"| {name} | {median(samples, other) * 1e6:.1f} | {median(samples, base) * 1e6:.1f} "
            f"| {r.value:.3f}x ({r.q1:.3f}-{r.q3:.3f}) "
            f"| {'' if goal is None else f'<= {goal:.2f}x'} | {met} |"
        )

    row("GetItem hit / floor", "GetItem hit", "GetItem floor", GET_GOAL)
    for size in PAGE_SIZES:
        items = "item" if size == 1 else "items"
        row(
            f"Query hit / floor, page of {size} {items}",
            f"Query hit {size}",
            f"Query floor {size}",
            QUERY_GOAL,
        )
    row("Query hit (1 item) / GetItem hit", f"Query hit {PAGE_SIZES[0]}", "GetItem hit", None)
    return "\n".join(rows)


def _serve(driver: Any, call: Any, context: dict[str, Any]) -> None:
    """One hit of ``call``'s page, as the before-call handler serves it."""
    call.fill = True
    if driver.serve_page(context=context) is None:
        raise RuntimeError("expected a hit")


def parts(*, quick: bool) -> str:
    """The pieces of a Query hit, each alone in a tight loop (best of 5, gc off as timeit
    does): where the time over the floor goes, short of botocore's own cold caches."""
    from momento_botocore.core.call import PAGE_KEY
    from momento_botocore.core.queries import (
        _basis,
        _resolved_expressions,
        _scope,
        decode_page,
        generation_key,
    )
    from momento_botocore.counters import Stats
    from momento_botocore.drivers.sync import SyncDriver

    pages = {size: page_items(size) for size in PAGE_SIZES}
    config = CacheConfig(ttl=3600, account_id=ACCOUNT, cache_queries=True)
    backend = filled_backend(config, pages)
    driver = SyncDriver(config, backend, stats=Stats())
    model = new_session().client("dynamodb", endpoint_url=NOWHERE).meta.service_model
    operation = model.operation_model("Query")
    pieces: dict[str, Callable[[], object]] = {}
    for size in PAGE_SIZES:
        params = query_params(size)
        context: dict[str, Any] = {"client_region": REGION}
        driver.plan_request(params=params, model=operation, context=context)
        call = context[PAGE_KEY]
        plan = call.plan
        key = page_key(plan, [GENERATION], key_prefix=config.key_prefix)
        raw = backend.get(key)

        if size == PAGE_SIZES[0]:
            pk = params["ExpressionAttributeValues"][":p"]
            pieces |= {
                "plan_request (Query)": partial(
                    driver.plan_request,
                    params=params,
                    model=operation,
                    context={"client_region": REGION},
                ),
                "  core plan_page": partial(
                    plan_page,
                    "Query",
                    params,
                    account=ACCOUNT,
                    region=REGION,
                    settings_for=config.settings_for,
                    opted_in=config.pages_cached,
                    key_prefix=config.key_prefix,
                ),
                "    placeholders resolved": partial(_resolved_expressions, params),
                "    the shape as JSON, hashed": partial(
                    _basis, "Query", TABLE, params, _resolved_expressions(params)
                ),
                "    the scope": partial(_scope, "Query", params),
                "    the table's settings (config)": partial(config.settings_for, TABLE),
                "  generation_key": partial(
                    generation_key,
                    ACCOUNT,
                    REGION,
                    TABLE,
                    key_prefix=config.key_prefix,
                    partition=("pk", pk),
                ),
                "  page_key": partial(page_key, plan, [GENERATION], key_prefix=config.key_prefix),
                "  backend.get (each of two)": partial(backend.get, key),
            }
        pieces |= {
            f"serve_page, page of {size}": partial(_serve, driver, call, context),
            f"  decode_page, page of {size}": partial(decode_page, raw),
        }
    number = 2000 if quick else 20000
    rows = ["| piece alone | us |", "| --- | --- |"]
    for name, piece in pieces.items():
        best = min(timeit.repeat(piece, number=number, repeat=5)) / number * 1e6
        rows.append(f"| {name.replace('  ', '&nbsp;&nbsp;')} | {best:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.query_hit")
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds")
    parser.add_argument(
        "--parts", action="store_true", help="then each piece of a hit alone, in a tight loop"
    )
    args = parser.parse_args(argv)
    rounds, block = (15, 40) if args.quick else (101, 40)
    samples = measure(variants(), rounds=rounds, block=block, clock=time.thread_time)
    print(table(samples, rounds, block))
    if args.parts:
        print()
        print(parts(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
