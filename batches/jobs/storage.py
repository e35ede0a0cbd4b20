"""Where a job's files live: Django's storage API (``STORAGES["default"]``), so web and workers on
several machines share them (the filesystem by default; an S3-compatible bucket through
django-storages when configured, see docs/jobs.md).

Layout under ``jobs/<folder>/``: ``in/<n>.jsonl`` the input of home chunk n (its lines, as received),
``retry/<chunk>.jsonl`` and ``retry/<chunk>.lines`` a salvage or re-split chunk's input and the input
line number of each of its requests, ``out/<n>-<version>.jsonl`` the merged answers of home chunk n in
input order (a new version on each merge, so a crash mid-write never damages the current one).
Files are written once and never modified in place.
"""

from __future__ import annotations

import array
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from django.core.files import File
from django.core.files.storage import default_storage

READ_BYTES = 1024 * 1024
ROOT = "jobs"


def new_folder() -> str:
    return uuid.uuid4().hex


def path(folder: str, *parts: str) -> str:
    return "/".join((ROOT, folder, *parts))


class _ScratchFile(File):
    """A local scratch file the storage may take over: ``FileSystemStorage`` moves a file that has a
    ``temporary_file_path`` instead of copying it (a rename on one filesystem); other storages read it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def save_local(local_path: str, name: str) -> str:
    """Put a local scratch file into storage under ``name`` (the local file may be gone afterwards);
    returns the stored name."""
    with open(local_path, "rb") as handle:
        return default_storage.save(name, _ScratchFile(handle, name=os.path.basename(name)))


def save_bytes(data: bytes, name: str) -> str:
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as handle:
        handle.write(data)
        handle.seek(0)
        return default_storage.save(name, File(handle, name=os.path.basename(name)))


def open_stored(name: str):
    return default_storage.open(name, "rb")


def iter_lines(name: str) -> Iterator[bytes]:
    """The lines of a stored file, each with its newline, one at a time."""
    with default_storage.open(name, "rb") as handle:
        pending = b""
        while block := handle.read(READ_BYTES):
            block = pending + block
            lines = block.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending + b"\n"


def iter_blocks(name: str) -> Iterator[bytes]:
    with default_storage.open(name, "rb") as handle:
        while block := handle.read(READ_BYTES):
            yield block


def read_line_numbers(name: str) -> array.array:
    numbers = array.array("I")
    with default_storage.open(name, "rb") as handle:
        numbers.frombytes(handle.read())
    return numbers


def delete(name: str) -> None:
    if name and default_storage.exists(name):
        default_storage.delete(name)


class LocalScratch:
    """A private temporary directory for one operation, removed afterwards."""

    def __enter__(self) -> str:
        self.dir = tempfile.mkdtemp(prefix="dashboard-job-")
        return self.dir

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
