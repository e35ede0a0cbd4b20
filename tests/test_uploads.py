"""The create form's upload handler checks the JSONL file while it arrives: the create view uses that
result (it does not read the file again), an invalid file still uploads nothing, and the outcome is the
one the file validator gives, whatever the chunk size of the upload."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches import jsonl, services, uploads

pytestmark = pytest.mark.django_db

CHAT = "/v1/chat/completions"
URL = "/projects/default/batches/new/"


def request_line(custom_id, *, url=CHAT, method="POST") -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hello {custom_id}"}]}
    return json.dumps({"custom_id": custom_id, "method": method, "url": url, "body": body})


def form_data(content: bytes, *, token="tok-up", endpoint="auto") -> dict:
    return {
        "token": token, "endpoint": endpoint, "completion_window": "24h", "input_file_id": "",
        "file": SimpleUploadedFile("requests.jsonl", content, content_type="application/jsonl"),
    }


@pytest.fixture
def no_second_read(monkeypatch):
    """Fail the test if the create view reads the file again to check it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the file was checked again after it arrived")

    monkeypatch.setattr(services, "validate_jsonl", refuse)


def test_a_valid_file_is_checked_while_it_arrives_and_then_uploaded(client, upstream, no_second_read, monkeypatch):
    monkeypatch.setattr(uploads.CappedTemporaryFileUploadHandler, "chunk_size", 97)  # lines cross chunks
    content = ("\r\n".join(request_line(f"r{i}") for i in range(40)) + "\r\n").encode()
    response = client.post(URL, form_data(content))
    assert response.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1
    assert upstream.state.counts["POST /v1/batches"] == 1
    uploaded = [f["path"] for f in upstream.state.files.values() if f["meta"]["filename"] == "requests.jsonl"]
    assert len(uploaded) == 1
    with open(uploaded[0], "rb") as fh:
        assert fh.read() == content


@pytest.mark.parametrize("chunk_size", [5, 4096, 1024 * 1024])
def test_an_invalid_file_checked_while_it_arrives_is_refused_like_the_file_validator_says(
    client, upstream, no_second_read, monkeypatch, chunk_size
):
    monkeypatch.setattr(uploads.CappedTemporaryFileUploadHandler, "chunk_size", chunk_size)
    lines = [request_line("a"), "", request_line("b", method="GET"), "{oops", request_line("a"), "[1]"]
    content = ("\n".join(lines) + "\n").encode()
    response = client.post(URL, form_data(content, endpoint="/v1/embeddings"))
    assert response.status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 0
    assert upstream.state.counts["POST /v1/batches"] == 0
    shown = response.context["validation"]
    expected = jsonl.validate_jsonl(io.BytesIO(content), endpoint="/v1/embeddings", size=len(content))
    assert shown == expected
    assert [e.line for e in shown.errors] == [1, 2, 3, 4, 5, 6]
    html = response.content.decode()
    # One label per line error: "line 4 is not valid JSON…", not "line 4 Line 4 is…".
    assert '<span class="line-no">line 4</span> is not valid JSON' in html
    assert "Line 4" not in html


def test_the_endpoint_chosen_on_the_form_is_applied_to_the_check_made_before_the_form_was_read(
    client, upstream, no_second_read
):
    content = (request_line("a") + "\n").encode()
    response = client.post(URL, form_data(content, endpoint="/v1/responses"))
    assert response.status_code == 400
    assert "chosen endpoint is /v1/responses" in response.content.decode()
    assert upstream.state.counts["POST /v1/files"] == 0
    # The same bytes with the endpoint taken from the file are fine.
    assert client.post(URL, form_data(content, token="tok-up-2")).status_code == 302


def test_a_file_the_handler_did_not_receive_is_still_checked_by_reading_it():
    validator = jsonl.JsonlValidator()
    for chunk in (b'{"custom_id": "a", "met', b'hod": "POST"}\n'):
        validator.feed(chunk)
    with pytest.raises(RuntimeError):
        validator.result()
    validator.finish()
    assert validator.result().requests == 1
    with pytest.raises(RuntimeError):
        validator.feed(b"more")
