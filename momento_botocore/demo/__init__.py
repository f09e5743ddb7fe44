"""The demo: embedded defaults only. DynamoDB is moto's server (on loopback, with a
stream), the cache is the memory backend, and the stream tailer keeps it fresh.

The Zipf read/write workload runs once, read side by side without and with the cache:
each tick reads one item through a plain client and through a registered one, back to
back in a shuffled order, while a plain client writes and the tailer applies the
table's stream. Only the reader runs in this process: moto's server, the writer and
the tailer each have a process of their own, so the reader's latencies (the tail
included) are its own, and both clients meet the same machine and the same DynamoDB.
It ends with a short table: hit rate, read latency p50/p99/p99.9 without and with the
cache (and for its hits and misses apart), stale reads, and where the plot went.
moto and matplotlib (the plot) come from the ``demo`` extra. The local stand-ins and
the workload in this package are shared with the benchmarks (``benchmarks/``, not installed).
``momento-botocore demo --near-cache`` is :mod:`momento_botocore.demo.near`: the same
workload on the local Momento server, with a near cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from momento_botocore.demo.local import MotoProcess, Progress
from momento_botocore.demo.workload import (
    LABELS,
    WorkloadRun,
    WorkloadSpec,
    percentile,
    run_modes,
    stream_support_missing,
)

#: read_rate is each client's: 200 GetItem/s in all.
DEFAULT_SPEC = WorkloadSpec(
    items=1000, seconds=30.0, read_rate=100.0, write_rate=10.0, ttl=300.0, grace=1.0
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
    """Run the demo: ``seconds`` of reads, without and with the cache side by side."""
    console = Progress(out)
    missing = stream_support_missing()
    cached_mode = "refresh" if missing is None else "ttl"
    spec = replace(
        DEFAULT_SPEC, items=items, seconds=seconds, bucket=max(0.5, min(1.0, seconds / 20))
    )
    console.line(
        "momento-botocore demo: embedded DynamoDB (moto, with a stream), memory backend, "
        "stream tailer; the reader alone in this process"
    )
    if missing is not None:
        console.line(f"no stream invalidator in this build ({missing}): TTL-only caching")
    console.line(
        f"{items} items; each tick reads one item through a plain client and a cached one "
        f"({spec.read_rate:g}/s each, side by side), and another writes "
        f"{spec.write_rate:g} PutItem/s (Zipf: hot items are read and written most)"
    )
    console.line("starting moto's server, the writer and the stream tailer ...")
    moto = MotoProcess()
    try:
        console.line(f"reading for {spec.seconds:g} s; with the cache: {LABELS[cached_mode]} ...")
        uncached, cached = run_modes(moto, spec, ["none", cached_mode], progress=console.update)
    finally:
        moto.stop()
    for name, run in (("without the cache", uncached), ("with the cache", cached)):
        hit_rate = "" if run.mode == "none" else f"hit rate {run.hit_rate:.1%}, "
        console.line(
            f"    {name}: {run.reads} reads, {hit_rate}p50 {run.latency(0.5):.2f} ms, "
            f"p99 {run.latency(0.99):.2f} ms, p99.9 {run.latency(0.999):.2f} ms"
        )
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
        f"  {'':<16}{'reads':>7}{'hit rate':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}"
        f"{'stale reads':>13}",
    ]
    for name, run in (("without cache", uncached), ("with cache", cached)):
        hit_rate = "-" if run.mode == "none" else f"{run.hit_rate:.1%}"
        lines.append(
            f"  {name:<16}{run.reads:>7}{hit_rate:>10}{_latencies(run.latencies_ms)}{run.stale:>13}"
        )
    for name, latencies in (
        ("  hits", cached.hit_latencies_ms),
        ("  misses", cached.miss_latencies_ms),
    ):
        if latencies:
            lines.append(f"  {name:<16}{len(latencies):>7}{'':>10}{_latencies(latencies)}")
    lines.append("")
    lines.append(
        f"  DynamoDB reads saved: {cached.hits} of {cached.reads} ({cached.hit_rate:.0%}); "
        f"writes: {cached.writes}"
    )
    lines.append(_p999_line([uncached.reads, cached.reads]))
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


def _latencies(values: list[float]) -> str:
    """p50, p99 and p99.9 of ``values``, as the table's three columns."""
    p50, p99, p999 = (percentile(values, fraction) for fraction in (0.5, 0.99, 0.999))
    return f"{p50:>9.2f}{p99:>9.2f}{p999:>10.2f}"


def _p999_line(reads: list[int]) -> str:
    """Which read p99.9 is, for each client's count of reads."""
    ranks = {(count, _rank_from_top(count, 0.999)) for count in reads}
    return (
        "  p99.9 is the "
        + ", ".join(f"{_ordinal(rank)} slowest of {count} reads" for count, rank in sorted(ranks))
        + (" (each client)" if len(ranks) == 1 else "")
    )


def _rank_from_top(count: int, fraction: float) -> int:
    """Which slowest read :func:`percentile` picks for ``fraction`` of ``count`` reads."""
    return count - min(count - 1, int(fraction * count)) if count else 0


def _ordinal(number: int) -> str:
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"
