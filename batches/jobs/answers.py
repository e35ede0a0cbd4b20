"""A job's answers, read from its home chunks' results files in input order, streamed in constant memory:
``results.jsonl`` (one line per request), ``failed.jsonl`` (the input lines of the final failures) and
the pages of the results table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from . import storage
from .models import Chunk, Job
from .outcomes import CANCELLED, FAILED, PENDING, SUCCEEDED, attempts_of, status_of

PAGE_SIZE = 50


def _homes(job: Job):
    return job.chunks.filter(home__isnull=True).order_by("number")


def _synthetic(custom_id: str, attempts: int) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "response": None, "error": CANCELLED, "batch_id": None,
                         "attempts": attempts}) + b"\n"


def _home_lines(home: Chunk) -> Iterator[tuple[int, bytes]]:
    """(state byte, result line) of each request of a home chunk, in input order."""
    states = bytes(home.states or bytes(home.requests))
    if home.results_path:
        for state, line in zip(states, storage.iter_lines(home.results_path)):
            yield state, line
    else:
        for state, raw in zip(states, storage.iter_lines(home.input_path)):
            yield state, _synthetic(orjson.loads(raw)["custom_id"], attempts_of(state))


def results_blocks(job: Job) -> Iterator[bytes]:
    """results.jsonl: a home whose every request has an answer is copied as stored, block by block."""
    for home in _homes(job):
        states = bytes(home.states or b"")
        if home.results_path and states.find(bytes([PENDING])) < 0:
            yield from storage.iter_blocks(home.results_path)
            continue
        for state, line in _home_lines(home):
            if status_of(state) == PENDING:
                line = _synthetic(orjson.loads(line)["custom_id"], attempts_of(state))
            yield line


def failed_lines(job: Job) -> Iterator[bytes]:
    """failed.jsonl: the input lines of the requests that failed for good, ready to fix and resubmit."""
    for home in _homes(job).filter(failed__gt=0):
        for state, raw in zip(bytes(home.states), storage.iter_lines(home.input_path)):
            if status_of(state) == FAILED:
                yield raw


@dataclass
class ResultRow:
    line: int
    custom_id: str
    outcome: str
    status_code: int | None
    error: str
    batch_id: str | None
    attempts: int


OUTCOMES = {SUCCEEDED: "succeeded", FAILED: "failed"}


def _row(line_number: int, state: int, line: bytes) -> ResultRow:
    record = orjson.loads(line)
    response = record.get("response") or {}
    error = record.get("error") or {}
    body_error = (response.get("body") or {}).get("error") if isinstance(response.get("body"), dict) else None
    message = (error.get("message") if isinstance(error, dict) else "") or (
        body_error.get("message") if isinstance(body_error, dict) else "") or ""
    return ResultRow(
        line=line_number + 1, custom_id=str(record.get("custom_id", "")),
        outcome=OUTCOMES.get(status_of(state), "waiting" if status_of(state) == PENDING else "to retry"),
        status_code=response.get("status_code"), error=str(message)[:300], batch_id=record.get("batch_id"),
        attempts=record.get("attempts") or attempts_of(state),
    )


def result_page(job: Job, *, after: int = 0, failed_only: bool = False, custom_id: str = "") -> tuple[list[ResultRow], int | None]:
    """Up to PAGE_SIZE rows from input line ``after`` (1-based, exclusive) on; and the ``after`` of the
    next page (None at the end). ``custom_id`` finds one request (exact match)."""
    rows: list[ResultRow] = []
    needle = orjson.dumps(custom_id)[1:-1] if custom_id else b""
    homes = _homes(job).filter(first_line__gte=0)
    if failed_only:
        homes = homes.filter(failed__gt=0)
    for home in homes:
        if home.first_line + home.requests <= after:
            continue
        for index, (state, line) in enumerate(_home_lines(home)):
            number = home.first_line + index
            if number < after:
                continue
            if failed_only and status_of(state) != FAILED:
                continue
            if needle and needle not in line:
                continue
            row = _row(number, state, line)
            if custom_id and row.custom_id != custom_id:
                continue
            rows.append(row)
            if len(rows) == PAGE_SIZE:
                return rows, row.line
    return rows, None
