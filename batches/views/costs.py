"""Costs: a project's budget and month-to-date spend, and its estimated against its billed costs per
day (``/projects/<slug>/costs/``), or the same summed over every project the person may see
(``/costs/``), for the ``month`` (``YYYY-MM``, UTC) in the query string.

Everything is read from the database (the index, and what the billing pass fetched); the page makes no
upstream call. ``?format=csv`` downloads the day table. htmx swaps only the body when the month form is
submitted and pushes the URL, which renders the full page when opened cold.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ..conf import conf
from ..costs import compare
from ..costs.billing import last_state
from ..costs.budgets import budget_state
from ..costs.chart import day_chart
from ..costs.config import organization
from ..costs.models import CostAlert
from ..costs.spend import month_range
from ..oversight import insights, pricing
from ..projects import Project
from .pages import render_page, scoped_views


def parse_month(value: str | None, now: datetime) -> tuple[insights.DateRange, list[str]]:
    """The month ``YYYY-MM`` (UTC) up to today, or this month with a sentence saying why."""
    today = now.astimezone(UTC).date()
    value = (value or "").strip()
    problems = []
    chosen = today
    if value:
        try:
            chosen = date.fromisoformat(f"{value}-01")
        except ValueError:
            problems.append(f"“month” must look like 2026-01, not “{value[:40]}”; showing this month.")
        else:
            if chosen > today or chosen.year < 2000:
                problems.append(f"{value} is not a month with costs yet; showing this month.")
                chosen = today
    rng = month_range(datetime(chosen.year, chosen.month, 1, tzinfo=UTC))
    rng.end = min(rng.end, today)
    rng.problems = problems
    return rng, problems


def _costs(request: HttpRequest, projects: list[Project], url: str, project: Project | None) -> HttpResponse:
    now = timezone.now()
    rng, problems = parse_month(request.GET.get("month"), now)
    table = compare.comparison(projects, rng, now)
    if request.GET.get("format") == "csv":
        return _csv(table, project, rng)
    current = rng.start == month_range(now).start
    budgets = [(p, budget_state(p, now) if current else None) for p in projects]
    month = f"{rng.start:%Y-%m}"
    context = {
        "table": table,
        "chart": day_chart(table.rows),
        "range": rng,
        "month": month,
        "current_month": current,
        "problems": problems,
        "url": url,
        "page_name": "Costs",
        "body_id": "costs-body",
        "budgets": [(p, state) for p, state in budgets if state is not None],
        "unbudgeted": [p for p, state in budgets if p.budget is None],
        "alerts": CostAlert.objects.filter(project__in=[p.slug for p in projects], period__startswith=month),
        "scope_projects": projects,
        "without_project_id": [p for p in projects if not p.project_id],
        "admin_key": organization() is not None,
        "billing": last_state(),
        "sync_seconds": conf().costs_sync_seconds,
        "why": compare.WHY,
        "price_source": pricing.price_data_label(),
    }
    return render_page(request, "batches/costs/costs.html", context["body_id"], context)


def _text(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _usd(value) -> str:
    return "" if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


def _csv(table: compare.Comparison, project: Project | None, rng: insights.DateRange) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", "estimated_usd", "billed_usd", "difference_usd", "drift", "notes"])
    for row in table.rows:
        drift = "" if row.drift is None else f"{row.drift:.4f}"
        writer.writerow([row.day.isoformat(), _usd(row.estimated), _usd(row.billed), _usd(row.difference), drift,
                         _text("; ".join(row.notes))])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    scope = project.slug if project else "all-projects"
    response["Content-Disposition"] = f'attachment; filename="costs-{scope}-{rng.start:%Y-%m}.csv"'
    return response


project_costs, all_costs = scoped_views(_costs, "costs")
