"""The read path on botocore's event system. The only module that knows botocore events.

One GetItem goes through three handlers that share the call's ``context`` dict:

* ``before-parameter-build.dynamodb`` (registered last, so boto3's ``Table`` layer
  has already turned Python values into wire format): decide and compute the key;
* ``before-call.dynamodb.GetItem``: look the key up; on a hit, return a response
  built fresh from the entry, and botocore sends nothing;
* ``after-call.dynamodb.GetItem`` (the exact name, so it runs before boto3's
  resource layer converts the answer in place): after a miss answered by
  DynamoDB over the wire, fill with add-if-absent (Contract 3).

BatchGetItem is looked up key by key in ``before-parameter-build``; only the
misses are left in the request (without projections), an all-hit batch is answered
in ``before-call``, and ``after-call.dynamodb.BatchGetItem`` merges, projects and
fills. Writes (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``BatchWriteItem``,
``TransactWriteItems``) tombstone the items they touch once DynamoDB has answered,
unless it rejected them (HTTP 4xx); see docs/writes-batch-projections.md.

Nothing here raises into the caller: every failure is counted, logged at most
once a minute per kind, and the call goes to DynamoDB.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any, cast

from botocore.awsrequest import AWSResponse

from momento_botocore.accounts import ClientAccounts
from momento_botocore.backends.base import (
    Backend,
    BackendError,
    Entry,
    bulk_add,
    bulk_set,
)
from momento_botocore.config import MAX_TTL_SECONDS, CacheConfig, TableSettings
from momento_botocore.counters import STATS, Stats
from momento_botocore.entries import (
    EntryKind,
    decode,
    encode_absent,
    encode_item,
    encode_tombstone,
    remembered_items,
)
from momento_botocore.fences import FencedRead, same_item
from momento_botocore.fences import for_cache as fences_for_cache
from momento_botocore.identity import SameObject, cache_identity
from momento_botocore.integrity import all_keys_match, key_matches
from momento_botocore.keys import cache_key
from momento_botocore.log import ErrorReporter
from momento_botocore.pending import shared as shared_pending
from momento_botocore.policy import (
    BatchPlan,
    BatchTable,
    Bypass,
    ReadPlan,
    consumed_capacity_of_hit,
    plan_batch_get,
    plan_get_item,
)
from momento_botocore.projection import PROJECTION_PARAMS
from momento_botocore.writes import (
    WRITE_OPERATIONS,
    KeyNames,
    KeySchemas,
    TouchedItem,
    WritePlan,
    key_names_of,
    plan_write,
    touched_items,
)

CONTEXT_KEY = "momento_botocore.read"
BATCH_CONTEXT_KEY = "momento_botocore.batch"
WRITE_CONTEXT_KEY = "momento_botocore.write"
CACHE_HEADER = "x-momento-cache"
_HIT_REQUEST_ID = "momento-botocore-cache-hit"
_NEVER_SENT = "momento-botocore: all keys were cache hits; this request is never sent"

# botocore reads only ``status_code`` from it; one shared instance saves ~2 us a hit.
_HIT_HTTP_RESPONSE = AWSResponse(None, 200, {CACHE_HEADER: "hit"}, None)

# (event, ReadHooks method, unique id, registered last). botocore keeps one handler
# per unique id and emitter, whatever the event: every id here must be different.
_HANDLERS = (
    ("before-parameter-build.dynamodb", "plan_request", "momento-botocore.plan", True),
    ("before-call.dynamodb.GetItem", "serve_from_cache", "momento-botocore.serve", False),
    # request-created, not before-send: its request carries the call's context on every
    # botocore (before-send's has it only from ~1.43.7x), and it fires once per attempt
    # actually built, never on a short-circuited call (a hit, a Stubber's answer).
    ("request-created.dynamodb.GetItem", "mark_sent", "momento-botocore.sent", False),
    # Fills, then projects (the fill needs the full item): one handler, as it runs on
    # every GetItem, hits included.
    ("after-call.dynamodb.GetItem", "fill_after_miss", "momento-botocore.fill", False),
    ("before-call.dynamodb.BatchGetItem", "serve_batch", "momento-botocore.batch-serve", False),
    ("request-created.dynamodb.BatchGetItem", "count_send", "momento-botocore.batch-sent", False),
    ("after-call.dynamodb.BatchGetItem", "merge_batch", "momento-botocore.batch-merge", False),
    ("creating-client-class.dynamodb", "remember_clients", "momento-botocore.clients", False),
    *(
        entry
        for operation in WRITE_OPERATIONS
        for entry in (
            (
                f"request-created.dynamodb.{operation}",
                "count_send",
                f"momento-botocore.sent-{operation}",
                False,
            ),
            (
                f"after-call.dynamodb.{operation}",
                "write_answered",
                f"momento-botocore.written-{operation}",
                False,
            ),
            (
                f"after-call-error.dynamodb.{operation}",
                "write_failed",
                f"momento-botocore.write-error-{operation}",
                False,
            ),
        )
    ),
)


class ReadHooks:
    """The read-path handlers bound to one configuration and backend."""

    def __init__(
        self,
        config: CacheConfig,
        backend: Backend,
        *,
        stats: Stats = STATS,
        reporter: ErrorReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.backend = backend
        self.active = True
        self._stats = stats
        self._reporter = reporter or ErrorReporter()
        self._clock = clock
        self._tables: dict[str, TableSettings | None] = {}
        self._plans: dict[tuple[Any, ...], tuple[str, str, TableSettings]] = {}
        self._schemas = KeySchemas(config.key_schema_for, clock=clock)
        #: The account of each client (found once per client; see accounts.py).
        self._accounts = ClientAccounts(config.account_id, _client_for, clock=clock)
        #: Tombstones that could not be written yet; their keys skip the cache meanwhile.
        #: One per cache in this process, shared by every hooks in front of it.
        self.pending = shared_pending(
            _identity_of(backend),
            max_keys=config.max_pending_tombstones,
            retry_interval=config.tombstone_retry_interval,
            clock=clock,
        )
        #: Keys this process wrote: their reads verify entries first. One per cache too.
        self.fences = fences_for_cache(self.pending, clock=clock)
        self._planners: dict[str, Callable[[str, Any, Any], None]] = {
            "BatchGetItem": self._plan_batch_get,
            **dict.fromkeys(WRITE_OPERATIONS, self._plan_write),
        }

    # Installation -------------------------------------------------------------

    def install(self, events: Any) -> None:
        """Add the handlers to an event emitter, replacing any of ours already there."""
        uninstall_any(events)
        for event, method, unique_id, last in _HANDLERS:
            register = events.register_last if last else events.register
            register(event, getattr(self, method), unique_id=unique_id)

    # Handlers -----------------------------------------------------------------
    # Each one guards its body (``_name``): nothing raises into a call. A failure is
    # counted and logged (rate-limited), and the call goes on as if uncached.

    def plan_request(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        try:
            self._plan_request(params, model, context)
        except Exception as error:
            self._failed("planning", "", error)
            with contextlib.suppress(Exception):
                context.pop(CONTEXT_KEY, None)  # half a plan: no lookup, no fill

    def serve_from_cache(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        try:
            return self._serve_from_cache(context)
        except Exception as error:
            self._failed("cache lookup", "", error)
            with contextlib.suppress(Exception):
                context[CONTEXT_KEY].hit = True  # to DynamoDB, and no fill
            return None

    def fill_after_miss(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        try:
            self._fill_after_miss(http_response, parsed, context)
        except Exception as error:
            self._failed("cache fill", "", error)

    def serve_batch(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        try:
            return self._serve_batch(context)
        except Exception as error:
            self._failed("answering a batch from the cache", "", error)
            try:  # an all-hit batch's request is a placeholder: it must be answered here
                return _bare_batch_answer(context.get(BATCH_CONTEXT_KEY))
            except Exception:
                return None

    def merge_batch(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        try:
            self._merge_batch_answer(http_response, parsed, context)
        except Exception as error:
            self._failed("merging a batch answer", "", error)
            with contextlib.suppress(Exception):  # DynamoDB answered only the misses
                _add_missing_hits(context.get(BATCH_CONTEXT_KEY), parsed)

    def write_answered(self, http_response: Any, context: Any, **_: Any) -> None:
        try:
            self._write_answered(http_response, context)
        except Exception as error:
            self._failed("cache invalidation", "", error)
            self._invalidation_failed(context)

    def write_failed(self, context: Any, **_: Any) -> None:
        try:
            self._write_failed(context)
        except Exception as error:
            self._failed("cache invalidation", "", error)
            self._invalidation_failed(context)

    def remember_clients(self, base_classes: Any, **_: Any) -> None:
        try:
            self._remember_clients(base_classes)
        except Exception as error:  # such clients cannot DescribeTable for a write's key
            self._failed("remembering clients", "", error)

    def _invalidation_failed(self, context: Any) -> None:
        """Every key of the write skips the cache until its tombstone is written late."""
        try:
            plan = context.get(WRITE_CONTEXT_KEY)
            if plan is None:
                return
            for table, key in plan.keys:
                self._remember_tombstone(table, key)
            for table in plan.keyless_tables():
                self._fence_table(table)  # items without a key: only the table can be guarded
        except Exception as error:
            self._failed("remembering unwritten tombstones", "", error)

    def _plan_request(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        if model.name != "GetItem" or not self.active:
            planner = self._planners.get(model.name)
            if planner is not None and self.active:
                planner(model.name, params, context)
            return
        try:
            account = self._accounts.of(context)
        except Exception as error:  # a bug if it happens: then nothing is cached
            self._failed("finding the account of a client", "", error)
            return
        # Fast path: a plain GetItem of a key planned before (one dict lookup instead of
        # parsing the table name, checking parameters and computing the cache key).
        token = _plan_token(params, context, account)
        if token is not None:
            known = self._plans.get(token)
            if known is not None:
                table, key, settings = known
                known_plan = ReadPlan(
                    table, key, settings, None, self._clock(), request_key=params["Key"]
                )
                context[CONTEXT_KEY] = known_plan
                if self.fences.active:
                    self._fence_read(known_plan, params)
                return
        try:
            plan = plan_get_item(
                params,
                account=account,
                region=context.get("client_region"),
                settings_for=self._settings_for,
                key_prefix=self.config.key_prefix,
                now=self._clock(),
            )
            if type(plan) is ReadPlan:
                plan.request_key = params.get("Key")
                if plan.projection is not None:
                    for name in PROJECTION_PARAMS:  # a miss fetches the full item
                        params.pop(name, None)
                # Last: a plan in the context is looked up and filled, so it must only
                # be there once the request asks for the full item.
                context[CONTEXT_KEY] = plan
                if self.fences.active:
                    self._fence_read(plan, params)
                if token is not None and plan.projection is None and plan.consumed_capacity is None:
                    if len(self._plans) >= _PLAN_MEMO_SIZE:
                        self._plans.clear()
                    self._plans[token] = (plan.table, plan.key, plan.settings)
            elif type(plan) is Bypass:
                self._stats.add(plan.table, "bypasses")
        except Exception as error:  # never break the call
            # A plan in the context is whole (its request asks for the full item): keep it.
            self._failed("planning", "", error)

    def _serve_from_cache(
        self, context: Any, **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        plan: ReadPlan | None = context.get(CONTEXT_KEY)
        if plan is None or not self.active:
            return None
        if self.pending.active and self._pending_check()(plan.table, plan.key):
            plan.hit = True  # its tombstone is not written yet: no lookup, no fill
            return None
        try:
            raw = self.backend.get(plan.key)
        except Exception as error:
            plan.hit = True  # nothing more to do for this call: no fill into a failing cache
            self._failed("cache lookup", plan.table, error)
            return None
        entry = decode(raw) if raw is not None else None
        if entry is None or entry.kind is EntryKind.TOMBSTONE:
            if raw is not None and entry is None:
                self._discard(plan.table, plan.key)
            self._stats.add(plan.table, "misses")
            return None
        item = entry.item
        if (
            item is not None
            and plan.request_key is not None
            and not key_matches(item, plan.request_key)
        ):
            self._discard(plan.table, plan.key, "an item under another item's key")
            self._stats.add(plan.table, "misses")
            return None
        fence = plan.fence
        if fence is not None and raw != fence.verified:
            # Perhaps an old stream refresh after our own write: ask DynamoDB (fences.py).
            fence.entry, fence.item = raw, item
            self._stats.add(plan.table, "fenced_reads")
            return None
        plan.hit = True
        self._stats.add(plan.table, "hits")
        metadata = {
            "RequestId": _HIT_REQUEST_ID,
            "HTTPStatusCode": 200,
            "HTTPHeaders": {CACHE_HEADER: "hit"},
            "RetryAttempts": 0,
        }
        if item is not None and plan.projection is not None:
            item = plan.projection.apply(item)
        if plan.consumed_capacity is None:  # the usual case: one dict literal
            if item is None:
                return _HIT_HTTP_RESPONSE, {"ResponseMetadata": metadata}
            return _HIT_HTTP_RESPONSE, {"Item": item, "ResponseMetadata": metadata}
        parsed: dict[str, Any] = {} if item is None else {"Item": item}
        parsed["ConsumedCapacity"] = consumed_capacity_of_hit(plan.table, plan.consumed_capacity)
        parsed["ResponseMetadata"] = metadata
        return _HIT_HTTP_RESPONSE, parsed

    def mark_sent(self, request: Any, **_: Any) -> None:
        """request-created: this call's answer will come over the wire."""
        try:
            plan: ReadPlan | None = request.context.get(CONTEXT_KEY)
            if plan is not None:
                plan.sent = True
        except Exception as error:  # never break the call
            self._failed("marking a request sent", "", error)

    def _fill_after_miss(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        plan: ReadPlan | None = context.get(CONTEXT_KEY)
        if plan is None or not plan.sent:
            return  # a hit (never sent), or not ours
        if self.active and not plan.hit:  # hit is also set when the lookup failed
            self._fill_item(plan, http_response, parsed)
        if plan.projection is not None:
            # Not gated on self.active: the request went out without its projection.
            self.project_response(http_response, parsed, context)

    def _fill_item(self, plan: ReadPlan, http_response: Any, parsed: Any) -> None:
        try:
            if http_response.status_code != 200:
                return
            headers = parsed.get("ResponseMetadata", {}).get("HTTPHeaders")
            if isinstance(headers, dict):
                headers[CACHE_HEADER] = "miss"
            item = parsed.get("Item")
            fence = plan.fence
            if fence is not None and fence.entry is not None:  # no fill: the entry is there
                self._settle_fenced(plan.table, plan.key, fence, item)
                return
            if item is None:
                value, ttl = encode_absent(), plan.settings.absent_ttl
            else:
                value, ttl = encode_item(item), plan.settings.ttl
            if fence is not None:
                # The fill below (if it lands) holds DynamoDB's answer: already verified.
                self.fences.verify(plan.key, fence.stamp, value)
            if self._clock() - plan.started >= _fill_window(self.config, plan.settings):
                # A write may have come and gone (with its tombstone) since we read.
                self._stats.add(plan.table, "fills_skipped")
                return
            if (
                item is not None
                and plan.request_key is not None
                and not key_matches(item, plan.request_key)
            ):
                # Its key as DynamoDB spells it is not the request's to the codec (moto
                # keeps numbers as written): stored, it would be garbage at every read.
                self._stats.add(plan.table, "fills_skipped")
                return
            stored = self.backend.add(plan.key, value, ttl)
            self._stats.add(plan.table, "fills" if stored else "fills_skipped")
        except Exception as error:
            self._failed("cache fill", plan.table, error)

    def project_response(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        """A GetItem whose projection was dropped for the fetch: project DynamoDB's answer.
        Called by fill_after_miss, after the fill."""
        plan: ReadPlan | None = context.get(CONTEXT_KEY)
        if plan is None or plan.projection is None or not plan.sent:
            return
        # Not gated on self.active: the request went out without its projection.
        item = parsed.get("Item")
        if http_response.status_code == 200 and isinstance(item, Mapping):
            parsed["Item"] = plan.projection.apply(item)

    # BatchGetItem -------------------------------------------------------------

    def _plan_batch_get(self, operation: str, params: Any, context: Any) -> None:
        try:
            plan = plan_batch_get(
                params,
                account=self._accounts.of(context),
                region=context.get("client_region"),
                settings_for=self._settings_for,
                key_prefix=self.config.key_prefix,
                now=self._clock(),
            )
            if type(plan) is Bypass:
                self._stats.add(plan.table, "bypasses")
                return
            if plan is None:
                return
            assert isinstance(plan, BatchPlan)
            self._look_up_batch(plan)
        except Exception as error:  # never break the call; the request is untouched
            self._failed("planning", "", error)
            return
        if plan.misses or plan.passthrough:
            request_items = dict(plan.passthrough)
            for table in plan.tables:
                missed = plan.misses.get(table.name)
                if missed:
                    request = {
                        name: value
                        for name, value in table.request_extras.items()
                        if name not in PROJECTION_PARAMS  # fetch full items, to fill
                    }
                    request["Keys"] = list(missed.values())
                    if plan.fenced and any(key in plan.fenced for key in missed):
                        request["ConsistentRead"] = True  # see _fence_read
                    request_items[table.name] = request
            params["RequestItems"] = request_items
        else:
            # All hits: before-call answers, nothing is sent. Spare botocore validating
            # and serializing every key: leave one placeholder key that DynamoDB would
            # reject (no table has this key attribute), should it ever be sent.
            first = plan.tables[0].name
            params["RequestItems"] = {first: {"Keys": [{_NEVER_SENT: {"S": "-"}}]}}
        context[BATCH_CONTEXT_KEY] = plan

    def _look_up_batch(self, plan: BatchPlan) -> None:
        # The hot path of an all-hit batch: per key, only C-level passes (a get_many,
        # the builders of remembered entries); anything else takes the loop below.
        get_many = getattr(self.backend, "get_many", None)
        skips = self._pending_check() if self.pending.active else None
        for table in plan.tables:
            keys = table.keys
            try:
                if get_many is not None:
                    found: list[bytes | None] = get_many(keys)
                else:
                    found = self._get_each(table.table, keys, plan)
                if len(found) != len(keys):
                    raise BackendError(f"get_many gave {len(found)} values for {len(keys)} keys")
            except Exception as error:  # all misses: no fills into a failing cache
                plan.fill = False
                self._failed("cache lookup", table.table, error)
                found = [None] * len(keys)
            if skips is not None:  # keys whose tombstone is not written yet are misses
                found = self._unless_pending(table.table, keys, found, plan, skips)
            if self.fences.active:  # unverified entries of fenced keys are misses
                found = self._unless_fenced(table, found, plan)
            items = remembered_items(found)
            projection = table.projection
            # Every key a hit, on an entry decoded before, and each the item asked for.
            if None not in items and all_keys_match(items, table.key_attributes):  # type: ignore[arg-type]
                hits = cast("list[dict[str, Any]]", items)
                if projection is not None:
                    hits = [projection.apply(item) for item in hits]
                plan.hits[table.name] = hits
                self._stats.add(table.table, "hits", len(hits))
                continue
            hits = plan.hits[table.name] = []
            missed: dict[str, Mapping[str, Any]] = {}
            hit_count = 0
            for key, key_attributes, raw, item in zip(
                keys, table.key_attributes, found, items, strict=True
            ):
                if item is None:
                    entry = None if raw is None else decode(raw)
                    if entry is None or entry.kind is EntryKind.TOMBSTONE:
                        missed[key] = key_attributes
                        if raw is not None and entry is None:  # garbage, not a tombstone
                            self._discard(table.table, key)
                        continue
                    item = entry.item
                if item is not None and not key_matches(item, key_attributes):
                    missed[key] = key_attributes
                    self._discard(table.table, key, "an item under another item's key")
                    continue
                hit_count += 1
                if item is not None:  # an ABSENT entry: a hit with nothing to return
                    hits.append(item if projection is None else projection.apply(item))
            if missed:
                plan.misses[table.name] = missed
                self._stats.add(table.table, "misses", len(missed))
            if hit_count:
                self._stats.add(table.table, "hits", hit_count)

    def _unless_fenced(
        self, table: BatchTable, found: list[bytes | None], plan: BatchPlan
    ) -> list[bytes | None]:
        """``found`` with the ITEM/ABSENT entries of fenced keys that are not verified
        turned into misses; each fenced key is remembered in the plan."""
        look = self.fences.look
        copied = False
        for index, key in enumerate(table.keys):
            fence = look(table.table, key)
            if fence is None:
                continue
            plan.fenced[key] = fence
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
            self._stats.add(table.table, "fenced_reads")
        return found

    def _get_each(self, table: str, keys: list[str], plan: BatchPlan) -> list[bytes | None]:
        """Per-key get, for backends without get_many: a failed key is a miss."""
        get = self.backend.get
        found: list[bytes | None] = []
        for key in keys:
            try:
                found.append(get(key))
            except Exception as error:
                plan.fill = False  # no fills into a failing cache for this call
                self._failed("cache lookup", table, error)
                found.append(None)
        return found

    def _discard(self, table: str, key: str, what: str = "an undecodable entry") -> None:
        """Garbage under ``key`` (not an entry, or not the item asked for): delete it.
        Counted as ``garbage``, not as an error: the cache itself answered."""
        self._stats.add(table, "garbage")
        self._reporter.report("reading a cache entry", GarbageEntry(f"{what}; deleted"))
        try:
            self.backend.delete(key)
        except Exception as error:
            self._failed("cache delete", table, error)

    def _serve_batch(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        plan: BatchPlan | None = context.get(BATCH_CONTEXT_KEY)
        if plan is None or plan.misses or plan.passthrough:
            return None
        # Every key was answered from the cache: nothing to send. Not gated on
        # self.active: the decision was taken when the request was planned.
        plan.answered = True
        parsed: dict[str, Any] = {
            "Responses": {table.name: plan.hits[table.name] for table in plan.tables},
            "UnprocessedKeys": {},
        }
        if plan.consumed_capacity is not None:
            parsed["ConsumedCapacity"] = [
                consumed_capacity_of_hit(table.table, plan.consumed_capacity)
                for table in plan.tables
            ]
        parsed["ResponseMetadata"] = {
            "RequestId": _HIT_REQUEST_ID,
            "HTTPStatusCode": 200,
            "HTTPHeaders": {CACHE_HEADER: "hit"},
            "RetryAttempts": 0,
        }
        return _HIT_HTTP_RESPONSE, parsed

    def _merge_batch_answer(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        """DynamoDB answered the misses: project, fill, and add the hits to its answer."""
        plan: BatchPlan | None = context.get(BATCH_CONTEXT_KEY)
        if plan is None or plan.answered or http_response.status_code != 200:
            return
        fill = (
            plan.fill
            and plan.sent  # only what came over the wire (not, say, a Stubber's answer)
            and self.active
            and self._clock() - plan.started
            < min(_fill_window(self.config, table.settings) for table in plan.tables)
        )
        try:
            self._merge_batch(plan, parsed, fill)
        except Exception as error:  # a bug if it happens; never raise into the caller
            self._failed("merging a batch answer", plan.tables[0].table, error)
            with contextlib.suppress(Exception):  # DynamoDB answered only the misses
                _add_missing_hits(plan, parsed)

    def _merge_batch(self, plan: BatchPlan, parsed: Any, fill: bool) -> None:
        headers = parsed.get("ResponseMetadata", {}).get("HTTPHeaders")
        if isinstance(headers, dict):
            headers[CACHE_HEADER] = "partial" if any(plan.hits.values()) else "miss"
        responses = parsed.setdefault("Responses", {})
        unprocessed = parsed.setdefault("UnprocessedKeys", {})
        fully_cached = []
        fills: list[_Fill] = []  # of every table: one bulk write for the whole batch
        for table in plan.tables:
            missed = plan.misses.get(table.name)
            if not missed:
                fully_cached.append(table)
                responses[table.name] = plan.hits[table.name]
                continue
            name = _answered_as(table, responses, unprocessed)
            fetched = responses.get(name) or []
            projection = table.projection
            items = [item if projection is None else projection.apply(item) for item in fetched]
            items.extend(plan.hits[table.name])
            responses[name] = items
            left = unprocessed.get(name)
            if left is not None:  # resubmittable as the caller asked it, projection included
                unprocessed[name] = {**table.request_extras, "Keys": left.get("Keys", [])}
            if plan.fenced and plan.sent:
                missed = self._settle_fenced_batch(table, missed, fetched, left, plan.fenced)
            if fill:
                fills.extend(self._batch_table_fills(table, missed, fetched, left))
        if fills:
            self._fill_many(fills)
        if plan.consumed_capacity is not None and fully_cached:
            consumed = parsed.setdefault("ConsumedCapacity", [])
            for table in fully_cached:
                consumed.append(consumed_capacity_of_hit(table.table, plan.consumed_capacity))

    def _settle_fenced_batch(
        self,
        table: BatchTable,
        missed: dict[str, Mapping[str, Any]],
        fetched: list[dict[str, Any]],
        unprocessed: Any,
        fenced: dict[str, FencedRead],
    ) -> dict[str, Mapping[str, Any]]:
        """The batch's fenced keys that DynamoDB answered: settle the skipped entries
        (those keys are not filled: they are returned without them) and verify what
        the fill will store for the others."""
        left = (unprocessed or {}).get("Keys") or []
        to_fill = dict(missed)
        for key, key_attributes in missed.items():
            fence = fenced.get(key)
            if fence is None or any(key_matches(k, key_attributes) for k in left):
                continue  # not fenced, or not read
            item = next((i for i in fetched if key_matches(i, key_attributes)), None)
            if fence.entry is not None:
                del to_fill[key]
                self._settle_fenced(table.table, key, fence, item)
            else:
                value = encode_absent() if item is None else encode_item(item)
                self.fences.verify(key, fence.stamp, value)
        return to_fill

    def _settle_fenced(
        self, table: str, key: str, fence: FencedRead, item: Mapping[str, Any] | None
    ) -> None:
        """DynamoDB answered (consistently) a read that skipped an entry of a fenced key:
        the entry is verified if it holds the same, else it is older than the answer
        and a tombstone replaces it (for every reader of the cache)."""
        assert fence.entry is not None
        if same_item(fence.item, item):
            self.fences.verify(key, fence.stamp, fence.entry)
            return
        self._stats.add(table, "stale_entries")
        try:
            self.backend.set(key, encode_tombstone(), self.config.tombstone_ttl_seconds)
        except Exception as error:
            self._failed("cache invalidation", table, error)

    def _batch_table_fills(
        self,
        table: BatchTable,
        missed: dict[str, Mapping[str, Any]],
        fetched: list[dict[str, Any]],
        unprocessed: Any,
    ) -> list[_Fill]:
        """The fills of one table: the fetched items, and ABSENT for keys DynamoDB did not find."""
        prefix = self.config.key_prefix
        settings = table.settings
        fills: list[_Fill] = []
        try:
            pending = dict(missed)
            for item in fetched:
                key_attributes = {name: item[name] for name in table.key_names}
                key = cache_key(
                    table.account,
                    table.region,
                    table.table,
                    key_attributes,
                    prefix=prefix,
                    binary_text="utf-8",
                )
                if pending.pop(key, None) is not None:
                    fills.append((table.table, (key, encode_item(item), settings.ttl)))
            for key_attributes in (unprocessed or {}).get("Keys", []):
                key = cache_key(
                    table.account,
                    table.region,
                    table.table,
                    key_attributes,
                    prefix=prefix,
                    binary_text="utf-8",
                )
                pending.pop(key, None)  # not read: not known to be absent
            for key in pending:
                fills.append((table.table, (key, encode_absent(), settings.absent_ttl)))
        except Exception as error:
            self._failed("cache fill", table.table, error)
            return []
        return fills

    def _fill_many(self, fills: list[_Fill]) -> None:
        """Add-if-absent every fill with one bulk write (about one deadline if the cache stalls)."""
        stored = bulk_add(self.backend, [entry for _, entry in fills])
        for (table, _), outcome in zip(fills, stored, strict=True):
            if isinstance(outcome, Exception):
                self._failed("cache fill", table, outcome)
            else:
                self._stats.add(table, "fills" if outcome else "fills_skipped")

    # Writes -------------------------------------------------------------------

    def _plan_write(self, operation: str, params: Any, context: Any) -> None:
        try:
            account = self._accounts.of(context)
        except Exception as error:  # a bug if it happens
            self._failed("finding the account of a client", "", error)
            account = None
        try:
            region = context.get("client_region")
            touched = touched_items(operation, params, region, account)
        except Exception:
            return  # malformed: DynamoDB rejects it, nothing is written
        try:
            plan = plan_write(
                touched,
                is_cached=lambda table: self._settings_for(table) is not None,
                key_names=lambda touch: self._key_names(touch, context),
                key_prefix=self.config.key_prefix,
            )
        except Exception as error:
            self._failed("planning an invalidation", "", error)
            return
        for table, problem in plan.problems:
            self._failed("finding the key of a written item", table, problem)
        for table in plan.no_account:  # said once by the accounts; counted here
            self._stats.add(table, "bypasses")
        # An item without a key (or of a client whose account is unknown) fences its table.
        if plan.keys or plan.problems or plan.no_account:
            context[WRITE_CONTEXT_KEY] = plan

    def _key_names(self, touch: TouchedItem, context: Any) -> KeyNames:
        client = _client_for(context)

        def describe() -> KeyNames:
            assert client is not None
            # Re-enters this client's handlers, which ignore DescribeTable.
            return key_names_of(client.describe_table(TableName=touch.table_name))

        return self._schemas.names(
            touch.region,
            touch.table,
            describe if client is not None else None,
            account=touch.account,
        )

    def count_send(self, request: Any, **_: Any) -> None:
        """request-created: one more attempt of this call goes over the wire."""
        try:
            context = request.context
            plan: Any = context.get(WRITE_CONTEXT_KEY) or context.get(BATCH_CONTEXT_KEY)
            if isinstance(plan, WritePlan):
                plan.sends += 1
            elif plan is not None:
                plan.sent = True
        except Exception as error:  # never break the call
            self._failed("counting a request sent", "", error)

    def _write_answered(self, http_response: Any, context: Any, **_: Any) -> None:
        plan: WritePlan | None = context.get(WRITE_CONTEXT_KEY)
        if plan is None:
            return
        status = http_response.status_code
        if 400 <= status < 500 and plan.sends <= 1:
            return  # rejected (condition failed, cancelled, invalid, throttled): not written
        # Written; or 5xx / retried after a lost answer: perhaps written.
        self._invalidate(plan)

    def _write_failed(self, context: Any, **_: Any) -> None:
        """No answer (timeout, connection error): if the request left, it may have been applied."""
        plan: WritePlan | None = context.get(WRITE_CONTEXT_KEY)
        if plan is not None and plan.sends > 0:
            self._invalidate(plan)

    def _invalidate(self, plan: WritePlan) -> None:
        if plan.done:
            return
        plan.done = True
        self._fence_written(plan)
        for table in plan.keyless_tables():
            self._fence_table(table)
        value, ttl = encode_tombstone(), self.config.tombstone_ttl_seconds
        stamp = self.pending.stamp()
        # One bulk write: about one deadline for a whole batch if the cache stalls.
        written = bulk_set(self.backend, [(key, value, ttl) for _, key in plan.keys])
        for (table, key), error in zip(plan.keys, written, strict=True):
            if error is not None:
                self._failed("cache invalidation", table, error)
                self._remember_tombstone(table, key)
                continue
            self._stats.add(table, "invalidations")
            if self.pending.active:  # an older pending one is covered now
                self.pending.written(key, stamp, self._stats.add)
        if self.pending.active:
            self._retry_tombstones()

    # Own writes win (fences.py) -------------------------------------------------

    def _fence_written(self, plan: WritePlan) -> None:
        """Fence every key of an acknowledged (or perhaps applied) write."""
        for table, key in plan.keys:
            horizon = self._guard_horizon_of(table)
            try:
                fenced = self.fences.fence(table, key, horizon)
            except Exception as error:  # a bug if it happens
                self._failed("fencing a written key", table, error)
                continue
            if not fenced:
                self._stats.add(table, "fences_overflowed")
                self._reporter.report(
                    "fencing a written key",
                    FencesFull(
                        f"{self.fences.max_keys} written keys are fenced; every read of "
                        f"table {table!r} is checked with DynamoDB for the next {horizon:.0f} s"
                    ),
                )

    def _fence_read(self, plan: ReadPlan, params: Any) -> None:
        """A GetItem of a fenced key: remember the fence; should the read reach
        DynamoDB, it is strongly consistent (an eventually consistent answer may be
        older than the write, and would verify an old entry)."""
        try:
            fence = self.fences.look(plan.table, plan.key)
        except Exception as error:  # a bug if it happens: the safe answer is "fenced"
            self._failed("checking fences", plan.table, error)
            fence = FencedRead(0, None)
        if fence is not None:
            plan.fence = fence
            params["ConsistentRead"] = True

    # Tombstones not written yet (pending.py) ------------------------------------

    def _remember_tombstone(self, table: str, key: str) -> None:
        """Never lose it: reads of ``key`` skip the cache until it is written or not needed."""
        horizon = self._guard_horizon_of(table)
        try:
            remembered = self.pending.remember(table, key, horizon, self._stats.add)
        except Exception as error:  # a bug if it happens
            self._failed("remembering an unwritten tombstone", table, error)
            return
        if not remembered:
            self._reporter.report(
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
        horizon = self._guard_horizon_of(table)
        try:
            self.pending.fence_table(table, horizon, self._stats.add)
        except Exception as error:  # a bug if it happens
            self._failed("fencing a table", table, error)

    def _pending_check(self) -> Callable[[str, str], bool]:
        """Called only while something is pending, once per read: retry (when due), and
        return the check each key of the read needs."""
        self._retry_tombstones()
        return self._skips_cache

    def _skips_cache(self, table: str, key: str) -> bool:
        """True when a read of ``key`` must go to DynamoDB without the cache."""
        try:
            skip = self.pending.guards(table, key)
        except Exception as error:  # a bug if it happens: the safe answer is to skip
            self._failed("checking pending tombstones", table, error)
            return True
        if skip:
            self._stats.add(table, "bypasses")
        return skip

    def _unless_pending(
        self,
        table: str,
        keys: list[str],
        found: list[bytes | None],
        plan: BatchPlan,
        skips: Callable[[str, str], bool],
    ) -> list[bytes | None]:
        """``found`` with the keys whose tombstone is pending turned into misses; then
        nothing of the batch is filled."""
        skipped = [skips(table, key) for key in keys]
        if not any(skipped):
            return found
        plan.fill = False
        return [None if skip else raw for skip, raw in zip(skipped, found, strict=True)]

    def _retry_tombstones(self) -> None:
        value, ttl = encode_tombstone(), self.config.tombstone_ttl_seconds
        set_ = self.backend.set
        try:
            error = self.pending.retry(lambda key: set_(key, value, ttl), self._stats.add)
        except Exception as bug:
            error = bug
        if error is not None:  # the cache still fails: not counted again, logged (rate-limited)
            self._reporter.report("writing a pending tombstone", error)

    def _remember_clients(self, base_classes: Any, **_: Any) -> None:
        """Make new DynamoDB clients findable from a call's context (for DescribeTable)."""
        if _RemembersItself not in base_classes:
            base_classes.insert(0, _RemembersItself)

    # Helpers ------------------------------------------------------------------

    def _guard_horizon_of(self, table: str) -> float:
        """``_guard_horizon`` of ``table`` (the longest there is for a table not cached)."""
        settings = self._settings_for(table)
        return MAX_TTL_SECONDS if settings is None else _guard_horizon(self.config, settings)

    def _settings_for(self, table: str) -> TableSettings | None:
        try:
            return self._tables[table]
        except KeyError:
            settings = self._tables[table] = self.config.settings_for(table)
            return settings

    def _failed(self, what: str, table: str, error: BaseException) -> None:
        try:
            self._stats.add(table, "errors")
            self._reporter.report(what, error)
        except Exception:  # the last resort of every handler: never raise from here
            pass


_PLAN_MEMO_SIZE = 4096

#: One fill of a batch: (table, (key, value, ttl)).
_Fill = tuple[str, Entry]


def _answered_as(table: BatchTable, responses: Any, unprocessed: Any) -> str:
    """The key under which DynamoDB answered for ``table``: the name or ARN the
    request gave, as documented; the plain table name should an answer to an ARN
    use that instead (so the cached items join DynamoDB's, never a second entry)."""
    name = table.name
    if name in responses or name in unprocessed or name == table.table:
        return name
    if table.table in responses or table.table in unprocessed:
        return table.table
    return name


def _fill_window(config: CacheConfig, settings: TableSettings) -> float:
    """How long after a read started its fill is still safe: no invalidation entry
    (TOMBSTONE, or a stream's ABSENT/ITEM, which lives at least absent_ttl) has expired."""
    return min(config.tombstone_ttl_seconds, settings.absent_ttl)


def _guard_horizon(config: CacheConfig, settings: TableSettings) -> float:
    """How long after a write an entry its tombstone was to replace can still be in the
    cache: one stored before lives at most the longest TTL; a fill racing the write (its
    read started before) comes within the fill window and lives as long."""
    return max(settings.ttl, settings.absent_ttl) + _fill_window(config, settings)


def _identity_of(backend: Backend) -> Hashable:
    """The cache ``backend`` stores in; the backend itself if it cannot say."""
    try:
        identity = cache_identity(backend)
        hash(identity)
    except Exception as error:  # a bug in a backend's cache_identity()
        ErrorReporter().report("naming the cache (cache_identity)", error)
        return SameObject(backend)
    return identity


class FencesFull(Exception):
    """Too many written keys are fenced: a table's reads are all checked for a while."""


class GarbageEntry(Exception):
    """What the cache held under a key was not the entry of that key."""


def _bare_batch_answer(plan: BatchPlan | None) -> tuple[AWSResponse, dict[str, Any]] | None:
    """An all-hit batch answered with its items alone (no ConsumedCapacity)."""
    if plan is None or plan.misses or plan.passthrough:
        return None
    plan.answered = True
    parsed = {
        "Responses": {table.name: plan.hits[table.name] for table in plan.tables},
        "UnprocessedKeys": {},
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return _HIT_HTTP_RESPONSE, parsed


def _add_missing_hits(plan: BatchPlan | None, parsed: Any) -> None:
    """After a failed merge: every cached item is in the answer, once."""
    if plan is None or plan.answered:
        return
    responses = parsed.setdefault("Responses", {})
    for table in plan.tables:
        items = responses.setdefault(table.name, [])
        there = {id(item) for item in items}
        items.extend(item for item in plan.hits.get(table.name, ()) if id(item) not in there)


class PendingTombstonesFull(Exception):
    """Too many tombstones are pending: a table's reads skip the cache for a while."""


def _plan_token(params: Any, context: Any, account: str | None) -> tuple[Any, ...] | None:
    """What fully determines the plan of a GetItem with only TableName and a one-
    attribute Key (str or bytes value) made by a client of ``account``, as a
    hashable tuple; None for anything else."""
    if len(params) != 2 or account is None:
        return None
    table = params.get("TableName")
    key = params.get("Key")
    if type(table) is not str or type(key) is not dict or len(key) != 1:
        return None
    ((name, value),) = key.items()
    if type(value) is not dict or len(value) != 1:
        return None
    ((tag, raw),) = value.items()
    if type(raw) is not str and type(raw) is not bytes:
        return None
    return (table, context.get("client_region"), account, name, tag, raw)


def uninstall_any(events: Any) -> None:
    """Remove every handler of ours from an event emitter (whichever hooks put it there)."""
    for event, _, unique_id, _ in _HANDLERS:
        events.unregister(event, unique_id=unique_id)


# The handlers that start our work on a call; the others only finish what a plan
# began (and do nothing on a call without one).
_PLANNING = frozenset({"plan_request", "remember_clients"})


def uninstall_planning(events: Any) -> None:
    """Remove the handlers that plan new calls, and leave those that finish calls
    already planned: a call in flight on this emitter (another thread's) may have
    had its request changed (misses only, no projection, a placeholder) and still
    needs its answer merged, projected or served."""
    for event, method, unique_id, _ in _HANDLERS:
        if method in _PLANNING:
            events.unregister(event, unique_id=unique_id)


# Clients, found from a call's context by their (per-client) Config object. A
# handler is not told which client emitted the event; the key schema of a table
# is asked of that same client, with its credentials and endpoint.
_CLIENTS: weakref.WeakKeyDictionary[Any, weakref.ReferenceType[Any]] = weakref.WeakKeyDictionary()


def remember_client(client: Any) -> None:
    """Make ``client`` findable from the context of its calls."""
    with contextlib.suppress(AttributeError, TypeError):
        _CLIENTS[client.meta.config] = weakref.ref(client)


def _client_for(context: Any) -> Any:
    try:
        ref = _CLIENTS.get(context.get("client_config"))
    except TypeError:
        return None
    return None if ref is None else ref()


class _RemembersItself:
    """Mixed into DynamoDB client classes made by a registered session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with contextlib.suppress(Exception):  # never break making a client
            remember_client(self)
