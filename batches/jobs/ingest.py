"""Reading a job's input file once: check every line with the create page's rules, estimate its
tokens, cut it into home chunks and store them, with memory that stays flat whatever the size.

* Lines are checked by :class:`batches.jsonl.JsonlValidator`, the create page's validator: one per
  chunk (a chunk is at most one batch: ≤ 50,000 requests, ≤ 200 MB), so every rule of a batch holds for
  every chunk, and its line numbers are turned back into the file's.
* Across the job: one ``url`` (endpoint) for every line, and a ``custom_id`` used twice anywhere is an
  error (results are merged by it). The job keeps one 64-bit hash per ``custom_id`` in an array (8 bytes a
  request) and sorts it at the end; only when two hashes are equal does a second pass over the stored
  chunks find the lines and their ids (so a hash collision is never reported as a duplicate).
* A new chunk starts when the model changes, or when the next line would pass the project's
  ``max_requests_per_batch``, ``max_bytes_per_batch`` or the model's enqueued-token budget.

**Token estimate** (:func:`estimate_tokens`): the line's UTF-8 bytes. It is an estimate and an upper bound
for text: the byte-pair tokenizers of OpenAI's models never make a token of less than one byte of UTF-8
text, a request's JSON holds every byte of its message text (escaping only adds bytes), and the few
tokens the API adds per message are fewer than the bytes of ``{"role":"user","content":""}``. So the
estimate is never lower than the API's count of the message text; it is typically 3-5 times higher.
Images, audio and files are counted only by the bytes of their reference, not by what the API counts
for them.
"""

from __future__ import annotations

import array
import os
import re
from dataclasses import dataclass, field

import orjson

from ..jsonl import MAX_LINE_BYTES, MAX_LISTED_ERRORS, JsonlValidator, LineError, ValidationResult
from ..upstream import ENDPOINTS
from . import storage
from ..project_limits import JobLimits

FLUSH_BYTES = 1024 * 1024  # lines go to the chunk's file and validator in blocks of about this size
ERROR_KEEP = 1000  # errors kept for sorting before the first MAX_LISTED_ERRORS are listed


def estimate_tokens(raw: bytes) -> int:
    """Estimated input tokens of one request line (see the module docstring): its UTF-8 bytes."""
    return len(raw)


@dataclass
class ChunkPlan:
    first_line: int  # 0-based request index
    model: str = ""
    requests: int = 0
    input_bytes: int = 0
    estimated_tokens: int = 0
    local_path: str = ""
    stored_path: str = ""
    #: the file line number (1-based) of each request, for messages
    line_numbers: array.array = field(default_factory=lambda: array.array("I"), repr=False)


@dataclass
class IngestResult(ValidationResult):
    """The check's outcome (errors with line numbers, requests, size), and the job's plan."""

    model: str = ""
    endpoint: str | None = None
    estimated_tokens: int = 0
    chunks: list[ChunkPlan] = field(default_factory=list)
    folder: str = ""


class _OpenChunk:
    def __init__(self, plan: ChunkPlan, scratch: str, number: int) -> None:
        self.plan = plan
        plan.local_path = os.path.join(scratch, f"{number}.jsonl")
        self.handle = open(plan.local_path, "wb")
        self.validator = JsonlValidator()
        self.line_numbers = plan.line_numbers
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    def flush(self) -> None:
        if self.pending:
            self.pending.append(b"")
            block = b"\n".join(self.pending)
            self.handle.write(block)
            self.validator.feed(block)
            self.pending, self.pending_bytes = [], 0


class JobIngest:
    """``feed`` bytes as they arrive, ``finish`` at the end, then read :attr:`result`. ``store`` False
    checks and splits without writing to storage (the benchmark's validate+split figure)."""

    def __init__(self, limits: JobLimits, scratch: str, *, store: bool = True, token_cap=None) -> None:
        self.limits = limits
        self.scratch = scratch
        self.store = store
        #: model -> the most estimated tokens one chunk may hold (None: no cap)
        self.token_cap_for = token_cap or limits.budget_for
        self._probed = False
        self.result = IngestResult(folder=storage.new_folder())
        self._kept: list[LineError] = []
        self._partial: list[bytes] = []
        self._partial_bytes = 0
        self._too_long = False
        self._line_number = 0
        self._blank: list[int] = []
        self._hashes = array.array("q")
        self._chunk: _OpenChunk | None = None
        self._first_url: tuple[str, int] | None = None
        self._model: tuple[str, int] | None = None
        # A chunk's estimated tokens stay within the model's budget, known once the first line is read.
        self._token_cap: int | None = None
        self._head = True

    # -- errors ---------------------------------------------------------------------------------------

    def _error(self, line: int | None, message: str) -> None:
        self.result.error_count += 1
        if len(self._kept) < ERROR_KEEP:
            self._kept.append(LineError(line, message))

    # -- input ----------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.result.size += len(data)
        if self._head:
            self._head = False
            if data.startswith(b"\xef\xbb\xbf"):
                self._error(1, "starts with a UTF-8 byte order mark (BOM), which the Batch API may reject. "
                               "Save the file as UTF-8 without BOM and upload it again.")
                data = data[3:]
        lines = data.split(b"\n")
        tail = lines.pop()
        if lines:
            if self._partial or self._too_long:
                self._add_partial(lines[0])
                self._complete(b"".join(self._partial))
                lines = lines[1:]
            self._lines(lines)
        self._add_partial(tail)

    def _lines(self, lines: list[bytes]) -> None:
        """Complete lines: the common case (a request that fits the open chunk) inline, for speed."""
        chunk = self._chunk
        max_requests = self.limits.max_requests_per_batch
        max_bytes = self.limits.max_bytes_per_batch
        cap = self._token_cap
        for raw in lines:
            size = len(raw) + 1
            if chunk is not None and size <= MAX_LINE_BYTES and raw[-1:] not in (b"\r", b"") and not self._blank \
                    and not raw.isspace():
                plan = chunk.plan
                tokens = estimate_tokens(raw)
                if (plan.requests < max_requests and plan.input_bytes + size <= max_bytes
                        and (cap is None or plan.estimated_tokens + tokens <= cap)):
                    self._line_number += 1
                    plan.requests += 1
                    plan.input_bytes += size
                    plan.estimated_tokens += tokens
                    chunk.line_numbers.append(self._line_number)
                    chunk.pending.append(raw)
                    chunk.pending_bytes += size
                    if chunk.pending_bytes >= FLUSH_BYTES:
                        chunk.flush()
                    continue
            if size > MAX_LINE_BYTES:
                self._too_long = True
            self._complete(raw)
            chunk = self._chunk
            cap = self._token_cap

    def _add_partial(self, piece: bytes) -> None:
        if not piece or self._too_long:
            return
        self._partial_bytes += len(piece)
        if self._partial_bytes > MAX_LINE_BYTES:
            self._partial, self._partial_bytes, self._too_long = [], 0, True
        else:
            self._partial.append(piece)

    def _complete(self, raw: bytes) -> None:
        self._partial, self._partial_bytes = [], 0
        self._line_number += 1
        number = self._line_number
        if self._too_long:
            self._too_long = False
            self._error(number, f"is longer than {MAX_LINE_BYTES:,} bytes, the most the dashboard reads.")
            return
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        if not raw or raw.isspace():
            self._blank.append(number)
            return
        for blank in self._blank:
            self._error(blank, "is blank; remove blank lines between requests.")
        self._blank.clear()
        if not self._probed:
            self._probe(raw)
        tokens = estimate_tokens(raw)
        size = len(raw) + 1
        chunk = self._chunk
        if chunk is None or self._must_cut(chunk.plan, size, tokens):
            chunk = self._open()
        plan = chunk.plan
        plan.requests += 1
        plan.input_bytes += size
        plan.estimated_tokens += tokens
        chunk.line_numbers.append(number)
        chunk.pending.append(raw)
        chunk.pending_bytes += size
        if chunk.pending_bytes >= FLUSH_BYTES:
            chunk.flush()

    def _probe(self, raw: bytes) -> None:
        """The model of the first request sets the chunks' token cap (a job has one model)."""
        self._probed = True
        try:
            body = orjson.loads(raw).get("body")
            model = body.get("model")
        except (ValueError, AttributeError):
            return  # the validator reports the line
        if isinstance(model, str):
            self._token_cap = self.token_cap_for(model)

    def _must_cut(self, plan: ChunkPlan, size: int, tokens: int) -> bool:
        if plan.requests + 1 > self.limits.max_requests_per_batch:
            return True
        if plan.input_bytes + size > self.limits.max_bytes_per_batch:
            return True
        return self._token_cap is not None and plan.estimated_tokens + tokens > self._token_cap

    def _open(self) -> _OpenChunk:
        if self._chunk is not None:
            self._close(self._chunk)
        first = self.result.chunks[-1].first_line + self.result.chunks[-1].requests if self.result.chunks else 0
        plan = ChunkPlan(first_line=first)
        self.result.chunks.append(plan)
        self._chunk = _OpenChunk(plan, self.scratch, len(self.result.chunks) - 1)
        return self._chunk

    def _close(self, chunk: _OpenChunk) -> None:
        chunk.flush()
        chunk.handle.close()
        validator = chunk.validator
        validator.finish()
        self._hashes.extend(hash(custom_id) for custom_id in validator.custom_ids())
        endpoint = self._first_url[0] if self._first_url else None
        checked = validator.result(endpoint=endpoint)
        numbers = chunk.line_numbers
        for error in checked.errors:
            self._error(numbers[error.line - 1] if error.line else None, _renumber(error.message, numbers))
        # Errors past the validator's listed ones are counted, not worded.
        self.result.error_count += checked.error_count - len(checked.errors)
        if checked.url and self._first_url is None:
            self._first_url = (checked.url, numbers[0])
        plan = chunk.plan
        plan.model = checked.model or ""
        if checked.model and self._model is None:
            self._model = (checked.model, numbers[0])
        elif checked.model and checked.model != self._model[0]:
            self._error(numbers[0], f"uses model “{_short(checked.model)}”, but line {self._model[1]} uses "
                                    f"“{_short(self._model[0])}”; a job may use only one model (split the file by model).")
        self.result.requests += plan.requests
        self.result.estimated_tokens += plan.estimated_tokens
        if self.store and self.result.ok:
            plan.stored_path = storage.save_local(
                plan.local_path, storage.path(self.result.folder, "in", f"{len(self.result.chunks) - 1}.jsonl")
            )

    # -- the end --------------------------------------------------------------------------------------

    def finish(self) -> IngestResult:
        if self._partial or self._too_long:
            self._complete(b"".join(self._partial))
        if self._chunk is not None:
            self._close(self._chunk)
            self._chunk = None
        result = self.result
        if result.size == 0:
            self._error(None, "The file is empty: it must contain one JSON request per line.")
        elif result.requests == 0 and result.error_count == 0:
            self._error(None, "The file has no requests: every line is blank.")
        self._find_duplicates()
        result.endpoint = self._first_url[0] if self._first_url else None
        if result.endpoint is not None and result.endpoint not in ENDPOINTS and result.ok:
            self._error(self._first_url[1], f"has url “{result.endpoint[:80]}”, which is not a Batch API endpoint.")
        result.model = self._model[0] if self._model else ""
        self._kept.sort(key=lambda error: (error.line is not None, error.line or 0))
        result.errors = self._kept[:MAX_LISTED_ERRORS]
        if not result.ok:
            self.discard()
        return result

    def discard(self) -> None:
        """Remove whatever was stored: an invalid file stores nothing."""
        for plan in self.result.chunks:
            if plan.stored_path:
                storage.delete(plan.stored_path)
                plan.stored_path = ""

    def _find_duplicates(self) -> None:
        """A custom_id used in two chunks (the per-chunk validators report repeats inside a chunk)."""
        ordered = sorted(self._hashes)
        self._hashes = array.array("q")
        suspects = {ordered[i] for i in range(1, len(ordered)) if ordered[i] == ordered[i - 1]}
        del ordered
        if not suspects:
            return
        first_seen: dict[str, tuple[int, int]] = {}  # custom_id -> (file line, chunk)
        seen_in: set[tuple[str, int]] = set()
        for index, plan in enumerate(self.result.chunks):
            numbers = iter(plan.line_numbers)
            # A stored chunk's scratch file was moved into storage: read it back from there.
            lines = storage.iter_lines(plan.stored_path) if plan.stored_path else _local_lines(plan.local_path)
            for raw in lines:
                number = next(numbers)
                try:
                    obj = orjson.loads(raw)
                except ValueError:
                    continue
                custom_id = obj.get("custom_id") if isinstance(obj, dict) else None
                if not isinstance(custom_id, str) or hash(custom_id) not in suspects:
                    continue
                if (custom_id, index) in seen_in:
                    continue  # a repeat inside one chunk: its validator reported it
                seen_in.add((custom_id, index))
                first = first_seen.setdefault(custom_id, (number, index))
                if first[1] != index:
                    self._error(number, f"repeats custom_id “{_short(custom_id)}” (first used on line {first[0]}); "
                                        "each custom_id must be unique.")


def _local_lines(path: str):
    with open(path, "rb") as handle:
        yield from handle


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LOCAL_LINE = re.compile(r"(first used on line |but line )(\d+)")


def _renumber(message: str, numbers: array.array) -> str:
    """The validator's "(first used on line N)" and "but line N" speak of the chunk's lines."""

    def file_line(match: re.Match) -> str:
        local = int(match.group(2))
        return match.group(1) + (str(numbers[local - 1]) if 0 < local <= len(numbers) else match.group(2))

    return _LOCAL_LINE.sub(file_line, message)
