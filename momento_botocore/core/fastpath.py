"""Speed-ups of the hit path, kept apart from the contracts they shortcut.

The contract modules (keys.py, entries.py) are the specification; each function
here returns what the pure function it stands in for would return, remembering
answers for inputs it has seen. Every memo is a :class:`BoundedLRU`. Measured in
benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import json.encoder
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Generic, TypeVar

from momento_botocore.core import entries, integrity, keys
from momento_botocore.core.entries import Entry, EntryKind
from momento_botocore.core.keys import BinaryText, TableRef

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

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def clear(self) -> None:
        self._entries.clear()


#: Entries per memo (plans per engine, tables, keys, items).
MEMO_SIZE = 4096
#: Tables (with their key attribute) whose one-attribute keys are remembered.
KEY_MEMO_TABLES = 64
#: Larger ITEM entries are decoded every time: their memo would hold too much.
ITEM_MEMO_MAX_BYTES = 4096
#: So are items nested deeper than DynamoDB's 32 levels (only garbage is).
MAX_DEPTH = 32

#: Plans remembered per engine (by plan_token).
PLAN_MEMO_SIZE = MEMO_SIZE


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


# Keys (core/keys.py) -------------------------------------------------------------
#
# Only inputs of exact types are remembered: a str subclass (a ``(str, Enum)``
# member) equals its text and hashes alike, yet the codec may read it differently,
# and a memoryview equals bytes while botocore refuses it. Those, and every key of
# more than two attributes, take the pure function every time. Only answers are
# remembered: an input that raises raises again.

#: The only raw value types remembered (no str equals a bytes).
_RAW_TYPES = frozenset({str, bytes})

_TABLES: BoundedLRU[tuple[str, str | None, str | None], TableRef] = BoundedLRU(MEMO_SIZE)
#: One-attribute keys, per (account, region, table, prefix, binary_text, name, type):
#: the raw value -> its key. A batch looks its keys up here without a tuple per key.
_ONE_ATTRIBUTE: BoundedLRU[tuple[str, ...], BoundedLRU[str | bytes, str]] = BoundedLRU(
    KEY_MEMO_TABLES
)
#: Two-attribute keys, by everything that determines them.
_TWO_ATTRIBUTES: BoundedLRU[tuple[Any, ...], str] = BoundedLRU(MEMO_SIZE)


def parse_table(
    table: str, default_region: str | None, default_account: str | None = None
) -> TableRef:
    """:func:`keys.parse_table`, remembered."""
    if (
        type(table) is str
        and (type(default_region) is str or default_region is None)
        and (default_account is None or keys.is_account(default_account))
    ):
        token = (table, default_region, default_account)
        found = _TABLES.get(token)
        if found is None:
            found = keys.parse_table(table, default_region, default_account)
            _TABLES.put(token, found)
        return found
    return keys.parse_table(table, default_region, default_account)


def cache_key(
    account: str,
    region: str,
    table: str,
    key_attributes: Mapping[str, Any],
    *,
    prefix: str = "",
    binary_text: BinaryText = "base64",
) -> str:
    """:func:`keys.cache_key`, remembered for keys of one or two attributes."""
    memo, token = _key_memo(account, region, table, key_attributes, prefix, binary_text)
    if memo is not None:
        found = memo.get(token)
        if found is not None:
            return found
    key = keys.cache_key(
        account, region, table, key_attributes, prefix=prefix, binary_text=binary_text
    )
    if memo is not None:
        memo.put(token, key)
    return key


def cache_keys(
    account: str,
    region: str,
    table: str,
    key_list: Sequence[Mapping[str, Any]],
    *,
    prefix: str = "",
    binary_text: BinaryText = "base64",
) -> list[str]:
    """:func:`keys.cache_keys`, remembered. The usual batch (one-attribute keys seen
    before) costs a few C-level passes: no tuple and no function call per key."""
    if key_list and _plain_text(account, region, table, prefix, binary_text):
        found = _remembered_keys(account, region, table, prefix, binary_text, key_list)
        if found is not None:
            return found
    keys.check_same_names(key_list)
    return [
        cache_key(account, region, table, key, prefix=prefix, binary_text=binary_text)
        for key in key_list
    ]


def _plain_text(account: Any, region: Any, table: Any, prefix: Any, binary_text: Any) -> bool:
    return (
        type(account) is str
        and type(region) is str
        and type(table) is str
        and type(prefix) is str
        and type(binary_text) is str
    )


def _key_memo(
    account: Any, region: Any, table: Any, key_attributes: Any, prefix: Any, binary_text: Any
) -> tuple[BoundedLRU[Any, str] | None, Any]:
    """Where the key of these inputs is remembered, and under what: the table's memo
    and the raw value for a one-attribute key, the two-attribute memo and everything
    for a two-attribute key; ``(None, None)`` for inputs that are not remembered."""
    if type(key_attributes) is not dict or not _plain_text(
        account, region, table, prefix, binary_text
    ):
        return None, None
    if len(key_attributes) == 1:
        ((name, value),) = key_attributes.items()
        if type(name) is str and type(value) is dict and len(value) == 1:
            ((tag, raw),) = value.items()
            if type(raw) in _RAW_TYPES:
                where = (account, region, table, prefix, binary_text, name, tag)
                memo = _ONE_ATTRIBUTE.get(where)
                if memo is None:
                    memo = BoundedLRU(MEMO_SIZE)
                    _ONE_ATTRIBUTE.put(where, memo)
                return memo, raw
    elif len(key_attributes) == 2:
        (name, value), (name2, value2) = key_attributes.items()
        if (
            type(name) is str
            and type(name2) is str
            and type(value) is dict
            and type(value2) is dict
            and len(value) == 1
            and len(value2) == 1
        ):
            ((tag, raw),) = value.items()
            ((tag2, raw2),) = value2.items()
            if type(raw) in _RAW_TYPES and type(raw2) in _RAW_TYPES:
                token = (account, region, table, prefix, binary_text, name, tag, raw)
                return _TWO_ATTRIBUTES, (*token, name2, tag2, raw2)
    return None, None


def _remembered_keys(
    account: str,
    region: str,
    table: str,
    prefix: str,
    binary_text: str,
    key_list: Sequence[Any],
) -> list[str] | None:
    """The keys of one-attribute ``key_list`` when each is well formed and remembered;
    else None (the caller takes the general path, which remembers them)."""
    first = key_list[0]
    if type(first) is not dict or len(first) != 1:
        return None
    ((name, value),) = first.items()
    if type(name) is not str or type(value) is not dict or len(value) != 1:
        return None
    ((tag, _),) = value.items()
    memo = _ONE_ATTRIBUTE.get((account, region, table, prefix, binary_text, name, tag))
    if memo is None:
        return None
    try:
        values = list(map(itemgetter(name), key_list))
        if set(map(len, key_list)) != {1} or set(map(len, values)) != {1}:
            return None  # extra attributes or types: not this fast path's business
        raws = list(map(itemgetter(tag), values))
        if not _RAW_TYPES.issuperset(map(type, raws)):
            return None  # the memo holds exact str and bytes values only
        found = list(map(memo.get, raws))
    except (KeyError, TypeError):  # another shape, or an unhashable value
        return None
    return None if None in found else found  # type: ignore[return-value]


# Items (core/entries.py) ---------------------------------------------------------
#
# An ITEM entry is decoded and checked once; the memo keeps, by the entry's bytes, a
# template of its item, and every hit gets a new item built from it: new dicts and
# lists all the way down, immutable values (str, bytes, bool) shared. Callers and
# boto3 may change what they get in place.
#
# A template is the item as (name, type, value, copy) entries: ``copy`` is None for
# an immutable value (shared as it is), else the function that makes a new value:
# fresh_item for a map (``value`` is its template), _fresh_list for a list (``value``
# is its members as (type, value, copy)), list for a set (``value`` is a tuple).

#: Attribute types whose value is immutable (str, bytes or bool): shared by every copy.
_SHARED = frozenset({"S", "N", "B", "BOOL", "NULL"})

Copy = Callable[[Any], Any]
Template = tuple[tuple[str, str, Any, "Copy | None"], ...]

_ITEMS: BoundedLRU[bytes, Template] = BoundedLRU(MEMO_SIZE)


def decode(data: bytes | None) -> Entry | None:
    """:func:`entries.decode`, remembered for ITEM entries up to ITEM_MEMO_MAX_BYTES."""
    if type(data) is bytes:
        template = _ITEMS.get(data)
        if template is not None:
            return Entry(EntryKind.ITEM, fresh_item(template))
    entry = entries.decode(data)
    if (
        entry is not None
        and entry.item is not None
        and type(data) is bytes
        and len(data) <= ITEM_MEMO_MAX_BYTES
    ):
        with contextlib.suppress(ValueError):  # too deep: decoded every time
            _ITEMS.put(data, template_of(entry.item))
    return entry


def remembered_items(values: list[bytes | None]) -> list[dict[str, Any] | None]:
    """For each value, a new item when it is an ITEM entry that :func:`decode` has
    seen (and remembered); None otherwise (absent, or for :func:`decode` to tell).

    The hot path of a batch of hits: no checks and no Entry, for entries checked before.
    """
    get = _ITEMS.get
    try:
        templates = list(map(get, values))  # type: ignore[arg-type]
    except TypeError:  # a value that is not bytes (and unhashable)
        templates = [get(value) if type(value) is bytes else None for value in values]
    if None not in templates:
        return list(map(fresh_item, templates))  # type: ignore[arg-type]
    return [None if template is None else fresh_item(template) for template in templates]


def fresh_item(template: Template) -> dict[str, Any]:
    """A new item (or map) built from its template."""
    # Loops, not comprehensions: before Python 3.12 each comprehension makes a function.
    item = {}
    for name, tag, value, copy in template:
        item[name] = {tag: value} if copy is None else {tag: copy(value)}
    return item


def _fresh_list(members: tuple[tuple[str, Any, Copy | None], ...]) -> list[dict[str, Any]]:
    values = []
    for tag, value, copy in members:
        values.append({tag: value} if copy is None else {tag: copy(value)})
    return values


def template_of(item: dict[str, Any], depth: int = 0) -> Template:
    """The template of a checked item (or map) in wire format. Raises ValueError for
    one nested deeper than DynamoDB allows: building it could exhaust the stack."""
    return tuple(
        (name, *_template_value(tag, raw, depth))
        for name, value in item.items()
        for tag, raw in value.items()
    )


def _template_value(tag: str, raw: Any, depth: int) -> tuple[str, Any, Copy | None]:
    """``(type, value, copy)`` of one attribute value (see Template)."""
    if tag in _SHARED:
        return tag, raw, None
    if depth >= MAX_DEPTH:
        raise ValueError("nested deeper than DynamoDB allows")
    if tag == "M":
        return tag, template_of(raw, depth + 1), fresh_item
    if tag == "L":
        members = tuple(
            _template_value(member_tag, member_raw, depth + 1)
            for member in raw
            for member_tag, member_raw in member.items()
        )
        return tag, members, _fresh_list
    return tag, tuple(raw), list  # SS, NS, BS


# Query and Scan pages (core/queries.py) ---------------------------------------------
#
# A page's plan is remembered by its request as JSON text (the C encoder: about 1 us):
# exactly the inputs the plan reads, for requests made of dicts, lists, str, int,
# float, bool and None. Anything else (bytes, Decimal, a custom Mapping) cannot be
# written as JSON and is planned every time. Two requests the encoder writes alike
# and that differ (a tuple for a list, a non-str dict key) are planned alike too.

#: Decoded pages remembered (their templates), and the largest entry remembered.
PAGE_MEMO_SIZE = 1024
PAGE_MEMO_MAX_BYTES = 64 * 1024

_REQUEST_TEXT = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def page_plan_token(
    operation: str, params: Any, region: Any, account: str | None
) -> tuple[Any, ...] | None:
    """What fully determines the plan of a Query or Scan ``params`` made by a client of
    ``account`` in ``region``, as a hashable tuple; None when it cannot be told cheaply."""
    if _REQUEST_TEXT is None or account is None or type(params) is not dict:
        return None
    if region is not None and type(region) is not str:
        return None
    try:
        chunks = _REQUEST_TEXT(params, 0)
    except (TypeError, ValueError, RecursionError):
        return None
    return (operation, region, account, chunks[0] if len(chunks) == 1 else "".join(chunks))


#: A page as (its items' templates or None, its counts, its LastEvaluatedKey's template).
PageTemplate = tuple["tuple[Template, ...] | None", tuple[tuple[str, Any], ...], "Template | None"]
_PAGES: BoundedLRU[bytes, PageTemplate] = BoundedLRU(PAGE_MEMO_SIZE)


def decoded_page(raw: bytes | None) -> dict[str, Any] | None:
    """:func:`queries.decode_page`, remembered for entries up to PAGE_MEMO_MAX_BYTES: a
    remembered page is built anew from its template (new dicts and lists)."""
    template = _PAGES.get(raw) if type(raw) is bytes else None
    if template is not None:
        items, counts, last = template
        page: dict[str, Any] = {}
        if items is not None:
            page["Items"] = list(map(fresh_item, items))
        page.update(counts)
        if last is not None:
            page["LastEvaluatedKey"] = fresh_item(last)
        return page
    from momento_botocore.core.queries import decode_page  # it imports this module

    decoded = decode_page(raw)
    if decoded is not None and type(raw) is bytes and len(raw) <= PAGE_MEMO_MAX_BYTES:
        _remember_page(raw, decoded)
    return decoded


def _remember_page(raw: bytes, page: dict[str, Any]) -> None:
    try:
        items = page.get("Items")
        last = page.get("LastEvaluatedKey")
        template = (
            None if items is None else tuple(map(template_of, items)),
            tuple((name, value) for name, value in page.items() if type(value) is int),
            None if last is None else template_of(last),
        )
    except ValueError:  # too deep: decoded every time
        return
    _PAGES.put(raw, template)


def all_keys_match(items: list[dict[str, Any]], key_list: list[Mapping[str, Any]]) -> bool:
    """:func:`integrity.all_keys_match`, first by plain equality of the key attributes
    (the usual batch of hits: every item holds its key exactly as requested)."""
    if key_list:
        try:
            pick = itemgetter(*key_list[0])
            if list(map(pick, items)) == list(map(pick, key_list)):
                return True
        except (KeyError, TypeError):  # an item without the attribute, an odd key
            pass
    return integrity.all_keys_match(items, key_list)


def forget() -> None:
    """Forget every remembered key and item (tests; answers do not change)."""
    for memo in (_TABLES, _ONE_ATTRIBUTE, _TWO_ATTRIBUTES, _ITEMS, _PAGES):
        memo.clear()
