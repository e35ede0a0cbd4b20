"""The estimated-vs-billed chart: two bars per UTC day, side by side, as the shapes the insights page's
``chart`` partial draws (``templates/batches/insights.html#chart``, the one SVG template of the
dashboard; :attr:`batches.oversight.charts.Chart.drawing` has the same keys). Nothing here builds markup."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..oversight.charts import BOTTOM, HEIGHT, LEFT, MAX_X_LABELS, RIGHT, TICKS, TOP, WIDTH, nice_ceiling
from ..oversight.pricing import money

SERIES = (("estimated", "series-0"), ("billed", "series-1"))


@dataclass
class DayChart:
    slug: str = "costs"
    title: str = "Estimated and billed cost"
    empty: bool = True
    drawing: dict = field(default_factory=dict)
    series: tuple = SERIES


def _f(value: float) -> str:
    return f"{value:.1f}"


def _tick(value: float) -> str:
    if value >= 1000:
        return f"${value / 1000:g}k"
    if 0 < value < 1:
        return f"${value:.4f}".rstrip("0").rstrip(".")
    return f"${value:g}"


def day_chart(rows) -> DayChart:
    """Estimated (``series-0``) and billed (``series-1``) for each :class:`~batches.costs.compare.DayRow`."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [float(row.estimated) for row in rows] + [float(row.billed) for row in rows if row.billed is not None]
    top = nice_ceiling(max(values, default=0))
    grid = []
    for tick in range(TICKS + 1):
        y = TOP + plot_h - plot_h * tick / TICKS
        grid.append({"y": _f(y), "label_y": _f(y + 4), "label": _tick(top * tick / TICKS)})
    slot = plot_w / max(len(rows), 1)
    bar_w = max(slot * 0.4, 0.3)
    step = max(math.ceil(len(rows) / MAX_X_LABELS), 1)
    bars, labels = [], []
    for i, row in enumerate(rows):
        x = LEFT + slot * i + slot * 0.1
        for offset, ((name, css), value) in enumerate(zip(SERIES, (row.estimated, row.billed))):
            if value is None or value <= 0 or top <= 0:
                continue
            h = plot_h * float(value) / top
            bars.append({"css": css, "x": _f(x + offset * bar_w), "y": _f(TOP + plot_h - h), "width": _f(bar_w),
                         "height": _f(h), "title": f"{row.day.isoformat()}: {name} {money(value)}"})
        if i % step == 0:
            labels.append({"x": _f(LEFT + slot * i + slot / 2), "text": row.day.strftime("%b %-d")})
    drawing = {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "label_x": LEFT - 6, "label_y": HEIGHT - 8,
        "title": "Estimated and billed cost (US dollars per day)", "grid": grid, "bars": bars, "labels": labels,
        "middle_x": LEFT + plot_w // 2, "middle_y": TOP + plot_h // 2,
    }
    return DayChart(empty=top <= 0, drawing=drawing)
