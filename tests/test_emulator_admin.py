"""The emulator's Admin API: costs and completions usage computed from its own batches, per project and day,
with grouping, filters, pages, the cost skew, and refusals for project keys."""

import datetime

import httpx
import pytest

from emulator.prices import batch_price
from tests.emulator_helpers import create, line, module_emulator, run_to_end, upload

KEY = "sk-admin-test-project"
OTHER = "sk-admin-test-other"
ADMIN = "sk-admin-test"


_server, srv = module_emulator(api_keys={"main": KEY, "other": OTHER}, admin_keys=[ADMIN], seed=False,
                               fail_percent=0)


@pytest.fixture
def admin(srv):
    with httpx.Client(base_url=srv.base_url + "/organization", headers={"Authorization": "Bearer " + ADMIN},
                      timeout=10) as c:
        yield c


def finished_batch(srv, key, n, model="gpt-4o-mini"):
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": "Bearer " + key}, timeout=10) as c:
        bid = create(c, upload(c, [line("%s-%d" % (model, i), model=model) for i in range(n)])["id"]).json()["id"]
        return run_to_end(srv, c, bid)


def day_start(t):
    return int(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).replace(hour=0, minute=0, second=0)
               .timestamp())


def test_costs_bill_each_batchs_usage_at_batch_prices_per_project_and_line_item(srv, admin):
    batch = finished_batch(srv, KEY, 12)
    start = day_start(batch["completed_at"])
    r = admin.get("/costs", params={"start_time": start, "end_time": start + 86400,
                                    "group_by": "project_id,line_item"})
    assert r.status_code == 200
    page = r.json()
    assert page["object"] == "page" and page["has_more"] is False and page["next_page"] is None
    [bucket] = page["data"]
    assert (bucket["object"], bucket["start_time"], bucket["end_time"]) == ("bucket", start, start + 86400)
    usage = batch["usage"]
    price_in, _, price_out = batch_price("gpt-4o-mini")
    project = srv.state.project_info()["main"]["id"]
    assert bucket["results"] == [
        {"object": "organization.costs.result", "amount": {"value": round(usage["input_tokens"] * price_in / 1e6, 6),
                                                           "currency": "usd"},
         "line_item": "gpt-4o-mini, input_tokens", "project_id": project, "quantity": usage["input_tokens"],
         "quantity_unit": "tokens", "user_id": None, "api_key_id": None, "api_source": None},
        {"object": "organization.costs.result", "amount": {"value": round(usage["output_tokens"] * price_out / 1e6,
                                                                          6), "currency": "usd"},
         "line_item": "gpt-4o-mini, output_tokens", "project_id": project, "quantity": usage["output_tokens"],
         "quantity_unit": "tokens", "user_id": None, "api_key_id": None, "api_source": None}]


def test_costs_without_grouping_sum_the_day_and_the_skew_scales_every_amount(srv, admin):
    first, second = finished_batch(srv, KEY, 5), finished_batch(srv, OTHER, 7, model="gpt-4.1-mini")
    start = day_start(second["completed_at"])
    params = {"start_time": start, "end_time": start + 86400}
    total = admin.get("/costs", params=params).json()["data"][0]["results"]
    expected = sum(b["usage"]["input_tokens"] * batch_price(m)[0] / 1e6 + b["usage"]["output_tokens"]
                   * batch_price(m)[2] / 1e6 for b, m in ((first, "gpt-4o-mini"), (second, "gpt-4.1-mini")))
    assert len(total) == 1 and total[0]["project_id"] is None and total[0]["line_item"] is None
    assert total[0]["amount"]["value"] == pytest.approx(expected, abs=1e-5)
    assert httpx.post(srv.root_url + "/_emulator/settings", json={"cost_skew": 1.1}).json()["cost_skew"] == 1.1
    skewed = admin.get("/costs", params=params).json()["data"][0]["results"][0]["amount"]["value"]
    assert skewed == pytest.approx(expected * 1.1, abs=1e-5)
    only_other = admin.get("/costs", params=dict(params, **{"project_ids[]": srv.state.project_info()["other"]["id"],
                                                            "group_by[]": "project_id"})).json()
    assert [r["project_id"] for r in only_other["data"][0]["results"]] == [srv.state.project_info()["other"]["id"]]


def test_costs_and_usage_page_their_daily_buckets_with_next_page(srv, admin):
    now = int(srv.state.now())
    start = now - 10 * 86400
    first = admin.get("/costs", params={"start_time": start, "limit": 4}).json()
    assert [b["start_time"] for b in first["data"]] == [start + i * 86400 for i in range(4)]
    assert first["has_more"] is True
    second = admin.get("/costs", params={"start_time": start, "limit": 4, "page": first["next_page"]}).json()
    third = admin.get("/costs", params={"start_time": start, "limit": 4, "page": second["next_page"]}).json()
    assert [b["start_time"] for b in third["data"]] == [start + 8 * 86400, start + 9 * 86400]
    assert third["has_more"] is False and third["data"][-1]["end_time"] == now
    hourly = admin.get("/usage/completions", params={"start_time": now - 3 * 3600, "bucket_width": "1h"}).json()
    assert len(hourly["data"]) == 3 and hourly["has_more"] is False


def test_completions_usage_counts_tokens_and_requests_per_model_and_project(srv, admin):
    batch = finished_batch(srv, KEY, 9)
    start = day_start(batch["completed_at"])
    r = admin.get("/usage/completions", params={"start_time": start, "end_time": start + 86400,
                                                "group_by[]": ["project_id", "model", "batch"]}).json()
    assert r["data"][0]["results"] == [{
        "object": "organization.usage.completions.result", "input_tokens": batch["usage"]["input_tokens"],
        "output_tokens": batch["usage"]["output_tokens"], "input_cached_tokens": 0, "input_audio_tokens": 0,
        "output_audio_tokens": 0, "num_model_requests": 9, "project_id": srv.state.project_info()["main"]["id"],
        "model": "gpt-4o-mini", "batch": True, "user_id": None, "api_key_id": None, "service_tier": None}]
    assert admin.get("/usage/completions", params={"start_time": start, "batch": "false"}).json()["data"][0][
        "results"] == []


def test_admin_reports_refuse_project_keys_with_403_and_unknown_keys_with_401(srv):
    url = srv.base_url + "/organization/costs"
    project = httpx.get(url, params={"start_time": 0}, headers={"Authorization": "Bearer " + KEY})
    assert project.status_code == 403
    assert project.json()["error"]["message"].startswith(
        "You have insufficient permissions for this operation. Missing scopes: api.usage.read.")
    assert httpx.get(url, params={"start_time": 0}, headers={"Authorization": "Bearer sk-admin-no"}).status_code == 401
    assert httpx.get(url, params={"start_time": 0}).status_code == 401
    assert KEY not in project.text


def test_admin_reports_explain_bad_parameters(admin):
    assert admin.get("/costs").json()["error"]["message"] == "Missing required parameter: 'start_time'."
    assert admin.get("/costs", params={"start_time": 0, "bucket_width": "1h"}).status_code == 400
    assert admin.get("/costs", params={"start_time": 0, "limit": 181}).status_code == 400
    assert admin.get("/costs", params={"start_time": 0, "group_by": "model"}).status_code == 400
    assert admin.get("/usage/completions", params={"start_time": 0, "limit": 32}).status_code == 400
    assert admin.get("/costs", params={"start_time": 0, "page": "page_???"}).status_code == 400
