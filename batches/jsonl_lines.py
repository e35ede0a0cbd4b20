"""The rules one line of a batch input file must follow, per line shape (``batches.jsonl`` reads the
file, these check each parsed line). The shape comes from the project's provider
(:mod:`batches.upstream.providers`):

* ``openai`` (OpenAI and Azure OpenAI): ``{"custom_id", "method": "POST", "url", "body"}``, one url and
  one model for the whole file (shared/openai-spec/NOTES.md §6.1; Azure's ``model`` is the deployment,
  the same on every line, provider-specs/NOTES.md §2.3);
* ``anthropic``: ``{"custom_id", "params"}`` where ``params`` is a non-streaming Messages request and
  ``custom_id`` matches ``^[a-zA-Z0-9_-]{1,64}$`` (provider-specs/NOTES.md §1.4). Anthropic checks
  ``params`` only after the batch has run (invalid ones come back as ``errored`` lines), so what can be
  known now is checked now: the fields a Messages request needs and the ones a batch refuses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys

from .upstream import ENDPOINTS

try:  # optional speed-up, pinned in requirements.txt
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised by tests that hide orjson
    orjson = None
    _fast_loads = None

try:  # the fast path of the OpenAI line check (batches.jsonl); pinned in requirements.txt
    import msgspec
except ImportError:  # pragma: no cover - the exact path alone then
    msgspec = None


# A custom_id longer than this is remembered by a 16-byte digest, not kept whole: what the check holds per
# line stays bounded (120 lines with 1 MB ids once kept 120 MB in a web worker).
KEPT_ID_CHARS = 64


def _digest(custom_id: str) -> bytes:
    """A long custom_id's stand-in among the seen ids (bytes: never equal to a kept str id)."""
    return hashlib.blake2b(custom_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


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


class LineRules:
    """Checks each parsed line (a dict) and adds problems to ``result``; :meth:`finish` adds what can
    only be said once the form's choices are known. ``url`` and ``model`` describe the file."""

    def __init__(self) -> None:
        #: custom_id (or its digest when long) -> the line it was first used on.
        self.seen: dict[str | bytes, int] = {}
        self.url: str | None = None
        self.model: str | None = None

    def unique_custom_id(self, custom_id: str, number: int, result) -> None:
        key = custom_id if len(custom_id) <= KEPT_ID_CHARS else _digest(custom_id)
        first = self.seen.setdefault(key, number)
        if first != number:
            result.add(
                number,
                f"repeats custom_id “{_short(custom_id)}” (first used on line {first}); each custom_id must be unique.",
            )

    def url_problem(self, endpoint: str | None) -> tuple[int, int, str] | None:
        """A problem known only with the form's endpoint: (its place among the errors, line, message)."""
        return None


class OpenAILineRules(LineRules):
    def __init__(self) -> None:
        super().__init__()
        self._first_url: tuple[str, int] | None = None
        # Where the endpoint check of the first url goes among the errors: (error_count then, line, url).
        self._url_check: tuple[int, int, str] | None = None
        self._first_model: tuple[str, int] | None = None

    def firsts(self) -> tuple[str | None, str | None]:
        """The url and the model of the file so far (None until a line sets one)."""
        return (self._first_url[0] if self._first_url else None, self._first_model[0] if self._first_model else None)

    def check(self, obj: dict, number: int, result) -> None:
        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem = "has no custom_id" if custom_id is None else "has a custom_id that is not a non-empty string"
            result.add(number, f"{problem}.")
        else:
            self.unique_custom_id(custom_id, number, result)

        method = obj.get("method")
        if method != "POST":
            result.add(number, f"has method {_short(method)}; only POST is allowed.")

        url = obj.get("url")
        if not isinstance(url, str) or not url:
            result.add(number, "has no url.")
        elif self._first_url is None:
            self._first_url = (url, number)
            self.url = url
            # Checked against the form's endpoint in finish(): the form's fields are not known yet.
            self._url_check = (result.error_count, number, url)
        elif url != self._first_url[0]:
            result.add(
                number,
                f"has url “{_short(url)}”, but line {self._first_url[1]} has “{_short(self._first_url[0])}”; "
                "every line must use the same url.",
            )

        body = obj.get("body")
        if not isinstance(body, dict):
            result.add(number, f"has a body that is {_json_type(body)}, not a JSON object.")
            return
        model = body.get("model")
        if model is None:
            return
        if not isinstance(model, str):
            result.add(number, "has a body.model that is not a string.")
        elif self._first_model is None:
            self._first_model = (model, number)
            self.model = model
        elif model != self._first_model[0]:
            result.add(
                number,
                f"uses model “{_short(model)}”, but line {self._first_model[1]} uses "
                f"“{_short(self._first_model[0])}”; a batch file may use only one model.",
            )

    def url_problem(self, endpoint: str | None) -> tuple[int, int, str] | None:
        if self._url_check is None:
            return None
        position, number, url = self._url_check
        if endpoint is not None and url != endpoint:
            return position, number, f"has url “{_short(url)}”, but the chosen endpoint is {endpoint}."
        if endpoint is None and url not in ENDPOINTS:
            return position, number, f"has url “{_short(url)}”, which is not a Batch API endpoint."
        return None


# How deep a value inside ``body`` may nest for the fast path to read it (a chat request's image_url is
# at depth 5, a tool's parameters schema a few levels more); a deeper line takes the exact path.
FAST_BODY_DEPTH = 10


@functools.cache
def openai_request_decoder():
    """msgspec's decoder of one OpenAI request line, for the fast path of :class:`batches.jsonl.JsonlValidator`
    (None without msgspec): an object of exactly ``custom_id``, ``method`` and ``url`` (strings) and
    ``body`` (an object), any key repeated taking its last value as ``json`` does.

    Whatever it accepts, ``json`` reads as the same value, so the exact path would accept it too: every
    string is decoded (UTF-8 and escapes checked; a lone surrogate escape, which ``json`` takes, is refused
    here), integers stop at Python's 4,300 digits like ``json``, a float that overflows is refused (``json``
    makes it infinity), NaN is refused (``json`` takes it), and the values inside ``body`` are typed to
    :data:`FAST_BODY_DEPTH` levels, nothing deeper, so no line is refused for its depth by ``json`` or
    orjson (about 1,000 levels) while read here. Anything refused goes to the exact path, which decides
    and words the error. Built on first use (its type has a branch per level and kind)."""
    if msgspec is None:
        return None
    fields = [("custom_id", str), ("method", str), ("url", str), ("body", dict[str, _bounded(FAST_BODY_DEPTH - 1)])]
    return msgspec.json.Decoder(msgspec.defstruct("Request", fields, forbid_unknown_fields=True))


def _bounded(depth: int):
    """Any JSON value nested at most ``depth`` levels below this one."""
    value = str | int | float | bool | None
    for _ in range(depth):
        value = str | int | float | bool | None | list[value] | dict[str, value]
    return value


@functools.cache
def openai_chat_decoder():
    """A quicker first try of the fast path for the common request, a chat completion: the same rules as
    :func:`openai_request_decoder` (every key known, every value typed and decoded, nothing deeper than
    a few levels), with ``body`` a struct of the usual chat fields instead of a dict of any values, which
    msgspec builds in less time. ``body.model`` is then an attribute (None when absent or null). A line
    with any other field in ``body`` is refused here and read by :func:`openai_request_decoder`."""
    if msgspec is None:
        return None
    optional = str | None
    part = dict[str, _bounded(3)]  # {"type": "text", "text": ...}, {"type": "image_url", "image_url": {...}}
    message = msgspec.defstruct(
        "ChatMessage", [("role", str), ("content", str | list[part] | None, None), ("name", optional, None)],
        forbid_unknown_fields=True,
    )
    body = msgspec.defstruct(
        "ChatBody",
        [
            ("messages", list[message]), ("model", optional, None),
            ("max_tokens", int | None, None), ("max_completion_tokens", int | None, None),
            ("temperature", float | None, None), ("top_p", float | None, None),
            ("n", int | None, None), ("seed", int | None, None), ("user", optional, None),
        ],
        forbid_unknown_fields=True,
    )
    fields = [("custom_id", str), ("method", str), ("url", str), ("body", body)]
    return msgspec.json.Decoder(msgspec.defstruct("ChatRequest", fields, forbid_unknown_fields=True))


ANTHROPIC_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Not allowed in a batch: "validation error" (provider-specs/NOTES.md §1.4).
ANTHROPIC_REFUSED_PARAMS = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")
ANTHROPIC_LINE_FIELDS = frozenset({"custom_id", "params"})


class AnthropicLineRules(LineRules):
    """One Message Batches request per line (module docstring)."""

    def check(self, obj: dict, number: int, result) -> None:
        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem = "has no custom_id" if custom_id is None else "has a custom_id that is not a non-empty string"
            result.add(number, f"{problem}.")
        elif not ANTHROPIC_CUSTOM_ID.fullmatch(custom_id):
            result.add(
                number,
                f"has custom_id “{_short(custom_id)}”; Anthropic allows 1 to 64 letters, digits, “_” and “-”.",
            )
        else:
            self.unique_custom_id(custom_id, number, result)
        unknown = sorted(set(obj) - ANTHROPIC_LINE_FIELDS)
        if unknown:
            result.add(
                number,
                f"has field(s) {', '.join(_short(k, 40) for k in unknown)}; an Anthropic batch line has only custom_id and params"
                + (" (this looks like an OpenAI line)." if "body" in obj or "url" in obj else "."),
            )
        params = obj.get("params")
        if not isinstance(params, dict):
            result.add(number, f"has params that is {_json_type(params)}, not a JSON object (a Messages request).")
            return
        self._params(params, number, result)

    def _params(self, params: dict, number: int, result) -> None:
        model = params.get("model")
        if not isinstance(model, str) or not model:
            result.add(number, "has no params.model (the Claude model to run).")
        elif self.model is None:
            self.model = model
        max_tokens = params.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            result.add(number, "needs params.max_tokens as a whole number of at least 1.")
        messages = params.get("messages")
        if not isinstance(messages, list) or not messages:
            result.add(number, "needs params.messages as a non-empty array of messages.")
        elif not all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages):
            result.add(number, "has a message in params.messages without a role and content.")
        if params.get("stream") is True:
            result.add(number, "sets params.stream to true; a batch request cannot stream.")
        refused = [key for key in ANTHROPIC_REFUSED_PARAMS if key in params]
        if refused:
            result.add(number, f"sets params.{refused[0]}, which a batch request does not allow.")
        if params.get("research_preview_2026_02") == "active":
            result.add(number, "sets params.research_preview_2026_02, which a batch request does not allow.")


def rules_for(line_shape: str) -> LineRules:
    """The rules of a line shape (``ProviderInfo.line_shape``)."""
    if line_shape == "anthropic":
        return AnthropicLineRules()
    return OpenAILineRules()


# -- reading lines ---------------------------------------------------------------------------------


def decode_lines(decode, data: bytes, start: int, last: int) -> list | None:
    """Each line of ``data`` from ``start`` to the newline at ``last`` decoded from the chunk itself, or
    None when ``decode`` refuses one of them."""
    view = memoryview(data)
    find = data.find
    out = []
    append = out.append
    try:
        while start <= last:
            end = find(b"\n", start)
            append(decode(view[start:end]))
            start = end + 1
    except (msgspec.DecodeError, RecursionError, ValueError):
        return None
    return out


#: What :func:`parse_line` returns for a line it could not read (its error is in the result).
INVALID = object()


def parse_line(raw: bytes, number: int, result):
    """The line's JSON value, or :data:`INVALID` after adding the error to ``result`` (a
    :class:`batches.jsonl.ValidationResult`)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(raw)
        except ValueError:
            pass  # json decides: it accepts some lines orjson refuses (NaN, huge integers, lone surrogates)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        result.add(number, f"is not valid UTF-8 (bad byte at position {err.start + 1}).")
        return INVALID
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        result.add(number, f"is not valid JSON: {err.msg} (column {err.colno}).")
    except ValueError:  # an integer of more digits than int() reads (sys.get_int_max_str_digits())
        result.add(number, f"has a number too long to read (more than {sys.get_int_max_str_digits():,} digits).")
    except RecursionError:
        result.add(number, "is nested too deeply to read.")
    return INVALID
