"""momento-botocore: a transparent cache in front of DynamoDB reads made with boto3/botocore.

import momento_botocore
momento_botocore.register(session, ttl=300)
"""

from __future__ import annotations

from momento_botocore.backends import Backend, BackendError, MemoryBackend
from momento_botocore.config import CacheConfig, ConfigurationError
from momento_botocore.registration import Registration, register, unregister_all
from momento_botocore.stats import STATS


def stats(*, reset: bool = False) -> dict[str, dict[str, int]]:
    """Counters per table: hits, misses, fills, fills_skipped, bypasses, errors;
    invalidations once writes through a registered client have tombstoned entries.
    """
    snapshot = STATS.snapshot()
    if reset:
        STATS.reset()
    return snapshot


__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "CacheConfig",
    "ConfigurationError",
    "MemoryBackend",
    "Registration",
    "__version__",
    "register",
    "stats",
    "unregister_all",
]
