"""A job: one request set of any size, run through the Batch API in chunks until every request has a
final answer (docs/jobs.md).

Per-request state is not a row per request (a 3-million-line job would be 3 million rows). Each
*home* chunk (a contiguous range of input lines, cut when the job is created) keeps one byte per line
in :attr:`Chunk.states` (status and attempts, :mod:`batches.jobs.outcomes`), and its merged answers
in one JSONL file in Django's storage, in input order. Salvage and re-split chunks hold a subset of
one home chunk's lines (their line numbers in a small file next to their input).
"""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        COMPLETED = "completed", "completed"
        CANCELLED = "cancelled", "cancelled"
        FAILED = "failed", "failed"

    project = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    #: Its files in storage: jobs/<folder>/ (batches/jobs/storage.py).
    folder = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    endpoint = models.CharField(max_length=100)
    #: The models of its lines, comma-separated (usually one).
    models_used = models.CharField(max_length=500, blank=True)
    total_requests = models.IntegerField(default=0)
    input_bytes = models.BigIntegerField(default=0)
    estimated_tokens = models.BigIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Since when eligible chunks wait for room in the queue (None: not held).
    held_since = models.DateTimeField(null=True, blank=True)
    #: Why the job failed (a sentence), when status is failed.
    failure = models.TextField(blank=True)
    #: Set once by the pass that tells people the job ended (a conditional UPDATE: exactly once).
    end_noticed = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="job_project_created")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"job {self.pk} {self.name} ({self.status})"

    @property
    def ended(self) -> bool:
        return self.status in ENDED_JOB_STATUSES


ENDED_JOB_STATUSES = frozenset({Job.Status.COMPLETED, Job.Status.CANCELLED, Job.Status.FAILED})


class Chunk(models.Model):
    """One batch's worth of a job's requests, and the batch it became (one per submission)."""

    class State(models.TextChoices):
        QUEUED = "queued", "waiting"
        SUBMITTING = "submitting", "submitting"
        SUBMITTED = "submitted", "running"
        MERGING = "merging", "merging"
        DONE = "done", "done"
        SPLIT = "split", "split"
        DROPPED = "dropped", "dropped"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    #: Position among the job's chunks (home chunks first, in input order).
    number = models.IntegerField()
    #: The home chunk whose lines this one holds (None: this chunk is a home chunk).
    home = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="parts")
    attempt = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    model = models.CharField(max_length=200, blank=True)
    #: Home chunks: their lines are first_line .. first_line + requests - 1 (0-based input lines).
    first_line = models.IntegerField(default=0)
    requests = models.IntegerField(default=0)
    input_bytes = models.BigIntegerField(default=0)
    estimated_tokens = models.BigIntegerField(default=0)
    input_path = models.CharField(max_length=300)
    #: Non-home chunks: the 0-based input line of each of their requests (uint32 array).
    lines_path = models.CharField(max_length=300, blank=True)
    # Home chunks only: one byte per line (outcomes.py), the merged answers file and its counts.
    states = models.BinaryField(null=True, blank=True)
    results_path = models.CharField(max_length=300, blank=True)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    retrying = models.IntegerField(default=0)
    # Submitting: who holds the chunk until when, and what of upload/create is done.
    claimed_by = models.CharField(max_length=64, blank=True)
    claim_until = models.DateTimeField(null=True, blank=True)
    #: Incremented each time the chunk goes back to the queue without counting an attempt
    #: (token_limit_exceeded); part of the batch metadata, so each submission has its own marker.
    submission = models.PositiveSmallIntegerField(default=1)
    file_id = models.CharField(max_length=200, blank=True)
    #: Set just before the create call: a later claimer must look upstream for the marker first.
    create_started_at = models.DateTimeField(null=True, blank=True)
    batch_id = models.CharField(max_length=200, blank=True)
    batch_status = models.CharField(max_length=32, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    token_limit_hits = models.PositiveSmallIntegerField(default=0)
    completed_requests = models.IntegerField(default=0)
    failed_requests = models.IntegerField(default=0)
    input_tokens = models.BigIntegerField(null=True)
    cached_tokens = models.BigIntegerField(null=True)
    output_tokens = models.BigIntegerField(null=True)
    #: The batch-level error when its batch failed (a sentence from the API).
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="chunk_number_once")]
        indexes = [
            models.Index(fields=["state", "not_before"], name="chunk_state_due"),
            models.Index(fields=["batch_id"], name="chunk_batch"),
        ]
        ordering = ["job", "number"]

    def __str__(self) -> str:
        return f"chunk {self.job_id}/{self.number} try {self.attempt} ({self.state})"

    @property
    def is_home(self) -> bool:
        return self.home_id is None


class JobEvent(models.Model):
    """One line of a job's timeline."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32)
    message = models.TextField()
    chunk_number = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["job", "-at"], name="jobevent_job_at")]

    def __str__(self) -> str:
        return f"{self.job_id} {self.kind}: {self.message[:60]}"


class ModelQueue(models.Model):
    """What the scheduler has learned about one model's enqueued-token queue in one project.

    ``budget``: the tokens it allows in flight now (None until a configured budget is known). It starts
    at the configured budget, is halved on ``token_limit_exceeded`` and grows back by a tenth of the
    configured budget with each batch the API accepts. Without a configured budget, ``window`` chunks
    may be in flight: 1 at first, one more per accepted batch, halved on ``token_limit_exceeded``."""

    project = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    budget = models.BigIntegerField(null=True)
    window = models.IntegerField(default=1)
    refusals = models.IntegerField(default=0)
    last_refusal_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "model"], name="modelqueue_once")]

    def __str__(self) -> str:
        return f"{self.project}/{self.model}"


class ProjectTick(models.Model):
    """The chain of scheduling passes of one project: each pass enqueues the next one only if it moves
    ``seq`` on with a conditional UPDATE, so however many wake-ups arrive, one chain goes on."""

    project = models.CharField(max_length=40, unique=True)
    seq = models.BigIntegerField(default=0)
    last_pass_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project} pass {self.seq}"
