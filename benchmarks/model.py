"""What a benchmark reports: figures (a ratio or a rate, with a goal) and details."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Direction = Literal["<=", ">="]


@dataclass(frozen=True)
class Goal:
    """``ratio <= 1.15`` or ``value >= 20000``: what the figure is held against."""

    direction: Direction
    target: float
    on: Literal["ratio", "value"] = "ratio"

    def met_by(self, figure: Figure) -> bool | None:
        measured = figure.ratio if self.on == "ratio" else figure.value
        if measured is None:
            return None
        return measured <= self.target if self.direction == "<=" else measured >= self.target

    def __str__(self) -> str:
        subject = "ratio" if self.on == "ratio" else "value"
        return f"{subject} {self.direction} {self.target:g}"


@dataclass
class Figure:
    """One reported number. ``ratio`` is other/base measured side by side in one run;
    ``absolute`` holds the numbers it came from (``{"hit": 112.0, "floor": 98.1}``)
    in ``unit``. ``value`` is the headline absolute (a rate) when there is one."""

    benchmark: str
    name: str
    ratio: float | None = None
    ratio_q1: float | None = None
    ratio_q3: float | None = None
    value: float | None = None
    unit: str = ""
    absolute: dict[str, float] = field(default_factory=dict)
    goal: Goal | None = None
    unavailable: str | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met_by(self)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = None if self.goal is None else str(self.goal)
        data["met"] = self.met
        return data


@dataclass
class BenchResult:
    """What one benchmark produced: figures, JSON-able details, plot files."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "figures": [figure.to_json() for figure in self.figures],
            "details": self.details,
            "plots": self.plots,
        }


def unavailable(benchmark: str, name: str, reason: str) -> BenchResult:
    """A benchmark that cannot run in this build: says so, with no figure."""
    return BenchResult(benchmark, [Figure(benchmark, name, unavailable=reason)])
