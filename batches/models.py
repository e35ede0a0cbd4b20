"""The dashboard's own records: the audit trail (every create and cancel attempt, written before the
upstream call and completed after it), double-submit tokens, and the index of every project's batches
that the sync and the webhooks keep fresh."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "create"
        CANCEL = "cancel", "cancel"
        UPLOAD = "upload", "upload"
        # A job's actions (batches/jobs/services.py); the row's batch_id is "job-<id>".
        JOB_CREATE = "job-create", "job create"
        JOB_PAUSE = "job-pause", "job pause"
        JOB_RESUME = "job-resume", "job resume"
        JOB_CANCEL = "job-cancel", "job cancel"
        JOB_RETRY = "job-retry", "job retry"

    class Outcome(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCESS = "success", "success"
        ERROR = "error", "error"
        #: Stopped by the dashboard before any upstream call (a project's budget: batches/costs/).
        REFUSED = "refused", "refused"

    project = models.CharField(max_length=40, default="default", db_index=True)
    actor = models.CharField(max_length=254, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    batch_id = models.CharField(max_length=200, blank=True, db_index=True)
    file_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    upstream_status = models.PositiveIntegerField(null=True, blank=True)
    upstream_request_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.batch_id or self.file_id} {self.outcome}"


class CreateSubmission(models.Model):
    """One submit of the create form, keyed by the one-time token the form carries.

    The unique token makes a double click or a browser retry find the first submit instead of creating
    a second batch: the API has no idempotency key (NOTES.md §5.3), so the dashboard must be the one
    to say "already done"."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    token = models.CharField(max_length=64, unique=True)
    project = models.CharField(max_length=40, default="default")
    actor = models.CharField(max_length=254)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    file_id = models.CharField(max_length=200, blank=True)
    batch_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.token} {self.state} {self.batch_id}"


class BatchRecord(models.Model):
    """One batch of one project as the index last saw it. Times are the API's unix seconds."""

    project = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    status = models.CharField(max_length=32)
    endpoint = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    created_at = models.BigIntegerField(null=True)
    in_progress_at = models.BigIntegerField(null=True)
    finalizing_at = models.BigIntegerField(null=True)
    completed_at = models.BigIntegerField(null=True)
    failed_at = models.BigIntegerField(null=True)
    expired_at = models.BigIntegerField(null=True)
    cancelling_at = models.BigIntegerField(null=True)
    cancelled_at = models.BigIntegerField(null=True)
    expires_at = models.BigIntegerField(null=True)
    total_requests = models.IntegerField(default=0)
    completed_requests = models.IntegerField(default=0)
    failed_requests = models.IntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    input_tokens = models.BigIntegerField(null=True)
    cached_tokens = models.BigIntegerField(null=True)
    output_tokens = models.BigIntegerField(null=True)
    reasoning_tokens = models.BigIntegerField(null=True)
    total_tokens = models.BigIntegerField(null=True)
    input_file_id = models.CharField(max_length=200, blank=True)
    output_file_id = models.CharField(max_length=200, blank=True)
    error_file_id = models.CharField(max_length=200, blank=True)
    #: Lower-cased ids and metadata values, for the case-insensitive ``q`` search.
    search_text = models.TextField(blank=True)
    raw = models.JSONField(default=dict)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_synced = models.DateTimeField()
    created_by = models.CharField(max_length=254, blank=True)
    #: Which API the batch lives in, and that API's own word for its status (Anthropic's ``ended``).
    #: (Database defaults too: rows written by raw SQL, as some tests and scripts do, stay valid.)
    provider = models.CharField(max_length=16, default="openai", db_default="openai")
    provider_status = models.CharField(max_length=32, blank=True, default="", db_default="")
    #: The model whose prices apply when ``model`` is not one (an Azure deployment's model).
    price_model = models.CharField(max_length=200, blank=True, default="", db_default="")
    #: Usage summed from the result lines when the batch object reports none (Anthropic), per model:
    #: {model: {"input": n, "cached": n, "output": n, "requests": n}}.
    result_usage = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "batch_id"], name="batchrecord_project_batch")]
        indexes = [
            models.Index(fields=["project", "created_at", "batch_id"], name="batchrecord_created"),
            models.Index(fields=["project", "status", "created_at", "batch_id"], name="batchrecord_status"),
            models.Index(fields=["project", "model", "created_at"], name="batchrecord_model"),
            models.Index(fields=["project", "endpoint", "created_at"], name="batchrecord_endpoint"),
            models.Index(fields=["project", "expires_at", "batch_id"], name="batchrecord_expires"),
            models.Index(fields=["project", "failed_requests", "batch_id"], name="batchrecord_failed"),
            models.Index(fields=["created_at", "batch_id"], name="batchrecord_created_all"),
            models.Index(fields=["project", "last_synced"], name="batchrecord_project_synced"),
        ]

    def __str__(self) -> str:
        return f"{self.project}/{self.batch_id} {self.status}"


class LeasedPass(models.Model):
    """A pass that one instance at a time runs, by holding its lease (``lease_owner`` until
    ``lease_expires``), and how its last run went: the sync of a project, the billing pass."""

    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires = models.DateTimeField(null=True)
    last_pass_started = models.DateTimeField(null=True)
    last_success = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True)
    last_pass_calls = models.IntegerField(null=True)

    class Meta:
        abstract = True


class SyncState(LeasedPass):
    """Where the sync of one project stands: backfill position, last pass, and the lease that lets
    exactly one instance sync the project at a time."""

    project = models.CharField(max_length=40, unique=True)
    backfill_after = models.CharField(max_length=200, blank=True)
    backfill_done = models.BooleanField(default=False)
    backfill_oldest_created_at = models.BigIntegerField(null=True)
    last_pass_finished = models.DateTimeField(null=True)
    last_pass_seconds = models.FloatField(null=True)
    #: The project's {status: count} as the last sync pass or refresh left them, valid while the
    #: project's rows still carry ``counts_generation`` (index/query.py: project_counts).
    status_counts = models.JSONField(null=True, blank=True)
    counts_generation = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"sync {self.project}"


class BatchSample(models.Model):
    """An unfinished batch's request counts as one sync pass (or webhook) saw them: the history the
    ETA and the trouble flags are computed from."""

    project = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    taken_at = models.DateTimeField()
    status = models.CharField(max_length=32)
    total_requests = models.IntegerField(default=0)
    completed_requests = models.IntegerField(default=0)
    failed_requests = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["project", "batch_id", "taken_at"], name="batchsample_batch")]


class WorkerHeartbeat(models.Model):
    """The task worker's sign of life: ``manage.py run_worker`` updates its row every few seconds, and
    ``/readyz`` fails when the freshest row is too old (django-tasks-db's worker keeps no such record)."""

    worker_id = models.CharField(max_length=64, unique=True)
    started = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True)

    def __str__(self) -> str:
        return f"worker {self.worker_id}"
# -- notifications (docs/notifications.md) ---------------------------------------------------------


class Watch(models.Model):
    """A person asked to be told when one batch finishes ("Notify me" on the batch page)."""

    project = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    #: The signed-in identity (under proxy/OIDC sign-in it is the email address).
    person = models.CharField(max_length=254)
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "batch_id", "person"], name="watch_once")]
        indexes = [models.Index(fields=["person", "created_at"], name="watch_person")]

    def __str__(self) -> str:
        return f"{self.person} watches {self.project}/{self.batch_id}"


class NotificationRule(models.Model):
    """A project's standing order: tell this address or webhook when a kind of event happens."""

    class Kind(models.TextChoices):
        FAILED_OR_EXPIRED = "failed_or_expired", "any batch failed or expired"
        AT_RISK = "at_risk", "a batch is at risk of expiring unfinished"
        FAILURE_RATE_ABOVE = "failure_rate_above", "a batch finished with a failure rate above a threshold"
        #: batches/costs/: the month's spend reached a budget threshold, or billed costs drifted.
        BUDGET = "budget", "the month's spend reaches a budget threshold, or billed costs drift from the estimates"

    class Channel(models.TextChoices):
        EMAIL = "email", "email"
        SLACK = "slack", "Slack-compatible webhook"

    project = models.CharField(max_length=40, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    #: Percent of finished requests (0–100); only for ``failure_rate_above``.
    threshold = models.FloatField(null=True, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    #: An email address or an incoming-webhook URL (a secret: shown masked).
    target = models.CharField(max_length=500)
    created_by = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.project}: {self.kind} → {self.channel}"


class Notification(models.Model):
    """One message to one recipient about one event of one batch. The unique key is the exactly-once
    guarantee: however often a change is reported (webhook retries, overlapping syncs, several
    instances), inserting the same key again is ignored, so there is one row and one send."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    project = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    #: "completed", "failed", "expired", "cancelled", "at_risk" or "failure_rate".
    event = models.CharField(max_length=32)
    #: ``email:<address>`` or ``slack:<webhook url>``.
    recipient = models.CharField(max_length=520)
    #: Why this recipient is told (a watch, or which rule), for the message and the history page.
    reason = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "batch_id", "event", "recipient"], name="notification_once")
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["project", "created_at"], name="notification_project"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.project}/{self.batch_id} {self.event} → {self.recipient} ({self.state})"

    @property
    def channel(self) -> str:
        return self.recipient.partition(":")[0]

    @property
    def target(self) -> str:
        return self.recipient.partition(":")[2]

    @property
    def job_id(self) -> int | None:
        """The job a job notification is about (batches/jobs/notify.py keys them ``job-<id>``), else None."""
        prefix, _, number = self.batch_id.partition("-")
        return int(number) if prefix == "job" and number.isdigit() else None


class WebhookDelivery(models.Model):
    """One verified webhook delivery, by its ``webhook-id``. Deliveries are at-least-once (NOTES.md
    §6.4): the unique key makes a replay a no-op (insert-or-ignore), not a second refresh."""

    project = models.CharField(max_length=40)
    webhook_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100, blank=True)
    batch_id = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "webhook_id"], name="webhookdelivery_unique")]
        indexes = [models.Index(fields=["received_at"], name="webhookdelivery_received")]

    def __str__(self) -> str:
        return f"{self.project} {self.webhook_id} {self.event_type}"
class ResultsJoin(models.Model):
    """The custom_id join of a finished batch's input, output and error files, built once (by the first
    results page view, in whichever worker) and kept: its rows are :class:`ResultsJoinRow`. The unique key
    is claimed before building, so two workers never build the same join at once; a claim older than
    ``batches.results.kept.BUILD_STALE_SECONDS`` is taken over (its builder died)."""

    class State(models.TextChoices):
        BUILDING = "building", "building"
        READY = "ready", "ready"

    project = models.CharField(max_length=40)
    batch_id = models.CharField(max_length=200)
    input_file_id = models.CharField(max_length=200, blank=True)
    output_file_id = models.CharField(max_length=200, blank=True)
    error_file_id = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.BUILDING)
    builder = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField()
    built_at = models.DateTimeField(null=True)
    build_seconds = models.FloatField(null=True)
    input_available = models.BooleanField(default=False)
    total = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    expired = models.IntegerField(default=0)
    not_run = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "batch_id", "input_file_id", "output_file_id", "error_file_id"],
                name="resultsjoin_unique_files",
            )
        ]

    def __str__(self) -> str:
        return f"results of {self.project}/{self.batch_id} ({self.state})"


class ResultsJoinRow(models.Model):
    """One request of a joined batch, at its place in input order (``position``, from 0; results whose
    custom_id is not in the input follow it), with what the results table shows of it. The response body
    is kept as compact JSON (zlib-compressed when it is not tiny) and pretty-printed when shown."""

    join = models.ForeignKey(ResultsJoin, on_delete=models.CASCADE, related_name="rows")
    position = models.IntegerField()
    custom_id = models.TextField()
    outcome = models.CharField(max_length=16)
    unsucceeded = models.BooleanField()
    input_line = models.IntegerField(null=True)
    status_code = models.IntegerField(null=True)
    error_code = models.TextField(null=True)
    error_message = models.TextField(null=True)
    summary = models.TextField(blank=True)
    # batches.results.records.BODY_*: none, compact JSON, zlib-compressed compact JSON, or the cut pretty text.
    body_format = models.SmallIntegerField(default=0)
    body = models.BinaryField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["join", "position"], name="resultsjoinrow_position")]
        indexes = [models.Index(fields=["join", "unsucceeded", "position"], name="resultsjoinrow_unsucceeded")]
