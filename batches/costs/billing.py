"""The billing pass: billed costs and batch usage per project and day, from the Admin API into the
database, then the budget and drift checks.

Any number of instances may run ``manage.py sync_costs``. A pass first claims the organization's
:class:`~batches.costs.models.BillingSync` row with one conditional ``UPDATE`` (the lease is free or
expired, *and* the last success is older than ``DASHBOARD_COSTS_SYNC_SECONDS``) and works only when
exactly one row changed, the pattern of ``batches/index/lease.py``; it releases the lease when done.
A holder that dies stops nothing for long: its lease expires after :data:`LEASE_SECONDS`.

What a pass fetches: every day from the first of the previous month (UTC) to now, for the projects
whose ``project`` id is set, grouped by project and line item (costs) and by project and model (batch
usage), every page. The days fetched are replaced as a whole in one transaction, so a pass that fails
half-way leaves the previous figures, and a day's figures are never a mix of two passes.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import conf
from ..projects import Project, all_projects
from ..upstream import UpstreamError
from ..upstream.admin import admin_client_for
from . import alerts, compare
from .config import organization
from .models import BilledCost, BilledUsage, BillingSync
from .spend import month_start

logger = logging.getLogger("batches.costs")

SYNC_NAME = "organization"
LEASE_SECONDS = 600


@dataclass
class PassResult:
    ran: bool
    summary: str
    error: str = ""
    calls: int = 0


def new_owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _state() -> BillingSync:
    # get_or_create is race-safe: a concurrent creator's IntegrityError ends in a read of its row.
    return BillingSync.objects.get_or_create(name=SYNC_NAME)[0]


def claim(owner: str, now: datetime, *, force: bool = False) -> bool:
    """Take the lease for one pass; True only when this call's UPDATE changed the row (the lease was
    free or expired, and a pass is due unless ``force``)."""
    _state()
    free = Q(lease_owner="") | Q(lease_expires__isnull=True) | Q(lease_expires__lt=now)
    due = Q(last_success__isnull=True) | Q(last_success__lte=now - timedelta(seconds=conf().costs_sync_seconds))
    rows = BillingSync.objects.filter(name=SYNC_NAME).filter(free)
    if not force:
        rows = rows.filter(due)
    changed = rows.update(lease_owner=owner, lease_expires=now + timedelta(seconds=LEASE_SECONDS), last_pass_started=now)
    return changed == 1


def _finish(owner: str, **fields) -> None:
    """Record how the pass went and give the lease up, if it is still ours."""
    BillingSync.objects.filter(name=SYNC_NAME, lease_owner=owner).update(lease_owner="", lease_expires=None, **fields)


def billing_pass(owner: str, now: datetime | None = None, *, force: bool = False) -> PassResult:
    """One pass: fetch and store billed costs and batch usage (when an admin key is configured and
    the pass is due and ours), then check every budget and drift."""
    now = now or timezone.now()
    org = organization()
    projects = [project for project in all_projects() if project.project_id]
    if org is None:
        result = PassResult(False, "no [organization] admin key is configured: billed costs are not fetched")
    elif not projects:
        result = PassResult(False, "no project has its OpenAI project id (`project`) set: billed costs cannot be matched")
    elif not claim(owner, now, force=force):
        result = PassResult(False, "not due, or another instance is fetching billed costs")
    else:
        result = _fetch(owner, org, projects, now)
    for project in all_projects():
        alerts.check_budget(project.slug, now)
        if project.budget is not None and project.project_id:
            compare.check_drift(project, now)
    return result


def _fetch(owner: str, org, projects: list[Project], now: datetime) -> PassResult:
    client = admin_client_for(org)
    first_day = (month_start(now) - timedelta(days=1)).replace(day=1).date()
    start = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp())
    end = int(now.timestamp())
    ids = [project.project_id for project in projects]
    calls_before = client.calls
    try:
        costs = client.costs(start_time=start, end_time=end, project_ids=ids)
        usage = client.batch_usage(start_time=start, end_time=end, project_ids=ids)
    except UpstreamError as err:
        calls = client.calls - calls_before
        logger.warning("billing pass failed: %s (status %s, request id %s)", err, err.status_code, err.request_id)
        _finish(owner, last_error=str(err), last_pass_calls=calls)
        return PassResult(True, f"failed after {calls} call(s): {err}", error=str(err), calls=calls)
    last_day = now.astimezone(UTC).date()
    with transaction.atomic():
        cost_rows, usage_rows = store(costs, usage, ids, first_day, last_day, now)
        calls = client.calls - calls_before
        _finish(owner, last_success=now, last_error="", last_pass_calls=calls, first_day=first_day, last_day=last_day)
    summary = f"{cost_rows} billed line items and {usage_rows} model-days of batch usage for {len(ids)} project(s), {first_day} to {last_day}, in {calls} call(s)"
    logger.info("billing pass: %s", summary)
    return PassResult(True, summary, calls=calls)


def _day(timestamp: int) -> date:
    return datetime.fromtimestamp(timestamp, tz=UTC).date()


def store(costs, usage, ids: list[str], first_day: date, last_day: date, now: datetime) -> tuple[int, int]:
    """Replace the fetched days' billed costs and usage of ``ids`` (call inside a transaction).
    Results for a project that is not configured are left out; repeats of a key are summed."""
    wanted = set(ids)
    amounts: dict[tuple, list] = defaultdict(lambda: [Decimal(0), None, ""])
    for bucket in costs:
        for result in bucket.results:
            if result.project_id not in wanted:
                continue
            entry = amounts[(result.project_id, _day(bucket.start_time), result.line_item or "", result.currency)]
            entry[0] += result.amount
            if result.quantity is not None:
                entry[1] = (entry[1] or 0.0) + result.quantity
            entry[2] = result.quantity_unit or entry[2]
    tokens: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for bucket in usage:
        for result in bucket.results:
            if result.project_id not in wanted:
                continue
            entry = tokens[(result.project_id, _day(bucket.start_time), result.model or "")]
            for i, value in enumerate((result.input_tokens, result.cached_tokens, result.output_tokens, result.requests)):
                entry[i] += value
    span = {"upstream_project__in": ids, "day__gte": first_day, "day__lte": last_day}
    BilledCost.objects.filter(**span).delete()
    BilledUsage.objects.filter(**span).delete()
    BilledCost.objects.bulk_create(
        BilledCost(upstream_project=p, day=d, line_item=item[:300], currency=cur[:8], amount=amount, quantity=qty,
                   quantity_unit=(unit or "")[:32], fetched_at=now)
        for (p, d, item, cur), (amount, qty, unit) in amounts.items()
    )
    BilledUsage.objects.bulk_create(
        BilledUsage(upstream_project=p, day=d, model=model[:200], input_tokens=t[0], cached_tokens=t[1], output_tokens=t[2],
                    requests=t[3], fetched_at=now)
        for (p, d, model), t in tokens.items()
    )
    return len(amounts), len(tokens)


def last_state() -> BillingSync | None:
    return BillingSync.objects.filter(name=SYNC_NAME).first()
