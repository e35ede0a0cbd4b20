"""Stacked bar charts per day, drawn server-side as SVG: this module computes the shapes, the
``chart`` partial of ``templates/batches/insights.html`` draws them.

No chart script, nothing from another origin, no ``style=`` attribute: bars carry ``class="series-N"``
(or a semantic class) and dashboard.css colours them, so the strict CSP stays as it is. Each chart also
gives its numbers as table rows (for screen readers and the ``<details>`` under the chart) and as CSV.

One chart type covers every insight (batches by outcome, requests, tokens, cost by model); a chart
library would add a dependency and kilobytes of script or markup for no gain at this size.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .pricing import money

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28
MAX_X_LABELS = 8
TICKS = 4


@dataclass
class Series:
    name: str
    values: list[float]
    css_class: str = ""


@dataclass
class Chart:
    slug: str
    title: str
    unit: str  # what the y axis counts: "batches", "requests", "tokens", "US dollars"
    days: list[date]
    series: list[Series] = field(default_factory=list)
    money: bool = False

    def __post_init__(self) -> None:
        for index, series in enumerate(self.series):
            if not series.css_class:
                series.css_class = f"series-{index % 8}"

    # -- numbers ---------------------------------------------------------------------------------

    def totals(self) -> list[float]:
        return [sum(series.values[i] for series in self.series) for i in range(len(self.days))]

    @property
    def empty(self) -> bool:
        return not any(self.totals())

    def fmt(self, value: float) -> str:
        if self.money:
            return _money(value)
        if float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.2f}"

    @property
    def headers(self) -> list[str]:
        return ["Day", *(series.name for series in self.series), "Total"]

    @property
    def rows(self) -> list[list[str]]:
        totals = self.totals()
        return [
            [day.isoformat(), *(self.fmt(series.values[i]) for series in self.series), self.fmt(totals[i])]
            for i, day in enumerate(self.days)
        ]

    def csv(self) -> str:
        """The chart's numbers as CSV; text cells that a spreadsheet would run as a formula are quoted
        with a leading apostrophe (model names are data from the upstream)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([_cell(name) for name in ["day", *(series.name for series in self.series)]])
        for i, day in enumerate(self.days):
            writer.writerow([day.isoformat(), *(_number(series.values[i], self.money) for series in self.series)])
        return out.getvalue()

    # -- drawing ---------------------------------------------------------------------------------

    @property
    def drawing(self) -> dict:
        """The chart's shapes in SVG user units (the ``chart`` partial of insights.html draws them)."""
        plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        top_value = nice_ceiling(max(self.totals(), default=0))
        n = max(len(self.days), 1)
        slot = plot_w / n
        bar_w = max(slot * 0.8, 0.6)
        grid = []
        for tick in range(TICKS + 1):
            y = TOP + plot_h - plot_h * tick / TICKS
            grid.append({"y": _f(y), "label_y": _f(y + 4), "label": self.tick_label(top_value * tick / TICKS)})
        bars, labels = [], []
        step = max(math.ceil(len(self.days) / MAX_X_LABELS), 1)
        for i, day in enumerate(self.days):
            x = LEFT + slot * i + (slot - bar_w) / 2
            base = TOP + plot_h
            for series in self.series:
                value = series.values[i]
                if value <= 0 or top_value <= 0:
                    continue
                h = plot_h * value / top_value
                base -= h
                bars.append({
                    "css": series.css_class, "x": _f(x), "y": _f(base), "width": _f(bar_w), "height": _f(h),
                    "title": f"{day.isoformat()}: {series.name} {self.fmt(value)}",
                })
            if i % step == 0:
                labels.append({"x": _f(LEFT + slot * i + slot / 2), "text": day.strftime("%b %-d")})
        return {
            "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "label_x": LEFT - 6,
            "label_y": HEIGHT - 8, "title": f"{self.title} ({self.unit} per day)", "grid": grid, "bars": bars,
            "labels": labels, "middle_x": LEFT + plot_w // 2, "middle_y": TOP + plot_h // 2,
        }

    def tick_label(self, value: float) -> str:
        prefix = "$" if self.money else ""
        if value >= 1_000_000:
            return f"{prefix}{value / 1_000_000:g}M"
        if value >= 1_000:
            return f"{prefix}{value / 1_000:g}k"
        if self.money and 0 < value < 1:
            return f"${value:.6f}".rstrip("0").rstrip(".")
        return f"{prefix}{value:g}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value`` (0 stays 0: an empty chart)."""
    if value <= 0:
        return 0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10 ** (exponent + 1)


def _money(value: float) -> str:
    return money(Decimal(str(round(value, 6))))


def _f(value: float) -> str:
    return f"{value:.1f}"


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(value: float, money: bool) -> str:
    if money:
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return str(int(value)) if float(value).is_integer() else f"{value}"


__all__ = ["Chart", "Series", "nice_ceiling"]
