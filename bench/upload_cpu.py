"""Where the create page's upload spends its CPU before anything goes upstream, in-process:

    DJANGO_DEBUG=1 .venv/bin/python -m bench.upload_cpu [--mb 200] [--lines 50000] [--runs 3]

Receives one multipart body holding a valid 200 MB / 50,000-line input (1) the way the create page does
now, ``batches.uploads.receive`` (streaming-form-data, the file written to an unnamed temporary file, the
JSONL check fed each chunk), (2) the same as a gunicorn worker runs it: the body parsed by gunicorn from a
socket (a socketpair fed by another thread), received in a thread of its own, with the allocator set as
``batches.tempfiles.release_memory`` sets it in the worker, (3) with Django's ``MultiPartParser`` and its
plain temporary-file handler (what the page used before, without the check), and the parts of (1) on
their own: (4) the streaming parser with nothing done with the bytes, (5) the JSONL check alone over the
file's bytes; and, as the floor of any parser, (6) reading the same bytes in 1 MB chunks, searching each
for the boundary and writing it to a temporary file. CPU seconds (``time.process_time``; for (2) the
receiving thread's ``time.thread_time``), the best of ``--runs``: steadier than wall time on a shared
machine. (2) runs last: the allocator setting stays for the rest of the process.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BOUNDARY = b"----bench-upload-cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["streamed", "gunicorn", "django", "parser", "check", "floor"],
                        help="run one case (for whole-process comparisons of two cases)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from django.core.files.uploadhandler import TemporaryFileUploadHandler
    from django.core.handlers.wsgi import WSGIRequest
    from django.http.multipartparser import MultiPartParser
    from streaming_form_data import StreamingFormDataParser
    from streaming_form_data.targets import BaseTarget

    from batches import jsonl, uploads
    from bench.large_files import make_input

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.jsonl"
        make_input(path, megabytes=args.mb, lines=args.lines)
        data = path.read_bytes()
    body = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n'
        + b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
        + b"Content-Type: application/jsonl\r\n\r\n" + data + b"\r\n--" + BOUNDARY + b"--\r\n"
    )
    content_type = "multipart/form-data; boundary=" + BOUNDARY.decode()
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))}

    class Request:
        pass

    def django_parser() -> float:
        handler = TemporaryFileUploadHandler(Request())
        handler.chunk_size = 1024 * 1024
        started = time.process_time()
        _, files = MultiPartParser(meta, io.BytesIO(body), [handler]).parse()
        seconds = time.process_time() - started
        files["file"].close()
        return seconds

    def streamed() -> float:
        environ = {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(body), "CONTENT_TYPE": content_type,
                   "CONTENT_LENGTH": str(len(body)), "PATH_INFO": "/", "SERVER_NAME": "localhost",
                   "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
        request = WSGIRequest(environ)
        request._dont_enforce_csrf_checks = True
        started = time.process_time()
        uploads.receive(request)
        seconds = time.process_time() - started
        upload = request.FILES["file"]
        if not upload.jsonl_check.result(size=upload.size).ok:
            raise RuntimeError("the generated input did not pass the check")
        upload.close()
        return seconds

    def under_gunicorn() -> float:
        import socket
        import threading

        from gunicorn.config import Config
        from gunicorn.http.parser import RequestParser
        from gunicorn.http.wsgi import create

        from batches.tempfiles import release_memory

        release_memory()  # what the worker does before the first large upload
        head = (f"POST /projects/default/batches/new/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        client, server = socket.socketpair()
        sender = threading.Thread(target=lambda: (client.sendall(head), client.sendall(body)), daemon=True)
        sender.start()
        cfg = Config()
        req = next(RequestParser(cfg, server, ("127.0.0.1", 1)))
        _, environ = create(req, server, ("127.0.0.1", 1), ("127.0.0.1", 80), cfg)
        request = WSGIRequest(environ)
        request._dont_enforce_csrf_checks = True
        seconds = []

        def work():
            started = time.thread_time()
            uploads.receive(request)
            seconds.append(time.thread_time() - started)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        sender.join()
        client.close()
        server.close()
        upload = request.FILES["file"]
        if not upload.jsonl_check.result(size=upload.size).ok:
            raise RuntimeError("the generated input did not pass the check")
        upload.close()
        return seconds[0]

    def parser_only() -> float:
        class Nothing(BaseTarget):
            def on_data_received(self, chunk):
                pass

        parser = StreamingFormDataParser(headers={"Content-Type": content_type})
        parser.register("token", Nothing())
        parser.register("file", Nothing())
        source = io.BytesIO(body)
        started = time.process_time()
        while chunk := source.read(1024 * 1024):
            parser.data_received(chunk)
        return time.process_time() - started

    def check_only() -> float:
        validator = jsonl.JsonlValidator()
        source = io.BytesIO(data)
        started = time.process_time()
        while chunk := source.read(uploads.CHUNK_BYTES):
            validator.feed(chunk)
        validator.finish()
        return time.process_time() - started

    def floor() -> float:
        source = io.BytesIO(body)
        started = time.process_time()
        with tempfile.TemporaryFile() as out:
            while chunk := source.read(1024 * 1024):
                chunk.find(b"\r\n--" + BOUNDARY)
                out.write(chunk)
        return time.process_time() - started

    cases = [
        ("streamed", "the create page: streamed, written, checked", streamed),
        ("django", "before: Django's parser, temporary file, no check", django_parser),
        ("parser", "the streaming parser alone", parser_only),
        ("check", "the JSONL check alone" + (" (msgspec fast path)" if getattr(jsonl, "FAST_PATH", False) else " (orjson)" if jsonl.orjson
                                             else " (json)"), check_only),
        ("floor", "read, find the boundary, write (the floor)", floor),
        ("gunicorn", "the create page as a gunicorn worker receives it", under_gunicorn),
    ]
    cases = [(name, run) for key, name, run in cases if args.only in (None, key)]
    print(f"{len(data) / 1e6:.0f} MB, {args.lines:,} lines; CPU seconds, best of {args.runs}; load {os.getloadavg()[0]:.2f}")
    for name, run in cases:
        print(f"  {name:<52} {min(run() for _ in range(args.runs)):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
