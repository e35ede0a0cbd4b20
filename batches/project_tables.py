"""The shape of a table of the projects file, checked the same way for each of its tables.

Ground floor for the projects file: only the standard library, so ``projects.py``, ``project_limits.py``
and ``project_money.py`` can all use it.
"""

from __future__ import annotations


def check_table(table, where: str, known: frozenset[str], problems: list[str], *, written: str = "") -> bool:
    """Whether ``table`` is a table at all. When it is not, a sentence naming ``where`` (and how such a
    table is ``written``) goes into ``problems``; so does one for any field not in ``known``, which is
    then ignored (a misspelt field is reported, the rest of the table still read)."""
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table{f' ({written})' if written else ''}.")
        return False
    unknown = set(table) - known
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
    return True
