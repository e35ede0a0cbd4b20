"""Helpers for the jobs tests: input files, and running scheduling passes in the test process."""

from __future__ import annotations

import json

import orjson
import pytest

from batches.jobs import passes, services
from batches.jobs.models import Job
from batches.jobs.answers import results_blocks
from batches.projects import get_project
from batches.upstream import client_for
from tests.helpers import EMULATOR_KEY

ENDPOINT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"


def request_line(index: int, *, fail: int | bool | None = None, custom_id: str | None = None, model: str = MODEL) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": f"Classify ticket {index}."}]}
    if fail is not None:
        body["fail"] = fail
    return json.dumps({"custom_id": custom_id or f"req-{index}", "method": "POST", "url": ENDPOINT, "body": body})


def limited_project(write_projects, base_url: str, *, max_requests: int, queue_tokens: dict[str, int] | None = None,
                    key: str = EMULATOR_KEY) -> None:
    """A projects file of one project, ``default`` at ``base_url``, with these job limits: at most
    ``max_requests`` requests a batch, and a queue budget of ``queue_tokens`` (model: tokens) when given."""
    text = f"""
[projects.default]
api_key_env = "JOBS_TEST_KEY"
base_url = "{base_url}"

[projects.default.limits]
max_requests_per_batch = {max_requests}
"""
    if queue_tokens:
        text += "queue_tokens = { " + ", ".join(f'"{model}" = {tokens}' for model, tokens in queue_tokens.items()) + " }\n"
    write_projects(text, JOBS_TEST_KEY=key)


def jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def make_job(data: bytes, *, slug: str = "default", name: str = "test job", max_attempts: int = 3) -> Job:
    project = get_project(slug)
    result = services.ingest_blocks(project, [data])
    assert result.ok, [error.text for error in result.errors]
    return services.create_job(project, result, name=name, actor="ops@example.com", max_attempts=max_attempts)


def run_pass(slug: str = "default", worker: str = "test-worker"):
    project = get_project(slug)
    return passes.run_pass(project, client_for(project), worker)


def drive(emulator, job: Job, *, step: float = 120.0, passes_max: int = 40) -> Job:
    """Passes with the emulator's clock moved on between them, until the job ends."""
    for _ in range(passes_max):
        run_pass(job.project)
        job.refresh_from_db()
        if job.ended and not job.chunks.filter(state__in=passes.ACTIVE).exists():
            return job
        emulator.state.advance(step)
    chunks = [(c.number, c.attempt, c.state, c.batch_status) for c in job.chunks.all()]
    raise AssertionError(f"job {job.pk} did not end: {job.status}; chunks {chunks}")


def result_lines(job: Job) -> list[dict]:
    return [orjson.loads(line) for line in b"".join(results_blocks(job)).splitlines()]


@pytest.fixture(autouse=True)
def job_storage(settings, tmp_path):
    """Job files in the test's own directory (imported by each jobs test module)."""
    location = tmp_path / "storage"
    location.mkdir()
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}}}
    return location
