"""Streaming checks of a batch input file (JSONL), run before anything is uploaded.

The file is read from disk in binary, one line at a time, so a 200 MB upload costs the worker a line's
worth of memory plus the set of ``custom_id`` values (50,000 short strings). Every rule below is a rule
of the Batch API (shared/openai-spec/NOTES.md §6.1, §6.2); catching them here means an operator learns
about line 31,207 now, with its line number, instead of after an upload and a ``failed`` batch.

Decisions the API documents do not settle, made conservatively:

* A UTF-8 byte order mark is rejected with its own message: JSON (RFC 8259 §8.1) forbids emitting one and
  Python's own ``json`` rejects it, so we can not promise the upstream accepts it.
* CRLF line endings are accepted. Blank lines at the end of the file are accepted; a blank line *between*
  requests is reported, because it is almost always a sign of a broken export.
* A line longer than :data:`MAX_LINE_BYTES` is reported and skipped without being held in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO

from .upstream import ENDPOINTS

MAX_REQUESTS = 50_000  # NOTES.md §6.2: "up to 50,000 requests"
MAX_BYTES = 200 * 1024 * 1024  # NOTES.md §6.2: "can be up to 200 MB"
MAX_LINE_BYTES = 16 * 1024 * 1024  # the dashboard's own bound: one request line in memory at a time
MAX_LISTED_ERRORS = 20
BOM = b"\xef\xbb\xbf"
# A NUL byte never occurs in UTF-8 JSON text; it is the cheapest sure sign of a binary file.
BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class LineError:
    """One problem. With a line number, ``message`` continues the sentence "Line 7 …" (the page sets
    the line number apart once); without one, it is a whole sentence."""

    line: int | None
    message: str

    @property
    def text(self) -> str:
        return f"Line {self.line} {self.message}" if self.line is not None else self.message


@dataclass
class ValidationResult:
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    requests: int = 0
    url: str | None = None
    model: str | None = None
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def more_errors(self) -> int:
        return self.error_count - len(self.errors)

    def add(self, line: int | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(LineError(line, message))


def _short(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return "an object"


def _read_lines(fileobj: IO[bytes]):
    """Yield (line number, bytes without the line ending, too_long) with at most MAX_LINE_BYTES held."""
    number = 0
    while True:
        raw = fileobj.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        too_long = len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n")
        if too_long:
            # Drain the rest of this line in bounded chunks.
            while True:
                rest = fileobj.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, b"", True
            continue
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        yield number, raw, False


def validate_jsonl(fileobj: IO[bytes], *, endpoint: str | None = None, size: int | None = None) -> ValidationResult:
    """Check a batch input file. ``endpoint`` None means "take it from the file" (the first line's url
    must then be one of the API's endpoints). ``size`` is the file's length if the caller knows it."""
    result = ValidationResult()
    if size is not None:
        result.size = size
        if size > MAX_BYTES:
            result.add(None, f"The file is {size / 1024 / 1024:.1f} MB; the Batch API accepts at most 200 MB.")
            return result
    head = fileobj.read(BINARY_SNIFF_BYTES)
    fileobj.seek(0)
    if not head:
        result.add(None, "The file is empty: it must contain one JSON request per line.")
        return result
    if b"\x00" in head:
        result.add(None, "This looks like a binary file, not JSONL text (it contains NUL bytes).")
        return result
    if head.startswith(BOM):
        result.add(
            1,
            "The file starts with a UTF-8 byte order mark (BOM), which the Batch API may reject. "
            "Save it as UTF-8 without BOM and upload it again.",
        )
        return result

    seen: dict[str, int] = {}
    blank_lines: list[int] = []
    first_url: tuple[str, int] | None = None
    first_model: tuple[str, int] | None = None
    too_many_reported = False
    total_bytes = 0

    for number, raw, too_long in _read_lines(fileobj):
        total_bytes += len(raw) + 1
        if too_long:
            result.add(number, f"is longer than {MAX_LINE_BYTES:,} bytes, the most the dashboard reads.")
            continue
        if not raw.strip():
            blank_lines.append(number)
            continue
        # A blank line followed by more requests is an error; blank lines at the end are not.
        for blank in blank_lines:
            result.add(blank, "is blank; remove blank lines between requests.")
        blank_lines.clear()

        result.requests += 1
        if result.requests > MAX_REQUESTS:
            if not too_many_reported:
                result.add(number, f"is request {MAX_REQUESTS + 1:,}: the file has more than {MAX_REQUESTS:,} requests, the most one batch accepts.")
                too_many_reported = True
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            result.add(number, f"is not valid UTF-8 (bad byte at position {err.start + 1}).")
            continue
        try:
            obj = json.loads(text)
        except ValueError as err:
            result.add(number, f"is not valid JSON: {err.msg} (column {getattr(err, 'colno', '?')}).")
            continue
        if not isinstance(obj, dict):
            result.add(number, f"is {_json_type(obj)}, not a JSON object.")
            continue

        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem = "has no custom_id" if custom_id is None else "has a custom_id that is not a non-empty string"
            result.add(number, f"{problem}.")
        elif custom_id in seen:
            result.add(
                number,
                f"repeats custom_id “{_short(custom_id)}” (first used on line {seen[custom_id]}); "
                "each custom_id must be unique.",
            )
        else:
            seen[custom_id] = number

        method = obj.get("method")
        if method != "POST":
            result.add(number, f"has method {_short(method)}; only POST is allowed.")

        url = obj.get("url")
        if not isinstance(url, str) or not url:
            result.add(number, "has no url.")
        elif first_url is None:
            first_url = (url, number)
            if endpoint is not None and url != endpoint:
                result.add(number, f"has url “{_short(url)}”, but the chosen endpoint is {endpoint}.")
            elif endpoint is None and url not in ENDPOINTS:
                result.add(number, f"has url “{_short(url)}”, which is not a Batch API endpoint.")
        elif url != first_url[0]:
            result.add(
                number,
                f"has url “{_short(url)}”, but line {first_url[1]} has “{_short(first_url[0])}”; "
                "every line must use the same url.",
            )

        body = obj.get("body")
        if not isinstance(body, dict):
            result.add(number, f"has a body that is {_json_type(body)}, not a JSON object.")
            continue
        model = body.get("model")
        if model is None:
            continue
        if not isinstance(model, str):
            result.add(number, "has a body.model that is not a string.")
        elif first_model is None:
            first_model = (model, number)
        elif model != first_model[0]:
            result.add(
                number,
                f"uses model “{_short(model)}”, but line {first_model[1]} uses "
                f"“{_short(first_model[0])}”; a batch file may use only one model.",
            )

    if size is None:
        result.size = total_bytes
        if total_bytes > MAX_BYTES:
            result.add(None, "The file is larger than 200 MB, the most the Batch API accepts.")
    if result.requests == 0 and result.error_count == 0:
        result.add(None, "The file has no requests: every line is blank.")
    result.url = first_url[0] if first_url else None
    result.model = first_model[0] if first_model else None
    return result
