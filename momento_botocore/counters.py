"""Per-table counters of the cache path, behind :func:`momento_botocore.stats`."""

from __future__ import annotations

import threading

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

    def tally(self, section: str, counter: str, amount: int = 1) -> None:
        """Count under a section that is not a table (no table counters made for it)."""
        with self._lock:
            counters = self._tables.setdefault(section, {})
            counters[counter] = counters.get(counter, 0) + amount

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {table: dict(counters) for table, counters in self._tables.items()}

    def reset(self) -> None:
        with self._lock:
            self._tables.clear()


#: The process-wide counters behind :func:`momento_botocore.stats`.
STATS = Stats()
