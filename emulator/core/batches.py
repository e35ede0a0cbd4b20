"""Batches of every project: the per-project sorted index, create, read, list pages, cancel, expire.

Each project keeps its batches in an ascending sorted list of ``(created_at, id)`` keys, so a list page
is a bisect plus a slice, whatever the number of batches; only the page's batches are ticked.
"""

import bisect
import copy
import os
import threading

from .. import ids
from .model import BATCH_FIELDS, CANCELLABLE, SYNC_VALIDATE_BYTES, TERMINAL, WINDOW_SECS, Batch, copy_data, \
    zero_usage


class BatchesMixin:
    """Batch store of ``EmulatorState``."""

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
        return b.to_dict(self.shift) if b.is_row else copy_data(b.data)

    def create_batch(self, input_file_id, endpoint, completion_window="24h", metadata=None,
                     output_expires_after=None, created_t=None, rng=None, validate=True, project=None,
                     batch_id=None):
        """Create a batch in ``validating`` (inputs are assumed to be validated already)."""
        with self.lock:
            project = self.project(project)
            provider = self.providers[project]
            t = self.now() if created_t is None else float(created_t)
            created = int(t)
            data = {k: None for k in BATCH_FIELDS}
            data.update(
                id=batch_id or (ids.hex_id("msgbatch_", 24, rng) if provider == "anthropic" else ids.batch_id(rng)),
                object="batch",
                endpoint=endpoint,
                input_file_id=input_file_id,
                completion_window=completion_window,
                status="validating",
                created_at=created,
                expires_at=created + WINDOW_SECS,
                request_counts={"total": 0, "completed": 0, "failed": 0},
                usage=zero_usage(),
                metadata=metadata,
            )
            b = Batch(data, project, provider)
            b.created_t = t
            self._seq += 1
            b.seq = self._seq
            b.expires = self.options[project].get("expire", True)
            if output_expires_after:
                b.output_expires_secs = int(output_expires_after["seconds"])
            self._insert(b)
            self._live.add(b)
        if validate:
            self.start_validation(b)
        return b

    def start_validation(self, b, sync=False):
        with self.lock:
            f = self.files.get(b.data["input_file_id"])
            path = f["path"] if f else None
        size = os.path.getsize(path) if path and os.path.exists(path) else 0
        if sync or size <= SYNC_VALIDATE_BYTES:
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
            b = Batch(data, project, self.providers[project])
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

    def list_page(self, after=None, limit=20, project=None, before=None):
        """One page, newest first: (batches, has_more), or None when the cursor is not in this project.

        The index is sorted ascending, so "after X, newest first" is the slice just below X's
        position: a bisect and a slice, never a scan. ``before=X`` (Anthropic's ``before_id``) is the
        page just newer than X, and ``has_more`` then says whether even newer ones exist. Only the
        page's batches are ticked.
        """
        with self.lock:
            project = self.project(project)
            keys = self._index[project]
            start, end = max(0, len(keys) - limit), len(keys)
            cursor = after if after is not None else before
            if cursor is not None:
                b = self._lookup(cursor, project)
                if b is None:
                    return None
                pos = bisect.bisect_left(keys, b.key)
                if after is not None:
                    start, end = max(0, pos - limit), pos
                else:
                    start, end = pos + 1, min(len(keys), pos + 1 + limit)
            now = self.now()
            page = []
            for key in reversed(keys[start:end]):
                b = self.batches[key[1]]
                self._tick(b, now)
                page.append(self._public(b))
            return page, (end < len(keys) if before is not None and after is None else start > 0)

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

    def expire_batch(self, batch_id):
        """A fault: the batch's window ends now (processed requests stay, the rest become ``batch_expired``).

        Returns the batch dict, or None unless the batch is validating or in progress.
        """
        with self.lock:
            b = self.batches.get(batch_id)
            if b is None or b.is_row or b.static:
                return None
            now = self.now()
            self._tick(b, now)
            if b.data["status"] not in ("validating", "in_progress"):  # finalizing ones are done with requests
                return None
            b.expires = True
            b.expire_t = now
            self._tick(b, now)
            return self._public(b)

    def delete_batch(self, batch_id, project=None):
        """Remove a finished batch (Anthropic's delete). Returns "deleted", "not_found" or "unfinished"."""
        with self.lock:
            project = self.project(project)
            b = self._lookup(batch_id, project)
            if b is None:
                return "not_found"
            self._tick(b, self.now())
            status = b.status if b.is_row else b.data["status"]
            if status not in TERMINAL:
                return "unfinished"
            self._index[project].remove(b.key)
            del self.batches[batch_id]
            return "deleted"

    def usage_records(self, start, end, providers=("openai",)):
        """Usage of the batches billed in ``[start, end)``: [(project, model, endpoint, t, usage, requests)].

        A batch's usage is billed at the time it ended (completed, expired or cancelled), or now for a
        batch still running (its usage so far). Batches without ``usage`` (legacy) or model are skipped.
        Only batches created up to two windows before ``start`` can end inside the range.
        """
        out = []
        with self.lock:
            now = self.now()
            for project in self.projects:
                if self.providers[project] not in providers:
                    continue
                keys = self._index[project]
                first = bisect.bisect_left(keys, (start - 2 * WINDOW_SECS - self.shift,))
                last = bisect.bisect_left(keys, (end - self.shift,))  # created before the range ends
                for key in keys[first:last]:
                    b = self.batches[key[1]]
                    self._tick(b, now)
                    d = self._public(b)
                    t = d["completed_at"] or d["expired_at"] or d["cancelled_at"]
                    if t is None and d["status"] not in TERMINAL:
                        t = int(now)
                    if t is None or not start <= t < end or not d["usage"] or not d["model"]:
                        continue
                    out.append((project, d["model"], d["endpoint"], t, d["usage"], d["request_counts"]["completed"]))
        return out
