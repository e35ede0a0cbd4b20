"""The emulator's Anthropic and Azure shapes on the wire: auth per provider, error bodies, Azure's quirks,
fail-fast refusals and expiry option, and projects added at run time."""

import httpx
import pytest

from emulator import EmulatorServer, anthropic
from emulator.core import project_id
from emulator.__main__ import parse_azure_options, parse_provider_keys
from tests.emulator_helpers import jsonl, line, module_emulator

OPENAI_KEY = "sk-wire-openai"
ANTHROPIC_KEY = "sk-ant-wire"
AZURE_KEY = "azure-wire-key"
VERSION = {"api-version": "2024-10-21"}


_server, srv = module_emulator(api_keys={"default": OPENAI_KEY}, anthropic_keys={"claude": ANTHROPIC_KEY},
                               azure_keys={"eu": AZURE_KEY}, seed=False, fail_percent=0)


@pytest.fixture
def claude(srv):
    with httpx.Client(base_url=srv.root_url + "/v1/messages", timeout=10,
                      headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}) as c:
        yield c


@pytest.fixture
def az(srv):
    with httpx.Client(base_url=srv.root_url + "/openai", params=VERSION, headers={"api-key": AZURE_KEY},
                      timeout=10) as c:
        yield c


def message_batch(claude, n=2):
    reqs = [{"custom_id": "r%d" % i, "params": {"model": "claude-haiku-4-5", "max_tokens": 5,
                                               "messages": [{"role": "user", "content": "hi"}]}} for i in range(n)]
    r = claude.post("/batches", json={"requests": reqs})
    assert r.status_code == 200, r.text
    return r.json()


def azure_batch(az, lines, endpoint="/chat/completions"):
    f = az.post("/files", files={"file": ("in.jsonl", jsonl(lines))}, data={"purpose": "batch"}).json()
    return az.post("/batches", json={"input_file_id": f["id"], "endpoint": endpoint, "completion_window": "24h"})


# ------------------------------------------------------------------ Anthropic


def test_anthropic_routes_take_x_api_key_or_bearer_and_answer_in_anthropics_error_shape(srv):
    url = srv.root_url + "/v1/messages/batches"
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json() == {
        "type": "error", "error": {"type": "authentication_error", "message": "x-api-key header is required"}}
    assert httpx.get(url, headers={"x-api-key": OPENAI_KEY}).json()["error"]["message"] == "invalid x-api-key"
    ok = httpx.get(url, headers={"Authorization": "Bearer " + ANTHROPIC_KEY})
    assert ok.status_code == 200 and ok.headers["request-id"].startswith("req_") and "x-request-id" not in ok.headers
    assert httpx.get(srv.base_url + "/batches", headers={"Authorization": "Bearer " + ANTHROPIC_KEY}).status_code == 401


def test_an_injected_fault_on_an_anthropic_route_answers_in_anthropics_shape(srv, claude):
    srv.state.inject_fault(route="GET /v1/messages/batches", status=529)
    r = claude.get("/batches")
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    assert r.json()["type"] == "error" and r.headers["request-id"] == r.json()["request_id"]


def test_anthropic_version_may_be_absent_but_must_be_a_date(srv, claude):
    assert claude.get("/batches", headers={"anthropic-version": "2026-10-21"}).status_code == 200
    bad = claude.get("/batches", headers={"anthropic-version": "latest"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert bad.json()["request_id"] == bad.headers["request-id"]


def test_anthropic_create_refuses_a_bad_envelope_before_anything_runs(srv, claude, monkeypatch):
    params = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    empty = claude.post("/batches", json={"requests": []})
    dup = claude.post("/batches", json={"requests": [{"custom_id": "a", "params": params}] * 2})
    assert empty.status_code == dup.status_code == 400
    assert dup.json()["error"]["message"] == ("requests.1.custom_id: Duplicate custom_id 'a'; custom_id values must "
                                              "be unique within a batch.")
    monkeypatch.setattr(anthropic, "MAX_BODY", 100)
    big = claude.post("/batches", json={"requests": [{"custom_id": "a", "params": params}] * 3})
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    assert claude.get("/batches").json()["data"] == []


def test_anthropic_list_checks_limit_and_cursor(srv, claude):
    assert claude.get("/batches", params={"limit": 1001}).status_code == 400
    assert claude.get("/batches", params={"after_id": "msgbatch_nope"}).status_code == 400
    both = claude.get("/batches", params={"after_id": "a", "before_id": "b"})
    assert both.status_code == 400


def test_anthropic_cancel_of_an_ended_batch_and_results_before_the_end_are_refused(srv, claude):
    batch = message_batch(claude)
    early = claude.get("/batches/%s/results" % batch["id"])
    assert early.status_code == 400
    srv.state.advance(5)
    late = claude.post("/batches/%s/cancel" % batch["id"])
    assert late.status_code == 409 and late.json()["error"]["type"] == "conflict_error"
    results = claude.get("/batches/%s/results" % batch["id"])
    assert results.headers["content-type"] == "application/x-jsonl" and len(results.text.splitlines()) == 2


def test_anthropic_projects_get_no_webhooks_and_no_bulk_rows(srv):
    with EmulatorServer(port=0, api_keys={"default": OPENAI_KEY}, anthropic_keys={"claude": ANTHROPIC_KEY},
                        seed=False, seed_count=30, webhook_url="http://127.0.0.1:9/{project}/",
                        webhook_secrets="whsec_AAAA") as s:
        assert s.state.webhook_urls == {"default": "http://127.0.0.1:9/default/"}
        assert len(s.state.list_batches("claude")) == 0 and len(s.state.list_batches("default")) == 30


# ---------------------------------------------------------------------- Azure


def test_azure_versioned_paths_need_api_version_and_answer_azures_401(srv):
    no_version = httpx.get(srv.root_url + "/openai/batches", headers={"api-key": AZURE_KEY})
    assert no_version.status_code == 404 and no_version.json() == {"error": {"code": "404",
                                                                            "message": "Resource not found"}}
    assert httpx.get(srv.root_url + "/openai/v1/batches", headers={"api-key": AZURE_KEY}).status_code == 200
    wrong = httpx.get(srv.root_url + "/openai/batches", params=VERSION, headers={"api-key": OPENAI_KEY})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "401"
    assert wrong.json()["error"]["message"].startswith("Access denied due to invalid subscription key")


def test_azure_quirks_render_capitalised_statuses_iso_times_null_counts_and_empty_file_ids(srv, az):
    httpx.post(srv.root_url + "/_emulator/projects/eu", json={"quirks": True}).raise_for_status()
    batch = azure_batch(az, [line("q1", model="gpt-4o-batch")]).json()
    assert batch["status"] == "Validating" and batch["request_counts"] == {"total": None, "completed": None,
                                                                           "failed": None}
    assert batch["created_at"].endswith("+00:00") and batch["output_file_id"] == "" and batch["error_file_id"] == ""
    srv.state.advance(10)
    done = az.get("/batches/" + batch["id"]).json()
    assert done["status"] == "Completed" and done["request_counts"] == {"total": 1, "completed": 1, "failed": 0}
    assert done["output_file_id"].startswith("file-")
    assert az.get("/batches").json()["data"][0]["status"] == "Completed"


def test_azure_fail_fast_refuses_an_over_quota_create_with_a_400_and_creates_nothing(srv, az):
    control = srv.root_url + "/_emulator"
    httpx.post(control + "/projects/eu", json={"fail_fast": True}).raise_for_status()
    httpx.post(control + "/queue", json={"project": "eu", "model": "gpt-4o-batch", "tokens": 30000})
    assert azure_batch(az, [line("a%d" % i, model="gpt-4o-batch") for i in range(500)]).status_code == 200
    refused = azure_batch(az, [line("b%d" % i, model="gpt-4o-batch") for i in range(500)])
    assert refused.status_code == 400
    err = refused.json()["error"]
    assert err["code"] == "token_limit_exceeded" and err["message"] == (
        "The number of enqueued tokens has surpassed the configured limit of 30K for the deployment "
        "'gpt-4o-batch'. Please either increase the limit or try again once the current jobs have finished.")
    assert len(az.get("/batches").json()["data"]) == 1


def test_azure_without_fail_fast_fails_after_validation_and_can_run_past_24_hours(srv, az):
    httpx.post(srv.root_url + "/_emulator/queue", json={"project": "eu", "model": "gpt-4o-batch", "tokens": 10})
    refused = azure_batch(az, [line("a", model="gpt-4o-batch")]).json()
    srv.state.advance(3)
    assert az.get("/batches/" + refused["id"]).json()["errors"]["data"][0]["code"] == "token_limit_exceeded"
    httpx.post(srv.root_url + "/_emulator/projects/eu", json={"expire": False}).raise_for_status()
    slow = azure_batch(az, [line("s%d" % i, model="gpt-4.1-batch") for i in range(20)]).json()
    srv.state.configure_batch(slow["id"], rate=0.0001)
    srv.state.advance(2 * 86400)
    assert az.get("/batches/" + slow["id"]).json()["status"] == "in_progress"


def test_azure_checks_line_urls_against_the_endpoint_and_its_file_expiry_range(srv, az):
    mismatch = azure_batch(az, [line("a", endpoint="/v1/responses", model="d")]).json()
    srv.state.advance(3)
    assert az.get("/batches/" + mismatch["id"]).json()["errors"]["data"][0]["code"] == "url_mismatch"
    assert azure_batch(az, [line("e", model="d")], endpoint="/v1/embeddings").status_code == 400
    short = az.post("/files", files={"file": ("in.jsonl", b"{}\n")},
                    data={"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"})
    assert short.status_code == 400


# ------------------------------------------------------------ projects at run time


def test_projects_can_be_added_at_run_time_with_a_stable_id_and_are_kept_by_reset(srv):
    control = srv.root_url + "/_emulator"
    r = httpx.post(control + "/projects", json={"label": "late", "key": "sk-ant-late", "provider": "anthropic"})
    assert r.status_code == 200 and r.json()["provider"] == "anthropic" and r.json()["id"].startswith("proj_")
    again = httpx.post(control + "/projects", json={"label": "late", "key": "sk-ant-late", "provider": "anthropic"})
    assert again.status_code == 200 and again.json() == r.json()  # fixtures may add their project every time
    assert httpx.post(control + "/projects", json={"label": "late", "key": "sk-x"}).status_code == 400
    assert httpx.post(control + "/projects", json={"label": "dup", "key": OPENAI_KEY}).status_code == 400
    srv.reset()
    stats = httpx.get(control + "/stats").json()["projects"]
    assert stats["late"] == r.json() and stats["default"]["id"] == project_id("default")  # the same in every run
    assert httpx.get(srv.root_url + "/v1/messages/batches", headers={"x-api-key": "sk-ant-late"}).status_code == 200


def test_provider_keys_and_azure_options_are_parsed_from_the_command_line():
    assert parse_provider_keys(["claude=sk-ant-1", "sk-ant-2"], "anthropic") == {"claude": "sk-ant-1",
                                                                                 "anthropic2": "sk-ant-2"}
    assert parse_azure_options(["eu=quirks,fail_fast", "us=no-expire"]) == {
        "eu": {"quirks": True, "fail_fast": True}, "us": {"expire": False}}
    with pytest.raises(SystemExit):
        parse_azure_options(["eu=sparkles"])
