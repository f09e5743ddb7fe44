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
        return _memory(config)
    if config.backend == "momento":
        _check_momento()
        from momento_botocore.backends.guarded import CircuitBreakerBackend
        from momento_botocore.backends.momento import MomentoBackend

        momento = MomentoBackend.from_config(config, credential_provider=credential_provider)
        guarded = CircuitBreakerBackend(momento, _breaker(config))
        near = _near_cache(config, credential_provider)
        if near is None:
            return guarded
        from momento_botocore.backends.near import NearCacheBackend

        return NearCacheBackend(guarded, near)
    raise ConfigurationError(f"backend {config.backend!r} is not available in this build")


def create_async_backend(
    config: CacheConfig,
    *,
    shared_memory: MemoryBackend | None = None,
    credential_provider: Any = None,
    shared_near: Any = None,
) -> AsyncBackend:
    """A new async backend for ``config.backend`` (for aiobotocore); configuration
    problems raise here, and nothing connects.

    ``memory``: an :class:`AsyncMemoryBackend` in front of ``shared_memory`` when given
    (a sync client's backend, say: both then read and write one store, and name one
    cache), else in front of a new memory backend of the configured size, which its
    ``close()`` empties. ``momento``: an :class:`AsyncMomentoBackend` behind an
    :class:`AsyncCircuitBreakerBackend` (``breaker_failures``, ``breaker_cooldown``),
    behind the near cache's backend when the configuration asks for one or publishes
    invalidations (``shared_near``: a sync backend's ``NearCache``, to share its store
    and subscription); ``credential_provider`` as for :func:`create_backend`.
    """
    if config.backend == "memory":
        if shared_memory is not None:
            return AsyncMemoryBackend(shared_memory)
        return AsyncMemoryBackend(_memory(config), close_memory=True)
    if config.backend == "momento":
        _check_momento()
        from momento_botocore.backends.guarded import AsyncCircuitBreakerBackend
        from momento_botocore.backends.momento_async import AsyncMomentoBackend

        momento = AsyncMomentoBackend.from_config(config, credential_provider=credential_provider)
        guarded = AsyncCircuitBreakerBackend(momento, _breaker(config))
        near = shared_near if shared_near is not None else _near_cache(config, credential_provider)
        if near is None:
            return guarded
        from momento_botocore.backends.near import AsyncNearCacheBackend

        return AsyncNearCacheBackend(guarded, near, owns_near=shared_near is None)
    raise ConfigurationError(f"backend {config.backend!r} is not available in this build")


def _near_cache(config: CacheConfig, credential_provider: Any) -> Any:
    from momento_botocore.backends.momento_topics import near_cache_for

    return near_cache_for(config, credential_provider)


def _memory(config: CacheConfig) -> MemoryBackend:
    return MemoryBackend(max_entries=config.memory_max_entries, max_bytes=config.memory_max_bytes)


def _check_momento() -> None:
    try:
        import momento  # noqa: F401
    except ImportError as error:  # pragma: no cover - momento is a dependency
        raise ConfigurationError(
            f"the momento backend needs the 'momento' package: {error}"
        ) from None


def _breaker(config: CacheConfig) -> Any:
    from momento_botocore.breaker import CircuitBreaker

    return CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
