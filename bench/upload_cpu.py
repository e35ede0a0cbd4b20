"""Where the create page's upload spends its CPU before anything goes upstream, in-process:

    DJANGO_DEBUG=1 .venv/bin/python -m bench.upload_cpu [--mb 200] [--lines 50000] [--runs 3]

Parses one multipart body holding a valid 200 MB / 50,000-line input with Django's ``MultiPartParser``
and (1) Django's plain temporary-file handler, (2) the dashboard's handler checking every line with
``json``, (3) the same with orjson (when installed); and, as the floor of any parser, reads the same
bytes in 1 MB chunks, searches each for the boundary and writes it to a temporary file. CPU seconds
(``time.process_time``), the best of ``--runs``: steadier than wall time on a shared machine.
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
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from django.core.files.uploadhandler import TemporaryFileUploadHandler
    from django.http.multipartparser import MultiPartParser

    from batches import jsonl
    from batches.uploads import CappedTemporaryFileUploadHandler
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
    meta = {"CONTENT_TYPE": "multipart/form-data; boundary=" + BOUNDARY.decode(), "CONTENT_LENGTH": str(len(body))}

    class Request:
        pass

    def parse(handler_class) -> float:
        handler = handler_class(Request())
        handler.chunk_size = 1024 * 1024
        started = time.process_time()
        _, files = MultiPartParser(meta, io.BytesIO(body), [handler]).parse()
        seconds = time.process_time() - started
        upload = files["file"]
        check = getattr(upload, "jsonl_check", None)
        if check is not None and not check.result(size=upload.size).ok:
            raise RuntimeError("the generated input did not pass the check")
        upload.close()
        return seconds

    def floor() -> float:
        source = io.BytesIO(body)
        started = time.process_time()
        with tempfile.TemporaryFile() as out:
            while chunk := source.read(1024 * 1024):
                chunk.find(b"\r\n--" + BOUNDARY)
                out.write(chunk)
        return time.process_time() - started

    fast = jsonl._fast_loads
    cases = [("Django's parser, plain temporary file", lambda: parse(TemporaryFileUploadHandler))]
    cases.append(("... with the line check, json", lambda: (setattr(jsonl, "_fast_loads", None),
                                                             parse(CappedTemporaryFileUploadHandler))[1]))
    if fast is not None:
        cases.append(("... with the line check, orjson", lambda: (setattr(jsonl, "_fast_loads", fast),
                                                                   parse(CappedTemporaryFileUploadHandler))[1]))
    cases.append(("read, find the boundary, write (the floor)", floor))
    print(f"{len(data) / 1e6:.0f} MB, {args.lines:,} lines; CPU seconds, best of {args.runs}; load {os.getloadavg()[0]:.2f}")
    for name, run in cases:
        print(f"  {name:<46} {min(run() for _ in range(args.runs)):.3f} s")
    jsonl._fast_loads = fast
    return 0


if __name__ == "__main__":
    sys.exit(main())
