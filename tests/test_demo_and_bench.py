"""The demo and the benchmark runner, run small: they finish and report what they measured."""

from __future__ import annotations

import io
import json
import re
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


def _cells(text: str, label: str) -> list[str]:
    """The cells of the table's row ``label`` (exactly: "Momento" is not "Momento hits")."""
    pattern = re.compile(rf"^\s+{re.escape(label)}\s+(?=\d)(.*)$")
    (row,) = (
        found.group(1).split() for line in text.splitlines() if (found := pattern.match(line))
    )
    return row


def test_demo_near_cache_mode_runs_small_with_no_read_behind_a_push(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["demo", "--near-cache", "--items", "40", "--seconds", "3", "--out", str(tmp_path)])
        == 0
    )
    text = capsys.readouterr().out

    header = ["reads", "hit", "rate", "near", "hits", "p50", "ms", "p99", "ms", "p99.9", "ms"]
    header += ["stale", "reads", "behind", "push"]
    assert header in [line.split() for line in text.splitlines()]
    uncached, momento, near = (
        _cells(text, label) for label in ("without cache", "Momento", "Momento + near")
    )
    assert uncached[1:3] == ["-", "-"]
    assert uncached[-1] == "-"
    assert momento[2] == "-"  # no near cache there
    reads = int(near[0])
    assert reads > 0
    assert int(momento[0]) == int(uncached[0]) == reads  # side by side: a read each per tick
    near_hits, shared_hits, misses = (
        int(_cells(text, label)[0]) for label in ("near hits", "Momento hits", "misses")
    )
    assert near_hits + shared_hits + misses == reads
    assert near_hits > 0
    assert near[2] == f"{near_hits / reads:.1%}"
    counters = re.search(r'stats\(\)\["\(near cache\)"\] over the run: (.*)', text)
    assert counters is not None
    near_stats = dict(part.rsplit(" ", 1) for part in counters.group(1).split(", "))
    assert int(near_stats["near_hits"]) == near_hits  # the reader's count and stats() agree
    assert int(near_stats["evictions"]) > 0, "no push reached the reader's near cache"
    assert int(near_stats["publishes"]) == 0  # the reader only reads: the tailer publishes
    # No read older than a refresh the tailer had written to Momento and published 1 s
    # before it: a push's delivery is the only allowance (the stream's lag is not in it,
    # so a loaded machine cannot make it fail; "stale reads", against the writer's
    # acknowledgements, includes moto's stream lag and is only reported).
    assert momento[-1] == "0"
    assert near[-1] == "0", text
    assert "behind push (" not in text


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
