"""The backend protocol: bytes in, bytes out, every entry with a TTL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class BackendError(Exception):
    """A cache operation failed (unreachable, timed out, refused).

    Backends raise it (or any exception); the read path treats every failure as
    a miss, and the stream invalidator reports the record as failed.
    """


@runtime_checkable
class Backend(Protocol):
    """What the read hooks and the stream invalidator need from a cache."""

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None when there is none."""
        ...

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Store only if ``key`` holds nothing; True when this call stored it."""
        ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store unconditionally."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A backend that can look many keys up in one call (optional: the read path
    falls back to :meth:`Backend.get` per key for backends without it)."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values stored under ``keys``, in the same order (None where there is
        none). Raises when the lookup failed: then every key counts as a miss."""
        ...
