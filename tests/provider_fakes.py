"""Small fakes of Anthropic's Message Batches API and Azure OpenAI's batch API, written from the public
reference (shared/provider-specs/NOTES.md) and not from the dashboard's emulator, so the dashboard is
tried against shapes it was not built around: RFC 3339 times with and without microseconds, Anthropic's
five counters that only move at ``ended``, results in shuffled order; Azure's versioned paths,
``api-key`` header, capitalised statuses, ISO times, null counts and empty-string file ids.

Each fake is one function from an ``httpx.Request`` to an ``httpx.Response``: the client tests wrap it
in ``httpx.MockTransport``, the page tests serve it on a loopback port with :class:`LoopbackServer`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading

import httpx

from tests.helpers import LoopbackHTTP, QuietHandler

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _error(status: int, kind: str, message: str) -> httpx.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return httpx.Response(status, json=body, headers={"request-id": "req_fake"})


class AnthropicFake:
    """``/v1/messages/batches`` as the Message Batches reference describes it."""

    def __init__(self, api_key: str = "sk-ant-test", base_url: str = "https://api.anthropic.com") -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.batches: dict[str, dict] = {}
        self.requests: dict[str, list[dict]] = {}
        self.order: list[str] = []  # oldest first
        self.seen: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.clock = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)
        self.lock = threading.Lock()

    # -- helpers the tests drive ---------------------------------------------------------------------

    def _stamp(self, when: dt.datetime, micro: bool = True) -> str:
        if micro:
            return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return when.isoformat()  # "+00:00", as a captured real response had it

    def add(self, custom_ids: list[str], *, params: dict | None = None, minutes_ago: int = 0) -> dict:
        """A new in_progress batch with one request per custom id."""
        created = self.clock - dt.timedelta(minutes=minutes_ago)
        seed = f"{self.api_key}:{len(self.order)}"
        batch_id = f"msgbatch_{len(self.order) + 1:04d}{random.Random(seed).getrandbits(40):010x}"
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": len(custom_ids), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": None,
            "created_at": self._stamp(created, micro=len(self.order) % 2 == 0),
            "expires_at": self._stamp(created + dt.timedelta(hours=24)),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        base = params or {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        self.requests[batch_id] = [{"custom_id": cid, "params": base} for cid in custom_ids]
        self.batches[batch_id] = batch
        self.order.append(batch_id)
        return batch

    def end(self, batch_id: str, *, errored: tuple[str, ...] = (), expired: tuple[str, ...] = ()) -> dict:
        """The whole batch ends: the counters move from processing to the four final buckets at once."""
        batch = self.batches[batch_id]
        cancelled = batch["processing_status"] == "canceling"
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        results = []
        for index, request in enumerate(self.requests[batch_id]):
            cid = request["custom_id"]
            if cid in errored:
                kind = "errored"
            elif cid in expired:
                kind = "expired"
            elif cancelled and index > 0:
                kind = "canceled"  # the first request was already running and finished
            else:
                kind = "succeeded"
            counts[kind] += 1
            results.append(self._result(cid, kind, request["params"]))
        random.Random(7).shuffle(results)  # "no ordering guarantee"
        batch["_results"] = results
        batch["request_counts"] = counts
        batch["processing_status"] = "ended"
        batch["ended_at"] = self._stamp(self.clock + dt.timedelta(minutes=30))
        batch["results_url"] = f"{self.base_url}/v1/messages/batches/{batch_id}/results"
        return batch

    @staticmethod
    def _result(custom_id: str, kind: str, params: dict) -> dict:
        if kind == "succeeded":
            message = {
                "id": f"msg_{custom_id}", "type": "message", "role": "assistant", "model": params["model"],
                "content": [{"type": "text", "text": f"Answer to {custom_id}"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 200,
                          "cache_creation_input_tokens": 0, "service_tier": "batch"},
            }
            return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
        if kind == "errored":
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too large"}}
            return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
        return {"custom_id": custom_id, "result": {"type": kind}}

    @staticmethod
    def public(batch: dict) -> dict:
        return {key: value for key, value in batch.items() if not key.startswith("_")}

    # -- the API -------------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append(request)
            body = request.read()
            self.bodies.append(body)
            key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if key != self.api_key:
                return _error(401, "authentication_error", "invalid x-api-key")
            if not request.headers.get("anthropic-version"):
                return _error(400, "invalid_request_error", "anthropic-version: header is required")
            path = request.url.path
            if path == "/v1/messages/batches" and request.method == "GET":
                return self._list(request)
            if path == "/v1/messages/batches" and request.method == "POST":
                return self._create(body)
            match = re.fullmatch(r"/v1/messages/batches/([^/]+)(/cancel|/results)?", path)
            if not match or match.group(1) not in self.batches:
                return _error(404, "not_found_error", "Not found")
            batch = self.batches[match.group(1)]
            if match.group(2) == "/cancel" and request.method == "POST":
                if batch["processing_status"] == "in_progress":
                    batch["processing_status"] = "canceling"
                    batch["cancel_initiated_at"] = self._stamp(self.clock + dt.timedelta(minutes=1))
                return httpx.Response(200, json=self.public(batch))
            if match.group(2) == "/results":
                if "_results" not in batch:
                    return _error(404, "not_found_error", "results not available yet")
                text = "".join(json.dumps(line) + "\n" for line in batch["_results"])
                # A streamed body, as the real one is (a bytes body would arrive already read).
                return httpx.Response(200, content=iter([text.encode()]), headers={"content-type": "application/x-jsonl"})
            return httpx.Response(200, json=self.public(batch))

    def _list(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", 20))
        if not 1 <= limit <= 1000:
            return _error(400, "invalid_request_error", "limit: must be between 1 and 1000")
        newest_first = list(reversed(self.order))
        after, before = request.url.params.get("after_id"), request.url.params.get("before_id")
        if after:
            newest_first = newest_first[newest_first.index(after) + 1 :]
        if before:
            newest_first = newest_first[: newest_first.index(before)][-limit:]
        page = newest_first[:limit]
        data = [self.public(self.batches[i]) for i in page]
        return httpx.Response(200, json={
            "data": data, "has_more": len(newest_first) > limit,
            "first_id": page[0] if page else None, "last_id": page[-1] if page else None,
        })

    def _create(self, body: bytes) -> httpx.Response:
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not 1 <= len(requests) <= 100_000:
            return _error(400, "invalid_request_error", "requests: between 1 and 100000 items")
        ids = [r.get("custom_id") for r in requests]
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) and CUSTOM_ID.fullmatch(i) for i in ids):
            return _error(400, "invalid_request_error", "custom_id: must be unique and match ^[a-zA-Z0-9_-]{1,64}$")
        batch = self.add(ids)
        self.requests[batch["id"]] = requests
        return httpx.Response(200, json=self.public(batch))


class AzureFake:
    """Azure OpenAI's legacy batch paths (``/openai/batches?api-version=…``, ``api-key``), answering in
    the looser shapes of Azure's REST examples."""

    def __init__(self, api_key: str = "azure-key", api_version: str = "2024-10-21") -> None:
        self.api_key = api_key
        self.api_version = api_version
        self.batches: list[dict] = []  # newest first
        self.seen: list[httpx.Request] = []
        self.creates: list[dict] = []
        self.files: dict[str, bytes] = {}

    def add(self, status: str, **fields) -> dict:
        number = len(self.batches) + 1
        batch = {
            "id": f"batch_{number:08d}-0000-4000-8000-000000000000",
            "object": "batch",
            "endpoint": "/chat/completions",
            "errors": None,
            "input_file_id": f"file-{number:032x}",
            "completion_window": "24h",
            "status": status,
            "output_file_id": "",
            "error_file_id": "",
            "created_at": f"2026-12-07T0{number % 10}:00:00Z",
            "in_progress_at": None,
            "expires_at": f"2026-12-08T0{number % 10}:00:00Z",
            "request_counts": {"total": None, "completed": None, "failed": None},
            "model": "my-gpt4o-mini",
            "metadata": None,
        }
        batch.update(fields)
        self.batches.insert(0, batch)
        return batch

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        body = request.read()
        if request.headers.get("api-key") != self.api_key:
            return httpx.Response(401, json={"error": {"code": "401", "message": "Access denied due to invalid subscription key."}})
        if request.url.params.get("api-version") != self.api_version:
            return httpx.Response(404, json={"error": {"code": "404", "message": "Resource not found"}})
        path = request.url.path
        if path == "/openai/batches" and request.method == "GET":
            after = request.url.params.get("after")
            ids = [b["id"] for b in self.batches]
            start = ids.index(after) + 1 if after else 0
            limit = int(request.url.params.get("limit", 20))
            page = self.batches[start : start + limit]
            return httpx.Response(200, json={
                "object": "list", "data": page, "has_more": start + limit < len(self.batches),
                "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
            })
        if path == "/openai/batches" and request.method == "POST":
            payload = json.loads(body)
            self.creates.append(payload)
            return httpx.Response(200, json=self.add("Validating", input_file_id=payload["input_file_id"],
                                                     endpoint=payload["endpoint"]))
        if path == "/openai/files" and request.method == "POST":
            file_id = f"file-{len(self.files) + 1:032x}"
            self.files[file_id] = body
            return httpx.Response(200, json={"id": file_id, "object": "file", "bytes": len(body), "purpose": "batch",
                                             "filename": "input.jsonl", "created_at": "2026-12-07T06:00:00Z", "status": "processed"})
        match = re.fullmatch(r"/openai/batches/([^/]+)(/cancel)?", path)
        found = [b for b in self.batches if match and b["id"] == match.group(1)]
        if not found:
            return httpx.Response(404, json={"error": {"code": "404", "message": "Resource not found"}})
        if match.group(2):
            found[0]["status"] = "Cancelling"
        return httpx.Response(200, json=found[0])


class LoopbackServer(LoopbackHTTP):
    """Serve a fake (a function from ``httpx.Request`` to ``httpx.Response``) on a free loopback port."""

    def __init__(self, fake) -> None:
        self.fake = fake
        server = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = httpx.Request(
                    self.command, f"http://127.0.0.1:{server.port}{self.path}", headers=dict(self.headers), content=body
                )
                response = server.fake(request)
                content = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _handle

        super().__init__(Handler)
        self.base_url = self.origin
