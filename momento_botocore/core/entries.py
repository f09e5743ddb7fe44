"""Contract 2: the cache entry format. Pure.

An entry is ``b"mbe1"`` (format and version), one kind byte, then for ITEM the
full item as compact JSON in DynamoDB's wire format with binary values as base64.
Anything else, or anything that does not decode to a well-formed item, is not an
entry: :func:`decode` returns None and the caller treats it as a miss.
"""

from __future__ import annotations

import ast
import base64
import binascii
import enum
import json
import marshal
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from momento_botocore.core.keys import binary_value

FORMAT_TAG = b"mbe1"


class EntryKind(enum.Enum):
    ITEM = b"I"
    ABSENT = b"A"
    TOMBSTONE = b"T"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    item: dict[str, Any] | None = None


_ABSENT = FORMAT_TAG + EntryKind.ABSENT.value
_TOMBSTONE = FORMAT_TAG + EntryKind.TOMBSTONE.value
_ITEM_PREFIX = FORMAT_TAG + EntryKind.ITEM.value
_ABSENT_ENTRY = Entry(EntryKind.ABSENT)
_TOMBSTONE_ENTRY = Entry(EntryKind.TOMBSTONE)
_SCALARS = frozenset({"S", "N"})

# Hot entries are decoded (and checked) once. The memo maps an ITEM entry's bytes
# to a builder of its item; each decode calls it for a new item. The first builder
# is a template: immutable values (str, bytes, bool) are shared, sets get new
# lists, and maps and lists are rebuilt by marshal.loads (in C) from a snapshot
# made here, from a checked item (marshal data never comes from outside the
# process). An entry decoded _COMPILE_AFTER times gets a compiled builder instead:
# a function whose body is the item as one dict display of constants, made from an
# expression tree of the template's values (no text is parsed), ~3x faster again.
# Every call still returns objects of its own to mutate, at a fraction of
# json.loads' cost. Bounded by count and by entry size; cleared when full.
_MEMO_SIZE = 4096
_MEMO_MAX_ENTRY_BYTES = 4096
_COMPILE_AFTER = 64
_SHARED, _LISTED, _MARSHALLED = 0, 1, 2
_IMMUTABLE = frozenset({"S", "N", "B", "BOOL", "NULL"})
_Template = tuple[tuple[str, str, Any, int], ...]
_Builder = Callable[[], dict[str, Any]]
_MEMO: dict[bytes, _Builder] = {}
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
    if data is None:
        return None
    if type(data) is bytes:
        build = _MEMO.get(data)
        if build is not None:
            return Entry(EntryKind.ITEM, build())
    if not data.startswith(FORMAT_TAG):
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
    if type(data) is bytes and len(data) <= _MEMO_MAX_ENTRY_BYTES:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        _MEMO[data] = _FromTemplate(data, _template(item))
    return Entry(EntryKind.ITEM, item)


def remembered_items(values: list[bytes | None]) -> list[dict[str, Any] | None]:
    """For each value, a new item when it is an ITEM entry that :func:`decode` has
    seen (and remembered); None otherwise (absent, or for :func:`decode` to tell).

    The hot path of a batch of hits: no checks and no Entry, for entries checked before.
    """
    get = _MEMO.get
    try:
        builders = [get(value) for value in values]  # type: ignore[arg-type]
    except TypeError:  # a value that is not bytes (and unhashable)
        builders = [_MEMO.get(value) if type(value) is bytes else None for value in values]
    if None not in builders:
        return [build() for build in builders]  # type: ignore[misc]
    return [None if build is None else build() for build in builders]


class _FromTemplate:
    """The first builder of a remembered item. After _COMPILE_AFTER calls, it puts a
    compiled builder in its place (and stays, should compiling fail)."""

    __slots__ = ("data", "template", "uses")

    def __init__(self, data: bytes, template: _Template) -> None:
        self.data = data
        self.template = template
        self.uses = 0

    def __call__(self) -> dict[str, Any]:
        self.uses += 1
        if self.uses == _COMPILE_AFTER:
            self._promote()
        return _from_template(self.template)

    def _promote(self) -> None:
        try:
            build = _compile(self.template)
            if build() != _from_template(self.template):  # never expected; cheap to check
                return
        except Exception:  # e.g. RecursionError for a deeply nested item: keep the template
            return
        if _MEMO.get(self.data) is self:  # not cleared (or replaced) meanwhile
            _MEMO[self.data] = build


def _compile(template: _Template) -> _Builder:
    """``lambda: {...}``: a function returning a new item equal to the template's, made
    from an expression tree whose leaves are the template's values (str, bytes, bool)."""
    loads = marshal.loads
    item = {
        name: {tag: raw if how == _SHARED else list(raw) if how == _LISTED else loads(raw)}
        for name, tag, raw, how in template
    }
    arguments = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    tree = ast.Expression(body=ast.Lambda(args=arguments, body=_display(item)))
    code = compile(ast.fix_missing_locations(tree), "<momento_botocore entry>", "eval")
    (body,) = (const for const in code.co_consts if isinstance(const, types.CodeType))
    build: _Builder = types.FunctionType(body, {"__builtins__": {}})
    return build


def _display(value: Any) -> ast.expr:
    """The expression that builds a new ``value``: displays for dicts and lists."""
    if type(value) is dict:
        return ast.Dict(
            keys=[ast.Constant(key) for key in value],
            values=[_display(member) for member in value.values()],
        )
    if type(value) is list:
        return ast.List(elts=[_display(member) for member in value], ctx=ast.Load())
    if type(value) in (str, bytes, bool):
        return ast.Constant(value)
    raise ValueError(f"not a value of a checked item: {type(value).__name__}")


def _template(item: dict[str, Any]) -> _Template:
    parts = []
    for name, value in item.items():
        ((tag, raw),) = value.items()
        if tag in _IMMUTABLE:
            parts.append((name, tag, raw, _SHARED))
        elif tag in _SCALAR_SETS or tag == "BS":
            parts.append((name, tag, tuple(raw), _LISTED))
        else:  # M, L: version 2 has no back-references, the fastest to load
            parts.append((name, tag, marshal.dumps(raw, 2), _MARSHALLED))
    return tuple(parts)


def _from_template(template: _Template) -> dict[str, Any]:
    loads = marshal.loads
    return {
        name: (
            {tag: raw}
            if how == _SHARED
            else {tag: list(raw)}
            if how == _LISTED
            else {tag: loads(raw)}
        )
        for name, tag, raw, how in template
    }


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"attribute names must be str, got {type(name).__name__}")
    return name


def _to_json(value: Any) -> Any:
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


def _convert(value: Any) -> dict[str, Any]:
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


def _from_json(value: Any) -> None:
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
