"""Build the backend a configuration names."""

from __future__ import annotations

from typing import Any

from momento_botocore.backends.base import AsyncBackend, Backend
from momento_botocore.backends.memory import AsyncMemoryBackend, MemoryBackend
from momento_botocore.config import CacheConfig, ConfigurationError


def create_backend(config: CacheConfig, *, credential_provider: Any = None) -> Backend:
    """A new backend for ``config.backend``; configuration problems raise here.

    Remote backends come behind a circuit breaker (``breaker_failures``,
    ``breaker_cooldown``). ``credential_provider`` is for the momento backend
    (for example the local test server's).
    """
    if config.backend == "memory":
        return MemoryBackend(
            max_entries=config.memory_max_entries, max_bytes=config.memory_max_bytes
        )
    if config.backend == "momento":
        try:
            from momento_botocore.backends.momento import MomentoBackend
        except ImportError as error:  # pragma: no cover - momento is a dependency
            raise ConfigurationError(
                f"the momento backend needs the 'momento' package: {error}"
            ) from None
        from momento_botocore.backends.guarded import CircuitBreakerBackend
        from momento_botocore.breaker import CircuitBreaker

        momento = MomentoBackend.from_config(config, credential_provider=credential_provider)
        breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        return CircuitBreakerBackend(momento, breaker)
    raise ConfigurationError(f"backend {config.backend!r} is not available in this build")


def create_async_backend(
    config: CacheConfig, *, shared_memory: MemoryBackend | None = None
) -> AsyncBackend:
    """The async twin of :func:`create_backend` (for aiobotocore sessions)."""
    if config.backend == "memory":
        memory = shared_memory if shared_memory is not None else create_backend(config)
        assert isinstance(memory, MemoryBackend)
        return AsyncMemoryBackend(memory, close_memory=shared_memory is None)
    raise ConfigurationError(f"backend {config.backend!r} has no async client yet")
