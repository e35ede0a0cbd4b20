"""Telling people about jobs, through the existing rules and channels, exactly once.

Two events: ``job_finished`` (completed or cancelled) and ``job_held`` (its waiting chunks held by the
queue for more than an hour). The recipients are every rule of the project (each rule's channel and
target once, whatever its kind) and the job's creator when their identity is an email address. The
rows are ``batches.Notification`` rows keyed ``job-<id>`` in place of a batch id, so the unique key makes
each message once-only however many workers notice the event, and the existing task sends and retries it.
"""

from __future__ import annotations

from django.core.validators import validate_email
from django.core.exceptions import ValidationError
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from ..conf import conf
from ..models import Notification, NotificationRule
from ..notify.channels import Message
from ..notify.rules import _record
from ..projects import get_project
from .models import Job

FINISHED = "job_finished"
HELD = "job_held"
#: How each event reads in the notification history.
LABELS = {FINISHED: "job finished", HELD: "job held by the queue"}


def job_key(job: Job) -> str:
    return f"job-{job.pk}"


def _recipients(job: Job) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for rule in NotificationRule.objects.filter(project=job.project):
        found.setdefault(f"{rule.channel}:{rule.target}", f"rule: {rule.get_kind_display()}")
    try:
        validate_email(job.created_by)
    except ValidationError:
        pass
    else:
        found.setdefault(f"email:{job.created_by}", "you created this job")
    return list(found.items())


def _notify(job: Job, event: str) -> bool:
    now = timezone.now()
    created = []
    for recipient, reason in _recipients(job):
        created += _record(job.project, job_key(job), event, recipient, reason, now)
    return bool(created)


def job_ended(job: Job) -> bool:
    return _notify(job, FINISHED)


def job_held(job: Job) -> bool:
    return _notify(job, HELD)


def job_link(project: str, job_id: int) -> str:
    path = reverse("batches:job_detail", args=[project, job_id])
    prefix = get_script_prefix()
    if path.startswith(prefix):
        path = path[len(prefix):]
    return f"{conf().public_url.rstrip('/')}/{path.lstrip('/')}"


def message(row: Notification) -> Message:
    job_id = int(row.batch_id.removeprefix("job-"))
    job = Job.objects.filter(pk=job_id, project=row.project).first()
    project = get_project(row.project)
    project_name = project.name if project else row.project
    name = job.name if job else row.batch_id
    if job is None:
        body = f"Job {row.batch_id} no longer exists."
    elif row.event == HELD:
        body = (f"Job “{name}” has waited for room in the enqueued-token queue since "
                f"{job.held_since:%Y-%m-%d %H:%M} UTC; its running batches go on.")
    else:
        done = sum(chunk.succeeded for chunk in job.chunks.filter(home__isnull=True))
        failed = sum(chunk.failed for chunk in job.chunks.filter(home__isnull=True))
        ended = {Job.Status.FAILED: "failed"}.get(job.status, f"is {job.status}")
        body = (f"Job “{name}” {ended}: {done:,} of {job.total_requests:,} requests succeeded, "
                f"{failed:,} failed for good.")
    if row.reason:
        body += f"\nWhy you get this: {row.reason}."
    label = "held by the queue" if row.event == HELD else "finished"
    return Message(subject=f"[{project_name}] Job {name}: {label}", body=body, link=job_link(row.project, job_id))
