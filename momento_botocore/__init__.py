"""momento-botocore: a transparent cache in front of DynamoDB reads made with boto3/botocore.

import momento_botocore
momento_botocore.register(session, ttl=300)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from momento_botocore.backends import (
    Backend,
    BackendError,
    CircuitBreakerBackend,
    CircuitOpenError,
    MemoryBackend,
)
from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.counters import STATS
from momento_botocore.registration import Registration, register, unregister_all

if TYPE_CHECKING:
    from momento_botocore.backends.momento import MomentoBackend


def stats(*, reset: bool = False) -> dict[str, dict[str, int]]:
    """Counters per table: hits, misses, fills, fills_skipped, bypasses, errors;
    invalidations once writes through a registered client have tombstoned entries;
    tombstones_pending/retried/dropped/overflowed when a tombstone could not be written.
    """
    snapshot = STATS.snapshot()
    if reset:
        STATS.reset()
    return snapshot


def __getattr__(name: str) -> object:
    # MomentoBackend loads the momento SDK (and grpc): only when it is asked for.
    if name == "MomentoBackend":
        from momento_botocore.backends.momento import MomentoBackend

        return MomentoBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "CacheConfig",
    "CircuitBreakerBackend",
    "CircuitOpenError",
    "ConfigurationError",
    "MemoryBackend",
    "MomentoBackend",
    "Registration",
    "__version__",
    "register",
    "stats",
    "unregister_all",
]
