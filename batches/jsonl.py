"""Checks of a batch input file (JSONL), run while it arrives and before anything is uploaded.

:class:`JsonlValidator` is incremental: the upload handler (:mod:`batches.uploads`) feeds it each chunk
of the request body as it is written to the temporary file, so the check of a 200 MB file ends when its
last byte has arrived, and the create form uses the finished result instead of reading the file again.
:func:`validate_jsonl` runs the same validator over a file object (a file the dashboard did not receive
itself, the tests). Either way the worker holds one line at a time (at most :data:`MAX_LINE_BYTES`) plus
the set of ``custom_id`` values (50,000 short strings). Every rule below is a rule of the Batch API
(shared/openai-spec/NOTES.md §6.1, §6.2); catching them here means an operator learns about line 31,207
now, with its line number, instead of after an upload and a ``failed`` batch.

Decisions the API documents do not settle, made conservatively:

* A UTF-8 byte order mark is rejected with its own message: JSON (RFC 8259 §8.1) forbids emitting one and
  Python's own ``json`` rejects it, so we can not promise the upstream accepts it.
* CRLF line endings are accepted. Blank lines at the end of the file are accepted; a blank line *between*
  requests is reported, because it is almost always a sign of a broken export.
* A line longer than :data:`MAX_LINE_BYTES` is reported and skipped without being held in memory.

Each :class:`LineError` with a line number has a ``message`` that reads after the page's "line N" label
("is not valid JSON: …"); ``text`` is the whole sentence ("Line 2 is not valid JSON: …").

Lines are parsed with orjson when it is installed (about twice as fast as ``json`` on a 200 MB file); a
line orjson refuses is parsed again with ``json``, which decides and words the message, so both parsers
accept exactly what ``json`` accepts and report it the same way.

Before that, the whole lines of each chunk of an OpenAI-shaped file go through a fast path (with msgspec,
:meth:`JsonlValidator._requests`): each line is decoded straight from the chunk into a typed request (a
chat completion's usual fields as a struct, anything else as typed values to a bounded depth), and
when every line of the chunk is one more request like the ones before it (valid, a new custom_id, the
file's url and model) they are only counted. A chunk with any other line, the file's first request and
each line that crosses a chunk boundary take the exact path above, line by line; msgspec accepts nothing
that ``json`` refuses (:func:`~batches.jsonl_lines.openai_request_decoder`), so errors, their wording and
their line numbers are the exact path's. It checks a 200 MB file of chat requests in about 55 % of the
exact path's CPU (``bench/upload_cpu.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from .jsonl_lines import (
    INVALID,
    KEPT_ID_CHARS,
    LineRules,
    OpenAILineRules,
    _json_type,
    decode_lines,
    openai_chat_decoder,
    openai_request_decoder,
    parse_line,
    rules_for,
)
from .upstream import provider_info

# OpenAI's limits (NOTES.md §6.2: "up to 50,000 requests", "can be up to 200 MB"); each provider's own
# are in batches/upstream/providers.py and apply to its projects' files.
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
# The largest file any provider accepts (Anthropic: 256 MB), for the upload handler's first cap.
MAX_BYTES_ANY = 256 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024  # the dashboard's own bound: one request line in memory at a time
MAX_LISTED_ERRORS = 20
# Whether whole lines of a chunk may be checked by the fast path (JsonlValidator._requests); the tests compare
# both ways.
FAST_PATH = openai_request_decoder() is not None and openai_chat_decoder() is not None
BOM = b"\xef\xbb\xbf"
# A NUL byte never occurs in UTF-8 JSON text; it is the cheapest sure sign of a binary file.
BINARY_SNIFF_BYTES = 8192
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LineError:
    line: int | None
    message: str

    @property
    def text(self) -> str:
        """The whole sentence, for places without a line label."""
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


def limits(info) -> tuple[int, int]:
    """(requests, bytes) one batch of ``info``'s provider takes. OpenAI's are this module's constants
    (read when a check starts, so tests can lower them)."""
    if info.name == "openai":
        return MAX_REQUESTS, MAX_BYTES
    return info.max_requests, info.max_bytes


class JsonlValidator:
    """Feed the bytes of a file in chunks of any size (:meth:`feed`), call :meth:`finish` at its end,
    then read the outcome with :meth:`result`, which takes the endpoint chosen on the form (known only
    once the whole request has been parsed) and the file's size. ``provider`` picks the line shape and
    the limits (OpenAI's by default)."""

    def __init__(self, provider: str | None = None) -> None:
        info = provider_info(provider)
        self.provider = info.name
        self.max_requests, self.max_bytes = limits(info)
        self._limit_mb = info.max_bytes // (1024 * 1024)  # the documented figure, for the sentences
        self._rules: LineRules = rules_for(info.line_shape)
        # The fast path of _requests (OpenAI's line shape, msgspec installed); None: every line the exact way.
        fast = FAST_PATH and type(self._rules) is OpenAILineRules
        self._fast_decode = openai_request_decoder().decode if fast else None
        self._fast_chat = openai_chat_decoder().decode if fast else None
        self._checked = ValidationResult()
        self._head = bytearray()
        self._head_done = False
        self._whole_file_error: tuple[int | None, str] | None = None
        self._finished = False
        # The line being assembled across chunks.
        self._parts: list[bytes] = []
        self._part_bytes = 0
        self._too_long = False
        self._number = 0
        self._total_bytes = 0
        self._blank_lines: list[int] = []
        self._too_many_reported = False

    # -- input ---------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if not data or self._whole_file_error is not None:
            return
        if not self._head_done:
            self._head += data
            if len(self._head) < BINARY_SNIFF_BYTES:
                return
            data = bytes(self._head)
            self._head = bytearray()
            self._check_head(data[:BINARY_SNIFF_BYTES])
            if self._whole_file_error is not None:
                return
        self._split(data)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if not self._head_done:
            data = bytes(self._head)
            self._head = bytearray()
            self._check_head(data)
            if self._whole_file_error is None:
                self._split(data)
        if self._whole_file_error is not None:
            return
        if self._parts or self._too_long:
            # The last line has no newline: its "\r", if any, stays (json reads it as whitespace).
            raw = b"".join(self._parts)
            self._parts, self._part_bytes = [], 0
            if self._too_long:
                self._too_long = False
                self._line_too_long()
            else:
                self._line(raw)

    def _check_head(self, head: bytes) -> None:
        self._head_done = True
        if not head:
            self._whole_file_error = (None, "The file is empty: it must contain one JSON request per line.")
        elif b"\x00" in head:
            self._whole_file_error = (None, "This looks like a binary file, not JSONL text (it contains NUL bytes).")
        elif head.startswith(BOM):
            self._whole_file_error = (
                1,
                "starts with a UTF-8 byte order mark (BOM), which the Batch API may reject. "
                "Save the file as UTF-8 without BOM and upload it again.",
            )

    def _split(self, data: bytes) -> None:
        """Cut ``data`` into lines, joining the line left open by the previous chunk."""
        end = data.find(b"\n")
        if end < 0:
            self._keep_partial(data)
            return
        start = 0
        if self._parts or self._too_long:
            self._keep_partial(data[:end])
            start = end + 1
            if self._too_long:
                self._too_long = False
                self._line_too_long()
            else:
                raw = b"".join(self._parts)
                self._parts, self._part_bytes = [], 0
                self._complete_line(raw)
        last = data.rfind(b"\n")
        if start <= last and self._fast_decode is not None and self._rules.firsts()[0] is None:
            end = data.find(b"\n", start)  # the first request gives the file's url (and model): the exact way
            self._lines(data, start, end)
            start = end + 1
        if start <= last and not self._requests(data, start, last):
            self._lines(data, start, last)
        self._keep_partial(data[last + 1:])

    def _requests(self, data: bytes, start: int, last: int) -> bool:
        """The fast path: count the whole lines of a chunk, from ``start`` to the newline at ``last``, when
        every one of them is one more request like the ones before it. Each line is decoded straight from
        the chunk by :func:`~batches.jsonl_lines.openai_chat_decoder` (chat completions with the usual
        fields), or when one line does not fit it, each by the general
        :func:`~batches.jsonl_lines.openai_request_decoder`; neither accepts anything ``json`` refuses.
        Then the chunk's requests are checked together: custom_ids new and at most
        :data:`~batches.jsonl_lines.KEPT_ID_CHARS` long, the file's url and model, POST, within the
        request limit. Returns False, having counted nothing, when any line is not such a request (an error
        of any kind, a blank line, a first url or model), when the file's url is not known yet, blank lines
        wait to be reported, or the lines could be longer than :data:`MAX_LINE_BYTES`: the exact path then
        takes the chunk's lines one by one and reports them as it always has."""
        decode = self._fast_decode
        if decode is None or self._blank_lines or last - start > MAX_LINE_BYTES:
            return False
        first_url, first_model = self._rules.firsts()
        if first_url is None:
            return False
        region = last + 1 - start  # the lines' bytes with their newlines: what _line counts for them
        region -= data.count(b"\r\n", start, last + 1) if data.find(b"\r", start, last) >= 0 else 0  # without "\r"
        requests = decode_lines(self._fast_chat, data, start, last)
        if requests is not None:
            models = {request.body.model for request in requests}
        else:
            requests = decode_lines(decode, data, start, last)
            if requests is None:
                return False
            try:
                models = {request.body.get("model") for request in requests}
            except TypeError:  # a model that is a list or an object (unhashable): not the file's model
                return False
        result = self._checked
        count = len(requests)
        if result.requests + count > self.max_requests:
            return False
        ids = [request.custom_id for request in requests]
        seen = self._rules.seen
        if not (
            min(map(len, ids)) > 0 and max(map(len, ids)) <= KEPT_ID_CHARS and len(set(ids)) == count
            and seen.keys().isdisjoint(ids) and {request.url for request in requests} == {first_url}
            and {request.method for request in requests} == {"POST"} and models <= {None, first_model}
        ):
            return False
        number = self._number
        seen.update(zip(ids, range(number + 1, number + count + 1)))
        self._number = number + count
        result.requests += count
        self._total_bytes += region
        return True

    def _lines(self, data: bytes, start: int, last: int) -> None:
        """The exact path for the whole lines of a chunk: each one read and checked by :meth:`_line`."""
        limit = MAX_LINE_BYTES
        for raw in data[start:last].split(b"\n"):
            if len(raw) > limit:
                self._line_too_long()
            else:
                self._complete_line(raw)

    def _keep_partial(self, piece: bytes) -> None:
        if self._too_long or not piece:
            return
        self._part_bytes += len(piece)
        if self._part_bytes > MAX_LINE_BYTES:
            self._parts, self._part_bytes, self._too_long = [], 0, True
        else:
            self._parts.append(piece)

    # -- one line ------------------------------------------------------------------------------------

    def _line_too_long(self) -> None:
        self._number += 1
        self._total_bytes += 1
        self._checked.add(self._number, f"is longer than {MAX_LINE_BYTES:,} bytes, the most the dashboard reads.")

    def _complete_line(self, raw: bytes) -> None:
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        self._line(raw)

    def _line(self, raw: bytes) -> None:
        self._number += 1
        number = self._number
        result = self._checked
        self._total_bytes += len(raw) + 1
        if not raw or raw.isspace():  # what `not raw.strip()` says, without copying the line
            self._blank_lines.append(number)
            return
        # A blank line followed by more requests is an error; blank lines at the end are not.
        if self._blank_lines:
            for blank in self._blank_lines:
                result.add(blank, "is blank; remove blank lines between requests.")
            self._blank_lines.clear()

        result.requests += 1
        if result.requests > self.max_requests:
            if not self._too_many_reported:
                result.add(number, f"is one too many: the file has more than {self.max_requests:,} requests, the most one batch accepts.")
                self._too_many_reported = True
            return
        obj = parse_line(raw, number, result)
        if obj is INVALID:
            return
        if not isinstance(obj, dict):
            result.add(number, f"is {_json_type(obj)}, not a JSON object.")
            return

        self._rules.check(obj, number, result)

    # -- output --------------------------------------------------------------------------------------

    def custom_ids(self):
        """The custom_ids seen so far, in order (a job checks them across its chunks)."""
        return iter(self._rules.seen)

    def result(self, *, endpoint: str | None = None, size: int | None = None) -> ValidationResult:
        """The outcome for the endpoint chosen on the form (None: "take it from the file", whose first url
        must then be one of the API's endpoints). ``size`` is the file's length if the caller knows it."""
        if not self._finished:
            raise RuntimeError("result() before finish()")
        out = ValidationResult()
        limit_mb = self._limit_mb
        if size is not None:
            out.size = size
            if size > self.max_bytes:
                out.add(None, f"The file is {size / 1024 / 1024:.1f} MB; the Batch API accepts at most {limit_mb} MB.")
                return out
        if self._whole_file_error is not None:
            out.add(*self._whole_file_error)
            return out
        checked = self._checked
        out.errors = list(checked.errors)
        out.error_count = checked.error_count
        out.requests = checked.requests
        problem = self._rules.url_problem(endpoint)
        if problem is not None:
            position, number, message = problem
            out.error_count += 1
            if position < MAX_LISTED_ERRORS:
                out.errors.insert(position, LineError(number, message))
                del out.errors[MAX_LISTED_ERRORS:]
        if size is None:
            out.size = self._total_bytes
            if self._total_bytes > self.max_bytes:
                out.add(None, f"The file is larger than {limit_mb} MB, the most the Batch API accepts.")
        if out.requests == 0 and out.error_count == 0:
            out.add(None, "The file has no requests: every line is blank.")
        out.url = self._rules.url
        out.model = self._rules.model
        return out


def validate_jsonl(
    fileobj: IO[bytes], *, endpoint: str | None = None, size: int | None = None, provider: str | None = None
) -> ValidationResult:
    """Check a batch input file read from ``fileobj`` (from its current position). ``endpoint`` None
    means "take it from the file" (the first line's url must then be one of the API's endpoints).
    ``size`` is the file's length if the caller knows it: a file over the limit is refused unread.
    ``provider`` picks the line shape and limits (OpenAI's by default)."""
    validator = JsonlValidator(provider)
    if size is None or size <= validator.max_bytes:
        while chunk := fileobj.read(READ_CHUNK):
            validator.feed(chunk)
    validator.finish()
    return validator.result(endpoint=endpoint, size=size)
