"""The demo: embedded defaults only. DynamoDB is moto's server (in-process, with
a stream), the cache is the memory backend, and the stream tailer keeps it fresh.

The same Zipf read/write workload runs twice: without the cache, then with it
(reads through a registered client, writes by a plain client, the tailer
applying the table's stream). It ends with a short table: hit rate, read latency
p50/p99 with and without the cache, stale reads, and where the plots went.
moto and matplotlib (the plot) come from the ``demo`` extra. The local stand-ins and
the workload in this package are shared with the benchmarks (``benchmarks/``, not installed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from momento_botocore.demo.local import MotoServer, Progress
from momento_botocore.demo.workload import (
    LABELS,
    WorkloadRun,
    WorkloadSpec,
    percentile,
    run_mode,
    stream_support_missing,
)

DEFAULT_SPEC = WorkloadSpec(
    items=1000, seconds=30.0, read_rate=200.0, write_rate=10.0, ttl=300.0, grace=1.0
)


@dataclass
class DemoResult:
    uncached: WorkloadRun
    cached: WorkloadRun
    plot: Path | None


def run_demo(
    *,
    items: int = DEFAULT_SPEC.items,
    seconds: float = DEFAULT_SPEC.seconds,
    out_dir: Path | str = "demo-output",
    out: TextIO = sys.stdout,
) -> DemoResult:
    """Run the demo: a third of ``seconds`` without the cache, the rest with it."""
    console = Progress(out)
    missing = stream_support_missing()
    cached_mode = "refresh" if missing is None else "ttl"
    spec = replace(DEFAULT_SPEC, items=items)
    bucket = max(0.5, min(1.0, seconds / 20))
    uncached_spec = replace(spec, seconds=seconds / 3, bucket=bucket)
    cached_spec = replace(spec, seconds=seconds - seconds / 3, bucket=bucket)
    console.line(
        "momento-botocore demo: embedded DynamoDB (moto, in-process, with a stream), "
        "memory backend, stream tailer"
    )
    if missing is not None:
        console.line(f"no stream invalidator in this build ({missing}): TTL-only caching")
    console.line(
        f"{items} items; {spec.read_rate:g} GetItem/s by a cached client and "
        f"{spec.write_rate:g} PutItem/s by another (Zipf: hot items are read and written most)"
    )
    moto = MotoServer()
    try:
        console.line(f"1/2 without the cache ({uncached_spec.seconds:.0f} s) ...")
        uncached = run_mode(moto, uncached_spec, "none", progress=console.update)
        console.line(
            f"    {uncached.reads} reads, p50 {uncached.latency(0.5):.2f} ms, "
            f"p99 {uncached.latency(0.99):.2f} ms"
        )
        console.line(f"2/2 with the cache: {LABELS[cached_mode]} ({cached_spec.seconds:.0f} s) ...")
        cached = run_mode(moto, cached_spec, cached_mode, progress=console.update)
        console.line(
            f"    {cached.reads} reads, hit rate {cached.hit_rate:.1%}, "
            f"p50 {cached.latency(0.5):.2f} ms, p99 {cached.latency(0.99):.2f} ms"
        )
    finally:
        moto.stop()
    plot = None
    from momento_botocore.demo import plots

    if plots.available():
        plot = plots.demo(uncached, cached, Path(out_dir) / "demo.png")
    result = DemoResult(uncached, cached, plot)
    out.write(summary(result))
    out.flush()
    return result


def summary(result: DemoResult) -> str:
    uncached, cached = result.uncached, result.cached
    grace = cached.spec.grace
    lines = [
        "",
        f"  {'':<16}{'hit rate':>10}{'p50 ms':>10}{'p99 ms':>10}{'stale reads':>14}",
    ]
    for name, run in (("without cache", uncached), ("with cache", cached)):
        hit_rate = "-" if run.mode == "none" else f"{run.hit_rate:.1%}"
        lines.append(
            f"  {name:<16}{hit_rate:>10}{run.latency(0.5):>10.2f}"
            f"{run.latency(0.99):>10.2f}{run.stale:>14}"
        )
    lines.append("")
    lines.append(
        f"  DynamoDB reads saved: {cached.hits} of {cached.reads} ({cached.hit_rate:.0%}); "
        f"writes: {cached.writes}"
    )
    lag = ""
    if cached.lag_ms:
        p50, p99 = percentile(cached.lag_ms, 0.5), percentile(cached.lag_ms, 0.99)
        lag = f"; stream lag p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    lines.append(
        f"  stale reads = older than the last write acknowledged {grace:g} s before the read "
        f"({cached.stale_any} of any age{lag})"
    )
    if result.plot is not None:
        lines.append(f"  plot: {result.plot}")
    else:
        lines.append("  plot: not written (pip install 'momento-botocore[demo]' for matplotlib)")
    return "\n".join(lines) + "\n"
