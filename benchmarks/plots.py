"""The benchmarks' PNG plots, with matplotlib (the ``bench`` extra). Optional:
without matplotlib every function returns None and the runner says so."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.model import BenchResult
from momento_botocore.demo.plots import available, pyplot, save
from momento_botocore.demo.workload import WorkloadRun

MISSING = "matplotlib is not installed: pip install 'momento-botocore[bench]' for the plots"

__all__ = ["MISSING", "available", "bars", "hit_path", "workload"]


def workload(runs: Sequence[WorkloadRun], path: Path) -> Path | None:
    """Hit rate and stale reads per time bucket, one line per mode."""
    if not available() or not runs:
        return None
    plt = pyplot()
    figure, (rates, stale) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for run in runs:
        times = [b.start for b in run.buckets]
        rates.plot(times, [b.hit_rate * 100 for b in run.buckets], label=run.label, marker=".")
        stale.plot(
            times,
            [100 * b.stale / b.reads if b.reads else 0 for b in run.buckets],
            label=run.label,
            marker=".",
        )
    rates.set_ylabel("hit rate (%)")
    rates.set_ylim(0, 100)
    rates.legend(loc="lower right", fontsize="small")
    rates.grid(alpha=0.3)
    spec = runs[0].spec
    stale.set_ylabel(f"stale reads beyond {spec.grace:g} s (% of reads)")
    stale.set_ylim(bottom=0, top=max(1.0, stale.get_ylim()[1]))
    stale.set_xlabel("seconds")
    stale.grid(alpha=0.3)
    rates.set_title(
        f"Zipf workload: {spec.items} items, {spec.read_rate:g} reads/s, "
        f"{spec.write_rate:g} writes/s, TTL {spec.ttl:g} s"
    )
    return save(figure, plt, path)


def hit_path(result: BenchResult, breakdown: BenchResult | None, path: Path) -> Path | None:
    """Hit vs floor (absolute), and where the hit's extra time goes."""
    if not available():
        return None
    plt = pyplot()
    steps = breakdown.details.get("steps") if breakdown is not None else None
    columns = 2 if steps else 1
    figure, axes = plt.subplots(1, columns, figsize=(6 * columns, 4))
    bars = axes[0] if columns == 2 else axes
    labels, floors, hits = [], [], []
    for figure_row in result.figures:
        if figure_row.ratio is None:
            continue
        labels.append(figure_row.name.split("(")[-1].rstrip(")"))
        floors.append(figure_row.absolute["floor"])
        hits.append(figure_row.absolute["hit"])
    positions = range(len(labels))
    bars.bar([p - 0.2 for p in positions], floors, width=0.4, label="floor (prebuilt answer)")
    bars.bar([p + 0.2 for p in positions], hits, width=0.4, label="cache hit (memory)")
    for position, floor, hit in zip(positions, floors, hits, strict=True):
        bars.annotate(f"{hit / floor:.2f}x", (position + 0.2, hit), ha="center", va="bottom")
    bars.set_xticks(list(positions), labels)
    bars.set_ylabel("us per GetItem (median)")
    bars.set_title("GetItem hit vs botocore's floor")
    bars.legend(fontsize="small")
    if steps:
        pieces = axes[1]
        names = [step["piece"] for step in steps]
        values = [step["in_call_us"] for step in steps]
        pieces.barh(range(len(names)), values)
        pieces.set_yticks(range(len(names)), names, fontsize="small")
        pieces.invert_yaxis()
        pieces.set_xlabel("us added inside a call (median of paired rounds)")
        pieces.set_title("Where a hit's extra time goes")
    return save(figure, plt, path)


def bars(title: str, unit: str, values: dict[str, float], path: Path) -> Path | None:
    if not available() or not values:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.barh(range(len(values)), list(values.values()))
    axis.set_yticks(range(len(values)), list(values), fontsize="small")
    axis.invert_yaxis()
    axis.set_xlabel(unit)
    axis.set_title(title)
    return save(figure, plt, path)
