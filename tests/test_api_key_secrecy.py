"""The OpenAI API key is sent to the Batch API and nowhere else: not in any page, partial, error page,
redirect, header or log line — including when the upstream rejects it and echoes part of it back."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from tests.helpers import HTMX

SECRET = "sk-proj-DISTINCTIVEsecretKEY0123456789abcdefXYZW"
# What would betray the key even in part: its body, and the masked echo an OpenAI 401 carries.
WRONG = SECRET[:-4] + "QQQQ"  # configured later in the test: the emulator rejects it with a masked echo
FRAGMENTS = [SECRET, WRONG, "DISTINCTIVEsecretKEY", "*" * 10 + SECRET[-4:], "*" * 10 + "QQQQ"]


@pytest.fixture
def secret_upstream(own_emulator, proxy_mode):
    proxy_mode(operator_groups=["operators"])
    return own_emulator(api_key=SECRET)


def assert_no_key(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"API key fragment {fragment!r} in {where}"


def dump(response) -> str:
    headers = "\n".join(f"{key}: {value}" for key, value in response.items())
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return headers + "\n" + body.decode(errors="replace")


@pytest.mark.django_db
def test_the_api_key_never_appears_in_pages_errors_or_logs(secret_upstream, settings, caplog):
    caplog.set_level(logging.DEBUG)
    client = Client(raise_request_exception=False)
    operator = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "operators"}
    reader = {"X-Forwarded-Email": "reader@example.com"}
    batches = secret_upstream.state.list_batches()
    running = next(b["id"] for b in batches if b["status"] == "in_progress")
    done = next(b["id"] for b in batches if b["status"] == "completed")
    responses = {}

    def visit(label, method, url, headers, data=None):
        call = client.get if method == "GET" else client.post
        responses[label] = call(url, data or {}, headers=headers)

    for suffix, extra in (("", {}), (" partial", HTMX)):
        visit("list" + suffix, "GET", "/projects/default/batches/", {**operator, **extra})
        visit("detail" + suffix, "GET", f"/projects/default/batches/{running}/", {**operator, **extra})
        visit("results" + suffix, "GET", f"/projects/default/batches/{done}/results/", {**operator, **extra})
        visit("audit" + suffix, "GET", "/audit/", {**operator, **extra})
        visit("create form" + suffix, "GET", "/projects/default/batches/new/", {**operator, **extra})
    visit("output download", "GET", f"/projects/default/batches/{done}/files/output.jsonl", operator)
    visit("cancel", "POST", f"/projects/default/batches/{running}/cancel/", operator)
    visit("create from a missing file", "POST", "/projects/default/batches/new/", operator,
          {"token": "t" * 32, "input_file_id": "file-doesnotexist", "endpoint": "/v1/responses",
           "completion_window": "24h"})
    visit("401", "GET", "/projects/default/batches/", {})
    visit("403 untrusted", "GET", "/projects/default/batches/", operator | {"REMOTE_ADDR": "192.0.2.9"})
    visit("403 read-only", "POST", f"/projects/default/batches/{running}/cancel/", reader)
    visit("404 page", "GET", "/nowhere/", operator)
    visit("404 batch", "GET", "/projects/default/batches/batch_doesnotexist/", operator)
    visit("csrf", "POST", f"/projects/default/batches/{running}/cancel/", operator)  # client below enforces CSRF
    responses["csrf"] = Client(enforce_csrf_checks=True).post(f"/projects/default/batches/{running}/cancel/", headers=operator)

    # Upstream failures: 500, rate limit, and the key rejected (OpenAI echoes a masked key in the message).
    secret_upstream.state.inject_fault(route="GET /v1/batches", status=500, times=10)
    visit("upstream 500", "GET", "/projects/default/batches/", operator)
    secret_upstream.state.clear_faults()
    secret_upstream.state.inject_fault(route="GET /v1/batches", status=429, headers={"retry-after": "30"}, times=10)
    visit("upstream 429", "GET", "/projects/default/batches/", operator)
    secret_upstream.state.clear_faults()
    settings.OPENAI_API_KEY = WRONG
    visit("upstream 401", "GET", "/projects/default/batches/?limit=7", operator)
    visit("upstream 401 detail", "GET", f"/projects/default/batches/{running}/", operator)
    settings.OPENAI_API_KEY = SECRET
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    visit("upstream down", "GET", "/projects/default/batches/?limit=9", operator)

    statuses = {label: response.status_code for label, response in responses.items()}
    assert statuses["list"] == 200 and statuses["detail"] == 200 and statuses["audit"] == 200
    assert statuses["upstream 401"] >= 400 and statuses["upstream down"] >= 500
    for label, response in responses.items():
        assert_no_key(dump(response), label)
    assert_no_key("\n".join(record.getMessage() for record in caplog.records), "log messages")
    assert_no_key(caplog.text, "formatted log output")
    assert len(caplog.records) > 10  # the crawl was logged; the key was not


def test_the_upstream_does_echo_a_masked_key_so_the_check_above_can_catch_a_leak(secret_upstream):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(secret_upstream.base_url + "/batches", headers={"Authorization": f"Bearer {WRONG}"})
    with pytest.raises(urllib.error.HTTPError) as rejected:
        urllib.request.urlopen(request, timeout=5)
    message = json.loads(rejected.value.read())["error"]["message"]
    assert "*" * 10 + "QQQQ" in message
