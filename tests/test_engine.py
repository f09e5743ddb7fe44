"""The engine alone: request parameters in, decisions and cache writes out.

No botocore, no client, no backend: these tests play the driver's part by hand
(look up, hand the answer back, make the writes, settle), as drivers/sync.py and
drivers/aio.py do. They pin the decisions both drivers share.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from momento_botocore.config import CacheConfig
from momento_botocore.core.engine import INVALIDATION, RETRY, CacheWrites, Engine
from momento_botocore.core.entries import EntryKind, decode, encode_item, encode_tombstone
from momento_botocore.counters import Stats
from momento_botocore.identity import SameObject

ACCOUNT = "123456789012"
REGION = "us-east-1"
ITEM = {"pk": {"S": "a"}, "v": {"N": "1"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Engine:
    config = CacheConfig(ttl=60, tombstone_ttl=5, key_schemas={"items": ("pk",)})
    return Engine(config, SameObject(object()), stats=Stats(), clock=clock)


def get_params(**extra: Any) -> dict[str, Any]:
    return {"TableName": "items", "Key": {"pk": {"S": "a"}}, **extra}


def counters(engine: Engine) -> dict[str, int]:
    return {k: v for k, v in engine.stats.snapshot().get("items", {}).items() if v}


def make(engine: Engine, store: dict[str, bytes], writes: CacheWrites | None) -> None:
    """The driver's part: make the writes on a dict, settle."""
    if writes is None:
        return
    added: list[bool | Exception] = []
    for _, (key, value, _ttl) in writes.fills:
        added.append(key not in store)
        store.setdefault(key, value)
    for _, key in writes.tombstones:
        store[key] = encode_tombstone()
    for _, key in writes.garbage:
        store.pop(key, None)
    engine.settle(writes, added, [None] * len(writes.tombstones), [None] * len(writes.garbage))


def test_a_miss_fills_and_the_next_read_is_answered_from_the_entry(engine: Engine) -> None:
    store: dict[str, bytes] = {}
    call = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert call is not None
    assert engine.answer_get(call, store.get(call.plan.key)) == (None, None)
    call.sent = True  # request-created
    answer = {"Item": dict(ITEM), "ResponseMetadata": {"HTTPHeaders": {}}}
    make(engine, store, engine.finish_get(call, 200, answer))
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-momento-cache"] == "miss"
    assert decode(store[call.plan.key]).item == ITEM  # type: ignore[union-attr]

    again = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert again is not None
    assert again.plan is call.plan  # remembered plan (fast path)
    parsed, garbage = engine.answer_get(again, store[again.plan.key])
    assert garbage is None
    assert parsed is not None
    assert parsed["Item"] == ITEM
    assert parsed["ResponseMetadata"]["HTTPHeaders"] == {"x-momento-cache": "hit"}
    assert engine.finish_get(again, 200, parsed) is None  # a hit is never filled
    assert counters(engine) == {"hits": 1, "misses": 1, "fills": 1}


def test_no_plan_for_a_consistent_read_or_an_unknown_account(engine: Engine) -> None:
    assert engine.plan_get(get_params(ConsistentRead=True), REGION, ACCOUNT) is None
    assert engine.plan_get(get_params(), REGION, None) is None
    assert engine.plan_get({"TableName": "other", "Key": {}}, REGION, ACCOUNT) is None
    assert counters(engine) == {"bypasses": 2}


def test_a_fill_after_the_fill_window_is_skipped(engine: Engine, clock: Clock) -> None:
    call = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert call is not None
    call.sent = True
    clock.now += 5.0  # the tombstone TTL: a write's tombstone may have come and gone
    assert engine.finish_get(call, 200, {"Item": dict(ITEM)}) is None
    assert counters(engine) == {"fills_skipped": 1}


def test_a_failed_lookup_is_not_filled(engine: Engine) -> None:
    call = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert call is not None
    engine.lookup_failed(call, RuntimeError("cache down"))
    call.sent = True
    assert engine.finish_get(call, 200, {"Item": dict(ITEM)}) is None
    assert counters(engine) == {"errors": 1}


def test_garbage_is_a_miss_and_is_deleted(engine: Engine) -> None:
    call = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert call is not None
    parsed, garbage = engine.answer_get(call, b"not an entry")
    assert parsed is None
    assert garbage is not None
    assert garbage.garbage == [("items", call.plan.key)]
    other = encode_item({"pk": {"S": "b"}})  # another item's entry under this key
    parsed, garbage = engine.answer_get(call, other)
    assert parsed is None
    assert garbage is not None
    assert garbage.garbage


def test_a_write_tombstones_fences_and_remembers_what_the_cache_refused(
    engine: Engine,
) -> None:
    params = {"TableName": "items", "Item": {"pk": {"S": "a"}, "v": {"N": "2"}}}
    call = engine.plan_write("PutItem", params, REGION, ACCOUNT)
    assert call is not None
    call.sends = 1
    writes = engine.write_answered(call, 200)
    assert writes is not None
    assert writes.purpose == INVALIDATION
    assert [key for _, key in writes.tombstones] == [k for _, k in call.plan.keys]
    assert engine.write_answered(call, 200) is None  # once per call
    assert engine.fences.look("items", writes.tombstones[0][1]) is not None  # own writes win

    engine.settle(writes, [], [RuntimeError("cache down")], [])
    key = writes.tombstones[0][1]
    assert engine.pending.guards("items", key)  # reads skip the cache meanwhile
    read = engine.plan_get(get_params(), REGION, ACCOUNT)
    assert read is not None
    assert engine.skips_cache(read)
    assert not read.fill

    engine.clock.now += engine.config.tombstone_retry_interval  # type: ignore[attr-defined]
    retry = engine.tombstone_round()
    assert retry is not None
    assert retry.purpose == RETRY
    assert retry.tombstones == [("items", key)]
    engine.settle(retry, [], [None], [])
    assert not engine.pending.guards("items", key)
    assert counters(engine)["tombstones_retried"] == 1


def test_a_rejected_write_invalidates_nothing(engine: Engine) -> None:
    params = {"TableName": "items", "Key": {"pk": {"S": "a"}}}
    call = engine.plan_write("DeleteItem", params, REGION, ACCOUNT)
    assert call is not None
    call.sends = 1
    assert engine.write_answered(call, 400) is None  # condition failed, throttled...
    assert engine.write_failed(call) is not None  # no answer after it left: perhaps applied


def test_an_all_hit_batch_is_answered_without_a_request(engine: Engine) -> None:
    keys = [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]
    params = {"RequestItems": {"items": {"Keys": keys}}}
    call = engine.plan_batch(params, REGION, ACCOUNT)
    assert call is not None
    found = [[encode_item({**key, "v": {"N": "1"}}) for key in keys]]
    request_items, garbage = engine.batch_found(call, found)
    assert garbage is None
    assert "momento-botocore" in next(iter(request_items["items"]["Keys"][0]))  # placeholder
    answer = engine.answer_batch(call)
    assert answer is not None
    assert len(answer["Responses"]["items"]) == 2


def test_a_partial_batch_asks_only_the_misses_and_fills_them(engine: Engine) -> None:
    store: dict[str, bytes] = {}
    keys = [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "gone"}}]
    call = engine.plan_batch({"RequestItems": {"items": {"Keys": keys}}}, REGION, ACCOUNT)
    assert call is not None
    hit = encode_item({"pk": {"S": "a"}, "v": {"N": "1"}})
    request_items, _ = engine.batch_found(call, [[hit, None, None]])
    assert request_items == {"items": {"Keys": keys[1:]}}
    assert engine.answer_batch(call) is None
    call.sent = True
    parsed: dict[str, Any] = {"Responses": {"items": [{"pk": {"S": "b"}, "v": {"N": "2"}}]}}
    writes = engine.finish_batch(call, 200, parsed)
    make(engine, store, writes)
    assert sorted(i["pk"]["S"] for i in parsed["Responses"]["items"]) == ["a", "b"]
    kinds = sorted(decode(value).kind.name for value in store.values())  # type: ignore[union-attr]
    assert kinds == [EntryKind.ABSENT.name, EntryKind.ITEM.name]  # b, and gone: absent


def test_the_core_imports_no_botocore_and_no_backend() -> None:
    """The core decides; drivers do the I/O (DESIGN.md, the suggested layout)."""
    core = Path(__file__).parent.parent / "momento_botocore" / "core"
    forbidden = ("botocore", "boto3", "aiobotocore", "momento.", "momento_botocore.drivers")
    for path in core.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
                assert name not in ("momento", "momento_botocore.backends.momento"), path.name
