"""Billed costs over loopback from the emulator's Admin API (computed from its own batches' usage at
batch prices, with a configurable skew): fetched page by page, matched to the configured projects by
their OpenAI project id, refused to a project key, and a skewed bill raising one drift alert."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from batches.costs.billing import billing_pass
from batches.costs.models import BilledCost, BilledUsage, BillingSync, CostAlert
from batches.index.sync import sync_project
from batches.projects import all_projects
from emulator.core.store import project_id
from tests.helpers import EMULATOR_ADMIN_KEY, EMULATOR_KEY, RESEARCH_KEY

pytestmark = pytest.mark.django_db

DEFAULT_ID, RESEARCH_ID = project_id("default"), project_id("research")


@pytest.fixture
def organization(upstream, write_projects):
    """The emulator's two projects with their OpenAI project ids, indexed by one sync pass each, and
    an ``[organization]`` whose admin key is ``key``."""

    def configure(key: str = EMULATOR_ADMIN_KEY, budget: str = ""):
        write_projects(f"""
[projects.default]
name = "Production"
api_key_env = "TEST_KEY_DEFAULT"
base_url = "{upstream.base_url}"
project = "{DEFAULT_ID}"
{budget}

[projects.research]
name = "Research"
api_key_env = "TEST_KEY_RESEARCH"
base_url = "{upstream.base_url}"
project = "{RESEARCH_ID}"

[organization]
admin_key_env = "TEST_ADMIN_KEY"
base_url = "{upstream.base_url}"
""", TEST_KEY_DEFAULT=EMULATOR_KEY, TEST_KEY_RESEARCH=RESEARCH_KEY, TEST_ADMIN_KEY=key)
        for project in all_projects():
            sync_project(project, "test-sync", backfill_pages=None)
        upstream.state.reset_counts()
        return upstream

    return configure


def emulator_costs(emulator, start: int, end: int) -> dict[str, Decimal]:
    """What the emulator bills each project over ``[start, end)``, read straight from its API."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    cursor = None
    while True:
        params = {"start_time": start, "end_time": end, "group_by[]": ["project_id"], "limit": 180}
        if cursor:
            params["page"] = cursor
        body = httpx.get(f"{emulator.base_url}/organization/costs", params=params,
                         headers={"Authorization": f"Bearer {EMULATOR_ADMIN_KEY}"}).json()
        for bucket in body["data"]:
            for result in bucket["results"]:
                totals[result["project_id"]] += Decimal(str(result["amount"]["value"]))
        if not body["has_more"]:
            return totals
        cursor = body["next_page"]


def test_billed_costs_are_fetched_from_the_emulator_page_by_page_and_matched_to_each_project(organization):
    emulator = organization()
    now = datetime.now(UTC)
    result = billing_pass("worker-1", now, force=True)
    assert result.error == "" and result.ran
    state = BillingSync.objects.get()
    # More days than one page of 31 daily buckets: the client followed next_page.
    days = (now.date() - state.first_day).days + 1
    counts = emulator.state.stats()["counts"]
    assert counts["GET /v1/organization/costs"] == counts["GET /v1/organization/usage/completions"] == -(-days // 31)
    start = int(datetime(state.first_day.year, state.first_day.month, state.first_day.day, tzinfo=UTC).timestamp())
    # Days before today: a running batch is billed "now", and its usage grows while the test runs.
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    expected = emulator_costs(emulator, start, int(today.timestamp()))
    stored = defaultdict(Decimal)
    for project, amount in BilledCost.objects.filter(day__lt=today.date()).values_list("upstream_project", "amount"):
        stored[project] += amount
    assert set(stored) == {DEFAULT_ID, RESEARCH_ID}
    for project in (DEFAULT_ID, RESEARCH_ID):
        assert abs(stored[project] - expected[project]) < Decimal("0.0001"), project
    assert set(BilledUsage.objects.values_list("upstream_project", flat=True)) == {DEFAULT_ID, RESEARCH_ID}
    line_items = set(BilledCost.objects.values_list("line_item", flat=True))
    assert any(item.endswith(", input_tokens") for item in line_items)


def test_a_project_key_is_refused_by_the_emulators_admin_api_and_the_pass_says_so(organization, client):
    organization(key=EMULATOR_KEY)
    result = billing_pass("worker-1", datetime.now(UTC), force=True)
    assert result.error == "The Admin API refused the organization's key: it is not an admin key, or lacks the usage permission."
    assert not BilledCost.objects.exists()
    html = client.get("/projects/default/costs/").content.decode()
    assert "it is not an admin key" in html and EMULATOR_KEY not in html


def test_a_skewed_bill_raises_one_drift_alert_a_day(organization, immediate_tasks):
    emulator = organization(budget="[projects.default.budget]\nmonthly_usd = 1000000\ndrift_alert = 0.15\n")
    emulator.state.cost_skew = 3.0  # the emulator bills three times its batch prices (reset after the test)
    now = datetime.now(UTC)
    billing_pass("worker-1", now, force=True)
    (alert,) = CostAlert.objects.filter(kind="drift")
    assert alert.period == f"{now:%Y-%m-%d}" and alert.project == "default"
    assert alert.reference_usd > alert.estimated_usd * 2
    assert "more than the dashboard's estimate" in alert.sentence
    billing_pass("worker-2", now, force=True)
    assert CostAlert.objects.filter(kind="drift").count() == 1
