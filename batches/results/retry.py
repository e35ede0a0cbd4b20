"""The retry file: the input lines of a batch whose request did not succeed, as a new input file.

The outcomes come from the kept join when the batch has one (then only the input file is read), else
from the output and error files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

from ..projects import Project
from ..upstream import Batch, UpstreamError, UpstreamNotFound
from .join import result_outcomes
from .kept import kept_outcomes, ready_join
from .lines import JsonLine, file_objects
from .records import NOT_RUN, SUCCEEDED


def iter_retry_lines(project: Project, batch: Batch) -> Iterator[bytes]:
    """The input lines (with "\\n") whose request failed, expired or never ran, in input order.

    Raises :class:`UpstreamError` before yielding anything if a file can not be read."""
    if not batch.input_file_id:
        raise UpstreamNotFound("This batch has no input file to retry from.")
    join = ready_join(project, batch)
    outcomes = kept_outcomes(join) if join is not None else result_outcomes(project, batch)
    requests = file_objects(project, batch.input_file_id)
    first = next(requests, None)  # surface an unreadable input file before the response starts

    def retried(line: JsonLine) -> bool:
        custom_id = line.obj.get("custom_id")
        return isinstance(custom_id, str) and outcomes.get(custom_id, NOT_RUN) != SUCCEEDED

    def generate() -> Iterator[bytes]:
        if first is not None and retried(first):
            yield first.raw + b"\n"
        for line in requests:
            if retried(line):
                yield line.raw + b"\n"

    return generate()


def write_retry_file(project: Project, batch: Batch) -> tuple[tempfile._TemporaryFileWrapper, int]:
    """The retry input file on disk (caller closes it) and its number of requests."""
    handle = tempfile.NamedTemporaryFile(prefix="retry-", suffix=".jsonl")
    count = 0
    try:
        for line in iter_retry_lines(project, batch):
            handle.write(line)
            count += 1
    except (UpstreamError, OSError):
        handle.close()
        raise
    handle.flush()
    handle.seek(0)
    return handle, count
