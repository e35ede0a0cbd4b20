"""What one output or error line becomes: its outcome, the row the results table shows, and its body
as text to read or as bytes to keep.

HTTP errors have ``error: null`` and the status in ``response.status_code`` (NOTES.md §6.3,
openai-openapi#302), so the outcome reads the status code, not only ``error``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, replace

from ..upstream.lines import CANCELLED_CODE, EXPIRED_CODE

SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "expired"
NOT_RUN = "no result"
OUTCOMES = (SUCCEEDED, FAILED, EXPIRED, NOT_RUN)

SUMMARY_CHARS = 200
PREVIEW_CHARS = 2_000
FULL_BODY_CHARS = 100_000


@dataclass(frozen=True)
class ResultRow:
    custom_id: str
    outcome: str
    input_line: int | None = None
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    summary: str = ""
    body_preview: str = ""
    body_full: str = ""
    body_truncated: bool = False
    full_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCEEDED


def outcome_of(record: dict) -> str:
    """The outcome of one output/error line (in the common shape of ``batches.upstream.lines``). A
    request a cancel stopped (Anthropic's ``canceled`` line) never ran."""
    error = record.get("error")
    if isinstance(error, dict) and error.get("code") == EXPIRED_CODE:
        return EXPIRED
    if isinstance(error, dict) and error.get("code") == CANCELLED_CODE:
        return NOT_RUN
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if error or not isinstance(status, int) or status >= 400:
        return FAILED
    return SUCCEEDED


def _answer_text(body: dict) -> str | None:
    """The model's answer in the shapes of the batch endpoints' responses, if there is one."""
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]  # /v1/chat/completions
        if isinstance(choices[0].get("text"), str):
            return choices[0]["text"]  # /v1/completions
    if isinstance(body.get("output_text"), str):
        return body["output_text"]
    output = body.get("output")  # /v1/responses: output items with output_text parts
    if isinstance(output, list):
        texts = [
            part["text"]
            for item in output
            if isinstance(item, dict) and isinstance(item.get("content"), list)
            for part in item["content"]
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if texts:
            return " ".join(texts)
    data = body.get("data")
    if body.get("object") == "list" and isinstance(data, list):
        return f"{len(data)} result{'s' if len(data) != 1 else ''} ({body.get('model') or 'no model named'})"
    return None


def summarize_body(body) -> str:
    """One line an operator can scan: the answer when there is one, else the compact JSON."""
    if body is None:
        return ""
    text = _answer_text(body) if isinstance(body, dict) and not isinstance(body.get("error"), dict) else None
    if text is None:
        text = compact_json(body)
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def pretty_json(body) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=False)


def compact_json(body) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def row_and_body(record: dict, input_line: int | None = None) -> tuple[ResultRow, object]:
    """The row of one output/error line without its body text, and the response body."""
    response = record.get("response") if isinstance(record.get("response"), dict) else {}
    error = record.get("error") if isinstance(record.get("error"), dict) else {}
    body = response.get("body")
    body_error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    error_code = error.get("code") or body_error.get("code") or body_error.get("type")
    error_message = error.get("message") or body_error.get("message")
    status = response.get("status_code")
    row = ResultRow(
        custom_id=str(record.get("custom_id", "")),
        outcome=outcome_of(record),
        input_line=input_line,
        status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
        error_code=str(error_code) if error_code is not None else None,
        error_message=str(error_message) if error_message is not None else None,
        summary=summarize_body(body),
    )
    return row, body


def with_body_text(row: ResultRow, text: str) -> ResultRow:
    return replace(
        row,
        body_preview=text[:PREVIEW_CHARS],
        body_full=text[:FULL_BODY_CHARS],
        body_truncated=len(text) > PREVIEW_CHARS,
        full_truncated=len(text) > FULL_BODY_CHARS,
    )


def shown_row(record: dict, input_line: int | None = None) -> ResultRow:
    """The whole row of one output/error line, body text included."""
    row, body = row_and_body(record, input_line)
    return with_body_text(row, pretty_json(body) if body is not None else "")


# How a kept row's response body is stored (ResultsJoinRow.body_format). Pretty-printing 50,000 bodies is
# most of what building a join would cost (json's indenting encoder is pure Python), so bodies are kept as
# compact JSON and pretty-printed for the 50 rows of a page; only a body too long to show whole is kept as
# its cut text.
BODY_NONE, BODY_JSON, BODY_JSON_Z, BODY_TEXT_Z = 0, 1, 2, 3
COMPRESS_FROM_BYTES = 2048  # smaller bodies are kept as they are (PostgreSQL compresses larger values itself too)


def stored_body(body) -> tuple[int, bytes | None]:
    """(body_format, bytes) to keep for a response body."""
    if body is None:
        return BODY_NONE, None
    compact = compact_json(body)
    if len(compact) > FULL_BODY_CHARS:  # its pretty text is longer still: keep what the page can show
        text = pretty_json(body)
        return BODY_TEXT_Z, zlib.compress(text[: FULL_BODY_CHARS + 1].encode("utf-8"), 1)
    data = compact.encode("utf-8")
    if len(data) < COMPRESS_FROM_BYTES:
        return BODY_JSON, data
    return BODY_JSON_Z, zlib.compress(data, 1)


def stored_body_text(body_format: int, data) -> str:
    """The text a page shows of a body kept by :func:`stored_body`."""
    if body_format == BODY_NONE or data is None:
        return ""
    if body_format == BODY_JSON:
        return pretty_json(json.loads(bytes(data).decode("utf-8")))
    raw = zlib.decompress(data).decode("utf-8")
    return pretty_json(json.loads(raw)) if body_format == BODY_JSON_Z else raw
