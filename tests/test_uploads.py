"""The create page receives its upload with a streaming multipart parser that checks the JSONL file while
it arrives: the create view uses that result (it does not read the file again), an invalid file still
uploads nothing, the outcome is the one the file validator gives whatever the chunk size, and every limit
and refusal of Django's own parser (CSRF, field and file counts, field bytes, a malformed body) holds."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches import jsonl, services, tempfiles, uploads

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
    monkeypatch.setattr(uploads, "CHUNK_BYTES", 97)  # lines cross chunks
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
    monkeypatch.setattr(uploads, "CHUNK_BYTES", chunk_size)
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


# -- CSRF: checked by Django's own middleware logic on the streamed fields ------------------------------


@pytest.fixture
def csrf_client(upstream):
    """A client that enforces CSRF like a browser session would meet it, with the cookie already set."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    page = client.get(URL)
    client.csrf_token = str(page.context["csrf_token"])
    return client


@pytest.fixture
def temporary_files(monkeypatch):
    """Count the temporary files the upload path opens."""
    opened = []
    real = uploads.temporary_file

    def counting():
        handle = real()
        opened.append(handle)
        return handle

    monkeypatch.setattr(uploads, "temporary_file", counting)
    return opened


def test_a_post_without_a_csrf_token_is_refused_and_nothing_is_uploaded(csrf_client, upstream, temporary_files):
    response = csrf_client.post(URL, form_data((request_line("a") + "\n").encode()))
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    # No token before the file: it may still come after it, so the file was received, then dropped.
    assert len(temporary_files) == 1 and temporary_files[0].closed
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_wrong_csrf_token_before_the_file_is_refused_before_the_file_is_read(csrf_client, upstream, temporary_files):
    data = {"csrfmiddlewaretoken": "x" * 64, **form_data((request_line("a") + "\n").encode())}
    response = csrf_client.post(URL, data)
    assert response.status_code == 403
    assert temporary_files == []
    assert upstream.state.counts["POST /v1/files"] == 0


def test_the_csrf_token_in_the_form_before_the_file_lets_the_upload_through(csrf_client, upstream):
    data = {"csrfmiddlewaretoken": csrf_client.csrf_token, **form_data((request_line("a") + "\n").encode())}
    assert csrf_client.post(URL, data).status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1


def test_the_csrf_token_in_the_header_lets_the_upload_through(csrf_client, upstream):
    response = csrf_client.post(URL, form_data((request_line("a") + "\n").encode()),
                                headers={"X-CSRFToken": csrf_client.csrf_token})
    assert response.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1


def test_a_csrf_token_after_the_file_is_checked_when_the_body_ends(csrf_client, upstream):
    content = (request_line("a") + "\n").encode()
    wrong = {**form_data(content), "csrfmiddlewaretoken": "y" * 64}  # the token part comes after the file
    assert csrf_client.post(URL, wrong).status_code == 403
    assert upstream.state.counts["POST /v1/files"] == 0
    right = {**form_data(content, token="tok-after"), "csrfmiddlewaretoken": csrf_client.csrf_token}
    assert csrf_client.post(URL, right).status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1


def test_a_post_from_another_origin_is_refused_even_with_the_right_token(csrf_client, upstream, temporary_files):
    data = {"csrfmiddlewaretoken": csrf_client.csrf_token, **form_data((request_line("a") + "\n").encode())}
    response = csrf_client.post(URL, data, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert temporary_files == []
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_urlencoded_post_is_still_csrf_checked(csrf_client, upstream):
    from urllib.parse import urlencode

    body = urlencode({"token": "tok-plain", "endpoint": "auto", "completion_window": "24h", "input_file_id": "file-abc"})
    response = csrf_client.post(URL, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    assert upstream.state.counts["POST /v1/batches"] == 0


def test_a_viewer_who_may_not_create_is_refused_without_the_body_being_read(client, upstream, proxy_mode, temporary_files):
    headers = proxy_mode("viewer@example.com", groups=["readers"], operator_groups="ops")
    response = client.post(URL, form_data((request_line("a") + "\n").encode()), headers=headers)
    assert response.status_code == 403
    assert temporary_files == []
    assert upstream.state.counts["POST /v1/files"] == 0


# -- Django's limits, refused as Django refuses them ------------------------------------------------------


def test_more_fields_than_django_allows_is_a_400_and_nothing_is_uploaded(client, upstream, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 6
    data = form_data((request_line("a") + "\n").encode())
    data["metadata_key"] = ["k1", "k2", "k3"]
    response = client.post(URL, data)
    assert response.status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 0


def test_more_field_bytes_than_django_allows_is_a_400_but_the_file_does_not_count(client, upstream, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big_file = ("\n".join(request_line(f"r{i}") for i in range(40)) + "\n").encode()  # about 4 KB
    assert len(big_file) > 1000
    assert client.post(URL, form_data(big_file)).status_code == 302
    response = client.post(URL, form_data(big_file, token="tok-big") | {"metadata_key": "k", "metadata_value": "v" * 1000})
    assert response.status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 1


def test_more_files_than_django_allows_is_a_400(client, upstream, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1
    data = form_data((request_line("a") + "\n").encode())
    data["extra"] = SimpleUploadedFile("other.jsonl", b"{}")
    assert client.post(URL, data).status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_malformed_multipart_body_is_a_400_not_a_500(client, upstream):
    response = client.generic("POST", URL, b"--nope\r\nnot a part", content_type="multipart/form-data; boundary=other")
    assert response.status_code == 400
    response = client.generic("POST", URL, b"whatever", content_type="multipart/form-data")  # no boundary
    assert response.status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_body_that_ends_inside_the_file_uploads_nothing(client, upstream, temporary_files):
    boundary = "cut"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\ntok-cut\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="endpoint"\r\n\r\nauto\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="completion_window"\r\n\r\n24h\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
        + request_line("a")
    ).encode()
    response = client.generic("POST", URL, body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 400
    assert "Choose a JSONL file to upload" in response.content.decode()
    assert len(temporary_files) == 1 and temporary_files[0].closed
    assert upstream.state.counts["POST /v1/files"] == 0


def test_the_client_file_name_is_reduced_to_its_last_component_before_it_goes_upstream(client, upstream):
    content = (request_line("a") + "\n").encode()
    assert client.post(URL, form_data(content) | {"file": SimpleUploadedFile("..\\..\\dir/evil name.jsonl", content)}).status_code == 302
    names = [f["meta"]["filename"] for f in upstream.state.files.values() if "evil" in f["meta"]["filename"]]
    assert names == ["evil name.jsonl"]


def test_a_file_under_another_field_name_is_not_taken_for_the_upload(client, upstream):
    data = form_data(b"")
    del data["file"]
    data["other"] = SimpleUploadedFile("a.jsonl", (request_line("a") + "\n").encode())
    response = client.post(URL, data)
    assert response.status_code == 400
    assert "Choose a JSONL file to upload" in response.content.decode()
    assert upstream.state.counts["POST /v1/files"] == 0


def test_the_temporary_file_of_an_upload_has_no_name_on_disk(client, upstream, temporary_files, tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    assert client.post(URL, form_data((request_line("a") + "\n").encode())).status_code == 302
    assert len(temporary_files) == 1
    assert list(tmp_path.iterdir()) == []


def test_old_named_upload_leftovers_are_swept_and_everything_else_is_kept(tmp_path):
    import os
    import time

    old = tmp_path / "tmpab12cd34.upload.jsonl"
    fresh = tmp_path / "tmpzz98yy76.upload"
    other = tmp_path / "tmpab12cd34.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    long_ago = time.time() - 2 * tempfiles.STALE_AFTER_SECONDS
    os.utime(old, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))
    assert tempfiles.sweep_stale_uploads(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, fresh.name]


def test_a_custom_id_is_kept_whole_when_short_and_as_a_digest_when_long():
    validator = jsonl.JsonlValidator()
    long_id = "x" * 100_000
    for custom_id in ("short", long_id, long_id + "y", long_id):
        validator.feed((request_line(custom_id) + "\n").encode())
    validator.finish()
    result = validator.result()
    assert [(e.line, e.message[:30]) for e in result.errors] == [(4, "repeats custom_id “xxxxxxxxxxx")]
    assert "first used on line 2" in result.errors[0].message
    assert sum(len(key) for key in validator.custom_ids()) < 100


@pytest.mark.parametrize("disposition", [
    b'Content-Disposition: form-data; name="file"; filename="\xff\xfe.jsonl"',
    b'Content-Disposition: attachment; name="file"',
    b"Content-Disposition: form-data",
    b"X-Nothing: at all",
])
def test_hostile_part_headers_are_a_clear_answer_never_a_500(client, upstream, disposition):
    body = (b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\ntok-h\r\n--b\r\n' + disposition
            + b"\r\n\r\n" + (request_line("a") + "\n").encode() + b"\r\n--b--\r\n")
    response = client.generic("POST", URL, body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert upstream.state.counts["POST /v1/files"] == 0
