"""Contract 2: the cache entry format. Pure.

An entry is ``b"mbe1"`` (format and version), one kind byte, then for ITEM the
full item as compact JSON in DynamoDB's wire format with binary values as base64.
Anything else, or anything that does not decode to a well-formed item, is not an
entry: :func:`decode` returns None and the caller treats it as a miss.

This module is the specification, with no memo; the read path decodes hot entries
through core/fastpath.py, which returns what :func:`decode` returns.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from momento_botocore.core.keys import binary_value

FORMAT_TAG = b"mbe1"


class EntryKind(enum.Enum):
    ITEM = b"I"
    ABSENT = b"A"
    TOMBSTONE = b"T"


class Entry(NamedTuple):
    """A decoded entry: its kind, and the item of an ITEM entry (a fresh copy).
    A named tuple: made on every hit, it costs a third of a frozen dataclass."""

    kind: EntryKind
    item: dict[str, Any] | None = None


_ABSENT = FORMAT_TAG + EntryKind.ABSENT.value
_TOMBSTONE = FORMAT_TAG + EntryKind.TOMBSTONE.value
_ITEM_PREFIX = FORMAT_TAG + EntryKind.ITEM.value
_ABSENT_ENTRY = Entry(EntryKind.ABSENT)
_TOMBSTONE_ENTRY = Entry(EntryKind.TOMBSTONE)
_SCALARS = frozenset({"S", "N"})
_SCALAR_SETS = frozenset({"SS", "NS"})
# One encoder for every entry: json.dumps with options builds a new one per call.
# No circular-reference tracking (a third of the encoding time): items come from
# JSON or from botocore's parser, and _to_json has walked every container already.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def encode_item(item: Mapping[str, Any]) -> bytes:
    """An ITEM entry. ``B`` values may be bytes or base64 text (as in stream events).
    Raises ValueError for anything that is not an item, nested too deep to encode included."""
    if not isinstance(item, Mapping):
        raise ValueError("an item must be a mapping of attribute names to values")
    try:
        wire = {
            name if type(name) is str else _name(name): _to_json(value)
            for name, value in item.items()
        }
        return _ITEM_PREFIX + _ENCODER.encode(wire).encode("utf-8", "surrogatepass")
    except RecursionError:
        raise ValueError("the item is nested too deep to encode") from None


def encode_absent() -> bytes:
    return _ABSENT


def encode_tombstone() -> bytes:
    return _TOMBSTONE


def decode(data: bytes | None) -> Entry | None:
    """The entry stored in ``data``, or None when it is not one of ours.

    Every call returns a new item: callers (and boto3) may change it in place.
    """
    if data is None or not data.startswith(FORMAT_TAG):
        return None
    if data == _ABSENT:
        return _ABSENT_ENTRY
    if data == _TOMBSTONE:
        return _TOMBSTONE_ENTRY
    if not data.startswith(_ITEM_PREFIX):
        return None
    try:
        item = json.loads(data[len(_ITEM_PREFIX) :].decode("utf-8", "surrogatepass"))
        if type(item) is not dict:
            return None
        for value in item.values():
            _from_json(value)
    except (ValueError, TypeError, AttributeError, binascii.Error, RecursionError):
        return None
    return Entry(EntryKind.ITEM, item)


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"attribute names must be str, got {type(name).__name__}")
    return name


# C901: one branch per DynamoDB attribute type (a closed set), inline: the encoder's hot path.
def _to_json(value: Any) -> Any:  # noqa: C901
    """``value`` ready for ``json.dumps``: itself when it already is (the common case:
    an item botocore parsed), else a converted copy. Raises ValueError when invalid."""
    if type(value) is dict and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "S" or tag == "N":
            if type(raw) is str:
                return value
        elif tag == "BOOL" or tag == "NULL":
            if type(raw) is bool:
                return value
        elif tag == "SS" or tag == "NS":
            if type(raw) is list and all(type(member) is str for member in raw):
                return value
        elif tag == "M":
            if type(raw) is dict:
                return {
                    "M": {k if type(k) is str else _name(k): _to_json(v) for k, v in raw.items()}
                }
        elif tag == "L" and type(raw) is list:
            return {"L": [_to_json(member) for member in raw]}
    return _convert(value)


# C901: one branch per DynamoDB attribute type (a closed set).
def _convert(value: Any) -> dict[str, Any]:  # noqa: C901
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"not an attribute value: {value!r}")
    ((tag, raw),) = value.items()
    if tag in _SCALARS:
        if not isinstance(raw, str):
            raise ValueError(f"{tag} value must be a str")
        return {tag: raw}
    if tag == "B":
        return {"B": _b64(raw)}
    if tag == "BOOL" or tag == "NULL":
        if not isinstance(raw, bool):
            raise ValueError(f"{tag} value must be a bool")
        return {tag: raw}
    if tag in _SCALAR_SETS:
        if not all(isinstance(member, str) for member in raw):
            raise ValueError(f"{tag} members must be str")
        return {tag: list(raw)}
    if tag == "BS":
        return {"BS": [_b64(member) for member in raw]}
    if tag == "M":
        return {"M": {_name(k): _to_json(v) for k, v in raw.items()}}
    if tag == "L":
        return {"L": [_to_json(member) for member in raw]}
    raise ValueError(f"unknown attribute type {tag!r}")


def _b64(raw: Any) -> str:
    return base64.b64encode(binary_value(raw, "base64")).decode("ascii")


# C901: one branch per DynamoDB attribute type (a closed set), inline: the decoder's hot path.
def _from_json(value: Any) -> None:  # noqa: C901
    """Check one decoded attribute value, turning base64 text back into bytes in place."""
    if type(value) is not dict or len(value) != 1:
        raise ValueError("not an attribute value")
    tag = next(iter(value))
    raw = value[tag]
    if tag in _SCALARS:
        if type(raw) is not str:
            raise ValueError(tag)
    elif tag == "M":
        if type(raw) is not dict:
            raise ValueError(tag)
        for member in raw.values():
            _from_json(member)
    elif tag == "L":
        if type(raw) is not list:
            raise ValueError(tag)
        for member in raw:
            _from_json(member)
    elif tag == "B":
        value["B"] = base64.b64decode(raw, validate=True)
    elif tag == "BOOL" or tag == "NULL":
        if type(raw) is not bool:
            raise ValueError(tag)
    elif tag in _SCALAR_SETS:
        if type(raw) is not list or not all(type(member) is str for member in raw):
            raise ValueError(tag)
    elif tag == "BS":
        if type(raw) is not list:
            raise ValueError(tag)
        value["BS"] = [base64.b64decode(member, validate=True) for member in raw]
    else:
        raise ValueError(tag)
