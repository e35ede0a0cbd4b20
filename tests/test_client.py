"""The upstream client: typed reading, error mapping, retry policy and id validation.

Most tests mock the upstream at the transport (httpx.MockTransport) so every attempt is counted; the
last group runs against the emulator over a real loopback socket.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from batches.projects import get_project
from batches.upstream.errors import parse_retry_after
from batches.upstream import client_for
from batches.upstream import (
    Batch,
    BatchClient,
    InvalidId,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamConflict,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    validate_id,
)
from tests.helpers import EMULATOR_KEY

SECRET = "sk-very-secret-key-123"
BATCH = {
    "id": "batch_abc",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "input_file_id": "file-in",
    "completion_window": "24h",
    "status": "in_progress",
    "created_at": 1700000000,
}


class Recorder:
    """A mock upstream: answers from a list of responses (or exceptions) and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(recorder: Recorder, **kwargs) -> tuple[BatchClient, list[float]]:
    sleeps: list[float] = []
    client = BatchClient(
        base_url="https://upstream.test/v1",
        api_key=SECRET,
        transport=httpx.MockTransport(recorder),
        sleep=sleeps.append,
        **kwargs,
    )
    return client, sleeps


def json_response(status: int, body, headers=None) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"x-request-id": "req_123", **(headers or {})})


def error_body(message="boom", code=None):
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


# -- requests as sent --------------------------------------------------------


def test_requests_carry_bearer_key_user_agent_and_org_headers():
    rec = Recorder(json_response(200, BATCH))
    client, _ = make_client(rec, organization="org-1", project="proj_1")
    client.retrieve_batch("batch_abc")
    sent = rec.requests[0]
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["user-agent"].startswith("batch-dashboard/")
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["openai-project"] == "proj_1"
    assert str(sent.url) == "https://upstream.test/v1/batches/batch_abc"


def test_org_and_project_headers_are_omitted_when_not_configured():
    rec = Recorder(json_response(200, BATCH))
    client, _ = make_client(rec)
    client.retrieve_batch("batch_abc")
    assert "openai-organization" not in rec.requests[0].headers
    assert "openai-project" not in rec.requests[0].headers


def test_list_sends_after_and_limit_and_takes_next_cursor_from_last_item():
    page = {"object": "list", "data": [dict(BATCH, id="batch_1"), dict(BATCH, id="batch_2")], "has_more": True}
    rec = Recorder(json_response(200, page))
    client, _ = make_client(rec)
    result = client.list_batches(after="batch_0", limit=2)
    assert rec.requests[0].url.params["after"] == "batch_0"
    assert rec.requests[0].url.params["limit"] == "2"
    assert [b.id for b in result.data] == ["batch_1", "batch_2"]
    # Not last_id (absent here): the id of the last item, as the official SDKs do.
    assert result.next_after == "batch_2"


def test_list_has_no_next_cursor_when_has_more_is_false_or_absent_or_page_is_empty():
    client, _ = make_client(Recorder(json_response(200, {"object": "list", "data": [BATCH], "has_more": False})))
    assert client.list_batches().next_after is None
    client, _ = make_client(Recorder(json_response(200, {"object": "list", "data": [BATCH]})))
    assert client.list_batches().next_after is None
    client, _ = make_client(Recorder(json_response(200, {"object": "list", "data": [], "has_more": True})))
    assert client.list_batches().next_after is None


def test_list_refuses_a_limit_outside_1_to_100_without_calling_upstream():
    rec = Recorder(json_response(200, {"data": []}))
    client, _ = make_client(rec)
    for bad in (0, 101, -5):
        with pytest.raises(ValueError):
            client.list_batches(limit=bad)
    assert rec.requests == []


# -- tolerant reading ----------------------------------------------------------


def test_batch_with_only_required_fields_reads_with_safe_defaults():
    batch = Batch.from_api(BATCH)
    assert batch.request_counts is None
    assert batch.errors == ()
    assert batch.metadata is None
    assert batch.model is None
    assert batch.timeline == [("created", 1700000000)]
    assert not batch.is_terminal and batch.can_cancel


def test_batch_with_nulls_unknown_status_unknown_endpoint_and_extra_fields_still_reads():
    data = dict(
        BATCH,
        status="paused_by_operator",
        endpoint="/v1/future/thing",
        output_file_id=None,
        request_counts={"total": 10, "completed": 4, "failed": 1},
        errors={"object": "list", "data": [{"code": "x", "message": "bad", "param": None, "line": 3}, "junk"]},
        usage={"input_tokens": 5, "input_tokens_details": None, "output_tokens": 7, "total_tokens": 12, "prompt_tokens": 0},
        metadata={"description": "nightly <b>run</b>"},
        brand_new_field={"nested": True},
    )
    batch = Batch.from_api(data)
    assert batch.status == "paused_by_operator" and not batch.is_known_status
    assert not batch.is_terminal and not batch.can_cancel
    assert batch.endpoint == "/v1/future/thing"
    assert batch.request_counts.pending == 5
    assert batch.request_counts.completed_pct == 40.0
    assert batch.errors[0].line == 3 and len(batch.errors) == 1
    assert batch.usage.total_tokens == 12 and batch.usage.cached_tokens is None
    assert batch.description == "nightly <b>run</b>"
    assert batch.raw["brand_new_field"] == {"nested": True}


def test_completed_batch_whose_requests_all_failed_is_flagged():
    batch = Batch.from_api(dict(BATCH, status="completed", request_counts={"total": 9, "completed": 0, "failed": 9}))
    assert batch.is_terminal and batch.all_failed and batch.has_failures


# -- error mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, UpstreamBadRequest),
        (401, UpstreamAuthError),
        (403, UpstreamForbidden),
        (404, UpstreamNotFound),
        (409, UpstreamConflict),
        (422, UpstreamBadRequest),
        (418, UpstreamBadRequest),
    ],
)
def test_each_client_error_status_maps_to_its_error_class_with_request_id(status, error_class):
    rec = Recorder(json_response(status, error_body("upstream says no")))
    client, _ = make_client(rec)
    with pytest.raises(error_class) as info:
        client.retrieve_batch("batch_abc")
    assert info.value.status_code == status
    assert info.value.request_id == "req_123"
    assert len(rec.requests) == 1  # 4xx other than 429 is never retried


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_map_to_unavailable_after_two_retries(status):
    rec = Recorder(json_response(status, error_body()))
    client, sleeps = make_client(rec)
    with pytest.raises(UpstreamUnavailable) as info:
        client.retrieve_batch("batch_abc")
    assert info.value.status_code == status
    assert len(rec.requests) == 3
    assert len(sleeps) == 2


def test_rate_limit_maps_to_rate_limited_with_retry_after_in_the_sentence():
    rec = Recorder(json_response(429, error_body("slow down"), {"retry-after": "30"}))
    client, sleeps = make_client(rec)
    with pytest.raises(UpstreamRateLimited) as info:
        client.retrieve_batch("batch_abc")
    assert info.value.retry_after == 30
    assert "30 seconds" in str(info.value)
    # 30 s is beyond the retry budget: answer at once instead of keeping the page waiting.
    assert len(rec.requests) == 1 and sleeps == []


def test_gateway_html_body_maps_to_unavailable_without_leaking_html():
    rec = Recorder(httpx.Response(502, text="<html><body>Bad Gateway</body></html>", headers={"content-type": "text/html"}))
    client, _ = make_client(rec)
    with pytest.raises(UpstreamUnavailable) as info:
        client.retrieve_batch("batch_abc")
    assert "<html" not in str(info.value)


def test_malformed_json_and_wrong_shape_map_to_bad_response():
    client, _ = make_client(Recorder(httpx.Response(200, text='{"id": "batch_', headers={"content-type": "application/json"})))
    with pytest.raises(UpstreamBadResponse):
        client.retrieve_batch("batch_abc")
    client, _ = make_client(Recorder(json_response(200, ["not", "an", "object"])))
    with pytest.raises(UpstreamBadResponse):
        client.retrieve_batch("batch_abc")
    client, _ = make_client(Recorder(json_response(200, {"object": "list", "data": {"oops": 1}})))
    with pytest.raises(UpstreamBadResponse):
        client.list_batches()


def test_connect_error_maps_to_unavailable_and_read_timeout_to_timeout_without_retry():
    rec = Recorder(httpx.ConnectError("refused"))
    client, _ = make_client(rec)
    with pytest.raises(UpstreamUnavailable):
        client.retrieve_batch("batch_abc")
    assert len(rec.requests) == 3
    rec = Recorder(httpx.ReadTimeout("slow"))
    client, _ = make_client(rec)
    with pytest.raises(UpstreamTimeout):
        client.retrieve_batch("batch_abc")
    assert len(rec.requests) == 1


def test_connect_timeout_maps_to_timeout():
    client, _ = make_client(Recorder(httpx.ConnectTimeout("slow")))
    with pytest.raises(UpstreamTimeout):
        client.retrieve_batch("batch_abc")


def test_every_error_is_an_upstream_error_and_never_contains_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    for answer in (
        json_response(401, error_body(f"Incorrect API key provided: {SECRET[:6]}...")),
        json_response(500, error_body()),
        httpx.ConnectError("refused"),
    ):
        client, _ = make_client(Recorder(answer))
        with pytest.raises(UpstreamError) as info:
            client.retrieve_batch("batch_abc")
        assert SECRET not in str(info.value)
    assert SECRET not in caplog.text


# -- retry policy --------------------------------------------------------------


def test_get_retries_after_429_honouring_retry_after_ms_then_succeeds():
    rec = Recorder(
        json_response(429, error_body(), {"retry-after-ms": "150"}),
        json_response(503, error_body(), {"retry-after": "0.5"}),
        json_response(200, BATCH),
    )
    client, sleeps = make_client(rec)
    assert client.retrieve_batch("batch_abc").id == "batch_abc"
    assert len(rec.requests) == 3
    assert sleeps == [0.15, 0.5]


def test_get_backs_off_exponentially_when_no_retry_after_is_given():
    rec = Recorder(json_response(500, error_body()), json_response(500, error_body()), json_response(200, BATCH))
    client, sleeps = make_client(rec)
    client.retrieve_batch("batch_abc")
    assert len(sleeps) == 2
    assert 0.18 <= sleeps[0] <= 0.25 and 0.37 <= sleeps[1] <= 0.5


def test_retries_stop_when_the_wait_budget_is_spent():
    rec = Recorder(json_response(503, error_body(), {"retry-after": "3"}))
    client, sleeps = make_client(rec)
    with pytest.raises(UpstreamUnavailable):
        client.retrieve_batch("batch_abc")
    # 3 s fits the 4 s budget once, not twice.
    assert sleeps == [3.0] and len(rec.requests) == 2


def test_x_should_retry_false_is_obeyed():
    rec = Recorder(json_response(503, error_body(), {"x-should-retry": "false"}))
    client, _ = make_client(rec)
    with pytest.raises(UpstreamUnavailable):
        client.retrieve_batch("batch_abc")
    assert len(rec.requests) == 1


def test_get_retries_a_connection_reset():
    rec = Recorder(httpx.ReadError("reset"), json_response(200, BATCH))
    client, _ = make_client(rec)
    assert client.retrieve_batch("batch_abc").id == "batch_abc"
    assert len(rec.requests) == 2


def test_cancel_is_not_retried_on_server_errors_or_409_or_a_broken_connection():
    for answer in (json_response(500, error_body()), json_response(409, error_body("Cannot cancel")), httpx.ReadError("reset")):
        rec = Recorder(answer)
        client, _ = make_client(rec)
        with pytest.raises(UpstreamError):
            client.cancel_batch("batch_abc")
        assert len(rec.requests) == 1


def test_cancel_is_retried_when_the_request_never_reached_the_server():
    rec = Recorder(httpx.ConnectError("refused"), json_response(200, dict(BATCH, status="cancelling")))
    client, _ = make_client(rec)
    assert client.cancel_batch("batch_abc").status == "cancelling"
    assert len(rec.requests) == 2
    assert rec.requests[0].method == "POST" and rec.requests[0].url.path == "/v1/batches/batch_abc/cancel"


def test_create_is_never_retried_once_it_may_have_been_sent():
    for answer in (json_response(500, error_body()), json_response(429, error_body()), httpx.ReadTimeout("slow"), httpx.ReadError("reset")):
        rec = Recorder(answer)
        client, _ = make_client(rec)
        with pytest.raises(UpstreamError):
            client.create_batch(input_file_id="file-abc", endpoint="/v1/chat/completions")
        assert len(rec.requests) == 1


def test_create_sends_the_documented_body():
    rec = Recorder(json_response(200, dict(BATCH, status="validating")))
    client, _ = make_client(rec)
    client.create_batch(
        input_file_id="file-abc",
        endpoint="/v1/responses",
        metadata={"description": "x"},
        output_expires_after_seconds=3600,
    )
    body = json.loads(rec.requests[0].content)
    assert body == {
        "input_file_id": "file-abc",
        "endpoint": "/v1/responses",
        "completion_window": "24h",
        "metadata": {"description": "x"},
        "output_expires_after": {"anchor": "created_at", "seconds": 3600},
    }


# -- id validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["", "../files", "..", ".", "batch_1/cancel", "batch%2Fx", "a\nb", "a b", "batch_1?x=1", "x" * 201, "ünïcode", "#frag"],
)
def test_invalid_ids_are_refused_before_any_request(bad_id):
    rec = Recorder(json_response(200, BATCH))
    client, _ = make_client(rec)
    with pytest.raises(InvalidId):
        client.retrieve_batch(bad_id)
    with pytest.raises(InvalidId):
        client.cancel_batch(bad_id)
    with pytest.raises(InvalidId):
        client.open_file_content(bad_id)
    if bad_id:  # an empty cursor just means "the first page"
        with pytest.raises(InvalidId):
            client.list_batches(after=bad_id)
    assert rec.requests == []


def test_real_looking_ids_are_accepted():
    for good in ("batch_69c3c347282c81908ede48ecc95bf201", "file-2qvouj6sKUCGTbu3odouhk", "batch_abc.v2", "x" * 200):
        assert validate_id(good) == good


# -- against the emulator over a real loopback socket ---------------------------


@pytest.fixture
def live(emulator):
    c = BatchClient(base_url=emulator.base_url, api_key=EMULATOR_KEY, timeout=5, connect_timeout=2)
    yield c
    c.close()


def test_client_pages_through_every_emulator_batch_newest_first(live, emulator):
    seen, after = [], None
    while True:
        page = live.list_batches(after=after, limit=7)
        seen.extend(page.data)
        after = page.next_after
        if after is None:
            break
    assert len(seen) == len({b.id for b in seen}) >= 40
    created = [b.created_at for b in seen]
    assert created == sorted(created, reverse=True)
    assert emulator.state.counts["GET /v1/batches"] == -(-len(seen) // 7)


def test_client_reuses_one_keep_alive_connection(live, emulator):
    before = emulator.state.connections
    for _ in range(10):
        live.list_batches(limit=5)
    assert emulator.state.connections - before == 1


def test_client_maps_emulator_errors_over_real_http(emulator):
    bad_key = BatchClient(base_url=emulator.base_url, api_key="sk-wrong", timeout=5)
    with pytest.raises(UpstreamAuthError):
        bad_key.list_batches()
    good = BatchClient(base_url=emulator.base_url, api_key=EMULATOR_KEY, timeout=5)
    with pytest.raises(UpstreamNotFound):
        good.retrieve_batch("batch_doesnotexist")


def test_client_retries_injected_503_with_retry_after_over_real_http(live, emulator):
    emulator.state.inject_fault(route="GET /v1/batches", status=503, headers={"retry-after-ms": "20"}, times=2)
    page = live.list_batches(limit=3)
    assert len(page.data) == 3
    assert emulator.state.counts["GET /v1/batches"] == 3


def test_client_read_timeout_against_a_slow_upstream(emulator):
    slow = BatchClient(base_url=emulator.base_url, api_key=EMULATOR_KEY, timeout=0.3, connect_timeout=1)
    emulator.state.inject_fault(route="GET /v1/batches", delay=1.0, times=1)
    with pytest.raises(UpstreamTimeout):
        slow.list_batches()


def test_client_connection_refused_is_unavailable():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = BatchClient(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", timeout=1, connect_timeout=1, sleep=lambda s: None)
    with pytest.raises(UpstreamUnavailable):
        c.list_batches()


def test_client_upload_create_and_stream_content_round_trip(live, tmp_path):
    lines = [
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", "messages": []}})
        for i in range(3)
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with path.open("rb") as fh:
        uploaded = live.upload_file(fh, "in.jsonl")
    assert uploaded.purpose == "batch" and uploaded.bytes == path.stat().st_size
    batch = live.create_batch(input_file_id=uploaded.id, endpoint="/v1/chat/completions", metadata={"description": "t"})
    assert batch.status == "validating" and batch.input_file_id == uploaded.id
    content = live.open_file_content(uploaded.id)
    assert b"".join(content) == path.read_bytes()


def test_each_project_has_one_client_per_process_that_follows_settings(settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"
    a = client_for(get_project("default"))
    assert client_for(get_project("default")) is a
    settings.OPENAI_BASE_URL = "http://127.0.0.1:2/v1"
    assert client_for(get_project("default")) is not a


@pytest.mark.parametrize("headers", [{"retry-after-ms": "NaN"}, {"retry-after-ms": "inf"}, {"retry-after": "nan"},
                                     {"retry-after": "-inf"}, {"retry-after-ms": "NaN", "retry-after": "nan"}])
def test_a_retry_after_that_is_not_a_finite_number_is_no_delay(headers):
    assert parse_retry_after(httpx.Headers(headers)) is None


def test_a_non_finite_retry_after_ms_gives_way_to_retry_after():
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "NaN", "retry-after": "3"})) == 3.0


def test_a_list_page_parses_each_batch_once_per_content(monkeypatch):
    """A list polled every few seconds is mostly the batches it was: each is parsed once per content."""
    from batches.upstream import openai as openai_client
    from batches.upstream.types import Batch

    parsed = []
    real = Batch.from_api.__func__

    def counting(cls, body, *args, **kwargs):
        parsed.append(body.get("id"))
        return real(cls, body, *args, **kwargs)

    monkeypatch.setattr(Batch, "from_api", classmethod(counting))
    openai_client.PARSED_BATCHES.clear()
    batches = [{**BATCH, "id": f"batch_{n}"} for n in range(3)]
    moved = [{**batches[0], "metadata": {"note": "moved"}}, *batches[1:]]
    page = lambda data: json_response(200, {"object": "list", "data": data, "has_more": False})  # noqa: E731
    client, _ = make_client(Recorder(page(batches), page(batches), page(moved)))
    first = client.list_batches(limit=3)
    assert parsed == ["batch_0", "batch_1", "batch_2"]
    again = client.list_batches(limit=3)
    assert len(parsed) == 3 and again.data == first.data
    third = client.list_batches(limit=3)  # one batch's JSON changed: only it is parsed again
    assert parsed[3:] == ["batch_0"] and third.data[0].metadata == {"note": "moved"}
