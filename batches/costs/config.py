"""The organization's ``[organization]`` table as last read from the projects file (the parsing, and
the projects' budgets, live in ``batches/project_money.py`` beside the rest of the file's tables)."""

from __future__ import annotations

import os
import tomllib

from ..cache import LocalCache
from ..conf import conf
from ..project_money import Organization, parse_organization

# The organization as last read, under the file's path and modification time.
_read: LocalCache[tuple, Organization | None] = LocalCache(maxsize=1)


def organization() -> Organization | None:
    """The configured ``[organization]`` (None without one, or without a projects file). Problems in
    it are reported by the projects system check; here a bad table reads as none."""
    settings = conf()
    path = settings.projects_file
    if not path:
        return None
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _read.get_or_make((path, stamp, settings.openai_base_url), lambda: _read_organization(path))


def _read_organization(path: str) -> Organization | None:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    problems: list[str] = []
    found = parse_organization(data.get("organization"), problems, conf().secret_from_env)
    return None if problems else found
