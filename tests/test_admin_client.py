"""The Admin API client against answers built from the official SDK's types (``openai`` 3.51,
``types/admin/organization/usage_costs_response.py`` and ``usage_completions_response.py``), served
through ``httpx.MockTransport``: the query it sends, paging, parsing, errors, and the admin key in no
error or log line."""

from __future__ import annotations

import logging
import traceback
from decimal import Decimal

import httpx
import pytest
from openai.types.admin.organization.usage_completions_response import UsageCompletionsResponse
from openai.types.admin.organization.usage_costs_response import UsageCostsResponse

from batches.upstream import UpstreamAuthError, UpstreamBadResponse, UpstreamForbidden, UpstreamUnavailable
from batches.upstream.admin import AdminClient, CostResult, UsageResult
from tests.costs_helpers import ADMIN_KEY, bucket, cost_result, ts, usage_result

DEC1 = ts(2026, 12, 1)
DAY = 86400


def costs_page(buckets, more: bool, cursor: str | None) -> dict:
    """A page of costs, validated against the SDK's own model so these tests speak the real shape."""
    body = {"object": "page", "data": buckets, "has_more": more, "next_page": cursor}
    return UsageCostsResponse.model_validate(body).model_dump(mode="json")


def client_for(handler, **kwargs) -> AdminClient:
    return AdminClient(base_url="https://api.example.test/v1", admin_key=ADMIN_KEY, transport=httpx.MockTransport(handler),
                       sleep=lambda _: None, **kwargs)


def test_costs_are_fetched_in_daily_buckets_grouped_by_project_and_line_item_following_every_page():
    pages = {
        None: costs_page([bucket(DEC1, [cost_result("proj_a", "gpt-4o-mini, input", 1.25)])], True, "page_2"),
        "page_2": costs_page([bucket(DEC1 + DAY, [cost_result("proj_a", "gpt-4o-mini, output", 0.5),
                                                  cost_result("proj_b", "gpt-4o, input", 2)])], True, "page_3"),
        "page_3": costs_page([bucket(DEC1 + 2 * DAY, [])], False, None),
    }
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("page")])

    buckets = client_for(handler).costs(start_time=DEC1, end_time=DEC1 + 3 * DAY, project_ids=["proj_b", "proj_a"])
    assert [b.start_time for b in buckets] == [DEC1, DEC1 + DAY, DEC1 + 2 * DAY]
    assert buckets[1].results == (
        CostResult("proj_a", "gpt-4o-mini, output", Decimal("0.5"), "usd"),
        CostResult("proj_b", "gpt-4o, input", Decimal("2"), "usd"),
    )
    first = seen[0]
    assert (first.method, first.url.path) == ("GET", "/v1/organization/costs")
    assert first.headers["authorization"] == f"Bearer {ADMIN_KEY}"
    assert first.url.params.get_list("group_by[]") == ["project_id", "line_item"]
    assert first.url.params.get_list("project_ids[]") == ["proj_a", "proj_b"]
    assert (first.url.params["bucket_width"], first.url.params["start_time"], first.url.params["end_time"]) == (
        "1d", str(DEC1), str(DEC1 + 3 * DAY))
    assert "page" not in first.url.params
    assert [r.url.params.get("page") for r in seen] == [None, "page_2", "page_3"]


def test_batch_usage_asks_for_batch_jobs_only_grouped_by_project_and_model():
    body = {"object": "page", "has_more": False, "next_page": None, "data": [
        bucket(DEC1, [usage_result("proj_a", "gpt-4o-mini-2024-07-18", 1000, 200, cached=300, requests=7)])]}
    body = UsageCompletionsResponse.model_validate(body).model_dump(mode="json")
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=body)

    (day,) = client_for(handler).batch_usage(start_time=DEC1, project_ids=["proj_a"])
    assert day.results == (UsageResult("proj_a", "gpt-4o-mini-2024-07-18", 1000, 300, 200, 7),)
    assert seen[0].url.path == "/v1/organization/usage/completions"
    assert seen[0].url.params["batch"] == "true"
    assert seen[0].url.params.get_list("group_by[]") == ["project_id", "model"]


def test_results_of_other_kinds_and_amounts_without_a_value_are_skipped():
    odd = {"object": "organization.costs.result", "amount": None, "project_id": "proj_a", "line_item": "x"}
    other = {"object": "organization.usage.images.result", "images": 2, "num_model_requests": 2}
    body = {"object": "page", "has_more": False, "next_page": None,
            "data": [bucket(DEC1, [odd, other, cost_result("proj_a", "y", 0.1, currency="EUR")])]}
    (day,) = client_for(lambda r: httpx.Response(200, json=body)).costs(start_time=DEC1)
    assert day.results == (CostResult("proj_a", "y", Decimal("0.1"), "eur"),)


def test_a_page_that_says_there_is_more_without_a_cursor_is_a_bad_answer_not_a_silent_stop():
    body = {"object": "page", "data": [], "has_more": True, "next_page": None}
    with pytest.raises(UpstreamBadResponse, match="said there is more but gave no next page"):
        client_for(lambda r: httpx.Response(200, json=body)).costs(start_time=DEC1)


def test_a_cursor_that_never_ends_stops_with_an_error_after_the_page_limit(monkeypatch):
    from batches.upstream import admin

    monkeypatch.setattr(admin, "MAX_PAGES", 3)
    body = {"object": "page", "data": [], "has_more": True, "next_page": "again"}
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json=body)

    with pytest.raises(UpstreamBadResponse, match="kept paging the billed costs past 3 pages"):
        client_for(handler).costs(start_time=DEC1)
    assert len(calls) == 3


def test_a_project_key_refused_by_the_admin_api_is_a_sentence_about_the_admin_key():
    def handler(request):
        return httpx.Response(403, json={"error": {"message": "You have insufficient permissions: api.usage.read."}},
                              headers={"x-request-id": "req_403"})

    with pytest.raises(UpstreamForbidden) as caught:
        client_for(handler).costs(start_time=DEC1)
    assert str(caught.value) == "The Admin API refused the organization's key: it is not an admin key, or lacks the usage permission."
    assert (caught.value.status_code, caught.value.request_id) == (403, "req_403")


def test_the_admin_key_is_in_no_error_even_when_the_upstream_quotes_it(caplog):
    def handler(request):
        return httpx.Response(400, json={"error": {"message": f"Bad request for key {ADMIN_KEY}."}})

    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as caught:
        client_for(handler).costs(start_time=DEC1)
    err = caught.value
    assert str(err) == "The Admin API rejected the billed costs. The API said: “Bad request for key [admin key].”"
    assert ADMIN_KEY not in repr(err.__dict__) and ADMIN_KEY not in "".join(traceback.format_exception(err))
    assert ADMIN_KEY not in caplog.text and "organization/costs -> 400" in caplog.text


def test_a_rejected_admin_key_says_which_setting_to_check():
    with pytest.raises(UpstreamAuthError, match=r"rejected the organization's admin key.*\[organization\] admin_key_env"):
        client_for(lambda r: httpx.Response(401, json={"error": {"message": "Incorrect API key"}})).costs(start_time=DEC1)


def test_reads_are_retried_on_a_server_error_and_then_say_the_admin_api_failed():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503)

    with pytest.raises(UpstreamUnavailable, match="^The Admin API failed with an error"):
        client_for(handler).costs(start_time=DEC1)
    assert len(calls) == 3  # the first try and two retries


def test_an_unreachable_admin_api_is_a_sentence_about_the_admin_api():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamUnavailable, match="^The Admin API could not be reached"):
        client_for(handler, max_retries=0).costs(start_time=DEC1)

