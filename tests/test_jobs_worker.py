"""A 120,000-line job through the real task worker process against the emulator over loopback: a queue
budget that fits one chunk at a time, one ``token_limit_exceeded`` and one expired chunk injected,
per-request 5xx (retried, then answered) and 4xx (final). Every custom_id is answered once, in input
order."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from batches.jobs.models import Chunk, Job
from emulator import EmulatorServer
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import jsonl, limited_project, make_job, request_line, result_lines
from servers import REPO, stop_process

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 120_000
PER_BATCH = 30_000


@pytest.fixture
def fast_emulator(write_projects, settings):
    # The emulator's own queue (max(1, bytes // 4) tokens a request) holds one chunk of 30,000 lines; random
    # failures off, so the only per-request faults are the injected ones.
    server = EmulatorServer(host="127.0.0.1", port=0, api_key="sk-jobs", speed=100.0, seed=False,
                            queue_tokens={"gpt-4o-mini": 1_500_000}, fail_percent=0)
    server.start()
    limited_project(write_projects, server.base_url, max_requests=PER_BATCH, queue_tokens={"gpt-4o-mini": 6000000},
                    key="sk-jobs")
    yield server
    server.stop()


@pytest.fixture
def worker(fast_emulator, settings, job_storage):  # noqa: F811
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DASHBOARD_", "OPENAI_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="jobs_worker_settings", PYTHONPATH=f"{REPO}:{REPO / 'tests'}",
        DATABASE_URL=f"sqlite:///{connection.settings_dict['NAME']}", JOBS_TEST_STORAGE=str(job_storage),
        DASHBOARD_PROJECTS_FILE=settings.DASHBOARD_PROJECTS_FILE, JOBS_KEY="sk-jobs",
        DASHBOARD_JOBS_TICK_SECONDS="0.3", DASHBOARD_JOBS_BACKOFF_SECONDS="0.5", DASHBOARD_SYNC_SECONDS="1",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--interval", "0.1", "--worker-id", "jobs-test"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    yield process
    stop_process(process)


def test_a_120000_line_job_completes_through_the_real_worker_with_refusal_expiry_and_request_faults_salvaged(fast_emulator, worker):
    state = fast_emulator.state
    # The first batch is refused as if the queue were full, the second expires half-way (the expiry rule is
    # claimed by both; on the refused one it has no effect); every request whose id ends in 001 gets a 400
    # and every one ending in 002 a 500 the first time it is seen (a retry succeeds).
    state.add_batch_fault(token_limit_exceeded=True, times=1)
    state.add_batch_fault(expire_after=0.5, times=2)
    state.add_batch_fault(fail_4xx_match=r"^req-\d*001$", fail_5xx_match=r"^req-\d*002$", once=True, times=None)
    job = make_job(jsonl([request_line(i) for i in range(LINES)]), name="120k")
    assert job.chunks.count() == 4
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == Job.Status.COMPLETED:
            break
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        time.sleep(0.2)  # polling the worker's progress, not waiting for time to pass
    assert job.status == Job.Status.COMPLETED, [(c.number, c.attempt, c.state, c.batch_status) for c in job.chunks.all()]
    answers = result_lines(job)
    assert [answer["custom_id"] for answer in answers] == [f"req-{i}" for i in range(LINES)]
    by_id = {answer["custom_id"]: answer for answer in answers}
    assert (by_id["req-100001"]["response"]["status_code"], by_id["req-100001"]["attempts"]) == (400, 1)
    assert (by_id["req-100002"]["response"]["status_code"], by_id["req-100002"]["attempts"]) == (200, 2)
    final_4xx = [a for a in answers if a["response"]["status_code"] == 400]
    assert {a["custom_id"][-3:] for a in final_4xx} == {"001"} and len(final_4xx) >= 60
    assert all(answer["response"]["status_code"] in (200, 400) for answer in answers)
    assert job.events.filter(kind="token_limit").count() == 1
    expired = Chunk.objects.get(job=job, batch_status="expired")
    assert job.events.filter(kind="salvage", message__contains=f"batch {expired.batch_id} ended expired").exists()
    # Each submission made exactly one batch (the refused one included), never two for one marker.
    markers = [tuple(sorted((b.get("metadata") or {}).items())) for b in state.list_batches()]
    assert len(markers) == len(set(markers)) == 1 + job.chunks.exclude(batch_id="").count()
