"""Benchmark 3: a hit served by Momento through the official SDK, against a memory hit;
and 100 keys looked up in Momento one after another, against ``get_many``.

The Momento side is the local Momento-protocol server (``momento_botocore.testing``)
in a separate process, reached by the real ``momento`` SDK over gRPC on loopback:
the cost of the SDK and one network round trip, not Momento's service latency.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import time
from typing import Any

from benchmarks.context import BenchContext
from benchmarks.harness import Variant, measure, ratio_figure
from benchmarks.model import BenchResult, Figure, unavailable
from momento_botocore.backends.memory import MemoryBackend
from momento_botocore.core.entries import encode_item
from momento_botocore.core.keys import cache_key
from momento_botocore.demo.local import ACCOUNT, REGION, new_session, sample_item

TABLE = "bench-items"
PK = "user-42"
KEY = {"pk": {"S": PK}}
NAME = "GetItem hit via Momento SDK / memory hit"
LOOKUP_KEYS = 100
LOOKUP_NAME = f"Momento lookups of {LOOKUP_KEYS} keys: get_many / sequential gets"
#: The same again with every Get held this long by the server: a stand-in for the
#: network round trip to Momento, which the loopback server does not have.
LOOKUP_DELAY_MS = 1.0
LOOKUP_DELAYED_NAME = (
    f"Momento lookups of {LOOKUP_KEYS} keys, Get held {LOOKUP_DELAY_MS:g} ms: "
    "get_many / sequential gets"
)
_NOWHERE = "http://127.0.0.1:9"


def missing() -> str | None:
    """Why this benchmark cannot run in this build, or None."""
    for module in ("momento_botocore.testing", "momento_botocore.backends.momento", "momento"):
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return f"not available: {module} is not in this build (Momento backend, issue 3)"
    return None


class _ServerProcess:
    """``python -m momento_botocore.testing`` in a child process."""

    def __init__(self, *, get_delay_ms: float = 0.0) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "momento_botocore.testing", "--port", "0"),
                *("--get-delay-ms", str(get_delay_ms)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"local Momento server did not start: {line!r}")
        host, _, port = line.removeprefix("listening on ").rpartition(":")
        self.host, self.port = host, int(port)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def run(ctx: BenchContext) -> BenchResult:
    reason = missing()
    if reason is not None:
        return unavailable("momento", NAME, reason)
    import momento_botocore

    testing: Any = importlib.import_module("momento_botocore.testing")
    momento_module: Any = importlib.import_module("momento_botocore.backends.momento")
    from momento import CredentialProvider

    item = sample_item(PK)
    entry_key = cache_key(ACCOUNT, REGION, TABLE, KEY, binary_text="utf-8")
    server = _ServerProcess()
    registrations = []
    backend: Any = None
    try:
        backend = momento_module.MomentoBackend(
            testing.DEFAULT_CACHE,
            credential_provider=CredentialProvider.for_momento_local(server.host, server.port),
        )
        memory = MemoryBackend()
        ops: dict[str, Any] = {}
        for name, cache in (("memory hit", memory), ("Momento hit", backend)):
            cache.set(entry_key, encode_item(item), 3600)
            session = new_session()
            registrations.append(
                momento_botocore.register(session, ttl=3600, backend=cache, account_id=ACCOUNT)
            )
            client = session.client("dynamodb", endpoint_url=_NOWHERE)
            answer = client.get_item(TableName=TABLE, Key=KEY)
            if answer["ResponseMetadata"]["HTTPHeaders"].get("x-momento-cache") != "hit":
                raise RuntimeError(f"momento benchmark: {name} setup did not hit")
            ops[name] = (lambda c: lambda: c.get_item(TableName=TABLE, Key=KEY))(client)
        rounds, block = (8, 20) if ctx.quick else (40, 25)
        samples = measure(
            [Variant(name, op) for name, op in ops.items()],
            rounds=rounds,
            block=block,
            progress=ctx.progress("Momento SDK"),
            clock=time.perf_counter,
        )
    finally:
        for registration in registrations:
            registration.unregister()
        if backend is not None:
            backend.close()
        server.stop()
    result = BenchResult("momento")
    result.figures.append(
        ratio_figure(
            "momento",
            NAME,
            samples,
            "Momento hit",
            "memory hit",
            note="local Momento-protocol server in another process, loopback gRPC",
        )
    )
    value = encode_item(item)
    result.figures.append(_lookups(ctx, momento_module, value, LOOKUP_NAME))
    result.figures.append(
        _lookups(ctx, momento_module, value, LOOKUP_DELAYED_NAME, get_delay_ms=LOOKUP_DELAY_MS)
    )
    result.details = {"rounds": rounds, "calls_per_block": block}
    return result


def _lookups(
    ctx: BenchContext, momento_module: Any, value: bytes, name: str, *, get_delay_ms: float = 0.0
) -> Figure:
    """``LOOKUP_KEYS`` hits: ``get`` per key in turn vs one ``get_many`` (wall time),
    against a server of their own."""
    from momento import CredentialProvider

    from momento_botocore.testing import DEFAULT_CACHE

    server = _ServerProcess(get_delay_ms=get_delay_ms)
    backend: Any = None
    try:
        backend = momento_module.MomentoBackend(
            DEFAULT_CACHE,
            credential_provider=CredentialProvider.for_momento_local(server.host, server.port),
            request_timeout=5.0,  # a busy machine must not turn a slow lookup into a failure
        )
        return _measure_lookups(ctx, backend, value, name, delayed=get_delay_ms > 0)
    finally:
        if backend is not None:
            backend.close()
        server.stop()


def _measure_lookups(
    ctx: BenchContext, backend: Any, value: bytes, name: str, *, delayed: bool
) -> Figure:
    keys = [
        cache_key(ACCOUNT, REGION, TABLE, {"pk": {"S": f"user-{n}"}}, binary_text="utf-8")
        for n in range(LOOKUP_KEYS)
    ]
    for key in keys:
        backend.set(key, value, 3600)

    def sequential() -> list[bytes | None]:
        return [backend.get(key) for key in keys]

    def get_many() -> list[bytes | None]:
        found: list[bytes | None] = backend.get_many(keys)
        return found

    if not sequential() == get_many() == [value] * LOOKUP_KEYS:
        raise RuntimeError("momento benchmark: the lookups did not all hit")
    if delayed:
        rounds, block = (3, 1) if ctx.quick else (12, 2)
    else:
        rounds, block = (5, 1) if ctx.quick else (25, 3)
    samples = measure(
        [Variant("sequential gets", sequential), Variant("get_many", get_many)],
        rounds=rounds,
        block=block,
        progress=ctx.progress("Momento lookups"),
        clock=time.perf_counter,
    )
    return ratio_figure(
        "momento",
        name,
        samples,
        "get_many",
        "sequential gets",
        scale=1e3,
        unit=f"ms per {LOOKUP_KEYS} keys",
        note="get_many: one GetBatch call (sequential gets: one Get each); "
        "local server in another process (Python gRPC: about 0.6 ms CPU per Get)",
    )
