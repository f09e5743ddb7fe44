"""The stream invalidator on AWS Lambda: the handler and the Powertools record handler,
configured from environment variables alone.

The entry point builds what :mod:`momento_botocore.streams` is given elsewhere: once per
process (per Lambda container), the configuration from the environment and the backend
it names, handed to a :class:`~momento_botocore.streams.StreamInvalidator`. The handler
string stays ``momento_botocore.streams.handler``, which calls :func:`handler` here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from momento_botocore.backends.factory import create_backend
from momento_botocore.config import CacheConfig
from momento_botocore.streams import CacheWrite, StreamInvalidator, describe_with_boto3

_DEFAULT: list[StreamInvalidator] = []
_DEFAULT_LOCK = threading.Lock()


def default_invalidator() -> StreamInvalidator:
    """Built once per process, from environment variables alone: a configuration error
    is raised here, on the first event (Lambda reports it and retries the batch)."""
    if not _DEFAULT:
        with _DEFAULT_LOCK:
            if not _DEFAULT:
                config = CacheConfig.from_env()
                # DescribeTable (once per table) tells the Query cache the index keys.
                invalidator = StreamInvalidator(
                    config, create_backend(config), describe_table=describe_with_boto3()
                )
                _DEFAULT.append(invalidator)
    return _DEFAULT[0]


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda handler (``momento_botocore.streams.handler``): records -> cache writes,
    answered with a partial batch response."""
    return default_invalidator()(event, context)


def record_handler(record: Any) -> CacheWrite | None:
    """A Powertools record handler (``BatchProcessor(event_type=EventType.DynamoDBStreams)``),
    configured from the environment like :func:`handler`."""
    return default_invalidator().apply_record(record)
