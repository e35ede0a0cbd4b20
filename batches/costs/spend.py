"""A project's spend this month, from the index, and a forecast for the month's end.

* **Created this month**: the estimated cost of the batches created since the first of the month
  (UTC), counted exactly as the insights page counts a date range
  (:func:`batches.oversight.insights.records` priced by :func:`batches.oversight.pricing.price_total`):
  the usage each batch reports, at batch rates.
* **Still to come**: for each unfinished batch created this month (not one being cancelled), what its
  remaining requests will cost. A batch that already reports usage for some finished requests is extended at its own cost per
  request; one that does not is priced at the cost per completed request of the same model over the
  project's finished batches of the last :data:`HISTORY_DAYS` days. A batch with no request count yet
  (still validating) or a model with no such history has no estimate, and is counted as such.
* **Month-to-date spend** = created + still to come.
* **Forecast** for the month's end: the spend extended at its run rate, ``spend × days in the month ÷
  days elapsed`` (at least one day elapsed, so the first hours of a month do not explode).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from ..models import BatchRecord
from ..oversight import insights, pricing
from ..upstream.types import TERMINAL_STATUSES

HISTORY_DAYS = 30
DAY_SECONDS = 86400


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def month_range(now: datetime) -> insights.DateRange:
    """The calendar month (UTC) of ``now``, as the insights page's date range."""
    first = month_start(now).date()
    last = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
    return insights.DateRange(first, last)


@dataclass
class MonthSpend:
    project: str
    now: datetime
    range: insights.DateRange
    #: The estimated cost of the batches created this month (with the ones it could not price).
    created: pricing.CostTotal
    #: The estimate of what the unfinished batches created this month still cost.
    remaining: Decimal
    running: int
    running_unestimated: int

    @property
    def spend(self) -> Decimal:
        return self.created.amount + self.remaining

    @property
    def days_in_month(self) -> int:
        return len(self.range.days)

    @property
    def elapsed_days(self) -> float:
        elapsed = (self.now - month_start(self.now)).total_seconds() / DAY_SECONDS
        return min(max(elapsed, 1.0), float(self.days_in_month))

    @property
    def forecast(self) -> Decimal:
        return self.spend * Decimal(self.days_in_month) / Decimal(str(round(self.elapsed_days, 6)))


def month_spend(project: str, now: datetime | None = None) -> MonthSpend:
    now = now or timezone.now()
    rng = month_range(now)
    created = insights.records([project], rng)
    unfinished = list(
        created.exclude(status__in=TERMINAL_STATUSES).values(
            "status", "model", "total_requests", "completed_requests", "failed_requests", "input_tokens", "cached_tokens", "output_tokens"
        )
    )
    per_request = _cost_per_request(project, {row["model"] for row in unfinished}, now)
    remaining = Decimal(0)
    unestimated = 0
    for row in unfinished:
        if row["status"] == "cancelling":
            continue  # only its in-flight requests finish, and their usage arrives with the batch
        left = max(row["total_requests"] - row["completed_requests"] - row["failed_requests"], 0)
        rate = _own_rate(row) or per_request.get(row["model"])
        if row["total_requests"] <= 0 or rate is None:
            unestimated += 1
            continue
        remaining += rate * left
    return MonthSpend(
        project=project, now=now, range=rng, created=pricing.price_total(created), remaining=remaining,
        running=len(unfinished), running_unestimated=unestimated,
    )


def _own_rate(row: dict) -> Decimal | None:
    """A running batch's cost per completed request so far, when it reports usage."""
    if not row["completed_requests"]:
        return None
    price = pricing.price_usage(row["model"] or "", row["input_tokens"], row["cached_tokens"], row["output_tokens"])
    if not price.known or not price.amount:
        return None
    return price.amount / row["completed_requests"]


def _cost_per_request(project: str, models: set[str], now: datetime) -> dict[str, Decimal]:
    """{model: cost per completed request} over the project's finished batches of the last
    :data:`HISTORY_DAYS` days that report usage (one grouped query)."""
    if not models:
        return {}
    since = int((now - timedelta(days=HISTORY_DAYS)).timestamp())
    history = BatchRecord.objects.filter(
        project=project, model__in=models, status__in=TERMINAL_STATUSES, created_at__gte=since, completed_requests__gt=0
    ).filter(pricing.has_usage_q())
    rows = list(pricing.usage_by_model(history).annotate(done=Sum("completed_requests")))
    total = pricing.total_of(rows)
    rates = {}
    for row in rows:
        amount, _ = total.by_model.get(row["model"] or "", (None, 0))
        if amount is not None and row["done"]:
            rates[row["model"]] = amount / row["done"]
    return rates
