"""100 cache hits looked up in Momento at once: ``get_many`` one key at a time (the old
way: 16 concurrent gets on the sync SDK client) against one ``GetBatch`` call, sync
and async, side by side in one run.

    python benchmarks/momento_batch.py [--keys 100] [--rounds 15] [--get-delay-ms 1]

The Momento side is the local Momento-protocol server (``python -m
momento_botocore.testing``) in a separate process, every Get and every GetBatch held
``--get-delay-ms`` by the server (a stand-in for the network round trip, which
loopback does not have), reached by the real ``momento`` SDK over gRPC. Each round
runs every variant once, in an order that rotates from round to round, as a block of
calls; the figures are medians (quartiles in brackets) of the per-call wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this tree's package, whatever is installed

from momento import CredentialProvider  # noqa: E402

from momento_botocore.backends.momento import MomentoBackend  # noqa: E402
from momento_botocore.backends.momento_async import AsyncMomentoBackend  # noqa: E402
from momento_botocore.core.entries import encode_item  # noqa: E402
from momento_botocore.core.keys import cache_key  # noqa: E402
from momento_botocore.demo.local import ACCOUNT, REGION, sample_item  # noqa: E402
from momento_botocore.testing import DEFAULT_CACHE  # noqa: E402

#: A busy machine must not turn a slow lookup into a failure.
TIMEOUT = 5.0


class ServerProcess:
    """``python -m momento_botocore.testing`` (this tree's) in a child process."""

    def __init__(self, get_delay_ms: float) -> None:
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"}
        self._process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "momento_botocore.testing", "--port", "0"),
                *("--get-delay-ms", str(get_delay_ms)),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=environ,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"local Momento server did not start: {line!r}")
        host, _, port = line.removeprefix("listening on ").rpartition(":")
        self.provider = CredentialProvider.for_momento_local(host, int(port))

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def measure(
    variants: dict[str, Callable[[], object]], *, rounds: int, block: int
) -> dict[str, list[float]]:
    """Seconds per call of each variant: one block per variant per round, rotating."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            call = variants[name]
            started = time.perf_counter()
            for _ in range(block):
                call()
            samples[name].append((time.perf_counter() - started) / block)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=3, help="calls per variant per round")
    parser.add_argument("--get-delay-ms", type=float, default=1.0)
    parser.add_argument(
        "--no-sequential", action="store_true", help="leave out the slow reference (gets in turn)"
    )
    args = parser.parse_args()

    server = ServerProcess(args.get_delay_ms)
    loop = asyncio.new_event_loop()  # the async backends run on the calling thread's loop
    backends: list[Any] = []
    try:
        provider = server.provider
        old = MomentoBackend(
            DEFAULT_CACHE,
            credential_provider=provider,
            request_timeout=TIMEOUT,
            use_get_batch=False,
        )
        new = MomentoBackend(DEFAULT_CACHE, credential_provider=provider, request_timeout=TIMEOUT)
        async_batch = AsyncMomentoBackend(
            DEFAULT_CACHE, credential_provider=provider, request_timeout=TIMEOUT
        )
        async_one = AsyncMomentoBackend(
            DEFAULT_CACHE,
            credential_provider=provider,
            request_timeout=TIMEOUT,
            use_get_batch=False,
        )
        backends = [old, new, async_batch, async_one]
        keys = [
            cache_key(ACCOUNT, REGION, "bench-items", {"pk": {"S": f"user-{n}"}})
            for n in range(args.keys)
        ]
        value = encode_item(sample_item("user"))
        assert new.set_many([(key, value, 3600.0) for key in keys]) == [None] * len(keys)

        variants: dict[str, Callable[[], object]] = {
            "get_many, one key at a time (old: 16 threads)": lambda: old.get_many(keys),
            "get_many, GetBatch (new)": lambda: new.get_many(keys),
            "async get_many, GetBatch": lambda: loop.run_until_complete(async_batch.get_many(keys)),
            "async get_many, one key at a time (16 tasks)": lambda: loop.run_until_complete(
                async_one.get_many(keys)
            ),
        }
        if not args.no_sequential:
            variants["get per key, in turn (reference)"] = lambda: [old.get(k) for k in keys]
        for name, call in variants.items():  # warm: connected, and every lookup a hit
            if call() != [value] * len(keys):
                raise RuntimeError(f"{name}: the lookups did not all hit")

        samples = measure(variants, rounds=args.rounds, block=args.block)
    finally:
        for backend in backends:
            if isinstance(backend, AsyncMomentoBackend):
                loop.run_until_complete(backend.close())
            else:
                backend.close()
        loop.close()
        server.stop()

    old_name = "get_many, one key at a time (old: 16 threads)"
    old_median = statistics.median(samples[old_name])
    print(
        f"{args.keys} hits, local Momento server in another process, every Get and "
        f"GetBatch held {args.get_delay_ms:g} ms; {args.rounds} rounds x {args.block} calls "
        f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})"
    )
    print(f"{'variant':48} {'median ms':>10} {'quartiles ms':>15} {'vs old':>7}")
    for name, times in samples.items():
        quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        median = statistics.median(times)
        print(
            f"{name:48} {median * 1e3:10.1f} "
            f"{quartiles[0] * 1e3:7.1f}-{quartiles[2] * 1e3:<7.1f} {median / old_median:6.2f}x"
        )


if __name__ == "__main__":
    main()
