"""Enqueued-token limits per project and model, enforced like the API (NOTES.md §6.6).

A batch's estimated input tokens (the sum over its requests of ``max(1, line bytes // 4)``) count
against its model's limit from the moment it passes validation until it is terminal. A batch that
would take its project's enqueued tokens for that model over the limit is accepted, then ends
``failed`` after validation with ``errors.data[0].code = "token_limit_exceeded"`` and the API's
message. Azure projects with ``fail_fast`` get that refusal at create time as an HTTP 400 instead
(provider-specs NOTES.md §2.4). Anthropic projects have no per-model token queue.
"""

ENQUEUED = ("in_progress", "finalizing", "cancelling")


def _short(n):
    for size, suffix in ((10 ** 9, "B"), (10 ** 6, "M"), (10 ** 3, "K")):
        if n >= size:
            return "%g%s" % (n / size, suffix)
    return str(n)


def token_limit_error(provider, model, limit):
    """The batch error (``errors.data[]`` item) of a refused batch."""
    if provider == "azure":  # worded as Azure reports it (learn.microsoft.com Q&A 2285577)
        message = ("The number of enqueued tokens has surpassed the configured limit of %s for the deployment "
                   "'%s'. Please either increase the limit or try again once the current jobs have finished."
                   % (_short(limit), model))
    else:  # openai/openai-python#2084
        message = ("Enqueued token limit reached for %s in organization org-emulator. Limit: %s enqueued tokens. "
                   "Please try again once some in_progress batches have been completed." % (model, format(limit, ",")))
    return {"code": "token_limit_exceeded", "message": message, "param": None, "line": None}


class QueueMixin:
    def _init_queue(self, queue_tokens):
        self._default_queue = dict(queue_tokens or {})  # model -> tokens, for every project
        self.queue_limits = {p: dict(self._default_queue) for p in self.projects}

    def set_queue_limit(self, project, model, tokens):
        """Set (or with ``tokens=None`` remove) a project's enqueued-token limit for a model."""
        with self.lock:
            project = self.project(project)
            if tokens is None:
                self.queue_limits[project].pop(model, None)
            else:
                if int(tokens) < 1:
                    raise ValueError("a queue limit must be a positive number of tokens")
                self.queue_limits[project][model] = int(tokens)

    def _enqueued(self, project, model, t, exclude=None, validating=False):
        """Estimated input tokens of the project's batches of ``model`` enqueued at time ``t``.

        Batches that pass validation at the same instant are decided oldest first; one whose own
        check is under way (``deciding``) is not counted. ``validating=True`` (Azure's create-time
        check) also counts the batches still validating whose input is valid.
        """
        total = 0
        for c in list(self._live):
            if c is exclude or c.deciding or c.project != project or c.provider == "anthropic":
                continue
            v = c.validation
            if v is None or not v["ok"] or v["model"] != model:
                continue
            if c.data["status"] == "validating":
                t_end = c.created_t + c.validate_secs
                if validating and t_end > t:
                    total += v["in_total"]
                    continue
                if t_end > t or (t_end == t and exclude is not None and c.order > exclude.order):
                    continue  # not through validation yet: it is decided after this one
            self._tick(c, t)
            if c.data["status"] in ENQUEUED:
                total += v["in_total"]
        return total

    def enqueued_tokens(self, project=None):
        """{model: {"enqueued": tokens, "limit": tokens or None}} of a project, now."""
        with self.lock:
            project = self.project(project)
            now = self.now()
            models = set(self.queue_limits[project])
            models.update(c.validation["model"] for c in self._live
                          if c.project == project and c.validation and c.validation["ok"] and c.validation["model"])
            return {m: {"enqueued": self._enqueued(project, m, now), "limit": self.queue_limits[project].get(m)}
                    for m in sorted(models)}

    def _queue_refusal(self, b, t, validating=False):
        """The ``token_limit_exceeded`` error for batch ``b`` passing validation at ``t``, or None."""
        v = b.validation
        if b.provider == "anthropic" or v["model"] is None:
            return None
        limit = self.queue_limits[b.project].get(v["model"])
        if v.get("force_token_limit"):
            return token_limit_error(b.provider, v["model"], limit or v["in_total"])
        if limit is None or self._enqueued(b.project, v["model"], t, b, validating) + v["in_total"] <= limit:
            return None
        return token_limit_error(b.provider, v["model"], limit)

    def fail_fast_refusal(self, b):
        """Azure's create-time check: validate now; the refusal (and the batch removed) or None."""
        self.start_validation(b, sync=True)
        with self.lock:
            v = b.validation
            refusal = self._queue_refusal(b, self.now(), validating=True) if v["ok"] else None
            if refusal is not None:
                self._index[b.project].remove(b.key)
                self._live.discard(b)
                del self.batches[b.data["id"]]
            return refusal
