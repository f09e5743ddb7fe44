"""Which cache a backend stores in: :func:`cache_identity`, and :class:`SameObject` for a
cache known only by the backend object in front of it. Knows nothing of backends
beyond an optional ``cache_identity()`` method, so every layer may import it."""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import Any

__all__ = ["SameObject", "cache_identity"]


def cache_identity(backend: Any) -> Hashable:
    """The identity of the cache ``backend`` stores in: its ``cache_identity()``, else
    :class:`SameObject` (the backend object itself, held weakly)."""
    identify = getattr(backend, "cache_identity", None)
    if callable(identify):
        identity = identify()
        if identity is not None:
            return identity  # type: ignore[no-any-return]
    return SameObject(backend)


class SameObject:
    """The identity of a cache known only by the backend object in front of it: equal
    to another only for the same object. Holds it weakly when it can (``target``
    then becomes None once it is gone)."""

    __slots__ = ("_id", "_ref", "_strong")

    def __init__(self, backend: object) -> None:
        self._id = id(backend)
        self._ref: weakref.ReferenceType[Any] | None
        self._strong: object | None
        try:
            self._ref, self._strong = weakref.ref(backend), None
        except TypeError:  # not weakly referenceable
            self._ref, self._strong = None, backend

    @property
    def weak(self) -> bool:
        return self._ref is not None

    def target(self) -> object | None:
        return self._strong if self._ref is None else self._ref()

    def __hash__(self) -> int:
        return self._id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SameObject):
            return NotImplemented
        target = self.target()
        return target is not None and target is other.target()

    def __repr__(self) -> str:
        return f"SameObject({type(self.target()).__name__} at {self._id:#x})"
