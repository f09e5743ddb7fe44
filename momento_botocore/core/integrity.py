"""Is a cached item the item that was asked for? Pure.

An entry stored under the wrong cache key (a bug elsewhere, a hand-made entry, a
key collision in a foreign writer) would be served as another item. Every cached
item is checked against the request's key before it is served; one that does not
match is garbage (deleted, counted, a miss).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from momento_botocore.core.keys import canonical_attribute


def key_matches(item: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    """True when ``item`` holds each attribute of ``key`` (wire format) with the same
    value, as the key codec compares them (``"1.0"`` is ``"1"``; a ``str`` binary
    is its UTF-8 bytes)."""
    for name, value in key.items():
        found = item.get(name)
        if found != value and (found is None or not _same_key_value(name, found, value)):
            return False
    return True


def all_keys_match(items: list[dict[str, Any]], keys: list[Mapping[str, Any]]) -> bool:
    """``key_matches`` for each pair; the batch path's check of a run of hits."""
    return all(map(key_matches, items, keys))


def _same_key_value(name: str, found: Any, wanted: Any) -> bool:
    """The slow path: equal as the key codec sees them (its own normalization)."""
    try:
        return canonical_attribute(name, found, "utf-8") == canonical_attribute(
            name, wanted, "utf-8"
        )
    except (ValueError, TypeError, AttributeError):
        return False
