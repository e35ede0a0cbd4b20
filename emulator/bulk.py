"""Bulk-seeded terminal batches (``seed_count``): compact rows, dicts built on demand, lazy files.

A row keeps only numbers and shared strings (about 1 KB each, so 200,000 rows fit in ~250 MB),
and its public Batch dict is built when it is read. Its input, output and error files do not
exist on disk: their ids are derived from the batch id by a reversible mapping, so the emulator
can recognise them without an index, and the JSONL is generated the first time one is requested.
Rows never change (they are terminal and static), which is why a reset can share them.
"""

import json
import random
import string

from .responses import failure_body, stable_hash, success_body, token_counts

WINDOW_SECS = 86400
THIRTY_DAYS = 30 * 86400

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_B62_INDEX = {c: i for i, c in enumerate(_BASE62)}
_MOD = 62 ** 22  # 22 base62 digits, the shape of real file ids; > 2**128, so every batch id fits
_MUL = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd and not a multiple of 31: invertible mod 62**22
_MUL_INV = pow(_MUL, -1, _MOD)
_KIND_OFFSETS = {
    "input": 0x5DEECE66D2545F4914F6CDD1D7A3B19,
    "output": 0x2545F4914F6CDD1D5DEECE66D7A3B19C,
    "error": 0x14F6CDD1D5DEECE66D2545F49A3B19C7,
}


def _b62(n):
    out = []
    for _ in range(22):
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return "".join(reversed(out))


def file_id(batch_id, kind):
    """The id of a row's ``input`` / ``output`` / ``error`` file (looks like any other file id)."""
    return "file-" + _b62((int(batch_id[6:], 16) * _MUL + _KIND_OFFSETS[kind]) % _MOD)


def parse_file_id(fid):
    """Candidate (batch_id, kind) pairs a file id could have been derived from."""
    if not fid.startswith("file-") or len(fid) != 27:
        return []
    n = 0
    for c in fid[5:]:
        d = _B62_INDEX.get(c)
        if d is None:
            return []
        n = n * 62 + d
    out = []
    for kind, off in _KIND_OFFSETS.items():
        x = (n - off) * _MUL_INV % _MOD
        if x < 1 << 128:
            out.append(("batch_%032x" % x, kind))
    return out


class Row:
    """One bulk batch. Times are seconds after ``created`` (``key[0]``, in the state's seed epoch)."""

    __slots__ = ("id", "project", "key", "owner", "status", "endpoint", "model", "legacy", "t_prog", "t_mid",
                 "t_end", "total", "completed", "failed", "in_tok", "out_tok", "cached", "reasoning", "metadata",
                 "error", "_data")
    static = True
    is_row = True

    def __init__(self, batch_id, created, status, endpoint, model, legacy, t_prog, t_mid, t_end, total, completed,
                 failed, in_tok, out_tok, cached, reasoning, metadata, error):
        self.id = batch_id
        self.key = (created, batch_id)
        self.project = None
        self.owner = None
        self.status = status
        self.endpoint = endpoint
        self.model = model
        self.legacy = legacy
        self.t_prog = t_prog  # in_progress_at (None when it never left validating)
        self.t_mid = t_mid  # finalizing_at (completed) or cancelling_at (cancelled)
        self.t_end = t_end  # completed_at / failed_at / expired_at / cancelled_at
        self.total = total
        self.completed = completed
        self.failed = failed
        self.in_tok = in_tok
        self.out_tok = out_tok
        self.cached = cached
        self.reasoning = reasoning
        self.metadata = metadata  # None or a tuple of (key, value) pairs
        self.error = error  # failed rows: (code, line or None)
        self._data = None

    # ``state.batches[id].data`` works for rows too (built once, then kept so edits stick).
    @property
    def data(self):
        if self._data is None:
            self._data = self.to_dict(self.owner.shift if self.owner else 0)
            if self.owner is not None:
                self.owner.materialized_rows.append(self)
        return self._data

    def has_file(self, kind):
        if kind == "input":
            return True
        if kind == "output":
            return self.completed > 0
        return self.failed > 0 or (self.status == "expired" and self.completed + self.failed < self.total)

    def to_dict(self, shift):
        if self._data is not None:
            return json.loads(json.dumps(self._data))
        c = self.key[0] + shift
        st = self.status
        end = c + self.t_end
        usage = None
        if not self.legacy:
            usage = {
                "input_tokens": self.in_tok,
                "input_tokens_details": {"cached_tokens": self.cached},
                "output_tokens": self.out_tok,
                "output_tokens_details": {"reasoning_tokens": self.reasoning},
                "total_tokens": self.in_tok + self.out_tok,
            }
        errors = None
        if self.error is not None:
            code, line = self.error
            if code == "token_limit_exceeded":
                msg = ("Enqueued token limit reached for %s in organization org-emulator. Limit: 2,000,000 enqueued "
                       "tokens. Please try again once some in_progress batches have been completed." % self.model)
            else:
                msg = "This line is not parseable as valid JSON."
            errors = {"object": "list", "data": [{"code": code, "message": msg, "param": None, "line": line}]}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": None if self.legacy else self.model,
            "errors": errors,
            "input_file_id": file_id(self.id, "input"),
            "completion_window": "24h",
            "status": st,
            "output_file_id": file_id(self.id, "output") if self.has_file("output") else None,
            "error_file_id": file_id(self.id, "error") if self.has_file("error") else None,
            "created_at": c,
            "in_progress_at": c + self.t_prog if self.t_prog is not None else None,
            "expires_at": c + WINDOW_SECS,
            "finalizing_at": c + self.t_mid if st == "completed" else None,
            "completed_at": end if st == "completed" else None,
            "failed_at": end if st == "failed" else None,
            "expired_at": end if st == "expired" else None,
            "cancelling_at": c + self.t_mid if st == "cancelled" else None,
            "cancelled_at": end if st == "cancelled" else None,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "usage": usage,
            "metadata": dict(self.metadata) if self.metadata is not None else None,
        }


def _request_body(endpoint, model, i):
    prompt = "Summarise item %d in one sentence." % i
    if endpoint == "/v1/chat/completions":
        return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 256}
    if endpoint == "/v1/completions":
        return {"model": model, "prompt": prompt, "max_tokens": 128}
    if endpoint in ("/v1/images/generations", "/v1/videos"):
        return {"model": model, "prompt": prompt}
    return {"model": model, "input": prompt}


def write_file(row, kind, path, shift):
    """Generate one of a row's files at ``path``. Returns (filename, purpose, created_at, expires_at).

    The lines agree with the row's request_counts (which requests failed and the output order are
    drawn from a generator seeded with the batch id); token counts in the lines are not summed back
    into the row's ``usage``, which is only plausible.
    """
    created = row.key[0] + shift
    stem = "batch_%s" % row.id[6:]
    if kind == "input":
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(row.total):
                fh.write(json.dumps({"custom_id": "request-%d" % (i + 1), "method": "POST", "url": row.endpoint,
                                     "body": _request_body(row.endpoint, row.model, i)}) + "\n")
        at = created - 30
        return "%s_input.jsonl" % stem, "batch", at, at + THIRTY_DAYS
    rng = random.Random(row.id)
    processed = row.completed + row.failed
    order = list(range(row.total))
    rng.shuffle(order)
    failed = set(rng.sample(range(processed), row.failed))
    at = created + row.t_end
    with open(path, "w", encoding="utf-8") as fh:
        upto = row.total if row.status == "expired" else processed
        for pos in range(upto):
            i = order[pos]
            cid = "request-%d" % (i + 1)
            h = stable_hash(cid + row.id)
            line_id = "batch_req_%032x" % (h * 0x9E3779B97F4A7C15 % (1 << 128))
            rid = "req_%032x" % (h * 0xC2B2AE3D27D4EB4F % (1 << 128))
            if pos >= processed:
                if kind == "error":
                    fh.write(json.dumps({"id": line_id, "custom_id": cid, "response": None, "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired."}})
                        + "\n")
                continue
            if pos in failed:
                if kind == "error":
                    code = 500 if h % 3 == 0 else 400
                    fh.write(json.dumps({"id": line_id, "custom_id": cid, "response": {
                        "status_code": code, "request_id": rid, "body": failure_body(code, cid, h)}, "error": None})
                        + "\n")
                continue
            if kind == "output":
                body = _request_body(row.endpoint, row.model, i)
                in_t, out_t = token_counts(row.endpoint, 60 + len(json.dumps(body)), h)
                resp = success_body(row.endpoint, body, row.model, h, in_t, out_t, at)
                fh.write(json.dumps({"id": line_id, "custom_id": cid, "response": {
                    "status_code": 200, "request_id": rid, "body": resp}, "error": None}) + "\n")
    return "%s_%s.jsonl" % (stem, kind), "batch_output", at, at + THIRTY_DAYS
