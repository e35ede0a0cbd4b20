"""DJANGO_LOG_FORMAT=json: one JSON object per line with the request id the response carries, the person,
the project, the upstream request id and durations; a proxy's X-Request-Id is reused when it is safe; the
API key appears in no line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from django.test import Client

from dashboard.observability import JsonFormatter
from tests.servers import REPO, dashboard_env

SECRET = "sk-proj-JSONLOGSsecretKEY0123456789abcdefXYZW"
WRONG = SECRET[:-4] + "QQQQ"
FRAGMENTS = [SECRET, WRONG, "JSONLOGSsecretKEY", "*" * 10 + SECRET[-4:], "*" * 10 + "QQQQ"]
PERSON = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "operators"}


@pytest.fixture
def json_lines(caplog):
    """Everything logged (DEBUG and up) while the test runs, formatted by the JSON formatter as it is
    emitted (the request's context is only known then)."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.setFormatter(JsonFormatter())

    def read() -> list[dict]:
        text = caplog.text
        for fragment in FRAGMENTS:
            assert fragment not in text, f"API key fragment {fragment!r} in the JSON logs"
        return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object

    return read


@pytest.fixture
def secret_upstream(own_emulator, proxy_mode):
    return own_emulator(api_key=SECRET)


@pytest.mark.django_db
def test_the_proxys_request_id_is_reused_echoed_and_in_every_line_of_the_request(secret_upstream, json_lines):
    response = Client().get("/projects/default/batches/", headers={**PERSON, "X-Request-Id": "req-7f3a.b2:01"})
    assert response.status_code == 200
    assert response["X-Request-Id"] == "req-7f3a.b2:01"
    lines = json_lines()
    mine = [line for line in lines if line.get("request_id") == "req-7f3a.b2:01"]
    assert mine and all({"time", "level", "logger", "message"} <= set(line) for line in mine)
    access = next(line for line in mine if line["logger"] == "dashboard.requests")
    assert access["message"].startswith("GET /projects/default/batches/ -> 200 in ")
    assert access["status"] == 200 and access["duration_ms"] >= 0
    assert access["person"] == "ops@example.com" and access["project"] == "default"
    upstream = next(line for line in mine if line["logger"] == "batches.client")
    assert upstream["upstream_request_id"].startswith("req_") and upstream["duration_ms"] >= 0
    assert upstream["person"] == "ops@example.com" and upstream["project"] == "default"
    assert upstream["time"].endswith("+00:00") and upstream["level"] == "INFO"


@pytest.mark.parametrize("offered", ["has space", "x" * 101, "new\nline", "<script>", ""])
@pytest.mark.django_db
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_fresh_one(json_lines, offered):
    headers = {"X-Request-Id": offered} if offered else {}
    response = Client().get("/healthz", headers=headers)
    made = response["X-Request-Id"]
    assert made != offered and len(made) == 32 and int(made, 16) >= 0  # uuid4 hex
    access = [line for line in json_lines() if line["logger"] == "dashboard.requests"]
    assert [line["request_id"] for line in access] == [made]
    assert offered not in json.dumps(access) or not offered


@pytest.mark.django_db
def test_no_key_in_any_json_line_even_when_the_upstream_echoes_it(secret_upstream, settings, json_lines):
    client = Client(raise_request_exception=False)
    running = next(b["id"] for b in secret_upstream.state.list_batches() if b["status"] == "in_progress")
    client.get(f"/projects/default/batches/{running}/", headers=PERSON)
    client.post(f"/projects/default/batches/{running}/cancel/", headers=PERSON)
    settings.OPENAI_API_KEY = WRONG  # the emulator answers 401 quoting a masked key, as OpenAI does
    rejected = client.get("/projects/default/batches/", headers=PERSON)
    assert rejected.status_code >= 400
    # A careless line somewhere would still be caught by the formatter's redaction.
    logging.getLogger("somewhere").warning("config: key=%s auth=Bearer %s", SECRET, SECRET)
    lines = json_lines()  # asserts no fragment anywhere
    assert any(line.get("upstream_status") == 401 for line in lines)
    careless = next(line for line in lines if line["logger"] == "somewhere")
    assert careless["message"] == "config: key=sk-[redacted] auth=Bearer [redacted]"


def test_django_log_format_json_configures_the_handlers(tmp_path):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('batches.client').warning('upstream %s', 'slow', extra={'upstream_request_id': 'req_1'})"
    )
    env = dashboard_env(tmp_path, DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_LOG_FORMAT="json",
                        DASHBOARD_AUTH="none")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    entry = json.loads(lines[0])
    assert entry["message"] == "upstream slow" and entry["logger"] == "batches.client"
    assert entry["level"] == "WARNING" and entry["upstream_request_id"] == "req_1"

    env["DJANGO_LOG_FORMAT"] = "xml"
    result = subprocess.run([sys.executable, "-c", "import dashboard.settings"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DJANGO_LOG_FORMAT must be plain or json" in result.stderr
