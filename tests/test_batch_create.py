"""The create page, against the emulator over real HTTP: validation before upload, upload, create,
double submits, and what happens when a step fails."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from batches import jsonl
from batches.models import AuditEntry, CreateSubmission
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

CHAT = "/v1/chat/completions"
URL = "/projects/default/batches/new/"


def request_line(custom_id, *, url=CHAT, model="gpt-4o-mini", method="POST") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": f"hello {custom_id}"}]}
    return json.dumps({"custom_id": custom_id, "method": method, "url": url, "body": body})


def jsonl_bytes(n=3, **kwargs) -> bytes:
    return ("\n".join(request_line(f"req-{i}", **kwargs) for i in range(n)) + "\n").encode()


def form_data(content: bytes | None = None, *, token="tok-1", name="requests.jsonl", **fields) -> dict:
    data = {"token": token, "endpoint": "auto", "completion_window": "24h", "input_file_id": ""}
    if content is not None:
        data["file"] = SimpleUploadedFile(name, content, content_type="application/jsonl")
    data.update(fields)
    return data


def test_the_create_page_shows_the_form_with_a_one_time_token(client, upstream):
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'name="token"' in html and 'type="file"' in html
    assert 'hx-disabled-elt="#create-submit"' in html and "batches/create.js" in html
    assert client.get(URL).context["form"].initial["token"] != response.context["form"].initial["token"]


def test_the_create_page_as_an_htmx_request_is_only_the_form(client, upstream):
    response = client.get(URL, headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.content.decode() and 'id="create-form"' in response.content.decode()


def test_the_create_page_can_be_prefilled_with_a_file_id_and_endpoint(client, upstream):
    response = client.get(URL, {"input_file_id": "file-abc", "endpoint": "/v1/embeddings", "retry_of": "batch_x"})
    form = response.context["form"]
    assert form.initial["input_file_id"] == "file-abc" and form.initial["endpoint"] == "/v1/embeddings"
    assert ("retry_of", "batch_x") in form.metadata_rows


def test_a_valid_file_is_uploaded_and_the_batch_created_then_the_operator_lands_on_it(client, upstream):
    data = form_data(
        jsonl_bytes(3),
        metadata_key=["team", "", "note"],
        metadata_value=["search", "", "first <b>run</b>"],
        output_expires_hours="48",
    )
    response = client.post(URL, data)
    assert response.status_code == 302
    batch_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert response["Location"] == reverse("batches:detail", args=["default", batch_id])
    assert upstream.state.counts["POST /v1/files"] == 1 and upstream.state.counts["POST /v1/batches"] == 1
    created = upstream.state.get_batch(batch_id)
    assert created["endpoint"] == CHAT  # "auto" took it from the file
    assert created["metadata"] == {"team": "search", "note": "first <b>run</b>"}
    assert upstream.state.batches[batch_id].output_expires_secs == 48 * 3600
    meta, path = upstream.state.get_file(created["input_file_id"])
    assert meta["purpose"] == "batch" and meta["filename"] == "requests.jsonl"
    with open(path, "rb") as fh:
        assert fh.read() == jsonl_bytes(3)
    assert CreateSubmission.objects.get(token="tok-1").batch_id == batch_id
    assert set(AuditEntry.objects.values_list("action", "outcome")) == {("upload", "success"), ("create", "success")}


def test_a_crlf_file_is_accepted_and_uploaded_unchanged(client, upstream):
    content = jsonl_bytes(2).replace(b"\n", b"\r\n")
    response = client.post(URL, form_data(content))
    assert response.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1


def test_an_explicit_endpoint_is_used(client, upstream):
    response = client.post(URL, form_data(jsonl_bytes(2, url="/v1/embeddings"), endpoint="/v1/embeddings"))
    assert response.status_code == 302
    batch_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert upstream.state.get_batch(batch_id)["endpoint"] == "/v1/embeddings"


BAD_FILES = {
    "empty": (b"", "empty"),
    "binary": (b"\x00\x01\x02PK\x03\x04" * 50, "binary"),
    "invalid utf-8": (request_line("a").replace("hello", "h\xe9llo").encode("latin-1") + b"\n", "not valid UTF-8"),
    "bom": (jsonl.BOM + jsonl_bytes(2), "byte order mark"),
    "not an object": (jsonl_bytes(1) + b'["a", "list"]\n', "is an array, not a JSON object"),
    "duplicate custom_id": (jsonl_bytes(2) + request_line("req-0").encode() + b"\n", "repeats custom_id"),
    "url mismatch": (jsonl_bytes(1) + request_line("z", url="/v1/embeddings").encode() + b"\n", "same url"),
    "two models": (jsonl_bytes(1) + request_line("z", model="o4-mini").encode() + b"\n", "only one model"),
    "method": (request_line("z", method="GET").encode() + b"\n", "only POST"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_an_invalid_file_is_refused_with_its_problems_and_nothing_is_uploaded(client, upstream, kind):
    content, expected = BAD_FILES[kind]
    response = client.post(URL, form_data(content))
    assert response.status_code == 400
    html = response.content.decode()
    assert "was not uploaded" in html and expected in html
    assert upstream.state.counts["POST /v1/files"] == 0 and upstream.state.counts["POST /v1/batches"] == 0
    assert not AuditEntry.objects.exists()


def test_too_many_lines_are_refused_and_nothing_is_uploaded(client, upstream, monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_REQUESTS", 10)
    response = client.post(URL, form_data(jsonl_bytes(11)))
    assert response.status_code == 400
    assert "more than 10 requests" in response.content.decode()
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_body_over_the_upload_limit_is_refused_before_it_reaches_the_disk_and_nothing_is_uploaded(
    client, upstream, monkeypatch, tmp_path, settings
):
    from batches import uploads

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    monkeypatch.setattr(uploads, "UPLOAD_LIMIT", 64 * 1024)
    response = client.post(URL, form_data(jsonl_bytes(2000)))  # about 250 KB
    assert response.status_code == 413
    assert "larger than 200 MB" in response.content.decode()
    assert list(tmp_path.iterdir()) == []  # nothing left on disk
    assert upstream.state.counts["POST /v1/files"] == 0


def test_a_body_within_the_upload_limit_is_accepted(client, upstream, monkeypatch):
    from batches import uploads

    monkeypatch.setattr(uploads, "UPLOAD_LIMIT", 1024 * 1024)
    response = client.post(URL, form_data(jsonl_bytes(20)))
    assert response.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1


def test_a_url_that_is_not_the_chosen_endpoint_is_refused_with_its_line_number(client, upstream):
    response = client.post(URL, form_data(jsonl_bytes(2), endpoint="/v1/responses"))
    assert response.status_code == 400
    html = response.content.decode()
    assert '<li><span class="line-no">line 1</span> has url “/v1/chat/completions”, but the chosen endpoint is /v1/responses.</li>' in html
    assert html.lower().count("line 1") == 1  # one label, not "line 1 Line 1 has url…"
    assert upstream.state.counts["POST /v1/files"] == 0


def test_many_errors_list_the_first_ones_and_the_total(client, upstream):
    content = b"".join(b"[%d]\n" % i for i in range(45))
    response = client.post(URL, form_data(content))
    html = response.content.decode()
    assert "45 problems found" in html and "and 25 more" in html
    assert html.count('class="line-no"') == jsonl.MAX_LISTED_ERRORS


def test_a_refused_file_renders_the_form_again_with_a_fresh_token_and_the_operators_choices(client, upstream):
    response = client.post(URL, form_data(b"", metadata_key=["team"], metadata_value=["ops"]))
    form = response.context["form"]
    assert form.initial["token"] != "tok-1" and ("team", "ops") in form.metadata_rows


def test_the_form_needs_a_file_or_a_file_id(client, upstream):
    response = client.post(URL, form_data(None))
    assert response.status_code == 400
    assert "Choose a JSONL file" in response.content.decode()
    assert upstream.state.total_requests() == 0


def test_the_form_has_labels_and_links_each_error_to_its_field(client, upstream):
    page = client.get(URL).content.decode()
    for field in ("id_file", "id_input_file_id", "id_endpoint", "id_completion_window", "id_output_expires_hours"):
        assert f'<label for="{field}"' in page or f'<label class="dropzone-label" for="{field}"' in page, field
    assert 'aria-describedby="id_output_expires_hours_helptext"' in page
    assert '<p class="field-hint" id="id_output_expires_hours_helptext">' in page
    bad = client.post(URL, form_data(None, input_file_id="file-abc", output_expires_hours="0")).content.decode()
    endpoint = re.search(r'<select name="endpoint"[^>]*>', bad).group(0)
    assert 'aria-invalid="true"' in endpoint and 'aria-describedby="id_endpoint_error"' in endpoint
    assert '<div class="field-error" id="id_endpoint_error"><p>Choose the endpoint' in bad
    hours = re.search(r'<input type="number" name="output_expires_hours"[^>]*>', bad).group(0)
    assert 'aria-describedby="id_output_expires_hours_helptext id_output_expires_hours_error"' in hours
    assert 'id="id_output_expires_hours_error"' in bad


def test_a_file_id_needs_an_explicit_endpoint(client, upstream):
    response = client.post(URL, form_data(None, input_file_id="file-abc"))
    assert response.status_code == 400 and "Choose the endpoint" in response.content.decode()


@pytest.mark.parametrize(
    "keys, values, message",
    [
        ([f"k{i}" for i in range(17)], ["v"] * 17, "At most 16 metadata pairs"),
        (["k" * 65], ["v"], "longer than 64 characters"),
        (["k"], ["v" * 513], "longer than 512 characters"),
        (["", "k"], ["orphan", "v"], "has no key"),
        (["k", "k"], ["a", "b"], "given twice"),
    ],
)
def test_metadata_limits_are_enforced_on_the_server(client, upstream, keys, values, message):
    response = client.post(URL, form_data(jsonl_bytes(1), metadata_key=keys, metadata_value=values))
    assert response.status_code == 400 and message in response.content.decode()
    assert upstream.state.counts["POST /v1/files"] == 0


def test_sixteen_metadata_pairs_are_accepted(client, upstream):
    keys = [f"k{i}" for i in range(16)]
    response = client.post(URL, form_data(jsonl_bytes(1), metadata_key=keys, metadata_value=["v"] * 16))
    assert response.status_code == 302


def test_an_output_expiry_outside_one_hour_to_thirty_days_is_refused(client, upstream):
    response = client.post(URL, form_data(jsonl_bytes(1), output_expires_hours="721"))
    assert response.status_code == 400 and upstream.state.counts["POST /v1/files"] == 0


def test_a_batch_can_be_created_from_an_existing_file_id(client, upstream, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl_bytes(2))
    meta = upstream.state.add_file(str(path), "in.jsonl", "batch")
    response = client.post(URL, form_data(None, input_file_id=meta["id"], endpoint=CHAT))
    assert response.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 0 and upstream.state.counts["POST /v1/batches"] == 1


def test_submitting_the_same_form_twice_creates_one_batch(client, upstream):
    first = client.post(URL, form_data(jsonl_bytes(2)))
    second = client.post(URL, form_data(jsonl_bytes(2)))
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert upstream.state.counts["POST /v1/batches"] == 1 and upstream.state.counts["POST /v1/files"] == 1
    assert CreateSubmission.objects.count() == 1


def test_a_repeat_of_a_submit_still_in_progress_says_so_and_creates_nothing(client, upstream):
    CreateSubmission.objects.create(token="tok-1", actor="someone")
    response = client.post(URL, form_data(jsonl_bytes(2)))
    assert response.status_code == 409
    assert "already submitted and is still being processed" in response.content.decode()
    assert upstream.state.total_requests() == 0


def test_a_submit_that_failed_may_be_sent_again_with_the_same_token(client, upstream):
    assert client.post(URL, form_data(b"")).status_code == 400
    assert client.post(URL, form_data(jsonl_bytes(1))).status_code == 302
    assert upstream.state.counts["POST /v1/batches"] == 1


def test_when_creating_fails_after_the_upload_the_page_offers_to_create_from_the_uploaded_file(client, upstream):
    upstream.state.inject_fault(route="/v1/batches", method="POST", status=500, times=1)
    response = client.post(URL, form_data(jsonl_bytes(2), metadata_key=["team"], metadata_value=["ops"]))
    assert response.status_code == 503
    file_id = upstream.state.list_files()[-1]["id"]
    html = response.content.decode()
    assert f"uploaded as <code>{file_id}</code>" in html and "creating the batch failed" in html
    offered = response.context["form"]
    assert offered.initial["input_file_id"] == file_id and offered.initial["endpoint"] == CHAT
    assert ("team", "ops") in offered.metadata_rows
    # Submitting the offered form creates the batch from that file, without a second upload.
    again = client.post(
        URL,
        form_data(None, token=offered.initial["token"], input_file_id=file_id, endpoint=CHAT,
                  metadata_key=["team"], metadata_value=["ops"]),
    )
    assert again.status_code == 302
    assert upstream.state.counts["POST /v1/files"] == 1
    batch_id = again["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert upstream.state.get_batch(batch_id)["input_file_id"] == file_id


def test_when_the_upload_fails_the_page_says_so_and_no_batch_is_created(client, upstream):
    upstream.state.inject_fault(route="/v1/files", method="POST", status=500, times=1)
    response = client.post(URL, form_data(jsonl_bytes(2)))
    assert response.status_code == 503
    assert "uploading it failed" in response.content.decode()
    assert upstream.state.counts["POST /v1/batches"] == 0


def test_an_htmx_submit_that_succeeds_redirects_the_browser_to_the_batch(client, upstream):
    response = client.post(URL, form_data(jsonl_bytes(1)), headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/projects/default/batches/batch_")


def test_an_htmx_submit_of_a_bad_file_answers_with_the_form_partial(client, upstream):
    response = client.post(URL, form_data(b"[1]\n"), headers=HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" not in html and "was not uploaded" in html


def test_a_post_without_csrf_token_is_refused(upstream):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(URL, form_data(jsonl_bytes(1)))
    assert response.status_code == 403 and upstream.state.total_requests() == 0


def test_a_reader_gets_no_create_form(client, upstream, proxy_mode):
    reader = proxy_mode("reader@example.com", groups=["viewers"], operator_groups=["batch-operators"])
    response = client.get(URL, headers=reader)
    assert response.status_code == 403
    html = response.content.decode()
    assert "not create them" in html and 'type="file"' not in html
