"""Deterministic seed data.

``seed_state``: ~65 batches across every status, with real small files. They go through the same
lifecycle code as created ones (with longer, per-batch durations), so their timestamps, counts and
output files are consistent, and the non-terminal ones keep progressing with the clock.

``seed_bulk``: many cheap terminal batches (``bulk.Row``, files generated on demand) plus a few
unfinished lifecycle ones, for scale tests and benchmarks.

``seed_projects``: both, for every project, then the snapshot ``state.reset()`` restores.
The random generator is always an argument; this module imports ``state``, never the reverse.
"""

import json
import random

from .bulk import Row
from .core.model import WINDOW_SECS

MODELS = {
    "/v1/chat/completions": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini-2025-08-07", "gpt-4o-2024-08-06"],
    "/v1/responses": ["gpt-5-2025-08-07", "gpt-5-mini", "o4-mini"],
    "/v1/embeddings": ["text-embedding-3-small", "text-embedding-3-large"],
    "/v1/completions": ["gpt-3.5-turbo-instruct"],
    "/v1/moderations": ["omni-moderation-latest"],
    "/v1/images/generations": ["gpt-image-1"],
    "/v1/videos": ["sora-2"],
}
ENDPOINT_WEIGHTS = [
    ("/v1/chat/completions", 50), ("/v1/responses", 25), ("/v1/embeddings", 15), ("/v1/completions", 4),
    ("/v1/moderations", 3), ("/v1/images/generations", 2), ("/v1/videos", 1),
]
TEAMS = ["search", "support", "growth", "research", "billing", "trust-and-safety"]
DESCRIPTIONS = [
    "nightly eval run {n}", "support ticket triage {n}", "product description rewrite batch {n}",
    "embedding refresh for catalog shard {n}", "weekly summarisation job {n}", "classifier backfill {n}",
    "A/B prompt experiment #{n}", "translation of help-center articles (part {n})",
]
PROMPTS = [
    "Summarise the following customer review in one sentence.",
    "Classify the sentiment of this support ticket.",
    "Translate the paragraph into French.",
    "Extract the product attributes as JSON.",
    "Write a short title for this article.",
    "Is this message spam? Answer yes or no.",
]

AZURE_ENDPOINTS = ("/v1/chat/completions", "/v1/responses")
ANTHROPIC_MODELS = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-8"]
# (kind, how many)
PLAN = [
    ("completed", 19), ("completed_some_failed", 10), ("completed_all_failed", 3), ("completed_legacy", 3),
    ("failed_token_limit", 4), ("failed_invalid", 3), ("expired", 4), ("cancelled", 5), ("cancelling", 2),
    ("in_progress", 7), ("finalizing", 3), ("validating", 2),
]


def _pick_endpoint(rng):
    total = sum(w for _, w in ENDPOINT_WEIGHTS)
    x = rng.uniform(0, total)
    for ep, w in ENDPOINT_WEIGHTS:
        x -= w
        if x <= 0:
            return ep
    return ENDPOINT_WEIGHTS[0][0]


def _body(endpoint, model, rng, i):
    prompt = rng.choice(PROMPTS) + " Item %d." % i
    if endpoint == "/v1/chat/completions":
        return {"model": model, "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                             {"role": "user", "content": prompt}], "max_tokens": 256}
    if endpoint == "/v1/responses":
        return {"model": model, "input": prompt}
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return {"model": model, "input": prompt}
    if endpoint == "/v1/completions":
        return {"model": model, "prompt": prompt, "max_tokens": 128}
    if endpoint == "/v1/videos":
        return {"model": model, "prompt": prompt, "seconds": "4"}
    return {"model": model, "prompt": prompt, "size": "1024x1024"}


def _write_input(state, endpoint, model, n, rng, fail_share=0.0, bad_line=None, created=None, name=None,
                 project=None):
    path = state.new_file_path()
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            body = _body(endpoint, model, rng, i)
            if fail_share >= 1.0 or (fail_share and rng.random() < fail_share):
                body["fail"] = rng.choice([400, 400, 500])
            line = {"custom_id": "request-%d" % (i + 1), "method": "POST", "url": endpoint, "body": body}
            if bad_line is not None and i == bad_line:
                kind = rng.choice(["json", "url", "dup"])
                if kind == "json":
                    fh.write('{"custom_id": "request-%d", "method": "POST", "url": ' % (i + 1) + "\n")
                    continue
                if kind == "url":
                    line["url"] = "/v1/completions" if endpoint != "/v1/completions" else "/v1/chat/completions"
                else:
                    line["custom_id"] = "request-1"
            fh.write(json.dumps(line) + "\n")
    return state.add_file(path, name or "batch_input.jsonl", "batch", created_at=created, rng=rng, project=project)


def _metadata(rng, n):
    r = rng.random()
    if r < 0.2:
        return None
    if r < 0.27:
        return {}
    md = {"description": rng.choice(DESCRIPTIONS).format(n=n)}
    if rng.random() < 0.7:
        md["team"] = rng.choice(TEAMS)
    if rng.random() < 0.25:
        md["run_id"] = "run-%04d" % rng.randrange(10000)
    return md


def seed_state(state, rng, project=None):
    """The ~65 hand-planned batches (with files) for one project."""
    now = state.now()
    n = 0
    with state.lock:
        for kind, count in PLAN:
            for _ in range(count):
                n += 1
                _seed_one(state, rng, kind, now, n, project)


def _seed_one(state, rng, kind, now, n, project=None):
    endpoint = _pick_endpoint(rng)
    azure = state.providers[state.project(project)] == "azure"
    if azure and endpoint not in AZURE_ENDPOINTS:  # Azure batches chat and responses only (NOTES §2.3)
        endpoint = "/v1/chat/completions"
    model = rng.choice(MODELS[endpoint])
    big = kind in ("in_progress", "finalizing", "cancelling", "validating")
    lines = rng.randint(100, 1200) if big else rng.randint(3, 40)
    # age of the batch in seconds and its lifecycle parameters
    validate = rng.uniform(15, 240)
    cancel_at = None
    rate = None
    finalize = rng.uniform(30, 900)
    cancel_secs = rng.uniform(20, 300)  # only for cancels in the seeded past; new cancels take CANCEL_SECS
    fail_share = 0.0
    bad_line = None
    if kind.startswith("completed"):
        age = rng.uniform(2 * 3600, 10 * 86400)
        rate = lines / rng.uniform(120, 3 * 3600)
        if kind == "completed_some_failed":
            fail_share = rng.uniform(0.15, 0.4)
        elif kind == "completed_all_failed":
            fail_share = 1.0
    elif kind == "failed_token_limit":
        age = rng.uniform(600, 9 * 86400)
    elif kind == "failed_invalid":
        age = rng.uniform(600, 9 * 86400)
        bad_line = rng.randrange(lines)
    elif kind == "expired":
        age = rng.uniform(1.2 * 86400, 9 * 86400)
        rate = lines * rng.uniform(0.3, 0.9) / WINDOW_SECS
    elif kind == "cancelled":
        age = rng.uniform(86400, 9 * 86400)
        rate = lines / 3600.0
        cancel_at = validate + rng.uniform(60, 3000)
    elif kind == "cancelling":
        age = rng.uniform(1200, 3600)
        validate = 60
        rate = lines / 7200.0
        cancel_at = age - rng.uniform(5, 60)
        cancel_secs = 600  # the real API's upper bound, so the demo shows this status for ~9 minutes
    elif kind == "in_progress":
        age = rng.uniform(600, 5 * 3600)
        validate = 60
        rate = rng.uniform(0.1, 0.9) * lines / (age - validate)
    elif kind == "finalizing":
        age = rng.uniform(3600, 3 * 3600)
        validate = 60
        ago = rng.uniform(30, 120)
        rate = lines / (age - validate - ago)
        finalize = ago + rng.uniform(900, 1800)
    else:  # validating
        age = rng.uniform(5, 90)
        validate = age + rng.uniform(300, 1800)
    created_t = now - age
    name = rng.choice(["requests", "eval", "prompts", "batch_input", "nightly", "catalog"]) + "_%d.jsonl" % n
    f = _write_input(state, endpoint, model, lines, rng, fail_share, bad_line,
                     created=int(created_t) - rng.randint(2, 120), name=name, project=project)
    b = state.create_batch(f["id"], endpoint[3:] if azure else endpoint, metadata=_metadata(rng, n),
                           created_t=created_t, rng=rng, validate=False, project=project)
    b.validate_secs = validate
    b.finalize_secs = finalize
    b.rate = rate
    if kind == "completed_legacy":
        b.legacy = True
        b.data["usage"] = None
    if kind == "failed_token_limit":
        b.forced_model = model
        b.forced_errors = [{
            "code": "token_limit_exceeded",
            "message": "Enqueued token limit reached for %s in organization org-emulator. Limit: 2,000,000 "
                       "enqueued tokens. Please try again once some in_progress batches have been completed."
                       % model,
            "param": None,
            "line": None,
        }]
    state.start_validation(b)
    if cancel_at is not None:
        state.cancel_batch(b.data["id"], at=created_t + cancel_at, project=project, secs=cancel_secs, rng=rng)
    state.tick(b.data["id"], now, rng)
    return b


# ----------------------------------------------------------------------- bulk

BULK_STATUSES = [("completed", 82), ("cancelled", 7), ("failed", 6), ("expired", 5)]
UNFINISHED_KINDS = ["in_progress", "in_progress", "in_progress", "validating", "finalizing"]
BULK_DAYS = 60
RUNS = ["nightly", "weekly", "adhoc", "backfill", "canary"]


def _cumulative(pairs):
    total, out = 0, []
    for value, weight in pairs:
        total += weight
        out.append((total, value))
    return [(w / total, v) for w, v in out]


_BULK_STATUS_CUM = _cumulative(BULK_STATUSES)
_ENDPOINT_CUM = _cumulative(ENDPOINT_WEIGHTS)


def _pick(cum, x):
    for w, v in cum:
        if x <= w:
            return v
    return cum[-1][1]


def _bulk_row(rng, now, n):
    r = rng.random
    status = _pick(_BULK_STATUS_CUM, r())
    endpoint = _pick(_ENDPOINT_CUM, r())
    models = MODELS[endpoint]
    model = models[int(r() * len(models))]
    x = r()
    total = 1 + int(r() * 500) if x < 0.55 else 500 + int(r() * 4500) if x < 0.9 else 5000 + int(r() ** 2 * 45000)
    age = 60 + r() * (BULK_DAYS * 86400 - 60)
    if status == "expired" and age < WINDOW_SECS + 600:
        age = WINDOW_SECS + 600 + r() * (BULK_DAYS - 2) * 86400
    created = int(now - age)
    span = int(now) - 1 - created  # every timestamp of a terminal row is in the past
    validate = 10 + int(r() * 290)
    t_prog = t_mid = None
    completed = failed = 0
    error = None
    if status == "completed":
        x = r()
        share = 0.0 if x < 0.2 else r() * 0.03 if x < 0.9 else 0.1 + r() * 0.4 if x < 0.97 else 1.0
        failed = int(round(total * share))
        completed = total - failed
        work = total / (1.0 + r() * 49)
        finalize = 30 + r() * 1770
        scale = min(1.0, span / (validate + work + finalize + 1))
        t_prog = int(validate * scale)
        t_mid = max(t_prog, int((validate + work) * scale))
        t_end = max(t_mid, int((validate + work + finalize) * scale))
    elif status == "failed":
        t_end = min(validate, span)
        error = ("token_limit_exceeded", None) if r() < 0.6 else ("invalid_json_line", 1 + int(r() * total))
    elif status == "expired":
        t_prog = validate
        done = int(total * r() * 0.9)
        failed = int(done * r() * 0.05)
        completed = done - failed
        t_end = WINDOW_SECS
    else:  # cancelled, maybe before it left validating
        cancel_at = validate * r() if r() < 0.2 else validate + r() * 3 * 3600
        cancel_at = min(cancel_at, span * 0.9)
        if cancel_at >= validate:
            t_prog = validate
            done = int(total * r())
            failed = int(done * r() * 0.05)
            completed = done - failed
        t_mid = int(cancel_at)
        t_end = min(span, t_mid + 3 + int(r() * 597))
    legacy = r() < 0.03
    in_avg = 30 + int(r() * 1500)
    out_avg = 0 if endpoint in ("/v1/embeddings", "/v1/moderations") else 8 + int(r() * 600)
    in_tok = completed * in_avg
    out_tok = completed * out_avg
    cached = int(in_tok * r() * 0.4)
    reasoning = int(out_tok * (0.3 + r() * 0.4)) if model.startswith(("gpt-5", "o4")) else 0
    x = r()
    if x < 0.15:
        metadata = None
    elif x < 0.2:
        metadata = ()
    else:
        metadata = (("description", DESCRIPTIONS[int(r() * len(DESCRIPTIONS))].format(n=n)),)
        if r() < 0.8:
            metadata += (("team", TEAMS[int(r() * len(TEAMS))]),)
        if r() < 0.5:
            metadata += (("run", "%s-%05d" % (RUNS[int(r() * len(RUNS))], n)),)
    return Row("batch_%032x" % rng.getrandbits(128), created, status, endpoint, model, legacy, t_prog, t_mid, t_end,
               total, completed, failed, in_tok, out_tok, cached, reasoning, metadata, error)


def seed_bulk(state, rng, count, unfinished=10, project=None):
    """``count`` batches for one project over the past BULK_DAYS days: ``unfinished`` of them are
    real lifecycle batches created in the last few hours (with small input files), the rest are
    terminal bulk rows without files on disk."""
    unfinished = max(0, min(unfinished, count))
    now = state.now()
    rows = [_bulk_row(rng, now, n) for n in range(1, count - unfinished + 1)]
    state.add_rows(rows, project)
    with state.lock:
        for i in range(unfinished):
            _seed_one(state, rng, UNFINISHED_KINDS[i % len(UNFINISHED_KINDS)], now, count + i, project)


def seed_anthropic(state, rng, project):
    """About 20 Message Batches for an Anthropic project: ended (some with errored requests), canceled,
    expired, still processing and canceling; through the same lifecycle as created ones."""
    now = state.now()
    plan = [("ended", 8), ("ended_errors", 4), ("canceled", 2), ("expired", 2), ("in_progress", 4),
            ("canceling", 1)]
    with state.lock:
        n = 0
        for kind, count in plan:
            for _ in range(count):
                n += 1
                _seed_message_batch(state, rng, kind, now, n, project)


def _seed_message_batch(state, rng, kind, now, n, project):
    lines = rng.randint(100, 900) if kind in ("in_progress", "canceling") else rng.randint(3, 60)
    model = rng.choice(ANTHROPIC_MODELS)
    fail_share = rng.uniform(0.1, 0.4) if kind == "ended_errors" else 0.0
    cancel_at = None
    if kind.startswith("ended"):
        age, rate = rng.uniform(2 * 3600, 9 * 86400), lines / rng.uniform(300, 3 * 3600)
    elif kind == "canceled":
        age, rate = rng.uniform(86400, 9 * 86400), lines / 3600.0
        cancel_at = rng.uniform(60, 3000)
    elif kind == "expired":
        age, rate = rng.uniform(1.2 * 86400, 9 * 86400), lines * rng.uniform(0.3, 0.9) / WINDOW_SECS
    elif kind == "canceling":
        age, rate = rng.uniform(1200, 3600), lines / 7200.0
        cancel_at = age - rng.uniform(5, 60)
    else:  # in_progress
        age = rng.uniform(600, 5 * 3600)
        rate = rng.uniform(0.1, 0.9) * lines / age
    created_t = now - age
    path = state.new_file_path()
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            params = {"model": model, "max_tokens": 512,
                      "messages": [{"role": "user", "content": rng.choice(PROMPTS) + " Item %d." % i}]}
            if fail_share and rng.random() < fail_share:
                params["fail"] = rng.choice([400, 400, 500])
            fh.write(json.dumps({"custom_id": "request-%d" % (i + 1), "params": params}) + "\n")
    f = state.add_file(path, "message_batch_requests.jsonl", "batch", created_at=int(created_t), rng=rng,
                       project=project)
    b = state.create_batch(f["id"], "/v1/messages", created_t=created_t, rng=rng, validate=False, project=project)
    b.rate = rate
    state.start_validation(b, sync=True)
    if cancel_at is not None:
        state.cancel_batch(b.data["id"], at=created_t + cancel_at, project=project,
                           secs=600 if kind == "canceling" else rng.uniform(20, 300), rng=rng)
    state.tick(b.data["id"], now, rng)


def seed_projects(state, seed=True, seed_count=0, seed_unfinished=10):
    """Seed every project (its own generator, so its own ids), then snapshot for ``reset()``.

    The first project uses ``random.Random(42)``, the generator the single-key emulator always used.
    Anthropic projects get Message Batches; the bulk seed (``seed_count``) is for OpenAI projects only.
    """
    for i, label in enumerate(state.projects):
        provider = state.providers[label]
        if seed and provider == "anthropic":
            seed_anthropic(state, random.Random(42 + i), label)
        elif seed:
            seed_state(state, random.Random(42 + i), label)
        if seed_count and provider == "openai":
            seed_bulk(state, random.Random(1_000_003 + i), seed_count, seed_unfinished, label)
    state.mark_seeded()
