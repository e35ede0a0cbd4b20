"""A job end to end against the emulator, with scheduling passes run in the test process."""

from __future__ import annotations

import pytest

from batches.jobs.models import Chunk, Job
from job_helpers import drive, jsonl, make_job, request_line, result_lines

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_batches(write_projects, upstream):
    write_projects(
        f"""
[projects.default]
api_key_env = "TEST_KEY"
base_url = "{upstream.base_url}"

[projects.default.limits]
max_requests_per_batch = 40
""",
        TEST_KEY="sk-emulator-test",
    )
    return upstream


def test_a_job_of_100_requests_completes_in_three_chunks_with_every_custom_id_answered_once_in_input_order(small_batches):
    lines = [request_line(i, fail=(400 if i == 7 else None)) for i in range(100)]
    job = make_job(jsonl(lines))
    assert job.chunks.count() == 3
    job = drive(small_batches, job)
    assert job.status == Job.Status.COMPLETED
    answers = result_lines(job)
    assert [answer["custom_id"] for answer in answers] == [f"req-{i}" for i in range(100)]
    assert answers[7]["response"]["status_code"] == 400
    assert all(set(answer) == {"custom_id", "response", "error", "batch_id", "attempts"} for answer in answers)
