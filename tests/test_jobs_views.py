"""The job pages: create from an upload, the job page (full and htmx), summary.json, results.jsonl
(409 before the end), failed.jsonl, the results table, and the audited controls."""

from __future__ import annotations

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from batches.jobs.models import Job
from batches.models import AuditEntry
from helpers import HTMX
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import drive, jsonl, make_job, request_line, result_lines, run_pass

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0


def upload(client, data: bytes, name: str = "tickets"):
    return client.post("/projects/default/jobs/new/",
                       {"name": name, "max_attempts": "3", "file": SimpleUploadedFile("in.jsonl", data)})


def test_creating_a_job_from_the_page_redirects_to_its_page(client, upstream):
    response = upload(client, jsonl([request_line(i) for i in range(10)]))
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/projects/default/jobs/{job.pk}/"
    assert (job.name, job.total_requests, job.endpoint) == ("tickets", 10, "/v1/chat/completions")
    assert AuditEntry.objects.get(action="job-create").batch_id == f"job-{job.pk}"


def test_an_invalid_file_is_refused_with_its_line_numbers_and_sends_nothing(client, upstream):
    lines = [request_line(i) for i in range(5)] + [request_line(5, custom_id="req-1")]
    upstream.state.reset_counts()
    response = upload(client, jsonl(lines))
    assert response.status_code == 400
    assert "Line 6</strong> repeats custom_id “req-1” (first used on line 2)" in response.content.decode()
    assert Job.objects.count() == 0
    assert upstream.state.stats()["total"] == 0


def test_the_job_page_and_its_partial_show_progress_and_poll_while_it_runs(client, upstream):
    job = make_job(jsonl([request_line(i) for i in range(10)]))
    page = client.get(f"/projects/default/jobs/{job.pk}/")
    assert page.status_code == 200 and b'id="job-live"' in page.content and b"hx-trigger=\"every" in page.content
    partial = client.get(f"/projects/default/jobs/{job.pk}/", headers=HTMX)
    assert b"<html" not in partial.content and b'id="job-counts"' in partial.content


def test_results_are_409_with_a_sentence_until_the_job_ends_then_one_line_per_request_in_input_order(client, upstream):
    job = make_job(jsonl([request_line(i, fail=(400 if i == 2 else None)) for i in range(10)]))
    early = client.get(f"/projects/default/jobs/{job.pk}/results.jsonl")
    assert early.status_code == 409
    assert early.content.decode().startswith(f"Job {job.pk} is queued: its results are ready once it has ended")
    drive(upstream, job)
    results = client.get(f"/projects/default/jobs/{job.pk}/results.jsonl")
    lines = [orjson.loads(line) for line in b"".join(results.streaming_content).splitlines()]
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(10)]
    failed = b"".join(client.get(f"/projects/default/jobs/{job.pk}/failed.jsonl").streaming_content).decode()
    assert '"custom_id": "req-2"' in failed
    summary = client.get(f"/projects/default/jobs/{job.pk}/summary.json").json()
    assert summary["status"] == "completed" and summary["requests"]["total"] == 10
    assert summary["requests"]["pending"] == 0 and summary["batches"][0]["attempt"] == 1
    assert isinstance(summary["cost_usd"], float) and summary["cost_usd"] > 0
    page = client.get(f"/projects/default/jobs/{job.pk}/").content.decode()
    assert "Cost so far: <strong>$" in page and "hx-trigger" not in page
    table = client.get(f"/projects/default/jobs/{job.pk}/results/?failed=1")
    assert b"req-2" in table.content and b"req-3</code>" not in table.content
    found = client.get(f"/projects/default/jobs/{job.pk}/results/?custom_id=req-7", headers=HTMX)
    assert b"req-7" in found.content and b"<html" not in found.content


def test_pause_resume_and_cancel_are_audited_and_a_paused_job_submits_nothing(client, upstream):

    job = make_job(jsonl([request_line(i) for i in range(10)]))
    assert client.post(f"/projects/default/jobs/{job.pk}/pause/").status_code == 302
    run_pass()
    assert job.chunks.get().batch_id == ""
    client.post(f"/projects/default/jobs/{job.pk}/resume/")
    run_pass()
    assert job.chunks.get().batch_id != ""
    client.post(f"/projects/default/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    job = drive(upstream, job)
    assert upstream.state.get_batch(job.chunks.get().batch_id)["status"] in ("cancelled", "completed")
    actions = list(AuditEntry.objects.filter(batch_id=f"job-{job.pk}").values_list("action", "outcome"))
    assert sorted(actions) == [("job-cancel", "success"), ("job-create", "success"), ("job-pause", "success"), ("job-resume", "success")]
    lines = [orjson.loads(line) for line in b"".join(client.get(f"/projects/default/jobs/{job.pk}/results.jsonl").streaming_content).splitlines()]
    assert len(lines) == 10


def test_a_viewer_may_look_but_not_steer_and_another_projects_job_is_404(client, two_projects, proxy_mode):
    job = make_job(jsonl([request_line(i) for i in range(3)]), slug="research")
    viewer = proxy_mode("r@example.com", groups=["research"])
    assert client.get(f"/projects/research/jobs/{job.pk}/", headers=viewer).status_code == 200
    assert client.post(f"/projects/research/jobs/{job.pk}/pause/", headers=viewer).status_code == 403
    outsider = proxy_mode("o@example.com")
    assert client.get(f"/projects/research/jobs/{job.pk}/", headers=outsider).status_code == 404
    assert client.get(f"/projects/default/jobs/{job.pk}/", headers=outsider).status_code == 404


def test_a_batch_page_links_to_its_job(client, upstream):

    job = make_job(jsonl([request_line(i) for i in range(3)]), name="linked")
    run_pass()
    batch_id = job.chunks.get().batch_id
    page = client.get(f"/projects/default/batches/{batch_id}/")
    assert f'Part of job <a href="/projects/default/jobs/{job.pk}/">linked</a>' in page.content.decode()
    other = upstream.state.add_batch(status="completed")["id"]  # no job's marker in its metadata: no link
    assert "Part of job" not in client.get(f"/projects/default/batches/{other}/").content.decode()


def test_retrying_the_final_failures_runs_them_once_more_and_the_job_completes_again(client, upstream):
    job = drive(upstream, make_job(jsonl([request_line(i, fail=(400 if i == 4 else None)) for i in range(6)])))
    assert client.post(f"/projects/default/jobs/{job.pk}/retry/").status_code == 302
    job.refresh_from_db()
    retry = job.chunks.get(attempt=2)
    assert (job.status, retry.requests) == (Job.Status.RUNNING, 1)
    job = drive(upstream, job)
    assert job.status == Job.Status.COMPLETED
    answers = {line["custom_id"]: line for line in result_lines(job)}
    assert (answers["req-4"]["attempts"], answers["req-4"]["response"]["status_code"]) == (2, 400)
    assert AuditEntry.objects.filter(action="job-retry", batch_id=f"job-{job.pk}", outcome="success").count() == 1
    # The audit page filters by a job's actions like any other.
    audit = client.get("/audit/?action=job-retry").content.decode()
    assert "is not an action the dashboard records" not in audit and f"job-{job.pk}" in audit
    assert '<option value="job-retry"' in client.get("/audit/").content.decode()


def test_a_refused_action_says_why(client, upstream):
    job = make_job(jsonl([request_line(0)]))
    response = client.post(f"/projects/default/jobs/{job.pk}/resume/", follow=True)
    assert f"Job {job.pk} is queued: only a paused job can be resumed." in response.content.decode()


def test_creating_and_steering_need_the_csrf_token(upstream):
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post("/projects/default/jobs/new/", {"name": "x", "file": SimpleUploadedFile("in.jsonl", b"{}\n")})
    assert refused.status_code == 403 and Job.objects.count() == 0
    job = make_job(jsonl([request_line(0)]))
    assert strict.post(f"/projects/default/jobs/{job.pk}/pause/").status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_the_create_form_answers_htmx_with_its_partial_and_the_list_has_status_chips(client, upstream):
    bad = client.post("/projects/default/jobs/new/", {"name": "x", "file": SimpleUploadedFile("in.jsonl", b"[1]\n")},
                      headers=HTMX)
    assert bad.status_code == 400 and b"<html" not in bad.content and b"Line 1</strong> is an array" in bad.content
    make_job(jsonl([request_line(0)]), name="first")
    listing = client.get("/projects/default/jobs/?status=queued")
    body = listing.content.decode()
    assert "first" in body and 'href="?status=queued" aria-current="true"' in body
    assert "first" not in client.get("/projects/default/jobs/?status=running").content.decode()
