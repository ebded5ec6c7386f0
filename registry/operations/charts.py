"""Charts as inline SVG drawn on the server: this module does the geometry, the Jinja macros in
``templates/operations/_charts.html`` the markup. No JavaScript, no styles in the markup (the
CSP allows none): every shape carries a class that ``registry.css`` colours.

A chart is a list of categories (the x axis) and one or more series of numbers; it keeps its
numbers so that the page can show them as a table beside the drawing.
"""

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 240
NONE = "\N{EN DASH}"  # no value
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 40


@dataclass(frozen=True)
class Series:
    key: str  # the CSS class suffix: series-<key>
    label: str
    values: list  # numbers, or None where there is nothing to show


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    css: str = ""


@dataclass(frozen=True)
class Line:
    css: str
    title: str
    points: str  # "x,y x,y ..." for a polyline
    dots: list  # Labels used as points: (x, y, text=title)


@dataclass
class Chart:
    """What a macro draws: a title, the numbers, and the shapes that show them."""

    id: str
    title: str
    description: str
    categories: list[str]
    series: list[Series]
    unit: str = ""
    category_label: str = "Week"  # the table's first column
    axis_labels: list[str] | None = None  # shorter words under the bars than in the table
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)  # value labels and axis labels
    gridlines: list[Label] = field(default_factory=list)  # y, with the tick's text

    @property
    def has_data(self) -> bool:
        return any(v for s in self.series for v in s.values)

    def summary(self) -> str:
        """The numbers in words, for the SVG's description (what a screen reader reads)."""
        parts = []
        for category, values in self.table_rows():
            if len(self.series) == 1:
                parts.append(f"{category}: {values[0]}")
            else:
                named = ", ".join(
                    f"{s.label.lower()} {v}" for s, v in zip(self.series, values, strict=True)
                )
                parts.append(f"{category}: {named}")
        return "; ".join(parts) + "." if parts else ""

    def table_rows(self) -> list[tuple[str, list[str]]]:
        """(category, formatted value per series), for the table beside the chart."""
        return [
            (category, [format_value(s.values[i], self.unit) for s in self.series])
            for i, category in enumerate(self.categories)
        ]


# Steps of a duration axis, in seconds: round minutes, hours and days.
DURATION_STEPS = (
    *(s for s in (1, 2, 5, 10, 15, 30)),
    *(60 * m for m in (1, 2, 5, 10, 15, 30)),
    *(3600 * h for h in (1, 2, 3, 6, 12)),
    *(86400 * d for d in (1, 2, 7, 14, 28)),
)
TICKS = 4  # gridlines above zero


def axis_ceiling(value: float, unit: str = "") -> float:
    """The top of the y axis: ``TICKS`` equal steps that read well (whole counts; round
    durations), the first multiple at or above ``value``."""
    if unit == "duration":
        step = next((s for s in DURATION_STEPS if s * TICKS >= value), None)
        return step * TICKS if step else nice_ceiling(value)
    step = max(nice_ceiling(value / TICKS), 1)
    if step == 2.5:  # pragma: no cover - nice_ceiling never gives 2.5 below 1
        step = 5
    return step * TICKS


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover


def format_value(value, unit: str = "") -> str:
    if value is None:
        return NONE
    if unit == "duration":
        return format_duration(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def format_duration(seconds: float | None) -> str:
    """A duration for people: "45 s", "12 min", "5.5 h", "3.2 days"."""
    if seconds is None:
        return NONE
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _plot_area(chart: Chart) -> tuple[float, float, float, float]:
    return LEFT, TOP, chart.width - LEFT - RIGHT, chart.height - TOP - BOTTOM


def _axes(chart: Chart, top_value: float) -> tuple[float, float]:
    """Gridlines and category labels; returns (scale: pixels per unit, slot width)."""
    left, top, width, height = _plot_area(chart)
    ceiling = axis_ceiling(top_value, chart.unit)
    scale = height / ceiling
    for i in range(TICKS + 1):
        value = ceiling * i / TICKS
        chart.gridlines.append(
            Label(left, top + height - value * scale, format_value(value, chart.unit), "end")
        )
    slot = width / max(len(chart.categories), 1)
    for i, category in enumerate(chart.axis_labels or chart.categories):
        chart.labels.append(
            Label(left + slot * (i + 0.5), top + height + 16, category, css="axis-label")
        )
    return scale, slot


def stacked_bars(chart_id, title, description, categories, series: list[Series], unit=""):
    """One bar per category, each series a segment, the total written above the bar."""
    chart = Chart(chart_id, title, description, list(categories), series, unit)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    scale, slot = _axes(chart, max(totals, default=0))
    left, top, _, height = _plot_area(chart)
    bar = slot * 0.64
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        base = top + height
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = value * scale
            base -= h
            text = f"{category}: {format_value(value, unit)} {s.label.lower()}"
            chart.rects.append(Rect(x, base, bar, h, f"series-{s.key}", text))
        if totals[i]:
            chart.labels.append(
                Label(x + bar / 2, base - 4, format_value(totals[i], unit), css="value-label")
            )
    return chart


def bars(chart_id, title, description, categories, values, key="bar", label="", unit="", axis=None):
    """One series of bars, each with its value written above it; ``axis``: shorter labels."""
    series = [Series(key, label or title, values)]
    return grouped_bars(chart_id, title, description, categories, series, unit, axis)


def grouped_bars(
    chart_id, title, description, categories, series: list[Series], unit="", axis=None
):
    """Bars side by side for each category, one per series, each with its value above it."""
    chart = Chart(chart_id, title, description, list(categories), series, unit)
    chart.axis_labels = list(axis) if axis else None
    top_value = max((v for s in series for v in s.values if v is not None), default=0)
    scale, slot = _axes(chart, top_value)
    left, top, _, height = _plot_area(chart)
    group = slot * 0.72
    bar = group / max(len(series), 1)
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            x = left + slot * i + (slot - group) / 2 + bar * j
            h = value * scale
            text = f"{category}: {format_value(value, unit)}"
            if len(series) > 1:
                text = f"{category}, {s.label}: {format_value(value, unit)}"
            chart.rects.append(Rect(x, top + height - h, bar * 0.9, h, f"series-{s.key}", text))
            chart.labels.append(
                Label(
                    x + bar * 0.45,
                    top + height - h - 4,
                    format_value(value, unit),
                    css="value-label",
                )
            )
    return chart


def lines(chart_id, title, description, categories, series: list[Series], unit=""):
    """One line per series across the categories; a missing value breaks nothing, it is skipped."""
    chart = Chart(chart_id, title, description, list(categories), series, unit)
    top_value = max((v for s in series for v in s.values if v is not None), default=0)
    scale, slot = _axes(chart, top_value)
    left, top, _, height = _plot_area(chart)
    for s in series:
        points, dots = [], []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            x, y = left + slot * (i + 0.5), top + height - value * scale
            points.append(f"{x:.1f},{y:.1f}")
            text = f"{chart.categories[i]}, {s.label}: {format_value(value, unit)}"
            dots.append(Label(x, y, text))
        chart.lines.append(Line(f"series-{s.key}", s.label, " ".join(points), dots))
    return chart
