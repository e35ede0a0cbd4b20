"""In-memory store of the emulator: files, batches, time-driven lifecycle, counters and faults.

Everything is guarded by one re-entrant lock (``state.lock``). Batch lifecycles are evaluated
lazily: every read calls ``_tick`` which replays the transitions that should have happened
between the last evaluation and "now" on the emulator clock, using the exact event times
(not the time of the read) for the timestamps. ``advance()`` and, when webhooks are configured,
a background ticker also tick every unfinished batch, so terminal transitions (and their
webhooks) happen without anyone reading.

Projects: every batch and file belongs to one project (a label; the server maps API keys to
labels). ``project=None`` in the Python API means the first project. Each project keeps its
batches in an ascending sorted list of ``(created_at, id)`` keys, so a list page is a bisect
plus a slice, whatever the number of batches.

Seeding lives in ``seed.py`` (which imports this module, never the reverse); ``mark_seeded()``
takes the snapshot that ``reset()`` restores.
"""

import array
import bisect
import collections
import copy
import json
import os
import random
import shutil
import tempfile
import threading
import time

from . import bulk, ids
from .responses import failure_body, stable_hash, success_body, token_counts
from .webhooks import WebhookSender, decode_secret

ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
TERMINAL = ("failed", "completed", "expired", "cancelled")
CANCELLABLE = ("validating", "in_progress", "finalizing")

# Durations in emulated seconds (the clock already includes the speed factor).
VALIDATE_SECS = 2.0
FINALIZE_SECS = 2.0
CANCEL_SECS = 3.0  # every cancel requested after start-up, seeded batches included
MIN_RATE = 10.0  # requests per emulated second (created batches also finish in <= ~60 s)
WINDOW_SECS = 86400
MAX_REQUESTS = 50_000
SYNC_VALIDATE_BYTES = 5 * 1024 * 1024  # bigger input files are validated in a background thread
THIRTY_DAYS = 30 * 86400
FAIL_PERCENT = 5  # share of requests that fail, chosen by custom_id hash

BATCH_FIELDS = (
    "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window", "status",
    "output_file_id", "error_file_id", "created_at", "in_progress_at", "expires_at", "finalizing_at",
    "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "request_counts",
    "usage", "metadata",
)


TIME_FIELDS = ("created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at",
               "expired_at", "cancelling_at", "cancelled_at")


def _copy_data(d):
    """A copy of a batch dict that shares nothing mutable (faster than deepcopy for list pages)."""
    out = dict(d)
    for k, v in d.items():
        if isinstance(v, (dict, list)):
            if k in ("request_counts", "metadata"):
                out[k] = dict(v)
            elif k == "usage":
                out[k] = {uk: dict(uv) if isinstance(uv, dict) else uv for uk, uv in v.items()}
            else:
                out[k] = copy.deepcopy(v)
    return out


def _zero_usage():
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


class _Batch:
    """A batch: ``data`` is the public object; the rest drives the lifecycle."""

    is_row = False

    def __init__(self, data, project):
        self.data = data
        self.project = project
        self.key = None  # (created_at in the seed epoch, id): its place in the project's index
        self.static = False
        self.created_t = float(data["created_at"])
        self.validate_secs = VALIDATE_SECS
        self.finalize_secs = FINALIZE_SECS
        self.cancel_secs = CANCEL_SECS
        self.rate = None  # None = derive from total
        self.forced_errors = None  # batch-level errors to fail with at validation
        self.forced_model = None
        self.legacy = False  # no model/usage (pre Sept 2025 batches)
        self.validation = None  # result dict once validated
        self.validating_thread = None
        self.output_expires_secs = None
        self.done = 0  # processed requests, in processing order
        self.t0 = None  # processing epoch
        self.base = 0  # done at t0
        self.cancel_t = None
        self.cancel_until = None
        self.finalize_t = None

    def clone(self, delta=0):
        """An independent copy with every timestamp moved by ``delta`` seconds (the parsed input is shared)."""
        c = copy.copy(self)
        c.data = _copy_data(self.data)
        c.validating_thread = None
        if delta:
            for k in TIME_FIELDS:
                if c.data.get(k) is not None:
                    c.data[k] += delta
            for k in ("created_t", "t0", "cancel_t", "cancel_until", "finalize_t"):
                if getattr(c, k) is not None:
                    setattr(c, k, getattr(c, k) + delta)
        return c


class _Fault:
    def __init__(self, route, method, status, body, headers, delay, drop, truncate, times, content_type):
        if route and " " in route and method is None:
            method, route = route.split(" ", 1)
        self.route = route
        self.method = method.upper() if method else None
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = float(delay or 0.0)
        self.drop = bool(drop)
        self.truncate = bool(truncate)
        self.times = times
        self.content_type = content_type

    def matches(self, method, route):
        if self.route is not None and self.route != route:
            return False
        if self.method is not None and self.method != method:
            return False
        return True


class EmulatorState:
    def __init__(self, speed=1.0, tmpdir=None, projects=("project1",)):
        projects = list(projects)
        if not projects or len(set(projects)) != len(projects):
            raise ValueError("projects must be a non-empty list of distinct labels")
        self.lock = threading.RLock()
        self.speed = float(speed)
        self._mono0 = time.monotonic()
        self._unix0 = time.time()
        self._offset = 0.0
        self.dir = tmpdir or tempfile.mkdtemp(prefix="openai-emulator-")
        self._own_dir = tmpdir is None
        self.projects = projects
        self.default_project = projects[0]
        self.files = {}  # id -> {"meta": dict, "path": str, "project": label}
        self.batches = {}  # id -> _Batch or bulk.Row, every project
        self._index = {p: [] for p in projects}  # label -> ascending [(created_at - shift, id)]
        self._live = set()  # unfinished lifecycle batches (ticked by advance() and the ticker)
        self.counts = collections.Counter()
        self.requests_by_project = collections.Counter()
        self.connections = 0
        self._faults = []
        self._n = 0
        self.shift = 0  # seconds every seeded timestamp has moved since seeding (see reset())
        self.materialized_rows = []  # bulk rows whose .data was built (dropped on reset)
        self._lazy_deleted = set()  # bulk file ids deleted before they were ever generated
        self._seed_paths = set()
        self._snapshot = None
        self._webhooks = None  # WebhookSender once configure_webhooks() was called
        self._webhook_targets = {}  # label -> (url, secret)
        self._ticker = None
        self._ticker_stop = threading.Event()
        self.mark_seeded()

    # ------------------------------------------------------------------ clock
    def now(self):
        return self._unix0 + (time.monotonic() - self._mono0) * self.speed + self._offset

    def advance(self, seconds):
        """Move the clock forward and tick every unfinished batch (so webhooks fire deterministically)."""
        with self.lock:
            self._offset += float(seconds)
            now = self.now()
            self._tick_live(now)
            return now

    def _tick_live(self, now):
        for b in list(self._live):
            self._tick(b, now)

    # ---------------------------------------------------------------- projects
    def project(self, label=None):
        """The label itself, or the first project's for None; KeyError for an unknown label."""
        if label is None:
            return self.default_project
        if label not in self._index:
            raise KeyError("unknown project %r" % (label,))
        return label

    # --------------------------------------------------------------- counters
    def count(self, key, project=None):
        with self.lock:
            self.counts[key] += 1
            if project is not None:
                self.requests_by_project[project] += 1

    def total_requests(self):
        with self.lock:
            return sum(self.counts.values())

    def reset_counts(self):
        with self.lock:
            self.counts.clear()
            self.requests_by_project.clear()
            self.connections = 0

    def add_connection(self):
        with self.lock:
            self.connections += 1

    def stats(self):
        with self.lock:
            return {
                "counts": dict(self.counts),
                "total": sum(self.counts.values()),
                "connections": self.connections,
                "requests_by_project": {p: self.requests_by_project[p] for p in self.projects},
                "webhook_deliveries": self.webhook_deliveries,
            }

    # ----------------------------------------------------------------- faults
    def inject_fault(self, route=None, method=None, status=None, body=None, headers=None, delay=0.0,
                     drop=False, truncate=False, times=1, content_type=None):
        f = _Fault(route, method, status, body, headers, delay, drop, truncate, times, content_type)
        with self.lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        with self.lock:
            self._faults.clear()

    def take_fault(self, method, route):
        """Return (and consume one use of) the first fault matching this request, or None."""
        with self.lock:
            for f in self._faults:
                if f.matches(method, route):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    # --------------------------------------------------------------- webhooks
    def configure_webhooks(self, url, secrets, retry_delays=None, timeout=5.0, tick_interval=0.5):
        """POST signed batch events to ``url`` (``{project}`` is replaced by the label).

        ``secrets`` is one ``whsec_`` secret for every project or a dict label -> secret; projects
        without a secret get no webhooks. Starts the sender and the background ticker.
        """
        if isinstance(secrets, str):
            secrets = {p: secrets for p in self.projects}
        targets = {}
        for label, secret in dict(secrets).items():
            self.project(label)
            decode_secret(secret)
            targets[label] = (url.replace("{project}", label), secret)
        if not targets:
            raise ValueError("webhooks need at least one secret")
        sender = WebhookSender(**({"retry_delays": retry_delays} if retry_delays is not None else {}),
                               timeout=timeout)
        with self.lock:
            if self._webhooks is not None:
                raise RuntimeError("webhooks are already configured")
            self._webhook_targets = targets
            self._webhooks = sender.start()
        self._ticker_stop.clear()
        self._ticker = threading.Thread(target=self._tick_forever, args=(float(tick_interval),),
                                        name="emulator-ticker", daemon=True)
        self._ticker.start()

    def _tick_forever(self, interval):
        while not self._ticker_stop.wait(interval):
            with self.lock:
                self._tick_live(self.now())

    @property
    def webhook_urls(self):
        """{label: url} of the projects that get webhooks (secrets are not exposed)."""
        return {label: url for label, (url, _) in self._webhook_targets.items()}

    @property
    def webhook_deliveries(self):
        """Copies of the delivery records (event id, type, batch id, project, attempts, last status...)."""
        return self._webhooks.records() if self._webhooks is not None else []

    def wait_for_webhooks(self, timeout=10.0):
        """Wait until every queued webhook was delivered or gave up (no sleeping in tests)."""
        return self._webhooks.wait_idle(timeout) if self._webhooks is not None else True

    def _terminal(self, b, status, t):
        """Called (under the lock) exactly once per terminal transition."""
        self._live.discard(b)
        target = self._webhook_targets.get(b.project) if self._webhooks is not None else None
        if target is None:
            return
        event = {"id": ids.hex_id("evt_"), "object": "event", "type": "batch." + status, "created_at": int(t),
                 "data": {"id": b.data["id"]}}
        self._webhooks.submit(target[0], target[1], event, b.project)

    # ------------------------------------------------------------------ files
    def new_file_path(self):
        with self.lock:
            self._n += 1
            return os.path.join(self.dir, "f%06d.bin" % self._n)

    def add_file(self, path, filename, purpose, created_at=None, expires_at="default", rng=None, project=None):
        size = os.path.getsize(path)
        with self.lock:
            project = self.project(project)
            created = int(created_at if created_at is not None else self.now())
            if expires_at == "default":
                expires_at = created + THIRTY_DAYS if purpose in ("batch", "batch_output") else None
            fid = ids.file_id(rng)
            return self._register_file(fid, path, size, filename, purpose, created, expires_at, project)

    def _register_file(self, fid, path, size, filename, purpose, created, expires_at, project):
        meta = {
            "id": fid,
            "object": "file",
            "bytes": size,
            "created_at": created,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": expires_at,
            "status_details": None,
        }
        self.files[fid] = {"meta": meta, "path": path, "project": project}
        return dict(meta)

    def _bulk_file(self, fid, project):
        """The bulk row a lazily generated file id belongs to, as (row, kind), or None."""
        if fid in self._lazy_deleted:
            return None
        for bid, kind in bulk.parse_file_id(fid):
            row = self.batches.get(bid)
            if row is not None and row.is_row and row.project == project and row.has_file(kind):
                return row, kind
        return None

    def get_file(self, fid, project=None):
        """(meta, path) of a file of this project, or (None, None). Bulk files are generated here."""
        with self.lock:
            project = self.project(project)
            f = self.files.get(fid)
            if f is not None:
                return (dict(f["meta"]), f["path"]) if f["project"] == project else (None, None)
            hit = self._bulk_file(fid, project)
            if hit is None:
                return None, None
            shift = self.shift
        path = self.new_file_path()  # generate outside the lock: a big file takes a moment
        filename, purpose, created, expires = bulk.write_file(hit[0], hit[1], path, shift)
        with self.lock:
            f = self.files.get(fid)
            if f is None:
                self._register_file(fid, path, os.path.getsize(path), filename, purpose, created, expires, project)
                f = self.files[fid]
                path = None
        if path is not None:  # another request generated it first
            os.unlink(path)
        return dict(f["meta"]), f["path"]

    def delete_file(self, fid, project=None):
        with self.lock:
            project = self.project(project)
            f = self.files.get(fid)
            if f is None or f["project"] != project:
                if f is None and self._bulk_file(fid, project) is not None:
                    self._lazy_deleted.add(fid)
                    return True
                return False
            del self.files[fid]
            keep = f["path"] in self._seed_paths  # seeded files survive on disk for reset()
        if not keep:
            try:
                os.unlink(f["path"])
            except OSError:
                pass
        return True

    def list_files(self, project=None):
        with self.lock:
            project = self.project(project)
            return [dict(f["meta"]) for f in self.files.values() if f["project"] == project]

    # ---------------------------------------------------------------- batches
    def _insert(self, b):
        """Add a batch (or bulk row) to ``batches`` and to its project's sorted index."""
        bid = b.data["id"] if not b.is_row else b.id
        old = self.batches.get(bid)
        if old is not None:
            self._index[old.project].remove(old.key)
            self._live.discard(old)
        if not b.is_row:
            b.key = (b.data["created_at"] - self.shift, bid)
        bisect.insort(self._index[b.project], b.key)
        self.batches[bid] = b

    def add_rows(self, rows, project=None):
        """Insert bulk rows (``bulk.Row``) in one go: one sort instead of one insort per row."""
        with self.lock:
            project = self.project(project)
            for r in rows:
                if r.id in self.batches:
                    raise ValueError("duplicate batch id %s" % r.id)
                r.project = project
                r.owner = self
                self.batches[r.id] = r
            keys = self._index[project]
            keys.extend(r.key for r in rows)
            keys.sort()

    def _lookup(self, batch_id, project):
        b = self.batches.get(batch_id)
        return b if b is not None and b.project == project else None

    def _public(self, b):
        return b.to_dict(self.shift) if b.is_row else _copy_data(b.data)

    def create_batch(self, input_file_id, endpoint, completion_window="24h", metadata=None,
                     output_expires_after=None, created_t=None, rng=None, validate=True, project=None):
        """Create a batch in ``validating`` (inputs are assumed to be validated already)."""
        with self.lock:
            project = self.project(project)
            t = self.now() if created_t is None else float(created_t)
            created = int(t)
            data = {k: None for k in BATCH_FIELDS}
            data.update(
                id=ids.batch_id(rng),
                object="batch",
                endpoint=endpoint,
                input_file_id=input_file_id,
                completion_window=completion_window,
                status="validating",
                created_at=created,
                expires_at=created + WINDOW_SECS,
                request_counts={"total": 0, "completed": 0, "failed": 0},
                usage=_zero_usage(),
                metadata=metadata,
            )
            b = _Batch(data, project)
            b.created_t = t
            if output_expires_after:
                b.output_expires_secs = int(output_expires_after["seconds"])
            self._insert(b)
            self._live.add(b)
        if validate:
            self.start_validation(b)
        return b

    def start_validation(self, b):
        with self.lock:
            f = self.files.get(b.data["input_file_id"])
            path = f["path"] if f else None
        size = os.path.getsize(path) if path and os.path.exists(path) else 0
        if size <= SYNC_VALIDATE_BYTES:
            res = self._validate(b, path)
            with self.lock:
                b.validation = res
        else:
            def run():
                res = self._validate(b, path)
                with self.lock:
                    b.validation = res

            th = threading.Thread(target=run, name="emulator-validate", daemon=True)
            b.validating_thread = th
            th.start()

    def add_batch(self, project=None, **fields):
        """Insert a batch with the given public fields. Such batches are static (no lifecycle)."""
        with self.lock:
            project = self.project(project)
            now = int(self.now())
            data = {k: None for k in BATCH_FIELDS}
            data.update(
                id=ids.batch_id(),
                object="batch",
                endpoint="/v1/chat/completions",
                input_file_id=ids.file_id(),
                completion_window="24h",
                status="completed",
                created_at=now,
                request_counts={"total": 0, "completed": 0, "failed": 0},
            )
            data.update(fields)
            if data.get("expires_at") is None and "expires_at" not in fields:
                data["expires_at"] = data["created_at"] + WINDOW_SECS
            b = _Batch(data, project)
            b.static = True
            self._insert(b)
            return copy.deepcopy(data)

    def configure_batch(self, batch_id, rate=None, validate_secs=None, finalize_secs=None, cancel_secs=None):
        """Tune one batch's lifecycle (emulated seconds; rate = requests per emulated second).

        ``cancel_secs`` is how long a cancel of this batch lasts (default CANCEL_SECS); it also
        re-times a cancel already under way.
        """
        with self.lock:
            b = self.batches[batch_id]
            self._tick(b, self.now())
            if rate is not None:
                if b.data["status"] == "in_progress":  # re-anchor processing at the current point
                    b.t0, b.base = self.now(), b.done
                b.rate = float(rate)
            if validate_secs is not None:
                b.validate_secs = float(validate_secs)
            if finalize_secs is not None:
                b.finalize_secs = float(finalize_secs)
            if cancel_secs is not None:
                b.cancel_secs = float(cancel_secs)
                if b.cancel_t is not None:
                    b.cancel_until = b.cancel_t + b.cancel_secs

    def tick(self, batch_id, now=None, rng=None):
        """Evaluate one batch's lifecycle up to ``now`` (``rng`` makes its output file ids deterministic)."""
        with self.lock:
            self._tick(self.batches[batch_id], self.now() if now is None else now, rng)

    def get_batch(self, batch_id, project=None):
        with self.lock:
            b = self._lookup(batch_id, self.project(project))
            if b is None:
                return None
            self._tick(b, self.now())
            return self._public(b)

    def list_batches(self, project=None):
        """All batches of a project, ticked, newest first (created_at desc, then id desc)."""
        with self.lock:
            project = self.project(project)
            now = self.now()
            out = []
            for key in reversed(self._index[project]):
                b = self.batches[key[1]]
                self._tick(b, now)
                out.append(self._public(b))
            return out

    def list_page(self, after=None, limit=20, project=None):
        """One page, newest first: (batches, has_more), or None when ``after`` is not in this project.

        The index is sorted ascending, so "after X, newest first" is the slice just below X's
        position: a bisect and a slice, never a scan. Only the page's batches are ticked.
        """
        with self.lock:
            project = self.project(project)
            keys = self._index[project]
            end = len(keys)
            if after is not None:
                b = self._lookup(after, project)
                if b is None:
                    return None
                end = bisect.bisect_left(keys, b.key)
            start = max(0, end - limit)
            now = self.now()
            page = []
            for key in reversed(keys[start:end]):
                b = self.batches[key[1]]
                self._tick(b, now)
                page.append(self._public(b))
            return page, start > 0

    def cancel_batch(self, batch_id, at=None, project=None, secs=None, rng=None):
        """Returns (batch dict, None) or (None, "not_found") or (batch dict, "conflict").

        The batch stays ``cancelling`` for ``secs`` (default: the batch's cancel_secs, CANCEL_SECS
        unless configured); seeding passes its own durations for cancels in the past.
        """
        with self.lock:
            b = self._lookup(batch_id, self.project(project))
            if b is None:
                return None, "not_found"
            t = self.now() if at is None else at
            self._tick(b, t, rng)
            st = b.data["status"]
            if st == "cancelling":
                return self._public(b), None
            if st not in CANCELLABLE or b.is_row:
                return self._public(b), "conflict"
            b.cancel_t = t
            b.cancel_until = t + (b.cancel_secs if secs is None else float(secs))
            b.data["status"] = "cancelling"
            b.data["cancelling_at"] = int(t)
            return self._public(b), None

    # ------------------------------------------------------------------ reset
    def mark_seeded(self):
        """Remember the current batches and files as the state ``reset()`` restores."""
        with self.lock:
            self._seed_now = self.now() - self._offset
            self._seed_shift = self.shift
            self._seed_paths = {f["path"] for f in self.files.values()}
            self._snapshot = {
                "batches": {bid: (b if b.is_row else b.clone()) for bid, b in self.batches.items()},
                "index": {p: list(k) for p, k in self._index.items()},
                "files": {fid: {"meta": dict(f["meta"]), "path": f["path"], "project": f["project"]}
                          for fid, f in self.files.items()},
            }

    def reset(self):
        """Back to the freshly seeded state, with the clock offset at 0.

        Seeded timestamps move forward by the real time elapsed since seeding (so batches keep
        their ages), faults, counters and webhook records are cleared, files created since are
        removed from disk. Bulk rows are shared with the snapshot (they never change).
        """
        with self.lock:
            snap = self._snapshot
            self._offset = 0.0
            delta = int(self.now() - self._seed_now)
            gone = [f["path"] for f in self.files.values() if f["path"] not in self._seed_paths]
            for r in self.materialized_rows:
                r._data = None
            self.materialized_rows = []
            self.shift = self._seed_shift + delta
            self.batches = {bid: (b if b.is_row else b.clone(delta)) for bid, b in snap["batches"].items()}
            self._index = {p: list(k) for p, k in snap["index"].items()}
            files = {}
            for fid, f in snap["files"].items():
                meta = dict(f["meta"])
                meta["created_at"] += delta
                if meta["expires_at"] is not None:
                    meta["expires_at"] += delta
                files[fid] = {"meta": meta, "path": f["path"], "project": f["project"]}
            self.files = files
            self._live = {b for b in self.batches.values()
                          if not b.is_row and not b.static and b.data["status"] not in TERMINAL}
            self._lazy_deleted = set()
            self._faults.clear()
            self.counts.clear()
            self.requests_by_project.clear()
            self.connections = 0
            if self._webhooks is not None:
                self._webhooks.clear()
        for p in gone:
            try:
                os.unlink(p)
            except OSError:
                pass

    # -------------------------------------------------------------- lifecycle
    def _validate(self, b, path):
        """Parse the input JSONL once, streaming. Returns the plan or the errors."""
        endpoint = b.data["endpoint"]
        if b.forced_errors:
            return {"ok": False, "errors": b.forced_errors, "model": b.forced_model, "total": 0}
        errors = []
        seen = set()
        models = {}
        offsets = array.array("Q")
        outcomes = bytearray()
        in_tok = array.array("I")
        out_tok = array.array("I")
        lineno = 0
        first_model = None

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
                if len(offsets) >= MAX_REQUESTS:
                    err("too_many_requests",
                        "The input file contains more than the maximum of %d requests." % MAX_REQUESTS,
                        None, lineno)
                    break
                try:
                    obj = json.loads(raw)
                except ValueError:
                    err("invalid_json_line",
                        "This line is not parseable as valid JSON.", None, lineno)
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
                if obj.get("method") != "POST":
                    err("invalid_method", "The method for this request must be 'POST'.", "method", lineno)
                    continue
                if obj.get("url") != endpoint:
                    err("invalid_url",
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
                        err("mismatched_model",
                            "The provided model '%s' does not match the model '%s' used on line %d. "
                            "Each input file can only include requests to a single model."
                            % (model, first_model[0], first_model[1]),
                            "body.model", lineno)
                        continue
                    models[model] = True
                h = stable_hash(cid)
                fail = body.get("fail")
                if fail is True:
                    outcome = 1
                elif isinstance(fail, int) and not isinstance(fail, bool) and 400 <= fail <= 599:
                    outcome = {400: 1, 500: 2, 429: 3}.get(fail, 2 if fail >= 500 else 1)
                elif h % 100 < FAIL_PERCENT:
                    outcome = 1 + (h >> 8) % 2
                else:
                    outcome = 0
                i_t, o_t = token_counts(endpoint, len(raw), h)
                offsets.append(start)
                outcomes.append(outcome)
                in_tok.append(i_t)
                out_tok.append(o_t)
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
            "order": array.array("I", order),
            "offsets": offsets,
            "outcomes": outcomes,
            "in_tok": in_tok,
            "out_tok": out_tok,
            "path": path,
        }

    def _rate(self, b):
        if b.rate:
            return b.rate
        total = b.validation["total"] if b.validation else 0
        return max(MIN_RATE, total / 60.0)

    def _process_to(self, b, t):
        v = b.validation
        total = v["total"]
        target = min(total, b.base + int((t - b.t0) * self._rate(b) + 1e-9))
        if target <= b.done:
            return
        rc = b.data["request_counts"]
        usage = b.data["usage"]
        outcomes, order, in_tok, out_tok = v["outcomes"], v["order"], v["in_tok"], v["out_tok"]
        for i in range(b.done, target):
            idx = order[i]
            if outcomes[idx] == 0:
                rc["completed"] += 1
                if usage is not None:
                    usage["input_tokens"] += in_tok[idx]
                    usage["output_tokens"] += out_tok[idx]
                    usage["total_tokens"] += in_tok[idx] + out_tok[idx]
            else:
                rc["failed"] += 1
        b.done = target

    def _tick(self, b, now, rng=None):
        if b.static:
            return
        d = b.data
        exp_t = b.created_t + WINDOW_SECS
        for _ in range(10):
            st = d["status"]
            if st == "validating":
                t_end = b.created_t + b.validate_secs
                if now >= exp_t and (exp_t <= t_end or b.validation is None):
                    self._finish(b, "expired", exp_t, rng)
                    return
                if now < t_end or b.validation is None:
                    return
                v = b.validation
                if not b.legacy:
                    d["model"] = v["model"]
                if not v["ok"]:
                    d["status"] = "failed"
                    d["failed_at"] = int(t_end)
                    d["errors"] = {"object": "list", "data": v["errors"]}
                    self._terminal(b, "failed", t_end)
                    return
                d["status"] = "in_progress"
                d["in_progress_at"] = int(t_end)
                d["request_counts"]["total"] = v["total"]
                b.t0 = t_end
                b.base = 0
            elif st == "in_progress":
                v = b.validation
                t_done = b.t0 + (v["total"] - b.base) / self._rate(b)
                if exp_t < t_done and now >= exp_t:
                    self._process_to(b, exp_t)
                    self._finish(b, "expired", exp_t, rng)
                    return
                if now < t_done:
                    self._process_to(b, now)
                    return
                self._process_to(b, t_done + 1.0)
                d["status"] = "finalizing"
                d["finalizing_at"] = int(t_done)
                b.finalize_t = t_done
            elif st == "finalizing":
                t_end = b.finalize_t + b.finalize_secs
                if now < t_end:
                    return
                self._finish(b, "completed", t_end, rng)
                return
            elif st == "cancelling":
                t_end = b.cancel_until
                if now < t_end:
                    return
                self._finish(b, "cancelled", t_end, rng)
                return
            else:
                return

    def _finish(self, b, status, t, rng=None):
        d = b.data
        self._write_outputs(b, status, t, rng)
        d["status"] = status
        d[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = int(t)
        self._terminal(b, status, t)

    def _write_outputs(self, b, status, t, rng=None):
        """Write output / error JSONL files line by line (processing order != input order)."""
        v = b.validation
        if not v or not v["ok"]:
            return
        d = b.data
        created = int(t)
        model = d["model"] or v["model"]
        endpoint = d["endpoint"]
        out_path, err_path = self.new_file_path(), self.new_file_path()
        n_out = n_err = 0
        order, outcomes, offsets = v["order"], v["outcomes"], v["offsets"]
        upto = v["total"] if status == "expired" else b.done
        with open(v["path"], "rb") as src, open(out_path, "w", encoding="utf-8") as out, \
                open(err_path, "w", encoding="utf-8") as err:
            for i in range(upto):
                idx = order[i]
                src.seek(offsets[idx])
                obj = json.loads(src.readline())
                cid = obj["custom_id"]
                h = stable_hash(cid)
                line_id = "batch_req_" + ("%032x" % (stable_hash(d["id"] + cid) * 0x9E3779B97F4A7C15 % (1 << 128)))
                rid = "req_" + ("%032x" % (h * 0xC2B2AE3D27D4EB4F % (1 << 128)))
                if i >= b.done:
                    rec = {"id": line_id, "custom_id": cid, "response": None,
                           "error": {"code": "batch_expired",
                                     "message": "This request could not be executed before the completion window expired."}}
                    err.write(json.dumps(rec) + "\n")
                    n_err += 1
                    continue
                oc = outcomes[idx]
                if oc == 0:
                    in_t, out_t = v["in_tok"][idx], v["out_tok"][idx]
                    body = success_body(endpoint, obj["body"], model, h, in_t, out_t, created)
                    rec = {"id": line_id, "custom_id": cid,
                           "response": {"status_code": 200, "request_id": rid, "body": body}, "error": None}
                    out.write(json.dumps(rec) + "\n")
                    n_out += 1
                else:
                    code = {1: 400, 2: 500, 3: 429}[oc]
                    rec = {"id": line_id, "custom_id": cid,
                           "response": {"status_code": code, "request_id": rid, "body": failure_body(code, cid, h)},
                           "error": None}
                    err.write(json.dumps(rec) + "\n")
                    n_err += 1
        exp = created + (b.output_expires_secs or THIRTY_DAYS)
        base = "batch_%s" % d["id"][6:]
        if n_out:
            d["output_file_id"] = self.add_file(out_path, base + "_output.jsonl", "batch_output", created, exp,
                                                rng=rng, project=b.project)["id"]
        else:
            os.unlink(out_path)
        if n_err:
            d["error_file_id"] = self.add_file(err_path, base + "_error.jsonl", "batch_output", created, exp,
                                               rng=rng, project=b.project)["id"]
        else:
            os.unlink(err_path)

    # ---------------------------------------------------------------- cleanup
    def close(self):
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        if self._webhooks is not None:
            self._webhooks.close()
        with self.lock:
            threads = [b.validating_thread for b in self.batches.values() if not b.is_row and b.validating_thread]
        for th in threads:
            th.join(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
