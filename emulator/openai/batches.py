"""``/v1/batches``: create, list (``after`` cursor), retrieve, cancel (NOTES.md §1.1-1.4).

Azure serves the same handlers with its own endpoints and renderer (``emulator/azure.py``).
"""

from ..core.model import ENDPOINTS
from ..http import ApiError


def _same(batch):
    return batch


def _metadata(md):
    if md is None:
        return
    if not isinstance(md, dict):
        raise ApiError(400, "Invalid type for 'metadata': expected an object, but got %s instead."
                       % type(md).__name__, param="metadata", code="invalid_type")
    if len(md) > 16:
        raise ApiError(400, "Invalid 'metadata': too many properties. Expected an object with at most 16 "
                            "properties, but got an object with %d properties instead." % len(md),
                       param="metadata", code="object_above_max_properties")
    for k, v in md.items():
        if len(k) > 64:
            raise ApiError(400, "Invalid 'metadata': key '%s...' is longer than 64 characters." % k[:64],
                           param="metadata", code="string_above_max_length")
        if not isinstance(v, str):
            raise ApiError(400, "Invalid type for 'metadata.%s': expected a string, but got %s instead."
                           % (k, type(v).__name__), param="metadata.%s" % k, code="invalid_type")
        if len(v) > 512:
            raise ApiError(400, "Invalid 'metadata.%s': string too long. Expected a string with maximum "
                                "length 512, but got a string with length %d instead." % (k, len(v)),
                           param="metadata.%s" % k, code="string_above_max_length")


def _output_expires_after(oea):
    if oea is None:
        return
    if not isinstance(oea, dict):
        raise ApiError(400, "Invalid type for 'output_expires_after': expected an object.",
                       param="output_expires_after", code="invalid_type")
    if oea.get("anchor") != "created_at":
        raise ApiError(400, "Invalid value for 'output_expires_after.anchor': expected 'created_at'.",
                       param="output_expires_after.anchor", code="invalid_value")
    secs = oea.get("seconds")
    if not isinstance(secs, int) or isinstance(secs, bool) or not 3600 <= secs <= 2592000:
        raise ApiError(400, "Invalid 'output_expires_after.seconds': expected an integer between 3600 and "
                            "2592000.", param="output_expires_after.seconds", code="invalid_value")


def read_create_body(req, endpoints=ENDPOINTS):
    """The checked body of a create request (the same checks for OpenAI and Azure)."""
    body = req.read_json()
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid type for request body: expected an object.", code="invalid_type")
    allowed = {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
    for k in body:
        if k not in allowed:
            raise ApiError(400, "Unrecognized request argument supplied: %s" % k, param=k, code="unknown_parameter")
    for k in ("input_file_id", "endpoint", "completion_window"):
        if body.get(k) is None:
            raise ApiError(400, "Missing required parameter: '%s'." % k, param=k, code="missing_required_parameter")
        if not isinstance(body[k], str):
            raise ApiError(400, "Invalid type for '%s': expected a string, but got %s instead."
                           % (k, type(body[k]).__name__), param=k, code="invalid_type")
    if body["endpoint"] not in endpoints:
        raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                       % (body["endpoint"][:100], ", ".join("'%s'" % e for e in endpoints)),
                       param="endpoint", code="invalid_value")
    if body["completion_window"] != "24h":
        raise ApiError(400, "Invalid value: '%s'. Supported values are: '24h'." % body["completion_window"][:100],
                       param="completion_window", code="invalid_value")
    _metadata(body.get("metadata"))
    _output_expires_after(body.get("output_expires_after"))
    meta, _ = req.state.get_file(body["input_file_id"], req.project)
    if meta is None:
        raise ApiError(404, "No such File object: %s" % body["input_file_id"][:128], param="input_file_id")
    if meta["purpose"] != "batch":
        raise ApiError(400, "The input file %s must have purpose 'batch', but has purpose '%s'."
                       % (meta["id"], meta["purpose"]), param="input_file_id", code="invalid_value")
    return body


def create_batch(req, render=_same):
    body = read_create_body(req)
    b = req.state.create_batch(body["input_file_id"], body["endpoint"], "24h", body.get("metadata"),
                               body.get("output_expires_after"), project=req.project)
    req.send(200, render(req.state.get_batch(b.data["id"], req.project)))


def list_batches(req, render=_same):
    raw = req.arg("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "Invalid 'limit': expected an integer, but got '%s' instead." % raw[:64],
                       param="limit", code="invalid_type") from None
    if limit < 1:
        raise ApiError(400, "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %d "
                            "instead." % limit, param="limit", code="integer_below_min_value")
    if limit > 100:
        raise ApiError(400, "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got %d "
                            "instead." % limit, param="limit", code="integer_above_max_value")
    after = req.arg("after") or None
    res = req.state.list_page(after, limit, req.project)
    if res is None:  # unknown id, or a batch of another project: the same answer
        raise ApiError(400, "No batch found with id '%s'." % after[:128], param="after")
    page, has_more = res
    req.send(200, {
        "object": "list",
        "data": [render(b) for b in page],
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    })


def retrieve_batch(req, bid, render=_same):
    b = req.state.get_batch(bid, req.project)
    if b is None:
        raise ApiError(404, "No batch found with id '%s'." % bid)
    req.send(200, render(b))


def cancel_batch(req, bid, render=_same):
    b, err = req.state.cancel_batch(bid, project=req.project)
    if err == "not_found":
        raise ApiError(404, "No batch found with id '%s'." % bid)
    if err == "conflict":
        raise ApiError(409, "Cannot cancel a batch with status '%s'." % b["status"])
    req.send(200, render(b))


ROUTES = [
    # (path regex, template, {method: handler}, provider kind)
    (r"^/v1/batches$", "/v1/batches", {"GET": list_batches, "POST": create_batch}, "openai"),
    (r"^/v1/batches/([^/]+)$", "/v1/batches/{id}", {"GET": retrieve_batch}, "openai"),
    (r"^/v1/batches/([^/]+)/cancel$", "/v1/batches/{id}/cancel", {"POST": cancel_batch}, "openai"),
]
