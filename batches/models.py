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

    class Outcome(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCESS = "success", "success"
        ERROR = "error", "error"

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
        ]

    def __str__(self) -> str:
        return f"{self.project}/{self.batch_id} {self.status}"


class SyncState(models.Model):
    """Where the sync of one project stands: backfill position, last pass, and the lease that lets
    exactly one instance sync the project at a time."""

    project = models.CharField(max_length=40, unique=True)
    backfill_after = models.CharField(max_length=200, blank=True)
    backfill_done = models.BooleanField(default=False)
    backfill_oldest_created_at = models.BigIntegerField(null=True)
    last_pass_started = models.DateTimeField(null=True)
    last_pass_finished = models.DateTimeField(null=True)
    last_success = models.DateTimeField(null=True)
    last_pass_seconds = models.FloatField(null=True)
    last_pass_calls = models.IntegerField(null=True)
    last_error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires = models.DateTimeField(null=True)

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
