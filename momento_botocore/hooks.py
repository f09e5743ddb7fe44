"""The read path on botocore's event system. The only module that knows botocore events.

One GetItem goes through three handlers that share the call's ``context`` dict:

* ``before-parameter-build.dynamodb`` (registered last, so boto3's ``Table`` layer
  has already turned Python values into wire format): decide and compute the key;
* ``before-call.dynamodb.GetItem``: look the key up; on a hit, return a response
  built fresh from the entry, and botocore sends nothing;
* ``after-call.dynamodb.GetItem`` (the exact name, so it runs before boto3's
  resource layer converts the answer in place): after a miss answered by
  DynamoDB over the wire, fill with add-if-absent (Contract 3).

Nothing here raises into the caller: every failure is counted, logged at most
once a minute per kind, and the call goes to DynamoDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

from momento_botocore.backends.base import Backend
from momento_botocore.config import CacheConfig, TableSettings
from momento_botocore.entries import EntryKind, decode, encode_absent, encode_item
from momento_botocore.policy import Bypass, ReadPlan, consumed_capacity_of_hit, plan_get_item
from momento_botocore.stats import STATS, ErrorReporter, Stats

CONTEXT_KEY = "momento_botocore.read"
CACHE_HEADER = "x-momento-cache"
_HIT_REQUEST_ID = "momento-botocore-cache-hit"

# botocore reads only ``status_code`` from it; one shared instance saves ~2 us a hit.
_HIT_HTTP_RESPONSE = AWSResponse(None, 200, {CACHE_HEADER: "hit"}, None)

# (event, ReadHooks method, unique id, registered last)
_HANDLERS = (
    ("before-parameter-build.dynamodb", "plan_request", "momento-botocore.plan", True),
    ("before-call.dynamodb.GetItem", "serve_from_cache", "momento-botocore.serve", False),
    ("before-send.dynamodb.GetItem", "mark_sent", "momento-botocore.sent", False),
    ("after-call.dynamodb.GetItem", "fill_after_miss", "momento-botocore.fill", False),
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

    # Installation -------------------------------------------------------------

    def install(self, events: Any) -> None:
        """Add the handlers to an event emitter, replacing any of ours already there."""
        uninstall_any(events)
        for event, method, unique_id, last in _HANDLERS:
            register = events.register_last if last else events.register
            register(event, getattr(self, method), unique_id=unique_id)

    # Handlers -----------------------------------------------------------------

    def plan_request(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        if model.name != "GetItem" or not self.active:
            return
        try:
            plan = plan_get_item(
                params,
                region=context.get("client_region"),
                settings_for=self._settings_for,
                key_prefix=self.config.key_prefix,
                now=self._clock(),
            )
            if type(plan) is ReadPlan:
                context[CONTEXT_KEY] = plan
            elif type(plan) is Bypass:
                self._stats.add(plan.table, "bypasses")
        except Exception as error:  # never break the call
            self._failed("planning", "", error)

    def serve_from_cache(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        plan: ReadPlan | None = context.get(CONTEXT_KEY)
        if plan is None or not self.active:
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
                self._discard_garbage(plan)
            self._stats.add(plan.table, "misses")
            return None
        plan.hit = True
        self._stats.add(plan.table, "hits")
        parsed: dict[str, Any] = {}
        if entry.kind is EntryKind.ITEM:
            parsed["Item"] = entry.item
        if plan.consumed_capacity is not None:
            parsed["ConsumedCapacity"] = consumed_capacity_of_hit(
                plan.table, plan.consumed_capacity
            )
        parsed["ResponseMetadata"] = {
            "RequestId": _HIT_REQUEST_ID,
            "HTTPStatusCode": 200,
            "HTTPHeaders": {CACHE_HEADER: "hit"},
            "RetryAttempts": 0,
        }
        return _HIT_HTTP_RESPONSE, parsed

    def mark_sent(self, request: Any, **_: Any) -> None:
        plan: ReadPlan | None = request.context.get(CONTEXT_KEY)
        if plan is not None:
            plan.sent = True

    def fill_after_miss(self, http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        plan: ReadPlan | None = context.get(CONTEXT_KEY)
        if plan is None or plan.hit or not plan.sent or not self.active:
            return
        try:
            if http_response.status_code != 200:
                return
            headers = parsed.get("ResponseMetadata", {}).get("HTTPHeaders")
            if isinstance(headers, dict):
                headers[CACHE_HEADER] = "miss"
            if self._clock() - plan.started >= self.config.tombstone_ttl_seconds:
                # A write may have come and gone (with its tombstone) since we read.
                self._stats.add(plan.table, "fills_skipped")
                return
            item = parsed.get("Item")
            if item is None:
                value, ttl = encode_absent(), plan.settings.absent_ttl
            else:
                value, ttl = encode_item(item), plan.settings.ttl
            stored = self.backend.add(plan.key, value, ttl)
            self._stats.add(plan.table, "fills" if stored else "fills_skipped")
        except Exception as error:
            self._failed("cache fill", plan.table, error)

    # Helpers ------------------------------------------------------------------

    def _settings_for(self, table: str) -> TableSettings | None:
        try:
            return self._tables[table]
        except KeyError:
            settings = self._tables[table] = self.config.settings_for(table)
            return settings

    def _discard_garbage(self, plan: ReadPlan) -> None:
        self._failed("decoding a cache entry", plan.table, ValueError("undecodable entry"))
        try:
            self.backend.delete(plan.key)
        except Exception as error:
            self._failed("cache delete", plan.table, error)

    def _failed(self, what: str, table: str, error: BaseException) -> None:
        self._stats.add(table, "errors")
        self._reporter.report(what, error)


def uninstall_any(events: Any) -> None:
    """Remove every handler of ours from an event emitter (whichever hooks put it there)."""
    for event, _, unique_id, _ in _HANDLERS:
        events.unregister(event, unique_id=unique_id)
