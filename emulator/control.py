"""``/_emulator/*``: the control endpoints tests and demos use (no auth, never counted or faulted).

See emulator/README.md "Control endpoints" for each body.
"""

import time

from .core.faults import BATCH_FAULT_FIELDS
from .http import ApiError

FAULT_FIELDS = {"route", "method", "status", "body", "headers", "delay", "drop", "truncate", "times", "content_type",
                "hang"}


def _object(req):
    body = req.read_json()
    if not isinstance(body, dict):
        raise ApiError(400, "Expected a JSON object.")
    return body


def _checked(body, allowed, what):
    bad = [k for k in body if k not in allowed]
    if bad:
        raise ApiError(400, "Unknown %s argument: %s" % (what, bad[0]), param=bad[0])
    return body


def stats(req):
    req.send(200, req.state.stats())


def reset_counts(req):
    req.state.reset_counts()
    req.send(200, req.state.stats())


def add_fault(req):
    req.state.inject_fault(**_checked(_object(req), FAULT_FIELDS, "fault"))
    req.send(200, {"ok": True})


def clear_faults(req):
    req.state.clear_faults()
    req.send(200, {"ok": True})


def release_hung(req):
    req.drain()
    req.state.release_hung()
    req.send(200, {"ok": True})


def add_batch_fault(req):
    body = _checked(_object(req), BATCH_FAULT_FIELDS, "batch fault")
    try:
        rule = req.state.add_batch_fault(**body)
    except (KeyError, ValueError, TypeError) as e:
        raise ApiError(400, "Invalid batch fault: %s" % e) from None
    req.send(200, rule)


def list_batch_faults(req):
    req.send(200, {"data": req.state.batch_faults()})


def expire_batch(req, bid):
    req.drain()
    b = req.state.expire_batch(bid)
    if b is None:
        raise ApiError(404, "No validating or in_progress batch with id '%s'." % bid)
    req.send(200, b)


def configure_batch(req, bid):
    body = _checked(_object(req), {"rate", "validate_secs", "finalize_secs", "cancel_secs"}, "batch setting")
    if bid not in req.state.batches:
        raise ApiError(404, "No batch with id '%s'." % bid)
    try:
        values = {k: float(v) for k, v in body.items()}
    except (TypeError, ValueError):
        raise ApiError(400, "Batch settings are numbers of (emulated) seconds, and rate requests per second.") \
            from None
    if any(v < 0 for v in values.values()) or values.get("rate") == 0:
        raise ApiError(400, "Batch settings must be positive.")
    req.state.configure_batch(bid, **values)
    req.send(200, req.state.get_batch(bid, req.state.batches[bid].project))


def advance(req):
    body = req.read_json()
    try:
        secs = float(body.get("seconds", 0)) if isinstance(body, dict) else float(body)
    except (TypeError, ValueError):
        raise ApiError(400, "Expected {\"seconds\": <number>}.", param="seconds") from None
    req.send(200, {"ok": True, "now": req.state.advance(secs)})


def reset(req):
    req.drain()
    t = time.monotonic()
    req.state.reset()
    req.send(200, {"ok": True, "ms": round((time.monotonic() - t) * 1000, 2)})


def queue(req):
    project = req.arg("project")
    try:
        labels = [req.state.project(project)] if project else list(req.state.projects)
    except KeyError:
        raise ApiError(404, "No project %r." % project) from None
    req.send(200, {label: req.state.enqueued_tokens(label) for label in labels})


def set_queue(req):
    body = _checked(_object(req), {"project", "model", "tokens"}, "queue")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "Expected {\"project\": label, \"model\": name, \"tokens\": n or null}.", param="model")
    try:
        req.state.set_queue_limit(body.get("project"), body["model"], body.get("tokens"))
    except KeyError:
        raise ApiError(404, "No project %r." % body.get("project")) from None
    except (TypeError, ValueError) as e:
        raise ApiError(400, "Invalid queue limit: %s" % e, param="tokens") from None
    req.send(200, req.state.enqueued_tokens(body.get("project")))


def add_project(req):
    body = _checked(_object(req), {"label", "key", "provider", "quirks", "fail_fast", "expire"}, "project")
    options = {k: body[k] for k in ("quirks", "fail_fast", "expire") if k in body}
    try:
        req.server.emu.add_key(body.get("label"), body.get("key"), body.get("provider", "openai"), options)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    req.send(200, req.state.project_info()[body["label"]])


def set_project(req, label):
    body = _checked(_object(req), {"quirks", "fail_fast", "expire"}, "project option")
    try:
        req.state.set_project_options(label, **body)
    except KeyError:
        raise ApiError(404, "No project %r." % label) from None
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    req.send(200, req.state.project_info()[label])


def settings(req):
    body = _checked(_object(req), {"fail_percent", "cost_skew"}, "setting")
    state = req.state
    try:
        if "fail_percent" in body:
            share = int(body["fail_percent"])
            if not 0 <= share <= 100:
                raise ValueError("fail_percent is a percentage, 0 to 100")
            state.fail_percent = share
        if "cost_skew" in body:
            skew = float(body["cost_skew"])
            if skew <= 0:
                raise ValueError("cost_skew must be positive")
            state.cost_skew = skew
    except (TypeError, ValueError) as e:
        raise ApiError(400, "Invalid setting: %s" % e) from None
    req.send(200, {"fail_percent": state.fail_percent, "cost_skew": state.cost_skew})


ROUTES = [
    (r"^/_emulator/stats$", "/_emulator/stats", {"GET": stats}, "control"),
    (r"^/_emulator/reset-counts$", "/_emulator/reset-counts", {"POST": reset_counts}, "control"),
    (r"^/_emulator/faults$", "/_emulator/faults", {"POST": add_fault, "DELETE": clear_faults}, "control"),
    (r"^/_emulator/faults/release$", "/_emulator/faults/release", {"POST": release_hung}, "control"),
    (r"^/_emulator/batch-faults$", "/_emulator/batch-faults", {"GET": list_batch_faults, "POST": add_batch_fault},
     "control"),
    (r"^/_emulator/batches/([^/]+)/expire$", "/_emulator/batches/{id}/expire", {"POST": expire_batch}, "control"),
    (r"^/_emulator/batches/([^/]+)/configure$", "/_emulator/batches/{id}/configure", {"POST": configure_batch},
     "control"),
    (r"^/_emulator/advance$", "/_emulator/advance", {"POST": advance}, "control"),
    (r"^/_emulator/reset$", "/_emulator/reset", {"POST": reset}, "control"),
    (r"^/_emulator/queue$", "/_emulator/queue", {"GET": queue, "POST": set_queue}, "control"),
    (r"^/_emulator/projects$", "/_emulator/projects", {"POST": add_project}, "control"),
    (r"^/_emulator/projects/([^/]+)$", "/_emulator/projects/{label}", {"POST": set_project}, "control"),
    (r"^/_emulator/settings$", "/_emulator/settings", {"POST": settings}, "control"),
]
