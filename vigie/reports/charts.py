"""Inline SVG charts as plain geometry: numbers and our own labels only.

The templates draw the SVG from these values (autoescaped like everything
else), so a report needs no script, no image file and no network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vigie.model import Severity

SEVERITY_COLOUR: Mapping[Severity, str] = {
    Severity.CRITICAL: "#7f1d1d",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#d97706",
    Severity.LOW: "#2563eb",
    Severity.INFO: "#6b7280",
}

GRADE_COLOUR: Mapping[str, str] = {
    "A+": "#15803d",
    "A": "#16a34a",
    "B": "#65a30d",
    "C": "#ca8a04",
    "D": "#ea580c",
    "E": "#dc2626",
    "F": "#7f1d1d",
}

CHART_WIDTH = 640
CHART_HEIGHT = 220
MARGIN_LEFT = 40
MARGIN_RIGHT = 110  # room for the legend
MARGIN_TOP = 12
MARGIN_BOTTOM = 28


@dataclass(frozen=True)
class Series:
    key: str  # severity value: the template translates it
    colour: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: tuple[tuple[float, float], ...]
    last: int


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    series: tuple[Series, ...]
    x_labels: tuple[tuple[float, datetime], ...]
    y_ticks: tuple[tuple[float, int], ...]

    @property
    def empty(self) -> bool:
        return not self.series


def _nice_top(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if value <= step * 4:
            return step * 4
    return value


def severity_line_chart(
    moments: Sequence[datetime],
    counts: Sequence[Mapping[Severity, int]],
    severities: Sequence[Severity],
) -> LineChart:
    """Open findings per severity over time, one line each."""
    plot_width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = _nice_top(max([c.get(s, 0) for c in counts for s in severities] + [1]))

    def x_at(index: int) -> float:
        if len(moments) == 1:
            return MARGIN_LEFT + plot_width / 2
        return round(MARGIN_LEFT + plot_width * index / (len(moments) - 1), 1)

    def y_at(value: int) -> float:
        return round(MARGIN_TOP + plot_height * (1 - value / top), 1)

    series = []
    for severity in severities:
        dots = tuple((x_at(i), y_at(c.get(severity, 0))) for i, c in enumerate(counts))
        series.append(
            Series(
                key=severity.value,
                colour=SEVERITY_COLOUR[severity],
                points=" ".join(f"{x},{y}" for x, y in dots),
                dots=dots,
                last=counts[-1].get(severity, 0) if counts else 0,
            )
        )
    label_every = max(1, len(moments) // 6)
    x_labels = tuple(
        (x_at(i), moment)
        for i, moment in enumerate(moments)
        if i % label_every == 0 or i == len(moments) - 1
    )
    y_ticks = tuple((y_at(v), v) for v in range(0, top + 1, top // 4))
    return LineChart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=MARGIN_LEFT,
        top=MARGIN_TOP,
        plot_width=plot_width,
        plot_height=plot_height,
        series=tuple(series) if moments else (),
        x_labels=x_labels,
        y_ticks=y_ticks,
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str
    x: float
    height: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    baseline: float
    bar_width: float
    bars: tuple[Bar, ...]


def grade_bar_chart(distribution: Mapping[str, int], grades: Sequence[str]) -> BarChart:
    """How many applications hold each grade."""
    width, height, bottom, top_margin = 420, 180, 30, 20
    plot_height = height - bottom - top_margin
    slot = (width - 20) / len(grades)
    highest = max([*distribution.values(), 1])
    bars = tuple(
        Bar(
            label=grade,
            value=distribution.get(grade, 0),
            colour=GRADE_COLOUR[grade],
            x=round(10 + slot * i + slot * 0.15, 1),
            height=round(plot_height * distribution.get(grade, 0) / highest, 1),
        )
        for i, grade in enumerate(grades)
    )
    return BarChart(
        width=width,
        height=height,
        baseline=height - bottom,
        bar_width=round(slot * 0.7, 1),
        bars=bars,
    )
