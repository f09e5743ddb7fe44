"""Per-table counters and rate-limited error reporting for the cache path."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("momento_botocore")

COUNTERS = ("hits", "misses", "fills", "fills_skipped", "bypasses", "errors")


class Stats:
    """Counters per table. Thread-safe; :meth:`snapshot` returns plain dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, int]] = {}

    def add(self, table: str, counter: str, amount: int = 1) -> None:
        with self._lock:
            counters = self._tables.get(table)
            if counters is None:
                counters = self._tables[table] = dict.fromkeys(COUNTERS, 0)
            counters[counter] = counters.get(counter, 0) + amount

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {table: dict(counters) for table, counters in self._tables.items()}

    def reset(self) -> None:
        with self._lock:
            self._tables.clear()


class ErrorReporter:
    """Logs each kind of cache-path error at most once per ``interval`` seconds."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, kind: str, error: BaseException) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        logger.warning(
            "momento-botocore: %s failed, the call went to DynamoDB: %s: %s%s",
            kind,
            type(error).__name__,
            error,
            more,
        )


#: The process-wide counters behind :func:`momento_botocore.stats`.
STATS = Stats()
