"""Reading a job's file: the create page's rules on every line, duplicates across the whole job with
their line numbers, chunks cut by the project's limits, nothing stored for an invalid file."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage

from batches.jobs.ingest import JobIngest, estimate_tokens
from batches.project_limits import JobLimits
from job_helpers import jsonl, request_line


def ingest(data: bytes, limits: JobLimits = JobLimits(), *, store: bool = False, tmp_path=None, block: int = 7):
    job = JobIngest(limits, str(tmp_path), store=store)
    for start in range(0, len(data), block):
        job.feed(data[start:start + block])
    return job.finish()


def test_chunks_are_cut_at_the_projects_requests_per_batch(tmp_path):
    result = ingest(jsonl([request_line(i) for i in range(25)]), JobLimits(max_requests_per_batch=10), tmp_path=tmp_path)
    assert result.ok
    assert [(c.first_line, c.requests) for c in result.chunks] == [(0, 10), (10, 10), (20, 5)]


def test_chunks_are_cut_at_the_models_token_budget_and_bytes_per_batch(tmp_path):
    line = request_line(0).encode()
    budget = JobLimits(queue_tokens={"gpt-4o-mini": len(line) * 3 + 5}, max_bytes_per_batch=10 * 1024)
    result = ingest(jsonl([request_line(i) for i in range(7)]), budget, tmp_path=tmp_path)
    assert [c.requests for c in result.chunks] == [3, 3, 1]
    assert all(c.estimated_tokens <= len(line) * 3 + 5 for c in result.chunks)


def test_a_custom_id_used_twice_across_chunks_is_refused_with_both_line_numbers(tmp_path):
    lines = [request_line(i) for i in range(30)]
    lines[24] = request_line(24, custom_id="req-3")
    result = ingest(jsonl(lines), JobLimits(max_requests_per_batch=10), tmp_path=tmp_path)
    assert not result.ok
    assert [e.text for e in result.errors] == [
        "Line 25 repeats custom_id “req-3” (first used on line 4); each custom_id must be unique."
    ]


def test_a_custom_id_repeated_inside_one_chunk_is_reported_once_with_file_line_numbers(tmp_path):
    lines = [request_line(i) for i in range(30)]
    lines[15] = request_line(15, custom_id="req-12")
    result = ingest(jsonl(lines), JobLimits(max_requests_per_batch=10), tmp_path=tmp_path)
    assert [e.text for e in result.errors] == [
        "Line 16 repeats custom_id “req-12” (first used on line 13); each custom_id must be unique."
    ]


def test_every_line_rule_of_the_create_page_applies_with_the_files_line_numbers(tmp_path):
    lines = [request_line(i) for i in range(12)]
    lines[3] = '{"custom_id": "x", "method": "GET", "url": "/v1/chat/completions", "body": {}}'
    lines[11] = "not json"
    result = ingest(jsonl(lines), JobLimits(max_requests_per_batch=5), tmp_path=tmp_path)
    texts = [e.text for e in result.errors]
    assert texts[0] == "Line 4 has method GET; only POST is allowed."
    assert texts[1].startswith("Line 12 is not valid JSON")


def test_a_job_uses_one_model(tmp_path):
    lines = [request_line(i) for i in range(6)] + [request_line(6, model="gpt-4.1")]
    result = ingest(jsonl(lines), JobLimits(max_requests_per_batch=3), tmp_path=tmp_path)
    assert [e.line for e in result.errors] == [7]


def test_a_blank_line_between_requests_is_an_error_and_blank_lines_at_the_end_are_not(tmp_path):
    assert ingest(jsonl([request_line(0), request_line(1), "", ""]), tmp_path=tmp_path).ok
    result = ingest(jsonl([request_line(0), "", request_line(1)]), tmp_path=tmp_path)
    assert [e.text for e in result.errors] == ["Line 2 is blank; remove blank lines between requests."]


@pytest.mark.django_db
def test_an_invalid_file_leaves_nothing_in_storage(tmp_path, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                          "OPTIONS": {"location": str(tmp_path / "store")}}}
    lines = [request_line(i) for i in range(30)]
    lines[29] = request_line(29, custom_id="req-0")
    (tmp_path / "scratch").mkdir()
    result = ingest(jsonl(lines), JobLimits(max_requests_per_batch=10), store=True, tmp_path=tmp_path / "scratch")
    assert not result.ok
    assert not list((tmp_path / "store").rglob("*.jsonl"))
    assert default_storage.listdir("")[1] == []


def test_the_token_estimate_is_never_below_the_bytes_of_the_message_text():
    text = "Grüße aus Köln — 東京 🚀 " * 20
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body},
                      ensure_ascii=False).encode()  # raw UTF-8, the fewest bytes a line can hold its text in
    assert estimate_tokens(line) >= len(text.encode("utf-8")) + 4  # + the API's few tokens per message
