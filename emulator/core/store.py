"""In-memory store of the emulator: clock, projects, counters, reset; files, batches, lifecycle,
queue and faults come from the mixins next to this module.

Everything is guarded by one re-entrant lock (``state.lock``). Projects: every batch and file belongs
to one project (a label; the server maps API keys to labels), and every project has a provider shape
(``openai``, ``azure`` or ``anthropic``) and a stable id (``proj_…``). ``project=None`` in the Python
API means the first project.

Seeding lives in ``emulator/seed.py`` (which imports this package, never the reverse);
``mark_seeded()`` takes the snapshot that ``reset()`` restores.
"""

import collections
import hashlib
import os
import shutil
import tempfile
import threading
import time

from ..webhooks import WebhookSender, decode_secret
from .batches import BatchesMixin
from .faults import FaultsMixin
from .files import FilesMixin
from .lifecycle import LifecycleMixin
from .model import FAIL_PERCENT, PROVIDERS, TERMINAL
from .queue import QueueMixin

PROJECT_OPTIONS = ("quirks", "fail_fast", "expire")  # Azure: tolerant-parsing quirks, create-time 400, expiry


def project_id(label):
    """A stable ``proj_`` id for a project label (the same in every run)."""
    return "proj_" + hashlib.sha256(("emulator-project:" + label).encode()).hexdigest()[:24]


class EmulatorState(FilesMixin, BatchesMixin, LifecycleMixin, QueueMixin, FaultsMixin):
    def __init__(self, speed=1.0, tmpdir=None, projects=("project1",), providers=None, options=None,
                 queue_tokens=None, fail_percent=FAIL_PERCENT, cost_skew=1.0):
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
        self.projects = []
        self.providers = {}  # label -> "openai" | "azure" | "anthropic"
        self.options = {}  # label -> {"quirks": bool, "fail_fast": bool, "expire": bool}
        self._index = {}  # label -> ascending [(created_at - shift, id)]
        for label in projects:
            self._add_project(label, (providers or {}).get(label, "openai"), (options or {}).get(label))
        self.default_project = projects[0]
        self.files = {}  # id -> {"meta": dict, "path": str, "project": label}
        self.batches = {}  # id -> Batch or bulk.Row, every project
        self._live = set()  # unfinished lifecycle batches (ticked by advance() and the ticker)
        self.counts = collections.Counter()
        self.requests_by_project = collections.Counter()
        self.connections = 0
        self._fail_percent0 = self.fail_percent = int(fail_percent)
        self._cost_skew0 = self.cost_skew = float(cost_skew)  # the Admin API bills usage x this
        self._init_faults()
        self._init_queue(queue_tokens)
        self._n = 0
        self._seq = 0  # batches created so far (their creation order)
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
        for b in sorted(self._live, key=lambda b: b.order):  # oldest first: the queue sees them in order
            self._tick(b, now)

    # ---------------------------------------------------------------- projects
    def _add_project(self, label, provider, options):
        if provider not in PROVIDERS:
            raise ValueError("unknown provider %r (one of %s)" % (provider, ", ".join(PROVIDERS)))
        options = dict(options or {})
        bad = [k for k in options if k not in PROJECT_OPTIONS]
        if bad:
            raise ValueError("unknown project option %r (one of %s)" % (bad[0], ", ".join(PROJECT_OPTIONS)))
        if options and provider != "azure":
            raise ValueError("project options (%s) are for Azure projects" % ", ".join(PROJECT_OPTIONS))
        self.projects.append(label)
        self.providers[label] = provider
        self.options[label] = {"quirks": bool(options.get("quirks")), "fail_fast": bool(options.get("fail_fast")),
                               "expire": bool(options.get("expire", True))}
        self._index[label] = []

    def add_project(self, label, provider="openai", options=None):
        """A project added at run time (no seeded batches); it survives ``reset()``."""
        with self.lock:
            if label in self._index:
                raise ValueError("project %r exists already" % label)
            self._add_project(label, provider, options)
            self.queue_limits[label] = dict(self._default_queue)

    def set_project_options(self, label, **options):
        with self.lock:
            label = self.project(label)
            if self.providers[label] != "azure":
                raise ValueError("project options are for Azure projects")
            bad = [k for k in options if k not in PROJECT_OPTIONS]
            if bad:
                raise ValueError("unknown project option %r (one of %s)" % (bad[0], ", ".join(PROJECT_OPTIONS)))
            self.options[label].update({k: bool(v) for k, v in options.items()})

    def project(self, label=None):
        """The label itself, or the first project's for None; KeyError for an unknown label."""
        if label is None:
            return self.default_project
        if label not in self._index:
            raise KeyError("unknown project %r" % (label,))
        return label

    def project_info(self):
        return {p: {"id": project_id(p), "provider": self.providers[p], "options": dict(self.options[p])}
                for p in self.projects}

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
                "projects": self.project_info(),
                "hung": self.hung,
                "webhook_deliveries": self.webhook_deliveries,
            }

    # --------------------------------------------------------------- webhooks
    def configure_webhooks(self, url, secrets, retry_delays=None, timeout=5.0, tick_interval=0.5):
        """POST signed batch events to ``url`` (``{project}`` is replaced by the label).

        ``secrets`` is one ``whsec_`` secret for every project or a dict label -> secret; projects
        without a secret (and Anthropic projects, which have no batch webhooks) get none. Starts the
        sender and the background ticker.
        """
        if isinstance(secrets, str):
            secrets = {p: secrets for p in self.projects if self.providers[p] != "anthropic"}
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
                "options": {p: dict(o) for p, o in self.options.items()},
            }

    def reset(self):
        """Back to the freshly seeded state, with the clock offset at 0.

        Seeded timestamps move forward by the real time elapsed since seeding (so batches keep
        their ages); faults (hung requests are released), queue limits, the failure share, cost skew, counters
        and webhook records are back to their start values; files created since are removed from disk.
        Bulk rows are shared with the snapshot (they never change).
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
            self._index = {p: list(snap["index"].get(p, ())) for p in self.projects}
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
            for p, o in snap["options"].items():
                self.options[p] = dict(o)
            self.queue_limits = {p: dict(self._default_queue) for p in self.projects}
            self.fail_percent = self._fail_percent0
            self.cost_skew = self._cost_skew0
            self._faults.clear()
            self._batch_faults.clear()
            self.counts.clear()
            self.requests_by_project.clear()
            self.connections = 0
            if self._webhooks is not None:
                self._webhooks.clear()
        self.release_hung()
        for p in gone:
            try:
                os.unlink(p)
            except OSError:
                pass

    # ---------------------------------------------------------------- cleanup
    def close(self):
        self.release_hung()
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
