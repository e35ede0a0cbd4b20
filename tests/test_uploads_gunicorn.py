"""Under gunicorn the upload's body is read from the client's socket itself (batches.request_body.body_reader):
the request is parsed here by gunicorn's own parser from a real socket, and the outcome must be the one
of the plain path (Django's request.read): the same fields, the same file, the same check; the
connection's next request (keep-alive, pipelined) is left intact, and an oversized or interrupted body
behaves as before."""

from __future__ import annotations

import io
import json
import os
import socket
import tempfile
import threading

import pytest
from django.core.handlers.wsgi import WSGIRequest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import create

from batches import tempfiles, uploads

pytestmark = pytest.mark.django_db

BOUNDARY = "----gunicorn-test"


def jsonl(n: int) -> bytes:
    lines = [
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "m", "messages": [{"role": "user", "content": "x" * (i % 50)}]}})
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def multipart(content: bytes, *, fields=(("token", "t1"), ("endpoint", "auto"))) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode() + content + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def http_request(body: bytes, *, length: int | None = None, path="/upload") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """A client socket sending ``raw`` from a thread (then closing its side when ``close``), and the
    server side read by gunicorn's parser as a gthread worker reads it."""

    def __init__(self, raw: bytes, *, close: bool = True) -> None:
        self.client, self.server = socket.socketpair()
        self.server.setblocking(True)

        def send():
            self.client.sendall(raw)
            if close:
                self.client.shutdown(socket.SHUT_WR)

        self.thread = threading.Thread(target=send, daemon=True)
        self.thread.start()
        self.cfg = Config()
        self.parser = RequestParser(self.cfg, self.server, ("127.0.0.1", 1))

    def next_request(self) -> WSGIRequest:
        req = next(self.parser)
        _, environ = create(req, self.server, ("127.0.0.1", 1), ("127.0.0.1", 8000), self.cfg)
        request = WSGIRequest(environ)
        request._dont_enforce_csrf_checks = True
        return request

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.thread.join(5)
        self.client.close()
        self.server.close()


def plain_request(body: bytes) -> WSGIRequest:
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/upload", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
    }
    request = WSGIRequest(environ)
    request._dont_enforce_csrf_checks = True
    return request


def outcome(request: WSGIRequest):
    upload = request.FILES.get("file")
    if upload is None:
        return dict(request.POST.lists()), None, None, request.upload_too_large
    content = upload.read()
    result = upload.jsonl_check.result(size=upload.size)
    upload.close()
    return dict(request.POST.lists()), content, result, request.upload_too_large


@pytest.mark.parametrize("chunk", [97, 4096, uploads.CHUNK_BYTES])
def test_the_socket_path_gives_what_the_plain_path_gives(monkeypatch, chunk):
    monkeypatch.setattr(uploads, "CHUNK_BYTES", chunk)
    content = jsonl(300)
    body = multipart(content)
    want = plain_request(body)
    uploads.receive(want)

    readers = []
    real = uploads.body_reader
    monkeypatch.setattr(uploads, "body_reader", lambda request: readers.append(real(request)) or readers[-1])
    with Connection(http_request(body)) as conn:
        request = conn.next_request()
        uploads.receive(request)
        assert readers[0] != request.read  # the socket path was taken
        got = outcome(request)
        assert got == outcome(want)
        assert got[1] == content and got[2].ok and got[2].requests == 300
        assert request.environ["wsgi.input"].reader.length == 0  # gunicorn knows the body was read


def test_the_next_request_on_the_connection_is_left_for_gunicorn():
    first = multipart(jsonl(20))
    second = multipart(jsonl(3), fields=(("token", "second"),))
    # Both requests in one send: gunicorn's first read holds bytes of the second one.
    with Connection(http_request(first) + http_request(second, path="/next")) as conn:
        request = conn.next_request()
        uploads.receive(request)
        assert request.POST["token"] == "t1" and outcome(request)[2].requests == 20
        following = conn.next_request()
        assert following.path == "/next"
        uploads.receive(following)
        fields, content, result, _ = outcome(following)
        assert fields["token"] == ["second"] and content == jsonl(3) and result.ok


def test_a_small_pipelined_pair_read_in_one_piece_still_splits_where_the_first_body_ends(monkeypatch):
    monkeypatch.setattr(uploads, "CHUNK_BYTES", 1024 * 1024)
    first = multipart(jsonl(1))
    second = multipart(jsonl(2), fields=(("token", "second"),))
    with Connection(http_request(first) + http_request(second, path="/next")) as conn:
        request = conn.next_request()
        uploads.receive(request)
        assert outcome(request)[1] == jsonl(1)
        following = conn.next_request()
        uploads.receive(following)
        assert outcome(following)[1] == jsonl(2)


def test_a_body_over_the_limit_is_read_and_dropped_and_the_next_request_still_parses():
    body = multipart(jsonl(200))
    with Connection(http_request(body) + http_request(multipart(jsonl(1)), path="/next")) as conn:
        request = conn.next_request()
        uploads.receive(request, limit=len(body) // 2)
        assert request.upload_too_large and "file" not in request.FILES
        assert request.environ["wsgi.input"].reader.length == 0
        following = conn.next_request()
        uploads.receive(following)
        assert outcome(following)[1] == jsonl(1)


def test_a_body_cut_short_by_the_client_leaves_no_file():
    body = multipart(jsonl(200))
    with Connection(http_request(body[: len(body) // 2], length=len(body))) as conn:
        request = conn.next_request()
        uploads.receive(request)
        assert "file" not in request.FILES


def test_a_body_already_read_from_is_read_the_plain_way():
    with Connection(http_request(multipart(jsonl(5)))) as conn:
        request = conn.next_request()
        request.read(10)
        assert uploads.body_reader(request) == request.read


def test_the_temporary_file_is_reserved_for_the_body_and_keeps_the_files_size(monkeypatch):
    reserved = []
    real = uploads.reserve
    monkeypatch.setattr(uploads, "reserve", lambda handle, nbytes: reserved.append(nbytes) or real(handle, nbytes))
    content = jsonl(50)
    body = multipart(content)
    request = plain_request(body)
    uploads.receive(request)
    assert reserved == [len(body)]
    upload = request.FILES["file"]
    assert os.fstat(upload.file.fileno()).st_size == upload.size == len(content)
    assert upload.read() == content
    upload.close()


def test_reserving_disk_for_a_temporary_file_leaves_its_size_alone():
    with tempfile.TemporaryFile() as handle:
        done = tempfiles.reserve(handle, 4 * 1024 * 1024)
        assert os.fstat(handle.fileno()).st_size == 0
        if done:  # Linux, a filesystem with fallocate
            assert os.fstat(handle.fileno()).st_blocks * 512 >= 4 * 1024 * 1024
        handle.write(b"abc")
        handle.flush()
        assert os.fstat(handle.fileno()).st_size == 3
    assert tempfiles.reserve(io.BytesIO(), 10) is False


def test_the_temporary_file_is_freed_once_the_answer_is_sent_or_at_once_when_the_view_fails(rf):
    from django.http import HttpResponse

    seen = []

    def view(request):
        seen.append(request.FILES["file"])
        return HttpResponse("ok")

    def failing(request):
        seen.append(request.FILES["file"])
        raise RuntimeError("boom")

    def post():
        from django.core.files.uploadedfile import SimpleUploadedFile

        request = rf.post("/upload", {"token": "t", "file": SimpleUploadedFile("in.jsonl", jsonl(3))})
        request._dont_enforce_csrf_checks = True
        return request

    response = uploads.streamed_upload()(view)(post())
    assert not seen[0].closed  # still open while the answer goes out...
    response.close()  # ...which the server does once it has sent it
    assert seen[0].closed
    with pytest.raises(RuntimeError):
        uploads.streamed_upload()(failing)(post())
    assert seen[1].closed
