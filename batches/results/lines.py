"""Reading a file with the one reader of JSON lines (``batches.upstream.lines``, which the providers' result
lines use too), for input, output and error files alike.

Files can be 200 MB, so a file is never held in memory: its bytes arrive in chunks and are cut into
lines as they come. A line is numbered as an editor numbers it (blank lines count); blank lines are
skipped, a line that is not JSON is logged and skipped, a JSON value that is not an object is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import selectors
from ..projects import Project
from ..upstream.lines import JsonLine, json_objects, parse_object, split_lines

__all__ = ["JsonLine", "file_objects", "json_objects", "parse_object", "split_lines"]


def file_objects(project: Project, file_id: str) -> Iterator[JsonLine]:
    """Every JSON object line of an upstream file, streamed; the connection is released at the end,
    or when the caller stops early. Raises :class:`~batches.upstream.UpstreamError` when the file
    can not be opened."""
    content = selectors.file_content_open(project, file_id)
    try:
        yield from json_objects(content, name=file_id)
    finally:
        content.close()
