"""Compress rendered pages; leave file downloads and static files alone.

A 20-row list page is about 40 KB of HTML and a 100-row page about 140 KB, but gzip takes them to a
tenth of that (measured by ``bench/run``, see docs/performance.md). Static files never reach this
middleware: WhiteNoise answers them earlier with its precompressed copies.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware


class PageGZipMiddleware(GZipMiddleware):
    """Django's GZipMiddleware, including its BREACH mitigation (a random-length gzip header; CSRF tokens
    are also masked afresh per response), for non-streaming responses only.

    Streaming responses are file contents proxied from the upstream (up to hundreds of MB): compressing
    them on the fly would spend a worker's CPU on every byte and cut download throughput, and Django's
    streaming compressor flushes per chunk.
    """

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.streaming:
            return response
        return super().process_response(request, response)
