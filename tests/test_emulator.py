"""Tests for the OpenAI Batch + Files API emulator (emulator/), over real HTTP with httpx."""

import ast
import collections
import contextlib
import inspect
import os
import pkgutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulator import EmulatorServer, EmulatorState, control, core, seed
from emulator.__main__ import build_parser, main, parse_keys, parse_secrets
from emulator.seed import seed_projects
from tests.emulator_helpers import create, line, read_jsonl, run_to_end, upload

KEY = "sk-emulator"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def srv():
    with EmulatorServer(port=0, api_key=KEY, seed=False) as s:
        yield s


@pytest.fixture
def seeded():
    with EmulatorServer(port=0, api_key=KEY, seed=True) as s:
        yield s


@pytest.fixture
def client(srv):
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": "Bearer " + KEY}, timeout=10) as c:
        yield c


def make_client(s, **kw):
    return httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer " + KEY}, timeout=10, **kw)


def error(r):
    return r.json()["error"]


# ------------------------------------------------------------------- auth


def test_request_without_bearer_token_returns_401(srv):
    r = httpx.get(srv.base_url + "/batches")
    assert r.status_code == 401
    err = error(r)
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_api_key"
    assert set(err) == {"message", "type", "param", "code"}


def test_wrong_api_key_returns_401_without_echoing_the_key(srv):
    secret = "sk-proj-THISISAVERYSECRETKEYabcd"
    r = httpx.get(srv.base_url + "/batches", headers={"Authorization": "Bearer " + secret})
    assert r.status_code == 401
    assert error(r)["code"] == "invalid_api_key"
    assert error(r)["message"].startswith("Incorrect API key provided: sk-")
    assert secret not in r.text and "abcd" in r.text


def test_any_bearer_token_is_accepted_when_api_key_is_none():
    with EmulatorServer(port=0, api_key=None, seed=False) as s:
        assert httpx.get(s.base_url + "/batches", headers={"Authorization": "Bearer whatever"}).status_code == 200
        assert httpx.get(s.base_url + "/batches").status_code == 401


def test_every_response_has_a_request_id_and_json_content_type(client):
    for r in (client.get("/batches"), client.get("/batches/batch_nope"), httpx.get(str(client.base_url) + "/files")):
        assert r.headers["x-request-id"].startswith("req_")
        assert r.headers["content-type"] == "application/json"


def test_unknown_route_returns_404_and_wrong_method_returns_405(client):
    r = client.get("/nope")
    assert r.status_code == 404 and error(r)["message"] == "Invalid URL (GET /v1/nope)"
    r = client.delete("/batches")
    assert r.status_code == 405 and "error" in r.json() and "GET" in r.headers["allow"]


# ------------------------------------------------------------------- list


def test_list_is_newest_first_and_pages_with_after_and_has_more(seeded):
    with make_client(seeded) as c:
        everything = c.get("/batches", params={"limit": 100}).json()["data"]
        assert len(everything) >= 60
        keys = [(b["created_at"], b["id"]) for b in everything]
        assert keys == sorted(keys, reverse=True)
        seen, after, pages = [], None, 0
        while True:
            params = {"limit": 7}
            if after:
                params["after"] = after
            page = c.get("/batches", params=params).json()
            pages += 1
            assert page["object"] == "list"
            assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
            seen += [b["id"] for b in page["data"]]
            if not page["has_more"]:
                break
            assert len(page["data"]) == 7
            after = page["data"][-1]["id"]
        assert seen == [b["id"] for b in everything]
        assert pages == -(-len(everything) // 7)


def test_list_default_limit_is_20(seeded):
    with make_client(seeded) as c:
        page = c.get("/batches").json()
        assert len(page["data"]) == 20 and page["has_more"] is True


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-5", "2.5"])
def test_list_limit_outside_1_to_100_returns_400(client, limit):
    r = client.get("/batches", params={"limit": limit})
    assert r.status_code == 400
    assert error(r)["param"] == "limit" and error(r)["type"] == "invalid_request_error"


def test_list_with_unknown_after_id_returns_400(client):
    r = client.get("/batches", params={"after": "batch_doesnotexist"})
    assert r.status_code == 400
    assert error(r)["message"] == "No batch found with id 'batch_doesnotexist'."


def test_empty_list_has_null_first_and_last_ids(client):
    assert client.get("/batches").json() == {
        "object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_list_limit_100_pages_include_last_page_without_more(seeded):
    with make_client(seeded) as c:
        page = c.get("/batches", params={"limit": 100}).json()
        assert page["has_more"] is False


# -------------------------------------------------------- retrieve/create


def test_retrieve_unknown_batch_returns_404(client):
    r = client.get("/batches/batch_123")
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "No batch found with id 'batch_123'.",
                                  "type": "invalid_request_error", "param": None, "code": None}}


def test_created_batch_starts_validating_with_all_optional_fields_null(client):
    f = upload(client, [line("a"), line("b")])
    r = create(client, f["id"], metadata={"description": "nightly eval run 42"})
    assert r.status_code == 200
    b = r.json()
    assert b["id"].startswith("batch_") and len(b["id"]) == 38
    assert b["object"] == "batch" and b["status"] == "validating"
    assert b["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert b["expires_at"] == b["created_at"] + 86400
    for k in ("output_file_id", "error_file_id", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
              "expired_at", "cancelling_at", "cancelled_at", "errors", "model"):
        assert k in b and b[k] is None
    assert b["metadata"] == {"description": "nightly eval run 42"}
    assert client.get("/batches/" + b["id"]).json()["id"] == b["id"]


@pytest.mark.parametrize("patch, status, param, code", [
    ({"input_file_id": None}, 400, "input_file_id", "missing_required_parameter"),
    ({"endpoint": None}, 400, "endpoint", "missing_required_parameter"),
    ({"completion_window": None}, 400, "completion_window", "missing_required_parameter"),
    ({"endpoint": "/v1/fine_tuning"}, 400, "endpoint", "invalid_value"),
    ({"completion_window": "48h"}, 400, "completion_window", "invalid_value"),
    ({"metadata": {"k%d" % i: "v" for i in range(17)}}, 400, "metadata", "object_above_max_properties"),
    ({"metadata": {"k" * 65: "v"}}, 400, "metadata", "string_above_max_length"),
    ({"metadata": {"k": "v" * 513}}, 400, "metadata.k", "string_above_max_length"),
    ({"metadata": {"k": 1}}, 400, "metadata.k", "invalid_type"),
    ({"output_expires_after": {"anchor": "created_at", "seconds": 60}}, 400, "output_expires_after.seconds",
     "invalid_value"),
    ({"output_expires_after": {"anchor": "now", "seconds": 3600}}, 400, "output_expires_after.anchor",
     "invalid_value"),
    ({"input_file_id": "file-missing"}, 404, "input_file_id", None),
    ({"surprise": 1}, 400, "surprise", "unknown_parameter"),
])
def test_create_batch_rejects_invalid_requests(client, patch, status, param, code):
    f = upload(client, [line("a")])
    body = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for k, v in patch.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    r = client.post("/batches", json=body)
    assert r.status_code == status, r.text
    assert error(r)["param"] == param and error(r)["code"] == code
    if status == 404:
        assert error(r)["message"] == "No such File object: file-missing"


def test_create_batch_with_missing_field_matches_the_real_error_text(client):
    r = client.post("/batches", json={"endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.json() == {"error": {"message": "Missing required parameter: 'input_file_id'.",
                                  "type": "invalid_request_error", "param": "input_file_id",
                                  "code": "missing_required_parameter"}}


def test_create_batch_from_a_non_batch_file_returns_400(client):
    f = upload(client, [line("a")], purpose="user_data")
    r = create(client, f["id"])
    assert r.status_code == 400 and error(r)["param"] == "input_file_id"


def test_malformed_json_body_returns_400(client):
    r = client.post("/batches", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "could not parse the JSON body" in error(r)["message"]
    # the connection is still usable afterwards
    assert client.get("/batches").status_code == 200


# --------------------------------------------------------------- lifecycle


def test_batch_runs_to_completed_with_output_and_error_files_joined_by_custom_id(srv, client):
    lines = [line("req-%d" % i) for i in range(40)]
    lines[3]["body"]["fail"] = True
    lines[7]["body"]["fail"] = 500
    f = upload(client, lines)
    b = create(client, f["id"]).json()
    srv.state.advance(2.5)
    b = client.get("/batches/" + b["id"]).json()
    assert b["status"] == "in_progress" and b["in_progress_at"] is not None
    assert b["model"] == "gpt-4o-mini" and b["request_counts"]["total"] == 40
    b = run_to_end(srv, client, b["id"], step=1.0)
    assert b["status"] == "completed"
    assert b["created_at"] <= b["in_progress_at"] <= b["finalizing_at"] <= b["completed_at"]
    rc = b["request_counts"]
    assert rc["total"] == 40 and rc["completed"] + rc["failed"] == 40 and rc["failed"] >= 2

    out = read_jsonl(client, b["output_file_id"])
    err = read_jsonl(client, b["error_file_id"])
    assert len(out) == rc["completed"] and len(err) == rc["failed"]
    by_id = {x["custom_id"]: x for x in out + err}
    assert set(by_id) == {x["custom_id"] for x in lines}
    assert [x["custom_id"] for x in out + err] != [x["custom_id"] for x in lines]  # order differs from input
    assert by_id["req-3"]["response"]["status_code"] == 400 and by_id["req-3"]["error"] is None
    assert by_id["req-3"]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert by_id["req-7"]["response"]["status_code"] == 500
    ok = out[0]
    assert ok["id"].startswith("batch_req_") and ok["error"] is None
    assert ok["response"]["status_code"] == 200 and ok["response"]["request_id"].startswith("req_")
    assert ok["response"]["body"]["object"] == "chat.completion"
    assert ok["response"]["body"]["model"] == "gpt-4o-mini"
    in_total = sum(x["response"]["body"]["usage"]["prompt_tokens"] for x in out)
    out_total = sum(x["response"]["body"]["usage"]["completion_tokens"] for x in out)
    assert b["usage"]["input_tokens"] == in_total and b["usage"]["output_tokens"] == out_total
    assert b["usage"]["total_tokens"] == in_total + out_total

    meta = client.get("/files/" + b["output_file_id"]).json()
    assert meta["purpose"] == "batch_output" and meta["object"] == "file"
    assert meta["bytes"] == len(client.get("/files/%s/content" % b["output_file_id"]).content)


def test_completed_batch_whose_requests_all_fail_has_null_output_file(srv, client):
    f = upload(client, [line("x%d" % i, fail=True) for i in range(5)])
    b = run_to_end(srv, client, create(client, f["id"]).json()["id"])
    assert b["status"] == "completed"
    assert b["output_file_id"] is None and b["error_file_id"] is not None
    assert b["request_counts"] == {"total": 5, "completed": 0, "failed": 5}


def test_batch_without_failures_has_null_error_file(srv, client):
    srv.state.fail_percent = 0  # no random failures
    ids = ["ok-%d" % i for i in range(10)]
    f = upload(client, [line(c) for c in ids])
    b = run_to_end(srv, client, create(client, f["id"]).json()["id"])
    assert b["status"] == "completed" and b["error_file_id"] is None
    assert len(read_jsonl(client, b["output_file_id"])) == 10


@pytest.mark.parametrize("endpoint, obj", [
    ("/v1/responses", "response"),
    ("/v1/embeddings", "list"),
    ("/v1/completions", "text_completion"),
])
def test_output_bodies_match_the_endpoint(srv, client, endpoint, obj):
    lines = [{"custom_id": "c%d" % i, "method": "POST", "url": endpoint,
              "body": {"model": "m-1", "input": "hi", "prompt": "hi"}} for i in range(30)]
    f = upload(client, lines)
    b = run_to_end(srv, client, create(client, f["id"], endpoint=endpoint).json()["id"])
    out = read_jsonl(client, b["output_file_id"])
    assert out and all(x["response"]["body"].get("object") == obj for x in out)


@pytest.mark.parametrize("content, code", [
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n{oops\n', "invalid_json_line"),
    (b'{"method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "missing_required_parameter"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
     b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "duplicate_custom_id"),
    (b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n', "invalid_method"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}\n', "invalid_url"),
    (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m1"}}\n'
     b'{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m2"}}\n',
     "mismatched_model"),
    (b"\n", "empty_file"),
])
def test_invalid_input_file_makes_the_batch_fail_with_line_errors(srv, client, content, code):
    f = upload(client, content)
    b = run_to_end(srv, client, create(client, f["id"]).json()["id"])
    assert b["status"] == "failed" and b["failed_at"] is not None
    assert b["errors"]["object"] == "list"
    e = b["errors"]["data"][0]
    assert e["code"] == code and e["message"]
    assert set(e) == {"code", "message", "param", "line"}
    assert b["output_file_id"] is None and b["error_file_id"] is None


def test_more_than_50000_requests_fails_validation(srv, client):
    content = b"".join(b'{"custom_id":"%d","method":"POST","url":"/v1/embeddings","body":{"input":"x"}}\n' % i
                       for i in range(50_001))
    f = upload(client, content)
    b = run_to_end(srv, client, create(client, f["id"], endpoint="/v1/embeddings").json()["id"])
    assert b["status"] == "failed" and b["errors"]["data"][0]["line"] == 50_001


def test_cancel_moves_batch_to_cancelling_then_cancelled_with_partial_output(srv, client):
    f = upload(client, [line("r%d" % i) for i in range(200)])
    b = create(client, f["id"]).json()
    srv.state.advance(2.0)
    assert client.get("/batches/" + b["id"]).json()["status"] == "in_progress"
    srv.state.configure_batch(b["id"], rate=10)
    srv.state.advance(5.0)  # ~50 of 200 requests done
    r = client.post("/batches/%s/cancel" % b["id"])
    assert r.status_code == 200
    c = r.json()
    assert c["status"] == "cancelling" and c["cancelling_at"] is not None
    done_at_cancel = c["request_counts"]["completed"] + c["request_counts"]["failed"]
    assert 0 < done_at_cancel < 200
    srv.state.advance(1.0)
    assert client.get("/batches/" + b["id"]).json()["status"] == "cancelling"
    srv.state.advance(3.0)
    c = client.get("/batches/" + b["id"]).json()
    assert c["status"] == "cancelled" and c["cancelled_at"] >= c["cancelling_at"]
    assert c["request_counts"]["completed"] + c["request_counts"]["failed"] == done_at_cancel
    lines = read_jsonl(client, c["output_file_id"])
    if c["error_file_id"]:
        lines += read_jsonl(client, c["error_file_id"])
    assert len(lines) == done_at_cancel


def test_cancel_of_validating_batch_is_allowed(client):
    f = upload(client, [line("a")])
    b = create(client, f["id"]).json()
    r = client.post("/batches/%s/cancel" % b["id"])
    assert r.status_code == 200 and r.json()["status"] == "cancelling"


def test_cancel_of_cancelling_batch_returns_it_unchanged(client):
    f = upload(client, [line("a")])
    b = create(client, f["id"]).json()
    first = client.post("/batches/%s/cancel" % b["id"]).json()
    second = client.post("/batches/%s/cancel" % b["id"])
    assert second.status_code == 200 and second.json() == first


def test_cancel_of_completed_batch_returns_409(srv, client):
    f = upload(client, [line("a")])
    b = run_to_end(srv, client, create(client, f["id"]).json()["id"])
    r = client.post("/batches/%s/cancel" % b["id"])
    assert r.status_code == 409
    assert r.json() == {"error": {"message": "Cannot cancel a batch with status 'completed'.",
                                  "type": "invalid_request_error", "param": None, "code": None}}


def test_cancel_of_unknown_batch_returns_404(client):
    assert client.post("/batches/batch_x/cancel").status_code == 404


def test_batch_not_done_within_the_window_expires_with_batch_expired_errors(srv, client):
    f = upload(client, [line("e%d" % i) for i in range(20)])
    b = create(client, f["id"]).json()
    srv.state.advance(3)
    srv.state.configure_batch(b["id"], rate=10 / 86400)  # ~10 requests per day
    srv.state.advance(86400)
    b = client.get("/batches/" + b["id"]).json()
    assert b["status"] == "expired" and b["expired_at"] == b["expires_at"]
    errs = read_jsonl(client, b["error_file_id"])
    expired = [x for x in errs if x["error"] and x["error"]["code"] == "batch_expired"]
    assert expired and all(x["response"] is None for x in expired)
    assert expired[0]["error"]["message"] == \
        "This request could not be executed before the completion window expired."
    finished = read_jsonl(client, b["output_file_id"]) if b["output_file_id"] else []
    assert len(finished) + len(errs) == 20
    assert {x["custom_id"] for x in finished + errs} == {"e%d" % i for i in range(20)}


def test_speed_multiplies_the_clock():
    with EmulatorServer(port=0, api_key=KEY, seed=False, speed=200.0) as s, make_client(s) as c:
        f = upload(c, [line("s%d" % i) for i in range(5)])
        b = create(c, f["id"]).json()
        deadline = time.time() + 5
        while c.get("/batches/" + b["id"]).json()["status"] != "completed":
            assert time.time() < deadline
            time.sleep(0.02)


def test_add_batch_inserts_a_static_batch(srv, client):
    d = srv.state.add_batch(status="in_progress", request_counts={"total": 10, "completed": 4, "failed": 1},
                            metadata={"team": "search"})
    b = client.get("/batches/" + d["id"]).json()
    assert b == d
    assert srv.state.get_batch(d["id"]) == d
    assert srv.state.get_batch("batch_none") is None


# -------------------------------------------------------------------- seed


def test_seeded_batches_cover_every_status_and_have_downloadable_files(seeded):
    with make_client(seeded) as c:
        data = c.get("/batches", params={"limit": 100}).json()["data"]
        statuses = collections.Counter(b["status"] for b in data)
        for st in ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling",
                   "cancelled"):
            assert statuses[st] >= 1, statuses
        completed = [b for b in data if b["status"] == "completed"]
        assert any(b["output_file_id"] is None and b["request_counts"]["failed"] > 0 for b in completed)
        assert any(b["output_file_id"] and b["error_file_id"] for b in completed)
        assert any(b["model"] is None for b in data) and any(b["usage"] is None for b in data)
        assert any(b["metadata"] is None for b in data) and any(b["metadata"] for b in data)
        assert any(e["code"] == "token_limit_exceeded" for b in data if b["errors"] for e in b["errors"]["data"])
        endpoints = {b["endpoint"] for b in data}
        assert {"/v1/chat/completions", "/v1/responses", "/v1/embeddings"} <= endpoints
        partial = [b for b in data if b["status"] == "in_progress"]
        assert any(0 < b["request_counts"]["completed"] < b["request_counts"]["total"] for b in partial)
        for b in completed:
            total = 0
            for fid in (b["output_file_id"], b["error_file_id"]):
                if fid:
                    total += len(read_jsonl(c, fid))
            assert total == b["request_counts"]["total"]
            assert c.get("/files/%s/content" % b["input_file_id"]).status_code == 200


def seeded_state(**kw):
    state = EmulatorState(**kw)
    seed_projects(state)
    return state


def test_seeding_is_deterministic():
    a, b = seeded_state(), seeded_state()
    try:
        assert [x["id"] for x in a.list_batches()] == [x["id"] for x in b.list_batches()]
        assert sorted(a.files) == sorted(b.files)
    finally:
        a.close()
        b.close()


def test_seeded_non_terminal_batches_keep_progressing(seeded):
    before = {b["id"]: b for b in seeded.state.list_batches() if b["status"] not in
              ("completed", "failed", "expired", "cancelled")}
    seeded.state.advance(3 * 86400)
    after = {b["id"]: b for b in seeded.state.list_batches()}
    for bid in before:
        assert after[bid]["status"] in ("completed", "expired", "cancelled"), after[bid]["status"]


# ------------------------------------------------------------------- files


def test_upload_retrieve_and_download_a_file(client):
    content = b"".join(b'{"custom_id": "%d"}\n' % i for i in range(1000))
    f = upload(client, content, filename="my input.jsonl")
    assert f["id"].startswith("file-") and len(f["id"]) == 27
    assert f["bytes"] == len(content) and f["filename"] == "my input.jsonl" and f["purpose"] == "batch"
    assert f["status"] == "processed" and f["status_details"] is None
    assert f["expires_at"] == f["created_at"] + 30 * 86400
    assert client.get("/files/" + f["id"]).json() == f
    r = client.get("/files/%s/content" % f["id"])
    assert r.content == content
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == len(content)


def test_large_upload_is_streamed_to_disk_intact(client):
    # 6 MB of bytes that contain CRLF and dashes, to exercise boundary scanning across chunk edges
    block = bytes(range(256)) + b"\r\n--\r\n-" * 10
    content = block * (6 * 1024 * 1024 // len(block))
    f = upload(client, content, purpose="user_data", filename="blob.bin")
    assert f["bytes"] == len(content)
    with client.stream("GET", "/files/%s/content" % f["id"]) as r:
        got = b"".join(r.iter_bytes())
    assert got == content


def test_chunked_multipart_upload_is_accepted(srv, client):
    boundary = "XyZ123"
    body = (b"--XyZ123\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            b"--XyZ123\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.jsonl\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\nhello\nworld\n\r\n--XyZ123--\r\n")

    def gen():
        for i in range(0, len(body), 7):
            yield body[i:i + 7]

    r = client.post("/files", content=gen(), headers={"content-type": "multipart/form-data; boundary=" + boundary})
    assert r.status_code == 200, r.text
    assert client.get("/files/%s/content" % r.json()["id"]).content == b"hello\nworld\n"


def test_upload_with_unknown_purpose_returns_400(client):
    r = client.post("/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "nonsense"})
    assert r.status_code == 400 and error(r)["param"] == "purpose"


def test_upload_without_file_returns_400(client):
    r = client.post("/files", files={"x": ("a", b"1")}, data={"purpose": "batch"})
    assert r.status_code == 400


def test_unknown_file_returns_404(client):
    for path in ("/files/file-nope", "/files/file-nope/content"):
        r = client.get(path)
        assert r.status_code == 404 and error(r)["message"] == "No such File object: file-nope"


# ------------------------------------------------------------------ faults


def test_injected_status_fault_with_retry_after_hits_only_the_matching_route(srv, client):
    srv.state.inject_fault(route="/v1/batches", method="GET", status=429, headers={"retry-after": "1"}, times=2)
    assert client.get("/batches/batch_x").status_code == 404  # other route unaffected
    for _ in range(2):
        r = client.get("/batches")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert error(r)["code"] == "rate_limit_exceeded"
    assert client.get("/batches").status_code == 200


def test_injected_fault_with_custom_body_and_retry_after_ms(srv, client):
    srv.state.inject_fault(status=503, body={"error": {"message": "slow down", "type": "server_error",
                                                       "param": None, "code": None}},
                           headers={"retry-after-ms": "50"})
    r = client.get("/files/file-x")
    assert r.status_code == 503 and r.headers["retry-after-ms"] == "50" and error(r)["message"] == "slow down"


def test_forever_fault_lasts_until_cleared(srv, client):
    srv.state.inject_fault(route="/v1/batches/{id}", status=500, times=None)
    for _ in range(3):
        assert client.get("/batches/batch_a").status_code == 500
    srv.state.clear_faults()
    assert client.get("/batches/batch_a").status_code == 404


def test_dropped_connection_fault_gives_no_response(srv, client):
    srv.state.inject_fault(route="/v1/batches", drop=True)
    with pytest.raises(httpx.TransportError):
        client.get("/batches")
    assert client.get("/batches").status_code == 200


def test_truncated_body_fault_resets_mid_body(srv, client):
    srv.state.inject_fault(route="/v1/batches", truncate=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/batches")
    assert client.get("/batches").status_code == 200


def test_delay_fault_causes_a_read_timeout(srv, client):
    srv.state.inject_fault(route="/v1/batches", delay=0.6)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/batches", timeout=httpx.Timeout(5, read=0.2))
    t = time.monotonic()
    srv.state.inject_fault(route="/v1/batches", delay=0.3)
    assert client.get("/batches").status_code == 200
    assert time.monotonic() - t >= 0.3


def test_faults_can_target_a_method(srv, client):
    srv.state.inject_fault(route="POST /v1/batches", status=500)
    assert client.get("/batches").status_code == 200
    assert client.post("/batches", json={}).status_code == 500


# ---------------------------------------------------------------- counters


def test_requests_are_counted_by_route_template(srv, client):
    client.get("/batches")
    client.get("/batches/batch_1")
    client.get("/batches/batch_2")
    client.post("/batches/batch_1/cancel")
    f = upload(client, [line("a")])
    client.get("/files/" + f["id"])
    client.get("/files/%s/content" % f["id"])
    create(client, f["id"])
    c = srv.state.counts
    assert c["GET /v1/batches"] == 1 and c["GET /v1/batches/{id}"] == 2
    assert c["POST /v1/batches/{id}/cancel"] == 1 and c["POST /v1/files"] == 1 and c["POST /v1/batches"] == 1
    assert c["GET /v1/files/{id}"] == 1 and c["GET /v1/files/{id}/content"] == 1
    assert srv.state.total_requests() == 8
    srv.state.reset_counts()
    assert srv.state.total_requests() == 0 and srv.state.connections == 0


def test_keep_alive_requests_share_one_connection(srv):
    with make_client(srv) as c:
        for _ in range(5):
            assert c.get("/batches").status_code == 200
    assert srv.state.connections == 1
    for _ in range(2):
        httpx.get(srv.base_url + "/batches", headers={"Authorization": "Bearer " + KEY})
    assert srv.state.connections == 3
    assert srv.state.counts["GET /v1/batches"] == 7


def test_error_responses_keep_the_connection_alive(srv):
    with make_client(srv) as c:
        c.get("/batches/nope")
        c.post("/batches", json={"x": 1})
        c.get("/batches", headers={"Authorization": "Bearer wrong"})
        c.get("/batches")
    assert srv.state.connections == 1


# ----------------------------------------------------------- control API


def test_http_control_endpoints(srv, client):
    base = srv.base_url[: -len("/v1")]
    client.get("/batches")
    stats = httpx.get(base + "/_emulator/stats").json()
    assert stats["counts"] == {"GET /v1/batches": 1} and stats["total"] == 1 and stats["connections"] >= 1
    r = httpx.post(base + "/_emulator/faults", json={"route": "/v1/batches", "status": 500, "times": 1,
                                                     "headers": {"retry-after": "2"}})
    assert r.status_code == 200
    r = client.get("/batches")
    assert r.status_code == 500 and r.headers["retry-after"] == "2"
    httpx.post(base + "/_emulator/faults", json={"status": 502, "times": None})
    assert client.get("/batches").status_code == 502
    assert httpx.delete(base + "/_emulator/faults").status_code == 200
    assert client.get("/batches").status_code == 200
    t0 = srv.state.now()
    assert httpx.post(base + "/_emulator/advance", json={"seconds": 3600}).status_code == 200
    assert srv.state.now() - t0 >= 3600
    assert httpx.post(base + "/_emulator/reset-counts").status_code == 200
    assert httpx.get(base + "/_emulator/stats").json()["total"] == 0
    assert httpx.post(base + "/_emulator/faults", json={"bogus": 1}).status_code == 400


# -------------------------------------------------------------------- misc


def test_server_survives_clients_that_disconnect_mid_request(srv, client):
    host, port = "127.0.0.1", srv.port
    for payload in (b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-emulator\r\n"
                    b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n",
                    b"GET /v1/batches HTTP/1.1\r\nHost: x\r\n"):
        s = socket.create_connection((host, port))
        s.sendall(payload)
        s.close()
    srv.state.inject_fault(route="/v1/files/{id}/content", delay=0.2)
    f = upload(client, b"x" * 100000)
    s = socket.create_connection((host, port))
    s.sendall(b"GET /v1/files/%s/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-emulator\r\n\r\n"
              % f["id"].encode())
    s.close()
    time.sleep(0.3)
    assert client.get("/batches").status_code == 200


def test_context_manager_stops_and_frees_the_port():
    with EmulatorServer(port=0, seed=False) as s:
        port = s.port
        assert httpx.get(s.base_url + "/batches", headers={"Authorization": "Bearer sk-emulator"}).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:%d/v1/batches" % port)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def emulator_cli(*args: str):
    """``python -m emulator`` on a free port with ``args``; yields the process and its port. It must then
    answer SIGTERM by exiting with 0 (it is killed when the test failed first)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield proc, port
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_starts_on_a_free_port_and_answers():
    with emulator_cli("--api-key", "sk-cli", "--speed", "1.0") as (proc, port):
        first = proc.stdout.readline().strip()
        assert first == "emulator listening on http://127.0.0.1:%d/v1" % port
        r = httpx.get("http://127.0.0.1:%d/v1/batches" % port, headers={"Authorization": "Bearer sk-cli"})
        assert r.status_code == 200 and len(r.json()["data"]) == 20
        assert httpx.get("http://127.0.0.1:%d/_emulator/stats" % port).json()["total"] == 1


def test_an_injected_x_request_id_replaces_the_emulators_own(srv, client):
    srv.state.inject_fault(route="GET /v1/batches", status=503, headers={"X-Request-Id": "req_custom"})
    response = client.get("/batches")
    assert response.status_code == 503
    assert response.headers.get_list("x-request-id") == ["req_custom"]
    srv.state.inject_fault(route="GET /v1/batches", truncate=True, headers={"x-request-id": "req_cut"})
    with pytest.raises(httpx.HTTPError):
        client.get("/batches")


# ---------------------------------------------------------------- projects

PROJECT_KEYS = {"default": "sk-a-default-0000", "research": "sk-b-research-1111"}


@pytest.fixture
def two_projects():
    with EmulatorServer(port=0, api_keys=PROJECT_KEYS, seed=True) as s:
        yield s


def project_client(s, label):
    return httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer " + s.api_keys[label]}, timeout=10)


def test_each_api_key_is_its_own_project_with_its_own_seeded_batches(two_projects):
    with project_client(two_projects, "default") as a, project_client(two_projects, "research") as b:
        ids_a = {x["id"] for x in a.get("/batches", params={"limit": 100}).json()["data"]}
        ids_b = {x["id"] for x in b.get("/batches", params={"limit": 100}).json()["data"]}
    assert len(ids_a) >= 60 and len(ids_b) >= 60
    assert not ids_a & ids_b
    assert {x["id"] for x in two_projects.state.list_batches("research")} == ids_b


def test_batches_and_files_of_another_project_answer_like_unknown_ones(two_projects):
    with project_client(two_projects, "default") as a, project_client(two_projects, "research") as b:
        theirs = next(x for x in two_projects.state.list_batches("research") if x["status"] == "in_progress")
        fid = theirs["input_file_id"]
        r = a.get("/batches/" + theirs["id"])
        assert r.status_code == 404 and error(r)["message"] == "No batch found with id '%s'." % theirs["id"]
        r = a.post("/batches/%s/cancel" % theirs["id"])
        assert r.status_code == 404 and error(r)["message"] == "No batch found with id '%s'." % theirs["id"]
        for path in ("/files/" + fid, "/files/%s/content" % fid):
            r = a.get(path)
            assert r.status_code == 404 and error(r)["message"] == "No such File object: %s" % fid
        r = a.get("/batches", params={"after": theirs["id"]})
        assert r.status_code == 400 and error(r) == {"message": "No batch found with id '%s'." % theirs["id"],
                                                     "type": "invalid_request_error", "param": "after", "code": None}
        assert create(a, fid).status_code == 404  # cannot run a batch on another project's file
        assert b.get("/batches/" + theirs["id"]).json()["status"] == "in_progress"  # the cancel did nothing
        assert b.get("/files/%s/content" % fid).status_code == 200
    stats = httpx.get(two_projects.base_url[:-3] + "/_emulator/stats")
    assert stats.json()["requests_by_project"] == {"default": 6, "research": 2}
    assert all(key not in stats.text for key in PROJECT_KEYS.values())


def test_the_first_project_keeps_the_ids_of_the_single_key_emulator():
    single, multi = seeded_state(), seeded_state(projects=["default", "research"])
    try:
        assert [x["id"] for x in multi.list_batches("default")] == [x["id"] for x in single.list_batches()]
        assert multi.list_batches() == multi.list_batches("default")
    finally:
        single.close()
        multi.close()


def test_any_key_lets_unknown_tokens_in_as_the_first_project():
    with EmulatorServer(port=0, api_keys=PROJECT_KEYS, any_key=True, seed=False) as s:
        other = {"Authorization": "Bearer whatever"}
        f = httpx.post(s.base_url + "/files", headers=other, files={"file": ("a.jsonl", b"{}\n")},
                       data={"purpose": "batch"}).json()
        with project_client(s, "default") as a, project_client(s, "research") as b:
            assert a.get("/files/" + f["id"]).status_code == 200
            assert b.get("/files/" + f["id"]).status_code == 404
        assert s.state.stats()["requests_by_project"] == {"default": 2, "research": 1}


def test_api_keys_must_be_distinct_and_labels_plain():
    with pytest.raises(ValueError):
        EmulatorServer(port=0, api_keys={"a": "sk-same", "b": "sk-same"}, seed=False)
    with pytest.raises(ValueError):
        EmulatorServer(port=0, api_keys={"a/b": "sk-x"}, seed=False)


def test_cli_key_and_secret_parsing():
    class Args:
        projects = None
        api_key = ["sk-one", "research=sk-two", "sk-three=x"]

    assert parse_keys(Args) == ({"project1": "sk-one", "research": "sk-two", "project3": "sk-three=x"}, False)
    Args.api_key, Args.projects = None, 2
    assert parse_keys(Args) == ({"project1": "sk-emulator-1", "project2": "sk-emulator-2"}, True)
    assert parse_secrets(["whsec_AAAA"]) == "whsec_AAAA"
    assert parse_secrets(["a=whsec_AAAA", "b=whsec_BBBB"]) == {"a": "whsec_AAAA", "b": "whsec_BBBB"}
    with pytest.raises(SystemExit):
        main(["--projects", "2", "--api-key", "sk-x"])


def test_cli_projects_flag_prints_generated_keys_that_each_select_a_project():
    with emulator_cli("--projects", "2", "--no-seed") as (proc, port):
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines == ["emulator listening on http://127.0.0.1:%d/v1" % port,
                         "project project1: api key sk-emulator-1", "project project2: api key sk-emulator-2"]
        for key in ("sk-emulator-1", "sk-emulator-2", "sk-emulator-2"):
            r = httpx.get("http://127.0.0.1:%d/v1/batches" % port, headers={"Authorization": "Bearer " + key})
            assert r.status_code == 200
        stats = httpx.get("http://127.0.0.1:%d/_emulator/stats" % port).json()
        assert stats["requests_by_project"] == {"project1": 1, "project2": 2}


# ------------------------------------------------------------- cancelling


def test_cancelling_lasts_three_seconds_for_seeded_batches_too(seeded):
    with make_client(seeded) as c:
        running = [b for b in seeded.state.list_batches() if b["status"] in ("in_progress", "validating")]
        for b in running[:3]:
            r = c.post("/batches/%s/cancel" % b["id"])
            assert r.status_code == 200 and r.json()["status"] == "cancelling"
        seeded.state.advance(2.9)
        assert {c.get("/batches/" + b["id"]).json()["status"] for b in running[:3]} == {"cancelling"}
        seeded.state.advance(0.2)
        for b in running[:3]:
            got = c.get("/batches/" + b["id"]).json()
            assert got["status"] == "cancelled" and got["cancelled_at"] - got["cancelling_at"] in (2, 3, 4)


def test_seeded_cancelling_batches_stay_cancelling_for_minutes_then_finish(seeded):
    ids = [b["id"] for b in seeded.state.list_batches() if b["status"] == "cancelling"]
    assert ids
    seeded.state.advance(3)
    assert {seeded.state.get_batch(i)["status"] for i in ids} == {"cancelling"}
    seeded.state.advance(600)
    assert {seeded.state.get_batch(i)["status"] for i in ids} == {"cancelled"}


# ------------------------------------------------------------ module layout


def test_core_does_not_import_seed_or_http_and_seeding_takes_its_generator_as_an_argument():
    for info in pkgutil.iter_modules(core.__path__):
        module = __import__("emulator.core." + info.name, fromlist=["x"])
        imported = set()
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
        assert not {name for name in imported if "seed" in name or "http" in name}, (info.name, imported)
    for fn in (seed.seed_state, seed.seed_bulk):
        assert list(inspect.signature(fn).parameters)[:2] == ["state", "rng"]


def test_no_emulator_module_is_over_500_lines():
    root = REPO / "emulator"
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert max(sizes.values()) <= 500, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


# -------------------------------------------------------------------- reset


def test_reset_restores_the_freshly_seeded_state_quickly(seeded):
    state = seeded.state
    fresh = [(b["id"], b["status"], b["request_counts"], b["output_file_id"]) for b in state.list_batches()]
    with make_client(seeded) as c:
        done = next(b for b in state.list_batches() if b["status"] == "completed" and b["output_file_id"])
        content = c.get("/files/%s/content" % done["output_file_id"]).content
        running = next(b for b in state.list_batches() if b["status"] == "in_progress")
        assert c.post("/batches/%s/cancel" % running["id"]).status_code == 200
        assert c.delete("/files/" + done["output_file_id"]).status_code == 200
        f = upload(c, [line("a")])
        new = create(c, f["id"]).json()
        new_path = state.get_file(f["id"])[1]
        state.inject_fault(route="/v1/batches", status=500, times=None)
        state.advance(3 * 86400)
        assert c.get("/batches").status_code == 500
        times = []
        with httpx.Client(base_url=seeded.base_url[:-3]) as control:  # one client: no TLS setup per call
            for _ in range(3):
                t = time.perf_counter()
                assert control.post("/_emulator/reset").status_code == 200
                times.append(time.perf_counter() - t)
        t = time.perf_counter()
        state.reset()
        times.append(time.perf_counter() - t)
        print("reset (HTTP x3, Python x1): %s ms" % ", ".join("%.1f" % (x * 1000) for x in times))
        assert min(times) < 0.05
        assert abs(state.now() - time.time()) < 5  # the clock offset is gone
        stats = state.stats()
        assert stats["total"] == 0 and stats["requests_by_project"] == {"project1": 0}
        assert [(b["id"], b["status"], b["request_counts"], b["output_file_id"]) for b in state.list_batches()] \
            == fresh
        assert c.get("/batches/" + new["id"]).status_code == 404
        assert c.get("/files/" + f["id"]).status_code == 404 and not os.path.exists(new_path)
        assert c.get("/files/%s/content" % done["output_file_id"]).content == content
        assert c.get("/batches/" + running["id"]).json()["status"] == "in_progress"
        # the restored batches still run: the lifecycle continues from the restored point
        state.advance(3 * 86400)
        assert c.get("/batches/" + running["id"]).json()["status"] in ("completed", "expired")


def test_reset_keeps_seeded_timestamps_as_old_as_they_were(seeded):
    before = seeded.state.list_batches()[0]
    seeded.state._seed_now -= 100  # as if the session had run for 100 s since seeding
    seeded.state.reset()
    after = seeded.state.get_batch(before["id"])
    assert after["created_at"] - before["created_at"] in (100, 101)
    assert after["expires_at"] - after["created_at"] == 86400


# --------------------------------------------------------------------- bulk


@pytest.fixture(scope="module")
def bulk():
    with EmulatorServer(port=0, api_keys=PROJECT_KEYS, seed=False, seed_count=5000, seed_unfinished=10) as s:
        yield s


def test_bulk_seed_pages_every_id_exactly_once_newest_first(bulk):
    seen, after = [], None
    with project_client(bulk, "default") as c:
        for _ in range(60):
            page = c.get("/batches", params={"limit": 100, **({"after": after} if after else {})}).json()
            seen += page["data"]
            if not page["has_more"]:
                break
            after = page["last_id"]
    ids = [b["id"] for b in seen]
    assert len(ids) == 5000 and len(set(ids)) == 5000
    keys = [(b["created_at"], b["id"]) for b in seen]
    assert keys == sorted(keys, reverse=True)
    now = bulk.state.now()
    assert all(now - 61 * 86400 < b["created_at"] <= now for b in seen)
    statuses = collections.Counter(b["status"] for b in seen)
    assert statuses["completed"] > 3000 and min(statuses[s] for s in ("failed", "expired", "cancelled")) > 50
    unfinished = [b for b in seen if b["status"] not in ("completed", "failed", "expired", "cancelled")]
    assert len(unfinished) == 10 and all(now - b["created_at"] < 86400 for b in unfinished)
    for b in seen:
        end = b["completed_at"] or b["failed_at"] or b["expired_at"] or b["cancelled_at"]
        assert end is None or b["created_at"] <= end <= now
    assert any(b["metadata"] and {"description", "team", "run"} <= set(b["metadata"]) for b in seen)
    assert sum(b["usage"] is None for b in seen) > 0 and sum(b["model"] is None for b in seen) > 0
    other = {b["id"] for b in bulk.state.list_batches("research")}
    assert len(other) == 5000 and not other & set(ids)


def test_bulk_unfinished_batches_progress_with_the_clock(bulk):
    running = [b["id"] for b in bulk.state.list_batches("default") if b["status"] not in
               ("completed", "failed", "expired", "cancelled")]
    bulk.state.advance(2 * 86400)
    assert all(bulk.state.get_batch(i, "default")["status"] in ("completed", "expired") for i in running)
    bulk.state.reset()
    assert all(bulk.state.get_batch(i, "default")["status"] not in ("completed", "expired") for i in running)


def test_bulk_files_are_generated_on_first_request_and_match_the_counts(bulk):
    rows = [b for b in bulk.state.list_batches("default")
            if b["status"] == "completed" and b["error_file_id"] and b["output_file_id"]
            and b["request_counts"]["total"] < 2000]
    b = rows[0]
    with project_client(bulk, "default") as c, project_client(bulk, "research") as other:
        assert other.get("/files/" + b["output_file_id"]).status_code == 404
        meta = c.get("/files/" + b["output_file_id"]).json()
        assert meta["purpose"] == "batch_output" and meta["created_at"] == b["completed_at"]
        out = read_jsonl(c, b["output_file_id"])
        err = read_jsonl(c, b["error_file_id"])
        inp = read_jsonl(c, b["input_file_id"])
        assert meta["bytes"] == len(c.get("/files/%s/content" % b["output_file_id"]).content)
    rc = b["request_counts"]
    assert (len(out), len(err), len(inp)) == (rc["completed"], rc["failed"], rc["total"])
    assert {x["custom_id"] for x in out + err} == {x["custom_id"] for x in inp}
    assert all(x["response"]["status_code"] == 200 for x in out)
    assert all(x["response"]["status_code"] >= 400 for x in err)
    expired = next(x for x in bulk.state.list_batches("default")
                   if x["status"] == "expired" and x["request_counts"]["total"] < 2000)
    with project_client(bulk, "default") as c:
        errs = read_jsonl(c, expired["error_file_id"])
        assert sum(1 for x in errs if x["error"]) == expired["request_counts"]["total"] - \
            expired["request_counts"]["completed"] - expired["request_counts"]["failed"]
        assert c.delete("/files/" + expired["input_file_id"]).status_code == 200
        assert c.get("/files/" + expired["input_file_id"]).status_code == 404
    failed = next(x for x in bulk.state.list_batches("default") if x["status"] == "failed")
    assert failed["errors"]["data"][0]["code"] in ("token_limit_exceeded", "invalid_json_line")
    assert failed["output_file_id"] is None and failed["error_file_id"] is None


def test_bulk_rows_expose_data_like_other_batches(bulk):
    row_id = bulk.state.list_batches("research")[-1]["id"]
    assert bulk.state.batches[row_id].data == bulk.state.get_batch(row_id, "research")


def test_every_control_endpoint_and_cli_option_is_documented_in_the_readme():
    readme = (REPO / "emulator" / "README.md").read_text()
    for _, template, _, _ in control.ROUTES:
        assert template in readme, template
    options = [o for action in build_parser()._actions for o in action.option_strings if o.startswith("--")]
    assert len(options) > 15 and [o for o in options if o not in readme and o != "--help"] == []
