"""HTTP plumbing shared by every provider shape: the threaded server, body I/O, responses, dispatch.

Routing is by path (each provider module exposes ``ROUTES``) and then by key: the server's
``authenticate`` maps the request's key to a project of the route's provider, or raises that
provider's 401. Response faults are applied before auth, like a real outage.
"""

import json
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import ids
from .core.faults import HANG_MAX_SECS
from .core.outputs import anthropic_error_type

CHUNK = 64 * 1024
MAX_JSON_BODY = 10 * 1024 * 1024
DRAIN_LIMIT = 1024 * 1024

DEFAULT_FAULT_BODIES = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"),
    404: ("Not found.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout", None),
    409: ("The request conflicted with another request.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
            "have trouble figuring out how to fix this, please contact us through our help center at "
            "help.openai.com.)")


class ApiError(Exception):
    """An error answer; ``body`` defaults to OpenAI's ``{"error": {message, type, param, code}}``."""

    def __init__(self, status, message, type_="invalid_request_error", param=None, code=None, headers=None,
                 body=None):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {
            "error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = headers or {}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, emu):
        self.emu = emu
        self.open_sockets = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):  # never print tracebacks for disconnects
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-emulator/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this

    # -------------------------------------------------------------- plumbing
    def setup(self):
        super().setup()
        try:  # headers and body are written separately; avoid Nagle + delayed-ACK stalls
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.emu.state.add_connection()
        with self.server.sock_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        with self.server.sock_lock:
            self.server.open_sockets.discard(self.connection)

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError, socket.timeout, OSError):
            self.close_connection = True

    def log_message(self, fmt, *args):
        if self.server.emu.verbose:
            super().log_message(fmt, *args)

    @property
    def state(self):
        return self.server.emu.state

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")

    def arg(self, name, default=None):
        """The last value of a query parameter."""
        return self.query.get(name, [default])[-1]

    # -------------------------------------------------------------- body I/O
    def body_chunks(self):
        """Yield the request body in chunks (Content-Length or chunked)."""
        if self._body_consumed:
            return
        self._body_consumed = True
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("client went away")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(1024)
                        if t in (b"\r\n", b"\n", b""):
                            return
                while size:
                    data = self.rfile.read(min(CHUNK, size))
                    if not data:
                        raise ConnectionError("client went away")
                    size -= len(data)
                    yield data
                self.rfile.readline(8)
        else:
            remaining = self.content_length()
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise ConnectionError("client went away")
                remaining -= len(data)
                yield data

    def content_length(self):
        try:
            return max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            return 0

    def drain(self):
        """Discard an unread body so the keep-alive connection stays usable."""
        if self._body_consumed:
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or self.content_length() > DRAIN_LIMIT:
            self._body_consumed = True
            self.close_connection = True
            return
        for _ in self.body_chunks():
            pass

    def read_json(self, limit=MAX_JSON_BODY, too_large=None, bad_json=None):
        data = bytearray()
        for c in self.body_chunks():
            data.extend(c)
            if len(data) > limit:
                self.close_connection = True
                raise too_large or ApiError(400, "Request body too large.")
        if not data.strip():
            return {}
        try:
            return json.loads(bytes(data))
        except ValueError:
            raise bad_json or ApiError(400, BAD_JSON) from None

    # ------------------------------------------------------------- responses
    def send(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.drain()
        self.send_response(status)
        headers = dict(headers or {})
        # An injected request id replaces ours rather than adding a second header.
        id_header = "request-id" if self.kind == "anthropic" else "x-request-id"
        request_id = next((headers.pop(k) for k in list(headers) if k.lower() == id_header), self._request_id)
        self.send_header(id_header, str(request_id))
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.kind != "anthropic":
            self.send_header("openai-version", "2020-10-01")
            self.send_header("openai-processing-ms", str(max(1, int((time.monotonic() - self._t0) * 1000))))
        for k, v in headers.items():
            self.send_header(k, str(v))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_file(self, path, filename, content_type="application/octet-stream", not_found=None):
        """Stream a file from disk in chunks (constant memory)."""
        try:
            fh = open(path, "rb")
        except OSError:
            raise not_found from None
        with fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            self.drain()
            self.send_response(200)
            self.send_header("request-id" if self.kind == "anthropic" else "x-request-id", self._request_id)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Disposition", 'attachment; filename="%s"' % filename.replace('"', ""))
            self.end_headers()
            if self.command == "HEAD":
                return
            while True:
                data = fh.read(CHUNK)
                if not data:
                    break
                self.wfile.write(data)
            self.wfile.flush()

    # -------------------------------------------------------------- dispatch
    def _dispatch(self, method):
        self._t0 = time.monotonic()
        self._request_id = ids.request_id()
        self._body_consumed = False
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if len(path) > 1:
            path = path.rstrip("/")
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        emu = self.server.emu
        template, methods, kind, args = emu.route(path)
        self.kind = kind
        self.project = None
        try:
            if kind != "control":
                # Counted per project whenever the key names one, faulted or not (like ``counts``).
                self.state.count("%s %s" % (method, template or path), emu.key_project(self, kind))
                fault = self.state.take_fault(method, template or path)
                if fault is not None and self._apply_fault(fault):
                    return
                self.project = emu.authenticate(self, kind)
            if template is None:
                raise ApiError(404, "Invalid URL (%s %s)" % (method, path))
            handler = methods.get(method)
            if handler is None:
                allowed = ", ".join(methods)
                raise ApiError(405, "Method not allowed (%s %s). Allowed: %s." % (method, path, allowed),
                               headers={"Allow": allowed})
            handler(self, *args)
        except ApiError as e:
            self.send(e.status, e.body, headers=e.headers)
        except (ConnectionError, TimeoutError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - last resort, keep serving
            traceback.print_exc()
            try:
                self.send(500, ApiError(500, "Emulator internal error: %s" % e, "server_error").body)
            except OSError:
                self.close_connection = True

    def _close_unanswered(self):
        self.close_connection = True
        self._body_consumed = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _apply_fault(self, f):
        """Returns True when the fault produced the (non-)response itself."""
        if f.drop:
            self._close_unanswered()
            return True
        if f.hang:
            state = self.state
            with state.lock:
                state.hung += 1
            try:
                state.hang_event().wait(HANG_MAX_SECS)
            finally:
                with state.lock:
                    state.hung -= 1
            self._close_unanswered()
            return True
        if f.delay:
            time.sleep(f.delay)
        if f.truncate:
            self._send_truncated(f)
            return True
        if f.status is not None:
            body = f.body
            if body is None:
                msg, typ, code = DEFAULT_FAULT_BODIES.get(f.status, ("Emulated error.", "server_error", None))
                body = {"error": {"message": msg, "type": typ, "param": None, "code": code}}
                if self.kind == "anthropic":  # Anthropic's error shape (provider-specs NOTES.md §1.7)
                    body = {"type": "error", "error": {"type": anthropic_error_type(f.status), "message": msg},
                            "request_id": self._request_id}
            self.send(f.status, body, content_type=f.content_type or "application/json", headers=f.headers)
            return True
        return False

    def _send_truncated(self, f):
        status = f.status or 200
        body = f.body
        if body is None:
            body = {"object": "list", "data": [{"id": "batch_" + "0" * 32, "object": "batch",
                                                "status": "completed"}], "has_more": False}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.drain()
        self.close_connection = True
        self.send_response(status)
        extra = dict(f.headers)
        request_id = next((extra.pop(k) for k in list(extra) if k.lower() == "x-request-id"), self._request_id)
        self.send_header("x-request-id", str(request_id))
        self.send_header("Content-Type", f.content_type or "application/json")
        self.send_header("Content-Length", str(len(body) + 100))
        for k, v in extra.items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body[: max(1, len(body) // 2)])
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
