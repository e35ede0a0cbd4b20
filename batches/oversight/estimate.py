"""What a batch input file will cost, estimated before anything is uploaded (the create page's panel).

The rule of thumb OpenAI documents for English text (about four characters a token), over the text a
request carries; priced at batch rates with :func:`batches.oversight.pricing.price_usage`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from ..jsonl import MAX_LINE_BYTES
from .pricing import Price, price_usage

#: The rule of thumb OpenAI documents for English text: one token is about four characters; we count
#: UTF-8 bytes of the request's text (so non-Latin scripts, which take more bytes, estimate higher).
BYTES_PER_TOKEN = 4
#: Each chat message carries a few tokens of framing (role, separators); OpenAI's cookbook counts 3.
TOKENS_PER_MESSAGE = 3
ESTIMATE_METHOD = (
    "Input tokens are estimated as the UTF-8 bytes of each request's text (messages, input or prompt) "
    f"divided by {BYTES_PER_TOKEN}, plus {TOKENS_PER_MESSAGE} per chat message; images, audio and tool "
    "schemas are not counted. Output tokens cannot be known before the batch runs."
)


@dataclass(frozen=True)
class Estimate:
    """An estimate of a batch input file's cost, before anything is uploaded."""

    model: str
    requests: int
    input_tokens: int
    input_price: Price
    #: The cost if every request used its max output tokens (only when every line sets a maximum).
    max_output_tokens: int | None = None
    max_price: Price | None = None
    method: str = ESTIMATE_METHOD


def _text_bytes(value) -> tuple[int, int]:
    """(bytes of text, messages) in a request body's text fields, recursively through parts."""
    if isinstance(value, str):
        return len(value.encode("utf-8")), 0
    if isinstance(value, list):
        total = messages = 0
        for item in value:
            size, count = _text_bytes(item)
            total += size
            messages += count
        return total, messages
    if isinstance(value, dict):
        total = messages = 0
        if "role" in value:
            messages += 1
        for key in ("content", "text", "input", "prompt", "instructions"):
            if key in value:
                size, count = _text_bytes(value[key])
                total += size
                messages += count
        return total, messages
    return 0, 0


def _line_tokens(body: dict) -> int:
    size = messages = 0
    for key in ("messages", "input", "prompt", "instructions"):
        if key in body:
            part_size, part_messages = _text_bytes(body[key])
            size += part_size
            messages += part_messages
    return -(-size // BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * messages


def _max_output(body: dict) -> int | None:
    for key in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def estimate_jsonl(source, model: str | None = None) -> Estimate:
    """Estimate the input tokens and cost of a batch input file (bytes or a binary file object, already
    validated). ``model`` defaults to the first line's ``body.model``; the estimate is at batch rates."""
    fileobj = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    requests = input_tokens = max_output = 0
    every_line_has_max = True
    # The file was validated first, so every line fits in MAX_LINE_BYTES; one line is held at a time.
    for raw in iter(lambda: fileobj.readline(MAX_LINE_BYTES + 1), b""):
        if len(raw) > MAX_LINE_BYTES or not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(body, dict):
            continue
        requests += 1
        if model is None and isinstance(body.get("model"), str):
            model = body["model"]
        input_tokens += _line_tokens(body)
        line_max = _max_output(body)
        if line_max is None:
            every_line_has_max = False
        else:
            max_output += line_max
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    model = model or ""
    input_price = price_usage(model, input_tokens, 0, 0)
    max_price = None
    if requests and every_line_has_max:
        max_price = price_usage(model, input_tokens, 0, max_output)
    return Estimate(
        model=model,
        requests=requests,
        input_tokens=input_tokens,
        input_price=input_price,
        max_output_tokens=max_output if requests and every_line_has_max else None,
        max_price=max_price,
    )
