"""``manage.py create_job``: a job from a file on the server; the job page's path is the last line, or
the problems with their line numbers and a non-zero exit."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from batches.jobs.models import Job
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import jsonl, request_line

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_job_prints_the_job_pages_path_as_its_last_line(tmp_path, upstream):
    source = tmp_path / "tickets.jsonl"
    source.write_bytes(jsonl([request_line(i) for i in range(12)]))
    out = io.StringIO()
    call_command("create_job", str(source), "--project", "default", "--name", "Tickets", stdout=out)
    job = Job.objects.get()
    assert out.getvalue().splitlines() == [f"Job {job.pk}: 12 requests in 1 chunk(s).", f"/projects/default/jobs/{job.pk}/"]
    assert (job.name, job.created_by) == ("Tickets", "manage.py create_job")


def test_create_job_refuses_a_bad_file_with_line_numbers_and_creates_nothing(tmp_path, upstream):
    source = tmp_path / "tickets.jsonl"
    source.write_bytes(jsonl([request_line(0), request_line(1, custom_id="req-0"), "{"]))
    err = io.StringIO()
    with pytest.raises(CommandError, match=re.escape(f"{source}: 2 problem(s); no job was created and nothing was sent.")):
        call_command("create_job", str(source), "--project", "default", stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0] == "Line 2 repeats custom_id “req-0” (first used on line 1); each custom_id must be unique."
    assert lines[1].startswith("Line 3 is not valid JSON")
    assert Job.objects.count() == 0


def test_create_job_names_an_unknown_project(tmp_path, upstream):
    with pytest.raises(CommandError, match=re.escape("There is no project 'nope'; known: default.")):
        call_command("create_job", str(tmp_path / "x.jsonl"), "--project", "nope")
