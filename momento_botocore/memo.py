"""Small in-process memos for the batch path: cache keys and decoded entries. Pure.

A BatchGetItem of 100 hits spends most of its time computing 100 cache keys and
decoding 100 entries. Both are pure functions of their input, so the answers are
remembered (bounded, cleared when full): a remembered key costs a dict lookup, a
remembered item is rebuilt with ``marshal`` (several times faster than decoding
the JSON again), and each call still gets objects of its own to mutate.
"""

from __future__ import annotations

import marshal
import threading
from collections.abc import Mapping
from typing import Any

from momento_botocore.entries import FORMAT_TAG, Entry, EntryKind, decode
from momento_botocore.keys import BinaryText, cache_key


class KeyMemo:
    """``cache_key`` with the answers for recently seen keys remembered."""

    def __init__(self, max_entries: int = 65_536) -> None:
        self._max = max_entries
        self._keys: dict[tuple[Any, ...], str] = {}

    def key(
        self,
        region: str,
        table: str,
        key_attributes: Mapping[str, Any],
        *,
        prefix: str,
        binary_text: BinaryText,
    ) -> str:
        token = _token(region, table, prefix, binary_text, key_attributes)
        if token is not None:
            found = self._keys.get(token)
            if found is not None:
                return found
        coded = cache_key(region, table, key_attributes, prefix=prefix, binary_text=binary_text)
        if token is not None:
            if len(self._keys) >= self._max:
                self._keys.clear()
            self._keys[token] = coded
        return coded


def _token(
    region: str, table: str, prefix: str, text: str, key_attributes: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """A hashable, exact stand-in for the arguments; None when there is none."""
    if len(key_attributes) == 1:  # the common case, without the list
        ((name, value),) = key_attributes.items()
        if type(value) is not dict or len(value) != 1:
            return None
        ((tag, raw),) = value.items()
        if type(raw) is not str and type(raw) is not bytes:
            return None
        return (region, table, prefix, text, name, tag, raw)
    parts: list[tuple[str, str, Any]] = []
    for name, value in key_attributes.items():
        if type(value) is not dict or len(value) != 1:
            return None
        ((tag, raw),) = value.items()
        if type(raw) is not str and type(raw) is not bytes:
            return None
        parts.append((name, tag, raw))
    if len(parts) > 1:
        parts.sort()
    return (region, table, prefix, text, *parts)  # parts are tuples: never a one-part token


class EntryMemo:
    """``decode`` with recently decoded ITEM entries remembered (bounded by bytes)."""

    def __init__(self, max_bytes: int = 8 * 1024 * 1024, max_entry_bytes: int = 16 * 1024) -> None:
        self._max_bytes = max_bytes
        self._max_entry = max_entry_bytes
        self._items: dict[bytes, bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def servable(self, raw: bytes) -> tuple[dict[str, Any] | None] | None:
        """``(item,)`` for ITEM, ``(None,)`` for ABSENT; None for TOMBSTONE or garbage."""
        packed = self._items.get(raw)
        if packed is not None:
            return (marshal.loads(packed),)
        entry = self.decode(raw)
        if entry is None or entry.kind is EntryKind.TOMBSTONE:
            return None
        return (entry.item,)

    def decode(self, raw: bytes) -> Entry | None:
        packed = self._items.get(raw)
        if packed is not None:
            return Entry(EntryKind.ITEM, marshal.loads(packed))
        entry = decode(raw)
        if entry is not None and entry.kind is EntryKind.ITEM and len(raw) <= self._max_entry:
            packed = marshal.dumps(entry.item)
            size = len(raw) + len(packed)
            with self._lock:
                if self._bytes + size > self._max_bytes:
                    self._items.clear()
                    self._bytes = 0
                if raw not in self._items:
                    self._items[raw] = packed
                    self._bytes += size
        return entry


def is_entry(raw: bytes) -> bool:
    """Whether ``raw`` decodes to an entry (of any kind)."""
    return raw.startswith(FORMAT_TAG) and decode(raw) is not None
