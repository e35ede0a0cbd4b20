"""Reading a file: the one reader of JSON lines, for input, output and error files alike.

Files can be 200 MB, so a file is never held in memory: its bytes arrive in chunks and are cut into
lines as they come. A line is numbered as an editor numbers it (blank lines count); blank lines are
skipped, a line that is not JSON is logged and skipped, a JSON value that is not an object is skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import orjson

from .. import selectors
from ..projects import Project

logger = logging.getLogger(__name__)


class JsonLine(NamedTuple):
    number: int
    obj: dict
    #: The line as it came, without its line ending.
    raw: bytes


def split_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its ending) for each line of a stream of byte chunks."""
    number, rest = 0, b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            number += 1
            yield number, raw.removesuffix(b"\r")
    if rest:
        yield number + 1, rest.removesuffix(b"\r")


def parse_object(raw: bytes) -> dict | None:
    """The JSON object of one line, or None when the line holds another JSON value. Raises ValueError
    when the line is not JSON at all (RecursionError when it is nested too deeply for ``json``)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson is strict where the standard library is not (NaN, Infinity): accept what json accepts.
        obj = json.loads(raw)
    return obj if isinstance(obj, dict) else None


def json_objects(chunks: Iterable[bytes], *, name: str) -> Iterator[JsonLine]:
    """Every JSON object line of a stream of byte chunks; ``name`` says which file in the log."""
    for number, raw in split_lines(chunks):
        if not raw.strip():
            continue
        try:
            obj = parse_object(raw)
        except (ValueError, RecursionError):
            logger.warning("file %s line %d is not JSON (or nested too deeply); skipped", name, number)
            continue
        if obj is not None:
            yield JsonLine(number, obj, raw)


def file_objects(project: Project, file_id: str) -> Iterator[JsonLine]:
    """Every JSON object line of an upstream file, streamed; the connection is released at the end,
    or when the caller stops early. Raises :class:`~batches.upstream.UpstreamError` when the file
    can not be opened."""
    content = selectors.file_content_open(project, file_id)
    try:
        yield from json_objects(content, name=file_id)
    finally:
        content.close()
