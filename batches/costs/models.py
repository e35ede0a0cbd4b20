"""What the money features keep: alerts raised (once each), billed costs and batch usage per day as
the Admin API reports them, and the lease of the billing pass."""

from __future__ import annotations

from django.db import models

from ..models import LeasedPass


class CostAlert(models.Model):
    """A budget threshold crossed in a month, or a drift found on a day, recorded *before* anyone is
    told (the ``Flip`` of healthchecks): the unique key lets exactly one worker record it, and only
    that worker creates the notifications, so each is sent once however many workers race."""

    class Kind(models.TextChoices):
        BUDGET = "budget", "budget threshold reached"
        DRIFT = "drift", "billed costs drift from the estimates"

    project = models.CharField(max_length=40)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    #: "2026-12" (the month of a budget threshold) or "2026-12-06" (the UTC day a drift was raised).
    period = models.CharField(max_length=10)
    #: The threshold in percent of the budget ("80"); empty for a drift.
    level = models.CharField(max_length=16, blank=True)
    #: The month-to-date spend (budget) or the estimate over the compared days (drift), US dollars.
    estimated_usd = models.DecimalField(max_digits=18, decimal_places=6)
    #: The monthly budget (budget) or the billed amount over the compared days (drift), US dollars.
    reference_usd = models.DecimalField(max_digits=18, decimal_places=6)
    #: What the message says, written when the alert was raised.
    sentence = models.CharField(max_length=400)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "kind", "period", "level"], name="costalert_once")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.project} {self.kind} {self.period} {self.level}"

    @property
    def event(self) -> str:
        """The notification event: with the project and recipient, the once-only key of the message."""
        return ":".join(part for part in (self.kind, self.period, self.level) if part)


class BilledCost(models.Model):
    """One line item of one day's bill for one upstream project (``GET /v1/organization/costs``,
    ``group_by=project_id,line_item``)."""

    #: The OpenAI project id ("proj_…") the bill names; the projects file's ``project`` matches it.
    upstream_project = models.CharField(max_length=200)
    day = models.DateField()
    line_item = models.CharField(max_length=300, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=9)
    currency = models.CharField(max_length=8, default="usd")
    quantity = models.FloatField(null=True)
    quantity_unit = models.CharField(max_length=32, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upstream_project", "day", "line_item", "currency"], name="billedcost_once")
        ]

    def __str__(self) -> str:
        return f"{self.upstream_project} {self.day} {self.line_item}: {self.amount} {self.currency}"


class BilledUsage(models.Model):
    """One model's batch token usage on one day for one upstream project
    (``GET /v1/organization/usage/completions``, ``batch=true``, ``group_by=project_id,model``)."""

    upstream_project = models.CharField(max_length=200)
    day = models.DateField()
    model = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upstream_project", "day", "model"], name="billedusage_once")]

    def __str__(self) -> str:
        return f"{self.upstream_project} {self.day} {self.model}"


class BillingSync(LeasedPass):
    """The billing pass of the organization: its lease (one instance fetches at a time) and how the
    last pass went."""

    name = models.CharField(max_length=40, unique=True)
    first_day = models.DateField(null=True)
    last_day = models.DateField(null=True)

    def __str__(self) -> str:
        return f"billing sync {self.name}"
