"""A job in a real Chromium: created from the page, watched while it runs (the page updates itself),
and its results downloaded, with the real task worker running the scheduler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import EMULATOR_KEY, start_dashboard

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
JOB_ENV = {"DASHBOARD_JOBS_TICK_SECONDS": "0.5", "DASHBOARD_JOBS_BACKOFF_SECONDS": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs-e2e")
    with start_dashboard(tmp, extra_env={**JOB_ENV, "DASHBOARD_MEDIA_ROOT": str(tmp / "media")}) as running:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_", "DATABASE_", "OPENAI_"))}
        env.update(
            JOB_ENV, DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG="1", DJANGO_SECRET_KEY="e2e-jobs",
            DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}", DASHBOARD_MEDIA_ROOT=str(tmp / "media"),
            OPENAI_API_KEY=EMULATOR_KEY, OPENAI_BASE_URL=f"{running.emulator_url}/v1",
        )
        worker = subprocess.Popen([sys.executable, "manage.py", "run_worker", "--interval", "0.2"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield running
        finally:
            worker.terminate()
            worker.wait(timeout=10)


def test_a_job_created_from_the_page_runs_updates_its_page_and_its_results_download(server, guarded_page: Page, tmp_path):
    page = guarded_page
    lines = [json.dumps({"custom_id": f"ticket-{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Classify {i}"}]}})
             for i in range(20)]
    source = tmp_path / "tickets.jsonl"
    source.write_text("\n".join(lines) + "\n")
    page.goto(f"{server.url}/projects/default/jobs/new/")
    page.fill("#job-name", "Tickets from the browser")
    page.set_input_files("#job-file", str(source))
    page.click("text=Create the job")
    expect(page.locator("h1")).to_contain_text("Tickets from the browser")
    job_url = page.url
    assert "/projects/default/jobs/" in job_url
    # The page updates itself: the job runs and completes without a reload (generous timeouts: the worker
    # process shares two cores with everything else the suite runs).
    expect(page.locator("#job-status")).to_have_text("running", timeout=90_000)
    expect(page.locator("#job-status")).to_have_text("completed", timeout=120_000)
    assert page.url == job_url
    expect(page.locator("#job-chunks")).to_contain_text("batch_")
    with page.expect_download() as download:
        page.click("#download-results")
    body = Path(download.value.path()).read_text()
    answers = [json.loads(line) for line in body.splitlines()]
    assert [answer["custom_id"] for answer in answers] == [f"ticket-{i}" for i in range(20)]
    assert download.value.suggested_filename.endswith("_results.jsonl")
    # On a phone the job page fits the screen: tables scroll in their own box, and the timeline's long
    # batch ids wrap instead of widening the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(job_url)
    expect(page.locator("#job-events")).to_contain_text("batch_")
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
