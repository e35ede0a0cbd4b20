"""Downloads of a batch's files through the dashboard: streamed, byte for byte, named after the batch."""

from __future__ import annotations

import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from batch_files import file_bytes, input_line, make_batch

pytestmark = pytest.mark.django_db


def download(client, batch_id, kind):
    return client.get(reverse("batches:file_download", args=["default", batch_id, kind]))


@pytest.mark.parametrize("kind, attr", [("output", "output_file_id"), ("error", "error_file_id"), ("input", "input_file_id")])
def test_each_file_streams_byte_for_byte_with_the_batch_id_in_its_name(client, upstream, tmp_path, kind, attr):
    batch = make_batch(upstream, tmp_path)
    response = download(client, batch["id"], kind)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    expected = file_bytes(upstream, batch[attr])
    assert b"".join(response.streaming_content) == expected
    assert response["Content-Disposition"] == f'attachment; filename="{batch["id"]}_{kind}.jsonl"'
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Type"].startswith("application/jsonl")
    assert "no-store" in response["Cache-Control"]


def test_a_large_file_arrives_in_many_chunks_not_one_buffer(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    path = tmp_path / "big.jsonl"
    line = json.dumps({"custom_id": "x", "response": {"status_code": 200, "body": {"text": "y" * 1000}}}) + "\n"
    with open(path, "w") as fh:
        for _ in range(5000):  # about 5 MB
            fh.write(line)
    big = upstream.state.add_file(str(path), "big.jsonl", "batch_output")["id"]
    upstream.state.batches[batch["id"]].data["output_file_id"] = big
    response = download(client, batch["id"], "output")
    chunks = list(response.streaming_content)
    assert len(chunks) > 50 and max(len(c) for c in chunks) <= 64 * 1024
    assert b"".join(chunks) == path.read_bytes()


def test_a_batch_without_that_file_is_a_404(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, error_file_id=None)
    assert download(client, batch["id"], "error").status_code == 404


def test_an_unknown_file_kind_is_a_404(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    assert download(client, batch["id"], "secrets").status_code == 404
    assert upstream.state.total_requests() == 0


def test_a_file_the_upstream_no_longer_has_is_a_404(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, with_input=False)
    assert download(client, batch["id"], "input").status_code == 404


def test_an_upstream_failure_is_an_error_page_not_a_broken_download(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    upstream.state.inject_fault(route="/v1/files/{id}/content", status=500, times=10)
    response = download(client, batch["id"], "output")
    assert response.status_code == 503 and not response.streaming
    assert "Could not download the output file" in response.content.decode()


def test_the_retry_file_downloads_with_the_lines_that_did_not_succeed(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    response = client.get(reverse("batches:retry_failed_download", args=["default", batch["id"]]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="{batch["id"]}_retry.jsonl"'
    assert b"".join(response.streaming_content).decode() == "".join(input_line(i) + "\n" for i in ["b", "d", "f"])


def test_the_retry_file_of_a_batch_whose_input_is_gone_is_a_404(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, with_input=False)
    assert client.get(reverse("batches:retry_failed_download", args=["default", batch["id"]])).status_code == 404
