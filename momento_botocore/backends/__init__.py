"""Cache backends behind one small protocol."""

from momento_botocore.backends.base import Backend, BackendError
from momento_botocore.backends.memory import MemoryBackend

__all__ = ["Backend", "BackendError", "MemoryBackend"]
