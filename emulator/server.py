"""HTTP front end of the emulator (standard library only)."""

import json
import os
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import ids, multipart
from .seed import seed_projects
from .state import ENDPOINTS, FILE_PURPOSES, EmulatorState
from .webhooks import DEFAULT_RETRY_DELAYS

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

CHUNK = 64 * 1024
MAX_JSON_BODY = 10 * 1024 * 1024
DRAIN_LIMIT = 1024 * 1024

ROUTES = [
    # (regex, template, {method: handler name})
    (re.compile(r"^/v1/batches$"), "/v1/batches", {"GET": "list_batches", "POST": "create_batch"}),
    (re.compile(r"^/v1/batches/([^/]+)$"), "/v1/batches/{id}", {"GET": "retrieve_batch"}),
    (re.compile(r"^/v1/batches/([^/]+)/cancel$"), "/v1/batches/{id}/cancel", {"POST": "cancel_batch"}),
    (re.compile(r"^/v1/files$"), "/v1/files", {"GET": "list_files", "POST": "upload_file"}),
    (re.compile(r"^/v1/files/([^/]+)$"), "/v1/files/{id}", {"GET": "retrieve_file", "DELETE": "delete_file"}),
    (re.compile(r"^/v1/files/([^/]+)/content$"), "/v1/files/{id}/content", {"GET": "file_content"}),
    (re.compile(r"^/_emulator/stats$"), "/_emulator/stats", {"GET": "ctl_stats"}),
    (re.compile(r"^/_emulator/reset-counts$"), "/_emulator/reset-counts", {"POST": "ctl_reset_counts"}),
    (re.compile(r"^/_emulator/faults$"), "/_emulator/faults", {"POST": "ctl_add_fault", "DELETE": "ctl_clear_faults"}),
    (re.compile(r"^/_emulator/advance$"), "/_emulator/advance", {"POST": "ctl_advance"}),
    (re.compile(r"^/_emulator/reset$"), "/_emulator/reset", {"POST": "ctl_reset"}),
]

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


class ApiError(Exception):
    def __init__(self, status, message, type_="invalid_request_error", param=None, code=None, headers=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = headers or {}


def _mask_key(key):
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * min(len(key) - 7, 40) + key[-4:]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, emu):
        self.emu = emu
        self.open_sockets = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):  # never print tracebacks for disconnects
        import sys

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

    # -------------------------------------------------------------- body I/O
    def _body_chunks(self):
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
            remaining = self._content_length()
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise ConnectionError("client went away")
                remaining -= len(data)
                yield data

    def _content_length(self):
        try:
            return max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            return 0

    def _drain(self):
        """Discard an unread body so the keep-alive connection stays usable."""
        if self._body_consumed:
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or self._content_length() > DRAIN_LIMIT:
            self._body_consumed = True
            self.close_connection = True
            return
        for _ in self._body_chunks():
            pass

    def _read_json(self):
        data = bytearray()
        for c in self._body_chunks():
            data.extend(c)
            if len(data) > MAX_JSON_BODY:
                raise ApiError(400, "Request body too large.")
        if not data.strip():
            return {}
        try:
            return json.loads(bytes(data))
        except ValueError:
            raise ApiError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                "JSON. If you have trouble figuring out how to fix this, please contact us through our help center "
                "at help.openai.com.)",
            )

    # ------------------------------------------------------------- responses
    def _send(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self._drain()
        self.send_response(status)
        headers = {k: v for k, v in (headers or {}).items()}
        # An injected x-request-id replaces ours rather than adding a second header.
        request_id = next((headers.pop(k) for k in list(headers) if k.lower() == "x-request-id"), self._request_id)
        self.send_header("x-request-id", str(request_id))
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("openai-version", "2020-10-01")
        self.send_header("openai-processing-ms", str(max(1, int((time.monotonic() - self._t0) * 1000))))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, e):
        self._send(e.status, e.body, headers=e.headers)

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
        template, handler, arg, allowed = None, None, None, None
        for rx, tpl, methods in ROUTES:
            m = rx.match(path)
            if m:
                template = tpl
                allowed = methods
                handler = methods.get(method)
                arg = urllib.parse.unquote(m.group(1)) if m.groups() else None
                break
        control = path.startswith("/_emulator/")
        self.project = None
        try:
            if not control:
                # Counted per project whenever the token names one, faulted or not (like ``counts``).
                self.state.count("%s %s" % (method, template or path), self._token_project())
                fault = self.state.take_fault(method, template or path)
                if fault is not None and self._apply_fault(fault):
                    return
                self.project = self._check_auth()
            if template is None:
                raise ApiError(404, "Invalid URL (%s %s)" % (method, path))
            if handler is None:
                raise ApiError(405, "Method not allowed (%s %s). Allowed: %s." % (method, path, ", ".join(allowed)),
                               headers={"Allow": ", ".join(allowed)})
            fn = getattr(self, "h_" + handler)
            if arg is not None:
                fn(arg)
            else:
                fn()
        except ApiError as e:
            self._send_error(e)
        except (ConnectionError, TimeoutError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - last resort, keep serving
            import traceback

            traceback.print_exc()
            try:
                self._send_error(ApiError(500, "Emulator internal error: %s" % e, "server_error"))
            except OSError:
                self.close_connection = True

    def _apply_fault(self, f):
        """Returns True when the fault produced the (non-)response itself."""
        if f.drop:
            self.close_connection = True
            self._body_consumed = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if f.delay:
            time.sleep(f.delay)
        if f.truncate:
            status = f.status or 200
            body = f.body
            if body is None:
                body = {"object": "list", "data": [{"id": "batch_" + "0" * 32, "object": "batch",
                                                    "status": "completed"}], "has_more": False}
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            self._drain()
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
            return True
        if f.status is not None:
            body = f.body
            if body is None:
                msg, typ, code = DEFAULT_FAULT_BODIES.get(f.status, ("Emulated error.", "server_error", None))
                body = {"error": {"message": msg, "type": typ, "param": None, "code": code}}
            self._send(f.status, body, content_type=f.content_type or "application/json", headers=f.headers)
            return True
        return False

    def _token_project(self):
        """The project label the bearer token selects, or None."""
        auth = self.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return None
        emu = self.server.emu
        label = emu.key_projects.get(auth[7:].strip())
        if label is None and emu.any_key:
            label = emu.state.default_project
        return label

    def _check_auth(self):
        """Returns the project of the bearer token; 401 when there is none or it is unknown."""
        auth = self.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) "
                "if you're accessing the API from your browser and are prompted for a username and password. You "
                "can obtain an API key from https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        label = self._token_project()
        if label is None:
            raise ApiError(
                401,
                "Incorrect API key provided: %s. You can find your API key at "
                "https://platform.openai.com/account/api-keys." % _mask_key(auth[7:].strip()),
                code="invalid_api_key",
            )
        return label

    # -------------------------------------------------------------- batches
    def h_list_batches(self):
        raw = self.query.get("limit", ["20"])[-1]
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(400, "Invalid 'limit': expected an integer, but got '%s' instead." % raw[:64],
                           param="limit", code="invalid_type")
        if limit < 1:
            raise ApiError(400, "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %d "
                                "instead." % limit, param="limit", code="integer_below_min_value")
        if limit > 100:
            raise ApiError(400, "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got %d "
                                "instead." % limit, param="limit", code="integer_above_max_value")
        after = self.query.get("after", [None])[-1] or None
        res = self.state.list_page(after, limit, self.project)
        if res is None:  # unknown id, or a batch of another project: the same answer
            raise ApiError(400, "No batch found with id '%s'." % after[:128], param="after")
        page, has_more = res
        self._send(200, {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        })

    def h_retrieve_batch(self, bid):
        b = self.state.get_batch(bid, self.project)
        if b is None:
            raise ApiError(404, "No batch found with id '%s'." % bid)
        self._send(200, b)

    def h_cancel_batch(self, bid):
        b, err = self.state.cancel_batch(bid, project=self.project)
        if err == "not_found":
            raise ApiError(404, "No batch found with id '%s'." % bid)
        if err == "conflict":
            raise ApiError(409, "Cannot cancel a batch with status '%s'." % b["status"])
        self._send(200, b)

    def h_create_batch(self):
        body = self._read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid type for request body: expected an object.", code="invalid_type")
        allowed = {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
        for k in body:
            if k not in allowed:
                raise ApiError(400, "Unrecognized request argument supplied: %s" % k, param=k,
                               code="unknown_parameter")
        for k in ("input_file_id", "endpoint", "completion_window"):
            if body.get(k) is None:
                raise ApiError(400, "Missing required parameter: '%s'." % k, param=k, code="missing_required_parameter")
            if not isinstance(body[k], str):
                raise ApiError(400, "Invalid type for '%s': expected a string, but got %s instead."
                               % (k, type(body[k]).__name__), param=k, code="invalid_type")
        if body["endpoint"] not in ENDPOINTS:
            raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                           % (body["endpoint"][:100], ", ".join("'%s'" % e for e in ENDPOINTS)),
                           param="endpoint", code="invalid_value")
        if body["completion_window"] != "24h":
            raise ApiError(400, "Invalid value: '%s'. Supported values are: '24h'." % body["completion_window"][:100],
                           param="completion_window", code="invalid_value")
        md = body.get("metadata")
        if md is not None:
            if not isinstance(md, dict):
                raise ApiError(400, "Invalid type for 'metadata': expected an object, but got %s instead."
                               % type(md).__name__, param="metadata", code="invalid_type")
            if len(md) > 16:
                raise ApiError(400, "Invalid 'metadata': too many properties. Expected an object with at most 16 "
                                    "properties, but got an object with %d properties instead." % len(md),
                               param="metadata", code="object_above_max_properties")
            for k, v in md.items():
                if len(k) > 64:
                    raise ApiError(400, "Invalid 'metadata': key '%s...' is longer than 64 characters." % k[:64],
                                   param="metadata", code="string_above_max_length")
                if not isinstance(v, str):
                    raise ApiError(400, "Invalid type for 'metadata.%s': expected a string, but got %s instead."
                                   % (k, type(v).__name__), param="metadata.%s" % k, code="invalid_type")
                if len(v) > 512:
                    raise ApiError(400, "Invalid 'metadata.%s': string too long. Expected a string with maximum "
                                        "length 512, but got a string with length %d instead." % (k, len(v)),
                                   param="metadata.%s" % k, code="string_above_max_length")
        oea = body.get("output_expires_after")
        if oea is not None:
            if not isinstance(oea, dict):
                raise ApiError(400, "Invalid type for 'output_expires_after': expected an object.",
                               param="output_expires_after", code="invalid_type")
            if oea.get("anchor") != "created_at":
                raise ApiError(400, "Invalid value for 'output_expires_after.anchor': expected 'created_at'.",
                               param="output_expires_after.anchor", code="invalid_value")
            secs = oea.get("seconds")
            if not isinstance(secs, int) or isinstance(secs, bool) or not 3600 <= secs <= 2592000:
                raise ApiError(400, "Invalid 'output_expires_after.seconds': expected an integer between 3600 and "
                                    "2592000.", param="output_expires_after.seconds", code="invalid_value")
        meta, _ = self.state.get_file(body["input_file_id"], self.project)
        if meta is None:
            raise ApiError(404, "No such File object: %s" % body["input_file_id"][:128], param="input_file_id")
        if meta["purpose"] != "batch":
            raise ApiError(400, "The input file %s must have purpose 'batch', but has purpose '%s'."
                           % (meta["id"], meta["purpose"]), param="input_file_id", code="invalid_value")
        b = self.state.create_batch(body["input_file_id"], body["endpoint"], "24h", md, oea, project=self.project)
        self._send(200, self.state.get_batch(b.data["id"], self.project))

    # ---------------------------------------------------------------- files
    def h_upload_file(self):
        ctype = self.headers.get("Content-Type") or ""
        if not ctype.lower().startswith("multipart/form-data"):
            raise ApiError(400, "Invalid Content-Type header (%s), expected multipart/form-data." % ctype[:100])
        try:
            boundary = multipart.boundary_from_content_type(ctype)
        except multipart.MultipartError as e:
            raise ApiError(400, str(e))
        opened = []

        def open_file(name, filename):
            p = self.state.new_file_path()
            fh = open(p, "wb")
            opened.append((p, fh))
            return fh

        try:
            fields, files = multipart.parse(self._body_chunks(), boundary, open_file)
        except multipart.MultipartError as e:
            self.close_connection = True
            self._cleanup(opened)
            raise ApiError(400, str(e))
        except BaseException:
            self._cleanup(opened)
            raise
        for _, fh in opened:
            fh.close()
        keep = files.get("file")
        for p, fh in opened:
            if keep is None or fh is not keep[1]:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        purpose = fields.get("purpose")
        unknown = [k for k in list(fields) + list(files)
                   if k not in ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]")]
        try:
            if keep is None:
                raise ApiError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
            if unknown:
                raise ApiError(400, "Unrecognized request argument supplied: %s" % unknown[0], param=unknown[0],
                               code="unknown_parameter")
            if not purpose:
                raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose",
                               code="missing_required_parameter")
            if purpose not in FILE_PURPOSES:
                raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                               % (purpose[:64], ", ".join("'%s'" % p for p in FILE_PURPOSES)),
                               param="purpose", code="invalid_value")
            expires_at = "default"
            if "expires_after[seconds]" in fields:
                try:
                    secs = int(fields["expires_after[seconds]"])
                except ValueError:
                    secs = -1
                if not 3600 <= secs <= 2592000 or fields.get("expires_after[anchor]", "created_at") != "created_at":
                    raise ApiError(400, "Invalid 'expires_after': seconds must be between 3600 and 2592000 and anchor "
                                        "'created_at'.", param="expires_after", code="invalid_value")
                expires_at = int(self.state.now()) + secs
        except ApiError:
            self._cleanup(opened)
            raise
        path = [p for p, fh in opened if fh is keep[1]][0]
        filename = os.path.basename((keep[0] or "file").replace("\\", "/")) or "file"
        meta = self.state.add_file(path, filename, purpose, expires_at=expires_at, project=self.project)
        self._send(200, meta)

    @staticmethod
    def _cleanup(opened):
        for p, fh in opened:
            try:
                fh.close()
                os.unlink(p)
            except OSError:
                pass

    def h_list_files(self):
        items = self.state.list_files(self.project)
        purpose = self.query.get("purpose", [None])[-1]
        if purpose:
            items = [f for f in items if f["purpose"] == purpose]
        order = self.query.get("order", ["desc"])[-1]
        if order not in ("asc", "desc"):
            raise ApiError(400, "Invalid value: '%s'. Supported values are: 'asc' and 'desc'." % order[:32],
                           param="order", code="invalid_value")
        items.sort(key=lambda f: (f["created_at"], f["id"]), reverse=order == "desc")
        try:
            limit = int(self.query.get("limit", ["10000"])[-1])
        except ValueError:
            raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit", code="invalid_type")
        if not 1 <= limit <= 10000:
            raise ApiError(400, "Invalid 'limit': expected a value between 1 and 10000.", param="limit",
                           code="invalid_value")
        after = self.query.get("after", [None])[-1]
        start = 0
        if after:
            idx = [i for i, f in enumerate(items) if f["id"] == after]
            start = idx[0] + 1 if idx else len(items)
        page = items[start: start + limit]
        self._send(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(items)})

    def h_retrieve_file(self, fid):
        meta, _ = self.state.get_file(fid, self.project)
        if meta is None:
            raise ApiError(404, "No such File object: %s" % fid[:128], param="id")
        self._send(200, meta)

    def h_delete_file(self, fid):
        if not self.state.delete_file(fid, self.project):
            raise ApiError(404, "No such File object: %s" % fid[:128], param="id")
        self._send(200, {"id": fid, "object": "file", "deleted": True})

    def h_file_content(self, fid):
        meta, path = self.state.get_file(fid, self.project)
        if meta is None:
            raise ApiError(404, "No such File object: %s" % fid[:128], param="id")
        try:
            fh = open(path, "rb")
        except OSError:
            raise ApiError(404, "No such File object: %s" % fid[:128], param="id")
        with fh:
            size = os.fstat(fh.fileno()).st_size
            self._drain()
            self.send_response(200)
            self.send_header("x-request-id", self._request_id)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Disposition", 'attachment; filename="%s"' % meta["filename"].replace('"', ""))
            self.end_headers()
            if self.command == "HEAD":
                return
            while True:
                data = fh.read(CHUNK)
                if not data:
                    break
                self.wfile.write(data)
            self.wfile.flush()

    # --------------------------------------------------------------- control
    def h_ctl_stats(self):
        self._send(200, self.state.stats())

    def h_ctl_reset_counts(self):
        self.state.reset_counts()
        self._send(200, self.state.stats())

    def h_ctl_add_fault(self):
        body = self._read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "Expected a JSON object of inject_fault arguments.")
        ok = {"route", "method", "status", "body", "headers", "delay", "drop", "truncate", "times", "content_type"}
        bad = [k for k in body if k not in ok]
        if bad:
            raise ApiError(400, "Unknown fault argument: %s" % bad[0], param=bad[0])
        self.state.inject_fault(**body)
        self._send(200, {"ok": True})

    def h_ctl_clear_faults(self):
        self.state.clear_faults()
        self._send(200, {"ok": True})

    def h_ctl_advance(self):
        body = self._read_json()
        try:
            secs = float(body.get("seconds", 0)) if isinstance(body, dict) else float(body)
        except (TypeError, ValueError):
            raise ApiError(400, "Expected {\"seconds\": <number>}.", param="seconds")
        now = self.state.advance(secs)
        self._send(200, {"ok": True, "now": now})

    def h_ctl_reset(self):
        self._drain()
        t = time.monotonic()
        self.state.reset()
        self._send(200, {"ok": True, "ms": round((time.monotonic() - t) * 1000, 2)})


def project_keys(api_key="sk-emulator", api_keys=None):
    """{label: key} from the constructor arguments (see EmulatorServer)."""
    if api_keys is None:
        return {} if api_key is None else {"project1": api_key}
    if isinstance(api_keys, dict):
        keys = dict(api_keys)
    else:
        keys = {"project%d" % (i + 1): k for i, k in enumerate(api_keys)}
    if not keys:
        raise ValueError("api_keys must name at least one key")
    for label, key in keys.items():
        if not isinstance(label, str) or not LABEL_RE.match(label):
            raise ValueError("invalid project label %r (letters, digits, '_', '.', '-')" % (label,))
        if not isinstance(key, str) or not key:
            raise ValueError("the key of project %r must be a non-empty string" % label)
    if len(set(keys.values())) != len(keys):
        raise ValueError("two projects cannot share an API key")
    return keys


class EmulatorServer:
    """An OpenAI-compatible Batch + Files API emulator running in a background thread.

    Projects: ``api_key="sk-x"`` is one project (label ``project1``); ``api_keys={"default": "sk-a",
    "research": "sk-b"}`` (or a list of keys, labelled ``project1..N``) gives one project per key, each
    with its own seeded data. ``api_key=None`` without ``api_keys``, or ``any_key=True``, lets any other
    bearer token in as the first project.
    """

    def __init__(self, host="127.0.0.1", port=0, api_key="sk-emulator", speed=1.0, seed=True, verbose=False,
                 api_keys=None, any_key=False, seed_count=0, seed_unfinished=10, webhook_url=None,
                 webhook_secrets=None, webhook_retry_delays=DEFAULT_RETRY_DELAYS, webhook_timeout=5.0,
                 tick_interval=0.5):
        keys = project_keys(api_key, api_keys)
        self.host = host
        self.api_keys = keys
        self.api_key = next(iter(keys.values()), None)
        self.key_projects = {k: label for label, k in keys.items()}
        self.any_key = any_key or not keys
        self.verbose = verbose
        self.state = EmulatorState(speed=speed, projects=list(keys) or ["project1"])
        try:
            seed_projects(self.state, seed=seed, seed_count=seed_count, seed_unfinished=seed_unfinished)
            if webhook_url:
                if not webhook_secrets:
                    raise ValueError("webhook_url needs webhook_secrets (one 'whsec_...' or {label: secret})")
                self.state.configure_webhooks(webhook_url, webhook_secrets, retry_delays=webhook_retry_delays,
                                              timeout=webhook_timeout, tick_interval=tick_interval)
            self._httpd = _Server((host, port), Handler, self)
        except BaseException:
            self.state.close()
            raise
        self.port = self._httpd.server_address[1]
        self._thread = None

    @property
    def base_url(self):
        return "http://%s:%d/v1" % (self.host, self.port)

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="openai-emulator", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self):
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self):
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._httpd.sock_lock:
            socks = list(self._httpd.open_sockets)
        for s in socks:  # close idle keep-alive connections
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self.state.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
