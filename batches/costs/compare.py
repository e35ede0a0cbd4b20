"""Estimated against billed, per UTC day, and the drift between them.

The estimate of a day is the insights page's: the batches *created* that day, priced from their usage
at batch rates (:mod:`batches.oversight.insights`, cost chart). The bill of a day is what the Admin API
reports for the project that day, every line item (billed by when requests ran, and for everything
the project used, not only batches). So they can differ, and the page says why (see :data:`WHY`).

Drift is ``(billed − estimated) ÷ billed`` over the last :data:`DRIFT_DAYS` complete days that have
billing data; above the budget's ``drift_alert`` (either way) it raises one notification per UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..oversight import insights, pricing
from ..projects import Project
from .alerts import raise_drift
from .models import BilledCost, BilledUsage, BillingSync

DRIFT_DAYS = 7
money = pricing.money

WHY = (
    "A batch is estimated on the day it was created; the bill counts its requests on the days they ran, so a batch "
    "crossing midnight moves cost to the next day.",
    "Prices change: the estimate uses today's price table (genai-prices), the bill the prices of the day.",
    "Negotiated rates in DASHBOARD_PRICE_OVERRIDES replace the price table in the estimate only.",
    "The bill has requests the estimate misses: everything else the project used (not only batches), batches the index "
    "has not seen yet, and batches without a known price.",
    "The bill can lag a few hours: today's figure is still growing.",
)


@dataclass
class DayRow:
    day: date
    estimated: Decimal
    #: None: no billing data for that day (not fetched yet, or no admin key).
    billed: Decimal | None
    crossing_midnight: int = 0
    unpriced: int = 0
    today: bool = False

    @property
    def difference(self) -> Decimal | None:
        return None if self.billed is None else self.billed - self.estimated

    @property
    def difference_display(self) -> str:
        """“+$1.20” (billed more than estimated), “−$0.40”, or “—” without a bill."""
        difference = self.difference
        if difference is None:
            return "—"
        return ("−" if difference < 0 else "+") + money(abs(difference))

    @property
    def drift(self) -> float | None:
        """The difference as a fraction of the bill (None without a bill, or with a bill of $0)."""
        if self.billed is None or not self.billed:
            return None
        return float((self.billed - self.estimated) / self.billed)

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.today:
            notes.append("today: the bill is still growing")
        if self.crossing_midnight:
            notes.append(f"{self.crossing_midnight} batch{'es' if self.crossing_midnight != 1 else ''} ran past midnight")
        if self.unpriced:
            notes.append(f"{self.unpriced} batch{'es' if self.unpriced != 1 else ''} without a known price")
        return notes


@dataclass
class Comparison:
    range: insights.DateRange
    rows: list[DayRow]
    line_items: list[tuple[str, Decimal]] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    other_currencies: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> Decimal:
        return sum((row.estimated for row in self.rows), Decimal(0))

    @property
    def billed(self) -> Decimal | None:
        billed = [row.billed for row in self.rows if row.billed is not None]
        return sum(billed, Decimal(0)) if billed else None

    @property
    def billed_days(self) -> int:
        return sum(1 for row in self.rows if row.billed is not None)


def coverage() -> tuple[date, date] | None:
    """The days the last successful billing pass fetched (inclusive)."""
    state = BillingSync.objects.filter(last_success__isnull=False).exclude(first_day=None).first()
    return (state.first_day, state.last_day) if state else None


def comparison(projects: list[Project], rng: insights.DateRange, now: datetime | None = None) -> Comparison:
    """Per day of ``rng``: the estimate of ``projects`` together, and their bill (projects without a
    ``project`` id have none)."""
    today = (now or timezone.now()).astimezone(UTC).date()
    slugs = [project.slug for project in projects]
    ids = [project.project_id for project in projects if project.project_id]
    estimated = insights.cost_chart(slugs, rng).totals()
    covered = coverage() if ids else None
    billed_rows = BilledCost.objects.filter(upstream_project__in=ids, day__gte=rng.start, day__lte=rng.end)
    billed = dict(billed_rows.filter(currency="usd").values_list("day").annotate(total=Sum("amount")).order_by())
    crossing, unpriced = _index_notes(slugs, rng)
    rows = []
    for i, day in enumerate(rng.days):
        has_bill = covered is not None and covered[0] <= day <= covered[1]
        rows.append(DayRow(
            day=day, estimated=Decimal(str(round(estimated[i], 6))),
            billed=billed.get(day, Decimal(0)) if has_bill else None,
            crossing_midnight=crossing.get(day, 0), unpriced=unpriced.get(day, 0), today=day == today,
        ))
    items = billed_rows.filter(currency="usd").values_list("line_item").annotate(total=Sum("amount")).order_by("-total", "line_item")
    others = sorted(set(billed_rows.exclude(currency="usd").values_list("currency", flat=True)))
    return Comparison(rng, rows, list(items), _models(slugs, ids, rng), others)


def _index_notes(slugs: list[str], rng: insights.DateRange) -> tuple[dict[date, int], dict[date, int]]:
    """Per day created: batches that finished on a later UTC day, and batches without usage to price."""
    qs = insights.records(slugs, rng).annotate(day=insights.day_expression())
    ended = Coalesce("completed_at", "expired_at", "cancelled_at", "failed_at")
    end_day = ExpressionWrapper(ended / insights.DAY, output_field=BigIntegerField())
    crossing = qs.annotate(end_day=end_day).filter(end_day__gt=F("day")).values("day").annotate(n=Count("id")).order_by()
    unpriced = qs.exclude(pricing.has_usage_q()).values("day").annotate(n=Count("id")).order_by()

    def by_day(rows):
        return {_date(row["day"]): row["n"] for row in rows}

    return by_day(crossing), by_day(unpriced)


def _date(day_number: int) -> date:
    return datetime.fromtimestamp(day_number * insights.DAY, tz=UTC).date()


def _models(slugs: list[str], ids: list[str], rng: insights.DateRange) -> list[dict]:
    """Per model: the tokens the index has for the range's batches, and the batch tokens the Admin API
    billed (``usage/completions``, ``batch=true``)."""
    index = {row["model"] or "": row for row in pricing.usage_by_model(insights.records(slugs, rng))}
    usage = (
        BilledUsage.objects.filter(upstream_project__in=ids, day__gte=rng.start, day__lte=rng.end)
        .values("model")
        .annotate(input=Sum("input_tokens"), cached=Sum("cached_tokens"), output=Sum("output_tokens"), requests=Sum("requests"))
        .order_by()
    )
    billed = {row["model"]: row for row in usage}
    rows = []
    for model in sorted(set(index) | set(billed)):
        ours, theirs = index.get(model, {}), billed.get(model, {})
        rows.append({
            "model": model, "batches": ours.get("batches", 0),
            "index_input": ours.get("input") or 0, "index_cached": ours.get("cached") or 0, "index_output": ours.get("output") or 0,
            "billed": bool(theirs), "billed_requests": theirs.get("requests") or 0, "billed_input": theirs.get("input") or 0,
            "billed_cached": theirs.get("cached") or 0, "billed_output": theirs.get("output") or 0,
        })
    return rows


def check_drift(project: Project, now: datetime | None = None):
    """Raise a drift alert (once per UTC day) when the last complete billed days of ``project`` drift
    from their estimate by more than its budget's ``drift_alert``."""
    now = now or timezone.now()
    if project.budget is None or not project.project_id:
        return None
    today = now.astimezone(UTC).date()
    rng = insights.DateRange(today - timedelta(days=DRIFT_DAYS), today - timedelta(days=1))
    days = [row for row in comparison([project], rng, now).rows if row.billed is not None]
    if not days:
        return None
    estimated = sum((row.estimated for row in days), Decimal(0))
    billed = sum((row.billed for row in days), Decimal(0))
    if billed <= 0:
        return None
    drift = (billed - estimated) / billed
    if abs(drift) <= Decimal(str(project.budget.drift_alert)):
        return None
    way = "more" if drift > 0 else "less"
    sentence = (
        f"{project.name}'s bill for {days[0].day} to {days[-1].day} is {money(billed)}, {abs(drift) * 100:.1f} % {way} "
        f"than the dashboard's estimate of {money(estimated)} (drift_alert is {project.budget.drift_alert * 100:g} %). "
        "The costs page lists the days and why they can differ."
    )
    return raise_drift(project, estimated, billed, sentence, now)
