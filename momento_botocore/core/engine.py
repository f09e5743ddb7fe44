"""The engine: every decision of the read and write paths, with no I/O of its own.

A driver (drivers/sync.py for botocore, drivers/aio.py for aiobotocore) feeds it a
call's parameters, then what the cache and DynamoDB answered; the engine says what
to answer, and which cache writes to make (:class:`CacheWrites`). The driver makes
them, synchronously or awaiting, and hands the outcomes back to :meth:`Engine.settle`.
The engine never calls a backend or botocore, so both drivers share every rule.

Per GetItem (Contract 3 of docs/consistency.md):

1. ``plan_get``: cacheable? Which key, which fence (own writes win)?
2. the driver looks the key up; ``answer_get`` turns the entry into DynamoDB's
   answer (a hit: nothing is sent), or says miss (and deletes garbage);
3. after a miss answered over the wire, ``finish_get`` fills with add-if-absent
   within the fill window, and projects the answer.

BatchGetItem: ``plan_batch``, the driver's ``get_many`` per table, ``batch_found``
(hits, misses, the request for the misses), ``answer_batch`` (all hits: the answer)
or ``finish_batch`` (merge, project, fill). Writes: ``plan_write`` before,
``write_answered``/``write_failed`` after (tombstones), ``tombstone_round`` retries
the ones the cache refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from momento_botocore.accounts import ClientAccounts
from momento_botocore.backends.base import Entry
from momento_botocore.config import MAX_TTL_SECONDS, CacheConfig, TableSettings
from momento_botocore.core.call import BatchCall, GetCall, PageCall, WriteCall
from momento_botocore.core.entries import EntryKind, encode_absent, encode_item, encode_tombstone
from momento_botocore.core.fastpath import (
    PLAN_MEMO_SIZE,
    BoundedLRU,
    all_keys_match,
    cache_key,
    decode,
    decoded_page,
    page_plan_token,
    plan_token,
    remembered_items,
)
from momento_botocore.core.integrity import key_matches
from momento_botocore.core.projection import PROJECTION_PARAMS
from momento_botocore.core.queries import (
    PagePlan,
    encode_page,
    generation_value,
    generations_of_write,
    marker_key,
    page_key,
    plan_page,
    random_generation,
)
from momento_botocore.core.reads import (
    CACHE_HEADER,
    BatchPlan,
    BatchTable,
    Bypass,
    ReadPlan,
    answered_as,
    batch_answer,
    consumed_capacity_of_hit,
    fill_window,
    get_item_answer,
    guard_horizon,
    hit_metadata,
    misses_request,
    plan_batch_get,
    plan_get_item,
)
from momento_botocore.core.writes import (
    KeyNames,
    KeySchemas,
    TouchedItem,
    plan_write,
    touched_items,
)
from momento_botocore.counters import STATS, Stats
from momento_botocore.fences import FencedRead, same_item
from momento_botocore.fences import for_cache as fences_for_cache
from momento_botocore.identity import SameObject, cache_identity
from momento_botocore.log import ErrorReporter
from momento_botocore.pending import shared as shared_pending

#: What a batch's tombstones are for: how their outcome is counted.
INVALIDATION, STALE, RETRY = "invalidation", "stale", "retry"
#: A request not planned yet (the page plan memo holds None for "not cached").
_UNKNOWN: Any = object()


@dataclass(slots=True)
class CacheWrites:
    """Cache writes one step asks for. The driver makes them (``fills`` with one
    add-if-absent bulk write, ``tombstones`` with one bulk set, ``garbage`` deleted
    key by key) and passes the outcomes to :meth:`Engine.settle`."""

    #: (table, (key, value, ttl)): add-if-absent.
    fills: list[tuple[str, Entry]] = field(default_factory=list)
    #: (table, key): set to TOMBSTONE for ``tombstone_ttl``.
    tombstones: list[tuple[str, str]] = field(default_factory=list)
    #: (table, key): delete (what is there is not the entry of the key).
    garbage: list[tuple[str, str]] = field(default_factory=list)
    #: INVALIDATION (a write's), STALE (an entry older than our own write) or RETRY.
    purpose: str = INVALIDATION
    #: Pending tombstones' stamp, taken before the tombstones were decided.
    stamp: int = 0
    tombstone_ttl: float = 0.0
    #: (table, (key, value, ttl)): generations started at a random value, add-if-absent,
    #: before ``bumps`` (core/queries.py): outcomes not counted.
    starts: list[tuple[str, Entry]] = field(default_factory=list)
    #: (table, generation key, ttl): atomic +1 (``incr``); one the cache refused
    #: guards its table (pending) for the guard horizon.
    bumps: list[tuple[str, str, float]] = field(default_factory=list)
    #: (table, generation key): its "written lately" marker, set (a TOMBSTONE for the
    #: tombstone TTL) before the bump: pages are not filled while it lives.
    markers: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.fills
            or self.tombstones
            or self.garbage
            or self.starts
            or self.bumps
            or self.markers
        )

    def marker_entries(self, ttl: float) -> list[Entry]:
        value = encode_tombstone()
        return [(marker_key(key), value, ttl) for _, key in self.markers]

    def tombstone_entries(self) -> list[Entry]:
        value = encode_tombstone()
        return [(key, value, self.tombstone_ttl) for _, key in self.tombstones]

    def extend(self, other: CacheWrites | None) -> None:
        if other is not None:
            if other.tombstones:  # one step asks for tombstones of one purpose only
                self.purpose, self.stamp = other.purpose, other.stamp
                self.tombstone_ttl = other.tombstone_ttl
            self.fills.extend(other.fills)
            self.starts.extend(other.starts)
            self.bumps.extend(other.bumps)
            self.markers.extend(other.markers)
            self.tombstones.extend(other.tombstones)
            self.garbage.extend(other.garbage)


class Engine:
    """The decisions for one configuration in front of one cache."""

    def __init__(
        self,
        config: CacheConfig,
        identity: Hashable,
        *,
        find_client: Callable[[Any], Any] = lambda context: None,
        stats: Stats = STATS,
        reporter: ErrorReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        #: False once unregistered: nothing new is planned or filled.
        self.active = True
        self.stats = stats
        self.reporter = reporter or ErrorReporter()
        self.clock = clock
        self._tables: dict[str, TableSettings | None] = {}
        self._plans: BoundedLRU[tuple[Any, ...], ReadPlan] = BoundedLRU(PLAN_MEMO_SIZE)
        #: Page keys, by (basis, account, region, generation values).
        self._page_keys: BoundedLRU[tuple[Any, ...], str] = BoundedLRU(PLAN_MEMO_SIZE)
        #: Query and Scan plans (a PagePlan, a Bypass, or None: not cached), by request.
        self._page_plans: BoundedLRU[tuple[Any, ...], PagePlan | Bypass | None] = BoundedLRU(
            PLAN_MEMO_SIZE
        )
        self.schemas = KeySchemas(config.key_schema_for, clock=clock)
        #: The account of each client (found once per client; see accounts.py).
        self.accounts = ClientAccounts(config.account_id, find_client, clock=clock)
        #: Tombstones that could not be written yet; their keys skip the cache meanwhile.
        #: One per cache in this process, shared by every engine in front of it.
        self.pending = shared_pending(
            identity,
            max_keys=config.max_pending_tombstones,
            retry_interval=config.tombstone_retry_interval,
            clock=clock,
        )
        #: Keys this process wrote: their reads verify entries first. One per cache too.
        self.fences = fences_for_cache(self.pending, clock=clock)

    # GetItem ---------------------------------------------------------------------

    def plan_get(self, params: Any, region: Any, account: str | None) -> GetCall | None:
        """The call's state if the GetItem is served by the cache; may change ``params``
        (no projection: a miss fetches the full item; ConsistentRead on a fenced key)."""
        token = plan_token(params, region, account)
        if token is not None:
            known = self._plans.get(token)
            if known is not None:
                if self.fences.active:
                    return self._get_call(known, params)
                return GetCall(known, self.clock())  # the hot path: a plain GetItem
        plan = plan_get_item(
            params,
            account=account,
            region=region,
            settings_for=self.settings_for,
            key_prefix=self.config.key_prefix,
        )
        if type(plan) is ReadPlan:
            call = self._get_call(plan, params)
            if plan.projection is not None:
                for name in PROJECTION_PARAMS:  # a miss fetches the full item
                    params.pop(name, None)
            elif token is not None and plan.consumed_capacity is None:
                self._plans.put(token, plan)
            return call
        if type(plan) is Bypass:
            self.stats.add(plan.table, "bypasses")
        return None

    def _get_call(self, plan: ReadPlan, params: Any) -> GetCall:
        call = GetCall(plan, self.clock())
        if self.fences.active:
            fence = self._fence_of(plan.table, plan.key)
            if fence is not None:
                # Should the read reach DynamoDB, it is strongly consistent: an eventually
                # consistent answer may be older than the write, and would verify an old entry.
                call.fence = fence
                params["ConsistentRead"] = True  # the last change: nothing can fail after it
        return call

    def skips_cache(self, call: GetCall) -> bool:
        """True when the key's tombstone is not written yet: no lookup, no fill."""
        plan = call.plan
        if self._skips_cache(plan.table, plan.key):
            call.fill = False
            return True
        return False

    def lookup_failed(self, call: GetCall, error: BaseException) -> None:
        call.fill = False  # no fill into a failing cache
        self.failed("cache lookup", call.plan.table, error)

    def answer_get(
        self, call: GetCall, raw: bytes | None
    ) -> tuple[dict[str, Any] | None, CacheWrites | None]:
        """DynamoDB's answer built from what the cache held (None: ask DynamoDB), and the
        garbage to delete."""
        plan = call.plan
        entry = decode(raw) if raw is not None else None
        if entry is None or entry.kind is EntryKind.TOMBSTONE:
            self.stats.add(plan.table, "misses")
            if raw is not None and entry is None:
                return None, self._garbage(plan.table, plan.key)
            return None, None
        item = entry.item
        if item is not None and not key_matches(item, plan.request_key):
            self.stats.add(plan.table, "misses")
            return None, self._garbage(plan.table, plan.key, "an item under another item's key")
        fence = call.fence
        if fence is not None and raw != fence.verified:
            # Perhaps an old stream refresh after our own write: ask DynamoDB (fences.py).
            fence.entry, fence.item = raw, item
            self.stats.add(plan.table, "fenced_reads")
            return None, None
        call.fill = False
        self.stats.add(plan.table, "hits")
        return get_item_answer(plan, item), None

    def finish_get(self, call: GetCall, status: int, parsed: Any) -> CacheWrites | None:
        """DynamoDB answered a GetItem the cache did not: what to fill; the answer is
        projected in place when the request's projection was dropped."""
        if not call.sent:
            return None  # a hit (never sent), or answered by someone else (a Stubber)
        writes = None
        if self.active and call.fill:
            try:
                writes = self._fill_of_get(call, status, parsed)
            except Exception as error:
                self.failed("cache fill", call.plan.table, error)
        projection = call.plan.projection
        if projection is not None:  # not gated on active: the request went out without it
            item = parsed.get("Item")
            if status == 200 and isinstance(item, Mapping):
                parsed["Item"] = projection.apply(item)
        return writes

    def _fill_of_get(self, call: GetCall, status: int, parsed: Any) -> CacheWrites | None:
        if status != 200:
            return None
        plan = call.plan
        _mark(parsed, "miss")
        item = parsed.get("Item")
        fence = call.fence
        if fence is not None and fence.entry is not None:  # no fill: the entry is there
            return self._settle_fenced(plan.table, plan.key, fence, item)
        if item is None:
            value, ttl = encode_absent(), plan.settings.absent_ttl
        else:
            value, ttl = encode_item(item), plan.settings.ttl
        if fence is not None:
            # The fill below (if it lands) holds DynamoDB's answer: already verified.
            self.fences.verify(plan.key, fence.stamp, value)
        if self.clock() - call.started >= fill_window(self.config, plan.settings):
            # A write may have come and gone (with its tombstone) since we read.
            self.stats.add(plan.table, "fills_skipped")
            return None
        if item is not None and not key_matches(item, plan.request_key):
            # Its key as DynamoDB spells it is not the request's to the codec (moto
            # keeps numbers as written): stored, it would be garbage at every read.
            self.stats.add(plan.table, "fills_skipped")
            return None
        return CacheWrites(fills=[(plan.table, (plan.key, value, ttl))])

    # BatchGetItem ----------------------------------------------------------------

    def plan_batch(self, params: Any, region: Any, account: str | None) -> BatchCall | None:
        plan = plan_batch_get(
            params,
            account=account,
            region=region,
            settings_for=self.settings_for,
            key_prefix=self.config.key_prefix,
        )
        if type(plan) is Bypass:
            self.stats.add(plan.table, "bypasses")
            return None
        if plan is None:
            return None
        return BatchCall(cast(BatchPlan, plan), self.clock())

    def batch_lookup_failed(self, call: BatchCall, table: str, error: BaseException) -> None:
        """A table's keys could not be looked up: all misses, and nothing is filled."""
        call.fill = False
        self.failed("cache lookup", table, error)

    def batch_found(
        self, call: BatchCall, found: list[list[bytes | None]]
    ) -> tuple[Any, CacheWrites | None]:
        """What the cache held for each table's keys (in the plan's order): the hits
        and misses, the RequestItems left for DynamoDB and the garbage to delete."""
        garbage = CacheWrites()
        for table, values in zip(call.plan.tables, found, strict=True):
            garbage.extend(self._table_found(call, table, values))
        return misses_request(call.plan, call.misses, call.fenced), garbage or None

    def _table_found(
        self, call: BatchCall, table: BatchTable, found: list[bytes | None]
    ) -> CacheWrites | None:
        if self.pending.active:  # keys whose tombstone is not written yet are misses
            found = self._unless_pending(call, table, found)
        if self.fences.active:  # unverified entries of fenced keys are misses
            found = self._unless_fenced(call, table, found)
        # The hot path of an all-hit batch: per key, only C-level passes.
        items = remembered_items(found)
        if None not in items and all_keys_match(items, table.key_attributes):  # type: ignore[arg-type]
            hits = cast("list[dict[str, Any]]", items)
            projection = table.projection
            if projection is not None:
                hits = [projection.apply(item) for item in hits]
            call.hits[table.name] = hits
            self.stats.add(table.table, "hits", len(hits))
            return None
        return self._keys_found(call, table, found, items)

    def _keys_found(
        self,
        call: BatchCall,
        table: BatchTable,
        found: list[bytes | None],
        items: list[dict[str, Any] | None],
    ) -> CacheWrites | None:
        """The slow path of ``_table_found``, key by key: the items ``remembered_items``
        did not know are decoded; tombstones, garbage and items under another item's key
        are misses (the garbage to delete)."""
        projection = table.projection
        hits = call.hits[table.name] = []
        missed: dict[str, Mapping[str, Any]] = {}
        garbage = CacheWrites()
        hit_count = 0
        for key, key_attributes, raw, item in zip(
            table.keys, table.key_attributes, found, items, strict=True
        ):
            if item is None:
                entry = None if raw is None else decode(raw)
                if entry is None or entry.kind is EntryKind.TOMBSTONE:
                    missed[key] = key_attributes
                    if raw is not None and entry is None:  # garbage, not a tombstone
                        garbage.extend(self._garbage(table.table, key))
                    continue
                item = entry.item
            if item is not None and not key_matches(item, key_attributes):
                missed[key] = key_attributes
                garbage.extend(self._garbage(table.table, key, "an item under another item's key"))
                continue
            hit_count += 1
            if item is not None:  # an ABSENT entry: a hit with nothing to return
                hits.append(item if projection is None else projection.apply(item))
        if missed:
            call.misses[table.name] = missed
            self.stats.add(table.table, "misses", len(missed))
        if hit_count:
            self.stats.add(table.table, "hits", hit_count)
        return garbage or None

    def _unless_pending(
        self, call: BatchCall, table: BatchTable, found: list[bytes | None]
    ) -> list[bytes | None]:
        """``found`` with the keys whose tombstone is pending turned into misses; then
        nothing of the batch is filled."""
        skipped = [self._skips_cache(table.table, key) for key in table.keys]
        if not any(skipped):
            return found
        call.fill = False
        return [None if skip else raw for skip, raw in zip(skipped, found, strict=True)]

    def _unless_fenced(
        self, call: BatchCall, table: BatchTable, found: list[bytes | None]
    ) -> list[bytes | None]:
        """``found`` with the ITEM/ABSENT entries of fenced keys that are not verified
        turned into misses; each fenced key is remembered in the call."""
        copied = False
        for index, key in enumerate(table.keys):
            fence = self._fence_of(table.table, key)
            if fence is None:
                continue
            call.fenced[key] = fence
            raw = found[index]
            if raw is None or raw == fence.verified:
                continue
            entry = decode(raw)
            if entry is None or entry.kind is EntryKind.TOMBSTONE:
                continue  # a miss anyway (garbage is deleted by the caller)
            if entry.item is not None and not key_matches(entry.item, table.key_attributes[index]):
                continue  # garbage: the caller deletes it
            fence.entry, fence.item = raw, entry.item
            if not copied:
                found, copied = list(found), True
            found[index] = None
            self.stats.add(table.table, "fenced_reads")
        return found

    def answer_batch(self, call: BatchCall) -> dict[str, Any] | None:
        """The answer of a batch whose every key the cache held; None otherwise."""
        if not call.all_hits:
            return None
        call.answered = True  # not gated on active: the request holds a placeholder
        return batch_answer(call.plan, call.hits)

    def bare_batch_answer(self, call: BatchCall | None) -> dict[str, Any] | None:
        """An all-hit batch answered with its items alone (should ``answer_batch`` fail)."""
        if call is None or not call.all_hits:
            return None
        call.answered = True
        return {
            "Responses": {table.name: call.hits[table.name] for table in call.plan.tables},
            "UnprocessedKeys": {},
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
        }

    def finish_batch(self, call: BatchCall, status: int, parsed: Any) -> CacheWrites | None:
        """DynamoDB answered the misses: project its items, add the hits to its answer,
        and say what to fill."""
        if call.answered or status != 200:
            return None
        fill = (
            call.fill
            and call.sent  # only what came over the wire (not, say, a Stubber's answer)
            and self.active
            and self.clock() - call.started
            < min(fill_window(self.config, table.settings) for table in call.plan.tables)
        )
        try:
            return self._merge_batch(call, parsed, fill)
        except Exception as error:  # a bug if it happens; never raise into the caller
            self.failed("merging a batch answer", call.plan.tables[0].table, error)
            add_missing_hits(call, parsed)
            return None

    def _merge_batch(self, call: BatchCall, parsed: Any, fill: bool) -> CacheWrites | None:
        plan = call.plan
        _mark(parsed, "partial" if any(call.hits.values()) else "miss")
        responses = parsed.setdefault("Responses", {})
        unprocessed = parsed.setdefault("UnprocessedKeys", {})
        fully_cached = []
        writes = CacheWrites()  # of every table: one bulk write for the whole batch
        for table in plan.tables:
            missed = call.misses.get(table.name)
            if not missed:
                fully_cached.append(table)
                responses[table.name] = call.hits[table.name]
                continue
            name = answered_as(table, responses, unprocessed)
            fetched = responses.get(name) or []
            projection = table.projection
            items = [item if projection is None else projection.apply(item) for item in fetched]
            items.extend(call.hits[table.name])
            responses[name] = items
            left = unprocessed.get(name)
            if left is not None:  # resubmittable as the caller asked it, projection included
                unprocessed[name] = {**table.request_extras, "Keys": left.get("Keys", [])}
            if call.fenced and call.sent:
                missed = self._settle_fenced_batch(table, missed, fetched, left, call, writes)
            if fill:
                writes.fills.extend(self._batch_table_fills(table, missed, fetched, left))
        if plan.consumed_capacity is not None and fully_cached:
            consumed = parsed.setdefault("ConsumedCapacity", [])
            for table in fully_cached:
                consumed.append(consumed_capacity_of_hit(table.table, plan.consumed_capacity))
        return writes or None

    def _settle_fenced_batch(
        self,
        table: BatchTable,
        missed: dict[str, Mapping[str, Any]],
        fetched: list[dict[str, Any]],
        unprocessed: Any,
        call: BatchCall,
        writes: CacheWrites,
    ) -> dict[str, Mapping[str, Any]]:
        """The batch's fenced keys that DynamoDB answered: settle the skipped entries
        (those keys are not filled: they are returned without them) and verify what
        the fill will store for the others."""
        left = (unprocessed or {}).get("Keys") or []
        to_fill = dict(missed)
        for key, key_attributes in missed.items():
            fence = call.fenced.get(key)
            if fence is None or any(key_matches(k, key_attributes) for k in left):
                continue  # not fenced, or not read
            item = next((i for i in fetched if key_matches(i, key_attributes)), None)
            if fence.entry is not None:
                del to_fill[key]
                writes.extend(self._settle_fenced(table.table, key, fence, item))
            else:
                value = encode_absent() if item is None else encode_item(item)
                self.fences.verify(key, fence.stamp, value)
        return to_fill

    def _settle_fenced(
        self, table: str, key: str, fence: FencedRead, item: Mapping[str, Any] | None
    ) -> CacheWrites | None:
        """DynamoDB answered (consistently) a read that skipped an entry of a fenced key:
        the entry is verified if it holds the same, else it is older than the answer
        and a tombstone replaces it (for every reader of the cache)."""
        assert fence.entry is not None
        if same_item(fence.item, item):
            self.fences.verify(key, fence.stamp, fence.entry)
            return None
        self.stats.add(table, "stale_entries")
        return self._tombstones([(table, key)], STALE)

    def _batch_table_fills(
        self,
        table: BatchTable,
        missed: dict[str, Mapping[str, Any]],
        fetched: list[dict[str, Any]],
        unprocessed: Any,
    ) -> list[tuple[str, Entry]]:
        """The fills of one table: the fetched items, and ABSENT for keys DynamoDB did not find."""
        settings = table.settings
        fills: list[tuple[str, Entry]] = []
        try:
            pending = dict(missed)
            for item in fetched:
                key = self._batch_key(table, {name: item[name] for name in table.key_names})
                if pending.pop(key, None) is not None:
                    fills.append((table.table, (key, encode_item(item), settings.ttl)))
            for key_attributes in (unprocessed or {}).get("Keys", []):
                pending.pop(self._batch_key(table, key_attributes), None)  # not read
            fills.extend(
                (table.table, (key, encode_absent(), settings.absent_ttl)) for key in pending
            )
        except Exception as error:
            self.failed("cache fill", table.table, error)
            return []
        return fills

    def _batch_key(self, table: BatchTable, key_attributes: Mapping[str, Any]) -> str:
        return cache_key(
            table.account,
            table.region,
            table.table,
            key_attributes,
            prefix=self.config.key_prefix,
            binary_text="utf-8",
        )

    # Query and Scan pages (core/queries.py) -------------------------------------

    def plan_page(
        self, operation: str, params: Any, region: Any, account: str | None
    ) -> PageCall | None:
        """The call's state if the Query or Scan is cached (the request is not changed)."""
        token = page_plan_token(operation, params, region, account)
        plan = _UNKNOWN if token is None else self._page_plans.get(token, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = plan_page(
                operation,
                params,
                account=account,
                region=region,
                settings_for=self.settings_for,
                opted_in=self.config.pages_cached,
                key_prefix=self.config.key_prefix,
                key_names=self._known_key_names,
            )
            if token is not None:
                self._page_plans.put(token, plan)
        if type(plan) is Bypass:
            self.stats.add(plan.table, "bypasses")
            return None
        if plan is None:
            return None
        return PageCall(cast(PagePlan, plan), self.clock())

    def _known_key_names(self, account: str, region: str, table: str) -> KeyNames | None:
        return self.schemas.peek(region, table, account=account)

    def page_keys_to_read(self, call: PageCall) -> tuple[str, ...]:
        """What to read before the page: its generations, then their markers."""
        return call.plan.lookups

    def page_to_look_up(
        self, call: PageCall, found: list[bytes | None]
    ) -> tuple[str | None, CacheWrites | None]:
        """The page key under the generation values in ``found`` (as ``page_keys_to_read``
        lists them); None when one is missing (it is started, and this call goes to
        DynamoDB without a fill) or not a generation. A generation written lately (its
        marker lives) is looked up but not filled: DynamoDB's eventually consistent
        answer may not hold the write yet."""
        plan = call.plan
        count = len(plan.generations)
        raws, markers = found[:count], found[count:]
        if markers.count(None) != count:
            call.fill = False
            call.written_lately = True
        values = tuple(map(generation_value, raws))
        if None not in values:
            token = (plan.basis, plan.account, plan.region, values)
            key = self._page_keys.get(token)
            if key is None:
                key = page_key(plan, values, key_prefix=self.config.key_prefix)  # type: ignore[arg-type]
                self._page_keys.put(token, key)
            call.key = key
            return key, None
        call.fill = False
        self.stats.add(plan.table, "misses")
        writes = CacheWrites()
        ttl = min(self.guard_horizon_of(plan.table), MAX_TTL_SECONDS)
        for key, raw, value in zip(plan.generations, raws, values, strict=True):
            if value is not None:
                continue
            if raw is None:
                writes.starts.append((plan.table, (key, random_generation(), ttl)))
            else:
                writes.extend(self._garbage(plan.table, key, "not a generation"))
        return None, writes

    def page_skips_cache(self, call: PageCall) -> bool:
        """True when one of the page's generations (or its table) is guarded: a bump or
        marker the cache refused is pending. No lookup, no fill."""
        table = call.plan.table
        if any(self._skips_cache(table, key) for key in call.plan.generations):
            call.fill = False
            return True
        return False

    def page_lookup_failed(self, call: PageCall, error: BaseException) -> None:
        call.fill = False
        self.failed("cache lookup", call.plan.table, error)

    def answer_page(
        self, call: PageCall, raw: bytes | None
    ) -> tuple[dict[str, Any] | None, CacheWrites | None]:
        """The Query or Scan answer the cache holds (None: ask DynamoDB), and garbage."""
        table = call.plan.table
        page = decoded_page(raw)
        if page is None:
            self.stats.add(table, "misses")
            if raw is not None and call.key is not None:
                return None, self._garbage(table, call.key, "not a page")
            return None, None
        call.fill = False
        self.stats.add(table, "hits")
        if call.plan.consumed_capacity is not None:  # TOTAL: what DynamoDB says of a read
            page["ConsumedCapacity"] = consumed_capacity_of_hit(table, "TOTAL")
        page["ResponseMetadata"] = hit_metadata()
        return page, None

    def finish_page(self, call: PageCall, status: int, parsed: Any) -> CacheWrites | None:
        """DynamoDB answered a page the cache did not have: fill it (add-if-absent, inside
        the fill window), under the generations read before the request."""
        if not (call.sent and status == 200 and call.key):
            return None
        _mark(parsed, "miss")  # looked up, and answered by DynamoDB
        if call.written_lately:  # a fill the marker kept out: counted as skipped
            self.stats.add(call.plan.table, "fills_skipped")
        if not (call.fill and self.active):
            return None
        plan = call.plan
        if self.clock() - call.started >= fill_window(self.config, plan.settings):
            self.stats.add(plan.table, "fills_skipped")
            return None
        try:
            value = encode_page(parsed)
        except Exception as error:
            self.failed("cache fill", plan.table, error)
            return None
        return CacheWrites(fills=[(plan.table, (call.key, value, plan.settings.ttl))])

    # Writes ----------------------------------------------------------------------

    def plan_write(
        self,
        operation: str,
        params: Any,
        region: Any,
        account: str | None,
        describe: Callable[[TouchedItem], KeyNames] | None = None,
    ) -> WriteCall | None:
        """The call's state if the write touches cached items (or cached tables whose
        items' keys cannot be made). ``describe`` asks DynamoDB for a table's key
        schema; without it, only configured and learned schemas are known."""
        try:
            touched = touched_items(operation, params, region, account)
        except Exception:
            return None  # malformed: DynamoDB rejects it, nothing is written
        try:
            plan = plan_write(
                touched,
                is_cached=lambda table: self.settings_for(table) is not None,
                key_names=lambda touch: self._key_names(touch, describe),
                key_prefix=self.config.key_prefix,
            )
        except Exception as error:
            self.failed("planning an invalidation", "", error)
            return None
        for table, problem in plan.problems:
            self.failed("finding the key of a written item", table, problem)
        for table in plan.no_account:  # said once by the accounts; counted here
            self.stats.add(table, "bypasses")
        # An item without a key (or of a client whose account is unknown) fences its table.
        if plan.keys or plan.problems or plan.no_account:
            return WriteCall(plan)
        return None

    def schemas_to_learn(
        self, operation: str, params: Any, region: Any, account: str | None
    ) -> list[TouchedItem]:
        """Items of ``params`` whose key can only be picked out with a key schema not
        known yet (one per table): what an async driver asks DynamoDB before planning."""
        try:
            touched = touched_items(operation, params, region, account)
        except Exception:
            return []
        wanted: dict[tuple[Any, ...], TouchedItem] = {}
        for touch in touched:
            if touch.key is not None or touch.account is None:
                continue
            if self.settings_for(touch.table) is None:
                continue
            if self.schemas.known(touch.region, touch.table, account=touch.account):
                continue
            wanted.setdefault((touch.account, touch.region, touch.table), touch)
        return list(wanted.values())

    def _key_names(
        self, touch: TouchedItem, describe: Callable[[TouchedItem], KeyNames] | None
    ) -> KeyNames:
        return self.schemas.names(
            touch.region,
            touch.table,
            None if describe is None else lambda: describe(touch),
            account=touch.account,
        )

    def write_answered(self, call: WriteCall, status: int) -> CacheWrites | None:
        if 400 <= status < 500 and call.sends <= 1:
            return None  # rejected (condition failed, cancelled, invalid, throttled)
        # Written; or 5xx / retried after a lost answer: perhaps written.
        return self.invalidate(call)

    def write_failed(self, call: WriteCall) -> CacheWrites | None:
        """No answer (timeout, connection error): if the request left, it may have been applied."""
        return self.invalidate(call) if call.sends > 0 else None

    def invalidate(self, call: WriteCall) -> CacheWrites | None:
        """The tombstones of a write (once); its keys are fenced (own writes win)."""
        if call.done:
            return None
        call.done = True
        plan = call.plan
        self._fence_written(plan.keys)
        for table in plan.keyless_tables():
            self._fence_table(table)
        writes = self._tombstones(plan.keys, INVALIDATION) if plan.keys else CacheWrites()
        writes.extend(self._bumps_of(plan.item_keys))
        return writes or None

    def _bumps_of(self, item_keys: list[tuple[str, str, str, Mapping[str, Any]]]) -> CacheWrites:
        """The generations the written items' Query and Scan pages are filed under."""
        writes = CacheWrites()
        by_table: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
        for account, region, table, key in item_keys:
            if self.pages_cached(table):
                by_table.setdefault((account, region, table), []).append(key)
        for (account, region, table), keys in by_table.items():
            try:
                generations = generations_of_write(
                    account, region, table, keys, key_prefix=self.config.key_prefix
                )
            except Exception as error:  # a key the codec refuses: guard the table
                self.failed("finding the generations of a write", table, error)
                self._fence_table(table)
                continue
            writes.extend(self._bump(table, generations))
        return writes

    def _bump(self, table: str, generations: list[str]) -> CacheWrites:
        ttl = min(self.guard_horizon_of(table), MAX_TTL_SECONDS)
        return CacheWrites(
            starts=[(table, (key, random_generation(), ttl)) for key in generations],
            bumps=[(table, key, ttl) for key in generations],
            markers=[(table, key) for key in generations],
        )

    def pages_cached(self, table: str) -> bool:
        settings = self.settings_for(table)
        config = self.config
        return settings is not None and (
            config.pages_cached(table, "Query") or config.pages_cached(table, "Scan")
        )

    def invalidation_failed(self, call: WriteCall | None) -> None:
        """Every key of the write skips the cache until its tombstone is written late."""
        if call is None:
            return
        try:
            for table, key in call.plan.keys:
                self._remember_tombstone(table, key)
            for table in call.plan.keyless_tables():
                self._fence_table(table)  # items without a key: only the table can be guarded
            for table in {table for _, _, table, _ in call.plan.item_keys}:
                if self.pages_cached(table):  # its generations were perhaps not bumped
                    self._fence_table(table)
        except Exception as error:
            self.failed("remembering unwritten tombstones", "", error)

    def _fence_written(self, keys: list[tuple[str, str]]) -> None:
        for table, key in keys:
            horizon = self.guard_horizon_of(table)
            try:
                fenced = self.fences.fence(table, key, horizon)
            except Exception as error:  # a bug if it happens
                self.failed("fencing a written key", table, error)
                continue
            if not fenced:
                self.stats.add(table, "fences_overflowed")
                self.reporter.report(
                    "fencing a written key",
                    FencesFull(
                        f"{self.fences.max_keys} written keys are fenced; every read of "
                        f"table {table!r} is checked with DynamoDB for the next {horizon:.0f} s"
                    ),
                )

    # Cache writes and their outcomes ---------------------------------------------

    def _tombstones(self, keys: list[tuple[str, str]], purpose: str) -> CacheWrites:
        return CacheWrites(
            tombstones=list(keys),
            purpose=purpose,
            stamp=self.pending.stamp(),
            tombstone_ttl=self.config.tombstone_ttl_seconds,
        )

    def _garbage(self, table: str, key: str, what: str = "an undecodable entry") -> CacheWrites:
        """Garbage under ``key`` (not an entry, or not the item asked for): delete it.
        Counted as ``garbage``, not as an error: the cache itself answered."""
        self.stats.add(table, "garbage")
        self.reporter.report("reading a cache entry", GarbageEntry(f"{what}; deleted"))
        return CacheWrites(garbage=[(table, key)])

    def settle(
        self,
        writes: CacheWrites,
        added: list[bool | Exception],
        written: list[Exception | None],
        deleted: list[Exception | None],
        bumped: Sequence[int | Exception] = (),
        marked: Sequence[Exception | None] = (),
    ) -> None:
        """Count what the driver's writes did; remember the tombstones the cache refused."""
        self._settle_fills(writes, added)
        self._settle_tombstones(writes, written)
        self._settle_garbage(writes, deleted)
        self._settle_bumps(writes, bumped, marked)

    def _settle_bumps(
        self,
        writes: CacheWrites,
        bumped: Sequence[int | Exception],
        marked: Sequence[Exception | None],
    ) -> None:
        """A generation the cache did not bump (or mark): pages filed under it may be
        older than the write. It is remembered as a pending tombstone: its pages skip
        the cache meanwhile, and the retry overwrites the generation, which readers then
        start again at a new random value (so every page of it is out of reach)."""
        failed: dict[str, tuple[str, BaseException]] = {}
        for (table, key, _), outcome in zip(writes.bumps, bumped, strict=True):
            if isinstance(outcome, Exception):
                failed.setdefault(key, (table, outcome))
        for (table, key), refused in zip(writes.markers, marked, strict=True):
            if refused is not None:
                failed.setdefault(key, (table, refused))
        for key, (table, problem) in failed.items():
            self.failed("bumping a generation", table, problem)
            self._remember_tombstone(table, key)

    def _settle_fills(self, writes: CacheWrites, added: list[bool | Exception]) -> None:
        """Count the fills: stored, skipped (the key held an entry already) or failed."""
        for (table, _), outcome in zip(writes.fills, added, strict=True):
            if isinstance(outcome, Exception):
                self.failed("cache fill", table, outcome)
            else:
                self.stats.add(table, "fills" if outcome else "fills_skipped")

    def _settle_tombstones(self, writes: CacheWrites, written: list[Exception | None]) -> None:
        """Count the invalidations; a tombstone the cache refused is remembered (pending),
        one of a retry round stays pending."""
        retry_error = None
        for (table, key), error in zip(writes.tombstones, written, strict=True):
            if error is None:
                if writes.purpose == INVALIDATION:
                    self.stats.add(table, "invalidations")
                if self.pending.active:  # an older pending one is covered now
                    self.pending.written(key, writes.stamp, self.stats.add)
            elif writes.purpose == RETRY:  # still pending: not counted again
                retry_error = retry_error or error
            else:
                self.failed("cache invalidation", table, error)
                self._remember_tombstone(table, key)
        if writes.purpose == RETRY:
            self.pending.finish_round(all_written=retry_error is None)
        if retry_error is not None:
            self.reporter.report("writing a pending tombstone", retry_error)

    def _settle_garbage(self, writes: CacheWrites, deleted: list[Exception | None]) -> None:
        """Count the deletes of garbage that failed."""
        for (table, _), error in zip(writes.garbage, deleted, strict=True):
            if error is not None:
                self.failed("cache delete", table, error)

    def tombstone_round(self) -> CacheWrites | None:
        """Pending tombstones to write again, if a round is due (rate-limited)."""
        try:
            round_ = self.pending.start_round(self.stats.add)
        except Exception as error:  # a bug if it happens
            self.reporter.report("writing a pending tombstone", error)
            return None
        if round_ is None:
            return None
        stamp, keys = round_
        return CacheWrites(
            tombstones=keys,
            purpose=RETRY,
            stamp=stamp,
            tombstone_ttl=self.config.tombstone_ttl_seconds,
        )

    # Pending tombstones and fences -------------------------------------------------

    def _remember_tombstone(self, table: str, key: str) -> None:
        """Never lose it: reads of ``key`` skip the cache until it is written or not needed."""
        horizon = self.guard_horizon_of(table)
        try:
            remembered = self.pending.remember(table, key, horizon, self.stats.add)
        except Exception as error:  # a bug if it happens
            self.failed("remembering an unwritten tombstone", table, error)
            return
        if not remembered:
            self.reporter.report(
                "remembering an unwritten tombstone",
                PendingTombstonesFull(
                    f"{self.pending.max_keys} tombstones are pending; every read "
                    f"of table {table!r} skips the cache for the next {horizon:.0f} s"
                ),
            )

    def _fence_table(self, table: str) -> None:
        """A written item whose cache key could not be made (an odd key spelling, an
        unknown key schema): its entry cannot be found to tombstone, so every read of
        the table skips the cache until no entry the write left stale can exist."""
        horizon = self.guard_horizon_of(table)
        try:
            self.pending.fence_table(table, horizon, self.stats.add)
        except Exception as error:  # a bug if it happens
            self.failed("fencing a table", table, error)

    def _skips_cache(self, table: str, key: str) -> bool:
        """True when a read of ``key`` must go to DynamoDB without the cache."""
        try:
            skip = self.pending.guards(table, key)
        except Exception as error:  # a bug if it happens: the safe answer is to skip
            self.failed("checking pending tombstones", table, error)
            return True
        if skip:
            self.stats.add(table, "bypasses")
        return skip

    def _fence_of(self, table: str, key: str) -> FencedRead | None:
        try:
            return self.fences.look(table, key)
        except Exception as error:  # a bug if it happens: the safe answer is "fenced"
            self.failed("checking fences", table, error)
            return FencedRead(0, None)

    # Settings and errors ---------------------------------------------------------

    def guard_horizon_of(self, table: str) -> float:
        """``guard_horizon`` of ``table`` (the longest there is for a table not cached)."""
        settings = self.settings_for(table)
        return MAX_TTL_SECONDS if settings is None else guard_horizon(self.config, settings)

    def settings_for(self, table: str) -> TableSettings | None:
        try:
            return self._tables[table]
        except KeyError:
            settings = self._tables[table] = self.config.settings_for(table)
            return settings

    def failed(self, what: str, table: str, error: BaseException) -> None:
        """Count and log (rate-limited) a failure; the call goes on as if uncached."""
        try:
            self.stats.add(table, "errors")
            self.reporter.report(what, error)
        except Exception:  # the last resort of every handler: never raise from here
            pass


def add_missing_hits(call: BatchCall | None, parsed: Any) -> None:
    """After a failed merge: every cached item is in the answer, once."""
    if call is None or call.answered:
        return
    responses = parsed.setdefault("Responses", {})
    for table in call.plan.tables:
        items = responses.setdefault(table.name, [])
        there = {id(item) for item in items}
        items.extend(item for item in call.hits.get(table.name, ()) if id(item) not in there)


def identity_of(backend: Any) -> Hashable:
    """The cache ``backend`` stores in; the backend itself if it cannot say."""
    try:
        identity = cache_identity(backend)
        hash(identity)
    except Exception as error:  # a bug in a backend's cache_identity()
        ErrorReporter().report("naming the cache (cache_identity)", error)
        return SameObject(backend)
    return identity


def _mark(parsed: Any, how: str) -> None:
    """Say in the answer's headers how the cache took part."""
    headers = parsed.get("ResponseMetadata", {}).get("HTTPHeaders")
    if isinstance(headers, dict):
        headers[CACHE_HEADER] = how


class FencesFull(Exception):
    """Too many written keys are fenced: a table's reads are all checked for a while."""


class GarbageEntry(Exception):
    """What the cache held under a key was not the entry of that key."""


class PendingTombstonesFull(Exception):
    """Too many tombstones are pending: a table's reads skip the cache for a while."""
