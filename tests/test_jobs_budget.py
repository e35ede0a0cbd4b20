"""A blocking budget and jobs (batches/jobs/), against the emulator: a job whose estimate would cross
the budget, or created once the month's spend reached it, is refused with nothing stored or uploaded
(page and ``create_job``) and audited; a queued job is held while the budget is reached, its running
batches untouched, and goes on once the budget allows it again."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.jobs.models import Job, JobEvent
from batches.models import AuditEntry
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import jsonl, make_job, request_line, run_pass
from tests.costs_helpers import projects_toml, record
from tests.helpers import EMULATOR_KEY, RESEARCH_KEY

pytestmark = pytest.mark.django_db(transaction=True)

#: $10 per 1M input tokens for the jobs' model: an estimate is easy to put over a budget.
PRICES = '{"gpt-4o-mini": {"input": 10, "output": 20}}'


@pytest.fixture
def budget(upstream, write_projects, settings):
    settings.DASHBOARD_PRICE_OVERRIDES = PRICES
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0

    def configure(monthly: float) -> None:
        write_projects(projects_toml(upstream.base_url, budget=f"[projects.default.budget]\nmonthly_usd = {monthly}\nblock_at_limit = true\n"),
                       TEST_KEY_DEFAULT=EMULATOR_KEY, TEST_KEY_RESEARCH=RESEARCH_KEY)
        upstream.state.reset_counts()

    return configure


def spent(dollars: float) -> None:
    record("batch_spent", int(time.time()) - 60, model="gpt-4o-mini", input_tokens=int(dollars * 100_000), output=0)


def test_a_job_created_once_the_budget_is_reached_is_refused_with_nothing_stored_or_sent(budget, client, upstream, job_storage):
    budget(5)
    spent(6)
    data = jsonl([request_line(i) for i in range(10)])
    response = client.post("/projects/default/jobs/new/", {"name": "t", "max_attempts": "3", "file": SimpleUploadedFile("in.jsonl", data)})
    assert response.status_code == 403
    assert "Refused: Production&#x27;s budget is $5.00 this month and its spend so far is $6.00" in response.content.decode()
    assert Job.objects.count() == 0
    assert upstream.state.stats()["total"] == 0
    assert [path for path in job_storage.rglob("*") if path.is_file()] == []
    entry = AuditEntry.objects.get(action="job-create")
    assert entry.outcome == "refused" and entry.message.startswith("Refused: Production's budget is $5.00")


def test_a_job_whose_estimate_would_cross_the_budget_is_refused_by_create_job(budget, upstream, tmp_path):
    budget(5)
    spent(4.99)
    path = tmp_path / "big.jsonl"
    # 2,000 requests of about 1,000 input tokens: about $20 at $10 per 1M, far over the $0.01 left.
    path.write_bytes(jsonl([request_line(i).replace("Classify ticket", "x" * 4000) for i in range(2000)]))
    with pytest.raises(CommandError, match=r"^Refused: Production's budget is \$5.00 this month and its spend so far is \$4.99; this work's estimated \$"):
        call_command("create_job", "--project", "default", str(path))
    assert Job.objects.count() == 0 and upstream.state.stats()["total"] == 0


def test_a_queued_job_is_held_while_the_budget_is_reached_and_goes_on_when_it_allows(budget, upstream, write_projects):
    budget(1000)
    job = make_job(jsonl([request_line(i) for i in range(10)]))
    budget(5)
    spent(6)
    run_pass()
    job.refresh_from_db()
    assert upstream.state.stats()["counts"].get("POST /v1/files", 0) == 0
    assert job.held_since is not None
    event = JobEvent.objects.get(job=job, kind="held")
    assert event.message.startswith("Held by the budget: Refused: Production's budget is $5.00 this month")
    run_pass()
    assert JobEvent.objects.filter(job=job, kind="held").count() == 1  # said once, not on every pass
    budget(1000)
    run_pass()
    assert upstream.state.stats()["counts"].get("POST /v1/files", 0) == 1
