"""OpenAI's Admin API, the two reports the dashboard reads (SDK: ``resources/admin/organization/usage.py``):

``GET /v1/organization/costs`` and ``GET /v1/organization/usage/completions``, for an admin key only
(``--admin-key sk-admin-…``); a project key gets 403 ``Missing scopes: api.usage.read``. Both answer
``{"object": "page", "data": [buckets], "has_more", "next_page"}`` with buckets
``{"object": "bucket", "start_time", "end_time", "results": [...]}`` from ``start_time`` (required) to
``end_time`` (exclusive, default now), ``limit`` buckets per page, and the opaque ``page`` cursor.
They are computed from the emulator's own OpenAI projects: each batch's usage is billed on the day it
ended (a running batch's usage so far, now) at ``prices.batch_price``, times the cost skew.
"""

import base64
import collections

from .core import project_id
from .http import ApiError
from .prices import batch_price

MISSING_SCOPE = ("You have insufficient permissions for this operation. Missing scopes: api.usage.read. Check that "
                 "you have the correct role in your organization (Reader, Writer, Owner) and project (Member, "
                 "Owner), and if you're using a restricted API key, that it has the necessary scopes.")
WIDTHS = {"1d": (86400, 7, 31), "1h": (3600, 24, 168), "1m": (60, 60, 1440)}  # seconds, default, max limit
COST_WIDTHS = {"1d": (86400, 7, 180)}
COMPLETION_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/completions")
COST_GROUPS = ("project_id", "user_id", "line_item", "api_key_id", "api_source")
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "api_source")


def authenticate(req, emu):
    """None (the organization) for an admin key; 403 for a project key; 401 otherwise."""
    auth = req.headers.get("Authorization") or ""
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if key and key in emu.admin_keys:
        return None
    if key and key in emu.key_projects:
        raise ApiError(403, MISSING_SCOPE)
    raise ApiError(401, "Incorrect API key provided. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.", code="invalid_api_key")


def _list(req, name):
    """A list parameter, however it is sent: ``name[]=a&name[]=b`` (the SDK), ``name=a&name=b`` or ``a,b``."""
    values = req.query.get(name + "[]", []) + req.query.get(name, [])
    return [v for value in values for v in value.split(",") if v]


def _int(req, name, default=None):
    raw = req.arg(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, "Missing required parameter: '%s'." % name, param=name,
                           code="missing_required_parameter")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "Invalid '%s': expected an integer." % name, param=name, code="invalid_type") from None


def _buckets(req, widths):
    """(origin, width, page start index, limit, end) of the requested page."""
    width_name = req.arg("bucket_width", "1d")
    if width_name not in widths:
        raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                       % (width_name[:16], ", ".join("'%s'" % w for w in widths)), param="bucket_width",
                       code="invalid_value")
    width, default_limit, max_limit = widths[width_name]
    start = _int(req, "start_time")
    end = _int(req, "end_time", int(req.state.now()))
    limit = _int(req, "limit", default_limit)
    if not 1 <= limit <= max_limit:
        raise ApiError(400, "Invalid 'limit': expected a value between 1 and %d." % max_limit, param="limit",
                       code="invalid_value")
    if end <= start:
        raise ApiError(400, "Invalid 'end_time': it must be after 'start_time'.", param="end_time",
                       code="invalid_value")
    index = 0
    page = req.arg("page")
    if page:
        try:
            index = int(base64.urlsafe_b64decode(page[len("page_"):].encode()).decode())
        except ValueError:
            raise ApiError(400, "Invalid 'page': not a cursor this endpoint returned.", param="page",
                           code="invalid_value") from None
    return start, width, index, limit, end


def _groups(req, allowed):
    groups = _list(req, "group_by")
    bad = [g for g in groups if g not in allowed]
    if bad:
        raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                       % (bad[0][:32], ", ".join("'%s'" % g for g in allowed)), param="group_by",
                       code="invalid_value")
    return groups


def _page(req, start, width, index, limit, end, results_of):
    count = -(-(end - start) // width)
    data = []
    for i in range(index, min(count, index + limit)):
        b_start = start + i * width
        b_end = min(end, b_start + width)
        data.append({"object": "bucket", "start_time": b_start, "end_time": b_end, "results": results_of(b_start,
                                                                                                        b_end)})
    more = index + limit < count
    next_page = "page_" + base64.urlsafe_b64encode(str(index + limit).encode()).decode() if more else None
    req.send(200, {"object": "page", "data": data, "has_more": more, "next_page": next_page})


def _records(req, b_start, b_end):
    projects = set(_list(req, "project_ids"))
    return [r for r in req.state.usage_records(b_start, b_end)
            if not projects or project_id(r[0]) in projects]


def costs(req):
    start, width, index, limit, end = _buckets(req, COST_WIDTHS)
    groups = _groups(req, COST_GROUPS)
    line_items = set(_list(req, "line_items"))
    skew = req.state.cost_skew

    def results_of(b_start, b_end):
        sums = collections.defaultdict(lambda: [0.0, 0])
        for project, model, _, _, usage, _ in _records(req, b_start, b_end):
            cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
            p_in, p_cached, p_out = batch_price(model)
            for item, tokens, price in (("input_tokens", usage["input_tokens"] - cached, p_in),
                                        ("cached_input_tokens", cached, p_cached),
                                        ("output_tokens", usage["output_tokens"], p_out)):
                line = "%s, %s" % (model, item)
                if not tokens or (line_items and line not in line_items):
                    continue
                key = (project_id(project) if "project_id" in groups else None,
                       line if "line_item" in groups else None)
                sums[key][0] += tokens * price / 1e6 * skew
                sums[key][1] += tokens
        return [{"object": "organization.costs.result", "amount": {"value": round(value, 6), "currency": "usd"},
                 "line_item": line, "project_id": proj, "quantity": tokens if line else None,
                 "quantity_unit": "tokens" if line else None, "user_id": None, "api_key_id": None, "api_source": None}
                for (proj, line), (value, tokens) in sorted(sums.items(), key=lambda kv: (kv[0][0] or "",
                                                                                         kv[0][1] or ""))]

    _page(req, start, width, index, limit, end, results_of)


def usage_completions(req):
    start, width, index, limit, end = _buckets(req, WIDTHS)
    groups = _groups(req, USAGE_GROUPS)
    models = set(_list(req, "models"))
    batch_only = req.arg("batch")

    def results_of(b_start, b_end):
        if batch_only == "false":  # every emulated request is a batch request
            return []
        sums = collections.defaultdict(lambda: [0, 0, 0, 0])
        for project, model, endpoint, _, usage, requests in _records(req, b_start, b_end):
            if endpoint not in COMPLETION_ENDPOINTS or (models and model not in models):
                continue
            key = (project_id(project) if "project_id" in groups else None, model if "model" in groups else None)
            row = sums[key]
            row[0] += usage["input_tokens"]
            row[1] += usage["output_tokens"]
            row[2] += (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
            row[3] += requests
        return [{"object": "organization.usage.completions.result", "input_tokens": i, "output_tokens": o,
                 "input_cached_tokens": c, "input_audio_tokens": 0, "output_audio_tokens": 0,
                 "num_model_requests": n, "project_id": proj, "model": model,
                 "batch": True if "batch" in groups else None, "user_id": None, "api_key_id": None,
                 "service_tier": "batch" if "service_tier" in groups else None}
                for (proj, model), (i, o, c, n) in sorted(sums.items(), key=lambda kv: (kv[0][0] or "",
                                                                                        kv[0][1] or ""))]

    _page(req, start, width, index, limit, end, results_of)


ROUTES = [
    (r"^/v1/organization/costs$", "/v1/organization/costs", {"GET": costs}, "admin"),
    (r"^/v1/organization/usage/completions$", "/v1/organization/usage/completions", {"GET": usage_completions},
     "admin"),
]
