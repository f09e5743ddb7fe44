"""Speed-ups of the hit path, kept apart from the contracts they shortcut.

Everything here returns what the pure functions it stands in for would return, and
is bounded by :class:`BoundedLRU`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A dict of at most ``size`` entries that forgets the least recently stored one.

    ``get`` does not reorder (a hit costs one dict lookup); ``put`` of a new key
    evicts the oldest put. Thread-safe enough for memos: a lost update costs a
    recomputation, never a wrong answer.
    """

    __slots__ = ("_entries", "_size", "get")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.get = self._entries.get

    def put(self, key: K, value: V) -> None:
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > self._size:
            try:
                entries.popitem(last=False)
            except KeyError:  # another thread emptied it
                break

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


#: Plans remembered per engine (by plan_token).
PLAN_MEMO_SIZE = 4096


def plan_token(params: Any, region: Any, account: str | None) -> tuple[Any, ...] | None:
    """What fully determines the plan of a GetItem with only TableName and a one-
    attribute Key (str or bytes value) made by a client of ``account`` in ``region``,
    as a hashable tuple; None for any other request."""
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
    return (table, region, account, name, tag, raw)
