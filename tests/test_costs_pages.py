"""The costs pages (``/projects/<slug>/costs/``, ``/costs/``), their CSV, the budget bar on a project's
pages and the budget in the create page's price answer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from batches.costs.models import BilledCost, BillingSync, CostAlert
from tests.helpers import HTMX
from tests.costs_helpers import PRICES, projects_toml, record, ts

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
BUDGET = "[projects.default.budget]\nmonthly_usd = 100\nblock_at_limit = true\n"
RESEARCH_BUDGET = "[projects.research.budget]\nmonthly_usd = 50\n"


@pytest.fixture
def month(write_projects, settings, proxy_mode):
    """Production (budget $100, blocking) and Research (budget $50, its group only), with batches and
    a fetched bill for the first days of December 2026; the clock stands at Dec 4, 12:00 UTC."""
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES
    write_projects(projects_toml("http://127.0.0.1:9/v1", budget=BUDGET, research_budget=RESEARCH_BUDGET),
                   TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
    record("batch_1", ts(2026, 12, 1, 22), input_tokens=2_000_000, output=0, finished_at=ts(2026, 12, 2, 3))  # $20, past midnight
    record("batch_2", ts(2026, 12, 2, 9), input_tokens=1_000_000, output=500_000)  # $20
    record("batch_3", ts(2026, 12, 3, 9), status="in_progress", total=10, completed=0)  # no usage yet: no price
    record("batch_r", ts(2026, 12, 2, 9), project="research", input_tokens=3_000_000, output=0)  # $30, hidden project
    for project_id, day, amount in (("proj_prod", 1, "15"), ("proj_prod", 2, "27.5"), ("proj_research", 2, "31")):
        BilledCost.objects.create(upstream_project=project_id, day=date(2026, 12, day), line_item="gpt-test, input",
                                  amount=Decimal(amount), fetched_at=NOW)
    BillingSync.objects.create(name="organization", last_success=NOW, first_day=date(2026, 11, 1), last_day=date(2026, 12, 3))
    with time_machine.travel(NOW, tick=False):
        yield proxy_mode("ann@example.com")


def test_the_project_costs_page_shows_the_budget_and_each_day_estimated_billed_and_the_difference(month, client):
    response = client.get("/projects/default/costs/", headers=month)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    # $40 created, and batch_3's 10 requests at the model's $40 for 20 requests: $60 by Dec 4, 12:00 (3.5 days).
    assert "Production: $60.00 of $100.00 this month, forecast $531.43" in html
    assert "$40.00 for 3 batches; 1 without a known price" in html
    rows = response.context["table"].rows
    assert [(r.day, r.estimated, r.billed, r.difference_display) for r in rows] == [
        (date(2026, 12, 1), Decimal("20"), Decimal("15"), "−$5.00"),
        (date(2026, 12, 2), Decimal("20"), Decimal("27.5"), "+$7.50"),
        (date(2026, 12, 3), Decimal("0"), Decimal("0"), "+$0.00"),
        (date(2026, 12, 4), Decimal("0"), None, "—"),
    ]
    assert rows[0].notes == ["1 batch ran past midnight"]
    assert rows[2].notes == ["1 batch without a known price"]
    assert rows[3].notes == ["today: the bill is still growing"]
    assert "<td>1 batch ran past midnight</td>" in html and "not fetched" in html
    assert 'class="series-1"' in html and "<title>2026-12-02: billed $27.50</title>" in html
    assert "A batch is estimated on the day it was created" in html


def test_the_costs_page_as_an_htmx_request_is_only_the_body(month, client):
    response = client.get("/projects/default/costs/?month=2026-12", headers={**month, **HTMX})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="costs-body"' in html


def test_the_csv_has_every_day_with_numbers_a_spreadsheet_reads(month, client):
    response = client.get("/projects/default/costs/?month=2026-12&format=csv", headers=month)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="costs-default-2026-12.csv"'
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["day", "estimated_usd", "billed_usd", "difference_usd", "drift", "notes"],
        ["2026-12-01", "20", "15", "-5", "-0.3333", "1 batch ran past midnight"],
        ["2026-12-02", "20", "27.5", "7.5", "0.2727", ""],
        ["2026-12-03", "0", "0", "0", "", "1 batch without a known price"],
        ["2026-12-04", "0", "", "", "", "today: the bill is still growing"],
    ]


def test_the_all_projects_page_sums_only_the_projects_the_person_may_see(month, client):
    rows = client.get("/costs/", headers=month).context["table"].rows
    assert (rows[1].estimated, rows[1].billed) == (Decimal("20"), Decimal("27.5"))
    html = client.get("/costs/", headers=month).content.decode()
    assert "Research" not in html
    member = {**month, "X-Forwarded-Groups": "research"}
    rows = client.get("/costs/", headers=member).context["table"].rows
    assert (rows[1].estimated, rows[1].billed) == (Decimal("50"), Decimal("58.5"))
    csv_rows = list(csv.reader(io.StringIO(client.get("/costs/?format=csv", headers=member).content.decode())))
    assert csv_rows[2][:3] == ["2026-12-02", "50", "58.5"]


def test_a_hidden_projects_costs_page_is_a_404(month, client):
    assert client.get("/projects/research/costs/", headers=month).status_code == 404


def test_a_bad_or_future_month_says_so_and_shows_this_month(month, client):
    html = client.get("/projects/default/costs/?month=2026-13", headers=month).content.decode()
    assert "“month” must look like 2026-01, not “2026-13”; showing this month." in html
    html = client.get("/projects/default/costs/?month=2027-02", headers=month).content.decode()
    assert "2027-02 is not a month with costs yet; showing this month." in html


def test_a_past_month_shows_its_days_and_says_budgets_speak_about_this_month(month, client):
    response = client.get("/projects/default/costs/?month=2026-11", headers=month)
    assert len(response.context["table"].rows) == 30
    assert "Budgets speak about the current month; this is 2026-11." in response.content.decode()


def test_the_alerts_of_the_month_are_listed(month, client):
    CostAlert.objects.create(project="default", kind="budget", period="2026-12", level="50", estimated_usd=60, reference_usd=100,
                             sentence="Production has reached 50 % of its budget this month.")
    assert "Production has reached 50 % of its budget this month." in client.get("/projects/default/costs/", headers=month).content.decode()


def test_a_projects_pages_carry_the_budget_bar_and_its_partials_do_not(month, client):
    html = client.get("/projects/default/batches/?status=completed", headers=month).content.decode()
    assert '<span class="budget-line">$60.00 of $100.00 this month, forecast $531.43</span>' in html
    assert '<meter min="0" max="100.00" high="80.00" optimum="0" value="60.00">60 %</meter>' in html
    assert 'href="/projects/default/costs/"' in html
    partial = client.get("/projects/default/batches/?status=completed", headers={**month, **HTMX}).content.decode()
    assert "budget-line" not in partial


def test_pages_outside_a_project_and_projects_without_a_budget_have_no_bar(month, client, write_projects):
    assert "budget-bar" not in client.get("/costs/", headers=month).content.decode()
    write_projects(projects_toml("http://127.0.0.1:9/v1"), TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
    html = client.get("/projects/default/costs/", headers=month).content.decode()
    assert "budget-bar" not in html and "No budget is set for Production." in html


def test_the_price_answer_carries_the_budget_so_the_page_can_warn_before_uploading(month, client):
    answer = client.get("/projects/default/price/?model=gpt-test", headers=month).json()
    assert answer["budget"] == {"monthly_usd": "100.000000", "spend_usd": "60.000000", "block_at_limit": True}
    assert client.get("/projects/default/price/?model=gpt-test", headers=month)["Cache-Control"] == "private, max-age=60"


def test_the_costs_pages_keep_the_strict_policy_no_inline_style_or_script(month, client):
    for url in ("/projects/default/costs/", "/costs/", "/projects/default/batches/"):
        response = client.get(url, headers=month)
        html = response.content.decode()
        assert "script-src" in response["Content-Security-Policy"], url
        assert " style=" not in html and "<style" not in html and "hx-on" not in html, url
        assert all('src="' in tag or "nonce=" in tag for tag in html.split("<script")[1:]), url
