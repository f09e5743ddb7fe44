"""Benchmark 6: hit rate and stale reads under TTL only, stream delete, stream refresh."""

from __future__ import annotations

from benchmarks.context import BenchContext
from benchmarks.model import BenchResult, Figure
from momento_botocore.demo.workload import (
    LABELS,
    STREAM_MODES,
    WorkloadRun,
    WorkloadSpec,
    describe,
    run_mode,
    stream_support_missing,
)

# Rates the reader sustains on a busy 2-core machine in every mode (moto's server shares
# its process; the writer and the tailer have their own); a TTL short enough to expire
# entries a few times per run.
FULL = WorkloadSpec(items=1000, seconds=20.0, read_rate=150.0, write_rate=15.0, ttl=5.0)
QUICK = WorkloadSpec(
    items=200, seconds=4.0, read_rate=100.0, write_rate=10.0, ttl=1.5, bucket=0.5, grace=0.5
)


def run(ctx: BenchContext) -> BenchResult:
    spec = QUICK if ctx.quick else FULL
    missing = stream_support_missing()
    result = BenchResult("workload")
    runs: list[WorkloadRun] = []
    for mode in ("ttl", "delete", "refresh"):
        if mode in STREAM_MODES and missing is not None:
            result.figures.append(
                Figure(
                    "workload", f"hit rate, {LABELS[mode]}", unavailable=f"not available: {missing}"
                )
            )
            continue
        run = run_mode(ctx.moto, spec, mode, progress=ctx.console.update)
        runs.append(run)
        ctx.log(
            f"workload {LABELS[mode]}: {run.reads} reads, hit rate {run.hit_rate:.1%}, "
            f"stale {run.stale} (any age {run.stale_any})"
        )
        result.figures.append(
            Figure(
                "workload",
                f"hit rate, {run.label}",
                value=run.hit_rate,
                unit="fraction of reads",
                absolute={
                    "reads": run.reads,
                    "DynamoDB reads saved": run.hits,
                    "DynamoDB reads sent": run.sent,
                    "stale reads beyond lag": run.stale,
                    "stale reads any age": run.stale_any,
                    "steady hit rate": run.steady_hit_rate(),
                },
            )
        )
    by_mode = {run.mode: run for run in runs}
    for other, base in (("refresh", "ttl"), ("refresh", "delete")):
        if other in by_mode and base in by_mode and by_mode[base].hit_rate > 0:
            result.figures.append(
                Figure(
                    "workload",
                    f"hit rate, {LABELS[other]} / {LABELS[base]}",
                    ratio=by_mode[other].hit_rate / by_mode[base].hit_rate,
                    unit="hit rate",
                    absolute={
                        other: by_mode[other].hit_rate,
                        base: by_mode[base].hit_rate,
                    },
                    note="modes run one after the other on the same workload and seed",
                )
            )
    result.details = {"spec": describe(spec), "runs": [run.summary() for run in runs]}
    if runs:
        from benchmarks import plots

        path = plots.workload(runs, ctx.plot_dir / "workload.png")
        if path is not None:
            result.plots.append(str(path))
    return result
