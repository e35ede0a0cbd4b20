"""Query strings read by Django forms, one pattern for every page that takes parameters.

A page never refuses a bad parameter: each bad value becomes a sentence in ``form.problems`` (shown
above the page) and its field falls back to its default, so a mistyped URL still shows something
useful. (An action that would widen because of an ignored value, such as cancelling everything a
filter matches, refuses instead: the callers check ``problems``.)

The filtered list (``index/filters.py``), the live list's position (``views/browse.py``), the audit
trail (``audit.py``) and insights' date range (``oversight/insights.py``) all subclass
:class:`QueryForm`.
"""

from __future__ import annotations

import datetime as dt

from django import forms

from .vocabulary import DEFAULT_LIMIT, MAX_LIMIT

#: Dates outside these are a problem: the day after must stay a date (9999-12-31 + 1 day overflows)
#: and its start a timestamp.
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


class TextField(forms.Field):
    """A single value as stripped text, judged by the form's ``clean_<field>`` alone (no validators of
    Django's own, whose messages would not say what the page does instead)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, **kwargs)

    def to_python(self, value) -> str:
        return "" if value is None else str(value).strip()


class ListField(forms.Field):
    """Every value of a repeated parameter (``?status=a&status=b``), as a list of stripped strings."""

    widget = forms.MultipleHiddenInput

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, **kwargs)

    def to_python(self, value) -> list[str]:
        if value is None:
            return []
        values = [value] if isinstance(value, str) else list(value)
        return [str(item).strip() for item in values if str(item).strip()]


class QueryForm(forms.Form):
    """Bound to a query string (a ``QueryDict`` or a plain dict). Its ``clean_<field>`` methods never
    raise: they add a sentence with :meth:`problem` and return the default."""

    def __init__(self, data, **kwargs) -> None:
        super().__init__(data=data if data is not None else {}, **kwargs)
        self.problems: list[str] = []

    def problem(self, sentence: str) -> None:
        self.problems.append(sentence)

    @property
    def values(self) -> dict:
        """The cleaned values (each bad one replaced by its default)."""
        self.is_valid()
        return self.cleaned_data

    # -- shared readers ------------------------------------------------------------------------------

    def day(self, raw: str, label: str) -> dt.date | None:
        """An ISO date, or None with a sentence naming ``label``."""
        if not raw:
            return None
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            self.problem(f"“{raw[:40]}” is not a date like 2025-03-31, so the {label} filter is ignored.")
            return None
        if not MIN_DATE <= day <= MAX_DATE:
            self.problem(
                f"{raw} is outside the dates the index holds ({MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}), "
                f"so the {label} filter is ignored."
            )
            return None
        return day

    def page_size(self, raw: str) -> int:
        """The ``limit`` parameter: 1 to :data:`MAX_LIMIT`, else :data:`DEFAULT_LIMIT` with a sentence."""
        if not raw:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            self.problem(f"Page size must be a whole number from 1 to {MAX_LIMIT}; showing {DEFAULT_LIMIT} per page.")
            return DEFAULT_LIMIT
        return limit
