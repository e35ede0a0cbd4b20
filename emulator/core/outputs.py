"""Result files written when a batch ends, in each provider's line shape.

OpenAI and Azure (NOTES.md §6.3): an output file of answered requests and an error file of failed
ones (``response.status_code`` >= 400 with the endpoint's error body; expired requests with
``error.code = "batch_expired"``); cancelled batches leave unprocessed requests out of both. Azure
also writes an empty error file when nothing failed (provider-specs NOTES.md §2.6).
Anthropic (provider-specs NOTES.md §1.5): one results file with a line per request: ``succeeded``,
``errored``, and ``canceled`` / ``expired`` for the requests the batch never ran. Lines are written
in processing order, which is not input order.
"""

import json
import os

from ..responses import failure_body, stable_hash, success_body

EXPIRED_ERROR = {"code": "batch_expired",
                 "message": "This request could not be executed before the completion window expired."}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                         403: "permission_error", 404: "not_found_error", 409: "conflict_error",
                         413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
                         529: "overloaded_error"}


def _line_ids(batch_id, cid):
    h = stable_hash(cid)
    line_id = "batch_req_" + ("%032x" % (stable_hash(batch_id + cid) * 0x9E3779B97F4A7C15 % (1 << 128)))
    rid = "req_" + ("%032x" % (h * 0xC2B2AE3D27D4EB4F % (1 << 128)))
    return h, line_id, rid


def anthropic_error_type(status):
    return ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_message(params, model, h, in_t, out_t, text):
    return {"id": "msg_%024x" % (h * 0x9E3779B97F4A7C15 % (1 << 96)), "type": "message", "role": "assistant",
            "model": params.get("model") or model, "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": in_t, "output_tokens": out_t, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "service_tier": "batch"}}


def _anthropic_line(b, obj, i, status, oc, idx, model, created):
    cid = obj["custom_id"]
    v = b.validation
    if i >= b.done:
        kind = "expired" if status == "expired" else "canceled"
        return {"custom_id": cid, "result": {"type": kind}}
    h = stable_hash(cid)
    if oc:
        message = "The request failed (emulated %d) for %s." % (oc, cid)
        if oc == 400:
            message = "params: the request is not a valid Messages request (%s)." % cid
        return {"custom_id": cid, "result": {"type": "errored", "error": {
            "type": "error", "error": {"type": anthropic_error_type(oc), "message": message}}}}
    body = success_body("/v1/chat/completions", {}, model, h, v["in_tok"][idx], v["out_tok"][idx], created)
    text = body["choices"][0]["message"]["content"]
    return {"custom_id": cid, "result": {"type": "succeeded", "message": anthropic_message(
        obj.get("params") or {}, model, h, v["in_tok"][idx], v["out_tok"][idx], text)}}


def write_outputs(b, status, t, new_path):
    """Write the files; returns {batch field: (path, filename)} for the files to attach."""
    v = b.validation
    d = b.data
    created = int(t)
    model = d["model"] or v["model"]
    endpoint = d["endpoint"]
    order, outcomes, offsets = v["order"], v["outcomes"], v["offsets"]
    base = "batch_%s" % d["id"].split("_", 1)[1]
    if b.provider == "anthropic":
        path = new_path()
        upto = v["total"]
        with open(v["path"], "rb") as src, open(path, "w", encoding="utf-8") as out:
            for i in range(upto):
                idx = order[i]
                src.seek(offsets[idx])
                obj = json.loads(src.readline())
                out.write(json.dumps(_anthropic_line(b, obj, i, status, outcomes[idx], idx, model, created)) + "\n")
        return {"output_file_id": (path, "%s_results.jsonl" % d["id"])}
    out_path, err_path = new_path(), new_path()
    n_out = n_err = 0
    upto = v["total"] if status == "expired" else b.done
    with open(v["path"], "rb") as src, open(out_path, "w", encoding="utf-8") as out, \
            open(err_path, "w", encoding="utf-8") as err:
        for i in range(upto):
            idx = order[i]
            src.seek(offsets[idx])
            obj = json.loads(src.readline())
            cid = obj["custom_id"]
            h, line_id, rid = _line_ids(d["id"], cid)
            if i >= b.done:
                err.write(json.dumps({"id": line_id, "custom_id": cid, "response": None,
                                      "error": dict(EXPIRED_ERROR)}) + "\n")
                n_err += 1
                continue
            oc = outcomes[idx]
            if oc == 0:
                body = success_body(endpoint, obj["body"], model, h, v["in_tok"][idx], v["out_tok"][idx], created)
                rec = {"id": line_id, "custom_id": cid,
                       "response": {"status_code": 200, "request_id": rid, "body": body}, "error": None}
                out.write(json.dumps(rec) + "\n")
                n_out += 1
            else:
                rec = {"id": line_id, "custom_id": cid,
                       "response": {"status_code": oc, "request_id": rid, "body": failure_body(oc, cid, h)},
                       "error": None}
                err.write(json.dumps(rec) + "\n")
                n_err += 1
    files = {}
    if n_out:
        files["output_file_id"] = (out_path, base + "_output.jsonl")
    if n_err or (b.provider == "azure" and status == "completed"):
        files["error_file_id"] = (err_path, base + "_error.jsonl")
    for path, kept in ((out_path, "output_file_id" in files), (err_path, "error_file_id" in files)):
        if not kept:
            os.unlink(path)
    return files
