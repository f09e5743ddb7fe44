"""The progress of one call, carried in botocore's per-call ``context``.

Plans (core/reads.py, core/writes.py) are frozen decisions; what happens to one call
afterwards (was a request sent, may the answer be filled, which fences did it see)
lives here, in one small object per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from momento_botocore.fences import FencedRead

if TYPE_CHECKING:
    from momento_botocore.core.queries import PagePlan
    from momento_botocore.core.reads import BatchPlan, ReadPlan
    from momento_botocore.core.writes import WritePlan

#: Where each kind of call keeps its state in botocore's context dict.
GET_KEY = "momento_botocore.read"
BATCH_KEY = "momento_botocore.batch"
WRITE_KEY = "momento_botocore.write"
PAGE_KEY = "momento_botocore.page"


class GetCall:
    """One cacheable GetItem."""

    __slots__ = ("fence", "fill", "plan", "sent", "started")

    def __init__(self, plan: ReadPlan, started: float, fence: FencedRead | None = None) -> None:
        self.plan = plan
        self.started = started
        #: Set by request-created: the answer came over the wire (only those are filled).
        self.sent = False
        #: False once nothing may be filled: a hit, a failed lookup, a pending tombstone.
        self.fill = True
        #: The fence of this process's own write on the key, if any (fences.py).
        self.fence = fence


class BatchCall:
    """One BatchGetItem with at least one cached table."""

    __slots__ = ("answered", "fenced", "fill", "hits", "misses", "plan", "sent", "started")

    def __init__(self, plan: BatchPlan, started: float) -> None:
        self.plan = plan
        self.started = started
        #: Items found in the cache, per table (RequestItems name), projected.
        self.hits: dict[str, list[dict[str, Any]]] = {}
        #: Keys left to DynamoDB, per table: cache key -> the request's key.
        self.misses: dict[str, dict[str, Mapping[str, Any]]] = {}
        self.fill = True
        self.sent = False
        #: The cache answered every key: the call's answer was built here.
        self.answered = False
        #: Fenced keys: cache key -> the fence as the read was planned.
        self.fenced: dict[str, FencedRead] = {}

    @property
    def all_hits(self) -> bool:
        return not self.misses and not self.plan.passthrough


class WriteCall:
    """One write whose items have cache entries to invalidate."""

    __slots__ = ("done", "plan", "sends")

    def __init__(self, plan: WritePlan) -> None:
        self.plan = plan
        #: Attempts sent (request-created): a rejected retry may follow an applied one.
        self.sends = 0
        self.done = False


class PageCall:
    """One cacheable Query or Scan (core/queries.py)."""

    __slots__ = ("fill", "key", "plan", "sent", "started", "written_lately")

    def __init__(self, plan: PagePlan, started: float) -> None:
        self.plan = plan
        self.started = started
        self.sent = False
        self.fill = True
        #: A generation's "written lately" marker lived: the page is not filled.
        self.written_lately = False
        #: The page's key, once its generations are known (None: not looked up).
        self.key: str | None = None
