"""Day-by-day insights over the index for a date range: batches by outcome, requests, tokens, cost by
model, failure rates and the median time to complete.

Days are UTC days, computed in SQL from the unix ``created_at`` (``created_at / 86400`` is integer
division on SQLite and PostgreSQL alike), and every number is a ``GROUP BY`` in the database; Python
only fills in empty days, prices each model once (see :mod:`.pricing`) and takes one median.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, QuerySet, Sum
from django.utils import timezone

from ..models import BatchRecord
from ..querystring import MAX_DATE, MIN_DATE, QueryForm, TextField
from ..vocabulary import BAD_OUTCOMES, TERMINAL_STATUSES
from . import pricing
from .charts import Chart, Series

DAY = 86400
DEFAULT_DAYS = 14
MAX_DAYS = 366
OUTCOMES = (
    ("completed", "completed", ("completed",)),
    ("failed", "failed", ("failed",)),
    ("expired", "expired", ("expired",)),
    ("cancelled", "cancelled", ("cancelled", "cancelling")),
)
UNFINISHED = ("unfinished", "unfinished")
MAX_MODELS = 7  # cost chart: the costliest models get their own colour, the rest are "other models"
CHARTS = ("outcomes", "requests", "tokens", "cost")


@dataclass
class DateRange:
    start: date
    end: date  # inclusive
    problems: list[str] = field(default_factory=list)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def start_ts(self) -> int:
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp())

    @property
    def end_ts(self) -> int:
        """Exclusive: midnight after ``end``."""
        return self.start_ts + len(self.days) * DAY

    def query(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


class RangeForm(QueryForm):
    """``from``/``to`` ISO dates (inclusive); the last 14 days by default. A bad value becomes a
    sentence in ``problems`` and its default is used."""

    def __init__(self, data, today: date) -> None:
        super().__init__(data)
        self.today = today
        # "from" is a Python keyword: the fields are named here rather than as class attributes.
        self.fields["from"] = TextField()
        self.fields["to"] = TextField()

    def _date(self, name: str) -> date | None:
        value = self.cleaned_data[name]
        if not value:
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            self.problem(f"“{name}” must be a date like 2026-01-31, not “{value[:40]}”.")
            return None
        if not MIN_DATE <= parsed <= MAX_DATE:
            self.problem(f"“{name}” ({value}) is out of range.")
            return None
        return parsed

    def clean_from(self) -> date | None:
        return self._date("from")

    def clean_to(self) -> date | None:
        return self._date("to")

    @property
    def range(self) -> DateRange:
        values = self.values
        end = values["to"] or self.today
        start = values["from"] or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            self.problem(
                f"“from” ({start.isoformat()}) is after “to” ({end.isoformat()}); showing the {DEFAULT_DAYS} days up to “to”."
            )
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        if (end - start).days + 1 > MAX_DAYS:
            self.problem(f"A range can span at most {MAX_DAYS} days; showing the {MAX_DAYS} days up to {end.isoformat()}.")
            start = end - timedelta(days=MAX_DAYS - 1)
        return DateRange(start, end, self.problems)


def parse_range(query, today: date | None = None) -> DateRange:
    return RangeForm(query, today or timezone.now().astimezone(UTC).date()).range


def records(projects: list[str], rng: DateRange) -> QuerySet:
    return BatchRecord.objects.filter(project__in=projects, created_at__gte=rng.start_ts, created_at__lt=rng.end_ts)


def day_expression():
    return ExpressionWrapper(F("created_at") / DAY, output_field=BigIntegerField())


@dataclass
class Insights:
    range: DateRange
    charts: dict[str, Chart]
    batches: int
    cost: pricing.CostTotal
    request_failure_rate: float | None
    finished_requests: int
    batch_failure_rate: float | None
    finished_batches: int
    median_seconds: float | None
    completed_batches: int

    @property
    def chart_list(self) -> list[Chart]:
        return [self.charts[slug] for slug in CHARTS]


def _day_index(rng: DateRange) -> dict[int, int]:
    """{day number since the epoch: its position in ``rng.days``}."""
    return {(rng.start_ts // DAY) + i: i for i in range(len(rng.days))}


def cost_chart(projects: list[str], rng: DateRange) -> Chart:
    """Only the estimated cost by model per day (the costs page compares it with the bill)."""
    return _cost(records(projects, rng), rng.days, _day_index(rng))


def build(projects: list[str], rng: DateRange) -> Insights:
    qs = records(projects, rng)
    days = rng.days
    index = _day_index(rng)
    charts = {
        "outcomes": _outcomes(qs, days, index),
        "requests": None,
        "tokens": None,
        "cost": _cost(qs, days, index),
    }
    charts["requests"], charts["tokens"], totals = _requests_and_tokens(qs, days, index)
    finished_batches = qs.filter(status__in=TERMINAL_STATUSES).count()
    bad_batches = qs.filter(status__in=BAD_OUTCOMES).count()
    durations = list(
        qs.filter(status="completed", completed_at__isnull=False)
        .annotate(seconds=ExpressionWrapper(F("completed_at") - F("created_at"), output_field=BigIntegerField()))
        .values_list("seconds", flat=True)
    )
    finished_requests = (totals["completed"] or 0) + (totals["failed"] or 0)
    return Insights(
        range=rng,
        charts=charts,
        batches=totals["batches"] or 0,
        cost=pricing.price_total(qs),
        request_failure_rate=(totals["failed"] or 0) / finished_requests if finished_requests else None,
        finished_requests=finished_requests,
        batch_failure_rate=bad_batches / finished_batches if finished_batches else None,
        finished_batches=finished_batches,
        median_seconds=statistics.median(durations) if durations else None,
        completed_batches=len(durations),
    )


def _outcomes(qs: QuerySet, days: list[date], index: dict[int, int]) -> Chart:
    names = [name for name, _, _ in OUTCOMES] + [UNFINISHED[0]]
    values = {name: [0.0] * len(days) for name in names}
    by_status = {status: name for name, _, statuses in OUTCOMES for status in statuses}
    for row in qs.annotate(day=day_expression()).values("day", "status").annotate(n=Count("id")).order_by():
        i = index.get(row["day"])
        if i is not None:
            values[by_status.get(row["status"], UNFINISHED[0])][i] += row["n"]
    series = [Series(label, values[name], f"outcome-{name}") for name, label, _ in OUTCOMES]
    series.append(Series(UNFINISHED[1], values[UNFINISHED[0]], "outcome-unfinished"))
    return Chart("outcomes", "Batches by outcome", "batches", days, series)


def _requests_and_tokens(qs: QuerySet, days: list[date], index: dict[int, int]):
    n = len(days)
    completed, failed = [0.0] * n, [0.0] * n
    uncached, cached, output = [0.0] * n, [0.0] * n, [0.0] * n
    rows = (
        qs.annotate(day=day_expression())
        .values("day")
        .annotate(
            completed=Sum("completed_requests"),
            failed=Sum("failed_requests"),
            input=Sum("input_tokens"),
            cached=Sum("cached_tokens"),
            output=Sum("output_tokens"),
        )
        .order_by()
    )
    for row in rows:
        i = index.get(row["day"])
        if i is None:
            continue
        completed[i] = row["completed"] or 0
        failed[i] = row["failed"] or 0
        cached[i] = row["cached"] or 0
        uncached[i] = max((row["input"] or 0) - cached[i], 0)
        output[i] = row["output"] or 0
    totals = qs.aggregate(batches=Count("id"), completed=Sum("completed_requests"), failed=Sum("failed_requests"))
    requests = Chart(
        "requests", "Requests", "requests", days,
        [Series("completed", completed, "outcome-completed"), Series("failed", failed, "outcome-failed")],
    )
    tokens = Chart(
        "tokens", "Tokens", "tokens", days,
        [Series("input (not cached)", uncached, "token-input"), Series("cached input", cached, "token-cached"), Series("output", output, "token-output")],
    )
    return requests, tokens, totals


def _cost(qs: QuerySet, days: list[date], index: dict[int, int]) -> Chart:
    per_model: dict[str, list[float]] = {}
    rows = (
        qs.filter(pricing.has_usage_q())
        .annotate(day=day_expression())
        .values("day", "model", "provider", "price_model")
        .annotate(input=Sum("input_tokens"), cached=Sum("cached_tokens"), output=Sum("output_tokens"))
        .order_by()
    )
    for row in rows:
        i = index.get(row["day"])
        if i is None:
            continue
        target = pricing.pricing_model(SimpleNamespace(**row))  # per provider (an Azure deployment's model)
        if isinstance(target, pricing.NoPrice):
            continue
        try:
            rates = pricing.rates_for(*target)
        except pricing.NoPrice:
            continue
        amount = rates.cost(row["input"] or 0, row["cached"] or 0, row["output"] or 0)
        per_model.setdefault(row["model"], [0.0] * len(days))[i] += float(amount)
    ranked = sorted(per_model.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [Series(model, values) for model, values in ranked[:MAX_MODELS]]
    if len(ranked) > MAX_MODELS:
        other = [sum(values[i] for _, values in ranked[MAX_MODELS:]) for i in range(len(days))]
        series.append(Series(f"{len(ranked) - MAX_MODELS} other models", other, "series-7"))
    return Chart("cost", "Estimated cost by model", "US dollars", days, series, money=True)
