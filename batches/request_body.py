"""Reading a request body at wire speed: under gunicorn, straight from the client's socket.

:func:`body_reader` is how :mod:`batches.uploads` reads an upload of up to 200 MB. It relies on gunicorn's
reader classes (pinned in requirements.txt) and checks their types before it uses them: with another
server, a chunked or TLS body, a body already read from, or a gunicorn whose classes differ, it returns
``request.read`` and the upload goes through the WSGI stream as before.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from django.http import HttpRequest

try:  # the server the dashboard runs under (requirements.txt); any other reads through Django
    from gunicorn.http.body import Body as _GunicornBody
    from gunicorn.http.body import LengthReader as _GunicornLengthReader
    from gunicorn.http.unreader import SocketUnreader as _GunicornSocketUnreader
except ImportError:  # pragma: no cover
    _GunicornBody = _GunicornLengthReader = _GunicornSocketUnreader = None

_WAITALL = getattr(socket, "MSG_WAITALL", 0)


def body_reader(request: HttpRequest) -> Callable[[int], bytes]:
    """``read(n)``: the next at most ``n`` bytes of the body, ``b""`` at its end.

    Under gunicorn a body of known length is read from the client's socket itself: gunicorn's reader
    copies every piece through two ``BytesIO`` buffers and asks the socket for 1 MB at a time, an
    allocation that glibc maps and unmaps on its own once :func:`~batches.tempfiles.release_memory` has
    fixed the threshold, so every page of the body was faulted in up to three times: more CPU than the
    JSONL check. Here one ``recv`` fills each chunk (``MSG_WAITALL``). What gunicorn read past the
    headers is taken first, and its reader's count of the bytes left is kept, so the connection's next
    request (keep-alive) and a body left unread behave as before. Any other server, a chunked body, or a
    body already read from goes through ``request.read``."""
    stream = request.META.get("wsgi.input")
    if _GunicornBody is None or type(stream) is not _GunicornBody or getattr(request, "_read_started", True) or stream.buf.tell():
        return request.read
    reader = stream.reader
    if type(reader) is not _GunicornLengthReader or type(reader.unreader) is not _GunicornSocketUnreader:
        return request.read
    unreader = reader.unreader
    sock = unreader.sock
    if type(sock) is not socket.socket or not hasattr(unreader, "take_buffered"):
        return request.read  # TLS: gunicorn's own reads
    flags = _WAITALL if sock.gettimeout() is None else 0
    request._read_started = True
    held = unreader.take_buffered()
    if len(held) > reader.length:  # the client's next request, pipelined: gunicorn keeps it
        unreader.unread(held[reader.length:])
        held = held[:reader.length]
    reader.length -= len(held)

    def read(size: int) -> bytes:
        nonlocal held
        if held:
            data, held = held[:size], held[size:]
            return data
        size = min(size, reader.length)
        if size <= 0:
            return b""
        try:
            data = sock.recv(size, flags)
        except OSError:
            stream.failed = True  # as gunicorn marks it: the connection is not reused
            raise
        reader.length -= len(data)
        return data

    return read
