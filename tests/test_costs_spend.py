"""Month-to-date spend and its forecast from known batches, and what the budget allows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from batches.costs.budgets import budget_allows, budget_enforce, budget_state
from batches.costs.spend import month_spend
from batches.models import AuditEntry
from batches.projects import get_project
from tests.costs_helpers import PRICES, projects_toml, record, ts

pytestmark = pytest.mark.django_db

#: Ten days into December (UTC midnight of the 11th): 10 of 31 days elapsed.
NOW = datetime(2026, 12, 11, tzinfo=UTC)


@pytest.fixture
def known_batches(settings):
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES
    # Created this month and finished: $20 (1M in at $10, 0.5M out at $20) and $15 (1M uncached + 1M cached).
    record("batch_a", ts(2026, 12, 2), completed=40, total=40, input_tokens=1_000_000, output=500_000)
    record("batch_b", ts(2026, 12, 5), completed=30, total=30, input_tokens=2_000_000, cached=1_000_000, output=0)
    # Created last month: not this month's spend, but part of the model's history ($35 for 30 requests).
    record("batch_d", ts(2026, 11, 28), completed=30, total=30, input_tokens=1_500_000, output=1_000_000)
    # Running, no usage yet: 100 requests left at the model's $70 / 100 requests = $70.
    record("batch_c", ts(2026, 12, 10), status="in_progress", total=100, completed=0)
    # Running with usage: $5 for its first 5 requests, so 5 more cost $5.
    record("batch_f", ts(2026, 12, 10), status="in_progress", total=10, completed=5, input_tokens=500_000, output=0)
    # Validating: no request count yet, so no estimate.
    record("batch_e", ts(2026, 12, 10, 12), status="validating", total=0, completed=0)
    # Being cancelled: what it used is counted when it reports usage; its remaining requests will not run.
    record("batch_g", ts(2026, 12, 10), status="cancelling", total=100, completed=0)
    # Another project: never counted here.
    record("batch_x", ts(2026, 12, 3), project="research", input_tokens=10_000_000, output=0)


def test_the_month_to_date_spend_is_what_was_created_this_month_plus_what_running_batches_still_cost(known_batches):
    spend = month_spend("default", NOW)
    assert spend.created.amount == Decimal("40")  # a $20 + b $15 + f $5 so far
    assert (spend.created.batches, spend.created.unpriced) == (6, 3)  # c, e and g report no usage yet
    assert spend.remaining == Decimal("75")  # c $70 + f $5; nothing for g
    assert (spend.running, spend.running_unestimated) == (4, 1)
    assert spend.spend == Decimal("115")


def test_the_forecast_extends_the_spend_at_its_run_rate_to_the_end_of_the_month(known_batches):
    spend = month_spend("default", NOW)
    assert (spend.elapsed_days, spend.days_in_month) == (10.0, 31)
    assert spend.forecast == Decimal("356.5")  # 115 × 31 / 10


def test_in_the_first_hours_of_a_month_the_forecast_counts_at_least_one_day(settings):
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES
    record("batch_new", ts(2027, 1, 1), input_tokens=1_000_000, output=0)
    spend = month_spend("default", datetime(2027, 1, 1, 2, tzinfo=UTC))
    assert (spend.spend, spend.forecast) == (Decimal("10"), Decimal("310"))


def test_a_month_without_batches_spends_nothing():
    spend = month_spend("default", NOW)
    assert (spend.spend, spend.forecast, spend.running) == (Decimal(0), Decimal(0), 0)


@pytest.fixture
def budget(write_projects, known_batches):
    def configure(table: str):
        write_projects(projects_toml("http://127.0.0.1:9/v1", budget="[projects.default.budget]\n" + table),
                       TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
        return get_project("default")

    return configure


def test_the_budget_bar_line_reads_spend_of_budget_and_forecast(budget):
    state = budget_state(budget("monthly_usd = 500\n"), NOW)
    assert state.line == "$115.00 of $500.00 this month, forecast $356.50"
    assert (state.percent, state.reached, state.forecast_over, state.blocking) == (20, False, False, False)


def test_work_that_fits_the_budget_is_allowed_and_says_what_is_left(budget):
    project = budget("monthly_usd = 200\nblock_at_limit = true\n")
    assert budget_allows(project, 50, NOW) == (
        True, "Production's budget is $200.00 this month and its spend so far is $115.00; $85.00 is left."
    )


def test_work_that_would_cross_a_blocking_budget_is_refused_naming_the_budget_and_the_spend(budget):
    project = budget("monthly_usd = 200\nblock_at_limit = true\n")
    assert budget_allows(project, Decimal("100"), NOW) == (
        False,
        "Refused: Production's budget is $200.00 this month and its spend so far is $115.00; this work's estimated "
        "$100.00 would take it to $215.00, over the budget. Running batches are not touched.",
    )


def test_a_reached_blocking_budget_refuses_even_work_of_unknown_cost(budget):
    project = budget("monthly_usd = 100\nblock_at_limit = true\n")
    allowed, sentence = budget_allows(project, None, NOW)
    assert not allowed
    assert sentence == (
        "Refused: Production's budget is $100.00 this month and its spend so far is $115.00, so the budget is reached. "
        "New batches and jobs are refused until the month ends or the budget is raised; running batches are not touched."
    )


def test_a_budget_without_block_at_limit_never_refuses_but_says_so(budget):
    project = budget("monthly_usd = 100\n")
    assert budget_allows(project, 10, NOW) == (
        True,
        "Production's budget is $100.00 this month and its spend so far is $115.00: the budget is reached "
        "(new work is not blocked: block_at_limit is off).",
    )


def test_a_project_without_a_budget_allows_everything(write_projects):
    write_projects(projects_toml("http://127.0.0.1:9/v1"), TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
    assert budget_allows(get_project("default"), 10**9) == (True, "Production has no budget.")


def test_each_refusal_is_written_to_the_audit_trail_and_an_allowed_check_is_not(budget):
    project = budget("monthly_usd = 200\nblock_at_limit = true\n")
    budget_enforce(project, 10, actor="ann@example.com", now=NOW)
    allowed, sentence = budget_enforce(project, 500, actor="ann@example.com", action="job", now=NOW)
    entry = AuditEntry.objects.get()
    assert not allowed
    assert (entry.project, entry.actor, entry.action, entry.outcome, entry.message) == (
        "default", "ann@example.com", "job", "refused", sentence
    )
    assert entry.finished_at is not None
