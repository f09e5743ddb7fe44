"""The demo's PNG plot, with matplotlib (the ``demo`` extra). Optional: without
matplotlib every function returns None and the caller says so."""

from __future__ import annotations

import importlib.util
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


def demo(uncached: WorkloadRun, cached: WorkloadRun, path: Path) -> Path | None:
    """Read latency without and with the cache, hit rate and stale reads, over time."""
    if not available():
        return None
    plt = pyplot()
    figure, (latency, rates, stale) = plt.subplots(3, 1, figsize=(8, 8))
    for run, label in ((uncached, "without cache"), (cached, "with cache")):
        times = [b.start for b in run.buckets]
        for fraction, style in ((0.5, "-"), (0.99, ":")):
            latency.plot(
                times,
                [_percentile(b.latencies_ms, fraction) for b in run.buckets],
                style,
                marker=".",
                label=f"{label}, p{int(fraction * 100)}",
            )
    latency.set_yscale("log")
    latency.set_ylabel("GetItem latency (ms)")
    latency.set_xlabel("seconds into each run")
    latency.legend(fontsize="small")
    latency.grid(alpha=0.3)
    latency.set_title("momento-botocore demo: DynamoDB (moto) with and without the cache")
    times = [b.start for b in cached.buckets]
    rates.plot(times, [b.hit_rate * 100 for b in cached.buckets], marker=".", color="C1")
    rates.set_ylabel("hit rate (%)")
    rates.set_ylim(0, 100)
    rates.grid(alpha=0.3)
    spec = cached.spec
    stale.plot(times, [b.stale_any for b in cached.buckets], marker=".", label="any age")
    stale.plot(
        times, [b.stale for b in cached.buckets], marker=".", label=f"beyond {spec.grace:g} s"
    )
    stale.set_ylabel("stale reads")
    stale.set_xlabel("seconds with the cache")
    stale.set_ylim(bottom=0, top=max(1.0, stale.get_ylim()[1]))
    stale.legend(fontsize="small")
    stale.grid(alpha=0.3)
    return save(figure, plt, path)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def save(figure: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
