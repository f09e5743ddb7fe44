"""The demo's near-cache mode (``momento-botocore demo --near-cache``): the same Zipf
read/write workload, with the Momento backend and a near cache in front of it, offline.

moto's server and the local Momento-protocol server (:mod:`momento_botocore.testing`,
its default cache, Topics included) each run in a process of their own, as do the
writer and the stream tailer. The tailer's stream handler writes every refresh to
Momento and publishes its key on the cache's topic (the Momento backend's default), so
that the reader's near cache, subscribed to that topic, evicts it by push. The reader
(this process) reads each tick's item through a plain client, a client on Momento with
a near cache (``create_backend`` with ``near_cache_items``, read only once its
subscription is live) and, as a third column, a client on Momento without one; each
Momento client has a key prefix of its own, so that neither fills the other's entries.

It ends with a table: hit rate, near hits, p50/p99/p99.9, stale reads (against the
writer's acknowledgements, as in the default demo) and reads *behind a push*: older
than a refresh the tailer had written to Momento and published ``grace`` seconds
before the read began. Every near hit is counted twice, once by the reader (from
``stats()`` after each read) and once in ``stats()["(near cache)"]``: both are shown.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from momento_botocore.demo import DEFAULT_SPEC, _latencies, _p999_line
from momento_botocore.demo.local import MomentoProcess, MotoProcess, Progress
from momento_botocore.demo.workload import (
    MomentoTarget,
    WorkloadRun,
    percentile,
    run_modes,
    stream_support_missing,
)

NEAR_CACHE_ITEMS = 10_000
NEAR_CACHE_TTL = 5.0
#: The table's rows: each run's name.
ROWS = {"none": "without cache", "momento": "Momento", "near": "Momento + near"}


@dataclass
class NearDemoResult:
    uncached: WorkloadRun
    momento: WorkloadRun | None
    near: WorkloadRun
    #: ``stats()["(near cache)"]`` of this process over the run (counters that grew).
    near_stats: dict[str, int]
    plot: Path | None

    @property
    def runs(self) -> list[WorkloadRun]:
        return [run for run in (self.uncached, self.momento, self.near) if run is not None]


def run_near_demo(
    *,
    items: int = DEFAULT_SPEC.items,
    seconds: float = DEFAULT_SPEC.seconds,
    out_dir: Path | str = "demo-output",
    out: TextIO = sys.stdout,
    momento_column: bool = True,
) -> NearDemoResult:
    """Run the near-cache demo: ``seconds`` of reads without the cache, with Momento and
    a near cache and (``momento_column``) with Momento alone, side by side."""
    import momento_botocore
    from momento_botocore.backends.near import NEAR_STATS

    console = Progress(out)
    missing = stream_support_missing()
    if missing is not None:
        raise SystemExit(
            f"momento-botocore demo --near-cache needs the stream invalidator: {missing}"
        )
    spec = replace(
        DEFAULT_SPEC, items=items, seconds=seconds, bucket=max(0.5, min(1.0, seconds / 20))
    )
    modes = ["none", *(["momento"] if momento_column else []), "near"]
    console.line(
        "momento-botocore demo --near-cache: embedded DynamoDB (moto, with a stream), the "
        "local Momento server, stream tailer writing to Momento; the reader alone in "
        "this process"
    )
    clients = "a plain client, one on Momento with a near cache" + (
        " and one on Momento alone" if momento_column else ""
    )
    console.line(
        f"{items} items; each tick reads one item through {clients} ({spec.read_rate:g}/s "
        f"each, side by side), and another writes {spec.write_rate:g} PutItem/s (Zipf: hot "
        f"items are read and written most)"
    )
    console.line(
        f"near cache: {NEAR_CACHE_ITEMS} items, {NEAR_CACHE_TTL:g} s at most; the tailer "
        "publishes each refresh's key on the cache's topic, which evicts it by push"
    )
    console.line("starting moto's server, the local Momento server, the writer and the tailer ...")
    moto = MotoProcess()
    try:
        server = MomentoProcess()
        try:
            target = MomentoTarget(
                server.endpoint,
                server.cache_name,
                near_cache_items=NEAR_CACHE_ITEMS,
                near_cache_ttl=NEAR_CACHE_TTL,
            )
            console.line(
                f"Momento at {server.endpoint}, cache {server.cache_name}; reading for "
                f"{spec.seconds:g} s once the near cache's subscription is live ..."
            )
            before = momento_botocore.stats().get(NEAR_STATS, {})
            runs = run_modes(moto, spec, modes, progress=console.update, momento=target)
            after = momento_botocore.stats().get(NEAR_STATS, {})
        finally:
            server.stop()
    finally:
        moto.stop()
    by_mode = dict(zip(modes, runs, strict=True))
    near_stats = {name: count - before.get(name, 0) for name, count in after.items()}
    for run in runs:
        hit_rate = "" if run.mode == "none" else f"hit rate {run.hit_rate:.1%}, "
        near = f"near hits {run.near_hits / max(1, run.reads):.1%}, " if run.mode == "near" else ""
        console.line(
            f"    {ROWS[run.mode]}: {run.reads} reads, {hit_rate}{near}p50 "
            f"{run.latency(0.5):.2f} ms, p99 {run.latency(0.99):.2f} ms, p99.9 "
            f"{run.latency(0.999):.2f} ms"
        )
    plot = None
    from momento_botocore.demo import plots

    if plots.available():
        plot = plots.demo(
            by_mode["none"],
            by_mode["near"],
            Path(out_dir) / "demo-near-cache.png",
            cached_name="Momento + near cache",
            cached_phrase="with the near cache",
            title="momento-botocore demo: DynamoDB (moto) reads without the cache and with "
            "Momento + near cache",
        )
    result = NearDemoResult(
        by_mode["none"], by_mode.get("momento"), by_mode["near"], near_stats, plot
    )
    out.write(summary(result))
    out.flush()
    return result


def summary(result: NearDemoResult) -> str:
    near = result.near
    grace = near.spec.grace
    lines = [
        "",
        f"  {'':<16}{'reads':>7}{'hit rate':>10}{'near hits':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p99.9 ms':>10}{'stale reads':>13}{'behind push':>13}",
    ]
    for run in result.runs:
        hit_rate = "-" if run.mode == "none" else f"{run.hit_rate:.1%}"
        near_hits = f"{run.near_hits / run.reads:.1%}" if run.mode == "near" and run.reads else "-"
        behind = "-" if run.mode == "none" else f"{run.behind_push}"
        lines.append(
            f"  {ROWS[run.mode]:<16}{run.reads:>7}{hit_rate:>10}{near_hits:>11}"
            f"{_latencies(run.latencies_ms)}{run.stale:>13}{behind:>13}"
        )
    parts = (
        ("  near hits", near.near_hit_latencies_ms),
        ("  Momento hits", near.shared_hit_latencies_ms),
        ("  misses", near.miss_latencies_ms),
    )
    for name, latencies in parts:
        if latencies:
            lines.append(f"  {name:<16}{len(latencies):>7}{'':>10}{'':>11}{_latencies(latencies)}")
    lines.append("  (near hits, Momento hits and misses: the reads of Momento + near)")
    lines.append("")
    lines.append(
        f"  DynamoDB reads saved: {near.hits} of {near.reads} ({near.hit_rate:.0%}), "
        f"{near.near_hits} of them by the near cache; writes: {near.writes}"
    )
    counters = ", ".join(
        f"{name} {result.near_stats.get(name, 0)}"
        for name in ("near_hits", "evictions", "flushes", "publishes", "publish_failures")
    )
    lines.append(f'  stats()["(near cache)"] over the run: {counters}')
    lines.append(_p999_line([run.reads for run in result.runs]))
    lag = ""
    if near.lag_ms:
        p50, p99 = percentile(near.lag_ms, 0.5), percentile(near.lag_ms, 0.99)
        lag = f"; stream lag to Momento and the topic p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    lines.append(
        f"  stale reads = older than the last write acknowledged {grace:g} s before the read "
        f"({near.stale_any} of any age with the near cache{lag})"
    )
    lines.append(
        f"  behind push = older than a refresh the tailer had written to Momento and "
        f"published {grace:g} s before the read (a missed push would keep a near entry up "
        f"to {NEAR_CACHE_TTL:g} s)"
    )
    lines.extend(
        f"  {what} ({ROWS[run.mode]}): {detail.describe()}"
        for run in result.runs
        for what, details in (
            ("stale", run.stale_details),
            ("behind push", run.behind_push_details),
        )
        for detail in details
    )
    if result.plot is not None:
        lines.append(f"  plot: {result.plot}")
    else:
        lines.append("  plot: not written (pip install 'momento-botocore[demo]' for matplotlib)")
    return "\n".join(lines) + "\n"
