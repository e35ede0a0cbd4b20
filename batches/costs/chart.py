"""The geometry of the estimated-vs-billed chart: two bars per UTC day, as numbers for the template
``batches/costs/_chart.html`` (which holds all the markup; nothing here builds SVG)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..oversight.charts import nice_ceiling
from ..oversight.pricing import money

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28
TICKS = 4
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    css_class: str
    title: str


@dataclass(frozen=True)
class Mark:
    x: str
    y: str
    label: str


@dataclass
class DayChart:
    title: str
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Mark] = field(default_factory=list)
    days: list[Mark] = field(default_factory=list)
    empty: bool = True
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    middle_x: int = LEFT + (WIDTH - LEFT - RIGHT) // 2
    middle_y: int = TOP + (HEIGHT - TOP - BOTTOM) // 2


def _f(value: float) -> str:
    return f"{value:.1f}"


def day_chart(rows) -> DayChart:
    """Estimated (``series-0``) and billed (``series-1``) side by side for each :class:`DayRow`."""
    chart = DayChart(title="Estimated and billed cost (US dollars per day)")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [float(row.estimated) for row in rows] + [float(row.billed) for row in rows if row.billed is not None]
    top = nice_ceiling(max(values, default=0))
    chart.empty = top <= 0
    for tick in range(TICKS + 1):
        value = top * tick / TICKS
        chart.ticks.append(Mark(str(LEFT - 6), _f(TOP + plot_h - plot_h * tick / TICKS), _tick(value)))
    slot = plot_w / max(len(rows), 1)
    bar_w = max(slot * 0.4, 0.3)
    step = max(math.ceil(len(rows) / MAX_X_LABELS), 1)
    for i, row in enumerate(rows):
        x = LEFT + slot * i + slot * 0.1
        for offset, (name, value, css) in enumerate((("estimated", row.estimated, "series-0"), ("billed", row.billed, "series-1"))):
            if value is None or value <= 0 or top <= 0:
                continue
            h = plot_h * float(value) / top
            title = f"{row.day.isoformat()}: {name} {money(value)}"
            chart.bars.append(Bar(_f(x + offset * bar_w), _f(TOP + plot_h - h), _f(bar_w), _f(h), css, title))
        if i % step == 0:
            chart.days.append(Mark(_f(LEFT + slot * i + slot / 2), str(HEIGHT - 8), row.day.strftime("%b %-d")))
    return chart


def _tick(value: float) -> str:
    if value >= 1000:
        return f"${value / 1000:g}k"
    if 0 < value < 1:
        return f"${value:.4f}".rstrip("0").rstrip(".")
    return f"${value:g}"
