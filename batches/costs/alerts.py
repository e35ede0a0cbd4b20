"""Budget thresholds and drifts, each told once, through the project's "budget" notification rules.

A crossing is first recorded as a :class:`~batches.costs.models.CostAlert` under its unique key
(project, kind, month or day, threshold): of any number of workers that see the same crossing at the
same moment, the database lets exactly one insert commit, and only that one creates the
notifications (whose own unique key, with the recipient, keeps each message to one send). The
messages go out through the existing channels (email, Slack-compatible webhooks) and task queue.

Budgets are checked after every committed index change (``batches_changed``: sync passes, webhooks,
the dashboard's own creates) and on every billing pass; drifts on every billing pass.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from ..models import NotificationRule
from ..notify.channels import Message
from ..notify.rules import notification_record
from ..notify.tasks import enqueue_send, public_url
from ..oversight.pricing import money
from ..projects import Project, get_project
from .budgets import budget_state
from .models import CostAlert

logger = logging.getLogger(__name__)


def on_batches_changed(sender, project: str, changes: dict, **kwargs) -> None:
    """The ``batches_changed`` receiver; it must never break the sync or webhook that sent it."""
    try:
        check_budget(project)
    except Exception:
        logger.exception("the budget of project %s could not be checked", project)


def level_of(threshold: float) -> str:
    """0.8 → "80" (percent of the budget)."""
    return f"{threshold * 100:g}"


def check_budget(slug: str, now: datetime | None = None) -> list[CostAlert]:
    """Record (and notify) each threshold of the project's budget this month's spend has reached and
    that was not recorded before; returns the alerts this call recorded."""
    project = get_project(slug)
    state = budget_state(project, now) if project is not None else None
    if state is None:
        return []
    now = state.spend.now
    period = f"{now.astimezone(UTC):%Y-%m}"
    spend, monthly = state.spend.spend, state.budget.monthly_usd
    # Told already: skip without an insert (the unique key still decides any race that gets past this).
    told = set(CostAlert.objects.filter(project=slug, kind=CostAlert.Kind.BUDGET, period=period).values_list("level", flat=True))
    raised = []
    for threshold in state.budget.alert_at:
        if spend < monthly * Decimal(str(threshold)) or level_of(threshold) in told:
            continue
        sentence = (
            f"{project.name} has reached {level_of(threshold)} % of its budget this month: an estimated "
            f"{money(spend)} of {money(monthly)} (forecast for the month's end: {money(state.spend.forecast)})."
        )
        if state.budget.block_at_limit and state.reached:
            sentence += " New batches and jobs are refused until the month ends or the budget is raised."
        alert = _record_alert(project, CostAlert.Kind.BUDGET, period, level_of(threshold), spend, monthly, sentence, now)
        if alert is not None:
            raised.append(alert)
    return raised


def raise_drift(project: Project, estimated: Decimal, billed: Decimal, sentence: str, now: datetime | None = None) -> CostAlert | None:
    """Record (and notify) a drift between billed and estimated costs, at most once per UTC day."""
    now = now or timezone.now()
    return _record_alert(project, CostAlert.Kind.DRIFT, f"{now.astimezone(UTC):%Y-%m-%d}", "", estimated, billed, sentence, now)


def _record_alert(project: Project, kind: str, period: str, level: str, estimated: Decimal, reference: Decimal,
                  sentence: str, now: datetime) -> CostAlert | None:
    try:
        # One transaction: the alert and its notifications commit together, or neither does.
        with transaction.atomic():
            alert = CostAlert.objects.create(
                project=project.slug, kind=kind, period=period, level=level, estimated_usd=estimated.quantize(Decimal("0.000001")),
                reference_usd=reference.quantize(Decimal("0.000001")), sentence=sentence[:400],
            )
            for rule in NotificationRule.objects.filter(project=project.slug, kind=NotificationRule.Kind.BUDGET):
                recipient, reason = f"{rule.channel}:{rule.target}", f"rule: {rule.get_kind_display()}"
                # Due at once (``now`` may be the period's clock, the send's is the real one).
                row_id = notification_record(project.slug, "", alert.event, recipient, reason, timezone.now())
                if row_id is not None:
                    transaction.on_commit(lambda row_id=row_id: enqueue_send(row_id))
    except IntegrityError:
        return None  # another worker (or an earlier pass) recorded it: it is told once, by that one
    logger.info("cost alert %s %s: %s", project.slug, alert.event, sentence)
    return alert


def alert_label(event: str) -> str:
    """A "budget" or "drift" event (``CostAlert.event``) in words, for the notification history."""
    kind, _, rest = event.partition(":")
    period, _, level = rest.partition(":")
    if kind == CostAlert.Kind.BUDGET:
        return f"{level} % of the budget reached ({period})"
    return f"billed costs drift from the estimates ({period})"


def alert_message(row) -> Message:
    """The message of a "budget" or "drift" notification row (registered with batches.notify.tasks)."""
    kind, _, rest = row.event.partition(":")
    period, _, level = rest.partition(":")
    alert = CostAlert.objects.filter(project=row.project, kind=kind, period=period, level=level).first()
    project = get_project(row.project)
    name = project.name if project else row.project
    if kind == CostAlert.Kind.BUDGET:
        subject = f"[{name}] Budget: {level} % reached in {period}"
    else:
        subject = f"[{name}] Billed costs drift from the estimates ({period})"
    lines = [alert.sentence if alert else subject + "."]
    if row.reason:
        lines.append(f"Why you get this: {row.reason}.")
    return Message(subject=subject, body="\n".join(lines), link=public_url(reverse("batches:costs", args=[row.project])))
