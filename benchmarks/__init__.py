"""The benchmarks (``make bench``, ``python -m benchmarks``): ratio benchmarks written as
JSON, Markdown and PNG. They run from a source checkout and are not installed with
the package; the local stand-ins they share with the demo (moto's server, the Zipf
workload) are in :mod:`momento_botocore.demo`.

Every figure is measured side by side in one run (see ``harness``). Benchmarks
that need a part this build lacks say "not available" instead of a figure.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from benchmarks.context import BenchContext
from benchmarks.model import BenchResult, Figure

#: name -> (what it measures, "module:function")
BENCHMARKS: dict[str, tuple[str, str]] = {
    "hit": ("GetItem hit vs botocore's floor (client, Table)", "hit:run"),
    "breakdown": ("where a hit's extra microseconds go", "hit:run_breakdown"),
    "miss": ("miss that fills vs uncached GetItem (moto server)", "miss:run"),
    "momento": ("hit via the Momento SDK vs memory hit", "momento_sdk:run"),
    "near_hit": (
        "GetItem hit from the near cache vs memory and Momento hits; its write cost and push",
        "near_hit:run",
    ),
    "batch": ("BatchGetItem of 100 hits vs one GetItem hit", "batch:run"),
    "invalidator": ("stream records/s through the handler", "invalidator:run"),
    "workload": ("Zipf workload: hit rate and stale reads, 3 modes", "staleness:run"),
    "query_zipf": (
        "Zipf Query workload: hit rate and stale pages, TTL only vs generations",
        "query_zipf:run",
    ),
}


def _function(name: str) -> Callable[[BenchContext], BenchResult]:
    module, _, function = BENCHMARKS[name][1].partition(":")
    found: Callable[[BenchContext], BenchResult] = getattr(
        importlib.import_module(f"benchmarks.{module}"), function
    )
    return found


def select(only: str | None) -> list[str]:
    """Benchmark names from ``--only a,b`` (all, in order, when None)."""
    if not only:
        return list(BENCHMARKS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return names


def run_bench(
    names: Sequence[str], *, quick: bool, out_dir: Path, out: TextIO = sys.stdout
) -> list[BenchResult]:
    """Run the benchmarks, write results.json, results.md and plots/ in ``out_dir``."""
    from benchmarks import plots, report

    out_dir.mkdir(parents=True, exist_ok=True)
    info = report.machine()
    ctx = BenchContext(quick=quick, out_dir=out_dir, out=out)
    results: list[BenchResult] = []
    ctx.log(
        f"python -m benchmarks{' --quick' if quick else ''}: {', '.join(names)} "
        f"(load average {info['load_average_start']})"
    )
    try:
        for name in names:
            started = time.monotonic()
            result = _function(name)(ctx)
            result.seconds = time.monotonic() - started
            results.append(result)
            for figure in result.figures:
                ctx.log(_one_line(figure))
    finally:
        ctx.close()
    by_name = {result.name: result for result in results}
    if "hit" in by_name:
        path = plots.hit_path(by_name["hit"], by_name.get("breakdown"), ctx.plot_dir / "hit.png")
        if path is not None:
            by_name["hit"].plots.append(str(path))
    if "invalidator" in by_name:
        rates = {f.name: f.value for f in by_name["invalidator"].figures if f.value is not None}
        path = plots.bars(
            "stream invalidator throughput", "records/s", rates, ctx.plot_dir / "invalidator.png"
        )
        if path is not None:
            by_name["invalidator"].plots.append(str(path))
    for result in results:  # relative to the Markdown file
        result.plots = [str(Path(p).relative_to(out_dir)) for p in result.plots]
    report.write_json(out_dir / "results.json", info, results)
    (out_dir / "results.md").write_text(report.markdown(info, results, quick=quick), "utf-8")
    if not plots.available():
        ctx.log(plots.MISSING)
    ctx.log(f"wrote {out_dir / 'results.json'}, {out_dir / 'results.md'} and {ctx.plot_dir}/")
    return results


def _one_line(figure: Figure) -> str:
    if figure.unavailable is not None:
        return f"{figure.name}: {figure.unavailable}"
    parts = [figure.name + ":"]
    if figure.ratio is not None:
        parts.append(f"{figure.ratio:.3f}x")
    if figure.value is not None:
        parts.append(f"{figure.value:,.3g} {figure.unit}".strip())
    absolute = ", ".join(f"{k} {v:,.4g}" for k, v in figure.absolute.items())
    if absolute and figure.ratio is not None:
        parts.append(f"({absolute} {figure.unit})")
    met = figure.met
    if met is not None:
        parts.append(f"[goal {figure.goal}: {'met' if met else 'MISSED'}]")
    return " ".join(parts)
