"""The job page's upload handler: the file goes straight into :class:`~batches.jobs.ingest.JobIngest`
as it arrives (checked, split and stored chunk by chunk), never into a temporary copy of the whole
file nor into memory, whatever its size. The finished ingest rides on ``request.job_ingest``."""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers

from .ingest import JobIngest


class JobUploadHandler(FileUploadHandler):
    chunk_size = 1024 * 1024

    def __init__(self, request, limits, scratch: str) -> None:
        super().__init__(request)
        self.limits = limits
        self.scratch = scratch
        self.ingest: JobIngest | None = None

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        if field_name != "file" or self.ingest is not None:
            return  # only the one file field is read
        self.ingest = JobIngest(self.limits, self.scratch)
        self.request.job_ingest = self.ingest
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.ingest is not None and self.field_name == "file":
            self.ingest.feed(raw_data)
        return None

    def file_complete(self, file_size):
        if self.ingest is not None and self.field_name == "file":
            self.request.job_file_name = self.file_name
        return None
