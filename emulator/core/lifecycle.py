"""The time-driven lifecycle of a batch, replayed lazily on the emulator clock.

Every read ticks the batches it returns: ``_tick`` replays the transitions that should have happened
between the last evaluation and "now", using the exact event times (not the time of the read) for
the timestamps. ``advance()`` and, when webhooks are configured, a background ticker also tick every
unfinished batch, so terminal transitions (and their webhooks) happen without anyone reading.

validating -> (queue check) -> in_progress -> finalizing -> completed, or failed / expired /
cancelling -> cancelled (NOTES.md §4). Anthropic batches skip validating and finalizing (0 s).
"""

from .. import ids
from .model import MIN_RATE, WINDOW_SECS
from .outputs import write_outputs
from .validate import apply_batch_faults, validate

INFINITY = float("inf")


class LifecycleMixin:
    def _validate(self, b, path):
        with self.lock:
            want_ids = self._wants_custom_ids(b.project)
            fail_percent = self.fail_percent
        plan = validate(b, path, fail_percent, want_ids)
        with self.lock:
            rules = self._claim_batch_faults(b.project, plan.get("model")) if plan["ok"] else []
            return apply_batch_faults(plan, rules)

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

    def _expiry(self, b):
        if b.expire_t is not None:
            return b.expire_t
        return b.created_t + WINDOW_SECS if b.expires else INFINITY

    def _tick(self, b, now, rng=None):
        if b.static:
            return
        d = b.data
        for _ in range(10):
            exp_t = self._expiry(b)
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
                b.deciding = True
                try:
                    refusal = self._queue_refusal(b, t_end) if v["ok"] else None
                finally:
                    b.deciding = False
                if not v["ok"] or refusal is not None:
                    d["status"] = "failed"
                    d["failed_at"] = int(t_end)
                    d["errors"] = {"object": "list", "data": v["errors"] if refusal is None else [refusal]}
                    self._terminal(b, "failed", t_end)
                    return
                d["status"] = "in_progress"
                d["in_progress_at"] = int(t_end)
                d["request_counts"]["total"] = v["total"]
                b.t0 = t_end
                b.base = 0
                if v.get("expire_after") is not None:
                    b.expire_t = t_end + v["expire_after"] * v["total"] / self._rate(b)
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
        """Write the result files and attach them to the batch (paths come from ``new_file_path``)."""
        v = b.validation
        if not v or not v["ok"]:
            return
        written = write_outputs(b, status, t, self.new_file_path)
        exp = int(t) + (b.output_expires_secs or 30 * 86400)
        for field, (path, filename) in written.items():
            b.data[field] = self.add_file(path, filename, "batch_output", int(t), exp, rng=rng,
                                          project=b.project)["id"]

    def _terminal(self, b, status, t):
        """Called (under the lock) exactly once per terminal transition."""
        self._live.discard(b)
        target = self._webhook_targets.get(b.project) if self._webhooks is not None else None
        if target is None or b.provider == "anthropic":  # Anthropic has no batch webhooks (NOTES §1.10)
            return
        event = {"id": ids.hex_id("evt_"), "object": "event", "type": "batch." + status, "created_at": int(t),
                 "data": {"id": b.data["id"]}}
        self._webhooks.submit(target[0], target[1], event, b.project)
