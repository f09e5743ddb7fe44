"""Cache backends behind one small protocol."""

from typing import TYPE_CHECKING

from momento_botocore.backends.base import (
    AsyncBackend,
    Backend,
    BackendError,
    BatchBackend,
    BulkWriteBackend,
    CounterBackend,
    IdentifiedBackend,
    NotACounterError,
)
from momento_botocore.backends.guarded import (
    AsyncCircuitBreakerBackend,
    CircuitBreakerBackend,
    CircuitOpenError,
)
from momento_botocore.backends.memory import AsyncMemoryBackend, MemoryBackend
from momento_botocore.identity import cache_identity

if TYPE_CHECKING:
    from momento_botocore.backends.momento import MomentoBackend
    from momento_botocore.backends.momento_async import AsyncMomentoBackend

__all__ = [
    "AsyncBackend",
    "AsyncCircuitBreakerBackend",
    "AsyncMemoryBackend",
    "AsyncMomentoBackend",
    "Backend",
    "BackendError",
    "BatchBackend",
    "BulkWriteBackend",
    "CircuitBreakerBackend",
    "CircuitOpenError",
    "CounterBackend",
    "IdentifiedBackend",
    "MemoryBackend",
    "MomentoBackend",
    "NotACounterError",
    "cache_identity",
]


def __getattr__(name: str) -> object:
    # The SDK (and grpc) load only when the momento backend is used.
    if name == "MomentoBackend":
        from momento_botocore.backends.momento import MomentoBackend

        return MomentoBackend
    if name == "AsyncMomentoBackend":
        from momento_botocore.backends.momento_async import AsyncMomentoBackend

        return AsyncMomentoBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
