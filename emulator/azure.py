"""Azure OpenAI's batch shape (provider-specs NOTES.md Part 2), served for Azure keys.

Versioned paths ``/openai/batches?api-version=…`` and ``/openai/files…`` (``api-version`` required, key in
``api-key``), and the v1 paths ``/openai/v1/batches`` / ``/openai/v1/files`` (key as ``Authorization:
Bearer``; ``api-key`` works too). Bodies are OpenAI's, with Azure's differences: ``endpoint`` may be
``/chat/completions`` (echoed as given) while lines say ``/v1/chat/completions``; the JSONL ``model`` is
the deployment name; up to 100,000 requests (``too_many_tasks``); ``url_mismatch`` / ``model_mismatch``
codes; a completed batch always has an ``error_file_id``; file ``expires_after`` from 259,200 s.

Per-project options (``--azure-option`` / ``POST /_emulator/projects/{label}``):
``quirks`` renders batches the way Azure's REST examples show them (capitalised status, ISO 8601
timestamps, ``null`` request counts while validating, ``""`` for absent file ids: NOTES §2.7), so a
tolerant parser can be tested; ``fail_fast`` answers an over-quota create with HTTP 400
``token_limit_exceeded`` (NOTES §2.4); ``expire: false`` lets batches run past 24 h (NOTES §2.5).
"""

import datetime

from .core.model import TIME_FIELDS
from .http import ApiError
from .openai import batches, files

ENDPOINTS = ("/chat/completions", "/v1/chat/completions", "/responses", "/v1/responses")
EXPIRES_AFTER_RANGE = (259_200, 2_592_000)
ACCESS_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                 "key for an active subscription and use a correct regional API endpoint for your resource.")


def auth_error():
    return ApiError(401, ACCESS_DENIED, body={"error": {"code": "401", "message": ACCESS_DENIED}})


def _iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def quirky(batch):
    """A batch as Azure's REST examples print it (NOTES §2.7)."""
    out = dict(batch)
    out["status"] = batch["status"][:1].upper() + batch["status"][1:]
    for k in TIME_FIELDS:
        if out.get(k) is not None:
            out[k] = _iso(out[k])
    for k in ("output_file_id", "error_file_id"):
        if out.get(k) is None:
            out[k] = ""
    if batch["status"] == "validating":
        out["request_counts"] = {"total": None, "completed": None, "failed": None}
    return out


def _renderer(req):
    if req.state.options[req.project]["quirks"]:
        return quirky
    return batches._same


def _versioned(handler):
    """The versioned paths need ``api-version`` (the SDK always sends it, NOTES §2.2)."""
    def wrapped(req, *args):
        if not req.arg("api-version"):
            req.drain()
            raise ApiError(404, "Resource not found", body={"error": {"code": "404", "message": "Resource not found"}})
        handler(req, *args)

    return wrapped


def create_batch(req):
    body = batches.read_create_body(req, ENDPOINTS)
    state = req.state
    b = state.create_batch(body["input_file_id"], body["endpoint"], "24h", body.get("metadata"),
                           body.get("output_expires_after"), project=req.project, validate=False)
    if state.options[req.project]["fail_fast"]:
        refusal = state.fail_fast_refusal(b)
        if refusal is not None:  # "fail fast" regions answer the create itself (NOTES §2.4)
            raise ApiError(400, refusal["message"], code="token_limit_exceeded")
    else:
        state.start_validation(b)
    req.send(200, _renderer(req)(state.get_batch(b.data["id"], req.project)))


def list_batches(req):
    batches.list_batches(req, render=_renderer(req))


def retrieve_batch(req, bid):
    batches.retrieve_batch(req, bid, render=_renderer(req))


def cancel_batch(req, bid):
    batches.cancel_batch(req, bid, render=_renderer(req))


def upload_file(req):
    files.upload_file(req, seconds_range=EXPIRES_AFTER_RANGE)


def _routes(prefix, wrap):
    template = prefix.replace("\\", "")
    return [
        (r"^%s/batches$" % prefix, template + "/batches",
         {"GET": wrap(list_batches), "POST": wrap(create_batch)}, "azure"),
        (r"^%s/batches/([^/]+)$" % prefix, template + "/batches/{id}", {"GET": wrap(retrieve_batch)}, "azure"),
        (r"^%s/batches/([^/]+)/cancel$" % prefix, template + "/batches/{id}/cancel", {"POST": wrap(cancel_batch)},
         "azure"),
        (r"^%s/files$" % prefix, template + "/files", {"GET": wrap(files.list_files), "POST": wrap(upload_file)},
         "azure"),
        (r"^%s/files/([^/]+)$" % prefix, template + "/files/{id}",
         {"GET": wrap(files.retrieve_file), "DELETE": wrap(files.delete_file)}, "azure"),
        (r"^%s/files/([^/]+)/content$" % prefix, template + "/files/{id}/content",
         {"GET": wrap(files.file_content)}, "azure"),
    ]


ROUTES = _routes("/openai/v1", lambda handler: handler) + _routes("/openai", _versioned)
