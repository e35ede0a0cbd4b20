"""The billing pass against an Admin API on loopback: billed costs and batch usage fetched page by
page, matched to the configured projects, stored per day; the lease; failures; the admin key in no
log line, error or page."""

from __future__ import annotations

import io
import logging
import os
import signal
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.costs.billing import billing_pass, claim
from batches.costs.models import BilledCost, BilledUsage, BillingSync
from tests.costs_helpers import ADMIN_KEY, FakeAdminAPI, bucket, cost_result, projects_toml, ts, usage_result

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 11, 6, tzinfo=UTC)

COSTS = [
    bucket(ts(2026, 11, 30), [cost_result("proj_prod", "gpt-test, input", 1.5)]),
    bucket(ts(2026, 12, 1), [cost_result("proj_prod", "gpt-test, input", 2.0), cost_result("proj_prod", "gpt-test, output", 0.25),
                             cost_result("proj_research", "gpt-test, input", 4.0)]),
    bucket(ts(2026, 12, 2), [cost_result("proj_somebody_else", "gpt-test, input", 99.0)]),
    bucket(ts(2026, 12, 3), [cost_result("proj_prod", "gpt-test, input", 1.0), cost_result("proj_prod", "gpt-test, input", 0.5)]),
    bucket(ts(2026, 12, 4), []),
]
USAGE = [
    bucket(ts(2026, 12, 1), [usage_result("proj_prod", "gpt-test", 200_000, 12_500, cached=1000, requests=40)]),
    bucket(ts(2026, 12, 3), [usage_result("proj_research", "gpt-test", 400_000, 0, requests=3)]),
]


@pytest.fixture
def admin_api(write_projects, monkeypatch):
    servers = []

    def start(**kwargs) -> FakeAdminAPI:
        api = FakeAdminAPI(**{"costs": COSTS, "usage": USAGE, **kwargs})
        servers.append(api)
        organization = f'admin_key_env = "TEST_ADMIN_KEY"\nbase_url = "{api.base_url}"'
        write_projects(projects_toml("http://127.0.0.1:9/v1", organization=organization), TEST_KEY_DEFAULT="sk-a",
                       TEST_KEY_RESEARCH="sk-b", TEST_ADMIN_KEY=ADMIN_KEY)
        return api

    yield start
    for api in servers:
        api.stop()


def test_billed_costs_are_fetched_page_by_page_and_stored_per_project_day_and_line_item(admin_api):
    api = admin_api(per_page=2)
    result = billing_pass("worker-1", NOW)
    assert result.ran and result.error == ""
    assert result.summary == "5 billed line items and 2 model-days of batch usage for 2 project(s), 2026-11-01 to 2026-12-11, in 4 call(s)"
    assert api.paths() == ["/v1/organization/costs"] * 3 + ["/v1/organization/usage/completions"]
    assert [query.get("page") for path, query, _ in api.requests if path.endswith("/costs")] == [None, ["page_2"], ["page_4"]]
    stored = sorted(BilledCost.objects.values_list("upstream_project", "day", "line_item", "amount"))
    assert stored == [
        ("proj_prod", date(2026, 11, 30), "gpt-test, input", Decimal("1.5")),
        ("proj_prod", date(2026, 12, 1), "gpt-test, input", Decimal("2.0")),
        ("proj_prod", date(2026, 12, 1), "gpt-test, output", Decimal("0.25")),
        ("proj_prod", date(2026, 12, 3), "gpt-test, input", Decimal("1.5")),  # two results of one key, summed
        ("proj_research", date(2026, 12, 1), "gpt-test, input", Decimal("4.0")),
    ]  # proj_somebody_else is no configured project: left out
    usage = sorted(BilledUsage.objects.values_list("upstream_project", "day", "model", "input_tokens", "cached_tokens", "output_tokens", "requests"))
    assert usage == [("proj_prod", date(2026, 12, 1), "gpt-test", 200_000, 1000, 12_500, 40),
                     ("proj_research", date(2026, 12, 3), "gpt-test", 400_000, 0, 0, 3)]
    state = BillingSync.objects.get()
    assert (state.last_success, state.first_day, state.last_day, state.last_pass_calls, state.lease_owner) == (
        NOW, date(2026, 11, 1), date(2026, 12, 11), 4, "")
    first = api.requests[0][1]
    assert (first["start_time"], first["end_time"], first["project_ids[]"]) == ([str(ts(2026, 11, 1))], [str(int(NOW.timestamp()))],
                                                                                ["proj_prod", "proj_research"])


def test_a_second_pass_within_the_interval_is_not_due_and_fetches_nothing(admin_api, settings):
    api = admin_api()
    settings.DASHBOARD_COSTS_SYNC_SECONDS = 3600
    billing_pass("worker-1", NOW)
    calls = len(api.requests)
    assert billing_pass("worker-2", NOW + timedelta(minutes=30)).summary == "not due, or another instance is fetching billed costs"
    assert len(api.requests) == calls
    assert billing_pass("worker-2", NOW + timedelta(minutes=61)).ran


def test_one_of_two_instances_takes_the_lease_and_an_expired_lease_is_taken_over(admin_api):
    admin_api()
    assert claim("worker-1", NOW) is True
    assert claim("worker-2", NOW) is False
    assert claim("worker-2", NOW + timedelta(minutes=11)) is True  # worker-1 died holding it


def test_a_pass_that_fails_keeps_the_previous_figures_and_says_why_without_the_key(admin_api, caplog):
    admin_api()
    billing_pass("worker-1", NOW)
    before = sorted(BilledCost.objects.values_list("day", "amount"))
    failing = admin_api(status=400, error_message=f"No such organization for key {ADMIN_KEY}")
    caplog.set_level(logging.DEBUG)
    result = billing_pass("worker-1", NOW + timedelta(hours=2))
    assert result.error == "The Admin API rejected the billed costs. The API said: “No such organization for key [admin key]”"
    assert sorted(BilledCost.objects.values_list("day", "amount")) == before
    state = BillingSync.objects.get()
    assert (state.last_success, state.last_error, state.lease_owner) == (NOW, result.error, "")
    assert ADMIN_KEY not in caplog.text and "organization/costs -> 400" in caplog.text
    assert len(failing.requests) == 1


def test_without_an_admin_key_nothing_is_fetched_and_the_pass_says_so(write_projects):
    write_projects(projects_toml("http://127.0.0.1:9/v1"), TEST_KEY_DEFAULT="sk-a", TEST_KEY_RESEARCH="sk-b")
    result = billing_pass("worker-1", NOW)
    assert (result.ran, result.summary) == (False, "no [organization] admin key is configured: billed costs are not fetched")


def test_the_once_command_fetches_and_prints_what_it_did(admin_api, capsys):
    admin_api()
    call_command("sync_costs", "--once")
    assert "sync_costs: 5 billed line items and 2 model-days of batch usage for 2 project(s)" in capsys.readouterr().out


def test_the_loop_fetches_then_stops_cleanly_on_sigterm_and_gives_its_signal_handlers_back(admin_api):
    api = admin_api()
    # The pass's last request asks this process to stop, as systemd would: no waiting on a clock.
    api.on_request = lambda path: path.endswith("/completions") and os.kill(os.getpid(), signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    call_command("sync_costs", "--interval", "3600", stdout=out)
    assert "billed costs every 3600s, budgets every 3600s" in out.getvalue()
    assert out.getvalue().rstrip().endswith("sync_costs: stopped")
    state = BillingSync.objects.get()
    assert state.last_success is not None and state.lease_owner == ""
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_once_command_fails_with_the_reason_when_the_admin_api_refuses(admin_api):
    admin_api(status=403, error_message="insufficient permissions")
    with pytest.raises(CommandError, match="The billing pass failed: The Admin API refused the organization's key"):
        call_command("sync_costs", "--once")


def test_the_admin_key_is_in_no_page(admin_api, client):
    admin_api(status=401, error_message=f"Incorrect API key provided: {ADMIN_KEY}")
    billing_pass("worker-1", NOW)
    for url in ("/projects/default/costs/", "/costs/", "/projects/default/costs/?format=csv", "/projects/default/batches/new/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert ADMIN_KEY not in response.content.decode(), url
    assert "rejected the organization&#x27;s admin key" in client.get("/projects/default/costs/").content.decode()
