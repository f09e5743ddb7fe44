"""The ast-compiled item builders the package had before issue 12, to measure them side
by side with core/fastpath.py's plain templates (the ``hit`` and ``batch`` benchmarks'
"compiled" variants swap these into the engine).

An entry's builder is a function whose body is the item as one dict display of
constants, made from an expression tree (no text is parsed); each call returns new
dicts and lists, sharing the immutable values.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from typing import Any

from momento_botocore.core import engine, entries
from momento_botocore.core.entries import Entry, EntryKind

_Builder = Callable[[], dict[str, Any]]
_MEMO: dict[bytes, _Builder] = {}


def decode(data: bytes | None) -> Entry | None:
    if type(data) is bytes:
        build = _MEMO.get(data)
        if build is not None:
            return Entry(EntryKind.ITEM, build())
    entry = entries.decode(data)
    if entry is not None and entry.item is not None and type(data) is bytes and len(data) <= 4096:
        _MEMO[data] = _compile(entry.item)
    return entry


def remembered_items(values: list[bytes | None]) -> list[dict[str, Any] | None]:
    get = _MEMO.get
    builders = [get(value) for value in values]  # type: ignore[arg-type]
    if None not in builders:
        return [build() for build in builders]  # type: ignore[misc]
    return [None if build is None else build() for build in builders]


def _compile(item: dict[str, Any]) -> _Builder:
    arguments = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    tree = ast.Expression(body=ast.Lambda(args=arguments, body=_display(item)))
    code = compile(ast.fix_missing_locations(tree), "<momento_botocore entry>", "eval")
    (body,) = (const for const in code.co_consts if isinstance(const, types.CodeType))
    build: _Builder = types.FunctionType(body, {"__builtins__": {}})
    return build


def _display(value: Any) -> ast.expr:
    if type(value) is dict:
        return ast.Dict(
            keys=[ast.Constant(key) for key in value],
            values=[_display(member) for member in value.values()],
        )
    if type(value) is list:
        return ast.List(elts=[_display(member) for member in value], ctx=ast.Load())
    return ast.Constant(value)


_PLAIN = {name: vars(engine)[name] for name in ("decode", "remembered_items")}


def use_compiled() -> None:
    vars(engine).update(decode=decode, remembered_items=remembered_items)


def use_plain() -> None:
    vars(engine).update(_PLAIN)
