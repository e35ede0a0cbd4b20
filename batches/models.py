"""The audit trail: every create and cancel attempt, written before the upstream call and completed
after it, so nothing is lost when the upstream fails."""

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
    actor = models.CharField(max_length=254)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    file_id = models.CharField(max_length=200, blank=True)
    batch_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.token} {self.state} {self.batch_id}"
