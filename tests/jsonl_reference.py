"""The line-by-line JSONL validator as it was before the incremental one (commit a16e371), kept as the
oracle that :class:`batches.jsonl.JsonlValidator` must agree with (tests/test_jsonl.py). Only the wording
changed with it: messages of a numbered line no longer start with "Line N" (the page prints the label),
and a line nested too deeply for ``json`` is reported instead of raising RecursionError, and one with an
integer longer than ``int()`` reads instead of raising ValueError."""

from __future__ import annotations

import json
import sys
from typing import IO

from batches import jsonl
from batches.jsonl import ValidationResult
from batches.jsonl_lines import _json_type, _short
from batches.upstream import ENDPOINTS


def _read_lines(fileobj: IO[bytes]):
    """Yield (line number, bytes without the line ending, too_long) with at most jsonl.MAX_LINE_BYTES held."""
    number = 0
    while True:
        raw = fileobj.readline(jsonl.MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        too_long = len(raw) > jsonl.MAX_LINE_BYTES and not raw.endswith(b"\n")
        if too_long:
            # Drain the rest of this line in bounded chunks.
            while True:
                rest = fileobj.readline(jsonl.MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, b"", True
            continue
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        yield number, raw, False


def reference_validate_jsonl(fileobj: IO[bytes], *, endpoint: str | None = None, size: int | None = None) -> ValidationResult:
    """Check a batch input file. ``endpoint`` None means "take it from the file" (the first line's url
    must then be one of the API's endpoints). ``size`` is the file's length if the caller knows it."""
    result = ValidationResult()
    if size is not None:
        result.size = size
        if size > jsonl.MAX_BYTES:
            result.add(None, f"The file is {size / 1024 / 1024:.1f} MB; the Batch API accepts at most 200 MB.")
            return result
    head = fileobj.read(jsonl.BINARY_SNIFF_BYTES)
    fileobj.seek(0)
    if not head:
        result.add(None, "The file is empty: it must contain one JSON request per line.")
        return result
    if b"\x00" in head:
        result.add(None, "This looks like a binary file, not JSONL text (it contains NUL bytes).")
        return result
    if head.startswith(jsonl.BOM):
        result.add(
            1,
            "starts with a UTF-8 byte order mark (BOM), which the Batch API may reject. "
            "Save the file as UTF-8 without BOM and upload it again.",
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
            result.add(number, f"is longer than {jsonl.MAX_LINE_BYTES:,} bytes, the most the dashboard reads.")
            continue
        if not raw.strip():
            blank_lines.append(number)
            continue
        # A blank line followed by more requests is an error; blank lines at the end are not.
        for blank in blank_lines:
            result.add(blank, "is blank; remove blank lines between requests.")
        blank_lines.clear()

        result.requests += 1
        if result.requests > jsonl.MAX_REQUESTS:
            if not too_many_reported:
                result.add(number, f"is one too many: the file has more than {jsonl.MAX_REQUESTS:,} requests, the most one batch accepts.")
                too_many_reported = True
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            result.add(number, f"is not valid UTF-8 (bad byte at position {err.start + 1}).")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            result.add(number, f"is not valid JSON: {err.msg} (column {err.colno}).")
            continue
        except ValueError:
            result.add(number, f"has a number too long to read (more than {sys.get_int_max_str_digits():,} digits).")
            continue
        except RecursionError:
            result.add(number, "is nested too deeply to read.")
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
        if total_bytes > jsonl.MAX_BYTES:
            result.add(None, "The file is larger than 200 MB, the most the Batch API accepts.")
    if result.requests == 0 and result.error_count == 0:
        result.add(None, "The file has no requests: every line is blank.")
    result.url = first_url[0] if first_url else None
    result.model = first_model[0] if first_model else None
    return result
