"""Rendered pages are gzipped for browsers that accept it; streamed file downloads are not."""

from __future__ import annotations

import pytest

import gzip

from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from dashboard.compression import PageGZipMiddleware

PAGE = b"<!doctype html><table>" + b"<tr><td>batch_abc</td><td>completed</td></tr>" * 200 + b"</table>"


def test_a_rendered_page_is_gzipped_when_the_browser_accepts_gzip():
    middleware = PageGZipMiddleware(lambda request: HttpResponse(PAGE))
    response = middleware(RequestFactory().get("/projects/default/batches/", HTTP_ACCEPT_ENCODING="gzip, deflate, br"))

    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    assert len(response.content) < len(PAGE) / 5
    assert gzip.decompress(response.content) == PAGE


def test_a_page_is_sent_plain_to_a_client_that_does_not_accept_gzip():
    middleware = PageGZipMiddleware(lambda request: HttpResponse(PAGE))
    response = middleware(RequestFactory().get("/projects/default/batches/"))

    assert not response.has_header("Content-Encoding")
    assert response.content == PAGE


def test_a_streamed_file_download_passes_through_uncompressed_with_its_length():
    chunks = [b'{"custom_id": "r1"}\n' * 500] * 4

    def view(request):
        response = StreamingHttpResponse(iter(chunks), content_type="application/jsonl")
        response["Content-Length"] = str(sum(map(len, chunks)))
        return response

    response = PageGZipMiddleware(view)(RequestFactory().get("/f.jsonl", HTTP_ACCEPT_ENCODING="gzip"))

    assert not response.has_header("Content-Encoding")
    assert response["Content-Length"] == str(sum(map(len, chunks)))
    assert b"".join(response.streaming_content) == b"".join(chunks)


@pytest.mark.django_db
def test_the_full_list_page_is_served_gzipped_through_the_middleware_stack(client, upstream):
    response = client.get("/projects/default/batches/?limit=100", HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert b"<html" in gzip.decompress(response.content)
