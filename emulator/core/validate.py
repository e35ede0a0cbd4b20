"""Validation of a batch's input file: one streaming pass that yields the plan the lifecycle replays.

The plan holds, per request in input order: its byte offset, its outcome (0 = answered, else the HTTP
status of its error line), and its estimated input and output tokens. Input tokens are estimated as
``max(1, bytes of the JSONL line // 4)`` (see README "Queue"). OpenAI and Azure lines are
``{custom_id, method, url, body}``; Anthropic lines ``{custom_id, params}`` (its envelope was
checked when the batch was created, and invalid params become ``errored`` results, provider-specs
NOTES.md §1.4).
"""

import array
import json
import random

from ..responses import stable_hash, token_counts
from .model import MAX_REQUESTS, MAX_REQUESTS_ANTHROPIC, MAX_REQUESTS_AZURE

# Params a Message Batch request may not carry (provider-specs NOTES.md §1.4).
ANTHROPIC_REFUSED = ("stream", "speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")


def _azure_url(url):
    """Azure echoes ``/chat/completions`` while lines say ``/v1/chat/completions`` (NOTES §2.3)."""
    return url[3:] if isinstance(url, str) and url.startswith("/v1/") else url


def _anthropic_outcome(params):
    """400 for params the Messages API would refuse, else 0 (checked when the request runs)."""
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        return 400
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return 400
    if not isinstance(params.get("messages"), list) or not params["messages"]:
        return 400
    if any(params.get(k) for k in ANTHROPIC_REFUSED):
        return 400
    return 0


def _forced_outcome(fail, h, fail_percent, salt):
    """The outcome a line asks for (``"fail": true`` or a status), else a random failure.

    About ``fail_percent`` % of requests fail at random: half of them with 400, chosen by custom_id, so
    a bad request fails every time it is sent; half with 500, chosen by custom_id and batch (``salt``), so
    a server error is transient and a resubmission in another batch usually succeeds (NOTES.md §6.6).
    """
    if fail is True:
        return 400
    if isinstance(fail, int) and not isinstance(fail, bool) and 400 <= fail <= 599:
        return {400: 400, 500: 500, 429: 429}.get(fail, 500 if fail >= 500 else 400)
    if not fail_percent:
        return 0
    if h % 100 < fail_percent and (h >> 8) % 2 == 0:
        return 400
    if ((h ^ salt) * 0x9E3779B97F4A7C15 >> 24) % 200 < fail_percent:
        return 500
    return 0


def validate(b, path, fail_percent, want_custom_ids=False):
    """Parse the input JSONL once, streaming. Returns the plan or the errors."""
    provider = b.provider
    endpoint = b.data["endpoint"]
    if b.forced_errors:
        return {"ok": False, "errors": b.forced_errors, "model": b.forced_model, "total": 0}
    max_requests = {"azure": MAX_REQUESTS_AZURE, "anthropic": MAX_REQUESTS_ANTHROPIC}.get(provider, MAX_REQUESTS)
    errors = []
    seen = set()
    offsets = array.array("Q")
    outcomes = array.array("H")
    in_tok = array.array("I")
    out_tok = array.array("I")
    custom_ids = [] if want_custom_ids else None
    lineno = 0
    first_model = None
    salt = stable_hash(b.data["id"])

    def err(code, message, param=None, line=None):
        if len(errors) < 100:
            errors.append({"code": code, "message": message, "param": param, "line": line})

    if path is None:
        err("invalid_file", "The input file could not be found.")
        return {"ok": False, "errors": errors, "model": None, "total": 0}
    with open(path, "rb") as fh:
        pos = 0
        for raw in fh:
            lineno += 1
            start = pos
            pos += len(raw)
            if not raw.strip():
                continue
            if len(offsets) >= max_requests:
                if provider == "azure":
                    err("too_many_tasks", "The input file contains more than the maximum of %d requests."
                        % max_requests, None, lineno)
                else:
                    err("too_many_requests",
                        "The input file contains more than the maximum of %d requests." % max_requests, None, lineno)
                break
            try:
                obj = json.loads(raw)
            except ValueError:
                err("invalid_json_line", "This line is not parseable as valid JSON.", None, lineno)
                continue
            if not isinstance(obj, dict):
                err("invalid_json_line", "Each line must be a JSON object.", None, lineno)
                continue
            cid = obj.get("custom_id")
            if not isinstance(cid, str) or not cid:
                err("missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id", lineno)
                continue
            if cid in seen:
                err("duplicate_custom_id",
                    "The custom_id for this request is a duplicate of another request. "
                    "The custom_id parameter must be unique for each request in a batch.",
                    "custom_id", lineno)
                continue
            seen.add(cid)
            h = stable_hash(cid)
            if provider == "anthropic":
                params = obj.get("params")
                model = params.get("model") if isinstance(params, dict) else None
                if first_model is None and isinstance(model, str):
                    first_model = (model, lineno)
                outcome = _anthropic_outcome(params) or _forced_outcome(
                    params.get("fail") if isinstance(params, dict) else None, h, fail_percent, salt)
                i_t, o_t = token_counts("anthropic", len(raw), h)
            else:
                if obj.get("method") != "POST":
                    err("invalid_method", "The method for this request must be 'POST'.", "method", lineno)
                    continue
                url = obj.get("url")
                if (url != endpoint) if provider != "azure" else (_azure_url(url) != _azure_url(endpoint)):
                    err("invalid_url" if provider != "azure" else "url_mismatch",
                        "The URL provided for this request does not match the batch endpoint '%s'." % endpoint,
                        "url", lineno)
                    continue
                body = obj.get("body")
                if not isinstance(body, dict):
                    err("missing_required_parameter", "Missing required parameter: 'body'.", "body", lineno)
                    continue
                model = body.get("model")
                if model is not None:
                    if first_model is None:
                        first_model = (model, lineno)
                    elif model != first_model[0]:
                        err("mismatched_model" if provider != "azure" else "model_mismatch",
                            "The provided model '%s' does not match the model '%s' used on line %d. "
                            "Each input file can only include requests to a single model."
                            % (model, first_model[0], first_model[1]),
                            "body.model", lineno)
                        continue
                outcome = _forced_outcome(body.get("fail"), h, fail_percent, salt)
                i_t, o_t = token_counts(endpoint, len(raw), h)
            offsets.append(start)
            outcomes.append(outcome)
            in_tok.append(i_t)
            out_tok.append(o_t)
            if custom_ids is not None:
                custom_ids.append(cid)
    if not errors and not offsets:
        err("empty_file", "The batch input file is empty.")
    if errors:
        return {"ok": False, "errors": errors, "model": None, "total": 0}
    n = len(offsets)
    order = list(range(n))
    random.Random(b.data["id"]).shuffle(order)
    return {
        "ok": True,
        "errors": None,
        "model": first_model[0] if first_model else None,
        "total": n,
        "in_total": sum(in_tok),
        "order": array.array("I", order),
        "offsets": offsets,
        "outcomes": outcomes,
        "in_tok": in_tok,
        "out_tok": out_tok,
        "path": path,
        "custom_ids": custom_ids,
    }


def apply_batch_faults(plan, rules):
    """Apply claimed batch-fault rules to a plan: per-request statuses, expiry share, forced queue refusal."""
    if not plan["ok"]:
        return plan
    for rule in rules:
        if rule.token_limit_exceeded:
            plan["force_token_limit"] = True
        if rule.expire_after is not None:
            plan["expire_after"] = rule.expire_after
        if rule.per_request and plan["custom_ids"] is not None:
            outcomes = plan["outcomes"]
            for i, cid in enumerate(plan["custom_ids"]):
                status = rule.status_for(cid)
                if status is not None:
                    outcomes[i] = status
    plan["custom_ids"] = None
    return plan
