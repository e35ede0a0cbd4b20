"""Result lines in one shape, whatever the provider, and the token usage they add up to.

Every client hands the results package the same records: OpenAI's output-file line shape
(shared/openai-spec/NOTES.md §6.3)::

    {"custom_id": "…", "response": {"status_code": 200, "body": {…}} | null, "error": {"code", "message"} | null}

OpenAI and Azure lines are that shape already; Anthropic's (``{"custom_id", "result": {"type": …}}``,
provider-specs/NOTES.md §1.5) are turned into it by ``anthropic.py``. Two error codes of that shape
carry the outcomes OpenAI has no line for: ``batch_expired`` (OpenAI's own) and ``batch_cancelled``
(a request a cancel stopped before it ran).

While the records pass, :class:`ResultRecords` sums the usage of the successful responses per model:
Anthropic's Message Batch reports no usage at all, and OpenAI's batches before September 2025 neither,
so the sum of the lines is the only usage there is to price.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import orjson

logger = logging.getLogger("batches.client")

EXPIRED_CODE = "batch_expired"
CANCELLED_CODE = "batch_cancelled"


@dataclass
class UsageTally:
    """Tokens of one model summed over result lines; ``input_tokens`` includes the cached ones (the
    OpenAI convention the prices use)."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    def add(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> None:
        self.input_tokens += input_tokens
        self.cached_tokens += cached_tokens
        self.output_tokens += output_tokens
        self.requests += 1


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def body_usage(body) -> tuple[int, int, int] | None:
    """(input incl. cached, cached, output) tokens of one response body, in any shape a batch returns:
    chat completions (``prompt_tokens``), responses (``input_tokens`` with ``input_tokens_details``),
    Anthropic messages (``input_tokens`` *without* the cache reads and writes, which come separately)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage:
        details = usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
        return _count(usage.get("prompt_tokens")), cached, _count(usage.get("completion_tokens"))
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage or body.get("type") == "message":
        cached = _count(usage.get("cache_read_input_tokens"))
        written = _count(usage.get("cache_creation_input_tokens"))
        return _count(usage.get("input_tokens")) + cached + written, cached, _count(usage.get("output_tokens"))
    details = usage.get("input_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return _count(usage.get("input_tokens")), cached, _count(usage.get("output_tokens"))


class JsonLine(NamedTuple):
    number: int
    obj: dict
    #: The line as it came, without its line ending.
    raw: bytes


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its ending) for each line of a stream of byte chunks."""
    number, rest = 0, b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            number += 1
            yield number, raw.removesuffix(b"\r")
    if rest:
        yield number + 1, rest.removesuffix(b"\r")


def parse_object(raw: bytes) -> dict | None:
    """The JSON object of one line, or None when the line holds another JSON value. Raises ValueError
    when the line is not JSON at all (RecursionError when it is nested too deeply for ``json``)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson is strict where the standard library is not (NaN, Infinity): accept what json accepts.
        obj = json.loads(raw)
    return obj if isinstance(obj, dict) else None


def json_objects(chunks: Iterable[bytes], *, name: str) -> Iterator[JsonLine]:
    """Every JSON object line of a stream of byte chunks (the one JSONL reader: input, output, error
    and results files alike); ``name`` says which file in the log. A file is never held in memory;
    blank lines, lines that are not JSON (logged) and JSON values that are not objects are skipped."""
    for number, raw in split_lines(chunks):
        if not raw.strip():
            continue
        try:
            obj = parse_object(raw)
        except (ValueError, RecursionError):
            logger.warning("file %s line %d is not JSON (or nested too deeply); skipped", name, number)
            continue
        if obj is not None:
            yield JsonLine(number, obj, raw)


class ResultRecords:
    """The result records of one batch, streamed once, in the common shape (module docstring).

    ``sources`` are callables that open one streamed body each (opened only when reached, closed when
    done or abandoned); ``convert`` turns a provider's line into the common shape. After iterating,
    :attr:`usage` holds the summed usage per model of the successful lines."""

    def __init__(self, sources: Iterable[tuple[str, Callable]], convert: Callable[[dict], dict] | None = None) -> None:
        self._sources = list(sources)
        self._convert = convert
        self.usage: dict[str, UsageTally] = {}
        self.complete = False

    def __iter__(self) -> Iterator[dict]:
        for where, open_body in self._sources:
            content = open_body()
            try:
                for line in json_objects(content, name=where):
                    record = self._convert(line.obj) if self._convert else line.obj
                    self._tally(record)
                    yield record
            finally:
                content.close()
        self.complete = True

    def _tally(self, record: dict) -> None:
        response = record.get("response")
        if not isinstance(response, dict) or record.get("error"):
            return
        status = response.get("status_code")
        if not isinstance(status, int) or status >= 400:
            return
        body = response.get("body")
        tokens = body_usage(body)
        if tokens is None:
            return
        model = body.get("model") if isinstance(body.get("model"), str) else ""
        self.usage.setdefault(model, UsageTally()).add(*tokens)
