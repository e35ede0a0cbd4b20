"""Receiving a batch input file at wire speed: a streaming multipart parser in place of Django's, the JSONL
check run on each chunk as it arrives, and nothing left on disk by a process that dies mid-upload.

:func:`streamed_upload` decorates a view that takes a JSONL upload (the create page; the job upload page
uses it the same way). For a ``multipart/form-data`` POST it reads the body itself with
``streaming-form-data`` (a compiled parser: about 1 GB/s here, where Django's ``MultiPartParser`` copies
each chunk three times), under gunicorn straight from the client's socket (:func:`~batches.request_body.body_reader`), writes
the file part to an unnamed temporary file and feeds every chunk to a
:class:`~batches.jsonl.JsonlValidator`, so the check ends with the last byte. The view then finds
``request.POST`` and ``request.FILES`` filled as Django would have filled them, the file being a
:class:`ReceivedFile` whose ``jsonl_check`` is the finished validator (:mod:`batches.services` takes its
result: an invalid file still uploads nothing), and ``request.upload_too_large`` set when the file is over
the Batch API's limit.

Every limit and refusal of Django's parser is kept, with Django's own exceptions (so Django answers them
exactly as before: 400 pages through ``handler400``): ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (fields),
``DATA_UPLOAD_MAX_NUMBER_FILES`` (file parts), ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (the fields' bytes; the file
is not in memory) and a malformed body (``MultiPartParserError``). A body or a file over
:data:`UPLOAD_LIMIT` (NOTES.md §6.2: 200 MB, plus room for the form's fields) is not written: the request
is marked ``upload_too_large`` and the rest of the body is read and dropped, as Django's ``StopUpload``
did, so the page can say why.

CSRF: Django's ``CsrfViewMiddleware`` reads ``request.POST`` before the view, which would parse the whole
body with Django's parser. The decorated view is therefore exempt from the middleware, and the
middleware's own check (``process_view``: Origin, Referer over HTTPS, cookie against the
``csrfmiddlewaretoken`` field or the ``X-CSRFToken`` header) is run here on the fields received so far:
when the file part starts if the token has arrived by then (the form puts ``{% csrf_token %}`` first), so
a forged request is refused before its file is read, and otherwise at the end of the body, before the
view runs. A POST never reaches the view unchecked.

Temporary files: the upload goes to :func:`tempfile.TemporaryFile`, which on Linux is an ``O_TMPFILE``
file with no name (elsewhere it is unlinked as soon as it is made): when the process stops, however it
stops, the kernel frees it, so a web process killed mid-upload leaves nothing behind. Named leftovers
of Django's own temporary upload files (``tmp*.upload*``, from before this module or from a process
killed while Django's parser held one) are removed at start (:mod:`batches.tempfiles`, called as
``dashboard/wsgi.py`` loads in each worker). After a large upload the freed heap is handed back to the system.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.parser import ParseFailedException
from streaming_form_data.targets import BaseTarget

from .jsonl import MAX_BYTES, JsonlValidator
from .request_body import body_reader
from .tempfiles import release_memory, reserve, temporary_file

# Room for the multipart boundaries and the form's other fields.
SLACK_BYTES = 1024 * 1024
UPLOAD_LIMIT = MAX_BYTES + SLACK_BYTES
# What one read of the request body asks for: large enough that the per-chunk Python work (parser call,
# write, validator feed) is small against the bytes, small enough that memory stays flat, and under the
# 1 MB that glibc maps on its own once release_memory() has fixed its threshold (each chunk and the
# parser's piece of it come from the heap and reuse its pages: 1 MB cost a fifth more CPU).
CHUNK_BYTES = 512 * 1024
# After an upload of at least this many bytes, freed heap is handed back to the system.
RELEASE_AFTER_BYTES = 16 * 1024 * 1024


class UploadTooLarge(Exception):
    """Raised inside the parser to stop receiving: the rest of the body is read and dropped."""


class CsrfRefused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__("CSRF check failed")
        self.response = response


class ReceivedFile(UploadedFile):
    """An uploaded file in an unnamed temporary file; ``jsonl_check`` is the finished validator."""

    def __init__(
        self, name: str, content_type: str, charset: str | None, check: JsonlValidator, expected: int = 0
    ) -> None:
        super().__init__(temporary_file(), name, content_type or "application/octet-stream", 0, charset)
        self.jsonl_check = check
        reserve(self.file, expected)  # at most the body's length, itself at most the limit (receive())

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.jsonl_check.feed(data)
        self.size += len(data)

    def complete(self) -> None:
        self.jsonl_check.finish()
        self.file.flush()
        self.file.seek(0)


def _sanitize_file_name(name: str) -> str:
    """What Django's parser keeps of a client's file name: the last path component (either slash), no
    HTML entities decoded into a path, nothing that is only dots."""
    name = force_str(name, errors="replace").replace("\\", "/")
    name = os.path.basename(name).strip()
    return "" if name in {"", ".", ".."} else name


class _Form(BaseTarget):
    """The one target of every part: the parser asks :meth:`matches` for each part's name (which is how
    the name reaches us), sets the file name, then calls start / data / finish."""

    def __init__(self, request: HttpRequest, *, file_field: str, too_large: bool, check: Callable[[], JsonlValidator]) -> None:
        super().__init__()
        self.request = request
        self.file_field = file_field
        self.check = check
        self.encoding = request.encoding or settings.DEFAULT_CHARSET
        self.fields = QueryDict(mutable=True, encoding=self.encoding)
        self.file: ReceivedFile | None = None
        self.too_large = too_large
        self.csrf_checked = False
        self._name = ""
        self._value: list[bytes] | None = None
        self._writing: ReceivedFile | None = None
        self._field_count = 0
        self._file_count = 0
        self._field_bytes = 0

    def matches(self, registered: str, name: str) -> bool:
        self._name = name
        return True

    def on_start(self) -> None:
        name = force_str(self._name, self.encoding, errors="replace").strip()
        self._name = name
        filename = self.multipart_filename
        self.multipart_filename = None
        self.multipart_content_type = None
        if filename is None:
            self._field_count += 1
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            if limit is not None and self._field_count > limit:
                raise TooManyFieldsSent("The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")
            self._value = []
            self._field_bytes += len(name) + 2  # as Django counts it: "&" and "=" of the urlencoded form
            self._check_field_bytes()
            return
        self._file_count += 1
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        if limit is not None and self._file_count > limit:
            raise TooManyFilesSent("The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.")
        self._value = None
        if not self.csrf_checked and _token_present(self.request, self.fields):
            _check_csrf(self.request, self.fields)
            self.csrf_checked = True
        filename = _sanitize_file_name(filename)
        if name != self.file_field or self.file is not None or not filename:
            return  # a part the form does not read: received and dropped, like any unknown field
        if self.too_large:
            raise UploadTooLarge
        self._writing = self.file = ReceivedFile(filename, "", None, self.check(), _content_length(self.request))

    def set_multipart_content_type(self, content_type: str) -> None:
        if self._writing is not None:
            self._writing.content_type = content_type

    def on_data_received(self, chunk: bytes) -> None:
        if self._value is not None:
            self._field_bytes += len(chunk)
            self._check_field_bytes()
            self._value.append(chunk)
        elif self._writing is not None:  # never more than CONTENT_LENGTH: Django's LimitedStream
            self._writing.write(chunk)

    def on_finish(self) -> None:
        if self._value is not None:
            self.fields.appendlist(self._name, force_str(b"".join(self._value), self.encoding, errors="replace"))
            self._value = None
        elif self._writing is not None:
            self._writing.complete()
            self._writing = None

    def _check_field_bytes(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and self._field_bytes > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    def discard_file(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = self._writing = None


def _token_present(request: HttpRequest, fields: QueryDict) -> bool:
    return bool(fields.get("csrfmiddlewaretoken")) or settings.CSRF_HEADER_NAME in request.META


def _csrf_protected(request: HttpRequest) -> None:
    """Stands for the view in the middleware's check: a view that is not exempt."""


def _check_csrf(request: HttpRequest, fields: QueryDict) -> None:
    """Django's own CSRF check of this request, with ``fields`` as its POST data."""
    request._post, request._files = fields, MultiValueDict()
    refusal = CsrfViewMiddleware(_csrf_protected).process_view(request, _csrf_protected, (), {})
    if refusal is not None:
        raise CsrfRefused(refusal)


def _content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0  # Django reads such a body as empty too


def _drain(read: Callable[[int], bytes]) -> None:
    while read(CHUNK_BYTES):
        pass


def receive(
    request: HttpRequest, *, file_field: str = "file", limit: int | None = None,
    check: Callable[[], JsonlValidator] = JsonlValidator,
) -> None:
    """Read a multipart POST body into ``request.POST`` / ``request.FILES`` (see the module docstring):
    ``check()`` makes the validator fed with the file, a body over ``limit`` bytes (default
    :data:`UPLOAD_LIMIT`) is not written. Raises :class:`CsrfRefused` (its ``response`` is Django's 403)
    or one of Django's request errors."""
    limit = UPLOAD_LIMIT if limit is None else limit
    form = _Form(request, file_field=file_field, too_large=_content_length(request) > limit, check=check)
    request.upload_too_large = False
    received = 0
    read = body_reader(request)
    try:
        try:
            parser = StreamingFormDataParser(headers={"Content-Type": request.META.get("CONTENT_TYPE", "")})
        except ParseFailedException as err:
            raise MultiPartParserError(f"Invalid multipart body: {err}.") from err
        parser.register("*", form, form.matches)
        try:
            while chunk := read(CHUNK_BYTES):
                received += len(chunk)
                parser.data_received(chunk)
        except UploadTooLarge:
            form.discard_file()
            _drain(read)
        except (ParseFailedException, UnicodeDecodeError) as err:
            raise MultiPartParserError(f"The multipart body could not be read: {err}.") from err
        if form._writing is not None:  # the body ended inside the file: the upload was interrupted
            form.discard_file()
        if not form.csrf_checked:
            _check_csrf(request, form.fields)
    except BaseException:
        form.discard_file()
        raise
    finally:
        if received >= RELEASE_AFTER_BYTES:
            request.upload_release_memory = True
    form.fields._mutable = False
    files = MultiValueDict()
    if form.file is not None:
        files[file_field] = form.file
    request._post, request._files = form.fields, files
    request.upload_too_large = form.too_large


def streamed_upload(
    file_field: str = "file", *, allowed: Callable[[HttpRequest], bool] | None = None,
    limit: Callable[[HttpRequest], int] | None = None,
    check: Callable[[HttpRequest], JsonlValidator] | None = None,
):
    """Decorate a view that takes a JSONL upload in the form field ``file_field`` (see the module
    docstring). ``allowed(request)`` False: the view is called without the body being read (it answers
    its own refusal, and must not act on a POST then). ``limit(request)``: the most body bytes written
    (default :data:`UPLOAD_LIMIT`); ``check(request)``: the validator to feed (default
    ``JsonlValidator()``), e.g. one for the project's provider. Put it inside ``project_view`` so that
    ``request.project`` is known to these callables."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method != "POST" or (allowed is not None and not allowed(request)):
                # Not a POST, or one the view refuses without acting on it: the body is not read.
                request.upload_too_large = False
                return view(request, *args, **kwargs)
            if not request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data"):
                request.upload_too_large = False
                try:
                    _check_csrf_plain(request)
                except CsrfRefused as refused:
                    return refused.response
                return view(request, *args, **kwargs)
            if _content_length(request) >= RELEASE_AFTER_BYTES:
                release_memory()  # before the first large upload too: it fixes the allocator's threshold
            try:
                receive(
                    request, file_field=file_field, limit=limit(request) if limit else None,
                    check=(lambda: check(request)) if check else JsonlValidator,
                )
            except CsrfRefused as refused:
                return refused.response
            try:
                response = view(request, *args, **kwargs)
            except BaseException:
                _release(request)
                raise
            # Freeing a 200 MB temporary file takes 30-50 ms: done once the answer has been sent (Django
            # calls a response's closers when the server closes it), not before.
            closers = getattr(response, "_resource_closers", None)
            if closers is None:
                _release(request)
            else:
                closers.append(functools.partial(_release, request))
            return response

        # The middleware would parse the body with Django's parser to find the token; the check is made
        # by receive() instead, on every POST (see the module docstring).
        wrapper.csrf_exempt = True
        return wrapper

    return decorate


def _release(request: HttpRequest) -> None:
    """Close (and so free) the request's temporary files, then hand a large upload's heap back."""
    for upload in request._files.values():
        upload.close()
    if getattr(request, "upload_release_memory", False):
        release_memory()


def _check_csrf_plain(request: HttpRequest) -> None:
    """The middleware's check for a POST that is not streamed (Django reads its small body)."""
    refusal = CsrfViewMiddleware(_csrf_protected).process_view(request, _csrf_protected, (), {})
    if refusal is not None:
        raise CsrfRefused(refusal)


class _UnnamedTemporaryUploadedFile(UploadedFile):
    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        super().__init__(temporary_file(), name, content_type, size, charset, content_type_extra)


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's handler for any other multipart POST (no other view takes a file, but anyone may send
    one): the file goes to an unnamed temporary file, and a file over the limit stops the upload."""

    chunk_size = CHUNK_BYTES

    def new_file(self, *args, **kwargs):
        super(TemporaryFileUploadHandler, self).new_file(*args, **kwargs)
        self.file = _UnnamedTemporaryUploadedFile(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > UPLOAD_LIMIT:
            raise StopUpload(connection_reset=False)
        self.file.write(raw_data)
