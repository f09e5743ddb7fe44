"""The demo's PNG plot, with matplotlib (the ``demo`` extra). Optional: without
matplotlib every function returns None and the caller says so."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from momento_botocore.demo.workload import WorkloadRun

MISSING = "matplotlib is not installed: pip install 'momento-botocore[demo]' for the plots"


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def demo(
    uncached: WorkloadRun,
    cached: WorkloadRun,
    path: Path,
    *,
    cached_name: str = "with cache",
    cached_phrase: str = "with the cache",
    title: str = "momento-botocore demo: DynamoDB (moto) reads without and with the cache",
) -> Path | None:
    """Read latency by percentile, the tail stretched out (log scales), without and with
    the cache (and its hits and misses apart); hit rate and stale reads over time."""
    if not available():
        return None
    plt = pyplot()
    figure = plt.figure(figsize=(9, 8.5))
    grid = figure.add_gridspec(2, 2, height_ratios=(3, 2))
    tail = figure.add_subplot(grid[0, :])
    rates = figure.add_subplot(grid[1, 0])
    stale = figure.add_subplot(grid[1, 1])
    lines = (
        ("without cache", uncached.latencies_ms, "C0", "-"),
        (cached_name, cached.latencies_ms, "C1", "-"),
        (f"{cached_name}: hits", cached.hit_latencies_ms, "C1", ":"),
        (f"{cached_name}: misses", cached.miss_latencies_ms, "C1", "--"),
    )
    deepest = 0.0
    for label, values, color, style in lines:
        if not values:
            continue
        positions, latencies = _by_percentile(values)
        deepest = max(deepest, positions[-1])
        tail.plot(positions, latencies, style, color=color, label=f"{label} ({len(values)})")
    ticks = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99")]
    shown = [(_nines(q), name) for q, name in ticks if _nines(q) <= deepest + 1e-9]
    tail.set_xticks([x for x, _ in shown], [name for _, name in shown])
    tail.set_xlim(0, max(deepest, 1.0))
    tail.set_yscale("log")
    tail.set_xlabel("percentile (the tail stretched out: each step right is ten times rarer)")
    tail.set_ylabel("GetItem latency (ms)")
    tail.legend(fontsize="small", loc="upper left")
    tail.grid(alpha=0.3, which="both")
    tail.set_title(title)
    times = [b.start for b in cached.buckets]
    rates.plot(times, [b.hit_rate * 100 for b in cached.buckets], marker=".", color="C1")
    rates.set_ylabel(f"hit rate {cached_phrase} (%)")
    rates.set_xlabel("seconds into the run")
    rates.set_ylim(0, 100)
    rates.grid(alpha=0.3)
    spec = cached.spec
    stale.plot(times, [b.stale_any for b in cached.buckets], marker=".", label="any age")
    stale.plot(
        times, [b.stale for b in cached.buckets], marker=".", label=f"beyond {spec.grace:g} s"
    )
    stale.set_ylabel(f"stale reads {cached_phrase}")
    stale.set_xlabel("seconds into the run")
    stale.set_ylim(bottom=0, top=max(1.0, stale.get_ylim()[1]))
    stale.legend(fontsize="small")
    stale.grid(alpha=0.3)
    return save(figure, plt, path)


def _nines(fraction: float) -> float:
    """Where percentile ``fraction`` sits on the tail axis: p90 at 1, p99 at 2, p99.9 at 3."""
    return -math.log10(1.0 - fraction)


def _by_percentile(values: list[float]) -> tuple[list[float], list[float]]:
    """Every sample, sorted, at the tail-axis position of its percentile."""
    ordered = sorted(values)
    count = len(ordered)
    return [_nines((rank + 0.5) / count) for rank in range(count)], ordered


def save(figure: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
