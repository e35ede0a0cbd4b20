"""The upload handler of the create form: checks the JSONL file while it arrives, and refuses a file
larger than the Batch API accepts before it fills the disk.

Django's ``TemporaryFileUploadHandler`` streams an upload to a temporary file, so memory stays flat. This
subclass also

* feeds every chunk to a :class:`~batches.jsonl.JsonlValidator` as it is written, so the check of a
  200 MB file ends with its last byte instead of starting then; the finished validator rides on the
  uploaded file as ``upload.jsonl_check`` and :mod:`batches.services` reads its result (nothing is sent
  upstream unless it is clean: the rule that an invalid file uploads nothing is unchanged);
* stops writing once the body is over the limit of the project's provider (NOTES.md §6.2: 200 MB;
  Anthropic 256 MB) and discards the rest of the request, marking the request so the create form can
  say why. The line shape checked is the project's provider's too.
"""

from __future__ import annotations

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

from .jsonl import JsonlValidator, limits
from .projects import get_project
from .upstream import provider_info

# Room for the multipart boundaries and the form's other fields.
SLACK_BYTES = 1024 * 1024


def _request_provider(request) -> str | None:
    """The provider of the project in the URL (its line shape and limits), resolved before the view
    reads the body; None (OpenAI's) outside a project's pages."""
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("project") if match is not None else None
    project = get_project(slug) if isinstance(slug, str) else None
    return project.provider if project is not None else None


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    #: Bytes of request body accepted; None: the project's provider's file limit plus room for the form.
    limit: int | None = None
    # Django's default is 64 KB; 1 MB chunks cut the multipart parser's per-chunk Python overhead on a
    # 200 MB upload (bench/large_files.py) while memory stays bounded by the chunk.
    chunk_size = 1024 * 1024

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        self.provider = _request_provider(self.request)
        self.limit = type(self).limit or limits(provider_info(self.provider))[1] + SLACK_BYTES
        if content_length and content_length > self.limit:
            self._refuse()
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def new_file(self, *args, **kwargs):
        if getattr(self.request, "upload_too_large", False):
            raise StopUpload(connection_reset=False)
        super().new_file(*args, **kwargs)
        self.validator = JsonlValidator(self.provider)

    def receive_data_chunk(self, raw_data, start):
        self.received = start + len(raw_data)
        if self.received > self.limit:
            self._refuse()
            raise StopUpload(connection_reset=False)
        self.file.write(raw_data)
        self.validator.feed(raw_data)

    def file_complete(self, file_size):
        upload = super().file_complete(file_size)
        self.validator.finish()
        upload.jsonl_check = self.validator
        return upload

    def _refuse(self) -> None:
        self.request.upload_too_large = True
