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
from job_helpers import jsonl, make_job, request_line, result_lines
from servers import REPO, stop_process

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 120_000
PER_BATCH = 30_000


class Injector:
    """Wraps the emulator's create: the 1st batch is refused (token_limit_exceeded), the 2nd expires;
    requests answered 5xx/429 on a first attempt succeed when retried."""

    def __init__(self, state) -> None:
        self.state = state
        self.created = 0
        self.original = state.create_batch
        state.create_batch = self.create

    def create(self, *args, **kwargs):
        batch = self.original(*args, **kwargs)
        metadata = batch.data.get("metadata") or {}
        with self.state.lock:
            self.created += 1
            validation = batch.validation
            if self.created == 1:
                batch.validation = {"ok": False, "model": "gpt-4o-mini", "total": 0, "errors": [{
                    "code": "token_limit_exceeded", "param": None, "line": None,
                    "message": "Enqueued token limit reached for gpt-4o-mini in organization org-test. Limit: 5,000,000 enqueued tokens."}]}
            elif self.created == 2:
                # Its 24 h window ends 30 emulated seconds from now, with about 1,500 requests done by then.
                batch.created_t -= 86_400 - 30
                batch.validate_secs = 86_400 - 30 + 2
                batch.rate = 50.0
            elif metadata.get("dashboard_attempt", "1") != "1" and validation and validation.get("ok"):
                outcomes = validation["outcomes"]
                for index, outcome in enumerate(outcomes):
                    if outcome in (2, 3):  # 500 / 429 the first time; answered on the retry
                        outcomes[index] = 0
        return batch


@pytest.fixture
def fast_emulator(write_projects, settings):
    server = EmulatorServer(host="127.0.0.1", port=0, api_key="sk-jobs", speed=60.0, seed=False)
    server.start()
    write_projects(
        f"""
[projects.default]
api_key_env = "JOBS_KEY"
base_url = "{server.base_url}"

[projects.default.limits]
max_requests_per_batch = {PER_BATCH}
queue_tokens = {{ "gpt-4o-mini" = 6000000 }}
""",
        JOBS_KEY="sk-jobs",
    )
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
    injector = Injector(fast_emulator.state)
    lines = [request_line(i, fail=(400 if i % 1000 == 1 else 500 if i % 1000 == 2 else None)) for i in range(LINES)]
    job = make_job(jsonl(lines), name="120k")
    assert job.chunks.count() == 4
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == Job.Status.COMPLETED:
            break
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        time.sleep(0.5)  # polling the worker's progress, not waiting for time to pass
    assert job.status == Job.Status.COMPLETED, [(c.number, c.attempt, c.state, c.batch_status) for c in job.chunks.all()]
    answers = result_lines(job)
    assert [answer["custom_id"] for answer in answers] == [f"req-{i}" for i in range(LINES)]
    by_id = {answer["custom_id"]: answer for answer in answers}
    assert by_id["req-1001"]["response"]["status_code"] == 400 and by_id["req-1001"]["attempts"] == 1
    assert by_id["req-1002"]["response"]["status_code"] == 200 and by_id["req-1002"]["attempts"] == 2
    assert all(answer["response"] and answer["response"]["status_code"] in (200, 400) for answer in answers)
    assert job.events.filter(kind="token_limit").count() == 1
    expired = Chunk.objects.filter(job=job, batch_status="expired")
    assert expired.count() == 1 and job.chunks.filter(home=expired.get().home or expired.get(), attempt=2).exists()
    # Each submission made one batch: the refused one, then one per chunk that ran (halves of chunks split
    # after the budget was lowered included), none twice.
    markers = [tuple(sorted((b.get("metadata") or {}).items())) for b in fast_emulator.state.list_batches()]
    assert len(markers) == len(set(markers)) == injector.created
    assert injector.created == 1 + job.chunks.exclude(batch_id="").count()
