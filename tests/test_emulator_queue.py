"""The emulator's queue (enqueued-token limits), batch faults, the hang fault and its settings, over HTTP."""

import threading

import httpx
import pytest

from emulator.__main__ import parse_queue_tokens
from tests.emulator_helpers import (create, estimated_tokens, line, module_emulator, read_jsonl, run_to_end,
                                    upload)

KEY = "sk-queue"
OTHER = "sk-queue-other"


_server, srv = module_emulator(api_keys={"main": KEY, "other": OTHER}, seed=False, queue_tokens={"gpt-4o-mini": 1000})


@pytest.fixture
def c(srv):
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": "Bearer " + KEY}, timeout=10) as client:
        yield client


@pytest.fixture
def control(srv):
    with httpx.Client(base_url=srv.root_url + "/_emulator", timeout=10) as client:
        yield client


def lines(prefix, n, model="gpt-4o-mini", **extra):
    return [line("%s-%d" % (prefix, i), model=model, **extra) for i in range(n)]


def submit(c, batch_lines):
    r = create(c, upload(c, batch_lines)["id"])
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_a_batch_that_would_pass_its_models_queue_limit_fails_after_validation_with_token_limit_exceeded(srv, c):
    first, second = lines("a", 20), lines("b", 20)
    assert estimated_tokens(first) <= 1000 < estimated_tokens(first) + estimated_tokens(second)
    a, b = submit(c, first), submit(c, second)
    assert c.get("/batches/" + b).json()["status"] == "validating"  # accepted at create, like the API
    srv.state.advance(3)
    assert c.get("/batches/" + a).json()["status"] == "in_progress"
    refused = c.get("/batches/" + b).json()
    assert refused["status"] == "failed" and refused["failed_at"] is not None
    assert refused["errors"] == {"object": "list", "data": [{
        "code": "token_limit_exceeded",
        "message": "Enqueued token limit reached for gpt-4o-mini in organization org-emulator. Limit: 1,000 "
                   "enqueued tokens. Please try again once some in_progress batches have been completed.",
        "param": None, "line": None}]}


def test_the_queue_counts_only_unfinished_batches_of_the_same_model_and_project(srv, c):
    a = submit(c, lines("a", 20))
    other_model = submit(c, lines("m", 30, model="gpt-4.1-mini"))
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": "Bearer " + OTHER}) as other:
        other_project = submit(other, lines("p", 20))
        srv.state.advance(3)
        assert other.get("/batches/" + other_project).json()["status"] == "in_progress"
    assert c.get("/batches/" + other_model).json()["status"] == "in_progress"
    assert run_to_end(srv, c, a)["status"] == "completed"
    again = submit(c, lines("c", 20))  # the finished batch no longer counts
    srv.state.advance(3)
    assert c.get("/batches/" + again).json()["status"] == "in_progress"


def test_queue_limits_are_set_per_project_at_run_time_and_reported_with_what_is_enqueued(srv, c, control):
    r = control.post("/queue", json={"project": "main", "model": "gpt-4.1-mini", "tokens": 5000})
    assert r.status_code == 200
    batch_lines = lines("a", 10, model="gpt-4.1-mini")
    submit(c, batch_lines)
    srv.state.advance(3)
    assert control.get("/queue", params={"project": "main"}).json() == {"main": {
        "gpt-4.1-mini": {"enqueued": estimated_tokens(batch_lines), "limit": 5000},
        "gpt-4o-mini": {"enqueued": 0, "limit": 1000}}}
    assert control.get("/queue").json()["other"] == {"gpt-4o-mini": {"enqueued": 0, "limit": 1000}}
    assert control.post("/queue", json={"project": "main", "model": "gpt-4o-mini", "tokens": None}).status_code == 200
    big = submit(c, lines("big", 100))  # no limit any more for this model in this project
    srv.state.advance(3)
    assert c.get("/batches/" + big).json()["status"] == "in_progress"
    assert control.post("/queue", json={"project": "nope", "model": "x", "tokens": 1}).status_code == 404
    assert control.post("/queue", json={"project": "main", "model": "x", "tokens": 0}).status_code == 400


def test_reset_restores_the_start_up_queue_limits_settings_and_faults(srv, control):
    control.post("/queue", json={"project": "main", "model": "gpt-4o-mini", "tokens": 7})
    control.post("/settings", json={"fail_percent": 50, "cost_skew": 2})
    control.post("/batch-faults", json={"expire_after": 0.1, "times": None})
    srv.state.reset()
    assert srv.state.queue_limits == {"main": {"gpt-4o-mini": 1000}, "other": {"gpt-4o-mini": 1000}}
    assert (srv.state.fail_percent, srv.state.cost_skew) == (5, 1.0)
    assert control.get("/batch-faults").json() == {"data": []}


def test_queue_tokens_option_is_parsed_from_model_equals_tokens():
    assert parse_queue_tokens(["gpt-4o-mini=2000000", "ft:gpt-4o:org=x=5"]) == {"gpt-4o-mini": 2_000_000,
                                                                                 "ft:gpt-4o:org=x": 5}
    for bad in (["gpt-4o-mini"], ["gpt-4o-mini=0"], ["gpt-4o-mini=lots"]):
        with pytest.raises(SystemExit):
            parse_queue_tokens(bad)


# ------------------------------------------------------------------ batch faults


def test_a_batch_fault_expires_the_next_batch_halfway_with_the_rest_as_batch_expired(srv, c, control):
    control.post("/settings", json={"fail_percent": 0})
    r = control.post("/batch-faults", json={"project": "main", "expire_after": 0.5})
    assert r.status_code == 200 and r.json()["times"] == 1
    bid = submit(c, lines("e", 20))
    batch = run_to_end(srv, c, bid, step=0.5)
    assert batch["status"] == "expired" and batch["request_counts"] == {"total": 20, "completed": 10, "failed": 0}
    expired = read_jsonl(c, batch["error_file_id"])
    assert len(expired) == 10 and {x["error"]["code"] for x in expired} == {"batch_expired"}
    assert len(read_jsonl(c, batch["output_file_id"])) == 10
    assert run_to_end(srv, c, submit(c, lines("f", 5)))["status"] == "completed"  # used up after one batch


def test_per_request_faults_put_5xx_and_4xx_lines_in_the_error_file_and_once_lets_a_retry_succeed(srv, c, control):
    control.post("/settings", json={"fail_percent": 0})
    control.post("/batch-faults", json={"fail_5xx_match": r"-(1|2)$", "status_5xx": 503, "fail_4xx_match": "-3$",
                                        "once": True})
    batch = run_to_end(srv, c, submit(c, lines("r", 6)))
    errors = {x["custom_id"]: x["response"]["status_code"] for x in read_jsonl(c, batch["error_file_id"])}
    assert errors == {"r-1": 503, "r-2": 503, "r-3": 400}
    assert batch["request_counts"] == {"total": 6, "completed": 3, "failed": 3}
    retry = run_to_end(srv, c, submit(c, lines("r", 6)))  # the same custom_ids: each failed once already
    assert retry["request_counts"] == {"total": 6, "completed": 6, "failed": 0} and retry["error_file_id"] is None


def test_a_share_of_requests_fails_with_5xx_for_every_batch_while_the_rule_lasts(srv, c, control):
    control.post("/settings", json={"fail_percent": 0})
    control.post("/batch-faults", json={"fail_5xx": 0.25, "times": None})
    for prefix in ("x", "y"):
        batch = run_to_end(srv, c, submit(c, lines(prefix, 400, model="gpt-4.1-mini")))
        failed = batch["request_counts"]["failed"]
        assert 60 <= failed <= 140, failed  # a hash picks about a quarter
        assert {x["response"]["status_code"] for x in read_jsonl(c, batch["error_file_id"])} == {500}
    assert len(control.get("/batch-faults").json()["data"]) == 1


def test_a_token_limit_fault_fails_the_next_batch_of_that_model_even_under_the_limit(srv, c, control):
    control.post("/batch-faults", json={"model": "gpt-4.1-mini", "token_limit_exceeded": True})
    untouched = submit(c, lines("u", 2))
    refused = submit(c, lines("t", 2, model="gpt-4.1-mini"))
    srv.state.advance(3)
    assert c.get("/batches/" + untouched).json()["status"] == "finalizing"
    assert c.get("/batches/" + refused).json()["errors"]["data"][0]["code"] == "token_limit_exceeded"
    later = submit(c, lines("t2", 2, model="gpt-4.1-mini"))
    assert run_to_end(srv, c, later)["status"] == "completed"


def test_bad_batch_faults_are_refused_with_a_sentence(control):
    assert control.post("/batch-faults", json={"expire_after": 1.5}).status_code == 400
    assert control.post("/batch-faults", json={"fail_5xx_match": "("}).status_code == 400
    assert control.post("/batch-faults", json={"project": "nope"}).status_code == 400
    assert control.post("/batch-faults", json={"colour": "red"}).json()["error"]["message"] == \
        "Unknown batch fault argument: colour"


def test_the_expire_endpoint_ends_a_running_batch_now(srv, c, control):
    bid = submit(c, lines("n", 50, model="gpt-4.1-mini"))
    srv.state.advance(3)
    r = control.post("/batches/%s/expire" % bid)
    assert r.status_code == 200 and r.json()["status"] == "expired"
    assert r.json()["expired_at"] == int(srv.state.now())
    assert control.post("/batches/%s/expire" % bid).status_code == 404  # already finished


def test_one_batch_can_be_slowed_down_and_its_cancel_lengthened_at_run_time(srv, c, control):
    bid = submit(c, lines("slow", 30, model="gpt-4.1-mini"))
    r = control.post("/batches/%s/configure" % bid, json={"rate": 1, "cancel_secs": 600})
    assert r.status_code == 200 and r.json()["id"] == bid
    srv.state.advance(12)  # 2 s validating, then 10 requests at 1 per second
    counts = c.get("/batches/" + bid).json()["request_counts"]
    assert counts["completed"] + counts["failed"] == 10
    assert c.post("/batches/%s/cancel" % bid).json()["status"] == "cancelling"
    srv.state.advance(599)
    assert c.get("/batches/" + bid).json()["status"] == "cancelling"
    srv.state.advance(1)
    assert c.get("/batches/" + bid).json()["status"] == "cancelled"
    assert control.post("/batches/batch_nope/configure", json={"rate": 1}).status_code == 404
    assert control.post("/batches/%s/configure" % bid, json={"rate": "fast"}).status_code == 400


def test_fail_percent_zero_answers_every_request(srv, c, control):
    assert control.post("/settings", json={"fail_percent": 0}).json() == {"fail_percent": 0, "cost_skew": 1.0}
    batch = run_to_end(srv, c, submit(c, lines("z", 300, model="gpt-4.1-mini")))
    assert batch["request_counts"] == {"total": 300, "completed": 300, "failed": 0}
    assert control.post("/settings", json={"fail_percent": 101}).status_code == 400


def test_random_server_errors_are_transient_while_random_bad_requests_fail_every_time(srv, c, control):
    control.post("/settings", json={"fail_percent": 20})
    batch_lines = lines("t", 400, model="gpt-4.1-mini")

    def failures():
        batch = run_to_end(srv, c, submit(c, batch_lines))
        return {x["custom_id"]: x["response"]["status_code"] for x in read_jsonl(c, batch["error_file_id"])}

    first, second = failures(), failures()
    bad = {cid for cid, status in first.items() if status == 400}
    server = {cid for cid, status in first.items() if status == 500}
    assert 20 <= len(bad) <= 60 and 20 <= len(server) <= 60  # about 10 % each
    assert bad == {cid for cid, status in second.items() if status == 400}
    assert len(server & set(second)) <= len(server) // 3  # a resubmission mostly succeeds


# ----------------------------------------------------------------------- hang


def test_a_hang_fault_holds_requests_unanswered_until_faults_are_cleared(srv, control):
    control.post("/faults", json={"route": "GET /v1/batches", "hang": True, "times": None})
    outcome = {}

    def call():
        try:
            outcome["response"] = httpx.get(srv.base_url + "/batches", headers={"Authorization": "Bearer " + KEY},
                                            timeout=30)
        except httpx.HTTPError as e:
            outcome["error"] = e

    caller = threading.Thread(target=call)
    caller.start()
    for _ in range(2000):  # wait for the request to arrive (control calls, no sleeping)
        if control.get("/stats").json()["hung"] == 1:
            break
    assert control.get("/stats").json()["hung"] == 1
    assert control.delete("/faults").status_code == 200
    caller.join(10)
    assert not caller.is_alive() and "response" not in outcome
    assert isinstance(outcome["error"], httpx.RemoteProtocolError)  # closed without an answer
    assert httpx.get(srv.base_url + "/batches", headers={"Authorization": "Bearer " + KEY}).status_code == 200
