"""The results as JSON and Markdown, and the machine they were measured on."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.model import BenchResult, Figure


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("botocore", "boto3", "moto", "momento", "momento-botocore"):
        versions[package] = _version(package)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_start": _load(),
        "versions": versions,
    }


def _version(package: str) -> str | None:
    """The version of the package this process imports (its metadata can disagree
    when several copies are installed)."""
    module = sys.modules.get(package.replace("-", "_"))
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def write_json(path: Path, info: dict[str, Any], results: Sequence[BenchResult]) -> None:
    info = {**info, "load_average_end": _load()}
    data = {"machine": info, "benchmarks": [result.to_json() for result in results]}
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(figure: Figure) -> str:
    if figure.ratio is None:
        return ""
    text = f"{figure.ratio:.3f}x"
    if (
        figure.ratio_q1 is not None
        and figure.ratio_q3 is not None
        and figure.ratio_q1 != figure.ratio_q3
    ):
        text += f" ({figure.ratio_q1:.2f}-{figure.ratio_q3:.2f})"
    return text


def _met(figure: Figure) -> str:
    met = figure.met
    return "" if met is None else ("yes" if met else "**no**")


def figure_rows(results: Sequence[BenchResult]) -> list[list[str]]:
    rows = []
    for result in results:
        for figure in result.figures:
            if figure.unavailable is not None:
                rows.append([result.name, figure.name, figure.unavailable, "", "", "", ""])
                continue
            absolute = ", ".join(f"{k} {_number(v)}" for k, v in figure.absolute.items())
            value = "" if figure.value is None else _number(figure.value)
            rows.append(
                [
                    result.name,
                    figure.name,
                    _ratio(figure),
                    value,
                    str(figure.goal) if figure.goal else "",
                    _met(figure),
                    f"{absolute} ({figure.unit})" if absolute else figure.unit,
                ]
            )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(info: dict[str, Any], results: Sequence[BenchResult], *, quick: bool) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    parts = [
        "# momento-botocore benchmark results\n",
        f"{info['date']}{' (--quick)' if quick else ''}. Python {info['python']} on "
        f"{info['platform']}, {info['cpus']} CPUs, load average at start "
        f"{info['load_average_start']}. {versions}.\n",
        "Ratios are medians of per-round ratios of interleaved blocks (quartiles in "
        "brackets); absolute figures are medians.\n",
        _table(
            ["benchmark", "figure", "ratio", "value", "goal", "met", "absolute"],
            figure_rows(results),
        ),
    ]
    for result in results:
        steps = result.details.get("steps")
        alone = result.details.get("alone_us")
        if steps:
            parts.append("\n## Where a hit's extra time goes (low-level client)\n")
            parts.append(
                "Each piece added one at a time; *in a call* is the median paired "
                "difference inside real `get_item` calls (this thread's CPU time).\n"
            )
            parts.append(
                _table(
                    ["piece", "us in a call"],
                    [[s["piece"], f"{s['in_call_us']:.1f}"] for s in steps],
                )
            )
        if alone:
            parts.append("\nThe same functions alone in a tight loop (best of 5):\n")
            parts.append(
                _table(["function", "us alone"], [[k, f"{v:.2f}"] for k, v in alone.items()])
            )
        runs = result.details.get("runs")
        if runs:
            parts.append(f"\n## Workload: {result.details.get('spec', '')}\n")
            parts.append(workload_table(runs))
        parts.extend(f"\n![{result.name}]({plot})\n" for plot in result.plots)
    return "\n".join(parts)


def workload_table(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for run in runs:
        lag = (
            f"{run['stream_lag_p50_ms']:.0f} / {run['stream_lag_p99_ms']:.0f}"
            if run.get("stream_lag_p50_ms") is not None
            else ""
        )
        rows.append(
            [
                run["label"],
                str(run["reads"]),
                f"{run['hit_rate']:.1%}",
                f"{run['steady_hit_rate']:.1%}",
                str(run["dynamodb_reads_saved"]),
                str(run["stale_reads"]),
                str(run["stale_reads_any_age"]),
                f"{run['read_p50_ms']:.2f} / {run['read_p99_ms']:.2f}",
                lag,
            ]
        )
    return _table(
        [
            "mode",
            "reads",
            "hit rate",
            "2nd half",
            "DynamoDB reads saved",
            "stale beyond lag",
            "stale any age",
            "read p50 / p99 ms",
            "stream lag p50 / p99 ms",
        ],
        rows,
    )
