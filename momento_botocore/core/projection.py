"""Projections (``ProjectionExpression`` or ``AttributesToGet``) applied to a full item. Pure.

The cache holds one full item per key; a projected read is answered by applying
the projection here, giving exactly what DynamoDB would give:

* each document path that exists in the item is kept, at its place: map paths
  keep their nesting, list indexes select elements and the selected elements are
  returned in index order (the list is compacted);
* paths that do not exist (a missing name, an index past the end, a name into a
  non-map, an index into a non-list) are left out silently;
* an item that has none of the paths is ``{}`` (``Item: {}``), not "no item".

Anything DynamoDB would reject, or might (reserved words, unused or undefined
``#names``, overlapping or conflicting paths, odd syntax), raises
:class:`InvalidProjection`: the caller then sends the request through untouched
and the user gets DynamoDB's own answer or error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from momento_botocore._reserved_words import RESERVED_WORDS

#: The request parameters that make a read projected.
PROJECTION_PARAMS = ("ProjectionExpression", "ExpressionAttributeNames", "AttributesToGet")

_MAX_DEPTH = 32  # DynamoDB's limit on the nesting of a document path
_MAX_EXPRESSION_BYTES = 4096  # DynamoDB's limit on any expression string
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"#[A-Za-z0-9_]+")
_INDEX = re.compile(r"\[(0|[1-9][0-9]{0,8})\]")
_ELEMENT = re.compile(r"\.?(#[A-Za-z0-9_]+|[A-Za-z][A-Za-z0-9_]*)|\[(0|[1-9][0-9]{0,8})\]")

# A trie of the requested paths: map name (str) or list index (int) -> sub-trie,
# or None where a path ends (the whole value below is taken).
Trie = dict[str | int, "Trie | None"]


class InvalidProjection(ValueError):
    """A projection the cache will not answer; the request goes to DynamoDB as it is."""


@dataclass(frozen=True, slots=True)
class Projection:
    """A parsed projection; :meth:`apply` cuts a full item down to it."""

    paths: tuple[tuple[str | int, ...], ...]
    trie: Trie

    def apply(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The projected copy of a full item in wire format (shares leaf values)."""
        return _project_map(self.trie, item)


def parse_projection(params: Mapping[str, Any]) -> Projection | None:
    """The projection of a GetItem (or one BatchGetItem table's) parameters, or None.

    Raises InvalidProjection for anything the cache should not answer itself.
    """
    expression = params.get("ProjectionExpression")
    names = params.get("ExpressionAttributeNames")
    attributes = params.get("AttributesToGet")
    if expression is not None and attributes is not None:
        raise InvalidProjection("both ProjectionExpression and AttributesToGet")
    if attributes is not None:
        if names is not None:
            raise InvalidProjection("ExpressionAttributeNames without an expression")
        return _from_attributes(attributes)
    if expression is not None:
        return parse_expression(expression, names)
    if names is not None:
        raise InvalidProjection("ExpressionAttributeNames without an expression")
    return None


def parse_expression(expression: Any, names: Any = None) -> Projection:
    """Parse a ProjectionExpression with its ExpressionAttributeNames."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidProjection("empty or non-string ProjectionExpression")
    if len(expression.encode("utf-8", "surrogatepass")) > _MAX_EXPRESSION_BYTES:
        raise InvalidProjection("ProjectionExpression longer than 4 KB")
    if names is None:
        names = {}
    elif not isinstance(names, Mapping) or not names:
        raise InvalidProjection("ExpressionAttributeNames must be a non-empty map")
    for placeholder, name in names.items():
        if not isinstance(placeholder, str) or _PLACEHOLDER.fullmatch(placeholder) is None:
            raise InvalidProjection(f"bad placeholder {placeholder!r}")
        if not isinstance(name, str) or not name:
            raise InvalidProjection(f"bad attribute name for {placeholder!r}")
    used: set[str] = set()
    paths = [_parse_path(text.strip(), names, used) for text in expression.split(",")]
    if used != set(names):
        raise InvalidProjection("ExpressionAttributeNames has unused placeholders")
    return _build(paths)


def _parse_path(text: str, names: Mapping[str, str], used: set[str]) -> tuple[str | int, ...]:
    if not text or text[0] in ".[":
        raise InvalidProjection(f"bad document path {text!r}")
    path: list[str | int] = []
    position = 0
    while position < len(text):
        match = _ELEMENT.match(text, position)
        if match is None or (position > 0 and match.group(0)[0] not in ".["):
            raise InvalidProjection(f"bad document path {text!r}")
        name, index = match.group(1), match.group(2)
        if name is None:
            path.append(int(index))
        elif name.startswith("#"):
            if name not in names:
                raise InvalidProjection(f"undefined placeholder {name!r}")
            used.add(name)
            path.append(names[name])
        else:
            if name.upper() in RESERVED_WORDS:
                raise InvalidProjection(f"reserved word {name!r}")
            path.append(name)
        position = match.end()
    if len(path) > _MAX_DEPTH:
        raise InvalidProjection("document path nested too deeply")
    return tuple(path)


def _from_attributes(attributes: Any) -> Projection:
    if isinstance(attributes, (str, bytes)) or not isinstance(attributes, Sequence):
        raise InvalidProjection("AttributesToGet must be a list")
    if not attributes or not all(isinstance(name, str) and name for name in attributes):
        raise InvalidProjection("AttributesToGet must be a non-empty list of names")
    if len(set(attributes)) != len(attributes):
        raise InvalidProjection("AttributesToGet has duplicates")
    return _build([(name,) for name in attributes])


def _build(paths: list[tuple[str | int, ...]]) -> Projection:
    """The trie of ``paths``; overlapping or conflicting paths are invalid, as in DynamoDB."""
    trie: Trie = {}
    for path in paths:
        if not path or not isinstance(path[0], str):
            raise InvalidProjection("a document path starts with an attribute name")
        node = trie
        for depth, element in enumerate(path):
            if node and isinstance(next(iter(node)), str) != isinstance(element, str):
                raise InvalidProjection("two document paths conflict")
            last = depth == len(path) - 1
            if element in node:
                child = node[element]
                if last or child is None:
                    raise InvalidProjection("two document paths overlap")
                node = child
            elif last:
                node[element] = None
            else:
                child = node[element] = {}
                node = child
    return Projection(tuple(paths), trie)


def _project_map(trie: Trie, mapping: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, below in trie.items():
        value = mapping.get(name)  # type: ignore[arg-type]
        if value is None:
            continue
        if below is None:
            result[name] = value  # type: ignore[index]
        else:
            projected = _project_value(below, value)
            if projected is not None:
                result[name] = projected  # type: ignore[index]
    return result


def _project_value(trie: Trie, value: Mapping[str, Any]) -> dict[str, Any] | None:
    """The part of ``value`` below ``trie``, or None when nothing there exists."""
    if isinstance(next(iter(trie)), str):
        members = value.get("M")
        if not isinstance(members, Mapping):
            return None
        projected = _project_map(trie, members)
        return {"M": projected} if projected else None
    elements = value.get("L")
    if not isinstance(elements, list):
        return None
    selected: list[Any] = []
    for index in sorted(trie):  # type: ignore[type-var,unused-ignore]
        assert isinstance(index, int)
        if index >= len(elements):
            break
        below = trie[index]
        if below is None:
            selected.append(elements[index])
        else:
            element = _project_value(below, elements[index])
            if element is not None:
                selected.append(element)
    return {"L": selected} if selected else None
