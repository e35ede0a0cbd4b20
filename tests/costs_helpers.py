"""Shared pieces of the money tests: index rows with known usage, a known price, and an Admin API on
loopback that pages its answers the way the official SDK's types describe them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from django.utils import timezone

from batches.models import BatchRecord
from tests.helpers import LoopbackHTTP, QuietHandler

#: $10 per 1M input tokens, $5 per 1M cached, $20 per 1M output: round numbers to check sums by.
PRICES = '{"gpt-test": {"input": 10, "cached_input": 5, "output": 20}}'
ADMIN_KEY = "sk-admin-test-0123456789-secret"
DAY = 86400


def ts(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def record(batch_id: str, created_at: int, *, project: str = "default", status: str = "completed", model: str = "gpt-test",
           total: int = 10, completed: int | None = None, failed: int = 0, input_tokens=None, cached=None, output=None,
           finished_at: int | None = None) -> BatchRecord:
    values = {
        "status": status, "model": model, "created_at": created_at, "total_requests": total,
        "completed_requests": total if completed is None else completed, "failed_requests": failed,
        "input_tokens": input_tokens, "cached_tokens": cached, "output_tokens": output, "last_synced": timezone.now(),
        "expires_at": created_at + DAY,
    }
    if status in ("completed", "failed", "expired", "cancelled"):
        values[f"{status}_at"] = finished_at or created_at + 600
    obj, _ = BatchRecord.objects.update_or_create(project=project, batch_id=batch_id, defaults=values)
    return obj


def projects_toml(base_url: str, *, budget: str = "", organization: str = "", project_id: str = "proj_prod",
                  research_budget: str = "") -> str:
    """Two projects ("default", seen by everyone, and "research", its group only) with optional budget
    tables and an ``[organization]`` table."""
    text = f"""
[projects.default]
name = "Production"
api_key_env = "TEST_KEY_DEFAULT"
base_url = "{base_url}"
project = "{project_id}"
{budget}

[projects.research]
name = "Research"
api_key_env = "TEST_KEY_RESEARCH"
base_url = "{base_url}"
project = "proj_research"
viewer_groups = ["research"]
{research_budget}
"""
    if organization:
        text += f"\n[organization]\n{organization}\n"
    return text


def cost_result(project_id: str, line_item: str, value: float, currency: str = "usd") -> dict:
    return {
        "object": "organization.costs.result", "amount": {"value": value, "currency": currency},
        "line_item": line_item, "project_id": project_id, "quantity": None, "quantity_unit": None,
    }


def usage_result(project_id: str, model: str, input_tokens: int, output_tokens: int, cached: int = 0, requests: int = 1) -> dict:
    return {
        "object": "organization.usage.completions.result", "input_tokens": input_tokens, "output_tokens": output_tokens,
        "input_cached_tokens": cached, "num_model_requests": requests, "project_id": project_id, "model": model, "batch": True,
    }


def bucket(start: int, results: list[dict]) -> dict:
    return {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": results}


class FakeAdminAPI(LoopbackHTTP):
    """``/v1/organization/costs`` and ``/v1/organization/usage/completions`` on a free loopback port,
    for ``ADMIN_KEY`` only (401 otherwise), serving ``costs`` / ``usage`` buckets ``per_page`` at a time
    with ``has_more`` and an opaque ``next_page`` cursor. Records every request's path and query."""

    def __init__(self, costs=(), usage=(), per_page: int = 2, status: int = 200, error_message: str = "") -> None:
        self.data = {"/v1/organization/costs": list(costs), "/v1/organization/usage/completions": list(usage)}
        self.per_page = per_page
        self.status = status
        self.error_message = error_message
        self.requests: list[tuple[str, dict, str]] = []
        #: Called with each request's path before it is answered (a test's hook into a pass).
        self.on_request = lambda path: None
        api = self

        class Handler(QuietHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                api.requests.append((url.path, query, self.headers.get("Authorization", "")))
                api.on_request(url.path)
                if self.headers.get("Authorization") != f"Bearer {ADMIN_KEY}" or api.status != 200:
                    status = 401 if api.status == 200 else api.status
                    message = api.error_message or "Invalid admin key."
                    return self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}})
                buckets = api.data.get(url.path)
                if buckets is None:
                    return self._send(404, {"error": {"message": "Not found."}})
                start = int(query.get("page", ["0"])[0].removeprefix("page_"))
                chunk = buckets[start:start + api.per_page]
                more = start + api.per_page < len(buckets)
                self._send(200, {"object": "page", "data": chunk, "has_more": more,
                                 "next_page": f"page_{start + api.per_page}" if more else None})

            def _send(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-request-id", "req_admin_1")
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)
        self.base_url = f"{self.origin}/v1"
        self.start()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]
