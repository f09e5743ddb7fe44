"""Side-by-side timing: interleaved blocks, medians, ratios of medians per round.

Every figure the benchmarks report is measured this way: each round runs every
variant once (a block of calls), in an order that rotates from round to round,
so whatever else the machine is doing weighs on all variants alike. A variant's
figure is the median of its per-round values; a ratio is the median of the
per-round ratios, with the quartiles of those ratios as its spread.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.model import Figure, Goal


@dataclass
class Variant:
    """One side of a comparison: ``op`` does one operation.

    ``prepare`` runs before every call, untimed (per-call mode only), e.g. to
    empty the cache so the next call is a miss. ``enter``/``exit`` run around each
    block, untimed (e.g. to swap in an instrumented function).
    """

    name: str
    op: Callable[[], object]
    prepare: Callable[[], object] | None = None
    enter: Callable[[], object] | None = None
    exit: Callable[[], object] | None = None


Samples = dict[str, list[float]]


def measure(
    variants: Sequence[Variant],
    *,
    rounds: int,
    block: int,
    per_call: bool = False,
    warmup_rounds: int = 1,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Samples:
    """Seconds per operation for each variant, one value per round.

    Block mode times ``block`` calls together (for fast operations); per-call mode
    times each call on its own, runs ``prepare`` between calls, and takes the
    block's median (for slow, noisy operations such as HTTP round trips).

    ``clock`` is wall time by default. CPU-bound operations that run in this thread
    alone (a cache hit) are better timed with ``time.thread_time``: this thread's
    CPU time, which other processes on a busy machine do not inflate.
    """
    if rounds < 1 or block < 1:
        raise ValueError("rounds and block must be at least 1")
    samples: Samples = {variant.name: [] for variant in variants}
    gc.collect()
    count = len(variants)
    for number in range(-warmup_rounds, rounds):
        shift = number % count
        for variant in [*variants[shift:], *variants[:shift]]:
            if variant.enter is not None:
                variant.enter()
            try:
                value = (_per_call if per_call else _block)(variant, block, clock)
            finally:
                if variant.exit is not None:
                    variant.exit()
            if number >= 0:
                samples[variant.name].append(value)
        if progress is not None and number >= 0:
            progress(number + 1, rounds)
    return samples


def _block(variant: Variant, block: int, clock: Callable[[], float]) -> float:
    op = variant.op
    started = clock()
    for _ in range(block):
        op()
    return (clock() - started) / block


def _per_call(variant: Variant, block: int, clock: Callable[[], float]) -> float:
    op, prepare = variant.op, variant.prepare
    timings = []
    for _ in range(block):
        if prepare is not None:
            prepare()
        started = clock()
        op()
        timings.append(clock() - started)
    return statistics.median(timings)


@dataclass(frozen=True)
class Ratio:
    """``value`` = median of per-round ratios other/base; q1/q3 their quartiles."""

    value: float
    q1: float
    q3: float


def ratio(samples: Samples, other: str, base: str) -> Ratio:
    ratios = [o / b for o, b in zip(samples[other], samples[base], strict=True)]
    return Ratio(statistics.median(ratios), *quartiles(ratios))


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def median(samples: Samples, name: str) -> float:
    return statistics.median(samples[name])


def ratio_figure(
    benchmark: str,
    name: str,
    samples: Samples,
    other: str,
    base: str,
    *,
    scale: float = 1e6,
    unit: str = "us/call",
    extra: dict[str, float] | None = None,
    goal: Goal | None = None,
    note: str = "",
) -> Figure:
    """The figure ``other / base``, with both medians (times ``scale``, in ``unit``)."""
    r = ratio(samples, other, base)
    absolute = {other: median(samples, other) * scale, base: median(samples, base) * scale}
    return Figure(
        benchmark,
        name,
        ratio=r.value,
        ratio_q1=r.q1,
        ratio_q3=r.q3,
        unit=unit,
        absolute={**absolute, **(extra or {})},
        goal=goal,
        note=note,
    )
