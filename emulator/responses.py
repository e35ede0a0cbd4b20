"""Plausible per-endpoint response bodies for batch output lines.

Everything is derived deterministically from (custom_id, body) so output files are stable.
"""

import hashlib


def stable_hash(text):
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def token_counts(endpoint, raw_len, h):
    """(input_tokens, output_tokens) for one request."""
    inp = max(1, raw_len // 4)
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return inp, 0
    return inp, 8 + h % 240


_ANSWERS = (
    "The customer is happy with the product and would buy it again.",
    "Sentiment: negative. The user reports a delayed delivery.",
    "Voici la traduction du paragraphe demandé.",
    '{"colour": "blue", "size": "M", "material": "cotton"}',
    "Five quick tips for faster onboarding",
    "No, this message is not spam.",
    "Here is a concise summary of the requested text.",
    "The answer is 42.",
)


def _text(h, n):
    return _ANSWERS[h % len(_ANSWERS)]


def _hexid(prefix, h, n=24):
    return prefix + ("%032x" % (h * 2654435761 % (1 << 128)))[:n]


def success_body(endpoint, body, model, h, in_tok, out_tok, created):
    model = model or body.get("model") or "unknown-model"
    total = in_tok + out_tok
    if endpoint == "/v1/chat/completions":
        return {
            "id": _hexid("chatcmpl-", h, 29),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": _text(h, min(out_tok, 24)),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": in_tok,
                "completion_tokens": out_tok,
                "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
    if endpoint == "/v1/responses":
        return {
            "id": _hexid("resp_", h, 48),
            "object": "response",
            "created_at": created,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": [
                {
                    "id": _hexid("msg_", h + 1, 48),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": _text(h, min(out_tok, 24)), "annotations": []}],
                }
            ],
            "usage": {
                "input_tokens": in_tok,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out_tok,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": total,
            },
            "metadata": {},
        }
    if endpoint == "/v1/embeddings":
        inputs = body.get("input")
        n = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
        data = []
        for i in range(n):
            vec = [round(((h >> (j * 3 + i)) % 2000) / 1000.0 - 1.0, 6) for j in range(8)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": in_tok, "total_tokens": in_tok}}
    if endpoint == "/v1/completions":
        return {
            "id": _hexid("cmpl-", h, 29),
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": " " + _text(h, min(out_tok, 24)), "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": in_tok, "completion_tokens": out_tok, "total_tokens": total},
        }
    if endpoint == "/v1/moderations":
        cats = ["harassment", "hate", "self-harm", "sexual", "violence"]
        return {
            "id": _hexid("modr-", h, 24),
            "model": model,
            "results": [
                {
                    "flagged": False,
                    "categories": {c: False for c in cats},
                    "category_scores": {c: round((h >> i) % 1000 / 1e6, 6) for i, c in enumerate(cats)},
                }
            ],
        }
    if endpoint in ("/v1/images/generations", "/v1/images/edits"):
        return {
            "created": created,
            "data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}],
            "usage": {
                "input_tokens": in_tok,
                "input_tokens_details": {"text_tokens": in_tok, "image_tokens": 0},
                "output_tokens": out_tok,
                "total_tokens": total,
            },
        }
    if endpoint == "/v1/videos":
        return {
            "id": _hexid("video_", h, 32),
            "object": "video",
            "created_at": created,
            "completed_at": created,
            "status": "completed",
            "model": model,
            "progress": 100,
            "seconds": str(body.get("seconds", "4")),
            "size": body.get("size", "720x1280"),
            "error": None,
        }
    return {"object": "unknown", "model": model}


def failure_body(status, custom_id, h):
    if status == 429:
        return {
            "error": {
                "message": "Rate limit reached for requests. Please try again later.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    if status >= 500:
        return {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return {
        "error": {
            "message": "Invalid value for 'messages': the request body failed validation (request %s)." % custom_id,
            "type": "invalid_request_error",
            "param": "messages",
            "code": "invalid_value",
        }
    }
