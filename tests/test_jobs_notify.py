"""Job notifications through the existing rules and channels, exactly once: finished, held > 1 h."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.jobs.models import Job
from batches.models import Notification, NotificationRule
from batches.notify.tasks import message_for
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import drive, jsonl, limited_project, make_job, request_line, run_pass

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rule():
    return NotificationRule.objects.create(project="default", kind=NotificationRule.Kind.FAILED_OR_EXPIRED,
                                           channel="email", target="team@example.com", created_by="ops@example.com")


def test_a_finished_job_is_told_once_to_each_rule_and_its_creator_with_a_link_to_the_job(upstream, rule, settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0
    job = drive(upstream, make_job(jsonl([request_line(i) for i in range(5)]), name="nightly"))
    run_pass()
    run_pass()
    rows = Notification.objects.filter(batch_id=f"job-{job.pk}", event="job_finished").order_by("recipient")
    assert [row.recipient for row in rows] == ["email:ops@example.com", "email:team@example.com"]
    message = message_for(rows[0])
    assert message.subject == "[Default] Job nightly: finished"
    assert message.body.startswith("Job “nightly” is completed: ")
    assert message.link.endswith(f"/projects/default/jobs/{job.pk}/")


def test_a_job_none_of_whose_requests_succeeded_has_failed_and_says_so(upstream, rule, settings, client):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0
    job = drive(upstream, make_job(jsonl([request_line(i, fail=400) for i in range(4)]), name="broken"))
    assert job.status == Job.Status.FAILED and job.finished_at is not None
    assert job.events.filter(kind="failed").count() == 1
    run_pass()
    row = Notification.objects.filter(batch_id=f"job-{job.pk}", event="job_finished").first()
    assert message_for(row).body.startswith("Job “broken” failed: 0 of 4 requests succeeded, 4 failed for good.")
    page = client.get(f"/projects/default/jobs/{job.pk}/").content.decode()
    assert '<span class="badge status-failed" id="job-status">failed</span>' in page
    # Its final failures can still be tried once more.
    assert client.post(f"/projects/default/jobs/{job.pk}/retry/").status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING


def test_a_job_held_by_the_queue_for_more_than_an_hour_is_told_once(upstream, rule, write_projects):
    limited_project(write_projects, upstream.base_url, max_requests=5, queue_tokens={"gpt-4o-mini": 1000})
    job = make_job(jsonl([request_line(i) for i in range(10)]))
    run_pass()  # one chunk (~700 estimated tokens) fits the budget and goes
    job.refresh_from_db()
    assert job.held_since is None
    run_pass()  # nothing moves: the second one is held
    run_pass()
    job.refresh_from_db()
    assert job.held_since is not None and job.events.filter(kind="held").count() == 1
    assert not Notification.objects.filter(event="job_held").exists()
    Job.objects.filter(pk=job.pk).update(held_since=timezone.now() - timedelta(hours=1, minutes=1))
    run_pass()
    run_pass()
    assert list(Notification.objects.filter(event="job_held").values_list("recipient", flat=True).order_by("recipient")) == [
        "email:ops@example.com", "email:team@example.com"]


def test_the_notification_history_links_a_job_notification_to_its_job_page(client, upstream, rule, settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0
    job = drive(upstream, make_job(jsonl([request_line(i) for i in range(3)]), name="linked"))
    run_pass()
    run_pass()
    assert Notification.objects.filter(batch_id=f"job-{job.pk}", event="job_finished").exists()
    page = client.get("/notifications/").content.decode()
    assert f'href="/projects/default/jobs/{job.pk}/">job {job.pk}</a>' in page
    assert f"/batches/job-{job.pk}/" not in page
