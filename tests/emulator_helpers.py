"""Helpers for the emulator's own tests: JSONL lines, upload, create, read a file, run a batch to its end."""

import json

import pytest

from emulator import EmulatorServer

TERMINAL = ("completed", "failed", "expired", "cancelled")


def line(cid, endpoint="/v1/chat/completions", model="gpt-4o-mini", **body_extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hello %s" % cid}]}
    body.update(body_extra)
    return {"custom_id": cid, "method": "POST", "url": endpoint, "body": body}


def jsonl(lines):
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def estimated_tokens(lines):
    """The emulator's input-token estimate of these lines: max(1, bytes of each JSONL line // 4)."""
    return sum(max(1, len((json.dumps(x) + "\n").encode()) // 4) for x in lines)


def upload(c, lines, purpose="batch", filename="input.jsonl"):
    if isinstance(lines, (bytes, str)):
        content = lines.encode() if isinstance(lines, str) else lines
    else:
        content = jsonl(lines)
    r = c.post("/files", files={"file": (filename, content, "application/jsonl")}, data={"purpose": purpose})
    assert r.status_code == 200, r.text
    return r.json()


def create(c, file_id, endpoint="/v1/chat/completions", **extra):
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}
    body.update(extra)
    return c.post("/batches", json=body)


def read_jsonl(c, file_id):
    r = c.get("/files/%s/content" % file_id)
    assert r.status_code == 200
    return [json.loads(x) for x in r.text.splitlines() if x.strip()]


def run_to_end(s, c, batch_id, step=5.0, limit=200):
    for _ in range(limit):
        b = c.get("/batches/" + batch_id).json()
        if b["status"] in TERMINAL:
            return b
        s.state.advance(step)
    raise AssertionError("batch did not finish: %s" % b["status"])


def module_emulator(**options):
    """Fixtures ``(_server, srv)``: one emulator (port 0, clock moved only by ``advance``) for a test module,
    reset before each test. ``_server, srv = module_emulator(api_keys=...)`` at module level."""

    @pytest.fixture(scope="module")
    def _server():
        with EmulatorServer(port=0, speed=0.0, **options) as server:
            yield server

    @pytest.fixture
    def srv(_server):
        _server.reset()
        return _server

    return _server, srv
