"""Anthropic's Message Batches API (provider-specs NOTES.md Part 1), served for Anthropic keys.

``POST /v1/messages/batches`` (``{"requests": [{custom_id, params}]}``), ``GET`` list (``after_id`` /
``before_id`` / ``limit``; ``first_id``, ``last_id``, ``has_more``), retrieve, ``POST …/cancel``
(``canceling``, then ``ended`` with ``cancel_initiated_at``), ``GET …/results`` (JSONL, any order:
``succeeded`` / ``errored`` / ``canceled`` / ``expired``) and ``DELETE`` once ended. Keys come as
``x-api-key`` or ``Authorization: Bearer``; errors are ``{"type": "error", "error": {type, message},
"request_id"}`` with a ``request-id`` header. The batch is kept in the core's OpenAI-shaped record and
rendered here: counts stay in ``processing`` until the batch has ended.
"""

import datetime
import json
import re

from .http import ApiError

MAX_BODY = 256 * 1024 * 1024  # 256 MB (NOTES §1.4)
MAX_REQUESTS = 100_000
CUSTOM_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ENDPOINT = "/v1/messages"


def error(req_or_none, status, type_, message):
    body = {"type": "error", "error": {"type": type_, "message": message}}
    if req_or_none is not None:
        body["request_id"] = req_or_none._request_id
    return ApiError(status, message, body=body)


def auth_error(has_key):
    message = "invalid x-api-key" if has_key else "x-api-key header is required"
    return ApiError(401, message, body={"type": "error", "error": {"type": "authentication_error",
                                                                   "message": message}})


def _rfc3339(t):
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render(batch, root_url):
    """A MessageBatch (NOTES §1.3) from the core's record."""
    st = batch["status"]
    ended = st in ("completed", "failed", "expired", "cancelled")
    rc = batch["request_counts"] or {"total": 0, "completed": 0, "failed": 0}
    total = rc["total"] or 0
    counts = {"processing": total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if ended:  # counts only leave "processing" when the whole batch has ended (NOTES §1.3)
        rest = total - rc["completed"] - rc["failed"]
        counts = {"processing": 0, "succeeded": rc["completed"], "errored": rc["failed"],
                  "canceled": rest if st == "cancelled" else 0, "expired": rest if st == "expired" else 0}
    ended_at = batch["completed_at"] or batch["cancelled_at"] or batch["expired_at"] or batch["failed_at"]
    return {
        "id": batch["id"],
        "type": "message_batch",
        "processing_status": "ended" if ended else "canceling" if st == "cancelling" else "in_progress",
        "request_counts": counts,
        "created_at": _rfc3339(batch["created_at"]),
        "expires_at": _rfc3339(batch["expires_at"]),
        "ended_at": _rfc3339(ended_at) if ended else None,
        "cancel_initiated_at": _rfc3339(batch["cancelling_at"]),
        "archived_at": None,
        "results_url": "%s/v1/messages/batches/%s/results" % (root_url, batch["id"]) if ended else None,
    }


def _check_version(req):
    """``anthropic-version`` may be absent (the newest reference marks it optional); a value must be a date."""
    version = req.headers.get("anthropic-version")
    if version is not None and not VERSION_RE.match(version.strip()):
        raise error(req, 400, "invalid_request_error", "anthropic-version: '%s' is not a valid version." % version[:40])


def _not_found(req, bid):
    return error(req, 404, "not_found_error", "No Message Batch found with id '%s'." % bid[:128])


def _send(req, batch):
    req.send(200, render(batch, req.server.emu.root_url))


def _requests(req, body):
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise error(req, 400, "invalid_request_error", "requests: Field required")
    extra = [k for k in body if k != "requests"]
    if extra:
        raise error(req, 400, "invalid_request_error", "%s: Extra inputs are not permitted" % extra[0])
    items = body["requests"]
    if not items:
        raise error(req, 400, "invalid_request_error", "requests: List should have at least 1 item after validation")
    if len(items) > MAX_REQUESTS:
        raise error(req, 400, "invalid_request_error",
                    "requests: List should have at most %d items after validation, not %d" % (MAX_REQUESTS, len(items)))
    seen = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
            raise error(req, 400, "invalid_request_error", "requests.%d.params: Field required" % i)
        cid = item.get("custom_id")
        if not isinstance(cid, str) or not CUSTOM_ID_RE.match(cid):
            raise error(req, 400, "invalid_request_error",
                        "requests.%d.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'" % i)
        if cid in seen:
            raise error(req, 400, "invalid_request_error",
                        "requests.%d.custom_id: Duplicate custom_id '%s'; custom_id values must be unique within a "
                        "batch." % (i, cid))
        seen.add(cid)
    return items


def create(req):
    _check_version(req)
    body = req.read_json(limit=MAX_BODY,
                         too_large=error(req, 413, "request_too_large", "Request exceeds the maximum size of 256 MB."),
                         bad_json=error(req, 400, "invalid_request_error", "The request body is not valid JSON."))
    items = _requests(req, body)
    state = req.state
    path = state.new_file_path()
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps({"custom_id": item["custom_id"], "params": item["params"]}) + "\n")
    f = state.add_file(path, "message_batch_requests.jsonl", "batch", project=req.project)
    b = state.create_batch(f["id"], ENDPOINT, validate=False, project=req.project)
    state.start_validation(b, sync=True)
    _send(req, state.get_batch(b.data["id"], req.project))


def list_batches(req):
    _check_version(req)
    raw = req.arg("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise error(req, 400, "invalid_request_error", "limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise error(req, 400, "invalid_request_error", "limit: Input should be between 1 and 1000")
    after, before = req.arg("after_id") or None, req.arg("before_id") or None
    if after and before:
        raise error(req, 400, "invalid_request_error", "Only one of after_id and before_id may be given.")
    res = req.state.list_page(after, limit, req.project, before=before)
    if res is None:
        cursor = after or before
        raise error(req, 400, "invalid_request_error",
                    "%s: No Message Batch found with id '%s'." % ("after_id" if after else "before_id", cursor[:128]))
    page, has_more = res
    root = req.server.emu.root_url
    req.send(200, {"data": [render(b, root) for b in page], "has_more": has_more,
                   "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None})


def retrieve(req, bid):
    _check_version(req)
    b = req.state.get_batch(bid, req.project)
    if b is None:
        raise _not_found(req, bid)
    _send(req, b)


def cancel(req, bid):
    _check_version(req)
    req.drain()
    b, err = req.state.cancel_batch(bid, project=req.project)
    if err == "not_found":
        raise _not_found(req, bid)
    if err == "conflict":  # not documented; the closest type the API has
        raise error(req, 409, "conflict_error", "Message Batch %s has already ended and cannot be canceled." % bid)
    _send(req, b)


def results(req, bid):
    _check_version(req)
    b = req.state.get_batch(bid, req.project)
    if b is None:
        raise _not_found(req, bid)
    if b["status"] not in ("completed", "failed", "expired", "cancelled") or not b["output_file_id"]:
        raise error(req, 400, "invalid_request_error",
                    "Message Batch %s has not ended yet; its results are available once it has ended." % bid)
    meta, path = req.state.get_file(b["output_file_id"], req.project)
    req.send_file(path, "%s_results.jsonl" % bid, content_type="application/x-jsonl", not_found=_not_found(req, bid))


def delete(req, bid):
    _check_version(req)
    outcome = req.state.delete_batch(bid, req.project)
    if outcome == "not_found":
        raise _not_found(req, bid)
    if outcome == "unfinished":
        raise error(req, 400, "invalid_request_error",
                    "Message Batch %s is still processing; cancel it and wait until it has ended to delete it." % bid)
    req.send(200, {"id": bid, "type": "message_batch_deleted"})


ROUTES = [
    (r"^/v1/messages/batches$", "/v1/messages/batches", {"GET": list_batches, "POST": create}, "anthropic"),
    (r"^/v1/messages/batches/([^/]+)$", "/v1/messages/batches/{id}", {"GET": retrieve, "DELETE": delete},
     "anthropic"),
    (r"^/v1/messages/batches/([^/]+)/cancel$", "/v1/messages/batches/{id}/cancel", {"POST": cancel}, "anthropic"),
    (r"^/v1/messages/batches/([^/]+)/results$", "/v1/messages/batches/{id}/results", {"GET": results},
     "anthropic"),
]
