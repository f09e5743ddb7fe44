"""What both drivers share: the handlers that do no I/O, and the driver's attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.awsrequest import AWSResponse

from momento_botocore import hooks
from momento_botocore.backends.base import BackendError
from momento_botocore.config import CacheConfig
from momento_botocore.core.call import (
    BATCH_KEY,
    GET_KEY,
    PAGE_KEY,
    WRITE_KEY,
    BatchCall,
    GetCall,
    PageCall,
    WriteCall,
)
from momento_botocore.core.engine import Engine

Answer = tuple[AWSResponse, dict[str, Any]]


def one_per_key(found: list[bytes | None], keys: Sequence[str]) -> list[bytes | None]:
    """What a backend's get_many gave, if one value per key; else the lookup failed."""
    if len(found) != len(keys):
        raise BackendError(f"get_many gave {len(found)} values for {len(keys)} keys")
    return found


class DriverBase:
    """The handlers of hooks.HANDLERS that neither driver awaits anything in (plain
    functions: aiobotocore's emitter calls them as botocore's does)."""

    engine: Engine

    @property
    def config(self) -> CacheConfig:
        return self.engine.config

    @property
    def active(self) -> bool:
        return self.engine.active

    @active.setter
    def active(self, value: bool) -> None:
        self.engine.active = value

    @property
    def pending(self) -> Any:
        return self.engine.pending

    @property
    def fences(self) -> Any:
        return self.engine.fences

    def install(self, events: Any) -> None:
        hooks.install(self, events)

    # Handlers without I/O ------------------------------------------------------

    def mark_sent(self, request: Any, **_: Any) -> None:
        """request-created: this call's answer will come over the wire."""
        try:
            context = request.context
            call: GetCall | PageCall | None = context.get(GET_KEY) or context.get(PAGE_KEY)
            if call is not None:
                call.sent = True
        except Exception as error:  # never break the call
            self.engine.failed("marking a request sent", "", error)

    def serve_batch(self, context: Any, **_: Any) -> Answer | None:
        call: BatchCall | None = context.get(BATCH_KEY)
        try:
            parsed = None if call is None else self.engine.answer_batch(call)
        except Exception as error:
            self.engine.failed("answering a batch from the cache", "", error)
            # An all-hit batch's request is a placeholder: it must be answered here.
            try:
                parsed = self.engine.bare_batch_answer(call)
            except Exception:
                return None
        return None if parsed is None else (hooks.HIT_HTTP_RESPONSE, parsed)

    def count_send(self, request: Any, **_: Any) -> None:
        """request-created: one more attempt of this call goes over the wire."""
        try:
            call = request.context.get(WRITE_KEY) or request.context.get(BATCH_KEY)
            if isinstance(call, WriteCall):
                call.sends += 1
            elif call is not None:
                call.sent = True
        except Exception as error:  # never break the call
            self.engine.failed("counting a request sent", "", error)

    def remember_clients(self, base_classes: Any, **_: Any) -> None:
        try:
            hooks.remember_clients(base_classes)
        except Exception as error:  # such clients cannot DescribeTable for a write's key
            self.engine.failed("remembering clients", "", error)
