"""Hand-made batches with known input, output and error files in the emulator (for results tests)."""

from __future__ import annotations

import json
from pathlib import Path

CHAT = "/v1/chat/completions"
INPUT_IDS = ["a", "b", "c", "d", "e", "f"]
BIG_TEXT = "word " * 1000  # 5,000 characters: longer than the results page's preview


def input_line(custom_id: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {custom_id}"}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body})


def ok(custom_id: str, content: str) -> dict:
    body = {"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": content}}]}
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": f"req_{custom_id}", "body": body}, "error": None}


OUTPUT = [  # output order is not input order
    ok("e", BIG_TEXT),
    ok("c", "fine"),
    ok("a", "<script>alert(1)</script>"),
]
ERRORS = [
    {"id": "batch_req_d", "custom_id": "d", "response": None,
     "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}},
    {"id": "batch_req_b", "custom_id": "b",
     "response": {"status_code": 400, "request_id": "req_b",
                  "body": {"error": {"message": "Bad model <x>", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}},
     "error": None},
]
# "f" has no result at all: the batch was cancelled before it ran.


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def add_file(emulator, tmp_path: Path, name: str, lines: list[str], purpose: str) -> str:
    return emulator.state.add_file(str(write(tmp_path, name, lines)), name, purpose)["id"]


def make_batch(emulator, tmp_path: Path, *, status: str = "cancelled", with_input: bool = True, **fields) -> dict:
    input_id = (
        add_file(emulator, tmp_path, "input.jsonl", [input_line(i) for i in INPUT_IDS], "batch")
        if with_input
        else "file-gone"
    )
    data = {
        "status": status,
        "endpoint": CHAT,
        "input_file_id": input_id,
        "output_file_id": add_file(emulator, tmp_path, "out.jsonl", [json.dumps(r) for r in OUTPUT], "batch_output"),
        "error_file_id": add_file(emulator, tmp_path, "err.jsonl", [json.dumps(r) for r in ERRORS], "batch_output"),
        "request_counts": {"total": 6, "completed": 3, "failed": 2},
    }
    data.update(fields)
    return emulator.state.add_batch(**data)


def file_bytes(emulator, file_id: str) -> bytes:
    _, path = emulator.state.get_file(file_id)
    with open(path, "rb") as fh:
        return fh.read()
