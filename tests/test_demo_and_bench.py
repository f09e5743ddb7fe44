"""The demo and the benchmark runner, run small: they finish and report what they measured."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from benchmarks import BENCHMARKS, run_bench, select
from benchmarks.__main__ import main as bench_main
from momento_botocore.cli import main
from momento_botocore.demo import run_demo
from momento_botocore.demo.workload import percentile


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.strip().startswith(label + " "))
    return line.strip()[len(label) :].split()


def test_demo_runs_small_and_ends_with_its_table(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(items=40, seconds=3, out_dir=tmp_path, out=out)
    text = out.getvalue()

    assert result.uncached.reads > 0
    assert result.uncached.hits == 0
    assert result.cached.reads > 0
    assert result.cached.writes > 0
    assert result.cached.hit_rate > 0.5  # 40 hot items: most reads are hits
    assert result.cached.lag_ms, "the stream tailer applied no write"
    lines = [line.split() for line in text.splitlines()]
    header = ["reads", "hit", "rate", "p50", "ms", "p99", "ms", "p99.9", "ms", "stale", "reads"]
    assert header in lines
    reads, hit_rate, p50, p99, p999, stale = _row(text, "with cache")
    assert int(reads) == result.cached.reads
    assert hit_rate == f"{result.cached.hit_rate:.1%}"
    assert float(p50) == pytest.approx(result.cached.latency(0.5), abs=0.01)
    assert float(p99) == pytest.approx(result.cached.latency(0.99), abs=0.01)
    assert float(p999) == pytest.approx(result.cached.latency(0.999), abs=0.01)
    assert int(stale) == result.cached.stale
    assert _row(text, "without cache")[1] == "-"
    # The tail, hits and misses apart: every read of the cached run is one or the other.
    hits, misses = _row(text, "hits"), _row(text, "misses")
    assert int(hits[0]) + int(misses[0]) == result.cached.reads
    assert float(hits[1]) == pytest.approx(
        percentile(result.cached.hit_latencies_ms, 0.5), abs=0.01
    )
    assert f"DynamoDB reads saved: {result.cached.hits} of {result.cached.reads}" in text
    if result.plot is not None:
        assert result.plot.read_bytes().startswith(b"\x89PNG")
        assert f"plot: {result.plot}" in text
    else:
        assert "plot: not written" in text


def test_bench_writes_json_markdown_and_figures_with_ratios(tmp_path: Path) -> None:
    results = run_bench(["hit", "invalidator"], quick=True, out_dir=tmp_path, out=io.StringIO())
    data = json.loads((tmp_path / "results.json").read_text("utf-8"))
    assert [b["name"] for b in data["benchmarks"]] == ["hit", "invalidator"]
    assert data["machine"]["cpus"]
    assert data["machine"]["versions"]["botocore"]
    hit = data["benchmarks"][0]["figures"]
    assert [f["name"] for f in hit] == [
        "GetItem hit / floor (low-level client)",
        "GetItem hit / floor (Table)",
    ]
    for figure in hit:
        # Only the shape: hit and floor differ by ~10 %, within a loaded machine's noise.
        assert figure["ratio_q1"] <= figure["ratio"] <= figure["ratio_q3"]
        assert figure["ratio"] > 0
        assert figure["absolute"]["hit"] > 0
        assert figure["absolute"]["floor"] > 0
        assert figure["goal"] == "ratio <= 1.1"
        assert figure["met"] in (True, False)
    rates = data["benchmarks"][1]["figures"]
    assert [f["value"] > 0 for f in rates] == [True, True]
    markdown = (tmp_path / "results.md").read_text("utf-8")
    assert "| hit | GetItem hit / floor (low-level client) |" in markdown
    assert "stream records/s, batches of 1000" in markdown
    assert results[0].figures[0].ratio == hit[0]["ratio"]


def test_bench_momento_and_batch_figures_are_measured(tmp_path: Path) -> None:
    results = run_bench(["momento", "batch"], quick=True, out_dir=tmp_path, out=io.StringIO())
    momento, batch = (result.figures[0] for result in results)
    assert momento.unavailable is None
    assert batch.unavailable is None
    assert momento.ratio is not None
    assert momento.ratio > 1.0  # a gRPC round trip costs more
    assert momento.absolute["Momento hit"] > momento.absolute["memory hit"] > 0
    assert batch.ratio is not None
    assert batch.ratio > 1.0  # 100 hits cost more than one
    assert batch.absolute["per key in the batch"] < batch.absolute["GetItem hit"]
    (per_key,) = (f for f in results[1].figures if f.name.endswith("per key beyond the first"))
    assert per_key.value is not None
    assert per_key.value > 0
    assert str(per_key.goal) == "value <= 3"
    assert per_key.absolute["batch of 100"] > per_key.absolute["batch of 1"] > 0
    lookups = results[0].figures[1:]  # sequential gets vs get_many, without and with latency
    assert [f.name.startswith("Momento lookups of 100 keys") for f in lookups] == [True, True]
    for figure in lookups:
        assert figure.ratio is not None
        assert figure.ratio > 0
        assert set(figure.absolute) == {"get_many", "sequential gets"}
        assert min(figure.absolute.values()) > 0
    assert lookups[1].absolute["sequential gets"] >= 100  # 100 Gets, each held 1 ms


def test_bench_selection_by_name() -> None:
    assert select(None) == list(BENCHMARKS)
    assert select("miss, hit") == ["miss", "hit"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        select("hit,nope")


def test_bench_command_rejects_unknown_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--only", "nope"]) == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().out


def test_package_bench_command_says_where_the_benchmarks_went(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "--only", "hit", "--quick"]) == 2
    assert "python -m benchmarks" in capsys.readouterr().err
