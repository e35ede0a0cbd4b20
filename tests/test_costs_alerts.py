"""Budget alerts once per threshold per month, drift alerts once per day, exactly once across racing
workers, through the project's "budget" notification rules and the existing channels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail

from batches.costs.alerts import check_budget
from batches.costs.compare import check_drift
from batches.costs.models import BilledCost, BillingSync, CostAlert
from batches.index.signals import batches_changed
from batches.models import Notification, NotificationRule
from batches.notify.tasks import send_due
from batches.projects import get_project
from tests.costs_helpers import PRICES, projects_toml, record, ts
from tests.helpers import at_once

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 11, tzinfo=UTC)


@pytest.fixture
def budgeted(write_projects, settings):
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES
    settings.DASHBOARD_PUBLIC_URL = "https://dash.example.com"

    def configure(monthly=100, extra=""):
        table = f"[projects.default.budget]\nmonthly_usd = {monthly}\n{extra}"
        write_projects(projects_toml("http://127.0.0.1:9/v1", budget=table), TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
        NotificationRule.objects.get_or_create(project="default", kind="budget", channel="email", target="finance@example.com",
                                               defaults={"created_by": "ops"})
        return get_project("default")

    return configure


def spend(dollars: int, batch_id: str = "batch_s") -> None:
    """A finished batch of this month costing ``dollars`` (at $10 per 1M input tokens)."""
    record(batch_id, ts(2026, 12, 2), input_tokens=dollars * 100_000, output=0)


def checked(capture, now=NOW) -> list[str]:
    """check_budget, with what it queued after commit run at once (the test runs in one transaction)."""
    with capture(execute=True):
        return [alert.level for alert in check_budget("default", now)]


def test_each_threshold_reached_is_told_once_per_month(budgeted, immediate_tasks, django_capture_on_commit_callbacks):
    budgeted(100)
    spend(55)
    assert checked(django_capture_on_commit_callbacks) == ["50"]
    assert checked(django_capture_on_commit_callbacks) == []  # again: nothing new
    spend(85)
    assert checked(django_capture_on_commit_callbacks) == ["80"]
    spend(120)
    assert checked(django_capture_on_commit_callbacks) == ["100"]
    assert checked(django_capture_on_commit_callbacks) == []
    events = sorted(Notification.objects.values_list("event", "recipient", "batch_id", "state"))
    assert events == [
        ("budget:2026-12:100", "email:finance@example.com", "", "sent"),
        ("budget:2026-12:50", "email:finance@example.com", "", "sent"),
        ("budget:2026-12:80", "email:finance@example.com", "", "sent"),
    ]
    assert len(mail.outbox) == 3


def test_the_next_month_tells_the_thresholds_again(budgeted):
    budgeted(100)
    spend(60)
    check_budget("default", NOW)
    record("batch_jan", ts(2027, 1, 3), input_tokens=6_000_000, output=0)
    assert [a.period for a in check_budget("default", datetime(2027, 1, 5, tzinfo=UTC))] == ["2027-01"]
    assert sorted(CostAlert.objects.values_list("period", "level")) == [("2026-12", "50"), ("2027-01", "50")]


def test_the_budget_message_names_the_spend_the_budget_and_links_to_the_costs_page(
    budgeted, immediate_tasks, django_capture_on_commit_callbacks
):
    budgeted(100, "block_at_limit = true\n")
    spend(130)
    checked(django_capture_on_commit_callbacks)
    message = next(m for m in mail.outbox if "100 %" in m.subject)
    assert message.subject == "[Production] Budget: 100 % reached in 2026-12"
    assert message.to == ["finance@example.com"]
    assert (
        "Production has reached 100 % of its budget this month: an estimated $130.00 of $100.00 (forecast for the month's "
        "end: $403.00). New batches and jobs are refused until the month ends or the budget is raised." in message.body
    )
    assert "https://dash.example.com/projects/default/costs/" in message.body


def test_a_project_without_budget_rules_records_the_alert_and_sends_nothing(budgeted):
    budgeted(100)
    NotificationRule.objects.all().delete()
    spend(60)
    assert [a.level for a in check_budget("default", NOW)] == ["50"]
    assert not Notification.objects.exists()


def test_an_index_change_checks_the_budget_at_once(budgeted, immediate_tasks, django_capture_on_commit_callbacks):
    budgeted(100)
    record("batch_now", int(datetime.now(UTC).timestamp()) - 60, input_tokens=9_000_000, output=0)
    with django_capture_on_commit_callbacks(execute=True):
        batches_changed.send(sender="sync", project="default", changes={"batch_now": ("in_progress", "completed")})
    assert sorted(CostAlert.objects.values_list("level", flat=True)) == ["50", "80"]
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_checking_the_same_crossing_at_once_tell_it_once(budgeted, immediate_tasks):
    """Two workers (threads with their own database connections, as two processes would have) see
    the month pass 50 % and 80 % at the same moment; the alerts' unique key lets one record each
    threshold, and only that one notifies."""
    budgeted(100)
    spend(90)
    raised = at_once(lambda _: [alert.level for alert in check_budget("default", NOW)], ["w1", "w2"])
    assert sorted(level for levels in raised.values() for level in levels) == ["50", "80"]
    assert CostAlert.objects.count() == 2
    assert sorted(Notification.objects.values_list("event", "state")) == [("budget:2026-12:50", "sent"), ("budget:2026-12:80", "sent")]
    assert len(mail.outbox) == 2


def billed(day: date, amount: str, project_id: str = "proj_prod") -> None:
    BilledCost.objects.create(upstream_project=project_id, day=day, line_item="gpt-test, input", amount=Decimal(amount),
                              fetched_at=NOW)


def covered(first: date, last: date) -> None:
    BillingSync.objects.update_or_create(name="organization", defaults={"last_success": NOW, "first_day": first, "last_day": last})


def test_a_drift_above_the_threshold_is_told_once_per_day(budgeted, immediate_tasks, django_capture_on_commit_callbacks):
    project = budgeted(1000)
    record("batch_d1", ts(2026, 12, 8), input_tokens=10_000_000, output=0)  # estimated $100 on Dec 8
    billed(date(2026, 12, 8), "125.00")  # billed $125: 20 % more than the estimate, over the 15 % default
    covered(date(2026, 11, 1), date(2026, 12, 10))
    with django_capture_on_commit_callbacks(execute=True):
        alert = check_drift(project, NOW)
    assert (alert.kind, alert.period, alert.estimated_usd, alert.reference_usd) == ("drift", "2026-12-11", Decimal(100), Decimal(125))
    assert alert.sentence == (
        "Production's bill for 2026-12-04 to 2026-12-10 is $125.00, 20.0 % more than the dashboard's estimate of $100.00 "
        "(drift_alert is 15 %). The costs page lists the days and why they can differ."
    )
    assert check_drift(project, NOW.replace(hour=18)) is None  # same day: told already
    assert check_drift(project, datetime(2026, 12, 12, tzinfo=UTC)) is not None  # the next day, still drifting
    assert sorted(Notification.objects.values_list("event", flat=True)) == ["drift:2026-12-11", "drift:2026-12-12"]
    assert mail.outbox[0].subject == "[Production] Billed costs drift from the estimates (2026-12-11)"


def test_a_drift_within_the_threshold_or_without_billing_data_is_not_told(budgeted):
    project = budgeted(1000, "drift_alert = 0.3\n")
    record("batch_d1", ts(2026, 12, 8), input_tokens=10_000_000, output=0)
    billed(date(2026, 12, 8), "125.00")
    assert check_drift(project, NOW) is None  # nothing fetched: no day has billing data
    covered(date(2026, 11, 1), date(2026, 12, 10))
    assert check_drift(project, NOW) is None  # 20 % is within 30 %
    assert not CostAlert.objects.exists()


def test_the_history_page_lists_a_budget_notification_with_a_link_to_the_costs_page(budgeted, client):
    budgeted(100)
    spend(60)
    check_budget("default", NOW)
    html = client.get("/notifications/").content.decode()
    assert 'href="/projects/default/costs/">costs</a>' in html
    assert "<td>50 % of the budget reached (2026-12)</td>" in html and "budget:2026-12:50" not in html


def test_every_notification_event_reads_in_words():
    from batches.templatetags.notify_tags import notification_event

    assert [notification_event(e) for e in ("budget:2026-12:80", "drift:2026-12-06", "at_risk", "job_held", "completed")] == [
        "80 % of the budget reached (2026-12)", "billed costs drift from the estimates (2026-12-06)",
        "at risk of expiring unfinished", "job held by the queue", "completed",
    ]


def test_operators_can_add_a_budget_rule(budgeted, client):
    budgeted(100)
    NotificationRule.objects.all().delete()
    response = client.post("/projects/default/notifications/", {"kind": "budget", "channel": "email", "target": "cfo@example.com"})
    assert response.status_code == 302
    rule = NotificationRule.objects.get()
    assert (rule.kind, rule.target, rule.threshold) == ("budget", "cfo@example.com", None)


def test_delivery_retries_a_budget_notification_like_any_other(budgeted, settings):
    budgeted(100)
    spend(60)
    check_budget("default", NOW)
    assert send_due(now=datetime.now(UTC)) == {"rescued": 0, "sent": 1}
