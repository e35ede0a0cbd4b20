"""Jobs on an Azure OpenAI project, against the session emulator's Azure project over loopback: Azure's
per-batch limits (provider-specs/NOTES.md §2.4) and its "fail fast" over-quota answer, a 400
``token_limit_exceeded`` to the create itself, treated like a batch that failed with that code."""

from __future__ import annotations

import httpx
import pytest

from batches.jobs import refusals, services
from batches.project_limits import parse_limits
from batches.jobs.models import Chunk, Job, ModelQueue
from batches.projects import ProjectsConfigError, get_project, parse_projects
from batches.upstream import UpstreamBadRequest, UpstreamRateLimited, error_from_response
from helpers import EMULATOR_KEY
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import drive, jsonl, make_job, request_line, result_lines, run_pass

pytestmark = pytest.mark.django_db(transaction=True)

AZURE_KEY = "azure-emulator-jobs"
LABEL = "emu-azure-jobs"
DEPLOYMENT = "my-mini"


@pytest.fixture(autouse=True)
def _no_backoff(settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0


@pytest.fixture
def azure(emulator, write_projects):
    """An Azure project in a fail-fast region (the emulator's ``fail_fast``), beside an OpenAI one, with a
    configured queue budget; no random request failures, so every chunk is one attempt."""
    emulator.add_key(LABEL, AZURE_KEY, "azure", {"fail_fast": True})
    emulator.state.fail_percent = 0
    write_projects(
        f'[projects.default]\napi_key_env = "K_OPENAI"\nbase_url = "{emulator.base_url}"\n'
        f'[projects.az]\napi_key_env = "K_AZURE"\nprovider = "azure"\nbase_url = "{emulator.root_url}"\n'
        f'api_version = "2024-10-21"\ndeployments = {{{DEPLOYMENT} = "gpt-4o-mini"}}\n'
        f'[projects.az.limits]\nqueue_tokens = {{ "{DEPLOYMENT}" = 100000 }}\n'
        '[projects.claude]\napi_key_env = "K_CLAUDE"\nprovider = "anthropic"\n',
        K_OPENAI=EMULATOR_KEY, K_AZURE=AZURE_KEY, K_CLAUDE="sk-ant-jobs",
    )
    return emulator


def test_job_limits_default_to_the_providers_per_batch_limits(azure):
    assert get_project("az").limits.max_requests_per_batch == 100_000
    assert get_project("az").limits.max_bytes_per_batch == 200 * 1024 * 1024
    assert get_project("default").limits.max_requests_per_batch == 50_000
    problems: list[str] = []
    limits = parse_limits({"max_requests_per_batch": 80_000}, "project “az”", problems, max_requests=100_000)
    assert (limits.max_requests_per_batch, problems) == (80_000, [])


def test_a_limit_above_the_providers_is_a_configuration_error_naming_the_project_and_the_field(monkeypatch):
    monkeypatch.setenv("K", "key-1")
    text = ('[projects.az]\napi_key_env = "K"\nprovider = "azure"\nbase_url = "https://r.openai.azure.com"\n'
            'api_version = "2024-10-21"\n[projects.az.limits]\nmax_requests_per_batch = 100001\n')
    with pytest.raises(ProjectsConfigError) as err:
        parse_projects(text)
    assert err.value.problems == [
        "project “az”: limits.max_requests_per_batch must be at least 1 and at most 100,000; it is 100,001."
    ]


def test_a_create_refused_with_400_token_limit_exceeded_is_requeued_not_an_attempt_and_the_job_completes(azure):
    state = azure.state
    state.set_queue_limit(LABEL, DEPLOYMENT, 10)  # smaller than any chunk: the create itself is refused
    job = make_job(jsonl([request_line(i, model=DEPLOYMENT) for i in range(30)]), slug="az")
    chunk = job.chunks.get()
    run_pass("az")
    chunk.refresh_from_db()
    assert chunk.state == Chunk.State.QUEUED and not chunk.batch_id
    assert (chunk.attempt, chunk.submission, chunk.token_limit_hits) == (1, 2, 1)
    assert chunk.file_id  # kept: the next create reuses the uploaded file
    uploaded = chunk.file_id
    assert ModelQueue.objects.get(project="az", model=DEPLOYMENT).budget == 50_000  # halved from 100,000
    event = job.events.get(kind="token_limit")
    assert "create answered 400" in event.message and "not counted as an attempt" in event.message
    assert not job.events.filter(kind="upstream_error").exists()

    state.set_queue_limit(LABEL, DEPLOYMENT, None)  # room again
    job = drive(azure, job)
    assert job.status == Job.Status.COMPLETED
    chunk.refresh_from_db()
    assert (chunk.attempt, chunk.file_id) == (1, uploaded)
    assert state.batches[chunk.batch_id].data["input_file_id"] == uploaded
    assert [answer["custom_id"] for answer in result_lines(job)] == [f"req-{i}" for i in range(30)]
    assert job.events.filter(kind="token_limit").count() == 1


def test_another_400_at_create_stays_an_upstream_error(azure):
    azure.state.set_queue_limit(LABEL, DEPLOYMENT, None)
    azure.state.inject_fault(route="/openai/batches", method="POST", status=400, times=1)
    job = make_job(jsonl([request_line(i, model=DEPLOYMENT) for i in range(3)]), slug="az")
    run_pass("az")
    chunk = job.chunks.get()
    assert (chunk.state, chunk.token_limit_hits, chunk.submission) == (Chunk.State.QUEUED, 0, 1)
    assert job.events.filter(kind="upstream_error").exists() and not job.events.filter(kind="token_limit").exists()
    assert ModelQueue.objects.filter(project="az", model=DEPLOYMENT, refusals__gt=0).count() == 0


def _answer(status: int, error: dict) -> UpstreamBadRequest:
    response = httpx.Response(status, json={"error": error}, request=httpx.Request("POST", "https://r/openai/batches"))
    return error_from_response(response, "create")


def test_only_a_400_naming_token_limit_exceeded_is_a_queue_refusal():
    by_code = _answer(400, {"code": "token_limit_exceeded", "message": "Enqueued tokens over the limit."})
    by_message = _answer(400, {"code": None, "message": "Failed: token_limit_exceeded for deployment my-mini."})
    assert refusals.create_refusal(by_code) == "Enqueued tokens over the limit."
    assert refusals.create_refusal(by_message) == "Failed: token_limit_exceeded for deployment my-mini."
    assert refusals.create_refusal(_answer(400, {"code": "invalid_request", "message": "bad endpoint"})) is None
    assert refusals.create_refusal(_answer(404, {"code": "token_limit_exceeded", "message": "x"})) is None
    assert refusals.create_refusal(UpstreamRateLimited(status_code=429, code="token_limit_exceeded")) is None


def test_a_job_on_an_anthropic_project_is_refused_with_nothing_stored(azure, job_storage):  # noqa: F811
    project = get_project("claude")
    result = services.ingest_blocks(project, [jsonl([request_line(i) for i in range(3)])])
    with pytest.raises(services.JobRefused, match="Jobs need uploaded input files, which Anthropic batches do not have"):
        services.create_job(project, result, name="x", actor="ops@example.com")
    assert not Job.objects.exists() and not [path for path in job_storage.rglob("*") if path.is_file()]
