"""Build the backend a configuration names."""

from __future__ import annotations

from momento_botocore.backends.base import Backend
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.config import CacheConfig, ConfigurationError


def create_backend(config: CacheConfig) -> Backend:
    """A new backend for ``config.backend``; configuration problems raise here."""
    if config.backend == "memory":
        return MemoryBackend(
            max_entries=config.memory_max_entries, max_bytes=config.memory_max_bytes
        )
    raise ConfigurationError(f"backend {config.backend!r} is not available in this build")
